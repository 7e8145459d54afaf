//! The engine's comparisons over a fake store: each row carries its previous period's
//! value, inputs and change; the previous periods' reads share the request's (or batch's)
//! memo; calculator mode refuses a comparison.

use std::collections::HashSet;
use std::sync::Mutex;

use jiff::Timestamp;

mod common;
use common::Rate;
use kpi_core::{
    ComputeError, ComputeSpec, DataSource, Decimal, Dimension, Direction, Granularity, InputKind,
    InputSpec, Inputs, Measure, Metric, MetricDescriptor, MetricError, Params, Registry, Scope,
    Trend, Unit, Value, Window,
};

struct Won;
static WON: MetricDescriptor = MetricDescriptor {
    id: "test.won",
    name: "Won",
    family: "test",
    description: "won deals",
    formula: "won",
    unit: Unit::Count,
    direction: Direction::HigherIsBetter,
    inputs: &[InputSpec::stored(
        "won",
        "won deals",
        InputKind::Count,
        Measure::DealsWon,
    )],
    params: &[],
    dimensions: &[Dimension::Owner],
    default_group_by: &[],
};
impl Metric for Won {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &WON
    }
    fn evaluate(&self, i: &Inputs, _: &Params) -> Result<Value, MetricError> {
        Ok(Value::Defined(i.get("won")?))
    }
}

/// Deals closed at noon UTC on the 10th of each month of 2024: in month m (1-based) ann
/// wins m deals and loses one; bob wins one deal in March only. Counts every read and
/// remembers the distinct (measure, scope) pairs read.
#[derive(Default)]
struct MonthlyDeals {
    reads: Mutex<Vec<(Measure, Scope)>>,
}

impl DataSource for MonthlyDeals {
    fn measure(&self, m: Measure, scope: &Scope) -> Result<Decimal, MetricError> {
        self.reads.lock().unwrap().push((m, scope.clone()));
        let owner = scope.filters.get(&Dimension::Owner).map(String::as_str);
        let mut n = 0i64;
        for month in 1..=12i8 {
            let t: Timestamp = jiff::civil::date(2024, month, 10)
                .at(12, 0, 0, 0)
                .to_zoned(jiff::tz::TimeZone::UTC)
                .unwrap()
                .timestamp();
            if !scope.window.contains(t) {
                continue;
            }
            match (m, owner) {
                (Measure::DealsWon, None) => n += i64::from(month) + i64::from(month == 3),
                (Measure::DealsWon, Some("ann")) => n += i64::from(month),
                (Measure::DealsWon, Some("bob")) => n += i64::from(month == 3),
                (Measure::DealsLost, None | Some("ann")) => n += 1,
                _ => {}
            }
        }
        Ok(Decimal::from(n))
    }
    fn group_values(
        &self,
        _: Dimension,
        _: &Scope,
        _: &[Measure],
    ) -> Result<Vec<String>, MetricError> {
        Ok(vec!["ann".into(), "bob".into()])
    }
}

impl MonthlyDeals {
    fn reads(&self) -> usize {
        self.reads.lock().unwrap().len()
    }
    fn distinct_reads(&self) -> usize {
        let reads = self.reads.lock().unwrap();
        reads.iter().collect::<HashSet<_>>().len()
    }
}

fn registry() -> Registry {
    Registry::from_metrics([&Rate as &'static dyn Metric, &Won]).unwrap()
}

fn window(start: &str, end: &str) -> Window {
    Window::new(start.parse().unwrap(), end.parse().unwrap()).unwrap()
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn monthly(metric: &str, compare: kpi_core::Comparison) -> ComputeSpec {
    ComputeSpec {
        granularity: Some(Granularity::Month),
        compare: Some(compare),
        ..ComputeSpec::new(
            metric,
            Some(window("2024-02-01T00:00:00Z", "2024-04-01T00:00:00Z")),
        )
    }
}

#[test]
fn each_month_compares_with_the_month_before() {
    let source = MonthlyDeals::default();
    let rows = registry()
        .compute(
            &monthly("test.rate", kpi_core::Comparison::PreviousPeriod),
            Some(&source),
        )
        .unwrap();
    assert_eq!(rows.len(), 2);
    // February: 2 won, 1 lost → 66.67; January: 1 won, 1 lost → 50.
    let february = rows[0].comparison.as_ref().unwrap();
    assert_eq!(rows[0].value, Value::Defined(d("66.67")));
    assert_eq!(february.previous, Value::Defined(d("50")));
    assert_eq!(february.previous_inputs.get("won").unwrap(), d("1"));
    assert_eq!(february.change, Some(d("16.67")));
    assert_eq!(february.change_pct, Value::Defined(d("33.34")));
    assert_eq!(february.trend, Some(Trend::Improved));
    // March: 4 won (ann 3, bob 1), 1 lost → 80; change from 66.67 is 13.33 points,
    // 13.33 / 66.67 × 100 = 19.9940… → 19.99 %.
    let march = rows[1].comparison.as_ref().unwrap();
    assert_eq!(rows[1].value, Value::Defined(d("80")));
    assert_eq!(march.previous, Value::Defined(d("66.67")));
    assert_eq!(march.change, Some(d("13.33")));
    assert_eq!(march.change_pct, Value::Defined(d("19.99")));
}

#[test]
fn previous_months_are_read_through_the_memo_once() {
    // Two months compared with the months before them read three months: February's
    // previous period is January, March's is February (already read).
    let source = MonthlyDeals::default();
    registry()
        .compute(
            &monthly("test.rate", kpi_core::Comparison::PreviousPeriod),
            Some(&source),
        )
        .unwrap();
    assert_eq!(source.reads(), 6, "won and lost for January to March");
    assert_eq!(source.distinct_reads(), 6);

    // A batch: test.won shares `won` with test.rate for every month, compared or not.
    let source = MonthlyDeals::default();
    let specs = [
        monthly("test.rate", kpi_core::Comparison::PreviousPeriod),
        monthly("test.won", kpi_core::Comparison::PreviousPeriod),
    ];
    let results = registry().compute_batch(&specs, Some(&source));
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(source.reads(), 6);
}

#[test]
fn a_group_absent_before_compares_with_what_the_previous_period_computes_for_it() {
    let source = MonthlyDeals::default();
    let spec = ComputeSpec {
        group_by: vec![Dimension::Owner],
        ..ComputeSpec::new(
            "test.rate",
            Some(window("2024-03-01T00:00:00Z", "2024-04-01T00:00:00Z")),
        )
    };
    let spec = ComputeSpec {
        compare: Some(kpi_core::Comparison::PreviousPeriod),
        ..spec
    };
    let rows = registry().compute(&spec, Some(&source)).unwrap();
    assert_eq!(rows.len(), 2);
    // ann: 3 won 1 lost in March (75) after 2 won 1 lost (66.67).
    let ann = rows[0].comparison.as_ref().unwrap();
    assert_eq!(ann.change, Some(d("8.33")));
    // bob: 1 won in March (100); nothing in February: undefined, no change.
    let bob = rows[1].comparison.as_ref().unwrap();
    assert_eq!(rows[1].value, Value::Defined(d("100")));
    assert_eq!(bob.previous, Value::Undefined("no deals closed".into()));
    assert_eq!(bob.previous_inputs.get("won").unwrap(), Decimal::ZERO);
    assert_eq!(bob.change, None);
    assert_eq!(bob.trend, None);
    assert_eq!(
        bob.change_pct,
        Value::Undefined("the previous value is undefined (no deals closed)".into())
    );
}

#[test]
fn a_year_earlier_and_no_comparison() {
    let source = MonthlyDeals::default();
    // The fake store only has 2024: a year earlier nothing was won (0, not undefined).
    let rows = registry()
        .compute(
            &monthly("test.won", kpi_core::Comparison::PreviousYear),
            Some(&source),
        )
        .unwrap();
    let february = rows[0].comparison.as_ref().unwrap();
    assert_eq!(february.previous, Value::Defined(Decimal::ZERO));
    assert_eq!(february.change, Some(d("2")));
    assert_eq!(
        february.change_pct,
        Value::Undefined("the previous value is 0".into())
    );
    assert_eq!(february.trend, Some(Trend::Improved));

    let spec = ComputeSpec {
        compare: None,
        ..monthly("test.won", kpi_core::Comparison::PreviousYear)
    };
    let rows = registry().compute(&spec, Some(&source)).unwrap();
    assert!(rows.iter().all(|r| r.comparison.is_none()));
}

#[test]
fn calculator_mode_refuses_a_comparison() {
    let spec = ComputeSpec {
        compare: Some(kpi_core::Comparison::PreviousPeriod),
        ..ComputeSpec::calculator("test.rate", [("won", "3"), ("lost", "1")])
    };
    match registry().compute(&spec, None) {
        Err(ComputeError::InvalidArgument(v)) => {
            assert_eq!(v.len(), 1);
            assert_eq!(v[0].field, "compare");
            assert!(v[0].description.contains("needs a window"));
        }
        other => panic!("expected INVALID_ARGUMENT on compare, got {other:?}"),
    }
}
