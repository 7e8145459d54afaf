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
    use std::collections::{BTreeMap, HashMap};

    use super::*;
    use crate::test_support::{d, q1_2024, FakeSource};
    use kpi_core::engine::evaluate;
    use kpi_core::{ComputeSpec, Registry};

    fn average_deal_size(won_amount: &str, won: &str) -> Result<Value, MetricError> {
        let inputs = Inputs::new()
            .with("won_amount", d(won_amount))
            .with("won", d(won));
        evaluate(&AverageDealSize, &inputs, &Params::default())
    }

    #[test]
    fn worked_example_deals_of_100_200_600_average_300() {
        // 100 + 200 + 600 = 900 over 3 deals → 300
        assert_eq!(
            average_deal_size("900", "3").unwrap(),
            Value::Defined(d("300"))
        );
    }

    #[test]
    fn rounds_to_two_places() {
        // 100 / 3 = 33.333… → 33.33; 200 / 3 = 66.666… → 66.67
        assert_eq!(
            average_deal_size("100", "3").unwrap(),
            Value::Defined(d("33.33"))
        );
        assert_eq!(
            average_deal_size("200", "3").unwrap(),
            Value::Defined(d("66.67"))
        );
    }

    #[test]
    fn precision_param_sets_the_places() {
        let params = Params::parse(
            &DESCRIPTOR,
            &BTreeMap::from([("precision".to_owned(), "4".to_owned())]),
        )
        .unwrap();
        let inputs = Inputs::new()
            .with("won_amount", d("100"))
            .with("won", d("3"));
        assert_eq!(
            evaluate(&AverageDealSize, &inputs, &params).unwrap(),
            Value::Defined(d("33.3333"))
        );
    }

    #[test]
    fn no_won_deals_is_undefined() {
        assert_eq!(
            average_deal_size("0", "0").unwrap(),
            Value::Undefined("no deals were won in the window (won = 0)".into())
        );
    }

    #[test]
    fn amount_without_won_deals_is_invalid() {
        assert!(matches!(
            average_deal_size("500", "0"),
            Err(MetricError::InvalidInput { input, .. }) if input == "won_amount"
        ));
    }

    #[test]
    fn negative_amount_and_fractional_count_are_invalid() {
        assert!(matches!(
            average_deal_size("-1", "3"),
            Err(MetricError::InvalidInput { input, .. }) if input == "won_amount"
        ));
        assert!(matches!(
            average_deal_size("100", "2.5"),
            Err(MetricError::InvalidInput { input, .. }) if input == "won"
        ));
    }

    #[test]
    fn stored_won_deals_feed_the_inputs() {
        let fake = FakeSource::new(HashMap::from([
            (Measure::WonAmount, d("900")),
            (Measure::DealsWon, d("3")),
        ]));
        let registry = Registry::from_metrics([&AverageDealSize as &'static dyn Metric]).unwrap();
        let rows = registry
            .compute(
                &ComputeSpec::new("sales.average_deal_size", Some(q1_2024())),
                Some(&fake),
            )
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0].inputs,
            Inputs::new()
                .with("won_amount", d("900"))
                .with("won", d("3"))
        );
        assert_eq!(rows[0].value, Value::Defined(d("300")));
    }
}
