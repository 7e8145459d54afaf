use kpi_core::{
    ratio, Dimension, Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor,
    MetricError, Params, Unit, Value,
};

/// `success.first_response_hours`: response_hours_total / responded.
pub struct FirstResponseHours;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "success.first_response_hours",
    name: "Average first response time",
    family: "success",
    description: "Mean time, in hours, support tickets first answered in the window waited \
        from being opened to their first response. responded counts tickets whose \
        first_response_at is in the window; response_hours_total sums first_response_at − \
        opened_at over them, in exact hours.",
    formula: "response_hours_total / responded",
    unit: Unit::Hours,
    direction: Direction::LowerIsBetter,
    inputs: &[
        InputSpec::stored(
            "response_hours_total",
            "sum over tickets first answered in the window of first_response_at − opened_at, \
             in hours",
            InputKind::NonNegative,
            Measure::FirstResponseHoursTotal,
        ),
        InputSpec::stored(
            "responded",
            "tickets first answered in the window",
            InputKind::Count,
            Measure::TicketsResponded,
        ),
    ],
    params: &[],
    dimensions: &[
        Dimension::Agent,
        Dimension::Source,
        Dimension::Segment,
        Dimension::ANY_ATTRIBUTE,
        Dimension::ANY_CUSTOMER_ATTRIBUTE,
        Dimension::Cohort,
    ],
    default_group_by: &[],
};

impl Metric for FirstResponseHours {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        let total = inputs.get("response_hours_total")?;
        let responded = inputs.get("responded")?;
        ratio(
            total,
            responded,
            "no tickets got a first response in the window (responded = 0)",
        )
    }
}

kpi_core::register_metric!(FirstResponseHours);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;
    use kpi_core::Decimal;

    fn first_response_hours(total: &str, responded: i64) -> Result<Value, MetricError> {
        evaluate_with(
            &FirstResponseHours,
            &inputs([
                ("response_hours_total", d(total)),
                ("responded", Decimal::from(responded)),
            ]),
            &[],
        )
    }

    #[test]
    fn mean_hours_to_first_response() {
        // First answers after 30 min, 1 h and 4.5 h: 6 / 3 = 2
        assert_defined(first_response_hours("6", 3), "2");
    }

    #[test]
    fn rounds_to_two_places() {
        // 1 / 6 = 0.1666… → 0.17
        assert_defined(first_response_hours("1", 6), "0.17");
    }

    #[test]
    fn no_responded_tickets_is_undefined() {
        assert!(matches!(
            first_response_hours("0", 0),
            Ok(Value::Undefined(_))
        ));
    }

    #[test]
    fn fractional_ticket_count_is_rejected() {
        assert_invalid_input(
            evaluate_with(
                &FirstResponseHours,
                &inputs([("response_hours_total", "3"), ("responded", "2.5")]),
                &[],
            ),
            "responded",
        );
    }

    #[test]
    fn stored_measures_feed_total_and_responded() {
        let source = FakeSource::new([(Measure::TicketsResponded, 8)])
            .with(Measure::FirstResponseHoursTotal, "13.25");
        let row = compute_one(
            &[&FirstResponseHours],
            &spec("success.first_response_hours", year_2024(), &[], &[]),
            &source,
        );
        assert_eq!(
            row.inputs,
            inputs([("responded", "8"), ("response_hours_total", "13.25")])
        );
        // 13.25 / 8 = 1.65625 → 1.66
        assert_eq!(row.value, Value::Defined(Decimal::new(166, 2)));
    }
}
