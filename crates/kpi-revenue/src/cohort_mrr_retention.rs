use kpi_core::cohort::COHORT_GRANULARITY_PARAM;
use kpi_core::{
    percent, Direction, Gather, InputKind, InputSource, InputSpec, Inputs, Measure, Metric,
    MetricDescriptor, MetricError, ParamKind, ParamSpec, Params, Unit, Value,
};

/// `revenue.cohort_mrr_retention`: mrr / starting_mrr × 100, per cohort and bucket.
pub struct CohortMrrRetention;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "revenue.cohort_mrr_retention",
    name: "Cohort net MRR retention",
    family: "revenue",
    description: "A cohort's MRR at the end of each bucket as a share of its MRR at the end \
        of its acquisition period: the net MRR retention cohort table (as ChartMogul's Net \
        MRR Retention cohorts; above 100 means the cohort expanded more than it contracted \
        and churned). A cohort is the customers acquired in the same period (the customer \
        record's acquired_at, so a customer who churns and comes back stays in their first \
        cohort and their returning MRR counts for it; param cohort_granularity: month, \
        quarter or year, cut in the request's time zone and the tenant's fiscal calendar). \
        Grouped by cohort by default; a bucket that ends before the cohort's period ends has \
        no row, and each row's cohort_age says how many periods after the cohort's period \
        it is.",
    formula: "mrr / starting_mrr × 100",
    unit: Unit::Percent,
    direction: Direction::HigherIsBetter,
    inputs: &[
        InputSpec::stored(
            "mrr",
            "the cohort's MRR at the end of the bucket",
            InputKind::NonNegative,
            Measure::MrrAtEnd,
        ),
        InputSpec {
            name: "starting_mrr",
            description: "the cohort's MRR at the end of its acquisition period",
            kind: InputKind::NonNegative,
            source: InputSource::Custom,
        },
    ],
    params: &[ParamSpec {
        name: COHORT_GRANULARITY_PARAM,
        description: "the cohorts' period: month, quarter or year",
        default: "month",
        kind: ParamKind::Choice(&["month", "quarter", "year"]),
    }],
    dimensions: crate::REVENUE_DIMENSIONS,
    default_group_by: &[kpi_core::Dimension::Cohort],
};

impl Metric for CohortMrrRetention {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn gather(&self, ctx: &Gather<'_>) -> Result<Inputs, MetricError> {
        let mut inputs = ctx.gather_declared(&DESCRIPTOR)?;
        if !ctx.is_explicit("starting_mrr") {
            let Some(cohort) = ctx.cohort() else {
                return Err(MetricError::InvalidParam {
                    param: "group_by".into(),
                    reason: "a cohort metric needs a cohort: group by cohort (the default) \
                        or filter on one"
                        .into(),
                });
            };
            inputs.set("starting_mrr", ctx.measure_in(Measure::MrrAtEnd, cohort)?);
        }
        Ok(inputs)
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        percent(
            inputs.get("mrr")?,
            inputs.get("starting_mrr")?,
            "the cohort had no MRR at the end of its acquisition period (starting_mrr = 0)",
        )
    }
}

kpi_core::register_metric!(CohortMrrRetention);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;

    fn retention(mrr: &str, starting: &str) -> Result<Value, MetricError> {
        evaluate_with(
            &CohortMrrRetention,
            &inputs([("mrr", mrr), ("starting_mrr", starting)]),
            &[],
        )
    }

    #[test]
    fn worked_example_expansion_above_100() {
        // 330 / 300 × 100 = 110: net expansion
        assert_defined(retention("330", "300"), "110");
    }

    #[test]
    fn a_cohort_that_churned_entirely_is_0() {
        assert_defined(retention("0", "300"), "0");
    }

    #[test]
    fn no_starting_mrr_is_undefined() {
        assert_undefined(
            retention("50", "0"),
            "the cohort had no MRR at the end of its acquisition period (starting_mrr = 0)",
        );
    }
}
