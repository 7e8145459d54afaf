use kpi_core::{
    percent, Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor,
    MetricError, Params, Unit, Value,
};

/// `sales.upsell_rate`: upsold / customers × 100.
pub struct UpsellRate;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "sales.upsell_rate",
    name: "Upsell rate",
    family: "sales",
    description: "Share of the customers active in the window who bought more. upsold counts \
                  the distinct customers with a deal of kind upsell or cross_sell, status won \
                  and closed_at in the window; customers counts the customers active at any time \
                  in the window (acquired_at before its end and not churned before its start).",
    formula: "upsold / customers × 100",
    unit: Unit::Percent,
    direction: Direction::HigherIsBetter,
    inputs: &[
        InputSpec::stored(
            "upsold",
            "distinct customers with a won upsell or cross-sell deal closed in the window",
            InputKind::Count,
            Measure::UpsoldCustomers,
        ),
        InputSpec::stored(
            "customers",
            "customers active at any time in the window",
            InputKind::Count,
            Measure::CustomersActiveInWindow,
        ),
    ],
    params: &[],
    dimensions: crate::DEAL_DIMENSIONS,
    default_group_by: &[],
};

impl Metric for UpsellRate {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        let upsold = inputs.get("upsold")?;
        let customers = inputs.get("customers")?;
        crate::part_of_whole("upsold", upsold, "customers", customers)?;
        percent(
            upsold,
            customers,
            "no customer was active in the window (customers = 0)",
        )
    }
}

kpi_core::register_metric!(UpsellRate);

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use super::*;
    use crate::test_support::{d, q1_2024, FakeSource};
    use kpi_core::engine::evaluate;
    use kpi_core::{ComputeSpec, Registry};

    fn upsell_rate(upsold: &str, customers: &str) -> Result<Value, MetricError> {
        let inputs = Inputs::new()
            .with("upsold", d(upsold))
            .with("customers", d(customers));
        evaluate(&UpsellRate, &inputs, &Params::default())
    }

    #[test]
    fn worked_example_20_of_200_is_10() {
        assert_eq!(upsell_rate("20", "200").unwrap(), Value::Defined(d("10")));
    }

    #[test]
    fn rounds_to_two_places() {
        // 1 / 7 × 100 = 14.2857… → 14.29
        assert_eq!(upsell_rate("1", "7").unwrap(), Value::Defined(d("14.29")));
    }

    #[test]
    fn precision_param_sets_the_places() {
        let params = Params::parse(
            &DESCRIPTOR,
            &BTreeMap::from([("precision".to_owned(), "4".to_owned())]),
        )
        .unwrap();
        let inputs = Inputs::new()
            .with("upsold", d("1"))
            .with("customers", d("7"));
        assert_eq!(
            evaluate(&UpsellRate, &inputs, &params).unwrap(),
            Value::Defined(d("14.2857"))
        );
    }

    #[test]
    fn no_active_customers_is_undefined() {
        assert_eq!(
            upsell_rate("0", "0").unwrap(),
            Value::Undefined("no customer was active in the window (customers = 0)".into())
        );
    }

    #[test]
    fn more_upsold_than_customers_is_invalid() {
        assert!(matches!(
            upsell_rate("201", "200"),
            Err(MetricError::InvalidInput { input, .. }) if input == "upsold"
        ));
        assert!(matches!(
            upsell_rate("3", "0"),
            Err(MetricError::InvalidInput { input, .. }) if input == "upsold"
        ));
    }

    #[test]
    fn stored_customers_feed_the_inputs() {
        let fake = FakeSource::new(HashMap::from([
            (Measure::UpsoldCustomers, d("20")),
            (Measure::CustomersActiveInWindow, d("200")),
        ]));
        let registry = Registry::from_metrics([&UpsellRate as &'static dyn Metric]).unwrap();
        let rows = registry
            .compute(
                &ComputeSpec::new("sales.upsell_rate", Some(q1_2024())),
                Some(&fake),
            )
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0].inputs,
            Inputs::new()
                .with("upsold", d("20"))
                .with("customers", d("200"))
        );
        assert_eq!(rows[0].value, Value::Defined(d("10")));
    }
}
