//! Property tests of kpi-core's exact building blocks: the rounding rule, decimal parsing and
//! calendar buckets. Each property is checked against an independent oracle (integer
//! arithmetic on the mantissa, the local calendar read back from jiff), so a wrong rounding
//! mode, a lost digit or a skipped bucket makes it fail.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use kpi_core::engine::parse_decimal;
use kpi_core::{months_in, round, Decimal, Granularity, Window};
use proptest::prelude::*;
use proptest::test_runner::Config;

// ---------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------

/// Default case count (256, or `PROPTEST_CASES`), no regression files written.
fn config() -> Config {
    Config {
        failure_persistence: None,
        ..Config::default()
    }
}

/// Any decimal rust_decimal can hold: every mantissa, sign and scale 0..=28.
fn any_decimal() -> impl Strategy<Value = Decimal> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<bool>(),
        0u32..=28,
    )
        .prop_map(|(lo, mid, hi, negative, scale)| {
            Decimal::from_parts(lo, mid, hi, negative, scale)
        })
}

/// Decimals with few significant digits, where rounding midpoints (`…5`) are frequent.
fn short_decimal() -> impl Strategy<Value = Decimal> {
    (-100_000i64..=100_000, 0u32..=8).prop_map(|(m, s)| Decimal::new(m, s))
}

/// A value and the places to round it to: any decimal at any places, a short decimal at
/// few places, or an exact midpoint (`…5` one place past `p`), where rounding modes differ.
fn rounding_case() -> impl Strategy<Value = (Decimal, u32)> {
    prop_oneof![
        (any_decimal(), 0u32..=28),
        (short_decimal(), 0u32..=8),
        (any::<i64>(), 0u32..=27).prop_map(|(q, p)| {
            let m = i128::from(q) * 10 + if q < 0 { -5 } else { 5 };
            (Decimal::from_i128_with_scale(m, p + 1), p)
        }),
        // Tiny values of either sign, negated zeros included: round to zero, not to −0.
        (-9i64..=9, 0u32..=28, 0u32..=28).prop_map(|(m, s, p)| (-Decimal::new(m, s), p)),
    ]
}

/// 10^exp as an i128 (exp ≤ 28 fits easily).
fn pow10(exp: u32) -> i128 {
    10i128.pow(exp)
}

/// `value`'s mantissa written at `scale` (≥ its own scale): the integer `value × 10^scale`.
fn mantissa_at(value: Decimal, scale: u32) -> i128 {
    assert!(value.scale() <= scale);
    value.mantissa() * pow10(scale - value.scale())
}

// ---------------------------------------------------------------------------------------
// Rounding
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// Rounding twice to the same places changes nothing.
    #[test]
    fn rounding_is_stable((x, p) in rounding_case()) {
        let once = round(x, p);
        let twice = round(once, p);
        prop_assert_eq!(twice, once);
        prop_assert_eq!(twice.scale(), once.scale(), "same representation, not just value");
    }

    /// The answer has at most `p` decimal places, no trailing zeros, and is never `-0`.
    #[test]
    fn rounding_keeps_at_most_p_places((x, p) in rounding_case()) {
        let r = round(x, p);
        prop_assert!(r.scale() <= p, "round({}, {}) = {} has scale {}", x, p, r, r.scale());
        prop_assert!(
            !(r.is_zero() && r.is_sign_negative()),
            "round({}, {}) is a negative zero, printed {}", x, p, r
        );
        if r.scale() > 0 {
            prop_assert!(r.mantissa() % 10 != 0, "round({}, {}) = {} keeps a trailing zero", x, p, r);
        }
    }

    /// |round(x, p) − x| ≤ ½ × 10^−p, checked in exact integer arithmetic at x's scale.
    #[test]
    fn rounding_moves_at_most_half_a_unit((x, p) in rounding_case()) {
        let r = round(x, p);
        let s = x.scale().max(r.scale());
        let diff = (mantissa_at(r, s) - mantissa_at(x, s)).abs();
        // half a unit of the p-th place, at scale s: 10^(s−p) / 2, i.e. 2·diff ≤ 10^(s−p)
        let unit = if s >= p { pow10(s - p) } else { 1 };
        prop_assert!(
            2 * diff <= unit,
            "round({}, {}) = {} is {} units (scale {}) away; at most half of {}",
            x, p, r, diff, s, unit
        );
    }

    /// Half away from zero is symmetric: round(−x) = −round(x).
    #[test]
    fn rounding_is_symmetric((x, p) in rounding_case()) {
        prop_assert_eq!(round(-x, p), -round(x, p));
    }

    /// Against an integer oracle: drop the extra digits of the mantissa, and step away from
    /// zero when what was dropped is at least half a unit.
    #[test]
    fn rounding_matches_half_away_from_zero_oracle((x, p) in rounding_case()) {
        let expected = if x.scale() <= p {
            x
        } else {
            let div = pow10(x.scale() - p);
            let m = x.mantissa();
            let mut q = m / div;
            let rest = (m % div).abs();
            if 2 * rest >= div {
                q += m.signum();
            }
            Decimal::from_i128_with_scale(q, p)
        };
        prop_assert_eq!(round(x, p), expected, "round({}, {})", x, p);
    }
}

// ---------------------------------------------------------------------------------------
// parse_decimal
// ---------------------------------------------------------------------------------------

/// Spellings of NaN and infinity that decimal or float parsers elsewhere accept.
fn not_a_number() -> impl Strategy<Value = String> {
    let word = prop::sample::select(vec![
        "NaN", "nan", "NAN", "sNaN", "inf", "Inf", "INF", "infinity", "Infinity", "∞",
    ]);
    let sign = prop::sample::select(vec!["", "+", "-"]);
    let pad = prop::sample::select(vec!["", " ", "\t"]);
    (pad.clone(), sign, word, pad).prop_map(|(a, s, w, b)| format!("{a}{s}{w}{b}"))
}

/// A decimal text followed by an exponent (`1.5e3`, `-2E-7`, `0e+0`).
fn with_exponent() -> impl Strategy<Value = String> {
    (
        short_decimal(),
        prop::sample::select(vec!["e", "E"]),
        prop::sample::select(vec!["", "+", "-"]),
        0u32..100,
    )
        .prop_map(|(m, e, sign, exp)| format!("{m}{e}{sign}{exp}"))
}

proptest! {
    #![proptest_config(config())]

    /// Every decimal's canonical text parses back to the same value and the same scale.
    #[test]
    fn parse_decimal_round_trips_to_string(x in any_decimal()) {
        let text = x.to_string();
        let parsed = parse_decimal(&text);
        prop_assert_eq!(parsed.clone(), Ok(x), "text {:?}", text);
        let parsed = parsed.unwrap();
        prop_assert_eq!(parsed.to_string(), text, "scale is kept");
    }

    /// Surrounding blanks, and an explicit `+` on a non-negative value, are accepted and
    /// change nothing.
    #[test]
    fn parse_decimal_accepts_padding_and_plus(x in any_decimal()) {
        let text = if x.is_sign_negative() {
            format!(" \n{x}\t")
        } else {
            format!("  +{x}\t")
        };
        prop_assert_eq!(parse_decimal(&text), Ok(x), "text {:?}", text);
    }

    /// Exponents are refused, even where the value would be exact.
    #[test]
    fn parse_decimal_rejects_exponents(text in with_exponent()) {
        prop_assert!(parse_decimal(&text).is_err(), "accepted {:?}", text);
    }

    /// NaN and infinity in any spelling are refused.
    #[test]
    fn parse_decimal_rejects_nan_and_infinity(text in not_a_number()) {
        prop_assert!(parse_decimal(&text).is_err(), "accepted {:?}", text);
    }

    /// Empty and blank strings are refused.
    #[test]
    fn parse_decimal_rejects_empty(text in "[ \t\r\n]{0,6}") {
        prop_assert!(parse_decimal(&text).is_err(), "accepted {:?}", text);
    }

    /// Whatever it accepts is plain decimal notation: an optional sign, digits, at most one
    /// point, and it means what `Decimal::from_str_exact` says it means.
    #[test]
    fn parse_decimal_accepts_only_plain_notation(text in "[ +\\-0-9.eEnaifNI_,x]{0,12}") {
        if let Ok(value) = parse_decimal(&text) {
            let t = text.trim();
            let body = t.strip_prefix(['+', '-']).unwrap_or(t);
            prop_assert!(
                body.bytes().all(|b| b.is_ascii_digit() || b == b'.'),
                "accepted {:?}", text
            );
            prop_assert!(body.bytes().filter(|b| *b == b'.').count() <= 1, "accepted {:?}", text);
            prop_assert!(body.bytes().any(|b| b.is_ascii_digit()), "accepted {:?}", text);
            prop_assert_eq!(Some(value), Decimal::from_str_exact(t).ok());
        }
    }
}

// ---------------------------------------------------------------------------------------
// Window::buckets
// ---------------------------------------------------------------------------------------

/// The zones buckets are cut in: UTC, two zones whose DST changes at 02:00/03:00, one whose
/// DST changed at midnight (local midnight did not exist some days), and one with a
/// half-hour offset.
fn time_zone() -> impl Strategy<Value = (&'static str, TimeZone)> {
    prop::sample::select(vec![
        "UTC",
        "Europe/Paris",
        "America/New_York",
        "America/Sao_Paulo",
        "Asia/Kolkata",
    ])
    .prop_map(|name| {
        let tz = if name == "UTC" {
            TimeZone::UTC
        } else {
            TimeZone::get(name).expect("bundled time zone")
        };
        (name, tz)
    })
}

/// Zones for the months(W) property: UTC, DST changes at 02:00/03:00, DST changes at
/// midnight that never fall on a 1st in the years tried (Sao Paulo), a half-hour offset.
/// America/Asuncion skips midnight on 2017-10-01: a month there starts at 01:00.
fn month_zones() -> impl Strategy<Value = TimeZone> {
    prop::sample::select(vec![
        "UTC",
        "Europe/Paris",
        "America/New_York",
        "America/Sao_Paulo",
        "Asia/Kolkata",
        "America/Asuncion",
    ])
    .prop_map(|name| TimeZone::get(name).expect("bundled time zone"))
}

fn granularity() -> impl Strategy<Value = Granularity> {
    prop::sample::select(vec![
        Granularity::Day,
        Granularity::Week,
        Granularity::Month,
        Granularity::Quarter,
        Granularity::Year,
    ])
}

/// Longest window tried per granularity, in seconds (keeps bucket counts near 100).
fn max_len(g: Granularity) -> i64 {
    const DAY: i64 = 86_400;
    match g {
        Granularity::Day => 100 * DAY,
        Granularity::Week => 2 * 365 * DAY,
        Granularity::Month => 8 * 365 * DAY,
        Granularity::Quarter => 25 * 365 * DAY,
        Granularity::Year => 80 * 365 * DAY,
    }
}

/// The oracle's calendar: the first day of the bucket holding `date`.
fn floor(g: Granularity, date: Date) -> Date {
    match g {
        Granularity::Day => date,
        Granularity::Week => date
            .checked_sub(i64::from(date.weekday().to_monday_zero_offset()).days())
            .expect("in range"),
        Granularity::Month => Date::new(date.year(), date.month(), 1).expect("valid"),
        Granularity::Quarter => {
            Date::new(date.year(), (date.month() - 1) / 3 * 3 + 1, 1).expect("valid")
        }
        Granularity::Year => Date::new(date.year(), 1, 1).expect("valid"),
    }
}

/// The oracle's calendar: the first day of the bucket after the one starting on `first`.
fn next(g: Granularity, first: Date) -> Date {
    let span = match g {
        Granularity::Day => 1.day(),
        Granularity::Week => 1.week(),
        Granularity::Month => 1.month(),
        Granularity::Quarter => 3.months(),
        Granularity::Year => 1.year(),
    };
    first.checked_add(span).expect("in range")
}

/// Whether `t` is the first instant of its local day in `tz`: the instant one nanosecond
/// earlier falls on an earlier date. (Midnight itself when it exists; the end of the gap
/// when a DST change skips midnight.)
fn starts_local_day(t: Timestamp, tz: &TimeZone) -> bool {
    let before = t.checked_sub(1.nanosecond()).expect("in range");
    before.to_zoned(tz.clone()).date() < t.to_zoned(tz.clone()).date()
}

/// A window starting between 1990 and 2060, sometimes at a local midnight, sometimes empty.
fn window_in(
    tz: TimeZone,
    g: Granularity,
) -> impl Strategy<Value = (Window, TimeZone, Granularity)> {
    (
        631_152_000i64..2_840_140_800,
        prop_oneof![Just(0i32), 0i32..1_000_000_000],
        any::<bool>(),
        prop_oneof![1 => Just(0i64), 12 => 0i64..=max_len(g)],
    )
        .prop_map(move |(secs, nanos, at_midnight, len)| {
            let mut start = Timestamp::new(secs, nanos).expect("in range");
            if at_midnight {
                start = start
                    .to_zoned(tz.clone())
                    .start_of_day()
                    .expect("in range")
                    .timestamp();
            }
            let end = start.checked_add(len.seconds()).expect("in range");
            (Window::new(start, end).expect("end ≥ start"), tz.clone(), g)
        })
}

fn bucketed_window() -> impl Strategy<Value = (Window, TimeZone, Granularity)> {
    (time_zone(), granularity()).prop_flat_map(|((_, tz), g)| window_in(tz, g))
}

proptest! {
    #![proptest_config(config())]

    /// Buckets tile the window exactly: the first starts at its start, the last ends at its
    /// end, each ends where the next begins, none is empty; an empty window has none.
    #[test]
    fn buckets_tile_the_window((w, tz, g) in bucketed_window()) {
        let buckets = w.buckets(g, &tz).expect("buckets");
        if w.start == w.end {
            prop_assert!(buckets.is_empty(), "empty window gave {:?}", buckets);
            return Ok(());
        }
        prop_assert!(!buckets.is_empty());
        prop_assert_eq!(buckets[0].start, w.start);
        prop_assert_eq!(buckets[buckets.len() - 1].end, w.end);
        for b in &buckets {
            prop_assert!(b.start < b.end, "empty bucket {:?} in {:?}", b, buckets);
        }
        for pair in buckets.windows(2) {
            prop_assert_eq!(pair[0].end, pair[1].start, "gap or overlap in {:?}", buckets);
        }
    }

    /// Every cut between buckets is the first instant of a local calendar bucket, and
    /// consecutive cuts are exactly one granularity apart: no bucket is skipped, split or
    /// merged, across DST changes included.
    #[test]
    fn buckets_follow_the_local_calendar((w, tz, g) in bucketed_window()) {
        let buckets = w.buckets(g, &tz).expect("buckets");
        for (i, b) in buckets.iter().enumerate() {
            let start_date = b.start.to_zoned(tz.clone()).date();
            let first = floor(g, start_date);
            if i > 0 {
                prop_assert!(starts_local_day(b.start, &tz), "bucket {} starts mid-day: {:?}", i, b);
                prop_assert_eq!(start_date, first, "bucket {} starts off the {:?} boundary", i, g);
            }
            if i + 1 < buckets.len() {
                let end_date = b.end.to_zoned(tz.clone()).date();
                prop_assert!(starts_local_day(b.end, &tz), "bucket {} ends mid-day: {:?}", i, b);
                prop_assert_eq!(end_date, next(g, first), "bucket {} is not one {:?} long", i, g);
            } else {
                // The last bucket ends within its calendar bucket (clipped) or right at its end.
                let limit = next(g, first)
                    .to_zoned(tz.clone())
                    .expect("in range")
                    .timestamp();
                prop_assert!(b.end <= limit, "last bucket {:?} runs past {}", b, limit);
            }
        }
    }

    /// A window from the first instant of a month's first day to that of a later month's
    /// (local time) has months(W) equal to its number of month buckets, and each of those
    /// buckets is exactly one month, across DST changes (including a 1st that starts at
    /// 01:00 because DST skips midnight).
    #[test]
    fn month_buckets_are_one_calendar_month_each(
        tz in month_zones(),
        year in 1990i16..2060,
        month in 1i8..=12,
        months in 0i64..40,
    ) {
        let first = Date::new(year, month, 1).expect("valid");
        let day_start = |d: Date| {
            d.to_zoned(tz.clone())
                .and_then(|z| z.start_of_day())
                .expect("in range")
                .timestamp()
        };
        let last = first.checked_add(months.months()).expect("in range");
        let w = Window::new(day_start(first), day_start(last)).expect("window");
        let buckets = w.buckets(Granularity::Month, &tz).expect("buckets");
        prop_assert_eq!(buckets.len() as i64, months);
        prop_assert_eq!(months_in(&w, &tz), Decimal::from(months));
        for b in &buckets {
            prop_assert_eq!(months_in(b, &tz), Decimal::ONE, "bucket {:?}", b);
        }
    }
}
