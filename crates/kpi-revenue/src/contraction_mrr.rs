use kpi_core::{
    Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor, MetricError,
    Params, Unit, Value,
};

/// `revenue.contraction_mrr`: MRR lost to downgrades that keep the subscription.
pub struct ContractionMrr;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "revenue.contraction_mrr",
    name: "Contraction MRR",
    family: "revenue",
    description: "MRR lost to downgrades by customers who keep paying. contraction_mrr is the \
        sum of the decreases in the window that do not end a subscription: each (at, mrr) \
        change in the window to a new MRR above 0 but below the MRR before it. A change to 0 \
        ends the subscription and counts as churned MRR instead.",
    formula: "contraction_mrr (sum of decreases)",
    unit: Unit::Currency,
    direction: Direction::LowerIsBetter,
    inputs: &[InputSpec::stored(
        "contraction_mrr",
        "sum of MRR decreases in the window that leave the subscription running",
        InputKind::NonNegative,
        Measure::ContractionMrr,
    )],
    params: &[],
    dimensions: crate::REVENUE_DIMENSIONS,
    default_group_by: &[],
};

impl Metric for ContractionMrr {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        Ok(Value::Defined(inputs.get("contraction_mrr")?))
    }
}

kpi_core::register_metric!(ContractionMrr);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;
    use kpi_core::ComputeSpec;

    fn contraction(value: &str, raw_params: &[(&str, &str)]) -> Result<Value, MetricError> {
        evaluate_with(
            &ContractionMrr,
            &inputs([("contraction_mrr", value)]),
            raw_params,
        )
    }

    #[test]
    fn value_is_the_sum_of_decreases() {
        // 300 → 200 (−100) and 900 → 750 (−150) → 250.
        assert_defined(contraction("250", &[]), "250");
    }

    #[test]
    fn lower_is_better() {
        assert_eq!(DESCRIPTOR.direction, Direction::LowerIsBetter);
    }

    #[test]
    fn rounds_to_precision() {
        assert_defined(contraction("0.125", &[]), "0.13");
    }

    #[test]
    fn no_decrease_is_zero_not_undefined() {
        assert_defined(contraction("0", &[]), "0");
    }

    #[test]
    fn negative_contraction_is_rejected() {
        assert_invalid_input(contraction("-5", &[]), "contraction_mrr");
    }

    #[test]
    fn reads_contraction_mrr_from_the_store() {
        let source = FakeSource::new([(Measure::ContractionMrr, "250")]);
        let rows = compute(
            &[&ContractionMrr],
            &ComputeSpec::new("revenue.contraction_mrr", Some(q1_2024())),
            &source,
        );
        assert_eq!(rows[0].value, Value::Defined(d("250")));
        assert_eq!(rows[0].inputs, inputs([("contraction_mrr", "250")]));
    }
}
