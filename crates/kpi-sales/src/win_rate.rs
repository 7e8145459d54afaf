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
    use std::collections::{BTreeMap, HashMap};

    use super::*;
    use crate::test_support::{d, q1_2024, FakeSource};
    use kpi_core::engine::evaluate;
    use kpi_core::{ComputeSpec, Decimal, Registry};

    fn win_rate(won: i64, lost: i64) -> Value {
        let inputs = Inputs::new()
            .with("won", Decimal::from(won))
            .with("lost", Decimal::from(lost));
        evaluate(&WinRate, &inputs, &Params::default()).unwrap()
    }

    #[test]
    fn worked_example_30_won_70_lost_is_30() {
        assert_eq!(win_rate(30, 70), Value::Defined(Decimal::from(30)));
    }

    #[test]
    fn rounds_to_two_places() {
        // 1 / 3 × 100 = 33.333… → 33.33
        assert_eq!(win_rate(1, 2), Value::Defined(Decimal::new(3333, 2)));
    }

    #[test]
    fn no_closed_deals_is_undefined() {
        assert!(matches!(win_rate(0, 0), Value::Undefined(_)));
    }

    #[test]
    fn precision_param_sets_the_places() {
        let params = Params::parse(
            &DESCRIPTOR,
            &BTreeMap::from([("precision".to_owned(), "0".to_owned())]),
        )
        .unwrap();
        let inputs = Inputs::new()
            .with("won", Decimal::from(2))
            .with("lost", Decimal::from(1));
        // 2 / 3 × 100 = 66.666… → 67
        assert_eq!(
            evaluate(&WinRate, &inputs, &params).unwrap(),
            Value::Defined(Decimal::from(67))
        );
    }

    #[test]
    fn stored_deals_feed_won_and_lost() {
        let fake = FakeSource::new(HashMap::from([
            (Measure::DealsWon, d("30")),
            (Measure::DealsLost, d("70")),
        ]));
        let registry = Registry::from_metrics([&WinRate as &'static dyn Metric]).unwrap();
        let rows = registry
            .compute(
                &ComputeSpec::new("sales.win_rate", Some(q1_2024())),
                Some(&fake),
            )
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0].inputs,
            Inputs::new().with("won", d("30")).with("lost", d("70"))
        );
        assert_eq!(rows[0].value, Value::Defined(d("30")));
    }

    #[test]
    fn negative_count_is_rejected() {
        let inputs = Inputs::new()
            .with("won", Decimal::from(-1))
            .with("lost", Decimal::from(3));
        assert!(matches!(
            evaluate(&WinRate, &inputs, &Params::default()),
            Err(MetricError::InvalidInput { .. })
        ));
    }
}
