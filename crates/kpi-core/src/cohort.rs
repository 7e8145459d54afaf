//! Cohorts: customers grouped by the period they were acquired in (the `cohort`
//! dimension, param `cohort_granularity`).
//!
//! A cohort is named by the label of its period in the tenant's calendar, cut in the
//! request's time zone — the same labels as buckets ([`Calendar::label`]): `2024-03` for a
//! month, `2024 Q1` (also accepted as `2024-Q1`) or `FY2025 Q1` in a fiscal calendar for a
//! quarter, `2024` or `FY2025` for a year. The engine resolves a label to the period's
//! window and hands the store the window ([`encode`]): a record is in the cohort when its
//! customer's `acquired_at` (the customer record's, so a customer who churns and comes
//! back stays in their first cohort) lies in it.

use std::str::FromStr;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::calendar::Calendar;
use crate::error::ComputeError;
use crate::window::{Granularity, Window};

/// The name of the parameter choosing the cohorts' period.
pub const COHORT_GRANULARITY_PARAM: &str = "cohort_granularity";

/// The periods cohorts are cut by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CohortGranularity {
    /// Customers acquired in the same calendar month.
    #[default]
    Month,
    /// … in the same (fiscal) quarter.
    Quarter,
    /// … in the same (fiscal) year.
    Year,
}

impl CohortGranularity {
    /// The values the parameter accepts.
    pub const NAMES: &'static [&'static str] = &["month", "quarter", "year"];

    /// The calendar granularity of the same period.
    pub fn granularity(self) -> Granularity {
        match self {
            CohortGranularity::Month => Granularity::Month,
            CohortGranularity::Quarter => Granularity::Quarter,
            CohortGranularity::Year => Granularity::Year,
        }
    }
}

impl FromStr for CohortGranularity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "" | "month" => Ok(CohortGranularity::Month),
            "quarter" => Ok(CohortGranularity::Quarter),
            "year" => Ok(CohortGranularity::Year),
            other => Err(format!(
                "unknown cohort granularity `{other}`; expected month, quarter or year"
            )),
        }
    }
}

/// How one request cuts cohorts: their period, time zone and calendar.
#[derive(Debug, Clone)]
pub struct Cohorts {
    /// The cohorts' period.
    pub granularity: CohortGranularity,
    /// The zone periods are cut in.
    pub time_zone: TimeZone,
    /// The tenant's calendar (fiscal quarters and years).
    pub calendar: Calendar,
}

impl Cohorts {
    fn at(&self, date: Date) -> Result<Timestamp, ComputeError> {
        date.to_zoned(self.time_zone.clone())
            .map(|z| z.timestamp())
            .map_err(|e| ComputeError::invalid("time_zone", e.to_string()))
    }

    /// The period holding `t`: the window of the cohort of a customer acquired at `t`.
    pub fn period_of(&self, t: Timestamp) -> Result<Window, ComputeError> {
        let g = self.granularity.granularity();
        let start = self
            .calendar
            .floor(g, t.to_zoned(self.time_zone.clone()).date());
        let end = start
            .checked_add(g.span())
            .map_err(|e| ComputeError::invalid("cohort", e.to_string()))?;
        Window::new(self.at(start)?, self.at(end)?)
    }

    /// The label of the cohort whose period is `w` (or holds `w.start`).
    pub fn label(&self, w: &Window) -> String {
        self.calendar
            .label(self.granularity.granularity(), w.start, &self.time_zone)
    }

    /// The period named by `label` (see the module docs); the reason when it names none.
    pub fn parse(&self, label: &str) -> Result<Window, String> {
        let wanted = label.trim().replace("-Q", " Q");
        let bad = || {
            format!(
                "`{label}` is not a {} cohort label (e.g. {})",
                CohortGranularity::NAMES[self.granularity as usize],
                match self.granularity {
                    CohortGranularity::Month => "2024-03",
                    CohortGranularity::Quarter => "2024 Q1, or FY2025 Q1 in a fiscal calendar",
                    CohortGranularity::Year => "2024, or FY2025 in a fiscal calendar",
                }
            )
        };
        let digits = wanted.trim_start_matches("FY");
        let year: i16 = digits
            .get(..4)
            .and_then(|y| y.parse().ok())
            .filter(|y| (1..=9998).contains(y))
            .ok_or_else(bad)?;
        let from = Date::new(year - 1, 1, 1).map_err(|_| bad())?;
        let to = Date::new(year + 1, 12, 31).map_err(|_| bad())?;
        let span = Window::new(
            self.at(from).map_err(|_| bad())?,
            self.at(to).map_err(|_| bad())?,
        )
        .map_err(|_| bad())?;
        let buckets = span
            .calendar_buckets(
                self.granularity.granularity(),
                &self.time_zone,
                &self.calendar,
            )
            .map_err(|_| bad())?;
        buckets
            .iter()
            .find(|b| self.label(b) == wanted)
            .map(|b| self.period_of(b.start).map_err(|_| bad()))
            .unwrap_or_else(|| Err(bad()))
    }

    /// Whole periods of `granularity` (the request's buckets; the cohorts' own period
    /// without one) from the end of the cohort's period to the end of `bucket`: 0 for the
    /// bucket the cohort's period ends with. `None` when the bucket ends before the
    /// cohort's period does.
    pub fn age(
        &self,
        cohort: &Window,
        bucket: &Window,
        granularity: Option<Granularity>,
    ) -> Option<i64> {
        if bucket.end < cohort.end {
            return None;
        }
        let g = granularity.unwrap_or(self.granularity.granularity());
        let c = cohort.end.to_zoned(self.time_zone.clone()).datetime();
        let b = bucket.end.to_zoned(self.time_zone.clone()).datetime();
        let months = || {
            let mut m = (i64::from(b.year()) * 12 + i64::from(b.month()))
                - (i64::from(c.year()) * 12 + i64::from(c.month()));
            if (b.day(), b.time()) < (c.day(), c.time()) {
                m -= 1;
            }
            m
        };
        let days = || (bucket.end.as_second() - cohort.end.as_second()).div_euclid(86_400);
        Some(match g {
            Granularity::Day => days(),
            Granularity::Week => days() / 7,
            Granularity::Month => months(),
            Granularity::Quarter => months() / 3,
            Granularity::Year => months() / 12,
        })
    }
}

/// How the engine hands a cohort to the store in a scope's filters: its period's window
/// as `start/end` (RFC 3339 instants).
pub fn encode(w: &Window) -> String {
    format!("{}/{}", w.start, w.end)
}

/// The window of an [`encode`]d cohort filter (`None`: not one).
pub fn decode(text: &str) -> Option<Window> {
    let (a, b) = text.split_once('/')?;
    Window::new(a.parse().ok()?, b.parse().ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::Weekday;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn cohorts(g: CohortGranularity, tz: &str, fiscal: u8) -> Cohorts {
        Cohorts {
            granularity: g,
            time_zone: TimeZone::get(tz).unwrap(),
            calendar: Calendar::new(fiscal, Weekday::Monday).unwrap(),
        }
    }

    #[test]
    fn a_month_cohort_is_cut_in_the_time_zone() {
        let c = cohorts(CohortGranularity::Month, "Europe/Paris", 1);
        // 23:30 UTC on 31 March is 1 April in Paris.
        let w = c.period_of(ts("2024-03-31T23:30:00Z")).unwrap();
        assert_eq!(w.start, ts("2024-03-31T22:00:00Z"));
        assert_eq!(w.end, ts("2024-04-30T22:00:00Z"));
        assert_eq!(c.label(&w), "2024-04");
        assert_eq!(c.parse("2024-04").unwrap(), w);
        assert!(c.parse("2024-13").is_err());
        assert!(c.parse("April").is_err());
    }

    #[test]
    fn quarter_and_year_cohorts_follow_the_fiscal_calendar() {
        let c = cohorts(CohortGranularity::Quarter, "UTC", 4);
        let w = c.period_of(ts("2024-05-10T00:00:00Z")).unwrap();
        assert_eq!(
            (w.start, w.end),
            (ts("2024-04-01T00:00:00Z"), ts("2024-07-01T00:00:00Z"))
        );
        assert_eq!(c.label(&w), "FY2025 Q1");
        assert_eq!(c.parse("FY2025 Q1").unwrap(), w);
        let q = cohorts(CohortGranularity::Quarter, "UTC", 1);
        assert_eq!(q.parse("2024-Q2").unwrap(), q.parse("2024 Q2").unwrap());
        let y = cohorts(CohortGranularity::Year, "UTC", 1);
        let w = y.parse("2024").unwrap();
        assert_eq!(
            (w.start, w.end),
            (ts("2024-01-01T00:00:00Z"), ts("2025-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn ages_count_whole_buckets_after_the_cohorts_period() {
        let c = cohorts(CohortGranularity::Month, "UTC", 1);
        let march = c.parse("2024-03").unwrap();
        let bucket = |a: &str, b: &str| Window::new(ts(a), ts(b)).unwrap();
        let feb = bucket("2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z");
        let mar = bucket("2024-03-01T00:00:00Z", "2024-04-01T00:00:00Z");
        let jun = bucket("2024-06-01T00:00:00Z", "2024-07-01T00:00:00Z");
        assert_eq!(c.age(&march, &feb, Some(Granularity::Month)), None);
        assert_eq!(c.age(&march, &mar, Some(Granularity::Month)), Some(0));
        assert_eq!(c.age(&march, &jun, Some(Granularity::Month)), Some(3));
        assert_eq!(decode(&encode(&march)), Some(march));
    }
}
