use kpi_core::{
    Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor, MetricError,
    Params, Unit, Value,
};

/// `revenue.new_customer_revenue`: revenue in the window from customers acquired in it.
pub struct NewCustomerRevenue;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "revenue.new_customer_revenue",
    name: "New customer revenue",
    family: "revenue",
    description: "Revenue brought in during the window by the customers acquired in it. \
        new_customer_revenue is the sum of the amounts of won deals closed in the window and \
        of purchases made in the window, counting only those whose customer was acquired in \
        the window.",
    formula: "new_customer_revenue",
    unit: Unit::Currency,
    direction: Direction::HigherIsBetter,
    inputs: &[InputSpec::stored(
        "new_customer_revenue",
        "won deal amounts and purchases in the window of customers acquired in the window",
        InputKind::NonNegative,
        Measure::NewCustomerRevenue,
    )],
    params: &[],
    dimensions: crate::REVENUE_DIMENSIONS,
    default_group_by: &[],
};

impl Metric for NewCustomerRevenue {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        Ok(Value::Defined(inputs.get("new_customer_revenue")?))
    }
}

kpi_core::register_metric!(NewCustomerRevenue);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;
    use kpi_core::ComputeSpec;

    fn revenue(value: &str, raw_params: &[(&str, &str)]) -> Result<Value, MetricError> {
        evaluate_with(
            &NewCustomerRevenue,
            &inputs([("new_customer_revenue", value)]),
            raw_params,
        )
    }

    #[test]
    fn value_is_the_new_customers_revenue() {
        // A won deal of 12 000 and two purchases of 1 500 by customers acquired in W → 15 000.
        assert_defined(revenue("15000", &[]), "15000");
    }

    #[test]
    fn rounds_to_precision() {
        assert_defined(revenue("15000.005", &[]), "15000.01");
        assert_defined(revenue("15000.5", &[("precision", "0")]), "15001");
    }

    #[test]
    fn no_new_customer_is_zero_not_undefined() {
        assert_defined(revenue("0", &[]), "0");
    }

    #[test]
    fn negative_revenue_is_rejected() {
        assert_invalid_input(revenue("-1", &[]), "new_customer_revenue");
    }

    #[test]
    fn reads_new_customer_revenue_from_the_store() {
        let source = FakeSource::new([(Measure::NewCustomerRevenue, "15000")]);
        let rows = compute(
            &[&NewCustomerRevenue],
            &ComputeSpec::new("revenue.new_customer_revenue", Some(q1_2024())),
            &source,
        );
        assert_eq!(rows[0].value, Value::Defined(d("15000")));
        assert_eq!(rows[0].inputs, inputs([("new_customer_revenue", "15000")]));
    }
}
