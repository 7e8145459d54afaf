use kpi_core::{
    Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor, MetricError,
    Params, Unit, Value,
};

/// `sales.activities`: activities (calls, meetings, emails, demos…).
pub struct Activities;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "sales.activities",
    name: "Activities",
    family: "sales",
    description: "Number of activities (calls, meetings, emails, demos…) in the window. \
                  activities counts the activity records whose occurred_at is in the window; \
                  group by owner for activities per rep, by activity_type for the mix, or \
                  filter on one type (activity_type = meeting) for meetings booked.",
    formula: "activities",
    unit: Unit::Count,
    direction: Direction::HigherIsBetter,
    inputs: &[InputSpec::stored(
        "activities",
        "activities that occurred in the window",
        InputKind::Count,
        Measure::Activities,
    )],
    params: &[],
    dimensions: crate::ACTIVITY_DIMENSIONS,
    default_group_by: &[],
};

impl Metric for Activities {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        Ok(Value::Defined(inputs.get("activities")?))
    }
}

kpi_core::register_metric!(Activities);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;
    use kpi_core::Dimension;

    fn activities(n: &str) -> Result<Value, MetricError> {
        evaluate_with(&Activities, &inputs([("activities", n)]), &[])
    }

    #[test]
    fn is_the_activity_count() {
        // 120 calls and meetings logged by a team in a month → 120.
        assert_defined(activities("120"), "120");
        assert_defined(activities("0"), "0");
    }

    #[test]
    fn negative_or_fractional_counts_are_invalid() {
        assert_invalid_input(activities("-1"), "activities");
        assert_invalid_input(activities("2.5"), "activities");
    }

    #[test]
    fn groups_by_owner_and_by_type() {
        let fake = FakeSource::default()
            .with_group(Dimension::Owner, "ann", [(Measure::Activities, d("12"))])
            .with_group(Dimension::Owner, "bob", [(Measure::Activities, d("7"))])
            .with_group(
                Dimension::ActivityType,
                "meeting",
                [(Measure::Activities, d("5"))],
            )
            .with_group(
                Dimension::ActivityType,
                "call",
                [(Measure::Activities, d("14"))],
            );
        for (dimension, expected) in [
            (Dimension::Owner, vec![("ann", "12"), ("bob", "7")]),
            (
                Dimension::ActivityType,
                vec![("call", "14"), ("meeting", "5")],
            ),
        ] {
            let mut request = spec("sales.activities", q1_2024(), &[], &[]);
            request.group_by = vec![dimension];
            let rows = compute(&[&Activities], &request, &fake);
            let got: Vec<_> = rows
                .iter()
                .map(|r| (r.group[&dimension].as_str(), r.value.clone()))
                .collect();
            let expected: Vec<_> = expected
                .into_iter()
                .map(|(g, v)| (g, Value::Defined(d(v))))
                .collect();
            assert_eq!(got, expected);
        }
    }
}
