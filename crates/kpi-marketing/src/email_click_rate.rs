use kpi_core::{
    percent, Dimension, Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor,
    MetricError, Params, Unit, Value,
};

/// `marketing.email_click_rate`: clicks / delivered × 100.
pub struct EmailClickRate;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "marketing.email_click_rate",
    name: "Email click rate",
    family: "marketing",
    description: "Share of delivered emails with a click, over the email campaigns started \
        in the window. clicks is the sum of the `clicks` of those campaigns; delivered the sum \
        of their `delivered`.",
    formula: "clicks / delivered × 100",
    unit: Unit::Percent,
    direction: Direction::HigherIsBetter,
    inputs: &[
        InputSpec::stored(
            "clicks",
            "clicks of email campaigns started in the window",
            InputKind::Count,
            Measure::EmailClicks,
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

impl Metric for EmailClickRate {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        let clicks = inputs.get("clicks")?;
        let delivered = inputs.get("delivered")?;
        kpi_core::at_most(
            "clicks",
            clicks,
            "delivered",
            delivered,
            "only a delivered email can be clicked",
        )?;
        percent(
            clicks,
            delivered,
            "no email was delivered by campaigns started in the window (delivered = 0)",
        )
    }
}

kpi_core::register_metric!(EmailClickRate);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;

    fn click_rate(clicks: &str, delivered: &str) -> Result<Value, MetricError> {
        evaluate_with(
            &EmailClickRate,
            &inputs([("clicks", clicks), ("delivered", delivered)]),
            &[],
        )
    }

    #[test]
    fn clicks_250_of_10000_delivered_is_2_5() {
        assert_defined(click_rate("250", "10000"), "2.5");
    }

    #[test]
    fn rounds_to_two_places() {
        // 2 / 3 × 100 = 66.666… → 66.67
        assert_defined(click_rate("2", "3"), "66.67");
    }

    #[test]
    fn nothing_delivered_is_undefined() {
        assert_undefined(
            click_rate("0", "0"),
            "no email was delivered by campaigns started in the window (delivered = 0)",
        );
    }

    #[test]
    fn more_clicks_than_deliveries_is_rejected() {
        assert_invalid_input(click_rate("11", "10"), "clicks");
    }

    #[test]
    fn fractional_counts_are_rejected() {
        assert!(matches!(
            click_rate("2.5", "10"),
            Err(MetricError::InvalidInput { .. })
        ));
    }

    #[test]
    fn reads_clicks_and_deliveries_of_email_campaigns() {
        let source = FakeSource::new([
            (Measure::EmailClicks, "250"),
            (Measure::EmailDelivered, "10000"),
        ]);
        let row = compute_one(
            &[&EmailClickRate],
            &spec("marketing.email_click_rate", year_2024(), &[], &[]),
            &source,
        );
        assert_eq!(row.value, Value::Defined(d("2.5")));
        assert_eq!(row.inputs.get("clicks").unwrap(), d("250"));
        assert_eq!(row.inputs.get("delivered").unwrap(), d("10000"));
    }
}
