//! Campaigns: email campaigns by start, with their counters summed; the measures they
//! answer.

use std::sync::Arc;

use kpi_core::{Decimal, Dimension, Measure, MetricError, Window};

use super::count;
use super::events::{rows_by_time, EventList};
use super::lookups::Lookups;
use super::part::{KindIndex, Part, ResolvedFilters};
use super::sums::{overflow, IntegerSums};
use crate::record::{Channel, RecordKind};
use crate::rows::{CampaignRow, Slab};
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

/// Email campaigns by start, with sums of their counters.
pub(crate) struct CampaignIndex {
    pub(crate) email: EventList<u32>,
    pub(crate) delivered: IntegerSums,
    pub(crate) opens: IntegerSums,
    pub(crate) clicks: IntegerSums,
}

impl KindIndex for CampaignIndex {
    type Row = CampaignRow;
    type Table = Slab<CampaignRow>;
    /// The lookups, for the symbols of the channels' names.
    type Context = Arc<Lookups>;

    fn record_slot(_: &Self::Table, position: u32) -> u32 {
        position
    }

    fn attr(lookups: &Arc<Lookups>, c: &CampaignRow, d: Dimension) -> Sym {
        match d {
            Dimension::Campaign => c.id,
            Dimension::Channel => lookups.channel_name(c.channel),
            _ => NONE,
        }
    }

    fn build(_: &Arc<Lookups>, rows: &Self::Table, subset: &[u32]) -> Self {
        let row = |r: &u32| rows.row(*r);
        let email = rows_by_time(subset, |r| {
            let c = rows.row(r);
            Some(c.started_at.get()).filter(|_| c.channel == Channel::Email)
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

crate::snapshot::snap_fields!(CampaignIndex {
    email,
    delivered,
    opens,
    clicks
});
super::image::imaged_as_written!(CampaignIndex);

#[cfg(test)]
mod tests {
    use crate::index::tests::after_one_write;
    use crate::record::{Channel, Record, RecordKind};

    /// A campaign of some deal moved to another channel: the campaign part is its base
    /// plus a delta, and so is the deal part (its deals read the channel anew); every
    /// answer equals the reference's.
    #[test]
    fn a_campaign_write_is_a_delta_of_the_campaigns_and_of_the_rows_reading_them() {
        let (before, after) = after_one_write(RecordKind::Campaign, |all, r| {
            let Record::Campaign(c) = r else { return false };
            let has_deal = all.of_kind(RecordKind::Deal).any(
                |d| matches!(d, Record::Deal(d) if d.campaign_id.as_deref() == Some(c.id.as_str())),
            );
            c.channel = if c.channel == Channel::Email {
                Channel::Social
            } else {
                Channel::Email
            };
            c.opens += 1;
            has_deal
        });
        assert!(after.campaigns.layered_on(&before.campaigns));
        assert!(after.deals.layered_on(&before.deals));
    }
}
