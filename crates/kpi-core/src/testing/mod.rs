//! Test support shared by the metric family crates, behind the cargo feature `testing`:
//! a fake [`DataSource`] ([`FakeSource`]), small helpers to write decimals, windows, inputs,
//! params and requests and to compute through a registry, and the property-test harness
//! every family runs over its registered metrics ([`Family`], [`family_properties!`]).
//!
//! A family crate enables the feature for its tests only:
//!
//! ```toml
//! [dev-dependencies]
//! kpi-core = { workspace = true, features = ["testing"] }
//! ```
//!
//! Everything here panics on bad test data (an unparsable decimal, an invalid window or
//! param): it is meant for tests, never for the service.
//!
//! [`family_properties!`]: crate::family_properties

mod properties;
mod source;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::str::FromStr;

pub use proptest;

pub use properties::{
    amount, calculator, calculator_with, config, count, is_overflow, n, params_with_precision,
    part, sample, stored, stored_spec, total, Bounds, Case, Family, ANY, NON_NEGATIVE, SHARE,
};
pub use source::FakeSource;

use crate::{
    ComputeSpec, DataSource, Decimal, Inputs, Metric, MetricDescriptor, MetricError, Params,
    Registry, Row, Value, Window,
};

/// A value a test writes for an input or a measure: a [`Decimal`], an integer, or decimal
/// text such as `"12.5"`.
pub trait IntoDecimal {
    /// The exact decimal; text that is not a decimal panics.
    fn into_decimal(self) -> Decimal;
}

impl IntoDecimal for Decimal {
    fn into_decimal(self) -> Decimal {
        self
    }
}

impl IntoDecimal for &str {
    fn into_decimal(self) -> Decimal {
        d(self)
    }
}

impl IntoDecimal for i32 {
    fn into_decimal(self) -> Decimal {
        Decimal::from(self)
    }
}

impl IntoDecimal for i64 {
    fn into_decimal(self) -> Decimal {
        Decimal::from(self)
    }
}

impl IntoDecimal for u32 {
    fn into_decimal(self) -> Decimal {
        Decimal::from(self)
    }
}

/// An exact decimal from its text (`d("12.5")`).
pub fn d(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap_or_else(|e| panic!("test decimal {text:?}: {e}"))
}

/// The window `[start, end)` from RFC 3339 instants.
pub fn window(start: &str, end: &str) -> Window {
    Window::new(
        start.parse().expect("test window start"),
        end.parse().expect("test window end"),
    )
    .expect("test window")
}

/// March 2024 in UTC: one calendar month, the window the property tests read.
pub fn one_month() -> Window {
    window("2024-03-01T00:00:00Z", "2024-04-01T00:00:00Z")
}

/// The first quarter of 2024 in UTC, `[2024-01-01, 2024-04-01)`: months(W) = 3.
pub fn q1_2024() -> Window {
    window("2024-01-01T00:00:00Z", "2024-04-01T00:00:00Z")
}

/// The first half of 2024 in UTC: 6 calendar months, years(W) = 0.5.
pub fn first_half_2024() -> Window {
    window("2024-01-01T00:00:00Z", "2024-07-01T00:00:00Z")
}

/// The calendar year 2024 in UTC: 12 calendar months, years(W) = 1.
pub fn year_2024() -> Window {
    window("2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z")
}

/// Inputs from (name, value) pairs: `inputs([("won", "30"), ("lost", "70")])`.
pub fn inputs<'a, V: IntoDecimal>(pairs: impl IntoIterator<Item = (&'a str, V)>) -> Inputs {
    pairs
        .into_iter()
        .map(|(name, value)| (name, value.into_decimal()))
        .collect()
}

/// Raw (name, value) text pairs as the map a request carries.
fn raw_map(raw: &[(&str, &str)]) -> BTreeMap<String, String> {
    raw.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Validated params of `descriptor` from raw name/value pairs (defaults filled in).
pub fn params(descriptor: &MetricDescriptor, raw: &[(&str, &str)]) -> Params {
    Params::parse(descriptor, &raw_map(raw)).expect("valid test params")
}

/// The value the engine gives `metric` for these inputs and raw params: input kinds
/// checked, the formula evaluated, the result rounded to the `precision` param.
pub fn evaluate_with(
    metric: &dyn Metric,
    inputs: &Inputs,
    raw_params: &[(&str, &str)],
) -> Result<Value, MetricError> {
    crate::engine::evaluate(metric, inputs, &params(metric.descriptor(), raw_params))
}

/// A stored-mode request for `metric_id` over `window` with these raw params and explicit
/// inputs.
pub fn spec(
    metric_id: &str,
    window: Window,
    raw_params: &[(&str, &str)],
    explicit: &[(&str, &str)],
) -> ComputeSpec {
    let mut spec = ComputeSpec::new(metric_id, Some(window));
    spec.params = raw_map(raw_params);
    spec.inputs = raw_map(explicit);
    spec
}

/// Computes `spec` through a registry of `metrics` (the metric and the metrics it reads)
/// over `source`; a compute error panics.
pub fn compute(
    metrics: &[&'static dyn Metric],
    spec: &ComputeSpec,
    source: &dyn DataSource,
) -> Vec<Row> {
    Registry::from_metrics(metrics.iter().copied())
        .expect("test registry")
        .compute(spec, Some(source))
        .unwrap_or_else(|e| panic!("{}: {e:?}", spec.metric_id))
}

/// Asserts that `result` is the defined value `expected` (decimal text, compared as a
/// number: `"12.5"` equals `12.50`).
#[track_caller]
pub fn assert_defined<E: Debug>(result: Result<Value, E>, expected: &str) {
    match result {
        Ok(Value::Defined(v)) if v == d(expected) => {}
        other => panic!("expected the value {expected}, got {other:?}"),
    }
}

/// Asserts that `result` is undefined for exactly `reason`.
#[track_caller]
pub fn assert_undefined<E: Debug>(result: Result<Value, E>, reason: &str) {
    match result {
        Ok(Value::Undefined(got)) if got == reason => {}
        other => panic!("expected undefined ({reason}), got {other:?}"),
    }
}

/// Asserts that `result` is [`MetricError::InvalidInput`] naming `input` (the input an
/// impossible value or relation is reported against).
#[track_caller]
pub fn assert_invalid_input<T: Debug>(result: Result<T, MetricError>, input: &str) {
    match result {
        Err(MetricError::InvalidInput { input: got, .. }) if got == input => {}
        other => panic!("expected an invalid input {input}, got {other:?}"),
    }
}

/// [`compute`] for a request that answers exactly one row (ungrouped, unbucketed), and
/// that row.
pub fn compute_one(
    metrics: &[&'static dyn Metric],
    spec: &ComputeSpec,
    source: &dyn DataSource,
) -> Row {
    let mut rows = compute(metrics, spec, source);
    assert_eq!(rows.len(), 1, "one row expected: {rows:?}");
    rows.remove(0)
}
