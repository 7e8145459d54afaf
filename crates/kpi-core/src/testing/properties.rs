//! The property-test harness of the metric families: calculator mode equals stored mode on
//! the same inputs, a value is undefined exactly when its formula's denominator is 0 and
//! stays within the catalogue's bounds, and the `precision` parameter rounds the exact
//! formula value.
//!
//! A family describes itself once as a [`Family`]: a strategy drawing random raw material
//! (its pool), a function deriving each metric's valid inputs and params from a pool (a
//! [`Case`]), and the shares the catalogue bounds. [`family_properties!`] then defines one
//! test per property; the family's file keeps only what is specific to it.
//!
//! [`family_properties!`]: crate::family_properties

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use super::{one_month, FakeSource};
use crate::{
    round, ComputeError, ComputeSpec, Decimal, InputSource, Inputs, Metric, Params, Row, Value,
    Window,
};

// ---------------------------------------------------------------------------------------
// Random material
// ---------------------------------------------------------------------------------------

/// A count for a pool: often 0 or small, sometimes huge.
pub fn count() -> impl Strategy<Value = u32> {
    prop_oneof![
        2 => Just(0u32),
        5 => 0u32..50,
        2 => 0u32..1_000_000,
        1 => any::<u32>(),
    ]
}

/// A non-negative amount for a pool: 0, money-like, or any 64-bit mantissa with up to 8
/// places.
pub fn amount() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        1 => Just(Decimal::ZERO),
        4 => (0u64..10_000_000, 0u32..=2)
            .prop_map(|(m, s)| Decimal::from_i128_with_scale(m.into(), s)),
        2 => (any::<u64>(), 0u32..=8)
            .prop_map(|(m, s)| Decimal::from_i128_with_scale(m.into(), s)),
    ]
}

/// One value drawn deterministically from `strategy`, for plain tests.
pub fn sample<S: Strategy>(strategy: S) -> S::Value {
    strategy
        .new_tree(&mut TestRunner::deterministic())
        .expect("a sample")
        .current()
}

/// A count as a decimal.
pub fn n(x: u32) -> Decimal {
    Decimal::from(x)
}

/// `x` folded into `0..=whole`: a part of `whole`.
pub fn part(x: u32, whole: u32) -> u32 {
    // The remainder is at most `whole`, a u32.
    (u64::from(x) % (u64::from(whole) + 1)) as u32
}

/// A total over `count` records: `amount`, or 0 when there are no records.
pub fn total(amount: Decimal, count: u32) -> Decimal {
    if count == 0 {
        Decimal::ZERO
    } else {
        amount
    }
}

// ---------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------

/// The lowest and highest value the catalogue allows (either side open when `None`).
pub type Bounds = (Option<i64>, Option<i64>);

/// A share's bounds: [0, 100].
pub const SHARE: Bounds = (Some(0), Some(100));
/// Amounts, counts, durations and ratios of them: never negative.
pub const NON_NEGATIVE: Bounds = (Some(0), None);
/// Unbounded.
pub const ANY: Bounds = (None, None);

/// Valid inputs and params for one metric, with what the catalogue says of its value.
#[derive(Debug, Clone, Default)]
pub struct Case {
    /// Every declared input once, with a valid value.
    pub inputs: Vec<(&'static str, Decimal)>,
    /// Raw params (the harness adds `precision`).
    pub params: BTreeMap<String, String>,
    /// The formula's denominator for these inputs (undefined exactly when it is 0);
    /// `None` for a formula without one (always defined).
    pub denominator: Option<Decimal>,
    /// Lowest value the catalogue allows, where it bounds it.
    pub low: Option<Decimal>,
    /// Highest value the catalogue allows, where it bounds it.
    pub high: Option<Decimal>,
}

impl Case {
    /// A case with these inputs, no params, no denominator and no bounds.
    pub fn new(inputs: Vec<(&'static str, Decimal)>) -> Self {
        Self {
            inputs,
            ..Self::default()
        }
    }

    /// The formula divides by `denominator`.
    pub fn over(mut self, denominator: Decimal) -> Self {
        self.denominator = Some(denominator);
        self
    }

    /// The value lies within `bounds`.
    pub fn range(mut self, (low, high): Bounds) -> Self {
        self.low = low.map(Decimal::from);
        self.high = high.map(Decimal::from);
        self
    }

    /// Sets the raw param `name`.
    pub fn param(mut self, name: &str, value: impl ToString) -> Self {
        self.params.insert(name.to_owned(), value.to_string());
        self
    }

    /// Sets the raw param `name` when `when` holds.
    pub fn param_if(self, when: bool, name: &str, value: impl ToString) -> Self {
        if when {
            self.param(name, value)
        } else {
            self
        }
    }
}

// ---------------------------------------------------------------------------------------
// The two modes
// ---------------------------------------------------------------------------------------

/// The case's params with `precision` set.
pub fn params_with_precision(case: &Case, precision: u32) -> BTreeMap<String, String> {
    let mut params = case.params.clone();
    params.insert("precision".to_owned(), precision.to_string());
    params
}

/// Metric `id` in calculator mode: every input of `inputs` given, no window.
pub fn calculator_with(
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
    crate::registry().expect("registry").compute(&spec, None)
}

/// The case in calculator mode.
pub fn calculator(
    metric: &dyn Metric,
    case: &Case,
    precision: u32,
) -> Result<Vec<Row>, ComputeError> {
    calculator_with(
        metric.descriptor().id,
        &case.inputs,
        params_with_precision(case, precision),
    )
}

/// A stored-mode request over `window`: stored inputs of the case are put in a fake store
/// under their measures, custom and derived inputs are given explicitly, and inputs named
/// in `omit` are left to the metric's own gather. Every dimension of the metric has the
/// one group value `g`.
pub fn stored_spec(
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
    let source = d
        .dimensions
        .iter()
        .fold(FakeSource::new(measures), |source, dimension| {
            // A cohort's values are its customers' acquisition instants.
            let value = match dimension {
                crate::Dimension::Cohort => window.start.to_string(),
                _ => "g".to_owned(),
            };
            source.with_group(*dimension, &value, [])
        });
    (spec, source)
}

/// The case in stored mode over one month, no buckets.
pub fn stored(metric: &dyn Metric, case: &Case, precision: u32) -> Result<Vec<Row>, ComputeError> {
    let (mut spec, source) = stored_spec(metric, case, one_month(), &[]);
    spec.params = params_with_precision(case, precision);
    crate::registry()
        .expect("registry")
        .compute(&spec, Some(&source))
}

/// The only error valid inputs may give: a result too large for a decimal.
pub fn is_overflow(err: &ComputeError) -> bool {
    matches!(err, ComputeError::InvalidArgument(v)
        if v.len() == 1 && v[0].field == "inputs" && v[0].description.contains("overflow"))
}

/// The property-test configuration: proptest's defaults (and environment), no failure
/// files.
pub fn config() -> Config {
    Config {
        failure_persistence: None,
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------------------
// A family and its properties
// ---------------------------------------------------------------------------------------

/// A metric family as its property tests see it. `P` is the family's pool: random raw
/// material each metric's valid inputs and params are derived from.
pub struct Family<P: 'static> {
    /// The family name of the metrics' descriptors (`"sales"`).
    pub name: &'static str,
    /// The strategy drawing pools.
    pub pool: fn() -> BoxedStrategy<P>,
    /// Valid inputs and params of the metric with this id, derived from a pool; panics for
    /// a metric it has no generator for.
    pub case: fn(&str, &P) -> Case,
    /// The `precision` param a pool chooses.
    pub precision: fn(&P) -> u32,
    /// The shares (and scores) the catalogue bounds in this family, with their bounds.
    pub shares: &'static [(&'static str, i64, i64)],
}

impl<P: 'static> Family<P> {
    /// A family from its parts (see the fields).
    pub const fn new(
        name: &'static str,
        pool: fn() -> BoxedStrategy<P>,
        case: fn(&str, &P) -> Case,
        precision: fn(&P) -> u32,
        shares: &'static [(&'static str, i64, i64)],
    ) -> Self {
        Self {
            name,
            pool,
            case,
            precision,
            shares,
        }
    }
}

impl<P: Clone + Debug + 'static> Family<P> {
    /// The family's metrics in the link-time registry; panics when none is linked.
    pub fn metrics(&self) -> Vec<&'static dyn Metric> {
        let metrics: Vec<_> = crate::registry()
            .expect("the registry builds")
            .metrics()
            .filter(|m| m.descriptor().family == self.name)
            .collect();
        assert!(!metrics.is_empty(), "no {} metric is linked", self.name);
        metrics
    }

    /// Runs `property` over random pools (see [`config`]); panics with the minimal failing
    /// pool.
    pub fn check(&self, property: impl Fn(&P) -> Result<(), TestCaseError>) {
        let mut runner = TestRunner::new(config());
        if let Err(e) = runner.run(&(self.pool)(), |p| property(&p)) {
            panic!("{}: {e}", self.name);
        }
    }

    /// Every metric of the family has a generator giving each of its declared inputs once,
    /// and every share listed is registered, has a denominator and its catalogue bounds.
    pub fn every_metric_has_a_generator_and_every_share_its_bounds(&self) {
        let ids: Vec<&str> = self.metrics().iter().map(|m| m.descriptor().id).collect();
        let p = sample((self.pool)());
        for metric in self.metrics() {
            let d = metric.descriptor();
            let c = (self.case)(d.id, &p);
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
        for (id, low, high) in self.shares {
            assert!(ids.contains(id), "{id} is not registered");
            let c = (self.case)(id, &p);
            assert!(c.denominator.is_some(), "{id}: a share has a denominator");
            assert_eq!(c.low, Some(Decimal::from(*low)), "{id}: lowest value");
            assert_eq!(c.high, Some(Decimal::from(*high)), "{id}: highest value");
        }
    }

    /// Valid inputs are accepted (at most a too-large result is refused), and calculator
    /// mode and stored mode over one month give the same value from the same inputs.
    pub fn calculator_equals_stored(&self, p: &P) -> Result<(), TestCaseError> {
        let precision = (self.precision)(p);
        for metric in self.metrics() {
            let d = metric.descriptor();
            let c = (self.case)(d.id, p);
            let calc = calculator(metric, &c, precision);
            let store = stored(metric, &c, precision);
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
                    prop_assert!(
                        is_overflow(a),
                        "{}: valid inputs refused: {:?} {:?}",
                        d.id,
                        a,
                        c
                    );
                    prop_assert_eq!(a, b, "{}", d.id);
                }
                _ => prop_assert!(false, "{}: {:?} vs {:?} for {:?}", d.id, calc, store, c),
            }
        }
        Ok(())
    }

    /// A value is undefined exactly when its formula's denominator is 0, and stays within
    /// the catalogue's bounds (shares in [0, 100], NPS in [−100, 100], amounts ≥ 0…).
    pub fn values_are_undefined_only_over_zero_and_stay_in_bounds(
        &self,
        p: &P,
    ) -> Result<(), TestCaseError> {
        for metric in self.metrics() {
            let d = metric.descriptor();
            let c = (self.case)(d.id, p);
            let rows = match calculator(metric, &c, 28) {
                Ok(rows) => rows,
                Err(e) if is_overflow(&e) => continue,
                Err(e) => return Err(TestCaseError::fail(format!("{}: {e:?} for {c:?}", d.id))),
            };
            match (&rows[0].value, c.denominator) {
                (Value::Undefined(reason), Some(den)) => prop_assert!(
                    den.is_zero(),
                    "{}: undefined ({}) with denominator {}",
                    d.id,
                    reason,
                    den
                ),
                (Value::Undefined(reason), None) => {
                    prop_assert!(
                        false,
                        "{}: undefined ({}) without a denominator",
                        d.id,
                        reason
                    )
                }
                (Value::Defined(v), den) => {
                    prop_assert!(
                        den.is_none_or(|x| !x.is_zero()),
                        "{}: {} over a zero denominator for {:?}",
                        d.id,
                        v,
                        c
                    );
                    prop_assert!(
                        c.low.is_none_or(|low| low <= *v),
                        "{}: {} below {:?} for {:?}",
                        d.id,
                        v,
                        c.low,
                        c
                    );
                    prop_assert!(
                        c.high.is_none_or(|high| *v <= high),
                        "{}: {} above {:?} for {:?}",
                        d.id,
                        v,
                        c.high,
                        c
                    );
                }
            }
        }
        Ok(())
    }

    /// With `precision` = p the value has at most p places and is the exact formula value
    /// rounded half away from zero.
    pub fn precision_rounds_the_exact_value(&self, p: &P) -> Result<(), TestCaseError> {
        let precision = (self.precision)(p);
        for metric in self.metrics() {
            let d = metric.descriptor();
            let c = (self.case)(d.id, p);
            let Ok(rows) = calculator(metric, &c, precision) else {
                continue;
            };
            let params =
                Params::parse(d, &params_with_precision(&c, precision)).expect("valid params");
            let inputs: Inputs = c.inputs.iter().map(|(k, v)| (*k, *v)).collect();
            let exact = metric.evaluate(&inputs, &params).expect("valid inputs");
            match (&rows[0].value, exact) {
                (Value::Defined(v), Value::Defined(x)) => {
                    prop_assert!(
                        v.scale() <= precision,
                        "{}: {} has over {} places",
                        d.id,
                        v,
                        precision
                    );
                    prop_assert_eq!(*v, round(x, precision), "{}: exact {}", d.id, x);
                }
                (Value::Undefined(a), Value::Undefined(b)) => prop_assert_eq!(a, &b),
                (got, exact) => prop_assert!(false, "{}: {:?} vs exact {:?}", d.id, got, exact),
            }
        }
        Ok(())
    }
}

/// Defines, in a family crate's property-test file, one `#[test]` per property of
/// [`Family`](crate::testing::Family) for the family given (a `const` or `static`
/// `Family`): `every_metric_has_a_generator_and_every_share_its_bounds`,
/// `calculator_equals_stored`, `values_are_undefined_only_over_zero_and_stay_in_bounds`
/// and `precision_rounds_the_exact_value`.
///
/// ```text
/// const SALES: Family<Pool> = Family::new("sales", pool, case, |p| p.precision, SHARES);
/// kpi_core::family_properties!(SALES);
/// ```
#[macro_export]
macro_rules! family_properties {
    ($family:expr) => {
        #[test]
        fn every_metric_has_a_generator_and_every_share_its_bounds() {
            $family.every_metric_has_a_generator_and_every_share_its_bounds();
        }

        #[test]
        fn calculator_equals_stored() {
            $family.check(|p| $family.calculator_equals_stored(p));
        }

        #[test]
        fn values_are_undefined_only_over_zero_and_stay_in_bounds() {
            $family.check(|p| $family.values_are_undefined_only_over_zero_and_stay_in_bounds(p));
        }

        #[test]
        fn precision_rounds_the_exact_value() {
            $family.check(|p| $family.precision_rounds_the_exact_value(p));
        }
    };
}
