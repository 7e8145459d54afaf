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
    use super::*;
    use kpi_core::testing::*;

    fn sales_cycle_days(cycle_days_total: &str, won: &str) -> Result<Value, MetricError> {
        evaluate_with(
            &SalesCycleDays,
            &inputs([("cycle_days_total", cycle_days_total), ("won", won)]),
            &[],
        )
    }

    #[test]
    fn worked_example_10_and_20_days_is_15() {
        // two won deals of 10 d and 20 d: 30 / 2 = 15
        assert_defined(sales_cycle_days("30", "2"), "15");
    }

    #[test]
    fn fractional_days_round_to_two_places() {
        // 10.5 d + 20.25 d + 4 d = 34.75 d over 3 deals = 11.58333… → 11.58
        assert_defined(sales_cycle_days("34.75", "3"), "11.58");
        // half away from zero: 0.125 → 0.13
        assert_defined(sales_cycle_days("0.25", "2"), "0.13");
    }

    #[test]
    fn precision_param_sets_the_places() {
        let given = inputs([("cycle_days_total", "34.75"), ("won", "3")]);
        assert_defined(
            evaluate_with(&SalesCycleDays, &given, &[("precision", "0")]),
            "12",
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
        assert_invalid_input(sales_cycle_days("12", "0"), "cycle_days_total");
        assert_invalid_input(sales_cycle_days("-3", "2"), "cycle_days_total");
    }

    #[test]
    fn same_instant_close_is_a_zero_day_cycle() {
        assert_defined(sales_cycle_days("0", "4"), "0");
    }

    #[test]
    fn stored_won_deals_feed_the_inputs() {
        let fake = FakeSource::new([(Measure::WonCycleDaysTotal, "30"), (Measure::DealsWon, "2")]);
        let row = compute_one(
            &[&SalesCycleDays],
            &spec("sales.sales_cycle_days", q1_2024(), &[], &[]),
            &fake,
        );
        assert_eq!(
            row.inputs,
            inputs([("cycle_days_total", "30"), ("won", "2")])
        );
        assert_eq!(row.value, Value::Defined(d("15")));
    }
}
