//! Property tests over every sales metric in the registry: calculator mode equals stored
//! mode on the same inputs, a ratio is undefined exactly when its denominator is 0, shares
//! stay in [0, 100], and the `precision` parameter rounds the exact formula value.
//!
//! Each metric's valid inputs are derived from one random [`Pool`], respecting its input
//! kinds and the relations between inputs that cannot fail (a part never exceeds its whole,
//! a total over no records is 0). A metric registered without a generator here fails.

use std::collections::{BTreeMap, HashMap};

use kpi_core::{
    round, ComputeError, ComputeSpec, DataSource, Decimal, Dimension, InputSource, Inputs, Measure,
    Metric, MetricError, Params, Row, Scope, Value, Window,
};
use kpi_sales as _;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

const FAMILY: &str = "sales";

// ---------------------------------------------------------------------------------------
// Random material and per-metric valid inputs
// ---------------------------------------------------------------------------------------

/// Random raw material each metric's valid inputs are derived from.
#[derive(Debug, Clone)]
struct Pool {
    counts: [u32; 2],
    amounts: [Decimal; 2],
    precision: u32,
}

fn pool() -> impl Strategy<Value = Pool> {
    (
        prop::array::uniform2(count()),
        prop::array::uniform2(amount()),
        0u32..=6,
    )
        .prop_map(|(counts, amounts, precision)| Pool {
            counts,
            amounts,
            precision,
        })
}

/// `x` folded into `0..=whole`: a part of `whole`.
fn part(x: u32, whole: u32) -> u32 {
    (u64::from(x) % (u64::from(whole) + 1)) as u32
}

/// A total over `count` records: `amount`, or 0 when there are no records.
fn total(amount: Decimal, count: u32) -> Decimal {
    if count == 0 {
        Decimal::ZERO
    } else {
        amount
    }
}

/// A share's range.
const SHARE: (Option<i64>, Option<i64>) = (Some(0), Some(100));
/// Amounts, counts, durations: never negative.
const NON_NEGATIVE: (Option<i64>, Option<i64>) = (Some(0), None);

/// Valid inputs for metric `id`, derived from `p`.
fn case(id: &str, p: &Pool) -> Case {
    let [c0, c1] = p.counts;
    let [a0, a1] = p.amounts;
    match id {
        "sales.win_rate" => Case::new(vec![("won", n(c0)), ("lost", n(c1))])
            .over(n(c0) + n(c1))
            .range(SHARE),
        "sales.average_deal_size" => Case::new(vec![("won_amount", total(a0, c0)), ("won", n(c0))])
            .over(n(c0))
            .range(NON_NEGATIVE),
        "sales.sales_cycle_days" => {
            Case::new(vec![("cycle_days_total", total(a0, c0)), ("won", n(c0))])
                .over(n(c0))
                .range(NON_NEGATIVE)
        }
        "sales.stage_duration_days" => Case::new(vec![
            ("stage_days_total", total(a0, c0)),
            ("stage_exits", n(c0)),
        ])
        .over(n(c0))
        .range(NON_NEGATIVE),
        // Can exceed 100: selling more than the quota.
        "sales.quota_attainment" => Case::new(vec![("won_amount", a0), ("quota", a1)])
            .over(a1)
            .range(NON_NEGATIVE),
        "sales.revenue" => Case::new(vec![("won_amount", a0)]).range(NON_NEGATIVE),
        "sales.revenue_per_rep" => Case::new(vec![("won_amount", total(a0, c0)), ("reps", n(c0))])
            .over(n(c0))
            .range(NON_NEGATIVE),
        "sales.leads_created" => Case::new(vec![("leads", n(c0))]).range(NON_NEGATIVE),
        "sales.lead_conversion_rate" => {
            Case::new(vec![("converted", n(part(c1, c0))), ("leads", n(c0))])
                .over(n(c0))
                .range(SHARE)
        }
        "sales.upsell_rate" => Case::new(vec![("upsold", n(part(c1, c0))), ("customers", n(c0))])
            .over(n(c0))
            .range(SHARE),
        other => panic!("no input generator for {other}: add one to this file"),
    }
}

/// The shares the catalogue bounds in this family, with their bounds.
const SHARES: &[(&str, i64, i64)] = &[
    ("sales.win_rate", 0, 100),
    ("sales.lead_conversion_rate", 0, 100),
    ("sales.upsell_rate", 0, 100),
];

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
