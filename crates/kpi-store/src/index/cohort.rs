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
        positions: impl Iterator<Item = u32>,
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
        Some(self.partitions[slot].get_or_init(|| {
            let sorted = self.by_acquisition.get_or_init(|| {
                let mut sorted: Vec<(Timestamp, u32)> = positions
                    .filter_map(|i| acquired::<I>(context, rows.row(i)).map(|t| (t, i)))
                    .collect();
                sorted.sort_unstable();
                sorted
            });
            let from = sorted.partition_point(|(t, _)| *t < w.start);
            let to = sorted.partition_point(|(t, _)| *t < w.end);
            let mut subset: Vec<u32> = sorted[from..to].iter().map(|(_, i)| *i).collect();
            subset.sort_unstable();
            let index = I::build(context, rows, &subset);
            (subset, index)
        }))
    }
}

/// The window of a cohort filter's value, as the engine encodes it.
pub(crate) fn window(value: &str) -> Result<Window, MetricError> {
    kpi_core::cohort::decode(value).ok_or_else(|| MetricError::UnsupportedDimension {
        dimension: Dimension::Cohort.name(),
        reason: format!("`{value}` is not a cohort window (start/end)"),
    })
}

/// The sorted distinct acquisition instants (RFC 3339) of the customers of the rows that
/// `measures` read (every unit whose rows have a customer when empty) matching `f`.
pub(crate) fn group_values(
    index: &Index,
    f: &ResolvedFilters,
    measures: &[Measure],
) -> Result<Vec<String>, MetricError> {
    let mut units: Vec<Unit> = if measures.is_empty() {
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
    units.dedup();
    let mut out = BTreeSet::new();
    for unit in units {
        match unit {
            Unit::Deal => index.deals.acquisitions(f, &mut out)?,
            Unit::StageExit => index.stages().exits.acquisitions(f, &mut out)?,
            Unit::StageStay => index.stages().stays.acquisitions(f, &mut out)?,
            Unit::Customer => index.customers.acquisitions(f, &mut out)?,
            Unit::Purchase => index.purchases.acquisitions(f, &mut out)?,
            Unit::Subscription => index.subscriptions.acquisitions(f, &mut out)?,
            Unit::Ticket => index.tickets.acquisitions(f, &mut out)?,
            Unit::Survey => index.surveys.acquisitions(f, &mut out)?,
            Unit::Activity => index.activities.acquisitions(f, &mut out)?,
            Unit::Quota | Unit::Lead | Unit::Spend | Unit::Campaign => {
                return Err(MetricError::UnsupportedDimension {
                    dimension: Dimension::Cohort.name(),
                    reason: format!("{} records have no customer", unit.name()),
                })
            }
        }
    }
    Ok(out.into_iter().map(|t| t.to_string()).collect())
}
