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
    use std::collections::{BTreeMap, HashMap};

    use super::*;
    use crate::test_support::{d, q1_2024, FakeSource};
    use kpi_core::engine::evaluate;
    use kpi_core::{ComputeSpec, Registry};

    fn stage_duration_days(
        stage_days_total: &str,
        stage_exits: &str,
    ) -> Result<Value, MetricError> {
        let inputs = Inputs::new()
            .with("stage_days_total", d(stage_days_total))
            .with("stage_exits", d(stage_exits));
        evaluate(&StageDurationDays, &inputs, &Params::default())
    }

    #[test]
    fn mean_days_in_stage() {
        // three exits after 2 d, 4 d and 9 d: 15 / 3 = 5
        assert_eq!(
            stage_duration_days("15", "3").unwrap(),
            Value::Defined(d("5"))
        );
    }

    #[test]
    fn rounds_to_two_places() {
        // 3.75 d over 3 exits = 1.25 exactly; 10 d over 3 exits = 3.333… → 3.33
        assert_eq!(
            stage_duration_days("3.75", "3").unwrap(),
            Value::Defined(d("1.25"))
        );
        assert_eq!(
            stage_duration_days("10", "3").unwrap(),
            Value::Defined(d("3.33"))
        );
    }

    #[test]
    fn precision_param_sets_the_places() {
        let params = Params::parse(
            &DESCRIPTOR,
            &BTreeMap::from([("precision".to_owned(), "1".to_owned())]),
        )
        .unwrap();
        let inputs = Inputs::new()
            .with("stage_days_total", d("3.75"))
            .with("stage_exits", d("3"));
        // 1.25 → 1.3 (half away from zero)
        assert_eq!(
            evaluate(&StageDurationDays, &inputs, &params).unwrap(),
            Value::Defined(d("1.3"))
        );
    }

    #[test]
    fn no_exits_is_undefined() {
        assert_eq!(
            stage_duration_days("0", "0").unwrap(),
            Value::Undefined("no deal left a stage in the window (stage_exits = 0)".into())
        );
    }

    #[test]
    fn days_without_exits_are_invalid() {
        assert!(matches!(
            stage_duration_days("4", "0"),
            Err(MetricError::InvalidInput { input, .. }) if input == "stage_days_total"
        ));
        assert!(matches!(
            stage_duration_days("4", "-1"),
            Err(MetricError::InvalidInput { input, .. }) if input == "stage_exits"
        ));
    }

    #[test]
    fn groups_by_stage_by_default() {
        // Each stage's scope answers its own measures: the engine filters on the stage.
        let fake = FakeSource::new(HashMap::new())
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
        let registry = Registry::from_metrics([&StageDurationDays as &'static dyn Metric]).unwrap();
        let rows = registry
            .compute(
                &ComputeSpec::new("sales.stage_duration_days", Some(q1_2024())),
                Some(&fake),
            )
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0].group,
            BTreeMap::from([(Dimension::Stage, "discovery".to_owned())])
        );
        assert_eq!(
            rows[0].inputs,
            Inputs::new()
                .with("stage_days_total", d("10"))
                .with("stage_exits", d("5"))
        );
        assert_eq!(rows[0].value, Value::Defined(d("2")));
        assert_eq!(
            rows[1].group,
            BTreeMap::from([(Dimension::Stage, "proposal".to_owned())])
        );
        assert_eq!(
            rows[1].inputs,
            Inputs::new()
                .with("stage_days_total", d("30"))
                .with("stage_exits", d("4"))
        );
        assert_eq!(rows[1].value, Value::Defined(d("7.5")));
    }

    #[test]
    fn stored_exits_feed_the_inputs_when_grouped_otherwise() {
        let fake = FakeSource::new(HashMap::from([
            (Measure::StageDaysTotal, d("45")),
            (Measure::StageExits, d("9")),
        ]))
        .with_group(Dimension::Owner, "ana", []);
        let registry = Registry::from_metrics([&StageDurationDays as &'static dyn Metric]).unwrap();
        let mut spec = ComputeSpec::new("sales.stage_duration_days", Some(q1_2024()));
        spec.group_by = vec![Dimension::Owner];
        let rows = registry.compute(&spec, Some(&fake)).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0].inputs,
            Inputs::new()
                .with("stage_days_total", d("45"))
                .with("stage_exits", d("9"))
        );
        assert_eq!(rows[0].value, Value::Defined(d("5")));
    }
}
