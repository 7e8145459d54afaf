//! The `cohort` dimension in the index: rows whose customer was acquired in a window (the
//! engine resolves a cohort's label to its period's window, in the request's time zone and
//! the tenant's calendar, and hands it over encoded; see `kpi_core::cohort`).
//!
//! A part reads a cohort like a dimension value: through an index over the rows whose
//! customer was acquired in the cohort's window ([`CohortPartitions`], built on the
//! cohort's first read), unless another filter's partition is smaller, and then the cohort
//! is checked row by row through the customer lookups. The cohort's values (for
//! `group_by`) are the acquisition instants of the customers of the rows the measures
//! read, which the engine cuts into periods.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, OnceLock};

use jiff::Timestamp;
use kpi_core::{Dimension, Measure, MetricError, Window};

use super::part::{KindIndex, ResolvedFilters, RowTable};
use super::{readers, Index, PARTS};
use crate::dims::Unit;
use crate::long_work::GetOrBuild as _;

/// When the customer of `row` was acquired (`None`: it has none, or it is not stored).
pub(crate) fn acquired<I: KindIndex>(context: &I::Context, row: &I::Row) -> Option<Timestamp> {
    let lookups = I::customer_lookups(context)?;
    lookups.acquisition(I::customer(context, row)).0
}

/// Whether the customer of `row` was acquired in `w`.
pub(crate) fn acquired_in<I: KindIndex>(context: &I::Context, row: &I::Row, w: &Window) -> bool {
    acquired::<I>(context, row).is_some_and(|t| w.contains(t))
}

/// How many cohort windows a part keeps an index for (a cohort table over five years of
/// monthly cohorts reads 60); a query on a cohort beyond them checks its rows one by one.
const KEPT_COHORTS: usize = 128;

/// The rows of one cohort (positions, ascending) and the index over them.
pub(crate) type CohortPartition<I> = (Vec<u32>, I);

/// A part's indexes by cohort window, each built on the window's first read.
pub(crate) struct CohortPartitions<I> {
    /// The part's rows whose customer has an acquisition instant, by that instant.
    by_acquisition: OnceLock<Vec<(Timestamp, u32)>>,
    /// The windows read so far, each with its slot in `partitions`.
    slots: Mutex<HashMap<Window, usize>>,
    partitions: Box<[OnceLock<CohortPartition<I>>]>,
}

impl<I: KindIndex> CohortPartitions<I> {
    pub(crate) fn new() -> Self {
        Self {
            by_acquisition: OnceLock::new(),
            slots: Mutex::new(HashMap::new()),
            partitions: (0..KEPT_COHORTS).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The rows among `positions` (of `rows`, read through `context`) whose customer
    /// was acquired in `w`, with their index; `None` once [`KEPT_COHORTS`] other
    /// windows are kept.
    pub(crate) fn get(
        &self,
        w: Window,
        context: &I::Context,
        rows: &I::Table,
        (count, positions): (usize, impl Iterator<Item = u32>),
    ) -> Option<&CohortPartition<I>> {
        let slot = {
            let mut slots = self.slots.lock().expect("not poisoned");
            let next = slots.len();
            match slots.get(&w) {
                Some(slot) => *slot,
                None if next < KEPT_COHORTS => *slots.entry(w).or_insert(next),
                None => return None,
            }
        };
        Some(self.partitions[slot].get_or_build(count, || {
            let sorted = self.by_acquisition(context, rows, (count, positions));
            let from = sorted.partition_point(|(t, _)| *t < w.start);
            let to = sorted.partition_point(|(t, _)| *t < w.end);
            let mut subset: Vec<u32> = sorted[from..to].iter().map(|(_, i)| *i).collect();
            subset.sort_unstable();
            let index = I::build(context, rows, &subset);
            (subset, index)
        }))
    }

    /// The rows among `positions` (of `rows`, read through `context`) whose customer has
    /// an acquisition instant, by that instant (sorted once, on first use).
    pub(crate) fn by_acquisition(
        &self,
        context: &I::Context,
        rows: &I::Table,
        (count, positions): (usize, impl Iterator<Item = u32>),
    ) -> &[(Timestamp, u32)] {
        self.by_acquisition.get_or_build(count, || {
            let mut sorted: Vec<(Timestamp, u32)> = positions
                .filter_map(|i| acquired::<I>(context, rows.row(i)).map(|t| (t, i)))
                .collect();
            sorted.sort_unstable();
            sorted
        })
    }
}

impl<I: super::image::Imaged> CohortPartitions<I> {
    /// Writes, for the index image, the rows by acquisition (when sorted) and the
    /// partition of each window built so far.
    pub(crate) fn put_image(
        &self,
        context: &I::Context,
        w: &mut impl std::io::Write,
    ) -> std::io::Result<()> {
        use crate::snapshot::Snap as _;
        match self.by_acquisition.get() {
            None => false.put(w)?,
            Some(sorted) => {
                true.put(w)?;
                sorted.put(w)?;
            }
        }
        let slots = self.slots.lock().expect("not poisoned");
        let built: Vec<(&Window, &CohortPartition<I>)> = slots
            .iter()
            .filter_map(|(window, slot)| self.partitions[*slot].get().map(|p| (window, p)))
            .collect();
        (built.len() as u32).put(w)?;
        for (window, (positions, index)) in built {
            window.start.put(w)?;
            window.end.put(w)?;
            positions.put(w)?;
            index.put_image(context, w)?;
        }
        Ok(())
    }

    /// Reads what [`CohortPartitions::put_image`] wrote, the rows of each list checked by
    /// `holds` (whether each position is a row of the part).
    pub(crate) fn get_image(
        context: &I::Context,
        holds: impl Fn(&mut dyn Iterator<Item = u32>) -> bool,
        r: &mut impl crate::snapshot::ContentSource,
    ) -> std::io::Result<Self> {
        use crate::snapshot::{invalid, Snap};
        let read = Self::new();
        if let Some(sorted) = Option::<Vec<(Timestamp, u32)>>::get(r)? {
            let ascending = sorted.windows(2).all(|p| p[0].0 <= p[1].0);
            if !ascending || !holds(&mut sorted.iter().map(|(_, i)| *i)) {
                return Err(invalid(
                    "rows by acquisition that are not the part's, or not sorted",
                ));
            }
            let _ = read.by_acquisition.set(sorted);
        }
        let n = crate::snapshot::get_count(r, "cohort windows")? as usize;
        if n > KEPT_COHORTS {
            return Err(invalid(format!("{n} cohort windows kept")));
        }
        let mut slots = read.slots.lock().expect("not poisoned");
        for slot in 0..n {
            let (start, end) = (Timestamp::get(r)?, Timestamp::get(r)?);
            let window = Window::new(start, end).map_err(|e| invalid(e.to_string()))?;
            let positions: Vec<u32> = Snap::get(r)?;
            if !positions.windows(2).all(|p| p[0] < p[1]) || !holds(&mut positions.iter().copied())
            {
                return Err(invalid("a cohort's rows are not the part's"));
            }
            let index = I::get_image(context, r)?;
            if slots.insert(window, slot).is_some() {
                return Err(invalid("a cohort window twice"));
            }
            let _ = read.partitions[slot].set((positions, index));
        }
        drop(slots);
        Ok(read)
    }
}

impl<I: KindIndex> CohortPartitions<I> {
    /// The windows whose partitions are built.
    pub(crate) fn built_windows(&self) -> Vec<Window> {
        let slots = self.slots.lock().expect("not poisoned");
        slots
            .iter()
            .filter(|(_, slot)| self.partitions[**slot].get().is_some())
            .map(|(w, _)| *w)
            .collect()
    }

    /// Whether its rows by acquisition are sorted.
    pub(crate) fn has_by_acquisition(&self) -> bool {
        self.by_acquisition.get().is_some()
    }
}

/// Cuts an acquisition instant into its cohort's period (the engine's, in the request's
/// time zone and the tenant's calendar).
pub(crate) type PeriodOf<'a> = &'a dyn Fn(Timestamp) -> Result<Window, MetricError>;

/// A cohort period's start, and how many rows' customers were acquired in it.
pub(crate) type PeriodRows = (Timestamp, usize);

/// The periods of `sorted` (ascending by the instant `at` reads), each with how many of
/// them it holds: one cut and one binary search a period, not a cut an instant.
pub(crate) fn cut<T>(
    sorted: &[T],
    at: impl Fn(&T) -> Timestamp,
    period_of: PeriodOf<'_>,
) -> Result<Vec<PeriodRows>, MetricError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let w = period_of(at(&sorted[i]))?;
        // At least the instant cut, should a period not hold it.
        let end = (i + sorted[i..].partition_point(|x| at(x) < w.end)).max(i + 1);
        out.push((w.start, end - i));
        i = end;
    }
    Ok(out)
}

/// The window of a cohort filter's value, as the engine encodes it.
pub(crate) fn window(value: &str) -> Result<Window, MetricError> {
    kpi_core::cohort::decode(value).ok_or_else(|| MetricError::UnsupportedDimension {
        dimension: Dimension::Cohort.name(),
        reason: format!("`{value}` is not a cohort window (start/end)"),
    })
}

/// The units whose rows `measures` read (every unit whose rows have a customer when
/// empty), each once; an error for a unit whose rows have no customer.
fn units_read(measures: &[Measure]) -> Result<Vec<Unit>, MetricError> {
    let read: Vec<Unit> = if measures.is_empty() {
        PARTS
            .iter()
            .map(|p| p.unit)
            .filter(|u| u.has_customer() && *u != Unit::StageStay && *u != Unit::StageExit)
            .collect()
    } else {
        measures
            .iter()
            .flat_map(|m| readers(*m, false))
            .map(|p| PARTS[p].unit)
            .collect()
    };
    let mut units = Vec::new();
    for unit in read {
        if !units.contains(&unit) {
            units.push(unit);
        }
    }
    if let Some(unit) = units.iter().find(|u| !u.has_customer()) {
        return Err(MetricError::UnsupportedDimension {
            dimension: Dimension::Cohort.name(),
            reason: format!("{} records have no customer", unit.name()),
        });
    }
    Ok(units)
}

/// Runs `$read` on the index's part of `$unit` (bound to `$part`), a unit with customers.
macro_rules! with_part_of {
    ($index:expr, $unit:expr, |$part:ident| $read:expr) => {
        match $unit {
            Unit::Deal => {
                let $part = &$index.deals;
                $read
            }
            Unit::StageExit => {
                let $part = &$index.stages().exits;
                $read
            }
            Unit::StageStay => {
                let $part = &$index.stages().stays;
                $read
            }
            Unit::Customer => {
                let $part = &$index.customers;
                $read
            }
            Unit::Purchase => {
                let $part = &$index.purchases;
                $read
            }
            Unit::Subscription => {
                let $part = &$index.subscriptions;
                $read
            }
            Unit::Ticket => {
                let $part = &$index.tickets;
                $read
            }
            Unit::Survey => {
                let $part = &$index.surveys;
                $read
            }
            Unit::Activity => {
                let $part = &$index.activities;
                $read
            }
            Unit::Quota | Unit::Lead | Unit::Spend | Unit::Campaign => {
                unreachable!("{} records have no customer", $unit.name())
            }
        }
    };
}

/// The sorted distinct acquisition instants (RFC 3339) of the customers of the rows that
/// `measures` read (every unit whose rows have a customer when empty) matching `f`.
pub(crate) fn group_values(
    index: &Index,
    f: &ResolvedFilters,
    measures: &[Measure],
) -> Result<Vec<String>, MetricError> {
    let mut instants = Vec::new();
    for unit in units_read(measures)? {
        with_part_of!(index, unit, |part| part.acquisitions(f, &mut instants)?);
    }
    let distinct: BTreeSet<Timestamp> = instants.into_iter().collect();
    Ok(distinct.into_iter().map(|t| t.to_string()).collect())
}

/// The starts of the cohort periods (`period_of`) of the customers of the rows that
/// `measures` read (as for [`group_values`]) matching `f`, sorted.
pub(crate) fn periods(
    index: &Index,
    f: &ResolvedFilters,
    measures: &[Measure],
    period_of: PeriodOf<'_>,
) -> Result<BTreeSet<Timestamp>, MetricError> {
    let mut out = BTreeSet::new();
    for unit in units_read(measures)? {
        let periods = with_part_of!(index, unit, |part| part.cohort_periods(f, period_of)?);
        out.extend(periods.into_iter().map(|(start, _)| start));
    }
    Ok(out)
}
