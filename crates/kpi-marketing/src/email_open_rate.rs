use kpi_core::{
    percent, Dimension, Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor,
    MetricError, Params, Unit, Value,
};

/// `marketing.email_open_rate`: opens / delivered × 100.
pub struct EmailOpenRate;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "marketing.email_open_rate",
    name: "Email open rate",
    family: "marketing",
    description: "Share of delivered emails that were opened, over the email campaigns started \
        in the window. opens is the sum of the `opens` of those campaigns; delivered the sum \
        of their `delivered`.",
    formula: "opens / delivered × 100",
    unit: Unit::Percent,
    direction: Direction::HigherIsBetter,
    inputs: &[
        InputSpec::stored(
            "opens",
            "opens of email campaigns started in the window",
            InputKind::Count,
            Measure::EmailOpens,
        ),
        InputSpec::stored(
            "delivered",
            "emails delivered by campaigns started in the window",
            InputKind::Count,
            Measure::EmailDelivered,
        ),
    ],
    params: &[],
    dimensions: &[
        Dimension::Campaign,
        Dimension::Channel,
        Dimension::ANY_ATTRIBUTE,
    ],
    default_group_by: &[],
};

impl Metric for EmailOpenRate {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        let opens = inputs.get("opens")?;
        let delivered = inputs.get("delivered")?;
        kpi_core::at_most(
            "opens",
            opens,
            "delivered",
            delivered,
            "only a delivered email can be opened",
        )?;
        percent(
            opens,
            delivered,
            "no email was delivered by campaigns started in the window (delivered = 0)",
        )
    }
}

kpi_core::register_metric!(EmailOpenRate);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;

    fn open_rate(opens: &str, delivered: &str) -> Result<Value, MetricError> {
        evaluate_with(
            &EmailOpenRate,
            &inputs([("opens", opens), ("delivered", delivered)]),
            &[],
        )
    }

    #[test]
    fn opens_2500_of_10000_delivered_is_25() {
        assert_defined(open_rate("2500", "10000"), "25");
    }

    #[test]
    fn rounds_to_two_places() {
        // 2 / 3 × 100 = 66.666… → 66.67
        assert_defined(open_rate("2", "3"), "66.67");
    }

    #[test]
    fn nothing_delivered_is_undefined() {
        assert_undefined(
            open_rate("0", "0"),
            "no email was delivered by campaigns started in the window (delivered = 0)",
        );
    }

    #[test]
    fn more_opens_than_deliveries_is_rejected() {
        assert_invalid_input(open_rate("11", "10"), "opens");
    }

    #[test]
    fn fractional_counts_are_rejected() {
        assert!(matches!(
            open_rate("2.5", "10"),
            Err(MetricError::InvalidInput { .. })
        ));
    }

    #[test]
    fn reads_opens_and_deliveries_of_email_campaigns() {
        let source = FakeSource::new([
            (Measure::EmailOpens, "2500"),
            (Measure::EmailDelivered, "10000"),
        ]);
        let row = compute_one(
            &[&EmailOpenRate],
            &spec("marketing.email_open_rate", year_2024(), &[], &[]),
            &source,
        );
        assert_eq!(row.value, Value::Defined(d("25")));
        assert_eq!(row.inputs.get("opens").unwrap(), d("2500"));
        assert_eq!(row.inputs.get("delivered").unwrap(), d("10000"));
    }
}
