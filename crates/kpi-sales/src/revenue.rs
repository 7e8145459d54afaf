use kpi_core::{
    Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor, MetricError,
    Params, Unit, Value,
};

/// `sales.revenue`: won_amount.
pub struct Revenue;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "sales.revenue",
    name: "Sales revenue",
    family: "sales",
    description: "Revenue closed by sales in the window. won_amount is the sum of `amount` of \
                  the deals with status won whose closed_at is in the window.",
    formula: "won_amount",
    unit: Unit::Currency,
    direction: Direction::HigherIsBetter,
    inputs: &[InputSpec::stored(
        "won_amount",
        "sum of the amounts of deals won, closed in the window",
        InputKind::NonNegative,
        Measure::WonAmount,
    )],
    params: &[],
    dimensions: crate::DEAL_DIMENSIONS,
    default_group_by: &[],
};

impl Metric for Revenue {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        Ok(Value::Defined(inputs.get("won_amount")?))
    }
}

kpi_core::register_metric!(Revenue);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;

    fn revenue(won_amount: &str) -> Result<Value, MetricError> {
        evaluate_with(&Revenue, &inputs([("won_amount", won_amount)]), &[])
    }

    #[test]
    fn is_the_won_amount() {
        // deals of 100, 200 and 600 won → 900
        assert_defined(revenue("900"), "900");
        assert_defined(revenue("0"), "0");
    }

    #[test]
    fn rounds_to_two_places() {
        assert_defined(revenue("1234.565"), "1234.57");
        assert_defined(revenue("1234.50"), "1234.5");
    }

    #[test]
    fn precision_param_sets_the_places() {
        let given = inputs([("won_amount", "1234.5")]);
        assert_defined(
            evaluate_with(&Revenue, &given, &[("precision", "0")]),
            "1235",
        );
    }

    #[test]
    fn negative_amount_is_invalid() {
        assert_invalid_input(revenue("-0.01"), "won_amount");
    }

    #[test]
    fn stored_won_amount_feeds_the_input() {
        let fake = FakeSource::new([(Measure::WonAmount, "48250.75")]);
        let row = compute_one(
            &[&Revenue],
            &spec("sales.revenue", q1_2024(), &[], &[]),
            &fake,
        );
        assert_eq!(row.inputs, inputs([("won_amount", "48250.75")]));
        assert_eq!(row.value, Value::Defined(d("48250.75")));
    }
}
