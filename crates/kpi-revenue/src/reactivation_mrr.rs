//! `revenue.reactivation_mrr`: MRR won back from returning customers.

use kpi_core::{
    Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor, MetricError,
    Params, Unit, Value,
};

/// `revenue.reactivation_mrr`: the first MRR of customers who come back in the window.
pub struct ReactivationMrr;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "revenue.reactivation_mrr",
    name: "Reactivation MRR",
    family: "revenue",
    description: "MRR won back from customers who had paid before and come back. \
        reactivation_mrr is the sum of the first MRR of subscriptions started in the window \
        whose customer had no other subscription active when it started but had paid MRR \
        before it (one of their subscriptions had an MRR above 0 in effect from a time \
        strictly before this start). As ChartMogul's reactivation MRR (a previously paying \
        customer who had churned moves back onto a paid plan) and Stripe's (MRR growth = new \
        + reactivation + expansion − churned − contraction): no time limit applies between \
        the churn and the return, and a free subscription (MRR 0) before does not count as \
        having paid (Stripe leaves trials and free plans out of MRR; ChartMogul counts a \
        customer's first paid MRR as new business).",
    formula: "reactivation_mrr (first MRR of returning customers)",
    unit: Unit::Currency,
    direction: Direction::HigherIsBetter,
    inputs: &[InputSpec::stored(
        "reactivation_mrr",
        "first MRR of subscriptions started in the window by customers with none active who \
            had paid MRR before",
        InputKind::NonNegative,
        Measure::ReactivationMrr,
    )],
    params: &[],
    dimensions: crate::REVENUE_DIMENSIONS,
    default_group_by: &[],
};

impl Metric for ReactivationMrr {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        Ok(Value::Defined(inputs.get("reactivation_mrr")?))
    }
}

kpi_core::register_metric!(ReactivationMrr);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;
    use kpi_core::ComputeSpec;

    fn reactivation(value: &str, raw_params: &[(&str, &str)]) -> Result<Value, MetricError> {
        evaluate_with(
            &ReactivationMrr,
            &inputs([("reactivation_mrr", value)]),
            raw_params,
        )
    }

    #[test]
    fn value_is_the_reactivation_mrr() {
        // 2 customers who had churned come back at 120 and 80 → 200.
        assert_defined(reactivation("200", &[]), "200");
    }

    #[test]
    fn rounds_to_precision() {
        assert_defined(reactivation("49.995", &[]), "50");
        assert_defined(reactivation("49.95", &[("precision", "1")]), "50");
    }

    #[test]
    fn no_returning_customer_is_zero_not_undefined() {
        assert_defined(reactivation("0", &[]), "0");
    }

    #[test]
    fn negative_reactivation_mrr_is_rejected() {
        assert_invalid_input(reactivation("-10", &[]), "reactivation_mrr");
    }

    #[test]
    fn reads_reactivation_mrr_from_the_store() {
        let source = FakeSource::new([(Measure::ReactivationMrr, "200")]);
        let rows = compute(
            &[&ReactivationMrr],
            &ComputeSpec::new("revenue.reactivation_mrr", Some(q1_2024())),
            &source,
        );
        assert_eq!(rows[0].value, Value::Defined(d("200")));
        assert_eq!(rows[0].inputs, inputs([("reactivation_mrr", "200")]));
    }
}
