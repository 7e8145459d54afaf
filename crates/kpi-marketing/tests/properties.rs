//! Property tests over every marketing metric in the registry: calculator mode equals stored
//! mode on the same inputs, a ratio is undefined exactly when its denominator is 0, shares
//! stay in [0, 100], the `precision` parameter rounds the exact formula value, and the
//! inputs CLV reads from the window (years, profit per customer-year) match the catalogue.
//!
//! Each metric's valid inputs and params are derived from one random [`Pool`], respecting
//! its input kinds and the relations between inputs that cannot fail (a part never exceeds
//! its whole, a total over no records is 0, an acquisition cost is not negative). A metric
//! registered without a generator here fails.

use std::collections::{BTreeMap, HashMap};

use kpi_core::{
    round, ComputeError, ComputeSpec, DataSource, Decimal, Dimension, InputSource, Inputs, Measure,
    Metric, MetricError, Params, Row, Scope, Value, Window,
};
use kpi_marketing as _;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

const FAMILY: &str = "marketing";

// ---------------------------------------------------------------------------------------
// Random material and per-metric valid inputs
// ---------------------------------------------------------------------------------------

/// Random raw material each metric's valid inputs and params are derived from.
#[derive(Debug, Clone)]
struct Pool {
    counts: [u32; 4],
    amounts: [Decimal; 4],
    /// A value that may be negative (a net lifetime value).
    signed: Decimal,
    /// Bits choosing optional params.
    pick: u8,
    precision: u32,
}

fn pool() -> impl Strategy<Value = Pool> {
    (
        prop::array::uniform4(count()),
        prop::array::uniform4(amount()),
        (amount(), any::<bool>()),
        any::<u8>(),
        0u32..=6,
    )
        .prop_map(
            |(counts, amounts, (size, negative), pick, precision)| Pool {
                counts,
                amounts,
                signed: if negative { -size } else { size },
                pick,
                precision,
            },
        )
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

/// A gross margin in [0, 1] with two places.
fn margin(x: u32) -> Decimal {
    Decimal::new(i64::from(x % 101), 2)
}

impl Case {
    fn param(mut self, name: &str, value: impl ToString) -> Self {
        self.params.insert(name.to_owned(), value.to_string());
        self
    }

    /// Sets `name` when `when` holds.
    fn param_if(self, when: bool, name: &str, value: impl ToString) -> Self {
        if when {
            self.param(name, value)
        } else {
            self
        }
    }
}

/// A share's range.
const SHARE: (Option<i64>, Option<i64>) = (Some(0), Some(100));
/// Amounts, durations, ratios of non-negative amounts: never negative.
const NON_NEGATIVE: (Option<i64>, Option<i64>) = (Some(0), None);
/// Unbounded.
const ANY: (Option<i64>, Option<i64>) = (None, None);

/// Spend category sets to pick from.
const CATEGORIES: [&str; 4] = ["all", "advertising", "advertising,salaries", "tools, other"];

/// Valid inputs for metric `id`, derived from `p`.
fn case(id: &str, p: &Pool) -> Case {
    let [c0, c1, c2, _] = p.counts;
    let [a0, a1, a2, a3] = p.amounts;
    let bit = |i: u8| p.pick & (1 << i) != 0;
    match id {
        "marketing.cac" => Case::new(vec![("spend", a0), ("new_customers", n(c0))])
            .param("categories", CATEGORIES[usize::from(p.pick % 4)])
            .over(n(c0))
            .range(NON_NEGATIVE),
        "marketing.cac_payback_months" => {
            let gm = margin(c2);
            Case::new(vec![("cac", a0), ("new_customer_mrr", a1)])
                .param("gross_margin", gm)
                .over(a1 * gm)
                .range(NON_NEGATIVE)
        }
        // ≥ −100: revenue is never negative, so at worst all the spend is lost.
        "marketing.campaign_roi" => {
            Case::new(vec![("attributed_revenue", a0), ("campaign_spend", a1)])
                .over(a1)
                .range((Some(-100), None))
        }
        "marketing.clv" => {
            let purchases = c0;
            let customers = if purchases == 0 {
                0
            } else {
                1 + c1 % purchases
            };
            let years = if a1.is_zero() { Decimal::ONE } else { a1 };
            Case::new(vec![
                ("revenue", total(a0, purchases)),
                ("purchases", n(purchases)),
                ("customers", n(customers)),
                ("years", years),
                ("lifespan_years", a2),
            ])
            .param_if(bit(0), "lifespan_years", a3)
            .over(n(customers))
            .range(NON_NEGATIVE)
        }
        "marketing.clv_net" => Case::new(vec![
            ("annual_profit_per_customer", a0),
            ("retention_years", a1),
            ("cac", a2),
        ])
        .param_if(bit(1), "retention_years", a3)
        .param_if(bit(2), "gross_margin", margin(c2))
        .range(ANY),
        "marketing.clv_cac_ratio" => Case::new(vec![("clv", p.signed), ("cac", a0)])
            .param("clv", if bit(3) { "clv_net" } else { "clv" })
            .over(a0)
            .range(ANY),
        "marketing.email_click_rate" => {
            Case::new(vec![("clicks", n(part(c1, c0))), ("delivered", n(c0))])
                .over(n(c0))
                .range(SHARE)
        }
        "marketing.email_open_rate" => {
            Case::new(vec![("opens", n(part(c1, c0))), ("delivered", n(c0))])
                .over(n(c0))
                .range(SHARE)
        }
        "marketing.email_revenue" => {
            Case::new(vec![("attributed_revenue", a0)]).range(NON_NEGATIVE)
        }
        "marketing.marketing_sourced_pct" => {
            if bit(4) {
                // Revenue basis: any non-negative amounts, a part of the total.
                let from_marketing = a0 * Decimal::new(i64::from(c1 % 101), 2);
                Case::new(vec![
                    ("from_marketing", from_marketing),
                    ("new_customers", a0),
                ])
                .param("basis", "revenue")
                .over(a0)
                .range(SHARE)
            } else {
                Case::new(vec![
                    ("from_marketing", n(part(c1, c0))),
                    ("new_customers", n(c0)),
                ])
                .param_if(bit(5), "basis", "count")
                .over(n(c0))
                .range(SHARE)
            }
        }
        other => panic!("no input generator for {other}: add one to this file"),
    }
}

/// The shares the catalogue bounds in this family, with their bounds.
const SHARES: &[(&str, i64, i64)] = &[
    ("marketing.email_open_rate", 0, 100),
    ("marketing.email_click_rate", 0, 100),
    ("marketing.marketing_sourced_pct", 0, 100),
];

proptest! {
    #![proptest_config(config())]

    /// Stored CLV spreads the window over years(W): one calendar month is 1/12 of a year,
    /// exactly as a caller giving `years` = 1/12 gets.
    #[test]
    fn clv_reads_years_from_the_window(p in pool()) {
        let metric = kpi_core::registry().unwrap().get("marketing.clv").expect("clv");
        let mut c = case("marketing.clv", &p);
        let twelfth = Decimal::ONE / Decimal::from(12);
        for (name, value) in &mut c.inputs {
            if *name == "years" {
                *value = twelfth;
            }
        }
        let calc = calculator(metric, &c, p.precision);
        let (mut spec, source) = stored_spec(metric, &c, one_month(), &["years"]);
        spec.params = params_with_precision(&c, p.precision);
        let store = kpi_core::registry().unwrap().compute(&spec, Some(&source));
        match (&calc, &store) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(&a[0].value, &b[0].value);
                prop_assert_eq!(b[0].inputs.try_get("years"), Some(twelfth));
            }
            (Err(a), Err(b)) => {
                prop_assert!(is_overflow(a), "{:?}", a);
                prop_assert_eq!(a, b);
            }
            _ => prop_assert!(false, "{:?} vs {:?} for {:?}", calc, store, c),
        }
    }

    /// Stored net CLV reads annual_profit_per_customer as purchase revenue × gross_margin
    /// over the active customers' years in the window (undefined with no active customer).
    #[test]
    fn clv_net_reads_profit_per_customer_year(p in pool()) {
        let metric = kpi_core::registry().unwrap().get("marketing.clv_net").expect("clv_net");
        let c = case("marketing.clv_net", &p);
        let [_, _, _, active] = p.counts;
        let revenue = p.amounts[3];
        let gm = c
            .params
            .get("gross_margin")
            .map_or(Decimal::ONE, |t| t.parse().expect("margin"));
        let (mut spec, mut source) =
            stored_spec(metric, &c, one_month(), &["annual_profit_per_customer"]);
        source.0.insert(Measure::CustomersActiveInWindow, n(active));
        source.0.insert(Measure::PurchaseRevenue, revenue);
        spec.params = params_with_precision(&c, p.precision);
        let store = kpi_core::registry().unwrap().compute(&spec, Some(&source));
        if active == 0 {
            prop_assert!(
                matches!(&store, Ok(rows) if matches!(rows[0].value, Value::Undefined(_))),
                "{:?}", store
            );
            return Ok(());
        }
        let customer_years = n(active) * (Decimal::ONE / Decimal::from(12));
        let Some(profit) = revenue.checked_mul(gm).and_then(|x| x.checked_div(customer_years))
        else {
            prop_assert!(matches!(&store, Err(e) if is_overflow(e)), "{:?}", store);
            return Ok(());
        };
        let mut given = c.clone();
        for (name, value) in &mut given.inputs {
            if *name == "annual_profit_per_customer" {
                *value = profit;
            }
        }
        let calc = calculator(metric, &given, p.precision);
        match (&calc, &store) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(&a[0].value, &b[0].value);
                prop_assert_eq!(b[0].inputs.try_get("annual_profit_per_customer"), Some(profit));
            }
            (Err(a), Err(b)) => {
                prop_assert!(is_overflow(a), "{:?}", a);
                prop_assert_eq!(a, b);
            }
            _ => prop_assert!(false, "{:?} vs {:?} for {:?}", calc, store, given),
        }
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
