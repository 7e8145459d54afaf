//! Property tests over every revenue metric in the registry: calculator mode equals stored
//! mode on the same inputs, a ratio is undefined exactly when its denominator is 0, amounts
//! stay non-negative, the `precision` parameter rounds the exact formula value, months(W)
//! is read from the window in the request's time zone, and net new MRR is the sum of the
//! movement metrics computed in the same batch.
//!
//! Each metric's valid inputs are derived from one random [`Pool`], respecting its input
//! kinds and the relations between inputs that cannot fail (MRR with no paying customer is
//! 0). A metric registered without a generator here fails.

use std::collections::{BTreeMap, HashMap};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::ToSpan;
use kpi_core::{
    round, ComputeError, ComputeSpec, DataSource, Decimal, Dimension, InputSource, Inputs, Measure,
    Metric, MetricError, Params, Row, Scope, Value, Window,
};
use kpi_revenue as _;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

const FAMILY: &str = "revenue";

// ---------------------------------------------------------------------------------------
// Random material and per-metric valid inputs
// ---------------------------------------------------------------------------------------

/// Random raw material each metric's valid inputs are derived from.
#[derive(Debug, Clone)]
struct Pool {
    count: u32,
    amounts: [Decimal; 4],
    precision: u32,
}

fn pool() -> impl Strategy<Value = Pool> {
    (count(), prop::array::uniform4(amount()), 0u32..=6).prop_map(|(count, amounts, precision)| {
        Pool {
            count,
            amounts,
            precision,
        }
    })
}

/// A total over `count` records: `amount`, or 0 when there are no records.
fn total(amount: Decimal, count: u32) -> Decimal {
    if count == 0 {
        Decimal::ZERO
    } else {
        amount
    }
}

/// Amounts and ratios of amounts: never negative.
const NON_NEGATIVE: (Option<i64>, Option<i64>) = (Some(0), None);
/// Net movements can go either way.
const ANY: (Option<i64>, Option<i64>) = (None, None);

/// Valid inputs for metric `id`, derived from `p`.
fn case(id: &str, p: &Pool) -> Case {
    let c0 = p.count;
    let [a0, a1, a2, a3] = p.amounts;
    match id {
        "revenue.arpa" => Case::new(vec![("mrr", total(a0, c0)), ("paying_customers", n(c0))])
            .over(n(c0))
            .range(NON_NEGATIVE),
        "revenue.churned_mrr" => Case::new(vec![("churned_mrr", a0)]).range(NON_NEGATIVE),
        "revenue.contraction_mrr" => Case::new(vec![("contraction_mrr", a0)]).range(NON_NEGATIVE),
        "revenue.expansion_mrr" => Case::new(vec![("expansion_mrr", a0)]).range(NON_NEGATIVE),
        "revenue.mrr" => Case::new(vec![("mrr", a0)]).range(NON_NEGATIVE),
        // Can exceed 100 (MRR expanded, then lost, within the window).
        "revenue.mrr_churn_rate" => Case::new(vec![
            ("churned_mrr", a0),
            ("contraction_mrr", a1),
            ("mrr_at_start", a2),
        ])
        .over(a2)
        .range(NON_NEGATIVE),
        "revenue.net_new_mrr" => Case::new(vec![
            ("new_mrr", a0),
            ("expansion_mrr", a1),
            ("contraction_mrr", a2),
            ("churned_mrr", a3),
        ])
        .range(ANY),
        "revenue.new_customer_revenue" => {
            Case::new(vec![("new_customer_revenue", a0)]).range(NON_NEGATIVE)
        }
        "revenue.new_mrr" => Case::new(vec![("new_mrr", a0)]).range(NON_NEGATIVE),
        "revenue.total_monthly_revenue" => {
            Case::new(vec![("mrr", a0), ("non_recurring", a1), ("months", a2)])
                .over(a2)
                .range(NON_NEGATIVE)
        }
        other => panic!("no input generator for {other}: add one to this file"),
    }
}

/// The catalogue bounds no share to [0, 100] in this family (MRR churn can exceed 100).
const SHARES: &[(&str, i64, i64)] = &[];

/// Zones whose local midnight always exists (DST changes at 01:00–03:00, or none).
fn time_zone() -> impl Strategy<Value = TimeZone> {
    prop::sample::select(vec![
        "UTC",
        "Europe/Paris",
        "America/New_York",
        "Australia/Sydney",
        "Asia/Tokyo",
    ])
    .prop_map(|name| {
        if name == "UTC" {
            TimeZone::UTC
        } else {
            TimeZone::get(name).expect("bundled time zone")
        }
    })
}

proptest! {
    #![proptest_config(config())]

    /// Stored total monthly revenue reads months(W) in the request's zone: a window from
    /// the first of a month to the first of a month k months later (local midnights) is k
    /// months, across DST changes; a window of d whole days not on a month start is
    /// d × 12 / 365 months.
    #[test]
    fn total_monthly_revenue_reads_months_from_the_window(
        p in pool(),
        tz in time_zone(),
        year in 1995i16..2050,
        month in 1i8..=12,
        day in prop_oneof![Just(1i8), 2i8..=28],
        length in 1i64..=24,
    ) {
        let metric = kpi_core::registry().unwrap().get("revenue.total_monthly_revenue").unwrap();
        let first = Date::new(year, month, day).expect("valid date");
        let last = if day == 1 {
            first.checked_add(length.months())
        } else {
            first.checked_add((length * 10).days())
        }
        .expect("in range");
        let local = |d: Date| d.to_zoned(tz.clone()).expect("in range").timestamp();
        let window = Window::new(local(first), local(last)).expect("window");
        let months = if day == 1 {
            Decimal::from(length)
        } else {
            // days(W) × 12 / 365, days(W) being elapsed time (a DST day is 23 or 25 hours)
            window.days() * Decimal::from(12) / Decimal::from(365)
        };
        let mut c = case("revenue.total_monthly_revenue", &p);
        c.inputs[2].1 = months;
        let (mut spec, source) = stored_spec(metric, &c, window, &["months"]);
        spec.time_zone = tz.clone();
        spec.params = params_with_precision(&c, p.precision);
        let store = kpi_core::registry().unwrap().compute(&spec, Some(&source));
        let calc = calculator(metric, &c, p.precision);
        match (&calc, &store) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(b[0].inputs.try_get("months"), Some(months));
                prop_assert_eq!(&a[0].value, &b[0].value);
            }
            (Err(a), Err(b)) => {
                prop_assert!(is_overflow(a), "{:?}", a);
                prop_assert_eq!(a, b);
            }
            _ => prop_assert!(false, "{:?} vs {:?} for {:?}", calc, store, c),
        }
    }

    /// In one stored batch, net new MRR equals new + expansion − contraction − churned MRR
    /// as the four movement metrics answer them.
    #[test]
    fn net_new_mrr_is_the_sum_of_the_movements(p in pool()) {
        let [new, expansion, contraction, churned] = p.amounts;
        let source = FakeSource(HashMap::from([
            (Measure::NewMrr, new),
            (Measure::ExpansionMrr, expansion),
            (Measure::ContractionMrr, contraction),
            (Measure::ChurnedMrr, churned),
        ]));
        let ids = [
            "revenue.net_new_mrr",
            "revenue.new_mrr",
            "revenue.expansion_mrr",
            "revenue.contraction_mrr",
            "revenue.churned_mrr",
        ];
        let specs: Vec<ComputeSpec> = ids
            .iter()
            .map(|id| {
                let mut spec = ComputeSpec::new(id, Some(one_month()));
                spec.params.insert("precision".into(), "28".into());
                spec
            })
            .collect();
        let answers = kpi_core::registry().unwrap().compute_batch(&specs, Some(&source));
        let values: Vec<Decimal> = answers
            .into_iter()
            .zip(ids)
            .map(|(rows, id)| {
                let rows = rows.unwrap_or_else(|e| panic!("{id}: {e:?}"));
                rows[0].value.as_decimal().unwrap_or_else(|| panic!("{id} undefined"))
            })
            .collect();
        prop_assert_eq!(values[0], values[1] + values[2] - values[3] - values[4]);
    }
}

/// A pool's strategy draws: a count, often 0 or small, sometimes huge.
fn count() -> impl Strategy<Value = u32> {
    prop_oneof![
        2 => Just(0u32),
        5 => 0u32..50,
        2 => 0u32..1_000_000,
        1 => any::<u32>(),
    ]
}

/// A non-negative amount: 0, money-like, or any 64-bit mantissa with up to 8 places.
fn amount() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        1 => Just(Decimal::ZERO),
        4 => (0u64..10_000_000, 0u32..=2)
            .prop_map(|(m, s)| Decimal::from_i128_with_scale(m.into(), s)),
        2 => (any::<u64>(), 0u32..=8)
            .prop_map(|(m, s)| Decimal::from_i128_with_scale(m.into(), s)),
    ]
}

fn n(x: u32) -> Decimal {
    Decimal::from(x)
}

/// Valid inputs and params for one metric, with what the catalogue says of its value.
#[derive(Debug, Clone, Default)]
struct Case {
    inputs: Vec<(&'static str, Decimal)>,
    params: BTreeMap<String, String>,
    /// The formula's denominator for these inputs (undefined exactly when it is 0);
    /// `None` for a formula without one (always defined).
    denominator: Option<Decimal>,
    /// Lowest and highest value the catalogue allows, where it bounds them.
    low: Option<Decimal>,
    high: Option<Decimal>,
}

impl Case {
    fn new(inputs: Vec<(&'static str, Decimal)>) -> Self {
        Self {
            inputs,
            ..Self::default()
        }
    }

    /// The formula divides by `denominator`.
    fn over(mut self, denominator: Decimal) -> Self {
        self.denominator = Some(denominator);
        self
    }

    /// The value lies in `[low, high]` (either side open when `None`).
    fn range(mut self, (low, high): (Option<i64>, Option<i64>)) -> Self {
        self.low = low.map(Decimal::from);
        self.high = high.map(Decimal::from);
        self
    }
}

// ---------------------------------------------------------------------------------------
// Harness: the registry, a fake store, the two modes
// ---------------------------------------------------------------------------------------

fn family_metrics() -> Vec<&'static dyn Metric> {
    let metrics: Vec<_> = kpi_core::registry()
        .expect("the registry builds")
        .metrics()
        .filter(|m| m.descriptor().family == FAMILY)
        .collect();
    assert!(!metrics.is_empty(), "no {FAMILY} metric is linked");
    metrics
}

/// One calendar month, the window stored mode reads.
fn one_month() -> Window {
    Window::new(
        "2024-03-01T00:00:00Z".parse().expect("timestamp"),
        "2024-04-01T00:00:00Z".parse().expect("timestamp"),
    )
    .expect("window")
}

/// A store answering each measure it holds with the same number whatever the scope, and
/// refusing any other measure. Every dimension has the one group value `g`.
struct FakeSource(HashMap<Measure, Decimal>);

impl DataSource for FakeSource {
    fn measure(&self, measure: Measure, _scope: &Scope) -> Result<Decimal, MetricError> {
        self.0
            .get(&measure)
            .copied()
            .ok_or_else(|| MetricError::Store(format!("the fake store holds no {measure:?}")))
    }

    fn group_values(
        &self,
        _dimension: Dimension,
        _scope: &Scope,
    ) -> Result<Vec<String>, MetricError> {
        Ok(vec!["g".to_owned()])
    }
}

fn params_with_precision(case: &Case, precision: u32) -> BTreeMap<String, String> {
    let mut params = case.params.clone();
    params.insert("precision".to_owned(), precision.to_string());
    params
}

/// Every input of `inputs` given, no window.
fn calculator_with(
    id: &str,
    inputs: &[(&'static str, Decimal)],
    params: BTreeMap<String, String>,
) -> Result<Vec<Row>, ComputeError> {
    let texts: Vec<(&str, String)> = inputs
        .iter()
        .map(|(name, v)| (*name, v.to_string()))
        .collect();
    let mut spec = ComputeSpec::calculator(id, texts.iter().map(|(k, v)| (*k, v.as_str())));
    spec.params = params;
    kpi_core::registry().expect("registry").compute(&spec, None)
}

/// The case in calculator mode.
fn calculator(metric: &dyn Metric, case: &Case, precision: u32) -> Result<Vec<Row>, ComputeError> {
    calculator_with(
        metric.descriptor().id,
        &case.inputs,
        params_with_precision(case, precision),
    )
}

/// A stored-mode request over `window`: stored inputs of the case are put in a fake store
/// under their measures, custom and derived inputs are given explicitly, and inputs named
/// in `omit` are left to the metric's own gather.
fn stored_spec(
    metric: &dyn Metric,
    case: &Case,
    window: Window,
    omit: &[&str],
) -> (ComputeSpec, FakeSource) {
    let d = metric.descriptor();
    let mut measures = HashMap::new();
    let mut spec = ComputeSpec::new(d.id, Some(window));
    for (name, value) in &case.inputs {
        if omit.contains(name) {
            continue;
        }
        let input = d.input(name).expect("the case names declared inputs");
        match input.source {
            InputSource::Stored(m) => {
                if let Some(old) = measures.insert(m, *value) {
                    assert_eq!(old, *value, "{}: two inputs read {m:?}", d.id);
                }
            }
            InputSource::Metric(_) | InputSource::Custom => {
                spec.inputs.insert((*name).to_owned(), value.to_string());
            }
        }
    }
    spec.params = case.params.clone();
    (spec, FakeSource(measures))
}

/// The case in stored mode over one month, no buckets.
fn stored(metric: &dyn Metric, case: &Case, precision: u32) -> Result<Vec<Row>, ComputeError> {
    let (mut spec, source) = stored_spec(metric, case, one_month(), &[]);
    spec.params = params_with_precision(case, precision);
    kpi_core::registry()
        .expect("registry")
        .compute(&spec, Some(&source))
}

/// The only error valid inputs may give: a result too large for a decimal.
fn is_overflow(err: &ComputeError) -> bool {
    matches!(err, ComputeError::InvalidArgument(v)
        if v.len() == 1 && v[0].field == "inputs" && v[0].description.contains("overflow"))
}

fn config() -> Config {
    Config {
        failure_persistence: None,
        ..Config::default()
    }
}

/// One pool drawn deterministically, for plain tests.
fn sample_pool() -> Pool {
    pool()
        .new_tree(&mut TestRunner::deterministic())
        .expect("a pool")
        .current()
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

#[test]
fn every_metric_has_a_generator_and_every_share_its_bounds() {
    let ids: Vec<&str> = family_metrics().iter().map(|m| m.descriptor().id).collect();
    let p = sample_pool();
    for metric in family_metrics() {
        let d = metric.descriptor();
        let c = case(d.id, &p);
        let mut names: Vec<&str> = c.inputs.iter().map(|(k, _)| *k).collect();
        let mut declared: Vec<&str> = d.inputs.iter().map(|i| i.name).collect();
        names.sort_unstable();
        declared.sort_unstable();
        assert_eq!(
            names, declared,
            "{}: the generator must give every input once",
            d.id
        );
    }
    for (id, low, high) in SHARES {
        assert!(ids.contains(id), "{id} is not registered");
        let c = case(id, &p);
        assert!(c.denominator.is_some(), "{id}: a share has a denominator");
        assert_eq!(c.low, Some(Decimal::from(*low)), "{id}: lowest value");
        assert_eq!(c.high, Some(Decimal::from(*high)), "{id}: highest value");
    }
}

proptest! {
    #![proptest_config(config())]

    /// Valid inputs are accepted (at most a too-large result is refused), and calculator
    /// mode and stored mode over one month give the same value from the same inputs.
    #[test]
    fn calculator_equals_stored(p in pool()) {
        for metric in family_metrics() {
            let d = metric.descriptor();
            let c = case(d.id, &p);
            let calc = calculator(metric, &c, p.precision);
            let store = stored(metric, &c, p.precision);
            match (&calc, &store) {
                (Ok(calc), Ok(store)) => {
                    prop_assert_eq!(calc.len(), 1, "{}", d.id);
                    if store.is_empty() {
                        // A grouped answer drops groups whose inputs are all zero.
                        prop_assert!(!d.default_group_by.is_empty(), "{}: no row", d.id);
                        prop_assert!(c.inputs.iter().all(|(_, v)| v.is_zero()), "{}", d.id);
                    } else {
                        prop_assert_eq!(store.len(), 1, "{}", d.id);
                        prop_assert_eq!(&calc[0].value, &store[0].value, "{}: {:?}", d.id, c);
                        prop_assert_eq!(&calc[0].inputs, &store[0].inputs, "{}", d.id);
                    }
                }
                (Err(a), Err(b)) => {
                    prop_assert!(is_overflow(a), "{}: valid inputs refused: {:?} {:?}", d.id, a, c);
                    prop_assert_eq!(a, b, "{}", d.id);
                }
                _ => prop_assert!(false, "{}: {:?} vs {:?} for {:?}", d.id, calc, store, c),
            }
        }
    }

    /// A value is undefined exactly when its formula's denominator is 0, and stays within
    /// the catalogue's bounds (shares in [0, 100], NPS in [−100, 100], amounts ≥ 0…).
    #[test]
    fn values_are_undefined_only_over_zero_and_stay_in_bounds(p in pool()) {
        for metric in family_metrics() {
            let d = metric.descriptor();
            let c = case(d.id, &p);
            let rows = match calculator(metric, &c, 28) {
                Ok(rows) => rows,
                Err(e) if is_overflow(&e) => continue,
                Err(e) => return Err(TestCaseError::fail(format!("{}: {e:?} for {c:?}", d.id))),
            };
            match (&rows[0].value, c.denominator) {
                (Value::Undefined(reason), Some(den)) => prop_assert!(
                    den.is_zero(),
                    "{}: undefined ({}) with denominator {}", d.id, reason, den
                ),
                (Value::Undefined(reason), None) => {
                    prop_assert!(false, "{}: undefined ({}) without a denominator", d.id, reason)
                }
                (Value::Defined(v), den) => {
                    prop_assert!(
                        den.is_none_or(|x| !x.is_zero()),
                        "{}: {} over a zero denominator for {:?}", d.id, v, c
                    );
                    prop_assert!(c.low.is_none_or(|low| low <= *v), "{}: {} below {:?} for {:?}", d.id, v, c.low, c);
                    prop_assert!(c.high.is_none_or(|high| *v <= high), "{}: {} above {:?} for {:?}", d.id, v, c.high, c);
                }
            }
        }
    }

    /// With `precision` = p the value has at most p places and is the exact formula value
    /// rounded half away from zero.
    #[test]
    fn precision_rounds_the_exact_value(p in pool()) {
        for metric in family_metrics() {
            let d = metric.descriptor();
            let c = case(d.id, &p);
            let Ok(rows) = calculator(metric, &c, p.precision) else { continue };
            let params = Params::parse(d, &params_with_precision(&c, p.precision))
                .expect("valid params");
            let inputs: Inputs = c.inputs.iter().map(|(k, v)| (*k, *v)).collect();
            let exact = metric.evaluate(&inputs, &params).expect("valid inputs");
            match (&rows[0].value, exact) {
                (Value::Defined(v), Value::Defined(x)) => {
                    prop_assert!(v.scale() <= p.precision, "{}: {} has over {} places", d.id, v, p.precision);
                    prop_assert_eq!(*v, round(x, p.precision), "{}: exact {}", d.id, x);
                }
                (Value::Undefined(a), Value::Undefined(b)) => prop_assert_eq!(a, &b),
                (got, exact) => prop_assert!(false, "{}: {:?} vs exact {:?}", d.id, got, exact),
            }
        }
    }
}
