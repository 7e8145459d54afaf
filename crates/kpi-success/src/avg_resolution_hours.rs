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
    dimensions: &[Dimension::Agent, Dimension::Source, Dimension::Segment],
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
    use std::collections::BTreeMap;

    use super::*;
    use crate::test_support::{inputs_of, pairs, spec, FakeSource};
    use kpi_core::engine::evaluate;
    use kpi_core::{DataSource, Decimal, Registry, Scope};

    fn avg_resolution_hours(total: &str, resolved: i64) -> Result<Value, MetricError> {
        let inputs = Inputs::new()
            .with("resolution_hours_total", total.parse().unwrap())
            .with("resolved", Decimal::from(resolved));
        evaluate(&AvgResolutionHours, &inputs, &Params::default())
    }

    #[test]
    fn mean_hours_per_resolved_ticket() {
        // Tickets resolved after 2 h, 4 h and 12 h: 18 / 3 = 6
        assert_eq!(
            avg_resolution_hours("18", 3),
            Ok(Value::Defined(Decimal::from(6)))
        );
        // 1.5 h and 2 h: 3.5 / 2 = 1.75
        assert_eq!(
            avg_resolution_hours("3.5", 2),
            Ok(Value::Defined(Decimal::new(175, 2)))
        );
    }

    #[test]
    fn rounds_to_two_places() {
        // 10 / 3 = 3.333… → 3.33
        assert_eq!(
            avg_resolution_hours("10", 3),
            Ok(Value::Defined(Decimal::new(333, 2)))
        );
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
        assert!(matches!(
            avg_resolution_hours("-2", 1),
            Err(MetricError::InvalidInput { input, .. }) if input == "resolution_hours_total"
        ));
    }

    /// Answers each agent's measures from its own fake; lists the agents as the `agent`
    /// group values.
    struct ByAgent(BTreeMap<&'static str, FakeSource>);

    impl DataSource for ByAgent {
        fn measure(&self, measure: Measure, scope: &Scope) -> Result<Decimal, MetricError> {
            let agent = scope
                .filters
                .get(&Dimension::Agent)
                .ok_or_else(|| MetricError::Store("expected a scope for one agent".into()))?;
            self.0
                .get(agent.as_str())
                .ok_or_else(|| MetricError::Store(format!("unknown agent {agent}")))?
                .measure(measure, scope)
        }

        fn group_values(
            &self,
            dimension: Dimension,
            _scope: &Scope,
        ) -> Result<Vec<String>, MetricError> {
            Ok(match dimension {
                Dimension::Agent => self.0.keys().map(|a| (*a).to_owned()).collect(),
                _ => Vec::new(),
            })
        }
    }

    #[test]
    fn stored_measures_feed_total_and_resolved_per_agent_by_default() {
        let source = ByAgent(BTreeMap::from([
            (
                "ana",
                FakeSource::new([(Measure::TicketsResolved, 4)])
                    .with_decimal(Measure::ResolutionHoursTotal, "30.5"),
            ),
            (
                "bo",
                FakeSource::new([(Measure::TicketsResolved, 2)])
                    .with_decimal(Measure::ResolutionHoursTotal, "5"),
            ),
        ]));
        let registry =
            Registry::from_metrics([&AvgResolutionHours as &'static dyn Metric]).unwrap();
        let rows = registry
            .compute(
                &spec("success.avg_resolution_hours", &[], &[]),
                Some(&source),
            )
            .unwrap();
        assert_eq!(rows.len(), 2, "one row per agent when no group_by is given");
        assert_eq!(rows[0].group.get(&Dimension::Agent).unwrap(), "ana");
        assert_eq!(
            inputs_of(&rows[0]),
            pairs(&[("resolution_hours_total", "30.5"), ("resolved", "4")])
        );
        // 30.5 / 4 = 7.625 → 7.63
        assert_eq!(rows[0].value, Value::Defined(Decimal::new(763, 2)));
        assert_eq!(rows[1].group.get(&Dimension::Agent).unwrap(), "bo");
        assert_eq!(
            inputs_of(&rows[1]),
            pairs(&[("resolution_hours_total", "5"), ("resolved", "2")])
        );
        assert_eq!(rows[1].value, Value::Defined(Decimal::new(25, 1)));
    }
}
