use kpi_core::{
    Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor, MetricError,
    Params, Unit, Value,
};

/// `revenue.new_mrr`: the first MRR of customers who never had paid MRR, in the window.
pub struct NewMrr;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "revenue.new_mrr",
    name: "New MRR",
    family: "revenue",
    description: "First MRR of a customer who never had paid MRR. new_mrr is the sum of the \
        first MRR (the first of the (at, mrr) changes) of subscriptions started in the window \
        whose customer had no other subscription active when it started and had never paid \
        MRR before it (no subscription of theirs had an MRR above 0 in effect before this \
        start; a free one of MRR 0 does not count). A customer with a subscription active \
        counts as expansion instead, and one who had paid before and comes back as \
        reactivation (revenue.reactivation_mrr). As ChartMogul's new business MRR (the MRR \
        when a lead first becomes a paying customer) and Stripe's new MRR.",
    formula: "new_mrr (first MRR of customers who never had paid MRR)",
    unit: Unit::Currency,
    direction: Direction::HigherIsBetter,
    inputs: &[InputSpec::stored(
        "new_mrr",
        "first MRR of subscriptions started in the window by customers with none active who \
            never had paid MRR",
        InputKind::NonNegative,
        Measure::NewMrr,
    )],
    params: &[],
    dimensions: crate::REVENUE_DIMENSIONS,
    default_group_by: &[],
};

impl Metric for NewMrr {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        Ok(Value::Defined(inputs.get("new_mrr")?))
    }
}

kpi_core::register_metric!(NewMrr);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;
    use kpi_core::ComputeSpec;

    fn new_mrr(value: &str, raw_params: &[(&str, &str)]) -> Result<Value, MetricError> {
        evaluate_with(&NewMrr, &inputs([("new_mrr", value)]), raw_params)
    }

    #[test]
    fn value_is_the_new_mrr() {
        // 3 new subscribers starting at 100, 250 and 650 → 1 000.
        assert_defined(new_mrr("1000", &[]), "1000");
    }

    #[test]
    fn rounds_to_precision() {
        assert_defined(new_mrr("99.995", &[]), "100");
        assert_defined(new_mrr("99.95", &[("precision", "1")]), "100");
    }

    #[test]
    fn no_new_subscriber_is_zero_not_undefined() {
        assert_defined(new_mrr("0", &[]), "0");
    }

    #[test]
    fn negative_new_mrr_is_rejected() {
        assert_invalid_input(new_mrr("-100", &[]), "new_mrr");
    }

    #[test]
    fn reads_new_mrr_from_the_store() {
        let source = FakeSource::new([(Measure::NewMrr, "1000")]);
        let rows = compute(
            &[&NewMrr],
            &ComputeSpec::new("revenue.new_mrr", Some(q1_2024())),
            &source,
        );
        assert_eq!(rows[0].value, Value::Defined(d("1000")));
        assert_eq!(rows[0].inputs, inputs([("new_mrr", "1000")]));
    }
}
