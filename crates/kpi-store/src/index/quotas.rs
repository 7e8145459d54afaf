//! Quotas: by period start, with the latest end so far; the prorated quota of a window.

use jiff::Timestamp;
use kpi_core::{Decimal, Dimension, Measure, MetricError, Window};

use super::events::{rows_by_time, EventList};
use super::part::{KindIndex, Part, ResolvedFilters};
use super::sums::{add, overflow};
use crate::record::RecordKind;
use crate::rows::{QuotaRow, Slab};
use crate::symbols::{Sym, NONE};
use crate::units::nanos_between;

/// The kinds the quota part reads.
pub(crate) const READS: &[RecordKind] = &[RecordKind::Quota];

/// Whether the quota part answers `measure`.
pub(crate) fn answers(measure: Measure) -> bool {
    matches!(measure, Measure::QuotaProrated)
}

/// Quotas by period start.
pub(crate) struct QuotaIndex {
    pub(crate) by_start: EventList<u32>,
    /// `max_end[i]`: the latest end among quotas `0..=i` (by start).
    pub(crate) max_end: Vec<Timestamp>,
}

impl KindIndex for QuotaIndex {
    type Row = QuotaRow;
    type Table = Slab<QuotaRow>;
    type Context = ();

    fn record_slot(_: &Self::Table, position: u32) -> u32 {
        position
    }

    fn attr((): &(), q: &QuotaRow, d: Dimension) -> Sym {
        match d {
            Dimension::Owner => q.owner,
            _ => NONE,
        }
    }

    fn build((): &(), rows: &Self::Table, subset: &[u32]) -> Self {
        let by_start = rows_by_time(subset, |r| Some(rows.row(r).period_start));
        let max_end = by_start
            .items
            .iter()
            .scan(None, |latest: &mut Option<Timestamp>, r| {
                let end = rows.row(*r).period_end;
                let m = latest.map_or(end, |l| l.max(end));
                *latest = Some(m);
                Some(m)
            })
            .collect();
        QuotaIndex { by_start, max_end }
    }
}

/// The quotas' value of `measure` (one [`answers`]) over `w` and the filters `f`.
pub(crate) fn measure(
    part: &Part<QuotaIndex>,
    measure: Measure,
    w: &Window,
    f: &ResolvedFilters,
) -> Result<Decimal, MetricError> {
    Ok(match measure {
        Measure::QuotaProrated => quota_prorated(part, w, f)?,
        _ => unreachable!("quotas::measure is called with the measures quotas answer only"),
    })
}

fn quota_prorated(
    part: &Part<QuotaIndex>,
    w: &Window,
    f: &ResolvedFilters,
) -> Result<Decimal, MetricError> {
    let Some(s) = part.select(f)? else {
        return Ok(Decimal::ZERO);
    };
    let ev = &s.index.by_start;
    let mut total = Decimal::ZERO;
    // Quotas before `first` all end at or before the window's start.
    let first = s.index.max_end.partition_point(|end| *end <= w.start);
    for e in &ev.items[first..ev.before(w.end).max(first)] {
        let q = s.row(e);
        if q.period_end <= w.start || !s.ok(*e) {
            continue;
        }
        if w.start <= q.period_start && q.period_end <= w.end {
            // Entirely in W: the whole amount.
            total = add(total, q.amount)?;
            continue;
        }
        let from = q.period_start.max(w.start);
        let to = q.period_end.min(w.end);
        if to <= from {
            continue;
        }
        let overlap = Decimal::try_from_i128_with_scale(nanos_between(from, to), 0)
            .map_err(|_| overflow())?;
        let period =
            Decimal::try_from_i128_with_scale(nanos_between(q.period_start, q.period_end), 0)
                .map_err(|_| overflow())?;
        let part = q
            .amount
            .checked_mul(overlap)
            .and_then(|x| x.checked_div(period))
            .ok_or_else(|| MetricError::Overflow("a prorated quota".into()))?;
        total = add(total, part)?;
    }
    Ok(total)
}

crate::snapshot::snap_fields!(QuotaIndex { by_start, max_end });
super::image::imaged_as_written!(QuotaIndex);

#[cfg(test)]
mod tests {
    use crate::index::tests::after_one_write;
    use crate::record::{Record, RecordKind};

    /// A quota's amount changed: the quota part is its base plus a delta, read in place,
    /// and every answer equals the reference's.
    #[test]
    fn a_quota_write_is_a_delta() {
        let (before, after) = after_one_write(RecordKind::Quota, |_, r| {
            let Record::Quota(q) = r else { return false };
            q.amount += kpi_core::Decimal::ONE;
            true
        });
        assert!(after.quotas.layered_on(&before.quotas));
    }
}
