//! The engine over tiny test metrics and a fake store: calculator mode, field violations,
//! buckets, groups, derived metrics, explicit overrides and shared reads in a batch.

use std::collections::BTreeMap;
use std::sync::Mutex;

use jiff::Timestamp;

mod common;
use common::{Rate, RATE};
use kpi_core::{
    ratio, ComputeError, ComputeSpec, DataSource, Decimal, Dimension, Direction, Granularity,
    InputSpec, Inputs, Measure, Metric, MetricDescriptor, MetricError, Params, Registry,
    RegistryError, Scope, Unit, Value, Window,
};

struct Half;
static HALF: MetricDescriptor = MetricDescriptor {
    id: "test.half_rate",
    name: "Half rate",
    family: "test",
    description: "rate / 2",
    formula: "rate / 2",
    unit: Unit::Percent,
    direction: Direction::HigherIsBetter,
    inputs: &[InputSpec::metric("rate", "the rate", "test.rate")],
    params: &[],
    dimensions: &[Dimension::Owner],
    default_group_by: &[],
};
impl Metric for Half {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &HALF
    }
    fn evaluate(&self, i: &Inputs, _: &Params) -> Result<Value, MetricError> {
        ratio(i.get("rate")?, Decimal::TWO, "never")
    }
}

struct Dup;
impl Metric for Dup {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &RATE
    }
    fn evaluate(&self, _: &Inputs, _: &Params) -> Result<Value, MetricError> {
        Ok(Value::Defined(Decimal::ZERO))
    }
}

/// Deals per day in January 2024: owner "ann" wins one deal a day, "bob" loses one every
/// other day (even days).
struct FakeDeals {
    calls: Mutex<usize>,
}
impl DataSource for FakeDeals {
    fn measure(&self, m: Measure, scope: &Scope) -> Result<Decimal, MetricError> {
        *self.calls.lock().unwrap() += 1;
        let owner = scope.filters.get(&Dimension::Owner).map(String::as_str);
        let mut n = 0i64;
        let mut t: Timestamp = "2024-01-01T12:00:00Z".parse().unwrap();
        for day in 1..=31 {
            if scope.window.contains(t) {
                match m {
                    Measure::DealsWon if matches!(owner, None | Some("ann")) => n += 1,
                    Measure::DealsLost if matches!(owner, None | Some("bob")) && day % 2 == 0 => {
                        n += 1
                    }
                    _ => {}
                }
            }
            t = t.checked_add(jiff::SignedDuration::from_hours(24)).unwrap();
        }
        Ok(Decimal::from(n))
    }
    fn group_values(
        &self,
        _: Dimension,
        _: &Scope,
        _: &[Measure],
    ) -> Result<Vec<String>, MetricError> {
        Ok(vec!["ann".into(), "bob".into(), "cy".into()])
    }
}

fn registry() -> Registry {
    Registry::from_metrics([&Rate as &'static dyn Metric, &Half]).unwrap()
}

fn january() -> Window {
    Window::new(
        "2024-01-01T00:00:00Z".parse().unwrap(),
        "2024-02-01T00:00:00Z".parse().unwrap(),
    )
    .unwrap()
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

#[test]
fn registry_refuses_duplicates_bad_ids_and_missing_dependencies() {
    let dup = Registry::from_metrics([&Rate as &'static dyn Metric, &Dup]);
    assert_eq!(dup.unwrap_err(), RegistryError::DuplicateId("test.rate"));
    let missing = Registry::from_metrics([&Half as &'static dyn Metric]);
    assert!(matches!(
        missing.unwrap_err(),
        RegistryError::MissingDependency {
            uses: "test.rate",
            ..
        }
    ));
    let r = registry();
    let ids: Vec<_> = r.metrics().map(|m| m.descriptor().id).collect();
    assert_eq!(ids, ["test.half_rate", "test.rate"], "sorted by id");
}

#[test]
fn calculator_mode_reports_its_inputs() {
    let rows = registry()
        .compute(
            &ComputeSpec::calculator("test.rate", [("won", "30"), ("lost", "70")]),
            None,
        )
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].value, Value::Defined(d("30")));
    assert_eq!(
        rows[0].inputs,
        Inputs::new().with("won", d("30")).with("lost", d("70"))
    );
}

#[test]
fn calculator_mode_field_violations() {
    let err = registry()
        .compute(
            &ComputeSpec::calculator("test.rate", [("won", "1e3"), ("nope", "1")]),
            None,
        )
        .unwrap_err();
    let ComputeError::InvalidArgument(v) = err else {
        panic!("expected invalid argument, got {err:?}")
    };
    let fields: Vec<_> = v.iter().map(|x| x.field.as_str()).collect();
    assert_eq!(fields, ["inputs[nope]", "inputs[won]", "inputs[lost]"]);
    let err = registry()
        .compute(&ComputeSpec::calculator("test.nope", []), None)
        .unwrap_err();
    assert_eq!(err, ComputeError::UnknownMetric("test.nope".into()));
    let mut spec = ComputeSpec::calculator("test.rate", [("won", "-1"), ("lost", "1")]);
    spec.params.insert("precision".into(), "99".into());
    let ComputeError::InvalidArgument(v) = registry().compute(&spec, None).unwrap_err() else {
        panic!()
    };
    assert_eq!(v.len(), 2, "{v:?}");
}

#[test]
fn zero_denominator_is_undefined_not_an_error() {
    let rows = registry()
        .compute(
            &ComputeSpec::calculator("test.rate", [("won", "0"), ("lost", "0")]),
            None,
        )
        .unwrap();
    assert_eq!(rows[0].value, Value::Undefined("no deals closed".into()));
}

#[test]
fn stored_mode_buckets_groups_and_overrides() {
    let src = FakeDeals {
        calls: Mutex::new(0),
    };
    let r = registry();
    // Whole January: 31 won, 15 lost → 31/46 = 67.39…
    let rows = r
        .compute(&ComputeSpec::new("test.rate", Some(january())), Some(&src))
        .unwrap();
    assert_eq!(rows[0].value, Value::Defined(d("67.39")));
    assert_eq!(
        rows[0].inputs,
        Inputs::new().with("won", d("31")).with("lost", d("15"))
    );

    // Weekly buckets (weeks start Monday; 2024-01-01 is a Monday): 5 buckets, last is 3 days.
    let mut spec = ComputeSpec::new("test.rate", Some(january()));
    spec.granularity = Some(Granularity::Week);
    let rows = r.compute(&spec, Some(&src)).unwrap();
    assert_eq!(rows.len(), 5);
    assert_eq!(
        rows[4].bucket_start,
        Some("2024-01-29T00:00:00Z".parse().unwrap())
    );
    // 29, 30, 31 January: 3 won, 1 lost (the 30th).
    assert_eq!(rows[4].value, Value::Defined(d("75")));

    // Groups: "cy" has no data and is dropped; ann 100 %, bob 0 %.
    let mut spec = ComputeSpec::new("test.rate", Some(january()));
    spec.group_by = vec![Dimension::Owner];
    let rows = r.compute(&spec, Some(&src)).unwrap();
    let got: Vec<_> = rows
        .iter()
        .map(|x| (x.group[&Dimension::Owner].clone(), x.value.clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("ann".into(), Value::Defined(d("100"))),
            ("bob".into(), Value::Defined(d("0")))
        ]
    );

    // An explicit input replaces the stored one only.
    let mut spec = ComputeSpec::new("test.rate", Some(january()));
    spec.inputs.insert("lost".into(), "31".into());
    let rows = r.compute(&spec, Some(&src)).unwrap();
    assert_eq!(rows[0].value, Value::Defined(d("50")));
    assert_eq!(rows[0].inputs.get("won").unwrap(), d("31"));
}

#[test]
fn unsupported_dimension_and_window_errors() {
    let src = FakeDeals {
        calls: Mutex::new(0),
    };
    let mut spec = ComputeSpec::new("test.rate", Some(january()));
    spec.group_by = vec![Dimension::Agent];
    spec.filters = BTreeMap::from([(Dimension::Stage, "demo".to_owned())]);
    let ComputeError::InvalidArgument(v) = registry().compute(&spec, Some(&src)).unwrap_err()
    else {
        panic!()
    };
    assert_eq!(v[0].field, "group_by[0]");
    assert_eq!(v[1].field, "filters[stage]");
    // A window with no store available.
    let spec = ComputeSpec::new("test.rate", Some(january()));
    assert!(matches!(
        registry().compute(&spec, None),
        Err(ComputeError::InvalidArgument(_))
    ));
}

#[test]
fn derived_metric_uses_the_other_metric_and_propagates_undefined() {
    let src = FakeDeals {
        calls: Mutex::new(0),
    };
    let r = registry();
    let rows = r
        .compute(
            &ComputeSpec::new("test.half_rate", Some(january())),
            Some(&src),
        )
        .unwrap();
    // 67.391304… / 2 = 33.695652… → 33.70 (the dependency is not rounded first)
    assert_eq!(rows[0].value, Value::Defined(d("33.7")));
    let empty = Window::new(
        "2023-01-01T00:00:00Z".parse().unwrap(),
        "2023-02-01T00:00:00Z".parse().unwrap(),
    )
    .unwrap();
    let rows = r
        .compute(&ComputeSpec::new("test.half_rate", Some(empty)), Some(&src))
        .unwrap();
    assert_eq!(
        rows[0].value,
        Value::Undefined("rate is undefined: no deals closed".into())
    );
}

#[test]
fn a_batch_reads_each_measure_once() {
    let src = FakeDeals {
        calls: Mutex::new(0),
    };
    let r = registry();
    let specs = [
        ComputeSpec::new("test.rate", Some(january())),
        ComputeSpec::new("test.half_rate", Some(january())),
    ];
    let results = r.compute_batch(&specs, Some(&src));
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(
        *src.calls.lock().unwrap(),
        2,
        "won and lost, read once for both metrics"
    );
}

#[test]
fn memo_does_not_leak_between_requests() {
    let src = FakeDeals {
        calls: Mutex::new(0),
    };
    let r = registry();
    r.compute(&ComputeSpec::new("test.rate", Some(january())), Some(&src))
        .unwrap();
    r.compute(&ComputeSpec::new("test.rate", Some(january())), Some(&src))
        .unwrap();
    assert_eq!(*src.calls.lock().unwrap(), 4);
}

#[test]
fn default_grouping_can_be_turned_off() {
    static GROUPED: MetricDescriptor = MetricDescriptor {
        id: "test.grouped_rate",
        default_group_by: &[Dimension::Owner],
        ..RATE
    };
    struct Grouped;
    impl Metric for Grouped {
        fn descriptor(&self) -> &'static MetricDescriptor {
            &GROUPED
        }
        fn evaluate(&self, i: &Inputs, p: &Params) -> Result<Value, MetricError> {
            Rate.evaluate(i, p)
        }
    }
    let r = Registry::from_metrics([&Grouped as &'static dyn Metric]).unwrap();
    let src = FakeDeals {
        calls: Mutex::new(0),
    };
    let rows = r
        .compute(
            &ComputeSpec::new("test.grouped_rate", Some(january())),
            Some(&src),
        )
        .unwrap();
    assert_eq!(rows.len(), 2, "ann and bob by default");
    let mut spec = ComputeSpec::new("test.grouped_rate", Some(january()));
    spec.ungrouped = true;
    let rows = r.compute(&spec, Some(&src)).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].value, Value::Defined(d("67.39")));
}
