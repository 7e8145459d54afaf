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
        kpi_core::at_most(
            "upsold",
            upsold,
            "customers",
            customers,
            "it counts some of them",
        )?;
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
    use super::*;
    use kpi_core::testing::*;

    fn upsell_rate(upsold: &str, customers: &str) -> Result<Value, MetricError> {
        evaluate_with(
            &UpsellRate,
            &inputs([("upsold", upsold), ("customers", customers)]),
            &[],
        )
    }

    #[test]
    fn worked_example_20_of_200_is_10() {
        assert_defined(upsell_rate("20", "200"), "10");
    }

    #[test]
    fn rounds_to_two_places() {
        // 1 / 7 × 100 = 14.2857… → 14.29
        assert_defined(upsell_rate("1", "7"), "14.29");
    }

    #[test]
    fn precision_param_sets_the_places() {
        let given = inputs([("upsold", "1"), ("customers", "7")]);
        assert_defined(
            evaluate_with(&UpsellRate, &given, &[("precision", "4")]),
            "14.2857",
        );
    }

    #[test]
    fn no_active_customers_is_undefined() {
        assert_undefined(
            upsell_rate("0", "0"),
            "no customer was active in the window (customers = 0)",
        );
    }

    #[test]
    fn more_upsold_than_customers_is_invalid() {
        assert_invalid_input(upsell_rate("201", "200"), "upsold");
        assert_invalid_input(upsell_rate("3", "0"), "upsold");
    }

    #[test]
    fn stored_customers_feed_the_inputs() {
        let fake = FakeSource::new([
            (Measure::UpsoldCustomers, "20"),
            (Measure::CustomersActiveInWindow, "200"),
        ]);
        let row = compute_one(
            &[&UpsellRate],
            &spec("sales.upsell_rate", q1_2024(), &[], &[]),
            &fake,
        );
        assert_eq!(row.inputs, inputs([("upsold", "20"), ("customers", "200")]));
        assert_eq!(row.value, Value::Defined(d("10")));
    }
}
