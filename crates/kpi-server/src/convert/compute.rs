//! `ComputeRequest` / `BatchComputeRequest` → [`ComputeSpec`], answered [`Row`]s →
//! `kpi.v1.Row`, and [`MetricDescriptor`] → `kpi.v1.MetricDescriptor`.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use jiff::tz::TimeZone;
use kpi_core::engine::parse_dimension;
use kpi_core::{
    parse_time_zone, Calendar, Compared, Comparison, ComputeError, ComputeSpec, Dimension,
    Direction, FieldViolation, Granularity, InputKind, InputSource, Inputs, MetricDescriptor,
    ParamKind, Row, Trend, Unit, Value, Window,
};
use kpi_proto::kpi::v1 as pb;

use super::{timestamp_from_proto, timestamp_to_proto};

/// What every compute request of a call shares: window, buckets, zone, groups, filters,
/// comparison.
#[derive(Debug, Clone)]
struct Shape {
    window: Option<Window>,
    granularity: Option<Granularity>,
    time_zone: TimeZone,
    group_by: Vec<Dimension>,
    ungrouped: bool,
    filters: BTreeMap<Dimension, String>,
    compare: Option<Comparison>,
}

/// The `group_by` entry that asks for one row even when the metric groups by default.
const NO_GROUPS: &str = "none";

/// The parts of a request [`Shape`] is read from (ComputeRequest and BatchComputeRequest
/// name them alike).
struct ShapeFields<'a> {
    start: Option<&'a prost_types::Timestamp>,
    end: Option<&'a prost_types::Timestamp>,
    granularity: i32,
    time_zone: &'a str,
    group_by: &'a [String],
    filters: &'a BTreeMap<String, String>,
    compare: i32,
}

fn shape(fields: ShapeFields<'_>, violations: &mut Vec<FieldViolation>) -> Option<Shape> {
    let before = violations.len();
    let mut time = |name: &str, ts: Option<&prost_types::Timestamp>| {
        ts.and_then(|ts| match timestamp_from_proto(ts) {
            Ok(t) => Some(t),
            Err(reason) => {
                violations.push(FieldViolation::new(name, reason));
                None
            }
        })
    };
    let start = time("start", fields.start);
    let end = time("end", fields.end);
    let window = match (fields.start.is_some(), fields.end.is_some()) {
        (false, false) => None,
        (true, false) => {
            violations.push(FieldViolation::new(
                "end",
                "missing: give both start and end, or neither (calculator mode)",
            ));
            None
        }
        (false, true) => {
            violations.push(FieldViolation::new(
                "start",
                "missing: give both start and end, or neither (calculator mode)",
            ));
            None
        }
        (true, true) => match (start, end) {
            (Some(start), Some(end)) => match Window::new(start, end) {
                Ok(w) => Some(w),
                Err(ComputeError::InvalidArgument(v)) => {
                    violations.extend(v);
                    None
                }
                Err(other) => {
                    violations.push(FieldViolation::new("end", other.to_string()));
                    None
                }
            },
            _ => None,
        },
    };
    let granularity = match pb::Granularity::try_from(fields.granularity) {
        Ok(pb::Granularity::Unspecified) => None,
        Ok(pb::Granularity::Day) => Some(Granularity::Day),
        Ok(pb::Granularity::Week) => Some(Granularity::Week),
        Ok(pb::Granularity::Month) => Some(Granularity::Month),
        Ok(pb::Granularity::Quarter) => Some(Granularity::Quarter),
        Ok(pb::Granularity::Year) => Some(Granularity::Year),
        Err(_) => {
            violations.push(FieldViolation::new(
                "granularity",
                format!("{} is not a GRANULARITY value", fields.granularity),
            ));
            None
        }
    };
    let time_zone = match parse_time_zone(fields.time_zone) {
        Ok(tz) => Some(tz),
        Err(ComputeError::InvalidArgument(v)) => {
            violations.extend(v);
            None
        }
        Err(other) => {
            violations.push(FieldViolation::new("time_zone", other.to_string()));
            None
        }
    };
    let mut group_by = Vec::with_capacity(fields.group_by.len());
    let ungrouped = fields.group_by == [NO_GROUPS];
    for (i, name) in fields.group_by.iter().enumerate() {
        let field = format!("group_by[{i}]");
        if ungrouped {
            continue;
        }
        if name == NO_GROUPS {
            violations.push(FieldViolation::new(
                field,
                "`none` asks for no groups; it cannot be combined with dimensions",
            ));
            continue;
        }
        match parse_dimension(&field, name) {
            Ok(d) if group_by.contains(&d) => violations.push(FieldViolation::new(
                field,
                format!("`{name}` is listed twice"),
            )),
            Ok(d) => group_by.push(d),
            Err(v) => violations.push(v),
        }
    }
    let compare = match pb::Comparison::try_from(fields.compare) {
        Ok(pb::Comparison::Unspecified) => None,
        Ok(pb::Comparison::PreviousPeriod) => Some(Comparison::PreviousPeriod),
        Ok(pb::Comparison::PreviousYear) => Some(Comparison::PreviousYear),
        Err(_) => {
            violations.push(FieldViolation::new(
                "compare",
                format!("{} is not a COMPARISON value", fields.compare),
            ));
            None
        }
    };
    let mut filters = BTreeMap::new();
    for (name, value) in fields.filters {
        match parse_dimension(&format!("filters[{name}]"), name) {
            Ok(d) => {
                filters.insert(d, value.clone());
            }
            Err(v) => violations.push(v),
        }
    }
    if violations.len() > before {
        return None;
    }
    Some(Shape {
        window,
        granularity,
        time_zone: time_zone?,
        group_by,
        ungrouped,
        filters,
        compare,
    })
}

/// Server-side limits and the cancellation flag every spec of a call carries.
#[derive(Debug, Clone)]
pub(crate) struct SpecLimits {
    /// Most rows one answer may have.
    pub(crate) max_rows: usize,
    /// Set when the caller went away or its deadline passed.
    pub(crate) cancelled: Arc<AtomicBool>,
}

fn spec(
    shape: &Shape,
    metric_id: String,
    params: BTreeMap<String, String>,
    inputs: BTreeMap<String, String>,
    limits: &SpecLimits,
) -> ComputeSpec {
    ComputeSpec {
        metric_id,
        window: shape.window,
        granularity: shape.granularity,
        time_zone: shape.time_zone.clone(),
        calendar: Calendar::default(),
        group_by: shape.group_by.clone(),
        ungrouped: shape.ungrouped,
        filters: shape.filters.clone(),
        params,
        inputs,
        compare: shape.compare,
        max_rows: Some(limits.max_rows),
        cancelled: Some(limits.cancelled.clone()),
    }
}

/// Converts a Compute request; every malformed field is reported at once.
pub(crate) fn compute_spec(
    request: pb::ComputeRequest,
    limits: &SpecLimits,
) -> Result<ComputeSpec, ComputeError> {
    let mut violations = Vec::new();
    if request.metric_id.trim().is_empty() {
        violations.push(FieldViolation::new(
            "metric_id",
            "missing: name a metric such as sales.win_rate (ListMetrics lists them)",
        ));
    }
    let shape = shape(
        ShapeFields {
            start: request.start.as_ref(),
            end: request.end.as_ref(),
            granularity: request.granularity,
            time_zone: &request.time_zone,
            group_by: &request.group_by,
            filters: &request.filters,
            compare: request.compare,
        },
        &mut violations,
    );
    match shape {
        Some(shape) if violations.is_empty() => Ok(spec(
            &shape,
            request.metric_id,
            request.params,
            request.inputs,
            limits,
        )),
        _ => Err(ComputeError::InvalidArgument(violations)),
    }
}

/// Converts a BatchCompute request into one spec per metric, in request order. A malformed
/// shared field fails the whole call; a metric's own problems are its own result's.
pub(crate) fn batch_specs(
    request: pb::BatchComputeRequest,
    limits: &SpecLimits,
    max_metrics: usize,
) -> Result<Vec<ComputeSpec>, ComputeError> {
    let mut violations = Vec::new();
    if request.metrics.is_empty() {
        violations.push(FieldViolation::new(
            "metrics",
            "empty: name at least one metric",
        ));
    } else if request.metrics.len() > max_metrics {
        violations.push(FieldViolation::new(
            "metrics",
            format!(
                "{} metrics in one call; at most {max_metrics} are allowed",
                request.metrics.len()
            ),
        ));
    }
    let shape = shape(
        ShapeFields {
            start: request.start.as_ref(),
            end: request.end.as_ref(),
            granularity: request.granularity,
            time_zone: &request.time_zone,
            group_by: &request.group_by,
            filters: &request.filters,
            compare: request.compare,
        },
        &mut violations,
    );
    match shape {
        Some(shape) if violations.is_empty() => Ok(request
            .metrics
            .into_iter()
            .map(|m| spec(&shape, m.metric_id, m.params, m.inputs, limits))
            .collect()),
        _ => Err(ComputeError::InvalidArgument(violations)),
    }
}

/// A value in its wire form: the decimal string and the undefined reason, one of them empty.
fn value_to_proto(value: Value) -> (String, String) {
    match value {
        Value::Defined(v) => (v.to_string(), String::new()),
        Value::Undefined(reason) => (String::new(), reason),
    }
}

/// Inputs in their wire form: decimal strings by name.
fn inputs_to_proto(inputs: &Inputs) -> BTreeMap<String, String> {
    inputs
        .iter()
        .map(|(name, v)| (name.to_owned(), v.normalize().to_string()))
        .collect()
}

fn trend_to_proto(trend: Option<Trend>) -> pb::Trend {
    match trend {
        None => pb::Trend::Unspecified,
        Some(Trend::Improved) => pb::Trend::Improved,
        Some(Trend::Worsened) => pb::Trend::Worsened,
        Some(Trend::Unchanged) => pb::Trend::Unchanged,
    }
}

/// An answered row in its wire form: values and inputs as decimal strings; the comparison
/// fields stay empty without a comparison.
pub(crate) fn row_to_proto(row: Row) -> pb::Row {
    let (value, undefined_reason) = value_to_proto(row.value);
    let mut wire = pb::Row {
        bucket_start: row.bucket_start.map(timestamp_to_proto),
        bucket_label: row.bucket_label.unwrap_or_default(),
        group: row.group.into_iter().map(|(d, v)| (d.name(), v)).collect(),
        value,
        undefined_reason,
        inputs: inputs_to_proto(&row.inputs),
        cohort_age: row.cohort_age.map(|a| i32::try_from(a).unwrap_or(i32::MAX)),
        ..Default::default()
    };
    if let Some(compared) = row.comparison {
        let Compared {
            previous,
            previous_inputs,
            change,
            change_pct,
            trend,
        } = compared;
        (wire.previous_value, wire.previous_undefined_reason) = value_to_proto(previous);
        wire.previous_inputs = inputs_to_proto(&previous_inputs);
        wire.change = change.map(|c| c.to_string()).unwrap_or_default();
        (wire.change_pct, wire.change_pct_undefined_reason) = value_to_proto(change_pct);
        wire.trend = trend_to_proto(trend).into();
    }
    wire
}

fn unit_to_proto(unit: Unit) -> pb::Unit {
    match unit {
        Unit::Count => pb::Unit::Count,
        Unit::Currency => pb::Unit::Currency,
        Unit::Percent => pb::Unit::Percent,
        Unit::Ratio => pb::Unit::Ratio,
        Unit::Days => pb::Unit::Days,
        Unit::Hours => pb::Unit::Hours,
        Unit::Months => pb::Unit::Months,
        Unit::Score => pb::Unit::Score,
    }
}

fn direction_to_proto(direction: Direction) -> pb::Direction {
    match direction {
        Direction::HigherIsBetter => pb::Direction::HigherIsBetter,
        Direction::LowerIsBetter => pb::Direction::LowerIsBetter,
    }
}

fn input_kind_to_proto(kind: InputKind) -> pb::InputKind {
    match kind {
        InputKind::Count => pb::InputKind::Count,
        InputKind::NonNegative => pb::InputKind::NonNegative,
        InputKind::Positive => pb::InputKind::Positive,
        InputKind::Any => pb::InputKind::Any,
    }
}

/// A metric's descriptor in its wire form; params include the implied `precision`.
pub(crate) fn descriptor_to_proto(d: &MetricDescriptor) -> pb::MetricDescriptor {
    let dimensions = |dims: &[Dimension]| dims.iter().map(|x| x.name()).collect();
    pb::MetricDescriptor {
        id: d.id.to_owned(),
        name: d.name.to_owned(),
        family: d.family.to_owned(),
        description: d.description.to_owned(),
        formula: d.formula.to_owned(),
        unit: unit_to_proto(d.unit).into(),
        direction: direction_to_proto(d.direction).into(),
        inputs: d
            .inputs
            .iter()
            .map(|i| pb::InputDescriptor {
                name: i.name.to_owned(),
                description: i.description.to_owned(),
                kind: input_kind_to_proto(i.kind).into(),
                metric_id: match i.source {
                    InputSource::Metric(id) => id.to_owned(),
                    InputSource::Stored(_) | InputSource::Custom => String::new(),
                },
            })
            .collect(),
        params: d
            .all_params()
            .map(|p| {
                let (kind, allowed, min, max) = match p.kind {
                    ParamKind::Decimal { min, max } => (
                        pb::ParamKind::Decimal,
                        &[][..],
                        min.to_owned(),
                        max.to_owned(),
                    ),
                    ParamKind::Integer { min, max } => (
                        pb::ParamKind::Integer,
                        &[][..],
                        min.to_string(),
                        max.to_string(),
                    ),
                    ParamKind::Choice(words) => {
                        (pb::ParamKind::Choice, words, String::new(), String::new())
                    }
                    ParamKind::Set(words) => {
                        (pb::ParamKind::Set, words, String::new(), String::new())
                    }
                };
                pb::ParamDescriptor {
                    name: p.name.to_owned(),
                    description: p.description.to_owned(),
                    default_value: p.default.to_owned(),
                    kind: kind.into(),
                    allowed_values: allowed.iter().map(|w| (*w).to_owned()).collect(),
                    min,
                    max,
                }
            })
            .collect(),
        dimensions: dimensions(d.dimensions),
        default_group_by: dimensions(d.default_group_by),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::{Decimal, Inputs};

    fn limits() -> SpecLimits {
        SpecLimits {
            max_rows: 10,
            cancelled: Arc::new(AtomicBool::new(false)),
        }
    }

    fn ts(text: &str) -> Option<prost_types::Timestamp> {
        Some(timestamp_to_proto(text.parse().unwrap()))
    }

    fn fields(err: ComputeError) -> Vec<String> {
        match err {
            ComputeError::InvalidArgument(v) => v.into_iter().map(|v| v.field).collect(),
            other => panic!("not invalid argument: {other:?}"),
        }
    }

    #[test]
    fn calculator_request_has_no_window() {
        let spec = compute_spec(
            pb::ComputeRequest {
                metric_id: "sales.win_rate".into(),
                inputs: [("won".into(), "30".into()), ("lost".into(), "70".into())].into(),
                ..Default::default()
            },
            &limits(),
        )
        .unwrap();
        assert_eq!(spec.window, None);
        assert_eq!(spec.inputs["won"], "30");
        assert_eq!(spec.max_rows, Some(10));
        assert!(spec.cancelled.is_some());
    }

    #[test]
    fn window_series_groups_filters_and_zone_convert() {
        let spec = compute_spec(
            pb::ComputeRequest {
                metric_id: "sales.win_rate".into(),
                start: ts("2024-01-01T00:00:00Z"),
                end: ts("2024-04-01T00:00:00Z"),
                granularity: pb::Granularity::Month.into(),
                time_zone: "Europe/Paris".into(),
                group_by: vec!["owner".into(), "source".into()],
                filters: [("campaign".into(), "spring".into())].into(),
                params: [("precision".into(), "4".into())].into(),
                ..Default::default()
            },
            &limits(),
        )
        .unwrap();
        let window = spec.window.unwrap();
        assert_eq!(window.start, "2024-01-01T00:00:00Z".parse().unwrap());
        assert_eq!(spec.granularity, Some(Granularity::Month));
        assert_eq!(spec.time_zone, TimeZone::get("Europe/Paris").unwrap());
        assert_eq!(spec.group_by, [Dimension::Owner, Dimension::Source]);
        assert_eq!(spec.filters[&Dimension::Campaign], "spring");
        assert_eq!(spec.params["precision"], "4");
    }

    #[test]
    fn every_malformed_field_is_reported() {
        let err = compute_spec(
            pb::ComputeRequest {
                metric_id: String::new(),
                start: ts("2024-01-01T00:00:00Z"),
                granularity: 99,
                time_zone: "Mars/Olympus".into(),
                group_by: vec!["owner".into(), "colour".into(), "owner".into()],
                filters: [("planet".into(), "x".into())].into(),
                ..Default::default()
            },
            &limits(),
        )
        .unwrap_err();
        assert_eq!(
            fields(err),
            [
                "metric_id",
                "end",
                "granularity",
                "time_zone",
                "group_by[1]",
                "group_by[2]",
                "filters[planet]"
            ]
        );
    }

    #[test]
    fn none_alone_turns_default_groups_off() {
        let request = |group_by: &[&str]| pb::ComputeRequest {
            metric_id: "sales.stage_duration_days".into(),
            start: ts("2024-01-01T00:00:00Z"),
            end: ts("2024-02-01T00:00:00Z"),
            group_by: group_by.iter().map(|g| (*g).to_owned()).collect(),
            ..Default::default()
        };
        let spec = compute_spec(request(&["none"]), &limits()).unwrap();
        assert!(spec.ungrouped);
        assert!(spec.group_by.is_empty());
        let spec = compute_spec(request(&[]), &limits()).unwrap();
        assert!(!spec.ungrouped);
        let err = compute_spec(request(&["owner", "none"]), &limits()).unwrap_err();
        assert_eq!(fields(err), ["group_by[1]"]);
    }

    #[test]
    fn end_before_start_and_start_alone_are_invalid() {
        let err = compute_spec(
            pb::ComputeRequest {
                metric_id: "sales.win_rate".into(),
                start: ts("2024-02-01T00:00:00Z"),
                end: ts("2024-01-01T00:00:00Z"),
                ..Default::default()
            },
            &limits(),
        )
        .unwrap_err();
        assert_eq!(fields(err), ["end"]);
        let err = compute_spec(
            pb::ComputeRequest {
                metric_id: "sales.win_rate".into(),
                end: ts("2024-01-01T00:00:00Z"),
                ..Default::default()
            },
            &limits(),
        )
        .unwrap_err();
        assert_eq!(fields(err), ["start"]);
    }

    #[test]
    fn batch_shares_the_shape_and_keeps_metric_order() {
        let specs = batch_specs(
            pb::BatchComputeRequest {
                start: ts("2024-01-01T00:00:00Z"),
                end: ts("2025-01-01T00:00:00Z"),
                granularity: pb::Granularity::Quarter.into(),
                metrics: vec![
                    pb::BatchComputeMetric {
                        metric_id: "sales.win_rate".into(),
                        ..Default::default()
                    },
                    pb::BatchComputeMetric {
                        metric_id: "success.nps".into(),
                        params: [("scale".into(), "5".into())].into(),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
            &limits(),
            100,
        )
        .unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[1].metric_id, "success.nps");
        assert_eq!(specs[1].params["scale"], "5");
        assert_eq!(specs[0].granularity, Some(Granularity::Quarter));
        assert_eq!(specs[0].window, specs[1].window);
    }

    #[test]
    fn batch_needs_one_to_max_metrics() {
        let err = batch_specs(pb::BatchComputeRequest::default(), &limits(), 2).unwrap_err();
        assert_eq!(fields(err), ["metrics"]);
        let three = pb::BatchComputeRequest {
            metrics: vec![pb::BatchComputeMetric::default(); 3],
            ..Default::default()
        };
        let err = batch_specs(three, &limits(), 2).unwrap_err();
        assert_eq!(fields(err), ["metrics"]);
    }

    #[test]
    fn rows_carry_decimal_strings_and_undefined_reasons() {
        let row = row_to_proto(Row {
            cohort_age: None,
            bucket_start: Some("2024-02-01T00:00:00Z".parse().unwrap()),
            bucket_label: None,
            group: [(Dimension::Owner, "alice".to_owned())].into(),
            value: Value::Defined(Decimal::new(125, 1)),
            inputs: Inputs::new()
                .with("cac", Decimal::new(100000, 2))
                .with("new_customer_mrr", Decimal::from(100)),
            comparison: None,
        });
        assert_eq!(row.value, "12.5");
        assert_eq!(row.undefined_reason, "");
        assert_eq!(row.group["owner"], "alice");
        assert_eq!(row.inputs["cac"], "1000");
        assert_eq!(row.inputs["new_customer_mrr"], "100");
        assert_eq!(row.bucket_start.unwrap().seconds, 1_706_745_600);

        let row = row_to_proto(Row {
            cohort_age: None,
            bucket_start: None,
            bucket_label: None,
            group: BTreeMap::new(),
            value: Value::Undefined("no deals were closed".into()),
            inputs: Inputs::new(),
            comparison: None,
        });
        assert_eq!(row.value, "");
        assert_eq!(row.undefined_reason, "no deals were closed");
        assert_eq!(row.bucket_start, None);
        assert_eq!(row.previous_value, "");
        assert_eq!(row.trend, pb::Trend::Unspecified as i32);
    }

    #[test]
    fn compare_converts_and_an_unknown_value_is_refused() {
        let request = |compare: i32| pb::ComputeRequest {
            metric_id: "sales.win_rate".into(),
            start: ts("2024-01-01T00:00:00Z"),
            end: ts("2024-02-01T00:00:00Z"),
            compare,
            ..Default::default()
        };
        let spec = compute_spec(request(pb::Comparison::PreviousYear.into()), &limits()).unwrap();
        assert_eq!(spec.compare, Some(Comparison::PreviousYear));
        let spec = compute_spec(request(0), &limits()).unwrap();
        assert_eq!(spec.compare, None);
        let err = compute_spec(request(7), &limits()).unwrap_err();
        assert_eq!(fields(err), ["compare"]);
        let batch = pb::BatchComputeRequest {
            start: ts("2024-01-01T00:00:00Z"),
            end: ts("2024-02-01T00:00:00Z"),
            compare: pb::Comparison::PreviousPeriod.into(),
            metrics: vec![pb::BatchComputeMetric {
                metric_id: "sales.win_rate".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let specs = batch_specs(batch, &limits(), 10).unwrap();
        assert_eq!(specs[0].compare, Some(Comparison::PreviousPeriod));
    }

    #[test]
    fn compared_rows_carry_the_previous_value_and_the_change() {
        let row = row_to_proto(Row {
            cohort_age: None,
            bucket_start: None,
            bucket_label: None,
            group: BTreeMap::new(),
            value: Value::Defined(Decimal::from(75)),
            inputs: Inputs::new().with("won", Decimal::from(3)),
            comparison: Some(Compared {
                previous: Value::Defined(Decimal::new(6667, 2)),
                previous_inputs: Inputs::new().with("won", Decimal::from(2)),
                change: Some(Decimal::new(833, 2)),
                change_pct: Value::Defined(Decimal::new(1249, 2)),
                trend: Some(Trend::Improved),
            }),
        });
        assert_eq!(row.previous_value, "66.67");
        assert_eq!(row.previous_undefined_reason, "");
        assert_eq!(row.previous_inputs["won"], "2");
        assert_eq!(row.change, "8.33");
        assert_eq!(row.change_pct, "12.49");
        assert_eq!(row.trend, pb::Trend::Improved as i32);

        let row = row_to_proto(Row {
            cohort_age: None,
            bucket_start: None,
            bucket_label: None,
            group: BTreeMap::new(),
            value: Value::Defined(Decimal::from(75)),
            inputs: Inputs::new(),
            comparison: Some(Compared {
                previous: Value::Undefined("no deals were closed".into()),
                previous_inputs: Inputs::new(),
                change: None,
                change_pct: Value::Undefined("the previous value is undefined".into()),
                trend: None,
            }),
        });
        assert_eq!(row.previous_value, "");
        assert_eq!(row.previous_undefined_reason, "no deals were closed");
        assert_eq!(row.change, "");
        assert_eq!(row.change_pct, "");
        assert_eq!(
            row.change_pct_undefined_reason,
            "the previous value is undefined"
        );
        assert_eq!(row.trend, pb::Trend::Unspecified as i32);
    }
}
