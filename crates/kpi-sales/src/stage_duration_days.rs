use kpi_core::{
    ratio, Dimension, Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor,
    MetricError, Params, Unit, Value,
};

/// `sales.stage_duration_days`: stage_days_total / stage_exits.
pub struct StageDurationDays;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "sales.stage_duration_days",
    name: "Stage duration",
    family: "sales",
    description: "Mean time deals spend in a pipeline stage before leaving it, in days. A deal \
                  exits a stage of its stage_history when it enters the next stage or closes, \
                  and the exit counts when it falls in the window. stage_exits counts \
                  those exits; stage_days_total sums, over them, the time from entering the stage \
                  to exiting it, in days of 86 400 s. Grouped by stage (the stage exited) by \
                  default.",
    formula: "stage_days_total / stage_exits",
    unit: Unit::Days,
    direction: Direction::LowerIsBetter,
    inputs: &[
        InputSpec::stored(
            "stage_days_total",
            "sum of the days spent in a stage, over stage exits in the window",
            InputKind::NonNegative,
            Measure::StageDaysTotal,
        ),
        InputSpec::stored(
            "stage_exits",
            "stage exits in the window (next stage entered or deal closed)",
            InputKind::Count,
            Measure::StageExits,
        ),
    ],
    params: &[],
    dimensions: &[
        Dimension::Owner,
        Dimension::Source,
        Dimension::Campaign,
        Dimension::Channel,
        Dimension::Segment,
        Dimension::Stage,
        Dimension::ANY_ATTRIBUTE,
        Dimension::ANY_CUSTOMER_ATTRIBUTE,
        Dimension::Cohort,
    ],
    default_group_by: &[Dimension::Stage],
};

impl Metric for StageDurationDays {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        let stage_days_total = inputs.get("stage_days_total")?;
        let stage_exits = inputs.get("stage_exits")?;
        crate::total_needs_records(
            "stage_days_total",
            stage_days_total,
            "stage_exits",
            stage_exits,
        )?;
        ratio(
            stage_days_total,
            stage_exits,
            "no deal left a stage in the window (stage_exits = 0)",
        )
    }
}

kpi_core::register_metric!(StageDurationDays);

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use kpi_core::testing::*;

    fn stage_duration_days(
        stage_days_total: &str,
        stage_exits: &str,
    ) -> Result<Value, MetricError> {
        evaluate_with(
            &StageDurationDays,
            &inputs([
                ("stage_days_total", stage_days_total),
                ("stage_exits", stage_exits),
            ]),
            &[],
        )
    }

    #[test]
    fn mean_days_in_stage() {
        // three exits after 2 d, 4 d and 9 d: 15 / 3 = 5
        assert_defined(stage_duration_days("15", "3"), "5");
    }

    #[test]
    fn rounds_to_two_places() {
        // 3.75 d over 3 exits = 1.25 exactly; 10 d over 3 exits = 3.333… → 3.33
        assert_defined(stage_duration_days("3.75", "3"), "1.25");
        assert_defined(stage_duration_days("10", "3"), "3.33");
    }

    #[test]
    fn precision_param_sets_the_places() {
        // 1.25 → 1.3 (half away from zero)
        let given = inputs([("stage_days_total", "3.75"), ("stage_exits", "3")]);
        assert_defined(
            evaluate_with(&StageDurationDays, &given, &[("precision", "1")]),
            "1.3",
        );
    }

    #[test]
    fn no_exits_is_undefined() {
        assert_undefined(
            stage_duration_days("0", "0"),
            "no deal left a stage in the window (stage_exits = 0)",
        );
    }

    #[test]
    fn days_without_exits_are_invalid() {
        assert_invalid_input(stage_duration_days("4", "0"), "stage_days_total");
        assert_invalid_input(stage_duration_days("4", "-1"), "stage_exits");
    }

    #[test]
    fn groups_by_stage_by_default() {
        // Each stage's scope answers its own measures: the engine filters on the stage.
        let fake = FakeSource::default()
            .with_group(
                Dimension::Stage,
                "proposal",
                [
                    (Measure::StageDaysTotal, d("30")),
                    (Measure::StageExits, d("4")),
                ],
            )
            .with_group(
                Dimension::Stage,
                "discovery",
                [
                    (Measure::StageDaysTotal, d("10")),
                    (Measure::StageExits, d("5")),
                ],
            );
        let rows = compute(
            &[&StageDurationDays],
            &spec("sales.stage_duration_days", q1_2024(), &[], &[]),
            &fake,
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0].group,
            BTreeMap::from([(Dimension::Stage, "discovery".to_owned())])
        );
        assert_eq!(
            rows[0].inputs,
            inputs([("stage_days_total", "10"), ("stage_exits", "5")])
        );
        assert_eq!(rows[0].value, Value::Defined(d("2")));
        assert_eq!(
            rows[1].group,
            BTreeMap::from([(Dimension::Stage, "proposal".to_owned())])
        );
        assert_eq!(
            rows[1].inputs,
            inputs([("stage_days_total", "30"), ("stage_exits", "4")])
        );
        assert_eq!(rows[1].value, Value::Defined(d("7.5")));
    }

    #[test]
    fn stored_exits_feed_the_inputs_when_grouped_otherwise() {
        let fake = FakeSource::new([(Measure::StageDaysTotal, "45"), (Measure::StageExits, "9")])
            .with_group(Dimension::Owner, "ana", []);
        let mut request = spec("sales.stage_duration_days", q1_2024(), &[], &[]);
        request.group_by = vec![Dimension::Owner];
        let rows = compute(&[&StageDurationDays], &request, &fake);
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0].inputs,
            inputs([("stage_days_total", "45"), ("stage_exits", "9")])
        );
        assert_eq!(rows[0].value, Value::Defined(d("5")));
    }
}
