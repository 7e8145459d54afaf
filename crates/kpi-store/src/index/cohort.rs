//! The `cohort` dimension in the index: rows whose customer was acquired in a window (the
//! engine resolves a cohort's label to its period's window, in the request's time zone and
//! the tenant's calendar, and hands it over encoded; see `kpi_core::cohort`).
//!
//! A cohort filter is checked row by row through the customer lookups, like a second
//! dimension filter; the cohort's values (for `group_by`) are the acquisition instants of
//! the customers of the rows the measures read, which the engine cuts into periods.

use std::collections::BTreeSet;

use jiff::Timestamp;
use kpi_core::{Dimension, Measure, MetricError, Window};

use super::part::{KindIndex, ResolvedFilters};
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
