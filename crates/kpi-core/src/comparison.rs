//! Comparisons: which period a row is compared with (the previous period, or the same
//! dates a year earlier), calendar-aligned in the request's time zone, and the change
//! from the previous value to the value (change, change in percent, trend).
//!
//! # The period compared with
//!
//! Each edge of the row's window (a bucket, or the whole window) moves back in the
//! calendar of the request's zone. An edge at the first instant of a local day moves by
//! whole days (the result is the first instant of the new day, so a bucket's edges land on
//! the previous bucket's edges whatever the DST changes between them); any other edge
//! moves its local date and time (a time a DST change skips resolves to the instant after
//! the gap). Dates past the end of a shorter month become its last day.
//!
//! - previous period, with a granularity: each bucket moves back one bucket (a day, a
//!   week, a calendar month, a quarter, a year). Buckets are cut in the tenant's
//!   [`Calendar`](crate::Calendar), so a week (from its week start) moves back to the week
//!   before, and a fiscal quarter or year to the fiscal quarter or year before;
//! - previous period, no granularity: a window from a local 1st of the month to another
//!   moves back its number of calendar months; one from a local midnight to another its
//!   number of calendar days; any other window its exact duration (it then ends where the
//!   window starts);
//! - previous year: every edge moves back one calendar year (29 February → 28 February).
//!
//! # The change
//!
//! Computed from the values as answered, each already rounded to the metric's `precision`
//! (half away from zero), so a reader checks it from the row: `change = value −
//! previous_value` exactly; `change_pct = change / |previous_value| × 100`, rounded once to
//! `precision`. The trend says whether the change is good news for the metric's
//! [`Direction`].

use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, Unit as TimeUnit};
use rust_decimal::Decimal;

use crate::descriptor::Direction;
use crate::error::{ComputeError, MetricError};
use crate::inputs::Inputs;
use crate::value::{round, Value};
use crate::window::{day_started_at, whole_months, Granularity, Window};

/// Which period each row is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Comparison {
    /// The period just before: the previous bucket, or a window of the same calendar length
    /// ending where the window starts.
    PreviousPeriod,
    /// The same dates one year earlier.
    PreviousYear,
}

/// How far back the compared period lies.
#[derive(Debug, Clone, Copy)]
enum Offset {
    /// Calendar units in the request's zone.
    Calendar(Span),
    /// Exact elapsed time.
    Exact(jiff::SignedDuration),
}

impl Comparison {
    /// The window `window` (a bucket of `granularity`, or the whole request window when
    /// `granularity` is `None`) is compared with.
    pub fn previous_window(
        self,
        window: &Window,
        granularity: Option<Granularity>,
        tz: &TimeZone,
    ) -> Result<Window, ComputeError> {
        let out_of_range = |e: jiff::Error| {
            ComputeError::invalid(
                "compare",
                format!("the compared period is out of the supported calendar range: {e}"),
            )
        };
        match self.offset(window, granularity, tz).map_err(out_of_range)? {
            Offset::Calendar(span) => {
                let start = shift_back(window.start, span, tz).map_err(out_of_range)?;
                let end = shift_back(window.end, span, tz).map_err(out_of_range)?;
                Window::new(start, end)
            }
            Offset::Exact(duration) => {
                let start = window.start.checked_sub(duration).map_err(out_of_range)?;
                Window::new(start, window.start)
            }
        }
    }

    fn offset(
        self,
        window: &Window,
        granularity: Option<Granularity>,
        tz: &TimeZone,
    ) -> Result<Offset, jiff::Error> {
        Ok(match (self, granularity) {
            (Comparison::PreviousYear, _) => Offset::Calendar(Span::new().years(1)),
            (Comparison::PreviousPeriod, Some(g)) => Offset::Calendar(g.span()),
            (Comparison::PreviousPeriod, None) => {
                if let Some(months) = whole_months(window, tz) {
                    Offset::Calendar(Span::new().try_months(months)?)
                } else if let (Some(start), Some(end)) = (
                    day_started_at(window.start, tz),
                    day_started_at(window.end, tz),
                ) {
                    let days = end.since((TimeUnit::Day, start))?.get_days();
                    Offset::Calendar(Span::new().try_days(days)?)
                } else {
                    Offset::Exact(window.end.duration_since(window.start))
                }
            }
        })
    }
}

/// `t` moved back by `span` in the calendar of `tz` (see the module docs).
fn shift_back(t: Timestamp, span: Span, tz: &TimeZone) -> Result<Timestamp, jiff::Error> {
    match day_started_at(t, tz) {
        Some(date) => Ok(date.checked_sub(span)?.to_zoned(tz.clone())?.timestamp()),
        None => Ok(t.to_zoned(tz.clone()).checked_sub(span)?.timestamp()),
    }
}

/// Whether a change is good news, given the metric's direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trend {
    /// The value moved the way the metric's direction calls better.
    Improved,
    /// The value moved the other way.
    Worsened,
    /// The value (as answered, rounded) did not move.
    Unchanged,
}

/// A row's comparison: the previous period's value and inputs, and the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compared {
    /// The previous period's value, rounded like the row's value, or undefined with the
    /// reason.
    pub previous: Value,
    /// The unrounded inputs of the previous period.
    pub previous_inputs: Inputs,
    /// `value − previous` in the metric's unit (points for a percent); `None` when either
    /// is undefined.
    pub change: Option<Decimal>,
    /// `change / |previous| × 100`, rounded to the precision; undefined when the previous
    /// value is 0 or either value is undefined.
    pub change_pct: Value,
    /// Whether the change is good news; `None` when either value is undefined.
    pub trend: Option<Trend>,
}

impl Compared {
    /// Compares `value` with `previous` (both already rounded to `precision`).
    pub fn new(
        value: &Value,
        previous: Value,
        previous_inputs: Inputs,
        direction: Direction,
        precision: u32,
    ) -> Result<Compared, MetricError> {
        let (change, change_pct, trend) = match (value, &previous) {
            (Value::Undefined(_), _) => (
                None,
                Value::Undefined("the value is undefined".into()),
                None,
            ),
            (Value::Defined(_), Value::Undefined(reason)) => (
                None,
                Value::Undefined(format!("the previous value is undefined ({reason})")),
                None,
            ),
            (Value::Defined(now), Value::Defined(before)) => {
                let change = now
                    .checked_sub(*before)
                    .ok_or_else(|| MetricError::Overflow("change".into()))?;
                let change_pct = if before.is_zero() {
                    Value::Undefined("the previous value is 0".into())
                } else {
                    let pct = change
                        .checked_mul(Decimal::ONE_HUNDRED)
                        .and_then(|c| c.checked_div(before.abs()))
                        .ok_or_else(|| MetricError::Overflow("change in percent".into()))?;
                    Value::Defined(round(pct, precision))
                };
                (
                    Some(change.normalize()),
                    change_pct,
                    Some(trend(change, direction)),
                )
            }
        };
        Ok(Compared {
            previous,
            previous_inputs,
            change,
            change_pct,
            trend,
        })
    }
}

fn trend(change: Decimal, direction: Direction) -> Trend {
    if change.is_zero() {
        return Trend::Unchanged;
    }
    let up = change.is_sign_positive();
    match (direction, up) {
        (Direction::HigherIsBetter, true) | (Direction::LowerIsBetter, false) => Trend::Improved,
        _ => Trend::Worsened,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn window(start: &str, end: &str) -> Window {
        Window::new(ts(start), ts(end)).unwrap()
    }

    fn paris() -> TimeZone {
        TimeZone::get("Europe/Paris").unwrap()
    }

    fn previous(
        comparison: Comparison,
        w: Window,
        granularity: Option<Granularity>,
        tz: &TimeZone,
    ) -> (String, String) {
        let p = comparison.previous_window(&w, granularity, tz).unwrap();
        (p.start.to_string(), p.end.to_string())
    }

    fn pair(start: &str, end: &str) -> (String, String) {
        (start.to_owned(), end.to_owned())
    }

    #[test]
    fn a_fiscal_quarter_and_a_sunday_week_compare_with_the_bucket_before() {
        use crate::Calendar;
        use jiff::civil::Weekday;
        let new_york = TimeZone::get("America/New_York").unwrap();
        let calendar = Calendar::new(4, Weekday::Sunday).unwrap();
        // FY2025 Q1 in New York (April–June 2024, EDT) compares with FY2024 Q4
        // (January–March 2024, which starts on EST).
        let w = window("2024-04-01T04:00:00Z", "2024-10-01T04:00:00Z");
        let q = w
            .calendar_buckets(Granularity::Quarter, &new_york, &calendar)
            .unwrap();
        assert_eq!(
            previous(
                Comparison::PreviousPeriod,
                q[0],
                Some(Granularity::Quarter),
                &new_york
            ),
            pair("2024-01-01T05:00:00Z", "2024-04-01T04:00:00Z")
        );
        assert_eq!(
            previous(
                Comparison::PreviousPeriod,
                q[1],
                Some(Granularity::Quarter),
                &new_york
            ),
            (q[0].start.to_string(), q[0].end.to_string())
        );
        // The Sunday week of 10–16 March 2024 (DST starts on Sunday the 10th at 02:00)
        // compares with 3–9 March, on EST.
        let w = window("2024-03-10T05:00:00Z", "2024-03-17T04:00:00Z");
        let weeks = w
            .calendar_buckets(Granularity::Week, &new_york, &calendar)
            .unwrap();
        assert_eq!(weeks, vec![w]);
        assert_eq!(
            previous(
                Comparison::PreviousPeriod,
                w,
                Some(Granularity::Week),
                &new_york
            ),
            pair("2024-03-03T05:00:00Z", "2024-03-10T05:00:00Z")
        );
    }

    #[test]
    fn a_month_bucket_compares_with_the_previous_calendar_month() {
        let utc = TimeZone::UTC;
        // March (31 days) compares with February 2024 (29 days), not with 31 days before.
        let march = window("2024-03-01T00:00:00Z", "2024-04-01T00:00:00Z");
        assert_eq!(
            previous(
                Comparison::PreviousPeriod,
                march,
                Some(Granularity::Month),
                &utc
            ),
            pair("2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z")
        );
        // A bucket clipped by the window compares with the same part of the month before;
        // the 31st becomes the last day of a shorter month.
        let clipped = window("2024-03-15T00:00:00Z", "2024-03-31T00:00:00Z");
        assert_eq!(
            previous(
                Comparison::PreviousPeriod,
                clipped,
                Some(Granularity::Month),
                &utc
            ),
            pair("2024-02-15T00:00:00Z", "2024-02-29T00:00:00Z")
        );
    }

    #[test]
    fn a_quarter_a_week_a_day_and_a_year_bucket() {
        let utc = TimeZone::UTC;
        let q2 = window("2024-04-01T00:00:00Z", "2024-07-01T00:00:00Z");
        assert_eq!(
            previous(
                Comparison::PreviousPeriod,
                q2,
                Some(Granularity::Quarter),
                &utc
            ),
            pair("2024-01-01T00:00:00Z", "2024-04-01T00:00:00Z")
        );
        // Monday 2024-03-11 to Monday 03-18 → Monday 03-04 to Monday 03-11.
        let week = window("2024-03-11T00:00:00Z", "2024-03-18T00:00:00Z");
        assert_eq!(
            previous(
                Comparison::PreviousPeriod,
                week,
                Some(Granularity::Week),
                &utc
            ),
            pair("2024-03-04T00:00:00Z", "2024-03-11T00:00:00Z")
        );
        let day = window("2024-03-01T00:00:00Z", "2024-03-02T00:00:00Z");
        assert_eq!(
            previous(
                Comparison::PreviousPeriod,
                day,
                Some(Granularity::Day),
                &utc
            ),
            pair("2024-02-29T00:00:00Z", "2024-03-01T00:00:00Z")
        );
        let year = window("2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z");
        assert_eq!(
            previous(
                Comparison::PreviousPeriod,
                year,
                Some(Granularity::Year),
                &utc
            ),
            pair("2023-01-01T00:00:00Z", "2024-01-01T00:00:00Z")
        );
    }

    #[test]
    fn a_window_of_whole_months_compares_with_as_many_months_before_it() {
        // February + March 2024 (60 days) → December 2023 + January 2024 (62 days).
        let w = window("2024-02-01T00:00:00Z", "2024-04-01T00:00:00Z");
        assert_eq!(
            previous(Comparison::PreviousPeriod, w, None, &TimeZone::UTC),
            pair("2023-12-01T00:00:00Z", "2024-02-01T00:00:00Z")
        );
        // The same in Paris: local 1sts, across the change to summer time.
        let w = window("2024-02-29T23:00:00Z", "2024-04-30T22:00:00Z");
        assert_eq!(
            previous(Comparison::PreviousPeriod, w, None, &paris()),
            pair("2023-12-31T23:00:00Z", "2024-02-29T23:00:00Z")
        );
    }

    #[test]
    fn an_odd_window_compares_with_the_same_duration_or_days_before_it() {
        // 10 days from noon: exactly 240 hours before.
        let w = window("2024-03-10T12:00:00Z", "2024-03-20T12:00:00Z");
        assert_eq!(
            previous(Comparison::PreviousPeriod, w, None, &TimeZone::UTC),
            pair("2024-02-29T12:00:00Z", "2024-03-10T12:00:00Z")
        );
        // Local midnight to local midnight in Paris across the change to summer time (the
        // week of Monday 25 March 2024 lasts 167 hours): the 7 calendar days before, which
        // last 168 hours.
        let w = window("2024-03-24T23:00:00Z", "2024-03-31T22:00:00Z");
        assert_eq!(
            previous(Comparison::PreviousPeriod, w, None, &paris()),
            pair("2024-03-17T23:00:00Z", "2024-03-24T23:00:00Z")
        );
        // An empty window compares with an empty window.
        let w = window("2024-03-10T12:00:00Z", "2024-03-10T12:00:00Z");
        assert_eq!(
            previous(Comparison::PreviousPeriod, w, None, &TimeZone::UTC),
            pair("2024-03-10T12:00:00Z", "2024-03-10T12:00:00Z")
        );
    }

    #[test]
    fn dst_months_in_paris_start_at_local_midnight() {
        let tz = paris();
        // April 2024 in Paris (+02:00) compares with March (starts +01:00, 743 hours).
        let april = window("2024-03-31T22:00:00Z", "2024-04-30T22:00:00Z");
        assert_eq!(
            previous(
                Comparison::PreviousPeriod,
                april,
                Some(Granularity::Month),
                &tz
            ),
            pair("2024-02-29T23:00:00Z", "2024-03-31T22:00:00Z")
        );
        // November 2024 (+01:00) compares with October (starts +02:00, 745 hours: the last
        // Sunday, 27 October, has 25).
        let november = window("2024-10-31T23:00:00Z", "2024-11-30T23:00:00Z");
        assert_eq!(
            previous(
                Comparison::PreviousPeriod,
                november,
                Some(Granularity::Month),
                &tz
            ),
            pair("2024-09-30T22:00:00Z", "2024-10-31T23:00:00Z")
        );
        // Monday 1 April's week compares with the week holding the 23-hour Sunday.
        let week = window("2024-03-31T22:00:00Z", "2024-04-07T22:00:00Z");
        assert_eq!(
            previous(
                Comparison::PreviousPeriod,
                week,
                Some(Granularity::Week),
                &tz
            ),
            pair("2024-03-24T23:00:00Z", "2024-03-31T22:00:00Z")
        );
        // A local time of day keeps its local time across the change: 12:00 CEST on
        // 2024-04-03 → 12:00 CET on 2024-03-03.
        let w = window("2024-04-03T10:00:00Z", "2024-04-04T10:00:00Z");
        assert_eq!(
            previous(Comparison::PreviousPeriod, w, Some(Granularity::Month), &tz),
            pair("2024-03-03T11:00:00Z", "2024-03-04T11:00:00Z")
        );
    }

    #[test]
    fn a_year_earlier_maps_29_february_to_28_february() {
        let utc = TimeZone::UTC;
        let leap_day = window("2024-02-29T00:00:00Z", "2024-03-01T00:00:00Z");
        assert_eq!(
            previous(Comparison::PreviousYear, leap_day, None, &utc),
            pair("2023-02-28T00:00:00Z", "2023-03-01T00:00:00Z")
        );
        let february = window("2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z");
        assert_eq!(
            previous(
                Comparison::PreviousYear,
                february,
                Some(Granularity::Month),
                &utc
            ),
            pair("2023-02-01T00:00:00Z", "2023-03-01T00:00:00Z")
        );
        // Same dates, not the same weekday: Monday 2024-03-11 → Saturday 2023-03-11.
        let week = window("2024-03-11T00:00:00Z", "2024-03-18T00:00:00Z");
        assert_eq!(
            previous(
                Comparison::PreviousYear,
                week,
                Some(Granularity::Week),
                &utc
            ),
            pair("2023-03-11T00:00:00Z", "2023-03-18T00:00:00Z")
        );
        // In Paris, local midnights stay local midnights (2024-04-01 is +02:00, 2023-04-01
        // too; 2024-03-01 is +01:00).
        let w = window("2024-02-29T23:00:00Z", "2024-03-31T22:00:00Z");
        assert_eq!(
            previous(Comparison::PreviousYear, w, None, &paris()),
            pair("2023-02-28T23:00:00Z", "2023-03-31T22:00:00Z")
        );
    }

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn compared(value: Value, previous: Value, direction: Direction) -> Compared {
        Compared::new(&value, previous, Inputs::new(), direction, 2).unwrap()
    }

    #[test]
    fn change_is_value_minus_previous_as_answered() {
        // 3 of 4 won (75) after 2 of 3 (66.67 as answered): 8.33 points, 8.33 / 66.67 ×
        // 100 = 12.4943… → 12.49 %.
        let c = compared(
            Value::Defined(d("75")),
            Value::Defined(d("66.67")),
            Direction::HigherIsBetter,
        );
        assert_eq!(c.change, Some(d("8.33")));
        assert_eq!(c.change_pct, Value::Defined(d("12.49")));
        assert_eq!(c.trend, Some(Trend::Improved));
        // CAC from 500 to 400: −100, −20 %, good news for a lower-is-better metric.
        let c = compared(
            Value::Defined(d("400")),
            Value::Defined(d("500")),
            Direction::LowerIsBetter,
        );
        assert_eq!(c.change, Some(d("-100")));
        assert_eq!(c.change_pct, Value::Defined(d("-20")));
        assert_eq!(c.trend, Some(Trend::Improved));
        // A negative previous value: from −200 to −100 is +100, +50 % of |−200|.
        let c = compared(
            Value::Defined(d("-100")),
            Value::Defined(d("-200")),
            Direction::LowerIsBetter,
        );
        assert_eq!(c.change, Some(d("100")));
        assert_eq!(c.change_pct, Value::Defined(d("50")));
        assert_eq!(c.trend, Some(Trend::Worsened));
        // Half away from zero: 1 / 3 → 33.333… → 33.33; −2 / 3 → −66.67.
        let c = compared(
            Value::Defined(d("4")),
            Value::Defined(d("3")),
            Direction::HigherIsBetter,
        );
        assert_eq!(c.change_pct, Value::Defined(d("33.33")));
        let c = compared(
            Value::Defined(d("1")),
            Value::Defined(d("3")),
            Direction::HigherIsBetter,
        );
        assert_eq!(c.change_pct, Value::Defined(d("-66.67")));
        assert_eq!(c.trend, Some(Trend::Worsened));
    }

    #[test]
    fn equal_values_are_unchanged_and_zero_or_undefined_previous_values_have_no_percent() {
        let c = compared(
            Value::Defined(d("12.5")),
            Value::Defined(d("12.50")),
            Direction::LowerIsBetter,
        );
        assert_eq!(c.change, Some(d("0")));
        assert_eq!(c.change_pct, Value::Defined(d("0")));
        assert_eq!(c.trend, Some(Trend::Unchanged));

        let c = compared(
            Value::Defined(d("300")),
            Value::Defined(d("0")),
            Direction::HigherIsBetter,
        );
        assert_eq!(c.change, Some(d("300")));
        assert_eq!(
            c.change_pct,
            Value::Undefined("the previous value is 0".into())
        );
        assert_eq!(c.trend, Some(Trend::Improved));

        let c = compared(
            Value::Defined(d("50")),
            Value::Undefined("no deals were closed".into()),
            Direction::HigherIsBetter,
        );
        assert_eq!(c.change, None);
        assert_eq!(
            c.change_pct,
            Value::Undefined("the previous value is undefined (no deals were closed)".into())
        );
        assert_eq!(c.trend, None);

        let c = compared(
            Value::Undefined("no deals were closed".into()),
            Value::Defined(d("50")),
            Direction::HigherIsBetter,
        );
        assert_eq!(c.change, None);
        assert_eq!(
            c.change_pct,
            Value::Undefined("the value is undefined".into())
        );
        assert_eq!(c.trend, None);
    }
}
