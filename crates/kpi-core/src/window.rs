//! Time windows `[start, end)`, calendar buckets cut in a time zone, and months(W) and
//! years(W) of METRICS.md.

use std::str::FromStr;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use rust_decimal::Decimal;

use crate::calendar::Calendar;
use crate::error::ComputeError;

/// A half-open time window `[start, end)`: an instant `t` is in it when `start ≤ t < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    /// First instant in the window.
    pub start: Timestamp,
    /// First instant after the window.
    pub end: Timestamp,
}

impl Window {
    /// A window; `end` must not be before `start`.
    pub fn new(start: Timestamp, end: Timestamp) -> Result<Self, ComputeError> {
        if end < start {
            return Err(ComputeError::invalid(
                "end",
                format!("end {end} is before start {start}"),
            ));
        }
        Ok(Self { start, end })
    }

    /// Whether `t` is in the window.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }

    /// Elapsed days (86 400 s each), exact.
    pub fn days(&self) -> Decimal {
        let d = self.end.duration_since(self.start);
        let nanos = Decimal::from_i128_with_scale(d.as_nanos(), 0);
        nanos / Decimal::from(86_400_000_000_000i64)
    }

    /// Splits the window into calendar buckets cut in `tz`; the first and last bucket are
    /// clipped to the window. Weeks start on Monday, quarters and years in January (see
    /// [`Window::calendar_buckets`] for a tenant's calendar).
    pub fn buckets(
        &self,
        granularity: Granularity,
        tz: &TimeZone,
    ) -> Result<Vec<Window>, ComputeError> {
        self.calendar_buckets(granularity, tz, &Calendar::default())
    }

    /// Splits the window into buckets of `calendar` cut in `tz`: weeks start on its week
    /// start, quarters and years on its fiscal year's months. The first and last bucket
    /// are clipped to the window.
    pub fn calendar_buckets(
        &self,
        granularity: Granularity,
        tz: &TimeZone,
        calendar: &Calendar,
    ) -> Result<Vec<Window>, ComputeError> {
        let mut out = Vec::new();
        if self.start >= self.end {
            return Ok(out);
        }
        let mut date = calendar.floor(granularity, self.start.to_zoned(tz.clone()).date());
        let mut cut = self.start;
        loop {
            let next_date = granularity.next(date).map_err(|e| {
                ComputeError::invalid("end", format!("window too long for calendar buckets: {e}"))
            })?;
            let next = next_date
                .to_zoned(tz.clone())
                .map_err(|e| ComputeError::invalid("time_zone", e.to_string()))?
                .timestamp();
            let bucket_end = next.min(self.end);
            if bucket_end > cut {
                out.push(Window {
                    start: cut,
                    end: bucket_end,
                });
            }
            if next >= self.end {
                return Ok(out);
            }
            cut = next;
            date = next_date;
        }
    }
}

/// Calendar bucket sizes for time series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    /// One calendar day.
    Day,
    /// Seven days from the week start (Monday unless the tenant's calendar says otherwise).
    Week,
    /// One calendar month.
    Month,
    /// Three months from the fiscal year's start (January–March, April–June, … for a
    /// calendar year).
    Quarter,
    /// Twelve months from the fiscal year's start month (a calendar year by default).
    Year,
}

impl Granularity {
    fn next(self, date: Date) -> Result<Date, jiff::Error> {
        date.checked_add(self.span())
    }

    /// One bucket's length in calendar units: a day, a week, a month, three months, a year.
    pub(crate) fn span(self) -> jiff::Span {
        match self {
            Granularity::Day => 1.day(),
            Granularity::Week => 1.week(),
            Granularity::Month => 1.month(),
            Granularity::Quarter => 3.months(),
            Granularity::Year => 1.year(),
        }
    }
}

impl FromStr for Granularity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "day" => Ok(Granularity::Day),
            "week" => Ok(Granularity::Week),
            "month" => Ok(Granularity::Month),
            "quarter" => Ok(Granularity::Quarter),
            "year" => Ok(Granularity::Year),
            _ => Err(format!(
                "unknown granularity `{s}`; expected day, week, month, quarter or year"
            )),
        }
    }
}

/// Parses an IANA time zone name (`Europe/Paris`); empty means UTC.
pub fn parse_time_zone(name: &str) -> Result<TimeZone, ComputeError> {
    if name.is_empty() || name == "UTC" {
        return Ok(TimeZone::UTC);
    }
    TimeZone::get(name).map_err(|_| {
        ComputeError::invalid(
            "time_zone",
            format!("`{name}` is not an IANA time zone name (e.g. Europe/Paris)"),
        )
    })
}

/// months(W) of METRICS.md: the number of calendar months when W starts and ends on the
/// first of a month at midnight in `tz`, otherwise days(W) × 12 / 365.
pub fn months_in(window: &Window, tz: &TimeZone) -> Decimal {
    if let Some(months) = whole_months(window, tz) {
        return Decimal::from(months);
    }
    window.days() * Decimal::from(12) / Decimal::from(365)
}

/// The local date of which `t` is the first instant in `tz`: midnight, or later where a DST
/// gap skips midnight on that day (America/Asuncion on 2017-10-01 starts at 01:00). `None`
/// when `t` is not the start of a local day.
pub(crate) fn day_started_at(t: Timestamp, tz: &TimeZone) -> Option<Date> {
    let date = t.to_zoned(tz.clone()).date();
    let day_start = date.to_zoned(tz.clone()).ok()?;
    (day_start.timestamp() == t).then_some(date)
}

/// The number of calendar months of `window` when it starts and ends at the first instant
/// of a local 1st of the month in `tz`; `None` otherwise.
pub(crate) fn whole_months(window: &Window, tz: &TimeZone) -> Option<i64> {
    let start = day_started_at(window.start, tz).filter(|d| d.day() == 1)?;
    let end = day_started_at(window.end, tz).filter(|d| d.day() == 1)?;
    Some(
        (i64::from(end.year()) * 12 + i64::from(end.month()))
            - (i64::from(start.year()) * 12 + i64::from(start.month())),
    )
}

/// years(W) = months(W) / 12.
pub fn years_in(window: &Window, tz: &TimeZone) -> Decimal {
    months_in(window, tz) / Decimal::from(12)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn calendar_months_and_fractional_months() {
        let w = Window::new(ts("2024-01-01T00:00:00Z"), ts("2024-04-01T00:00:00Z")).unwrap();
        assert_eq!(months_in(&w, &TimeZone::UTC), Decimal::from(3));
        assert_eq!(
            years_in(&w, &TimeZone::UTC),
            Decimal::from(3) / Decimal::from(12)
        );
        let w = Window::new(ts("2024-01-01T00:00:00Z"), ts("2024-01-31T00:00:00Z")).unwrap();
        // 30 days × 12 / 365
        assert_eq!(
            months_in(&w, &TimeZone::UTC),
            Decimal::from(360) / Decimal::from(365)
        );
    }

    #[test]
    fn a_month_whose_first_day_skips_midnight_is_one_month() {
        let asuncion = TimeZone::get("America/Asuncion").unwrap();
        // 2017-10-01 starts at 01:00 local (-03) in Asuncion; September starts at 00:00 (-04).
        let w = Window::new(ts("2017-09-01T04:00:00Z"), ts("2017-10-01T04:00:00Z")).unwrap();
        assert_eq!(months_in(&w, &asuncion), Decimal::ONE);
    }

    #[test]
    fn month_buckets_clip_to_window() {
        let w = Window::new(ts("2024-01-15T00:00:00Z"), ts("2024-03-10T00:00:00Z")).unwrap();
        let b = w.buckets(Granularity::Month, &TimeZone::UTC).unwrap();
        assert_eq!(b.len(), 3);
        assert_eq!(b[0].start, ts("2024-01-15T00:00:00Z"));
        assert_eq!(b[1].start, ts("2024-02-01T00:00:00Z"));
        assert_eq!(b[2].start, ts("2024-03-01T00:00:00Z"));
        assert_eq!(b[2].end, ts("2024-03-10T00:00:00Z"));
    }

    #[test]
    fn weeks_start_on_monday_and_dst_days_are_23_hours() {
        let paris = TimeZone::get("Europe/Paris").unwrap();
        // 2024-03-31 is a Sunday and the day Paris moves to summer time.
        let w = Window::new(ts("2024-03-29T23:00:00Z"), ts("2024-04-01T22:00:00Z")).unwrap();
        let days = w.buckets(Granularity::Day, &paris).unwrap();
        assert_eq!(days.len(), 3);
        assert_eq!(days[1].start, ts("2024-03-30T23:00:00Z"));
        assert_eq!(days[1].end, ts("2024-03-31T22:00:00Z"), "23-hour day");
        let weeks = w.buckets(Granularity::Week, &paris).unwrap();
        assert_eq!(weeks.len(), 2);
        assert_eq!(
            weeks[1].start,
            ts("2024-03-31T22:00:00Z"),
            "Monday 1 April, local midnight"
        );
    }

    #[test]
    fn quarters_and_years() {
        let w = Window::new(ts("2024-02-01T00:00:00Z"), ts("2025-02-01T00:00:00Z")).unwrap();
        let q = w.buckets(Granularity::Quarter, &TimeZone::UTC).unwrap();
        assert_eq!(q.len(), 5);
        assert_eq!(q[1].start, ts("2024-04-01T00:00:00Z"));
        let y = w.buckets(Granularity::Year, &TimeZone::UTC).unwrap();
        assert_eq!(y.len(), 2);
    }

    #[test]
    fn end_before_start_is_rejected() {
        assert!(Window::new(ts("2024-02-01T00:00:00Z"), ts("2024-01-01T00:00:00Z")).is_err());
    }
}
