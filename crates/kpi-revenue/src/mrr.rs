use kpi_core::{
    Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor, MetricError,
    Params, Unit, Value,
};

/// `revenue.mrr`: monthly recurring revenue at the end of the window.
pub struct Mrr;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "revenue.mrr",
    name: "MRR",
    family: "revenue",
    description: "Monthly recurring revenue at the end of the window (or of each bucket). \
        mrr is the sum, over subscriptions active at the end, of the MRR in effect then: \
        the last of the subscription's (at, mrr) changes before the end. A subscription \
        that ended (ended_at, or a change to 0) before the end counts nothing.",
    formula: "mrr",
    unit: Unit::Currency,
    direction: Direction::HigherIsBetter,
    inputs: &[InputSpec::stored(
        "mrr",
        "MRR in effect at the end of subscriptions active at the end",
        InputKind::NonNegative,
        Measure::MrrAtEnd,
    )],
    params: &[],
    dimensions: crate::REVENUE_DIMENSIONS,
    default_group_by: &[],
};

impl Metric for Mrr {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        Ok(Value::Defined(inputs.get("mrr")?))
    }
}

kpi_core::register_metric!(Mrr);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;
    use kpi_core::{ComputeSpec, Decimal, Granularity};

    fn mrr(value: &str, raw_params: &[(&str, &str)]) -> Result<Value, MetricError> {
        evaluate_with(&Mrr, &inputs([("mrr", value)]), raw_params)
    }

    #[test]
    fn worked_example_50_customers_averaging_200_is_10_000() {
        // 50 customers × 200 a month each = 10 000 of MRR.
        let total = Decimal::from(50) * Decimal::from(200);
        assert_eq!(total, d("10000"));
        assert_defined(mrr("10000", &[]), "10000");
    }

    #[test]
    fn rounds_to_precision() {
        assert_defined(mrr("1234.565", &[]), "1234.57");
        assert_defined(mrr("1234.5", &[("precision", "0")]), "1235");
    }

    #[test]
    fn no_subscription_is_zero_not_undefined() {
        // A sum has no denominator: no active subscription is an MRR of 0.
        assert_defined(mrr("0", &[]), "0");
    }

    #[test]
    fn negative_mrr_is_rejected() {
        assert_invalid_input(mrr("-1", &[]), "mrr");
    }

    #[test]
    fn reads_mrr_at_end_from_the_store() {
        let source = FakeSource::new([(Measure::MrrAtEnd, "10000")]);
        let rows = compute(
            &[&Mrr],
            &ComputeSpec::new("revenue.mrr", Some(q1_2024())),
            &source,
        );
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].value, Value::Defined(d("10000")));
        assert_eq!(rows[0].inputs, inputs([("mrr", "10000")]));
    }

    #[test]
    fn a_time_series_has_one_mrr_per_bucket() {
        let source = FakeSource::new([(Measure::MrrAtEnd, "10000")]);
        let mut spec = ComputeSpec::new("revenue.mrr", Some(q1_2024()));
        spec.granularity = Some(Granularity::Month);
        let rows = compute(&[&Mrr], &spec, &source);
        assert_eq!(rows.len(), 3, "January, February, March");
        assert!(rows.iter().all(|r| r.value == Value::Defined(d("10000"))));
    }
}
