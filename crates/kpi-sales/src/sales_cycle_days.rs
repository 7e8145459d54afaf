use kpi_core::{
    ratio, Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor, MetricError,
    Params, Unit, Value,
};

/// `sales.sales_cycle_days`: cycle_days_total / won.
pub struct SalesCycleDays;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "sales.sales_cycle_days",
    name: "Sales cycle length",
    family: "sales",
    description: "Mean time from creation to close of the deals won in the window, in days. \
                  cycle_days_total is the sum, over the deals with status won whose closed_at is \
                  in the window, of closed_at − created_at in days of 86 400 s; won counts those \
                  deals.",
    formula: "cycle_days_total / won",
    unit: Unit::Days,
    direction: Direction::LowerIsBetter,
    inputs: &[
        InputSpec::stored(
            "cycle_days_total",
            "sum of the days from creation to close of deals won in the window",
            InputKind::NonNegative,
            Measure::WonCycleDaysTotal,
        ),
        InputSpec::stored(
            "won",
            "deals won, closed in the window",
            InputKind::Count,
            Measure::DealsWon,
        ),
    ],
    params: &[],
    dimensions: crate::DEAL_DIMENSIONS,
    default_group_by: &[],
};

impl Metric for SalesCycleDays {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        let cycle_days_total = inputs.get("cycle_days_total")?;
        let won = inputs.get("won")?;
        crate::total_needs_records("cycle_days_total", cycle_days_total, "won", won)?;
        ratio(
            cycle_days_total,
            won,
            "no deals were won in the window (won = 0)",
        )
    }
}

kpi_core::register_metric!(SalesCycleDays);

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use super::*;
    use crate::test_support::{d, q1_2024, FakeSource};
    use kpi_core::engine::evaluate;
    use kpi_core::{ComputeSpec, Registry};

    fn sales_cycle_days(cycle_days_total: &str, won: &str) -> Result<Value, MetricError> {
        let inputs = Inputs::new()
            .with("cycle_days_total", d(cycle_days_total))
            .with("won", d(won));
        evaluate(&SalesCycleDays, &inputs, &Params::default())
    }

    #[test]
    fn worked_example_10_and_20_days_is_15() {
        // two won deals of 10 d and 20 d: 30 / 2 = 15
        assert_eq!(
            sales_cycle_days("30", "2").unwrap(),
            Value::Defined(d("15"))
        );
    }

    #[test]
    fn fractional_days_round_to_two_places() {
        // 10.5 d + 20.25 d + 4 d = 34.75 d over 3 deals = 11.58333… → 11.58
        assert_eq!(
            sales_cycle_days("34.75", "3").unwrap(),
            Value::Defined(d("11.58"))
        );
        // half away from zero: 0.125 → 0.13
        assert_eq!(
            sales_cycle_days("0.25", "2").unwrap(),
            Value::Defined(d("0.13"))
        );
    }

    #[test]
    fn precision_param_sets_the_places() {
        let params = Params::parse(
            &DESCRIPTOR,
            &BTreeMap::from([("precision".to_owned(), "0".to_owned())]),
        )
        .unwrap();
        let inputs = Inputs::new()
            .with("cycle_days_total", d("34.75"))
            .with("won", d("3"));
        assert_eq!(
            evaluate(&SalesCycleDays, &inputs, &params).unwrap(),
            Value::Defined(d("12"))
        );
    }

    #[test]
    fn no_won_deals_is_undefined() {
        assert!(matches!(
            sales_cycle_days("0", "0").unwrap(),
            Value::Undefined(reason) if reason.contains("won = 0")
        ));
    }

    #[test]
    fn days_without_won_deals_are_invalid() {
        assert!(matches!(
            sales_cycle_days("12", "0"),
            Err(MetricError::InvalidInput { input, .. }) if input == "cycle_days_total"
        ));
        assert!(matches!(
            sales_cycle_days("-3", "2"),
            Err(MetricError::InvalidInput { input, .. }) if input == "cycle_days_total"
        ));
    }

    #[test]
    fn same_instant_close_is_a_zero_day_cycle() {
        assert_eq!(sales_cycle_days("0", "4").unwrap(), Value::Defined(d("0")));
    }

    #[test]
    fn stored_won_deals_feed_the_inputs() {
        let fake = FakeSource::new(HashMap::from([
            (Measure::WonCycleDaysTotal, d("30")),
            (Measure::DealsWon, d("2")),
        ]));
        let registry = Registry::from_metrics([&SalesCycleDays as &'static dyn Metric]).unwrap();
        let rows = registry
            .compute(
                &ComputeSpec::new("sales.sales_cycle_days", Some(q1_2024())),
                Some(&fake),
            )
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0].inputs,
            Inputs::new()
                .with("cycle_days_total", d("30"))
                .with("won", d("2"))
        );
        assert_eq!(rows[0].value, Value::Defined(d("15")));
    }
}
