use thiserror::Error;

/// A problem with one field of a request, reported to the caller as a
/// google.rpc.BadRequest field violation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The request field, e.g. `inputs[won]`, `params[scale]`, `end`.
    pub field: String,
    /// What is wrong with it, in words a person understands.
    pub description: String,
}

impl FieldViolation {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// What a metric's formula or input reading can fail with.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MetricError {
    /// An input is missing from the inputs handed to the formula.
    #[error("missing input `{0}`")]
    MissingInput(String),
    /// An input has a value the formula cannot accept (negative count, `lost > at_start`…).
    #[error("input `{input}`: {reason}")]
    InvalidInput {
        /// The input's name.
        input: String,
        /// Why it is not acceptable.
        reason: String,
    },
    /// A parameter has a value the formula cannot accept.
    #[error("parameter `{param}`: {reason}")]
    InvalidParam {
        /// The parameter's name.
        param: String,
        /// Why it is not acceptable.
        reason: String,
    },
    /// A sum, product or quotient does not fit a 96-bit decimal.
    #[error("arithmetic overflow in {0}")]
    Overflow(String),
    /// An input is another metric's value, and that value is undefined here; the metric
    /// using it is undefined too, with this reason.
    #[error("input `{input}` is undefined: {reason}")]
    UndefinedInput {
        /// The input's name.
        input: String,
        /// Why the metric it comes from is undefined.
        reason: String,
    },
    /// A filter names a dimension some records the measure reads cannot carry (a
    /// `customer.<name>` on spend, say): refused, never ignored.
    #[error("dimension `{dimension}`: {reason}")]
    UnsupportedDimension {
        /// The dimension, as requests name it.
        dimension: String,
        /// Which records cannot carry it.
        reason: String,
    },
    /// The store could not answer.
    #[error("store: {0}")]
    Store(String),
    /// A measure has no value here, for the reason given (a stored amount it reads could
    /// not be converted to the base currency: `no GBP rate on or before 2024-03-05`). The
    /// metric reading it is undefined with that reason; other rows are unaffected.
    #[error("undefined: {0}")]
    UndefinedMeasure(String),
    /// The request's deadline passed or it was cancelled.
    #[error("cancelled")]
    Cancelled,
}

/// Why a compute request could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ComputeError {
    /// No metric has this id.
    #[error("unknown metric `{0}`")]
    UnknownMetric(String),
    /// The request is malformed; one entry per bad field.
    #[error("invalid request: {}", describe(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// The store failed.
    #[error("store: {0}")]
    Store(String),
    /// The request's deadline passed or it was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// The answer would have more rows than allowed.
    #[error("the answer would have {rows} rows, more than the limit of {limit}")]
    TooManyRows {
        /// Rows the answer would have.
        rows: usize,
        /// The configured limit.
        limit: usize,
    },
}

fn describe(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl ComputeError {
    /// A single-field invalid-argument error.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }

    /// Maps a metric's error to a request error, naming the field it concerns.
    pub fn from_metric(err: MetricError) -> Self {
        match err {
            MetricError::MissingInput(name) => Self::invalid(
                format!("inputs[{name}]"),
                "missing: give it, or give a window so it is read from stored records",
            ),
            MetricError::InvalidInput { input, reason } => {
                Self::invalid(format!("inputs[{input}]"), reason)
            }
            MetricError::InvalidParam { param, reason } => {
                Self::invalid(format!("params[{param}]"), reason)
            }
            MetricError::Overflow(what) => Self::invalid(
                "inputs",
                format!("arithmetic overflow in {what}: the values are too large"),
            ),
            MetricError::UndefinedInput { input, reason } => Self::invalid(
                format!("inputs[{input}]"),
                format!("is undefined: {reason}"),
            ),
            MetricError::UnsupportedDimension { dimension, reason } => {
                Self::invalid(format!("filters[{dimension}]"), reason)
            }
            MetricError::Store(msg) => Self::Store(msg),
            // The engine makes it an undefined row; reaching here is a store failure.
            MetricError::UndefinedMeasure(reason) => Self::Store(reason),
            MetricError::Cancelled => Self::Cancelled,
        }
    }
}
