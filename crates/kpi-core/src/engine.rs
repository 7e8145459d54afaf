//! The compute engine: validates a [`ComputeSpec`] against the metric's descriptor, splits
//! the window into buckets and groups, reads inputs (explicit ones from the request, the rest
//! from a [`DataSource`] or from other metrics), evaluates the formula and rounds; with a
//! comparison, evaluates each row's previous period through the same memo and compares.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use jiff::tz::TimeZone;
use jiff::Timestamp;
use rust_decimal::Decimal;

use crate::calendar::Calendar;
use crate::cohort::{self, CohortGranularity, Cohorts, COHORT_GRANULARITY_PARAM};
use crate::comparison::{Compared, Comparison};
use crate::descriptor::{Dimension, InputSource, MetricDescriptor};
use crate::error::{ComputeError, FieldViolation, MetricError};
use crate::inputs::Inputs;
use crate::measure::{DataSource, Measure, Scope};
use crate::params::Params;
use crate::registry::Registry;
use crate::value::Value;
use crate::window::{months_in, years_in, Granularity, Window};
use crate::Metric;

/// One compute request in domain terms (the server converts the proto into this).
#[derive(Debug, Clone)]
pub struct ComputeSpec {
    /// The metric's id.
    pub metric_id: String,
    /// The window; `None` in pure calculator mode (every input given).
    pub window: Option<Window>,
    /// One row per calendar bucket when set.
    pub granularity: Option<Granularity>,
    /// The zone buckets and months are cut in.
    pub time_zone: TimeZone,
    /// The tenant's calendar: where weeks, fiscal quarters and fiscal years start.
    pub calendar: Calendar,
    /// One row per combination of these dimensions' values (the descriptor's default when
    /// empty and the answer comes from stored records).
    pub group_by: Vec<Dimension>,
    /// One row for the whole scope even when the metric groups by default (the request said
    /// `group_by: ["none"]`); only meaningful with an empty `group_by`.
    pub ungrouped: bool,
    /// Dimension = value restrictions.
    pub filters: BTreeMap<Dimension, String>,
    /// Raw parameters, validated against the descriptor.
    pub params: BTreeMap<String, String>,
    /// Raw explicit inputs (decimal strings), replacing stored values.
    pub inputs: BTreeMap<String, String>,
    /// Compare each row with this period (needs a window).
    pub compare: Option<Comparison>,
    /// Most rows the answer may have (`None` = unlimited).
    pub max_rows: Option<usize>,
    /// Set when the caller gave up (deadline passed); the engine stops between rows.
    pub cancelled: Option<Arc<AtomicBool>>,
}

impl ComputeSpec {
    /// A calculator-mode request for `metric_id` with the given inputs.
    pub fn calculator<'a>(
        metric_id: &str,
        inputs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        Self {
            inputs: inputs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            ..Self::new(metric_id, None)
        }
    }

    /// A request for `metric_id` over `window`, no buckets, groups, params or inputs.
    pub fn new(metric_id: &str, window: Option<Window>) -> Self {
        Self {
            metric_id: metric_id.to_owned(),
            window,
            granularity: None,
            time_zone: TimeZone::UTC,
            calendar: Calendar::default(),
            group_by: Vec::new(),
            ungrouped: false,
            filters: BTreeMap::new(),
            params: BTreeMap::new(),
            inputs: BTreeMap::new(),
            compare: None,
            max_rows: None,
            cancelled: None,
        }
    }
}

/// One answered row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The bucket's first instant, when the request had a granularity.
    pub bucket_start: Option<Timestamp>,
    /// The bucket's name in the tenant's calendar (`FY2025 Q1`, `2025-03`, `2025-W10`;
    /// see [`Calendar::label`]), when the request had a granularity.
    pub bucket_label: Option<String>,
    /// The group's dimension values, when the request had groups.
    pub group: BTreeMap<Dimension, String>,
    /// The rounded value, or undefined with a reason.
    pub value: Value,
    /// The unrounded inputs the value was computed from.
    pub inputs: Inputs,
    /// The previous period's value and the change, when the request asked for a
    /// comparison.
    pub comparison: Option<Compared>,
    /// Whole periods from the end of the row's cohort's period to the end of its bucket
    /// (see [`Cohorts::age`]), when the row is for one cohort (grouped or filtered by it).
    pub cohort_age: Option<i64>,
}

/// Memoizes measures for the life of one request or batch, so metrics sharing an input
/// read it once.
struct MemoSource<'a> {
    inner: &'a dyn DataSource,
    /// Hashed with foldhash (hashbrown's default), not SipHash: a Compute looks up and
    /// stores a few dozen scopes, and SipHash made about 15 % of a warm one's instructions.
    memo: Mutex<hashbrown::HashMap<(Measure, Scope), Decimal>>,
}

impl<'a> MemoSource<'a> {
    fn new(inner: &'a dyn DataSource) -> Self {
        Self {
            inner,
            memo: Mutex::default(),
        }
    }
}

/// A memo key borrowing its scope: a lookup clones nothing (only a stored value's key is
/// owned). Hashes as the owned `(Measure, Scope)` does (a tuple hashes its fields in order).
#[derive(Hash)]
struct MemoKey<'s>(Measure, &'s Scope);

impl hashbrown::Equivalent<(Measure, Scope)> for MemoKey<'_> {
    fn equivalent(&self, key: &(Measure, Scope)) -> bool {
        self.0 == key.0 && *self.1 == key.1
    }
}

impl DataSource for MemoSource<'_> {
    fn measure(&self, measure: Measure, scope: &Scope) -> Result<Decimal, MetricError> {
        let key = MemoKey(measure, scope);
        if let Some(v) = self.memo.lock().expect("memo lock").get(&key) {
            return Ok(*v);
        }
        let v = self.inner.measure(measure, scope)?;
        self.memo
            .lock()
            .expect("memo lock")
            .insert((measure, scope.clone()), v);
        Ok(v)
    }

    fn group_values(
        &self,
        dimension: Dimension,
        scope: &Scope,
        measures: &[Measure],
    ) -> Result<Vec<String>, MetricError> {
        self.inner.group_values(dimension, scope, measures)
    }

    fn cohort_periods(
        &self,
        scope: &Scope,
        measures: &[Measure],
        period_of: &dyn Fn(Timestamp) -> Result<Window, MetricError>,
    ) -> Result<BTreeSet<Timestamp>, MetricError> {
        self.inner.cohort_periods(scope, measures, period_of)
    }
}

/// A source that answers 1 to every measure and records which were read: the measures
/// a metric reads, whose records its groups come from.
#[derive(Default)]
struct MeasuresRead(Mutex<BTreeSet<Measure>>);

impl DataSource for MeasuresRead {
    fn measure(&self, measure: Measure, _: &Scope) -> Result<Decimal, MetricError> {
        self.0.lock().expect("probe lock").insert(measure);
        Ok(Decimal::ONE)
    }

    fn group_values(
        &self,
        _: Dimension,
        _: &Scope,
        _: &[Measure],
    ) -> Result<Vec<String>, MetricError> {
        Ok(Vec::new())
    }
}

/// What a metric's [`Metric::gather`] reads its inputs through: measures for the current
/// scope, the window's months and years, params, and other metrics' values.
pub struct Gather<'a> {
    registry: &'a Registry,
    source: &'a dyn DataSource,
    scope: &'a Scope,
    time_zone: &'a TimeZone,
    params: &'a Params,
    raw_params: &'a BTreeMap<String, String>,
    explicit: &'a Inputs,
    depth: u8,
}

impl<'a> Gather<'a> {
    /// The value of `measure` over the current scope.
    pub fn measure(&self, measure: Measure) -> Result<Decimal, MetricError> {
        self.source.measure(measure, self.scope)
    }

    /// The value of `measure` over the current scope further restricted to
    /// `dimension = value` (a custom metric weighting open deals by stage, say).
    pub fn measure_where(
        &self,
        measure: Measure,
        dimension: Dimension,
        value: &str,
    ) -> Result<Decimal, MetricError> {
        let mut scope = self.scope.clone();
        scope.filters.insert(dimension, value.to_owned());
        self.source.measure(measure, &scope)
    }

    /// The value of `measure` over the current scope's filters (and group) in another
    /// window (a cohort metric's base: its cohort's acquisition period).
    pub fn measure_in(&self, measure: Measure, window: Window) -> Result<Decimal, MetricError> {
        let scope = Scope {
            window,
            filters: self.scope.filters.clone(),
        };
        self.source.measure(measure, &scope)
    }

    /// The window of the cohort the current scope is restricted to (grouped by `cohort`,
    /// or filtered on one): its acquisition period.
    pub fn cohort(&self) -> Option<Window> {
        self.scope
            .filters
            .get(&Dimension::Cohort)
            .and_then(|w| cohort::decode(w))
    }

    /// The values `dimension` takes among the records that `measures` read and that match
    /// the current scope's filters.
    pub fn group_values(
        &self,
        dimension: Dimension,
        measures: &[Measure],
    ) -> Result<Vec<String>, MetricError> {
        self.source.group_values(dimension, self.scope, measures)
    }

    /// The scope being computed (window, filters and group).
    pub fn scope(&self) -> &Scope {
        self.scope
    }

    /// The validated params of the metric being computed.
    pub fn params(&self) -> &Params {
        self.params
    }

    /// months(W) of the scope's window.
    pub fn months(&self) -> Decimal {
        months_in(&self.scope.window, self.time_zone)
    }

    /// years(W) of the scope's window.
    pub fn years(&self) -> Decimal {
        years_in(&self.scope.window, self.time_zone)
    }

    /// Another metric's unrounded value for the same scope. Explicit inputs of the request
    /// and params the other metric also accepts are passed on. An undefined value becomes
    /// [`MetricError::UndefinedInput`] for `input`.
    pub fn metric(&self, input: &str, metric_id: &str) -> Result<Decimal, MetricError> {
        if self.depth > 8 {
            return Err(MetricError::InvalidParam {
                param: "metric".into(),
                reason: format!("derived metrics nest too deeply at {metric_id}"),
            });
        }
        let metric = self
            .registry
            .get(metric_id)
            .ok_or_else(|| MetricError::Store(format!("metric {metric_id} is not linked")))?;
        let d = metric.descriptor();
        let raw: BTreeMap<String, String> = self
            .raw_params
            .iter()
            .filter(|(k, _)| d.param(k).is_some())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let params = Params::parse(d, &raw).map_err(|v| MetricError::InvalidParam {
            param: v[0].field.clone(),
            reason: v[0].description.clone(),
        })?;
        let explicit: Inputs = self
            .explicit
            .iter()
            .filter(|(k, _)| d.input(k).is_some())
            .collect();
        let sub = Gather {
            params: &params,
            raw_params: &raw,
            explicit: &explicit,
            depth: self.depth + 1,
            ..*self
        };
        match evaluate_in_scope(metric, &sub)?.0 {
            Value::Defined(v) => Ok(v),
            Value::Undefined(reason) => Err(MetricError::UndefinedInput {
                input: input.to_owned(),
                reason,
            }),
        }
    }

    /// Reads every input of `descriptor` that the request did not give, from its
    /// [`InputSource`]. [`InputSource::Custom`] inputs must be read by the metric's own
    /// `gather`, which may call this for the rest first.
    pub fn gather_declared(&self, descriptor: &MetricDescriptor) -> Result<Inputs, MetricError> {
        let mut inputs = Inputs::new();
        for spec in descriptor.inputs {
            if self.explicit.contains(spec.name) {
                continue;
            }
            let value = match spec.source {
                InputSource::Stored(m) => self.measure(m).map_err(|e| match e {
                    MetricError::UndefinedMeasure(reason) => MetricError::UndefinedInput {
                        input: spec.name.to_owned(),
                        reason,
                    },
                    e => e,
                })?,
                InputSource::Metric(id) => self.metric(spec.name, id)?,
                InputSource::Custom => continue,
            };
            inputs.set(spec.name, value);
        }
        Ok(inputs)
    }

    /// Whether the request gave input `name` explicitly (its stored value is not needed).
    pub fn is_explicit(&self, name: &str) -> bool {
        self.explicit.contains(name)
    }
}

/// Gathers (unless every input is explicit), overlays explicit inputs, evaluates.
fn evaluate_in_scope(
    metric: &dyn Metric,
    ctx: &Gather<'_>,
) -> Result<(Value, Inputs), MetricError> {
    let d = metric.descriptor();
    let all_explicit = d.inputs.iter().all(|i| ctx.explicit.contains(i.name));
    let mut inputs = if all_explicit {
        Inputs::new()
    } else {
        match metric.gather(ctx) {
            Ok(inputs) => inputs,
            Err(MetricError::UndefinedInput { input, reason }) => {
                return Ok((
                    Value::Undefined(format!("{input} is undefined: {reason}")),
                    ctx.explicit.clone(),
                ))
            }
            Err(MetricError::UndefinedMeasure(reason)) => {
                return Ok((Value::Undefined(reason), ctx.explicit.clone()))
            }
            Err(e) => return Err(e),
        }
    };
    for (name, value) in ctx.explicit.iter() {
        inputs.set(name, value);
    }
    check_kinds(d, &inputs)?;
    let value = metric.evaluate(&inputs, ctx.params)?;
    Ok((value, inputs))
}

fn check_kinds(d: &MetricDescriptor, inputs: &Inputs) -> Result<(), MetricError> {
    for spec in d.inputs {
        if let Some(v) = inputs.try_get(spec.name) {
            spec.kind
                .check(v)
                .map_err(|reason| MetricError::InvalidInput {
                    input: spec.name.to_owned(),
                    reason: format!("{reason} (got {v})"),
                })?;
        }
    }
    Ok(())
}

/// Evaluates a metric in calculator mode: every input given, no store. Used by tests and by
/// callers that hold the inputs already.
pub fn evaluate(
    metric: &dyn Metric,
    inputs: &Inputs,
    params: &Params,
) -> Result<Value, MetricError> {
    check_kinds(metric.descriptor(), inputs)?;
    Ok(metric.evaluate(inputs, params)?.rounded(params.precision()))
}

struct Validated<'r> {
    metric: &'static dyn Metric,
    params: Params,
    explicit: Inputs,
    group_by: Vec<Dimension>,
    registry: &'r Registry,
    /// How cohorts are cut, for a metric offering the `cohort` dimension.
    cohorts: Option<Cohorts>,
}

fn validate<'r>(
    registry: &'r Registry,
    spec: &ComputeSpec,
    stored: bool,
) -> Result<Validated<'r>, ComputeError> {
    let metric = registry
        .get(&spec.metric_id)
        .ok_or_else(|| ComputeError::UnknownMetric(spec.metric_id.clone()))?;
    let d = metric.descriptor();
    let mut violations: Vec<FieldViolation> = Vec::new();
    // Params of the metrics this one uses are accepted and passed on (checked here so a bad
    // value is reported before any work).
    let mut own = BTreeMap::new();
    let offers_cohort = d.offers(Dimension::Cohort);
    let mut cohort_granularity = CohortGranularity::default();
    for (name, text) in &spec.params {
        if name == COHORT_GRANULARITY_PARAM && offers_cohort {
            match text.parse() {
                Ok(g) => cohort_granularity = g,
                Err(reason) => {
                    violations.push(FieldViolation::new(format!("params[{name}]"), reason))
                }
            }
            if d.param(name).is_some() {
                own.insert(name.clone(), text.clone());
            }
        } else if d.param(name).is_some() {
            own.insert(name.clone(), text.clone());
        } else if let Some(dep) = registry.dependency_param(metric, name) {
            if let Err(reason) = crate::params::parse_value(dep, text.trim()) {
                violations.push(FieldViolation::new(format!("params[{name}]"), reason));
            }
        } else {
            own.insert(name.clone(), text.clone()); // reported as unknown by Params::parse
        }
    }
    let params = match Params::parse(d, &own) {
        Ok(p) => Some(p),
        Err(v) => {
            violations.extend(v);
            None
        }
    };
    let mut explicit = Inputs::new();
    for (name, text) in &spec.inputs {
        let field = format!("inputs[{name}]");
        let Some(input) = d.input(name) else {
            let known: Vec<_> = d.inputs.iter().map(|i| i.name).collect();
            violations.push(FieldViolation::new(
                field,
                format!("unknown input for {}; it takes: {}", d.id, known.join(", ")),
            ));
            continue;
        };
        match parse_decimal(text) {
            Ok(v) => match input.kind.check(v) {
                Ok(()) => explicit.set(name.as_str(), v),
                Err(reason) => {
                    violations.push(FieldViolation::new(field, format!("{reason} (got {v})")))
                }
            },
            Err(reason) => violations.push(FieldViolation::new(field, reason)),
        }
    }
    for (i, dim) in spec.group_by.iter().enumerate() {
        if !d.offers(*dim) {
            violations.push(FieldViolation::new(
                format!("group_by[{i}]"),
                unsupported_dimension(d, *dim),
            ));
        }
    }
    for dim in spec.filters.keys() {
        if !d.offers(*dim) {
            violations.push(FieldViolation::new(
                format!("filters[{dim}]"),
                unsupported_dimension(d, *dim),
            ));
        }
    }
    if spec.window.is_none() {
        if spec.compare.is_some() {
            violations.push(FieldViolation::new(
                "compare",
                "a comparison needs a window: give start and end (calculator mode has no previous period)",
            ));
        }
        if spec.granularity.is_some() {
            violations.push(FieldViolation::new(
                "granularity",
                "a time series needs a window: give start and end",
            ));
        }
        if !spec.group_by.is_empty() {
            violations.push(FieldViolation::new(
                "group_by",
                "groups need a window: give start and end",
            ));
        }
        for input in d.inputs {
            if !explicit.contains(input.name) && !spec.inputs.contains_key(input.name) {
                violations.push(FieldViolation::new(
                    format!("inputs[{}]", input.name),
                    "missing: give every input, or a window (start and end) to read inputs from stored records",
                ));
            }
        }
    } else if !stored {
        violations.push(FieldViolation::new(
            "start",
            "this server has no record store; give every input instead of a window",
        ));
    }
    if !violations.is_empty() {
        return Err(ComputeError::InvalidArgument(violations));
    }
    let group_by = if spec.group_by.is_empty() && spec.window.is_some() && !spec.ungrouped {
        d.default_group_by.to_vec()
    } else {
        spec.group_by.clone()
    };
    Ok(Validated {
        metric,
        params: params.expect("params parsed when no violations"),
        explicit,
        group_by,
        registry,
        cohorts: offers_cohort.then(|| Cohorts {
            granularity: cohort_granularity,
            time_zone: spec.time_zone.clone(),
            calendar: spec.calendar,
        }),
    })
}

fn unsupported_dimension(d: &MetricDescriptor, dim: Dimension) -> String {
    let supported: Vec<_> = d.dimensions.iter().map(|x| x.name()).collect();
    if supported.is_empty() {
        format!(
            "{} cannot be grouped or filtered by {dim}; it supports no dimension",
            d.id
        )
    } else {
        format!(
            "{} cannot be grouped or filtered by {dim}; it supports: {}",
            d.id,
            supported.join(", ")
        )
    }
}

/// Parses a decimal string as kpid accepts it: plain decimal notation (`-12.50`), at most
/// 28 fractional digits, no exponent, NaN or infinity.
pub fn parse_decimal(text: &str) -> Result<Decimal, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty: expected a decimal number such as 1250.50".into());
    }
    let body = t.strip_prefix(['-', '+']).unwrap_or(t);
    let well_formed = !body.is_empty()
        && body.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && body.bytes().filter(|b| *b == b'.').count() <= 1
        && body.bytes().any(|b| b.is_ascii_digit());
    if !well_formed {
        return Err(format!(
            "`{}` is not a decimal number (expected digits with an optional sign and point, e.g. -1250.50)",
            truncate(t)
        ));
    }
    Decimal::from_str_exact(t).map_err(|_| {
        format!(
            "`{}` does not fit an exact decimal (at most 28 significant digits, |x| < 7.9e28)",
            truncate(t)
        )
    })
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s.to_owned()
    }
}

impl Registry {
    /// Answers one compute request. `source` is the tenant's stored records (`None` when
    /// the server runs without a store: calculator mode only).
    pub fn compute(
        &self,
        spec: &ComputeSpec,
        source: Option<&dyn DataSource>,
    ) -> Result<Vec<Row>, ComputeError> {
        let memo = source.map(MemoSource::new);
        self.compute_with(spec, memo.as_ref().map(|m| m as &dyn DataSource))
    }

    /// Answers several requests, sharing stored reads between them (a dashboard). Each
    /// request gets its own result.
    pub fn compute_batch(
        &self,
        specs: &[ComputeSpec],
        source: Option<&dyn DataSource>,
    ) -> Vec<Result<Vec<Row>, ComputeError>> {
        let memo = source.map(MemoSource::new);
        let shared = memo.as_ref().map(|m| m as &dyn DataSource);
        specs.iter().map(|s| self.compute_with(s, shared)).collect()
    }

    fn compute_with(
        &self,
        spec: &ComputeSpec,
        source: Option<&dyn DataSource>,
    ) -> Result<Vec<Row>, ComputeError> {
        let v = validate(self, spec, source.is_some())?;
        let precision = v.params.precision();
        let Some(window) = spec.window else {
            let value =
                evaluate(v.metric, &v.explicit, &v.params).map_err(ComputeError::from_metric)?;
            return Ok(vec![Row {
                bucket_start: None,
                bucket_label: None,
                group: BTreeMap::new(),
                value,
                inputs: v.explicit,
                comparison: None,
                cohort_age: None,
            }]);
        };
        let source = source.expect("validated: a window needs a source");
        let windows = match spec.granularity {
            Some(g) => window.calendar_buckets(g, &spec.time_zone, &spec.calendar)?,
            None => vec![window],
        };
        let previous_windows = match spec.compare {
            Some(compare) => Some(
                windows
                    .iter()
                    .map(|w| compare.previous_window(w, spec.granularity, &spec.time_zone))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            None => None,
        };
        // The filters as the store reads them: a cohort's label becomes its window.
        let filters = store_filters(&spec.filters, v.cohorts.as_ref())?;
        let filtered_cohort = spec
            .filters
            .get(&Dimension::Cohort)
            .and_then(|_| filters.get(&Dimension::Cohort))
            .and_then(|w| cohort::decode(w));
        // A cohort table (a metric grouped by cohort by default) has no row for a bucket
        // that ends before its cohort's period does.
        let cohort_table = v
            .metric
            .descriptor()
            .default_group_by
            .contains(&Dimension::Cohort);
        let mut base = Scope::new(window);
        base.filters = filters.clone();
        let groups = if v.group_by.is_empty() {
            vec![BTreeMap::new()]
        } else {
            // The groups come from the records the metric reads: the measures its formula
            // reads, found by gathering its inputs from a source that only records them.
            let read = MeasuresRead::default();
            let probe = Gather {
                registry: v.registry,
                source: &read,
                scope: &base,
                time_zone: &spec.time_zone,
                params: &v.params,
                raw_params: &spec.params,
                explicit: &v.explicit,
                depth: 0,
            };
            // Only the measures read matter, whatever the formula makes of them.
            let _ = evaluate_in_scope(v.metric, &probe);
            let measures: Vec<Measure> = read
                .0
                .into_inner()
                .expect("probe lock")
                .into_iter()
                .collect();
            self.groups(&v.group_by, &measures, source, &base, v.cohorts.as_ref())?
        };
        let rows = windows.len().saturating_mul(groups.len().max(1));
        if let Some(limit) = spec.max_rows {
            if rows > limit {
                return Err(ComputeError::TooManyRows { rows, limit });
            }
        }
        let mut out = Vec::with_capacity(rows);
        for (i, w) in windows.iter().enumerate() {
            for group in &groups {
                if spec
                    .cancelled
                    .as_ref()
                    .is_some_and(|c| c.load(Ordering::Relaxed))
                {
                    return Err(ComputeError::Cancelled);
                }
                let mut scope = Scope::new(*w);
                scope.filters = filters.clone();
                scope
                    .filters
                    .extend(store_filters(group, v.cohorts.as_ref())?);
                let cohort_window = match scope.filters.get(&Dimension::Cohort) {
                    Some(_) if group.contains_key(&Dimension::Cohort) => scope
                        .filters
                        .get(&Dimension::Cohort)
                        .and_then(|w| cohort::decode(w)),
                    _ => filtered_cohort,
                };
                let cohort_age = match (&v.cohorts, cohort_window) {
                    (Some(c), Some(cw)) => c.age(&cw, w, spec.granularity),
                    _ => None,
                };
                if cohort_table && cohort_window.is_some() && cohort_age.is_none() {
                    continue;
                }
                let ctx = Gather {
                    registry: v.registry,
                    source,
                    scope: &scope,
                    time_zone: &spec.time_zone,
                    params: &v.params,
                    raw_params: &spec.params,
                    explicit: &v.explicit,
                    depth: 0,
                };
                let (value, inputs) =
                    evaluate_in_scope(v.metric, &ctx).map_err(ComputeError::from_metric)?;
                if !group.is_empty() && inputs.iter().all(|(_, x)| x.is_zero()) {
                    continue;
                }
                let value = value.rounded(precision);
                let comparison = match &previous_windows {
                    Some(previous_windows) => {
                        // The previous period's scope: the same filters and group, its own
                        // window. Its measures go through the same memo as the row's.
                        let previous_scope = Scope {
                            window: previous_windows[i],
                            filters: scope.filters.clone(),
                        };
                        let (previous, previous_inputs) = evaluate_in_scope(
                            v.metric,
                            &Gather {
                                scope: &previous_scope,
                                ..ctx
                            },
                        )
                        .map_err(ComputeError::from_metric)?;
                        let compared = Compared::new(
                            &value,
                            previous.rounded(precision),
                            previous_inputs,
                            v.metric.descriptor().direction,
                            precision,
                        )
                        .map_err(ComputeError::from_metric)?;
                        Some(compared)
                    }
                    None => None,
                };
                out.push(Row {
                    bucket_start: spec.granularity.map(|_| w.start),
                    bucket_label: spec
                        .granularity
                        .map(|g| spec.calendar.label(g, w.start, &spec.time_zone)),
                    group: group.clone(),
                    value,
                    inputs,
                    comparison,
                    cohort_age,
                });
            }
        }
        Ok(out)
    }

    fn groups(
        &self,
        group_by: &[Dimension],
        measures: &[Measure],
        source: &dyn DataSource,
        base: &Scope,
        cohorts: Option<&Cohorts>,
    ) -> Result<Vec<BTreeMap<Dimension, String>>, ComputeError> {
        let mut groups = vec![BTreeMap::new()];
        for dim in group_by {
            let values = match (dim, cohorts) {
                // A group is a cohort period: the store cuts its customers' acquisition
                // instants into the request's periods.
                (Dimension::Cohort, Some(c)) => {
                    let period_of = |at: Timestamp| {
                        c.period_of(at)
                            .map_err(|e| MetricError::UnsupportedDimension {
                                dimension: Dimension::Cohort.name(),
                                reason: format!("the cohort of an acquisition at {at}: {e}"),
                            })
                    };
                    source
                        .cohort_periods(base, measures, &period_of)
                        .map_err(ComputeError::from_metric)?
                        .into_iter()
                        .map(|start| c.label(&Window { start, end: start }))
                        .collect()
                }
                _ => source
                    .group_values(*dim, base, measures)
                    .map_err(ComputeError::from_metric)?,
            };
            groups = groups
                .into_iter()
                .flat_map(|g| {
                    values.iter().map(move |val| {
                        let mut g = g.clone();
                        g.insert(*dim, val.clone());
                        g
                    })
                })
                .collect();
        }
        Ok(groups)
    }
}

/// `filters` as the store reads them: a cohort label becomes its period's window
/// ([`cohort::encode`]); an unknown label is an invalid argument.
fn store_filters(
    filters: &BTreeMap<Dimension, String>,
    cohorts: Option<&Cohorts>,
) -> Result<BTreeMap<Dimension, String>, ComputeError> {
    let mut out = filters.clone();
    if let (Some(label), Some(c)) = (filters.get(&Dimension::Cohort), cohorts) {
        let w = c
            .parse(label)
            .map_err(|reason| ComputeError::invalid("filters[cohort]", reason))?;
        out.insert(Dimension::Cohort, cohort::encode(&w));
    }
    Ok(out)
}

/// Parses a dimension name from a request field.
pub fn parse_dimension(field: &str, text: &str) -> Result<Dimension, FieldViolation> {
    Dimension::from_str(text).map_err(|e| FieldViolation::new(field, e))
}
