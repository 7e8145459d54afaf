use kpi_core::{
    percent, Dimension, Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor,
    MetricError, Params, Unit, Value,
};

/// `success.churn_rate`: lost / at_start × 100.
pub struct ChurnRate;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "success.churn_rate",
    name: "Churn rate",
    family: "success",
    description: "Share of the customers active at the start of the window who churned during \
        it. at_start counts customers active at start (acquired before start, not churned \
        before start); lost counts those of them whose churned_at is in the window. Customers \
        acquired in the window are in neither, even if they churn in it.",
    formula: "lost / at_start × 100",
    unit: Unit::Percent,
    direction: Direction::LowerIsBetter,
    inputs: &[
        InputSpec::stored(
            "lost",
            "customers active at start who churned in the window",
            InputKind::Count,
            Measure::CustomersChurnedFromStart,
        ),
        InputSpec::stored(
            "at_start",
            "customers active at the start of the window",
            InputKind::Count,
            Measure::CustomersAtStart,
        ),
    ],
    params: &[],
    dimensions: &[
        Dimension::Owner,
        Dimension::Source,
        Dimension::Campaign,
        Dimension::Channel,
        Dimension::Segment,
        Dimension::ANY_ATTRIBUTE,
        Dimension::ANY_CUSTOMER_ATTRIBUTE,
        Dimension::Cohort,
    ],
    default_group_by: &[],
};

impl Metric for ChurnRate {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        let lost = inputs.get("lost")?;
        let at_start = inputs.get("at_start")?;
        kpi_core::at_most(
            "lost",
            lost,
            "at_start",
            at_start,
            "only customers active at start can be lost",
        )?;
        percent(
            lost,
            at_start,
            "no customers were active at the start of the window (at_start = 0)",
        )
    }
}

kpi_core::register_metric!(ChurnRate);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;
    use kpi_core::Decimal;

    fn churn_rate(lost: i64, at_start: i64) -> Result<Value, MetricError> {
        evaluate_with(
            &ChurnRate,
            &inputs([("lost", lost), ("at_start", at_start)]),
            &[],
        )
    }

    #[test]
    fn worked_example_100_at_start_2_lost_5_gained_is_2() {
        // The 5 customers gained are not an input: 2 / 100 × 100 = 2.
        assert_defined(churn_rate(2, 100), "2");
    }

    #[test]
    fn rounds_to_two_places() {
        // 1 / 3 × 100 = 33.333… → 33.33
        assert_defined(churn_rate(1, 3), "33.33");
        // 2 / 3 × 100 = 66.666… → 66.67
        assert_defined(churn_rate(2, 3), "66.67");
    }

    #[test]
    fn no_customers_at_start_is_undefined() {
        assert!(matches!(churn_rate(0, 0), Ok(Value::Undefined(_))));
    }

    #[test]
    fn more_lost_than_at_start_is_invalid() {
        assert_invalid_input(churn_rate(5, 4), "lost");
        assert!(matches!(
            churn_rate(1, 0),
            Err(MetricError::InvalidInput { .. })
        ));
    }

    #[test]
    fn fractional_count_is_rejected() {
        assert!(matches!(
            evaluate_with(
                &ChurnRate,
                &inputs([("lost", "1.5"), ("at_start", "10")]),
                &[]
            ),
            Err(MetricError::InvalidInput { .. })
        ));
    }

    #[test]
    fn stored_measures_feed_lost_and_at_start() {
        let source = FakeSource::new([
            (Measure::CustomersChurnedFromStart, 2),
            (Measure::CustomersAtStart, 100),
        ]);
        let row = compute_one(
            &[&ChurnRate],
            &spec("success.churn_rate", year_2024(), &[], &[]),
            &source,
        );
        assert_eq!(row.inputs, inputs([("at_start", "100"), ("lost", "2")]));
        assert_eq!(row.value, Value::Defined(Decimal::from(2)));
    }

    #[test]
    fn explicit_input_overrides_the_stored_one() {
        // at_start is given, so CustomersAtStart is never read (the fake has no value for it).
        let source = FakeSource::new([(Measure::CustomersChurnedFromStart, 3)]);
        let row = compute_one(
            &[&ChurnRate],
            &spec(
                "success.churn_rate",
                year_2024(),
                &[],
                &[("at_start", "60")],
            ),
            &source,
        );
        assert_eq!(row.inputs, inputs([("at_start", "60"), ("lost", "3")]));
        assert_eq!(row.value, Value::Defined(Decimal::from(5)));
    }
}
