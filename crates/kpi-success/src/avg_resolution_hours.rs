use kpi_core::{
    ratio, Dimension, Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor,
    MetricError, Params, Unit, Value,
};

/// `success.avg_resolution_hours`: resolution_hours_total / resolved.
pub struct AvgResolutionHours;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "success.avg_resolution_hours",
    name: "Average resolution time",
    family: "success",
    description: "Mean time, in hours, support tickets resolved in the window took from being \
        opened to being resolved. resolved counts tickets whose resolved_at is in the window; \
        resolution_hours_total sums resolved_at − opened_at over them, in exact hours. \
        Grouped by agent by default.",
    formula: "resolution_hours_total / resolved",
    unit: Unit::Hours,
    direction: Direction::LowerIsBetter,
    inputs: &[
        InputSpec::stored(
            "resolution_hours_total",
            "sum over tickets resolved in the window of resolved_at − opened_at, in hours",
            InputKind::NonNegative,
            Measure::ResolutionHoursTotal,
        ),
        InputSpec::stored(
            "resolved",
            "tickets resolved in the window",
            InputKind::Count,
            Measure::TicketsResolved,
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
    default_group_by: &[Dimension::Agent],
};

impl Metric for AvgResolutionHours {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        let total = inputs.get("resolution_hours_total")?;
        let resolved = inputs.get("resolved")?;
        ratio(
            total,
            resolved,
            "no tickets were resolved in the window (resolved = 0)",
        )
    }
}

kpi_core::register_metric!(AvgResolutionHours);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;
    use kpi_core::Decimal;

    fn avg_resolution_hours(total: &str, resolved: i64) -> Result<Value, MetricError> {
        evaluate_with(
            &AvgResolutionHours,
            &inputs([
                ("resolution_hours_total", d(total)),
                ("resolved", Decimal::from(resolved)),
            ]),
            &[],
        )
    }

    #[test]
    fn mean_hours_per_resolved_ticket() {
        // Tickets resolved after 2 h, 4 h and 12 h: 18 / 3 = 6
        assert_defined(avg_resolution_hours("18", 3), "6");
        // 1.5 h and 2 h: 3.5 / 2 = 1.75
        assert_defined(avg_resolution_hours("3.5", 2), "1.75");
    }

    #[test]
    fn rounds_to_two_places() {
        // 10 / 3 = 3.333… → 3.33
        assert_defined(avg_resolution_hours("10", 3), "3.33");
    }

    #[test]
    fn no_resolved_tickets_is_undefined() {
        assert!(matches!(
            avg_resolution_hours("0", 0),
            Ok(Value::Undefined(_))
        ));
    }

    #[test]
    fn negative_hours_are_rejected() {
        assert_invalid_input(avg_resolution_hours("-2", 1), "resolution_hours_total");
    }

    #[test]
    fn stored_measures_feed_total_and_resolved_per_agent_by_default() {
        // Each agent's scope answers its own measures; the source holds none outside them.
        let source = FakeSource::default()
            .with_group(
                Dimension::Agent,
                "ana",
                [
                    (Measure::TicketsResolved, d("4")),
                    (Measure::ResolutionHoursTotal, d("30.5")),
                ],
            )
            .with_group(
                Dimension::Agent,
                "bo",
                [
                    (Measure::TicketsResolved, d("2")),
                    (Measure::ResolutionHoursTotal, d("5")),
                ],
            );
        let rows = compute(
            &[&AvgResolutionHours],
            &spec("success.avg_resolution_hours", year_2024(), &[], &[]),
            &source,
        );
        assert_eq!(rows.len(), 2, "one row per agent when no group_by is given");
        assert_eq!(rows[0].group.get(&Dimension::Agent).unwrap(), "ana");
        assert_eq!(
            rows[0].inputs,
            inputs([("resolution_hours_total", "30.5"), ("resolved", "4")])
        );
        // 30.5 / 4 = 7.625 → 7.63
        assert_eq!(rows[0].value, Value::Defined(Decimal::new(763, 2)));
        assert_eq!(rows[1].group.get(&Dimension::Agent).unwrap(), "bo");
        assert_eq!(
            rows[1].inputs,
            inputs([("resolution_hours_total", "5"), ("resolved", "2")])
        );
        assert_eq!(rows[1].value, Value::Defined(Decimal::new(25, 1)));
    }
}
