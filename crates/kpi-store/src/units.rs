//! Exact conversions of elapsed time: nanoseconds to days, hours and years.

use jiff::Timestamp;
use kpi_core::{Decimal, MetricError};

/// Nanoseconds in a day (86 400 s).
pub(crate) const DAY_NANOS: i128 = 86_400_000_000_000;
/// Nanoseconds in an hour.
pub(crate) const HOUR_NANOS: i128 = 3_600_000_000_000;
/// Nanoseconds in a year of 365 days.
pub(crate) const YEAR_NANOS: i128 = 365 * DAY_NANOS;

/// `to − from` in nanoseconds.
pub(crate) fn nanos_between(from: Timestamp, to: Timestamp) -> i128 {
    to.duration_since(from).as_nanos()
}

/// `nanos / unit` as an exact decimal (to 28 significant digits).
pub(crate) fn nanos_to(nanos: i128, unit: i128) -> Result<Decimal, MetricError> {
    let overflow = || MetricError::Overflow("a total of durations".into());
    let n = Decimal::try_from_i128_with_scale(nanos, 0).map_err(|_| overflow())?;
    let u = Decimal::try_from_i128_with_scale(unit, 0).map_err(|_| overflow())?;
    n.checked_div(u).ok_or_else(overflow)
}
