use kpi_core::{
    percent, Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor,
    MetricError, Params, Unit, Value,
};

/// `sales.win_rate`: won / (won + lost) × 100.
pub struct WinRate;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "sales.win_rate",
    name: "Win rate",
    family: "sales",
    description: "Share of the deals closed in the window that were won. won counts deals with \
                  status won whose closed_at is in the window; lost counts deals with status lost \
                  whose closed_at is in the window; open deals are in neither.",
    formula: "won / (won + lost) × 100",
    unit: Unit::Percent,
    direction: Direction::HigherIsBetter,
    inputs: &[
        InputSpec::stored(
            "won",
            "deals won, closed in the window",
            InputKind::Count,
            Measure::DealsWon,
        ),
        InputSpec::stored(
            "lost",
            "deals lost, closed in the window",
            InputKind::Count,
            Measure::DealsLost,
        ),
    ],
    params: &[],
    dimensions: crate::DEAL_DIMENSIONS,
    default_group_by: &[],
};

impl Metric for WinRate {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        let won = inputs.get("won")?;
        let lost = inputs.get("lost")?;
        let closed = won
            .checked_add(lost)
            .ok_or_else(|| MetricError::Overflow("won + lost".into()))?;
        percent(won, closed, "no deals were closed (won + lost = 0)")
    }
}

kpi_core::register_metric!(WinRate);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;

    fn win_rate(won: i64, lost: i64) -> Result<Value, MetricError> {
        evaluate_with(&WinRate, &inputs([("won", won), ("lost", lost)]), &[])
    }

    #[test]
    fn worked_example_30_won_70_lost_is_30() {
        assert_defined(win_rate(30, 70), "30");
    }

    #[test]
    fn rounds_to_two_places() {
        // 1 / 3 × 100 = 33.333… → 33.33
        assert_defined(win_rate(1, 2), "33.33");
    }

    #[test]
    fn no_closed_deals_is_undefined() {
        assert!(matches!(win_rate(0, 0), Ok(Value::Undefined(_))));
    }

    #[test]
    fn precision_param_sets_the_places() {
        // 2 / 3 × 100 = 66.666… → 67
        let given = inputs([("won", 2), ("lost", 1)]);
        assert_defined(evaluate_with(&WinRate, &given, &[("precision", "0")]), "67");
    }

    #[test]
    fn stored_deals_feed_won_and_lost() {
        let fake = FakeSource::new([(Measure::DealsWon, "30"), (Measure::DealsLost, "70")]);
        let row = compute_one(
            &[&WinRate],
            &spec("sales.win_rate", q1_2024(), &[], &[]),
            &fake,
        );
        assert_eq!(row.inputs, inputs([("won", "30"), ("lost", "70")]));
        assert_eq!(row.value, Value::Defined(d("30")));
    }

    #[test]
    fn negative_count_is_rejected() {
        assert!(matches!(
            evaluate_with(&WinRate, &inputs([("won", -1), ("lost", 3)]), &[]),
            Err(MetricError::InvalidInput { .. })
        ));
    }
}
