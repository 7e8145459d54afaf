use kpi_core::{
    Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor, MetricError,
    Params, Unit, Value,
};

/// `revenue.churned_mrr`: MRR lost to subscriptions that ended in the window.
pub struct ChurnedMrr;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "revenue.churned_mrr",
    name: "Churned MRR",
    family: "revenue",
    description: "MRR lost to subscriptions that ended in the window. churned_mrr is the sum, \
        over subscriptions that ended in the window (ended_at in the window, or an (at, mrr) \
        change to 0 in the window), of the MRR in effect just before they ended.",
    formula: "churned_mrr (MRR lost to ended subscriptions)",
    unit: Unit::Currency,
    direction: Direction::LowerIsBetter,
    inputs: &[InputSpec::stored(
        "churned_mrr",
        "MRR in effect just before each subscription that ended in the window ended",
        InputKind::NonNegative,
        Measure::ChurnedMrr,
    )],
    params: &[],
    dimensions: crate::REVENUE_DIMENSIONS,
    default_group_by: &[],
};

impl Metric for ChurnedMrr {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        Ok(Value::Defined(inputs.get("churned_mrr")?))
    }
}

kpi_core::register_metric!(ChurnedMrr);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;
    use kpi_core::ComputeSpec;

    fn churned(value: &str, raw_params: &[(&str, &str)]) -> Result<Value, MetricError> {
        evaluate_with(&ChurnedMrr, &inputs([("churned_mrr", value)]), raw_params)
    }

    #[test]
    fn value_is_the_mrr_of_ended_subscriptions() {
        // One subscription at 400 cancelled, one at 350 changed to 0 → 750.
        assert_defined(churned("750", &[]), "750");
    }

    #[test]
    fn lower_is_better() {
        assert_eq!(DESCRIPTOR.direction, Direction::LowerIsBetter);
    }

    #[test]
    fn rounds_to_precision() {
        assert_defined(churned("749.996", &[]), "750");
        assert_defined(churned("749.5", &[("precision", "0")]), "750");
    }

    #[test]
    fn no_ended_subscription_is_zero_not_undefined() {
        assert_defined(churned("0", &[]), "0");
    }

    #[test]
    fn negative_churn_is_rejected() {
        assert_invalid_input(churned("-750", &[]), "churned_mrr");
    }

    #[test]
    fn reads_churned_mrr_from_the_store() {
        let source = FakeSource::new([(Measure::ChurnedMrr, "750")]);
        let rows = compute(
            &[&ChurnedMrr],
            &ComputeSpec::new("revenue.churned_mrr", Some(q1_2024())),
            &source,
        );
        assert_eq!(rows[0].value, Value::Defined(d("750")));
        assert_eq!(rows[0].inputs, inputs([("churned_mrr", "750")]));
    }
}
