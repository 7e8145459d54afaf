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
    use std::collections::{BTreeMap, HashMap};

    use super::*;
    use crate::test_support::{d, q1_2024, FakeSource};
    use kpi_core::engine::evaluate;
    use kpi_core::{ComputeSpec, Registry};

    fn revenue(won_amount: &str) -> Result<Value, MetricError> {
        let inputs = Inputs::new().with("won_amount", d(won_amount));
        evaluate(&Revenue, &inputs, &Params::default())
    }

    #[test]
    fn is_the_won_amount() {
        // deals of 100, 200 and 600 won → 900
        assert_eq!(revenue("900").unwrap(), Value::Defined(d("900")));
        assert_eq!(revenue("0").unwrap(), Value::Defined(d("0")));
    }

    #[test]
    fn rounds_to_two_places() {
        assert_eq!(revenue("1234.565").unwrap(), Value::Defined(d("1234.57")));
        assert_eq!(revenue("1234.50").unwrap(), Value::Defined(d("1234.5")));
    }

    #[test]
    fn precision_param_sets_the_places() {
        let params = Params::parse(
            &DESCRIPTOR,
            &BTreeMap::from([("precision".to_owned(), "0".to_owned())]),
        )
        .unwrap();
        let inputs = Inputs::new().with("won_amount", d("1234.5"));
        assert_eq!(
            evaluate(&Revenue, &inputs, &params).unwrap(),
            Value::Defined(d("1235"))
        );
    }

    #[test]
    fn negative_amount_is_invalid() {
        assert!(matches!(
            revenue("-0.01"),
            Err(MetricError::InvalidInput { input, .. }) if input == "won_amount"
        ));
    }

    #[test]
    fn stored_won_amount_feeds_the_input() {
        let fake = FakeSource::new(HashMap::from([(Measure::WonAmount, d("48250.75"))]));
        let registry = Registry::from_metrics([&Revenue as &'static dyn Metric]).unwrap();
        let rows = registry
            .compute(
                &ComputeSpec::new("sales.revenue", Some(q1_2024())),
                Some(&fake),
            )
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0].inputs,
            Inputs::new().with("won_amount", d("48250.75"))
        );
        assert_eq!(rows[0].value, Value::Defined(d("48250.75")));
    }
}
