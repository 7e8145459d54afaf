//! Exact conversions of elapsed time: nanoseconds to days, hours and years.

use jiff::Timestamp;
use kpi_core::{Decimal, Measure, MetricError};

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
    in_unit(nanos_decimal(nanos)?, unit)
}

/// A whole number of nanoseconds as a decimal, exactly.
pub(crate) fn nanos_decimal(nanos: i128) -> Result<Decimal, MetricError> {
    Decimal::try_from_i128_with_scale(nanos, 0).map_err(|_| duration_overflow())
}

/// `nanos / unit`, `nanos` a whole number of nanoseconds as a decimal (to 28 significant
/// digits).
pub(crate) fn in_unit(nanos: Decimal, unit: i128) -> Result<Decimal, MetricError> {
    let unit = Decimal::try_from_i128_with_scale(unit, 0).map_err(|_| duration_overflow())?;
    nanos.checked_div(unit).ok_or_else(duration_overflow)
}

/// The unit a measure totalling durations is answered in, or `None` for any other
/// measure. Its parts answer whole nanoseconds (`nanos_decimal`), exact and additive over
/// parts and over a layered part's base and delta; the index divides once, last
/// (`in_unit`), so its last digit never depends on how the rows were split.
pub(crate) fn duration_unit(measure: Measure) -> Option<i128> {
    match measure {
        Measure::WonCycleDaysTotal | Measure::StageDaysTotal => Some(DAY_NANOS),
        Measure::ResolutionHoursTotal | Measure::FirstResponseHoursTotal => Some(HOUR_NANOS),
        _ => None,
    }
}

fn duration_overflow() -> MetricError {
    MetricError::Overflow("a total of durations".into())
}
