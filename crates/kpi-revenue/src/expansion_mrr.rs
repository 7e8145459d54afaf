use kpi_core::{
    Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor, MetricError,
    Params, Unit, Value,
};

/// `revenue.expansion_mrr`: MRR added by existing customers in the window.
pub struct ExpansionMrr;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "revenue.expansion_mrr",
    name: "Expansion MRR",
    family: "revenue",
    description: "MRR added by customers who already pay (upgrades, extra seats, add-ons). \
        expansion_mrr is the sum of the increases in the window of existing subscriptions \
        (each (at, mrr) change in the window above the MRR before it), plus the first MRR of \
        subscriptions started in the window by customers who already had one active.",
    formula: "expansion_mrr (sum of increases)",
    unit: Unit::Currency,
    direction: Direction::HigherIsBetter,
    inputs: &[InputSpec::stored(
        "expansion_mrr",
        "sum of MRR increases in the window of existing customers' subscriptions",
        InputKind::NonNegative,
        Measure::ExpansionMrr,
    )],
    params: &[],
    dimensions: crate::REVENUE_DIMENSIONS,
    default_group_by: &[],
};

impl Metric for ExpansionMrr {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        Ok(Value::Defined(inputs.get("expansion_mrr")?))
    }
}

kpi_core::register_metric!(ExpansionMrr);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;
    use kpi_core::ComputeSpec;

    fn expansion(value: &str, raw_params: &[(&str, &str)]) -> Result<Value, MetricError> {
        evaluate_with(
            &ExpansionMrr,
            &inputs([("expansion_mrr", value)]),
            raw_params,
        )
    }

    #[test]
    fn value_is_the_sum_of_increases() {
        // 200 → 300 (+100) and 500 → 900 (+400) → 500.
        assert_defined(expansion("500", &[]), "500");
    }

    #[test]
    fn rounds_to_precision() {
        assert_defined(expansion("12.345", &[]), "12.35");
        assert_defined(expansion("12.345", &[("precision", "0")]), "12");
    }

    #[test]
    fn no_increase_is_zero_not_undefined() {
        assert_defined(expansion("0", &[]), "0");
    }

    #[test]
    fn negative_expansion_is_rejected() {
        assert_invalid_input(expansion("-0.01", &[]), "expansion_mrr");
    }

    #[test]
    fn reads_expansion_mrr_from_the_store() {
        let source = FakeSource::new([(Measure::ExpansionMrr, "500")]);
        let rows = compute(
            &[&ExpansionMrr],
            &ComputeSpec::new("revenue.expansion_mrr", Some(q1_2024())),
            &source,
        );
        assert_eq!(rows[0].value, Value::Defined(d("500")));
        assert_eq!(rows[0].inputs, inputs([("expansion_mrr", "500")]));
    }
}
