use kpi_core::{
    percent, Dimension, Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor,
    MetricError, Params, Unit, Value,
};

/// `success.repeat_customer_rate`: repeat / buyers × 100.
pub struct RepeatCustomerRate;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "success.repeat_customer_rate",
    name: "Repeat customer rate",
    family: "success",
    description: "Share of the customers who bought in the window who bought more than once. \
        buyers counts distinct customers with a purchase in the window; repeat counts those \
        of them with two or more purchases in the window.",
    formula: "repeat / buyers × 100",
    unit: Unit::Percent,
    direction: Direction::HigherIsBetter,
    inputs: &[
        InputSpec::stored(
            "repeat",
            "customers with two or more purchases in the window",
            InputKind::Count,
            Measure::RepeatBuyers,
        ),
        InputSpec::stored(
            "buyers",
            "distinct customers with a purchase in the window",
            InputKind::Count,
            Measure::Buyers,
        ),
    ],
    params: &[],
    dimensions: &[
        Dimension::Owner,
        Dimension::Source,
        Dimension::Segment,
        Dimension::ANY_ATTRIBUTE,
        Dimension::ANY_CUSTOMER_ATTRIBUTE,
        Dimension::Cohort,
    ],
    default_group_by: &[],
};

impl Metric for RepeatCustomerRate {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        let repeat = inputs.get("repeat")?;
        let buyers = inputs.get("buyers")?;
        kpi_core::at_most(
            "repeat",
            repeat,
            "buyers",
            buyers,
            "repeat customers are part of the buyers",
        )?;
        percent(
            repeat,
            buyers,
            "no customer made a purchase in the window (buyers = 0)",
        )
    }
}

kpi_core::register_metric!(RepeatCustomerRate);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;
    use kpi_core::Decimal;

    fn repeat_customer_rate(repeat: i64, buyers: i64) -> Result<Value, MetricError> {
        evaluate_with(
            &RepeatCustomerRate,
            &inputs([("repeat", repeat), ("buyers", buyers)]),
            &[],
        )
    }

    #[test]
    fn share_of_buyers_who_bought_again() {
        // 500 buyers, 125 of them bought twice or more: 125 / 500 × 100 = 25
        assert_defined(repeat_customer_rate(125, 500), "25");
    }

    #[test]
    fn rounds_to_two_places() {
        // 1 / 6 × 100 = 16.666… → 16.67
        assert_defined(repeat_customer_rate(1, 6), "16.67");
    }

    #[test]
    fn no_buyers_is_undefined() {
        assert!(matches!(
            repeat_customer_rate(0, 0),
            Ok(Value::Undefined(_))
        ));
    }

    #[test]
    fn more_repeat_than_buyers_is_invalid() {
        assert_invalid_input(repeat_customer_rate(6, 5), "repeat");
    }

    #[test]
    fn stored_measures_feed_repeat_and_buyers() {
        let source = FakeSource::new([(Measure::RepeatBuyers, 125), (Measure::Buyers, 500)]);
        let row = compute_one(
            &[&RepeatCustomerRate],
            &spec("success.repeat_customer_rate", year_2024(), &[], &[]),
            &source,
        );
        assert_eq!(row.inputs, inputs([("buyers", "500"), ("repeat", "125")]));
        assert_eq!(row.value, Value::Defined(Decimal::from(25)));
    }
}
