use kpi_core::{
    ratio, Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor, MetricError,
    Params, Unit, Value,
};

/// `sales.average_deal_size`: won_amount / won.
pub struct AverageDealSize;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "sales.average_deal_size",
    name: "Average deal size",
    family: "sales",
    description: "Mean amount of the deals won in the window. won_amount is the sum of `amount` \
                  of the deals with status won whose closed_at is in the window; won counts \
                  those deals.",
    formula: "won_amount / won",
    unit: Unit::Currency,
    direction: Direction::HigherIsBetter,
    inputs: &[
        InputSpec::stored(
            "won_amount",
            "sum of the amounts of deals won, closed in the window",
            InputKind::NonNegative,
            Measure::WonAmount,
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

impl Metric for AverageDealSize {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        let won_amount = inputs.get("won_amount")?;
        let won = inputs.get("won")?;
        crate::total_needs_records("won_amount", won_amount, "won", won)?;
        ratio(won_amount, won, "no deals were won in the window (won = 0)")
    }
}

kpi_core::register_metric!(AverageDealSize);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;

    fn average_deal_size(won_amount: &str, won: &str) -> Result<Value, MetricError> {
        evaluate_with(
            &AverageDealSize,
            &inputs([("won_amount", won_amount), ("won", won)]),
            &[],
        )
    }

    #[test]
    fn worked_example_deals_of_100_200_600_average_300() {
        // 100 + 200 + 600 = 900 over 3 deals → 300
        assert_defined(average_deal_size("900", "3"), "300");
    }

    #[test]
    fn rounds_to_two_places() {
        // 100 / 3 = 33.333… → 33.33; 200 / 3 = 66.666… → 66.67
        assert_defined(average_deal_size("100", "3"), "33.33");
        assert_defined(average_deal_size("200", "3"), "66.67");
    }

    #[test]
    fn precision_param_sets_the_places() {
        let given = inputs([("won_amount", "100"), ("won", "3")]);
        assert_defined(
            evaluate_with(&AverageDealSize, &given, &[("precision", "4")]),
            "33.3333",
        );
    }

    #[test]
    fn no_won_deals_is_undefined() {
        assert_undefined(
            average_deal_size("0", "0"),
            "no deals were won in the window (won = 0)",
        );
    }

    #[test]
    fn amount_without_won_deals_is_invalid() {
        assert_invalid_input(average_deal_size("500", "0"), "won_amount");
    }

    #[test]
    fn negative_amount_and_fractional_count_are_invalid() {
        assert_invalid_input(average_deal_size("-1", "3"), "won_amount");
        assert_invalid_input(average_deal_size("100", "2.5"), "won");
    }

    #[test]
    fn stored_won_deals_feed_the_inputs() {
        let fake = FakeSource::new([(Measure::WonAmount, "900"), (Measure::DealsWon, "3")]);
        let row = compute_one(
            &[&AverageDealSize],
            &spec("sales.average_deal_size", q1_2024(), &[], &[]),
            &fake,
        );
        assert_eq!(row.inputs, inputs([("won_amount", "900"), ("won", "3")]));
        assert_eq!(row.value, Value::Defined(d("300")));
    }
}
