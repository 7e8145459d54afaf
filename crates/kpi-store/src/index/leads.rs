//! Leads: by creation, with their conversions blocked by time; the measures they answer.

use std::sync::Arc;

use jiff::Timestamp;
use kpi_core::{Decimal, Dimension, Measure, MetricError, Window};

use super::blocked::Blocked;
use super::count;
use super::events::{rows_by_time, EventList};
use super::lookups::Lookups;
use super::part::{KindIndex, Part, ResolvedFilters};
use crate::record::RecordKind;
use crate::rows::{LeadRow, Slab};
use crate::symbols::{Sym, NONE};

/// The kinds the lead part reads: leads, and the campaigns whose channel they inherit.
pub(crate) const READS: &[RecordKind] = &[RecordKind::Lead, RecordKind::Campaign];

/// Whether the lead part answers `measure`.
pub(crate) fn answers(measure: Measure) -> bool {
    matches!(measure, Measure::LeadsCreated | Measure::LeadsConverted)
}

/// Leads by creation time.
pub(crate) struct LeadIndex {
    pub(crate) created: EventList<u32>,
    /// Leads (in `created` order) by conversion time (never: the end of time).
    pub(crate) created_by_conversion: Blocked,
}

impl KindIndex for LeadIndex {
    type Row = LeadRow;
    type Table = Slab<LeadRow>;
    type Context = Arc<Lookups>;

    fn record_slot(_: &Self::Table, position: u32) -> u32 {
        position
    }

    fn campaign(_: &Arc<Lookups>, l: &LeadRow) -> Sym {
        l.campaign
    }

    fn attr(lookups: &Arc<Lookups>, l: &LeadRow, d: Dimension) -> Sym {
        match d {
            Dimension::Source => lookups.source(l.source),
            Dimension::Campaign => l.campaign,
            Dimension::Channel => lookups.channel(l.campaign),
            _ => NONE,
        }
    }

    fn build(_: &Arc<Lookups>, rows: &Self::Table, subset: &[u32]) -> Self {
        let created = rows_by_time(subset, |r| Some(rows.row(r).created_at.get()));
        LeadIndex {
            created_by_conversion: Blocked::new(
                created.items.len(),
                |i| {
                    let lead = rows.row(created.items[i]);
                    lead.converted_at.get().unwrap_or(Timestamp::MAX)
                },
                &[],
            ),
            created,
        }
    }
}

/// The leads' value of `measure` (one [`answers`]) over `w` and the filters `f`.
pub(crate) fn measure(
    part: &Part<LeadIndex>,
    measure: Measure,
    w: &Window,
    f: &ResolvedFilters,
) -> Result<Decimal, MetricError> {
    Ok(match measure {
        Measure::LeadsCreated | Measure::LeadsConverted => {
            let Some(s) = part.select(f)? else {
                return Ok(Decimal::ZERO);
            };
            let r = s.index.created.range(w);
            if measure == Measure::LeadsCreated {
                count(s.count(&s.index.created, r))
            } else if s.all() {
                count(
                    s.index
                        .created_by_conversion
                        .count(r, None, Some(w.end), |i| {
                            let lead = s.row(&s.index.created.items[i]);
                            lead.converted_at.get().unwrap_or(Timestamp::MAX)
                        }),
                )
            } else {
                count(s.count_where(&s.index.created, r, |e| {
                    s.row(e).converted_at.get().is_some_and(|c| c < w.end)
                }))
            }
        }
        _ => unreachable!("leads::measure is called with the measures leads answer only"),
    })
}

crate::snapshot::snap_fields!(LeadIndex {
    created,
    created_by_conversion
});
super::image::imaged_as_written!(LeadIndex);
