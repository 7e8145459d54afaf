use kpi_core::cohort::COHORT_GRANULARITY_PARAM;
use kpi_core::{
    percent, Dimension, Direction, Gather, InputKind, InputSource, InputSpec, Inputs, Measure,
    Metric, MetricDescriptor, MetricError, ParamKind, ParamSpec, Params, Unit, Value,
};

/// `success.cohort_retention`: retained / cohort_size × 100, per cohort and bucket.
pub struct CohortRetention;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "success.cohort_retention",
    name: "Cohort customer retention",
    family: "success",
    description: "Share of a cohort's customers still subscribed at the end of each bucket: \
        the customer retention cohort table. A cohort is the customers acquired in the same \
        period (the customer record's acquired_at, so a customer who churns and comes back \
        stays in their first cohort; param cohort_granularity: month, quarter or year, cut in \
        the request's time zone and the tenant's fiscal calendar). As ChartMogul's Customer \
        Retention cohorts, a customer counts as retained while they have a subscription \
        active (a returning customer counts again once they are back). Grouped by cohort by \
        default; a bucket that ends before the cohort's period ends has no row, and each row's \
        cohort_age says how many periods after the cohort's period it is. A cohort with no \
        customer left is 0.",
    formula: "retained / cohort_size × 100",
    unit: Unit::Percent,
    direction: Direction::HigherIsBetter,
    inputs: &[
        InputSpec::stored(
            "retained",
            "customers of the cohort with a subscription active at the end of the bucket",
            InputKind::Count,
            Measure::PayingCustomersAtEnd,
        ),
        InputSpec {
            name: "cohort_size",
            description: "customers acquired in the cohort's period",
            kind: InputKind::Count,
            source: InputSource::Custom,
        },
    ],
    params: &[ParamSpec {
        name: COHORT_GRANULARITY_PARAM,
        description: "the cohorts' period: month, quarter or year",
        default: "month",
        kind: ParamKind::Choice(&["month", "quarter", "year"]),
    }],
    dimensions: &[
        Dimension::Owner,
        Dimension::Source,
        Dimension::Segment,
        Dimension::ANY_ATTRIBUTE,
        Dimension::ANY_CUSTOMER_ATTRIBUTE,
        Dimension::Cohort,
    ],
    default_group_by: &[Dimension::Cohort],
};

/// Why a cohort metric cannot be computed without a cohort.
pub(crate) fn no_cohort() -> MetricError {
    MetricError::InvalidParam {
        param: "group_by".into(),
        reason: "a cohort metric needs a cohort: group by cohort (the default) or filter on one"
            .into(),
    }
}

impl Metric for CohortRetention {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn gather(&self, ctx: &Gather<'_>) -> Result<Inputs, MetricError> {
        let mut inputs = ctx.gather_declared(&DESCRIPTOR)?;
        if !ctx.is_explicit("cohort_size") {
            let Some(cohort) = ctx.cohort() else {
                // Read so that the groups come from the customers too.
                ctx.measure(Measure::CustomersAcquired)?;
                return Err(no_cohort());
            };
            inputs.set(
                "cohort_size",
                ctx.measure_in(Measure::CustomersAcquired, cohort)?,
            );
        }
        Ok(inputs)
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        let retained = inputs.get("retained")?;
        let size = inputs.get("cohort_size")?;
        percent(
            retained,
            size,
            "the cohort has no customers (cohort_size = 0)",
        )
    }
}

kpi_core::register_metric!(CohortRetention);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;

    fn cohort_retention(retained: i64, size: i64) -> Result<Value, MetricError> {
        evaluate_with(
            &CohortRetention,
            &inputs([("retained", retained), ("cohort_size", size)]),
            &[],
        )
    }

    #[test]
    fn worked_example_3_of_4_kept_is_75() {
        // 3 / 4 × 100 = 75
        assert_defined(cohort_retention(3, 4), "75");
    }

    #[test]
    fn a_cohort_with_no_customer_left_is_0() {
        assert_defined(cohort_retention(0, 2), "0");
    }

    #[test]
    fn an_empty_cohort_is_undefined() {
        assert_undefined(
            cohort_retention(0, 0),
            "the cohort has no customers (cohort_size = 0)",
        );
    }
}
