//! Campaigns: email campaigns by start, with their counters summed; the measures they
//! answer.

use jiff::Timestamp;
use kpi_core::{Decimal, Dimension, Measure, MetricError, Window};

use super::count;
use super::events::{rows_by_time, EventList};
use super::part::{KindIndex, Part, ResolvedFilters, RowTable};
use super::sums::{overflow, IntegerSums};
use crate::dims::Unit;
use crate::record::{Channel, RecordKind};
use crate::rows::Rows;
use crate::symbols::{Sym, NONE};

/// The kinds the campaign part reads.
pub(crate) const READS: &[RecordKind] = &[RecordKind::Campaign];

/// Whether the campaign part answers `measure`.
pub(crate) fn answers(measure: Measure) -> bool {
    matches!(
        measure,
        Measure::EmailCampaigns
            | Measure::EmailDelivered
            | Measure::EmailOpens
            | Measure::EmailClicks
    )
}

/// The campaign part of `rows` (converted: the channel as its name's symbol, from
/// `channels`).
pub(crate) fn part(rows: &Rows, channels: &[Sym; Channel::ALL.len()]) -> Part<CampaignIndex> {
    let campaigns = rows
        .campaigns
        .slots()
        .map(|(slot, c)| ResolvedCampaign {
            slot,
            id: c.id,
            channel: channels[c.channel as usize],
            started: c.started_at.get(),
            email: c.channel == Channel::Email,
            delivered: c.delivered,
            opens: c.opens,
            clicks: c.clicks,
        })
        .collect::<Vec<_>>();
    let attributes = &rows.attributes[RecordKind::Campaign as usize];
    Part::new(Unit::Campaign, campaigns, (), attributes)
}

/// A campaign.
pub(crate) struct ResolvedCampaign {
    /// The campaign's slot (its attributes').
    pub(crate) slot: u32,
    pub(crate) id: Sym,
    /// The symbol of its channel's name.
    pub(crate) channel: Sym,
    pub(crate) started: Timestamp,
    pub(crate) email: bool,
    pub(crate) delivered: u64,
    pub(crate) opens: u64,
    pub(crate) clicks: u64,
}

/// Email campaigns by start, with sums of their counters.
pub(crate) struct CampaignIndex {
    pub(crate) email: EventList<u32>,
    pub(crate) delivered: IntegerSums,
    pub(crate) opens: IntegerSums,
    pub(crate) clicks: IntegerSums,
}

impl KindIndex for CampaignIndex {
    type Row = ResolvedCampaign;
    type Table = Vec<ResolvedCampaign>;
    type Context = ();

    fn record_slot(rows: &Self::Table, position: u32) -> u32 {
        rows.row(position).slot
    }

    fn attr((): &(), c: &ResolvedCampaign, d: Dimension) -> Sym {
        match d {
            Dimension::Campaign => c.id,
            Dimension::Channel => c.channel,
            _ => NONE,
        }
    }

    fn build((): &(), rows: &Self::Table, subset: &[u32]) -> Self {
        let row = |r: &u32| rows.row(*r);
        let email = rows_by_time(subset, |r| {
            Some(rows.row(r).started).filter(|_| rows.row(r).email)
        });
        CampaignIndex {
            delivered: IntegerSums::new(email.items.iter().map(|r| i128::from(row(r).delivered))),
            opens: IntegerSums::new(email.items.iter().map(|r| i128::from(row(r).opens))),
            clicks: IntegerSums::new(email.items.iter().map(|r| i128::from(row(r).clicks))),
            email,
        }
    }
}

/// The campaigns' value of `measure` (one [`answers`]) over `w` and the filters `f`.
pub(crate) fn measure(
    part: &Part<CampaignIndex>,
    measure: Measure,
    w: &Window,
    f: &ResolvedFilters,
) -> Result<Decimal, MetricError> {
    Ok(match measure {
        Measure::EmailCampaigns
        | Measure::EmailDelivered
        | Measure::EmailOpens
        | Measure::EmailClicks => {
            let Some(s) = part.select(f)? else {
                return Ok(Decimal::ZERO);
            };
            let index = s.index;
            let r = index.email.range(w);
            let total = match measure {
                Measure::EmailCampaigns => return Ok(count(s.count(&index.email, r))),
                Measure::EmailDelivered => s.int_sum(&index.email, r, &index.delivered, |e| {
                    i128::from(s.row(e).delivered)
                }),
                Measure::EmailOpens => s.int_sum(&index.email, r, &index.opens, |e| {
                    i128::from(s.row(e).opens)
                }),
                _ => s.int_sum(&index.email, r, &index.clicks, |e| {
                    i128::from(s.row(e).clicks)
                }),
            };
            Decimal::try_from_i128_with_scale(total, 0).map_err(|_| overflow())?
        }
        _ => unreachable!("campaigns::measure is called with the measures campaigns answer only"),
    })
}
