//! A tenant's calendar: the month its fiscal year starts and the day its weeks start,
//! which decide where quarter, year and week buckets begin, and how a bucket is labelled.
//!
//! # Fiscal years
//!
//! A fiscal year is twelve calendar months from the 1st of its start month; its quarters
//! are three months each from there. A fiscal year is named by the calendar year in which
//! it **ends** (the usual US convention): with an April start, FY2025 runs from 1 April
//! 2024 to 31 March 2025, and its first quarter (`FY2025 Q1`) is April–June 2024. With a
//! January start the fiscal year is the calendar year and labels drop the `FY`.
//!
//! Whole months stay calendar months whatever the fiscal start (months(W) counts them),
//! and a fiscal year is 12 of them.
//!
//! # Labels
//!
//! | granularity | label | example |
//! |---|---|---|
//! | day | the local date | `2025-03-14` |
//! | week | year and week number, weeks numbered as ISO 8601 does but from the week start: week 1 is the first week whose fourth day falls in the year (with a Monday start, exactly the ISO week) | `2025-W10` |
//! | month | year and month | `2025-03` |
//! | quarter | fiscal year and quarter | `FY2025 Q1` (calendar years: `2025 Q1`) |
//! | year | fiscal year | `FY2025` (calendar years: `2025`) |
//!
//! A bucket clipped by the window is labelled as the whole period it belongs to.

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use crate::error::FieldViolation;
use crate::window::Granularity;

/// Where a tenant's fiscal years and weeks start. The default is the calendar year and
/// Monday weeks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Calendar {
    fiscal_year_start_month: i8,
    week_start: Weekday,
}

impl Default for Calendar {
    fn default() -> Self {
        Self {
            fiscal_year_start_month: 1,
            week_start: Weekday::Monday,
        }
    }
}

impl Calendar {
    /// A calendar whose fiscal year starts on the 1st of `fiscal_year_start_month`
    /// (1–12) and whose weeks start on `week_start`.
    pub fn new(fiscal_year_start_month: u8, week_start: Weekday) -> Result<Self, FieldViolation> {
        if !(1..=12).contains(&fiscal_year_start_month) {
            return Err(FieldViolation::new(
                "fiscal_year_start_month",
                format!("{fiscal_year_start_month} is not a month; expected 1 (January) to 12"),
            ));
        }
        Ok(Self {
            fiscal_year_start_month: fiscal_year_start_month as i8,
            week_start,
        })
    }

    /// The month (1–12) the fiscal year starts in.
    pub fn fiscal_year_start_month(&self) -> u8 {
        self.fiscal_year_start_month as u8
    }

    /// The day weeks start on.
    pub fn week_start(&self) -> Weekday {
        self.week_start
    }

    /// The first day of the period of `granularity` that holds `date`.
    pub(crate) fn floor(&self, granularity: Granularity, date: Date) -> Date {
        match granularity {
            Granularity::Day => date,
            Granularity::Week => {
                let back = (date.weekday().to_monday_zero_offset()
                    - self.week_start.to_monday_zero_offset())
                .rem_euclid(7);
                date.checked_sub(i64::from(back).days()).unwrap_or(date)
            }
            Granularity::Month => date.first_of_month(),
            Granularity::Quarter => {
                let (fiscal_year, month) = self.fiscal_month(date);
                self.fiscal_month_start(fiscal_year, month / 3 * 3)
                    .unwrap_or(date)
            }
            Granularity::Year => {
                let (fiscal_year, _) = self.fiscal_month(date);
                self.fiscal_month_start(fiscal_year, 0).unwrap_or(date)
            }
        }
    }

    /// The fiscal year (named by the calendar year it ends in) holding `date`, and the
    /// month's place in it (0 = the start month … 11).
    fn fiscal_month(&self, date: Date) -> (i16, i8) {
        let since_start = (date.month() - self.fiscal_year_start_month).rem_euclid(12);
        let start_year = if date.month() >= self.fiscal_year_start_month {
            date.year()
        } else {
            date.year() - 1
        };
        let fiscal_year = if self.fiscal_year_start_month == 1 {
            start_year
        } else {
            start_year + 1
        };
        (fiscal_year, since_start)
    }

    /// The 1st of the month `month` (0–11) of fiscal year `fiscal_year`.
    fn fiscal_month_start(&self, fiscal_year: i16, month: i8) -> Option<Date> {
        let start_year = if self.fiscal_year_start_month == 1 {
            fiscal_year
        } else {
            fiscal_year - 1
        };
        let months = i32::from(start_year) * 12 + i32::from(self.fiscal_year_start_month - 1);
        let months = months + i32::from(month);
        Date::new(
            i16::try_from(months.div_euclid(12)).ok()?,
            (months.rem_euclid(12) + 1) as i8,
            1,
        )
        .ok()
    }

    /// The label of the bucket of `granularity` holding `t` in `tz` (see the module docs).
    pub fn label(&self, granularity: Granularity, t: Timestamp, tz: &TimeZone) -> String {
        let date = self.floor(granularity, t.to_zoned(tz.clone()).date());
        let fiscal = if self.fiscal_year_start_month == 1 {
            ""
        } else {
            "FY"
        };
        match granularity {
            Granularity::Day => date.to_string(),
            Granularity::Week => {
                let fourth = date.checked_add(3.days()).unwrap_or(date);
                let week = (fourth.day_of_year() - 1) / 7 + 1;
                format!("{:04}-W{week:02}", fourth.year())
            }
            Granularity::Month => format!("{:04}-{:02}", date.year(), date.month()),
            Granularity::Quarter => {
                let (fiscal_year, month) = self.fiscal_month(date);
                format!("{fiscal}{fiscal_year:04} Q{}", month / 3 + 1)
            }
            Granularity::Year => format!("{fiscal}{:04}", self.fiscal_month(date).0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::Window;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn april() -> Calendar {
        Calendar::new(4, Weekday::Monday).unwrap()
    }

    #[test]
    fn april_fiscal_quarters_start_on_april_july_october_january() {
        let w = Window::new(ts("2024-03-15T00:00:00Z"), ts("2025-04-15T00:00:00Z")).unwrap();
        let q = w
            .calendar_buckets(Granularity::Quarter, &TimeZone::UTC, &april())
            .unwrap();
        let starts: Vec<String> = q.iter().map(|b| b.start.to_string()).collect();
        assert_eq!(
            starts,
            [
                "2024-03-15T00:00:00Z", // clipped: FY2024 Q4 (January–March 2024)
                "2024-04-01T00:00:00Z",
                "2024-07-01T00:00:00Z",
                "2024-10-01T00:00:00Z",
                "2025-01-01T00:00:00Z",
                "2025-04-01T00:00:00Z",
            ]
        );
        let labels: Vec<String> = q
            .iter()
            .map(|b| april().label(Granularity::Quarter, b.start, &TimeZone::UTC))
            .collect();
        assert_eq!(
            labels,
            [
                "FY2024 Q4",
                "FY2025 Q1",
                "FY2025 Q2",
                "FY2025 Q3",
                "FY2025 Q4",
                "FY2026 Q1"
            ]
        );
        let y = w
            .calendar_buckets(Granularity::Year, &TimeZone::UTC, &april())
            .unwrap();
        assert_eq!(y.len(), 3);
        assert_eq!(y[1].start, ts("2024-04-01T00:00:00Z"));
        assert_eq!(y[2].start, ts("2025-04-01T00:00:00Z"));
        assert_eq!(
            april().label(Granularity::Year, y[1].start, &TimeZone::UTC),
            "FY2025"
        );
    }

    #[test]
    fn fiscal_quarters_cut_at_local_midnight_in_a_dst_zone() {
        let new_york = TimeZone::get("America/New_York").unwrap();
        // New York is on EDT (-04) on 1 April and 1 July, on EST (-05) on 1 January.
        let w = Window::new(ts("2024-01-01T05:00:00Z"), ts("2024-10-01T04:00:00Z")).unwrap();
        let q = w
            .calendar_buckets(Granularity::Quarter, &new_york, &april())
            .unwrap();
        let edges: Vec<(String, String)> = q
            .iter()
            .map(|b| (b.start.to_string(), b.end.to_string()))
            .collect();
        assert_eq!(
            edges,
            [
                ("2024-01-01T05:00:00Z".into(), "2024-04-01T04:00:00Z".into()),
                ("2024-04-01T04:00:00Z".into(), "2024-07-01T04:00:00Z".into()),
                ("2024-07-01T04:00:00Z".into(), "2024-10-01T04:00:00Z".into()),
            ]
        );
        // 31 March 2024 23:30 in New York is 1 April 03:30 UTC: still FY2024 Q4.
        assert_eq!(
            april().label(Granularity::Quarter, ts("2024-04-01T03:30:00Z"), &new_york),
            "FY2024 Q4"
        );
        assert_eq!(
            april().label(Granularity::Quarter, q[1].start, &new_york),
            "FY2025 Q1"
        );
    }

    #[test]
    fn a_fiscal_year_starting_in_january_is_the_calendar_year() {
        let calendar = Calendar::default();
        let t = ts("2025-05-10T12:00:00Z");
        assert_eq!(
            calendar.label(Granularity::Quarter, t, &TimeZone::UTC),
            "2025 Q2"
        );
        assert_eq!(calendar.label(Granularity::Year, t, &TimeZone::UTC), "2025");
        assert_eq!(
            calendar.label(Granularity::Month, t, &TimeZone::UTC),
            "2025-05"
        );
        assert_eq!(
            calendar.label(Granularity::Day, t, &TimeZone::UTC),
            "2025-05-10"
        );
        // A December start: FY2026 runs from 1 December 2025 to 30 November 2026.
        let december = Calendar::new(12, Weekday::Monday).unwrap();
        let t = ts("2025-12-01T00:00:00Z");
        assert_eq!(
            december.label(Granularity::Quarter, t, &TimeZone::UTC),
            "FY2026 Q1"
        );
        assert_eq!(
            december.label(
                Granularity::Quarter,
                ts("2025-11-30T00:00:00Z"),
                &TimeZone::UTC
            ),
            "FY2025 Q4"
        );
    }

    #[test]
    fn sunday_weeks_start_on_sunday_and_are_numbered_from_their_fourth_day() {
        let sunday = Calendar::new(1, Weekday::Sunday).unwrap();
        // 2025-03-12 is a Wednesday; its Sunday week runs 9–15 March.
        let w = Window::new(ts("2025-03-12T00:00:00Z"), ts("2025-03-20T00:00:00Z")).unwrap();
        let weeks = w
            .calendar_buckets(Granularity::Week, &TimeZone::UTC, &sunday)
            .unwrap();
        assert_eq!(weeks[1].start, ts("2025-03-16T00:00:00Z"));
        // Wednesday 12 March is day 71 of 2025: week (71 − 1) / 7 + 1 = 11.
        assert_eq!(
            sunday.label(Granularity::Week, weeks[0].start, &TimeZone::UTC),
            "2025-W11"
        );
        // Monday weeks are ISO weeks: 2025-03-10 is ISO week 11, 2024-12-30 is 2025-W01.
        let monday = Calendar::default();
        assert_eq!(
            monday.label(
                Granularity::Week,
                ts("2025-03-12T00:00:00Z"),
                &TimeZone::UTC
            ),
            "2025-W11"
        );
        assert_eq!(
            monday.label(
                Granularity::Week,
                ts("2024-12-31T00:00:00Z"),
                &TimeZone::UTC
            ),
            "2025-W01"
        );
    }

    #[test]
    fn a_month_outside_1_to_12_is_refused() {
        assert!(Calendar::new(0, Weekday::Monday).is_err());
        assert!(Calendar::new(13, Weekday::Monday).is_err());
    }
}
