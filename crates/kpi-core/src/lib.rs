//! Core of kpid: the [`Metric`] trait, metric descriptors, the link-time registry, exact
//! values and rounding, time windows and buckets in a tenant's calendar, the measures metrics read from stored
//! records, comparisons with a previous period, and the [`engine`] that turns a compute
//! request into answered rows.
//!
//! Nothing here knows about protobuf or sled: the server converts at its edge, the store
//! implements [`DataSource`].
//!
//! # Adding a metric
//!
//! ```
//! use kpi_core::{
//!     Direction, Gather, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor,
//!     MetricError, Params, Unit, Value,
//! };
//!
//! struct OpenDeals;
//!
//! static OPEN_DEALS: MetricDescriptor = MetricDescriptor {
//!     id: "acme.open_deals",
//!     name: "Open deals",
//!     family: "acme",
//!     description: "Deals created in the window that are still open at its end.",
//!     formula: "open",
//!     unit: Unit::Count,
//!     direction: Direction::HigherIsBetter,
//!     inputs: &[InputSpec::stored("open", "open deals", InputKind::Count, Measure::DealsOpen)],
//!     params: &[],
//!     dimensions: &[],
//!     default_group_by: &[],
//! };
//!
//! impl Metric for OpenDeals {
//!     fn descriptor(&self) -> &'static MetricDescriptor {
//!         &OPEN_DEALS
//!     }
//!     fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
//!         Ok(Value::Defined(inputs.get("open")?))
//!     }
//! }
//!
//! kpi_core::register_metric!(OpenDeals);
//! # fn main() {}
//! ```

mod attribute;
mod calendar;
pub mod cohort;
mod comparison;
mod custom_measure;
mod descriptor;
pub mod docs;
pub mod engine;
mod error;
mod inputs;
mod measure;
mod params;
mod registry;
#[cfg(feature = "testing")]
pub mod testing;
mod value;
mod window;

pub use attribute::{check_attribute_name, AttributeName, MAX_ATTRIBUTE_NAME_BYTES};
pub use calendar::Calendar;
pub use comparison::{Compared, Comparison, Trend};
pub use custom_measure::{Aggregate, CustomMeasure, EventTime, FixedFilter, MeasuredRecords};
pub use descriptor::{
    Dimension, Direction, InputKind, InputSource, InputSpec, MetricDescriptor, ParamKind,
    ParamSpec, Unit, PRECISION_PARAM,
};
pub use engine::{ComputeSpec, Gather, Row};
pub use error::{ComputeError, FieldViolation, MetricError};
pub use inputs::Inputs;
pub use measure::{DataSource, Measure, Scope, SpendCategories, SurveyKind};
pub use params::{ParamValue, Params};
pub use registry::{registry, Registration, Registry, RegistryError};
pub use value::{at_most, percent, ratio, round, Value};
pub use window::{months_in, parse_time_zone, years_in, Granularity, Window};

/// The exact decimal type every amount, count and answer uses.
pub use rust_decimal::Decimal;

/// The Metric trait: a descriptor, a formula over named inputs, and optionally a custom way
/// of reading those inputs from stored records.
///
/// A metric is a unit struct registered with [`register_metric!`]. The formula
/// ([`Metric::evaluate`]) never knows whether its inputs came from the caller (calculator
/// mode) or from the store.
pub trait Metric: Send + Sync + 'static {
    /// The metric's contract and documentation: id, formula, inputs, params, dimensions.
    fn descriptor(&self) -> &'static MetricDescriptor;

    /// Computes the value from inputs (every input the descriptor names is present and has
    /// passed its [`InputKind`] check) and validated params. Relations between inputs that
    /// cannot hold (say `lost > at_start`) are [`MetricError::InvalidInput`]; a zero
    /// denominator is [`Value::Undefined`], never an error.
    fn evaluate(&self, inputs: &Inputs, params: &Params) -> Result<Value, MetricError>;

    /// Reads the inputs this metric needs from stored records for one scope (window,
    /// filters, group). The default reads each input from its [`InputSource`]; override it
    /// for inputs that combine several measures or depend on params.
    fn gather(&self, ctx: &Gather<'_>) -> Result<Inputs, MetricError> {
        ctx.gather_declared(self.descriptor())
    }

    /// Ids of the metrics this one reads through [`Gather::metric`]. A request for this
    /// metric may carry the params those metrics accept (`lifespan_years` on
    /// `marketing.clv_cac_ratio`); they are validated and passed on. The default lists the
    /// inputs declared [`InputSource::Metric`]; override it when `gather` picks a metric
    /// itself.
    fn uses_metrics(&self) -> Vec<&'static str> {
        self.descriptor()
            .inputs
            .iter()
            .filter_map(|i| match i.source {
                InputSource::Metric(id) => Some(id),
                _ => None,
            })
            .collect()
    }
}

/// Registers a metric (a constant expression, usually a unit struct) with the link-time
/// registry. The crate that calls it must be linked into the binary: reference it with
/// `use my_kpis as _;` where the binary is assembled.
#[macro_export]
macro_rules! register_metric {
    ($metric:expr) => {
        $crate::__private::inventory::submit! {
            $crate::Registration(&$metric)
        }
    };
}

#[doc(hidden)]
pub mod __private {
    pub use inventory;
}
