//! Activities (calls, meetings, emails, demos…): by when they occurred, with their amounts
//! summed; the measures they answer.

use std::sync::Arc;

use kpi_core::{Decimal, Dimension, Measure, MetricError, Window};

use super::count;
use super::events::{rows_by_time, EventList};
use super::lookups::Lookups;
use super::part::{KindIndex, Part, ResolvedFilters};
use super::sums::DecimalSums;
use crate::record::RecordKind;
use crate::rows::{ActivityRow, Slab};
use crate::symbols::{Sym, NONE};

/// The kinds the activity part reads: activities, and their customers (through the
/// lookups only).
pub(crate) const READS: &[RecordKind] = &[RecordKind::Activity, RecordKind::Customer];

/// Whether the activity part answers `measure`.
pub(crate) fn answers(measure: Measure) -> bool {
    matches!(measure, Measure::Activities | Measure::ActivityAmount)
}

impl ActivityRow {
    /// Its amount, zero without one (what the amount sums add).
    pub(crate) fn amount_or_zero(&self) -> Decimal {
        self.amount.unwrap_or(Decimal::ZERO)
    }
}

/// Activities by when they occurred, with their amounts summed.
pub(crate) struct ActivityIndex {
    pub(crate) occurred: EventList<u32>,
    pub(crate) amount: DecimalSums,
}

impl KindIndex for ActivityIndex {
    type Row = ActivityRow;
    type Table = Slab<ActivityRow>;
    type Context = Arc<Lookups>;

    fn record_slot(_: &Self::Table, position: u32) -> u32 {
        position
    }

    fn customer_lookups(lookups: &Arc<Lookups>) -> Option<&Lookups> {
        Some(lookups)
    }

    fn customer(_: &Arc<Lookups>, a: &ActivityRow) -> Sym {
        a.customer
    }

    fn attr(lookups: &Arc<Lookups>, a: &ActivityRow, d: Dimension) -> Sym {
        match d {
            Dimension::Owner => a.owner,
            Dimension::ActivityType => a.activity_type,
            Dimension::Source | Dimension::Segment => lookups.customer_attr(a.customer, d),
            _ => NONE,
        }
    }

    fn build(_: &Arc<Lookups>, rows: &Self::Table, subset: &[u32]) -> Self {
        let occurred = rows_by_time(subset, |r| Some(rows.row(r).occurred_at.get()));
        ActivityIndex {
            amount: DecimalSums::new(occurred.items.iter().map(|r| rows.row(*r).amount_or_zero())),
            occurred,
        }
    }
}

/// The activities' value of `measure` (one [`answers`]) over `w` and the filters `f`.
pub(crate) fn measure(
    part: &Part<ActivityIndex>,
    measure: Measure,
    w: &Window,
    f: &ResolvedFilters,
) -> Result<Decimal, MetricError> {
    let Some(s) = part.select(f)? else {
        return Ok(Decimal::ZERO);
    };
    let index = s.index;
    let r = index.occurred.range(w);
    Ok(match measure {
        Measure::Activities => count(s.count(&index.occurred, r)),
        Measure::ActivityAmount => s.sum(&index.occurred, r, &index.amount, |e| {
            s.row(e).amount_or_zero()
        })?,
        _ => unreachable!("activities::measure is called with the measures activities answer only"),
    })
}

crate::snapshot::snap_fields!(ActivityIndex { occurred, amount });
super::image::imaged_as_written!(ActivityIndex);
