use kpi_core::{
    ratio, Dimension, Direction, Gather, InputKind, InputSpec, Inputs, Measure, Metric,
    MetricDescriptor, MetricError, ParamKind, ParamSpec, Params, SpendCategories, Unit, Value,
};

/// `marketing.cac`: spend / new_customers.
pub struct Cac;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "marketing.cac",
    name: "Customer acquisition cost",
    family: "marketing",
    description: "What it costs to win one new customer: the money spent in the window divided \
        by the customers acquired in it. spend is the sum of the amounts of spend records dated \
        in the window whose category is in the `categories` parameter (every category by \
        default; `advertising,salaries` for a narrower CAC); new_customers counts the customers \
        whose acquired_at is in the window.",
    formula: "spend / new_customers",
    unit: Unit::Currency,
    direction: Direction::LowerIsBetter,
    inputs: &[
        InputSpec::custom(
            "spend",
            "spend in the window, in the chosen categories",
            InputKind::NonNegative,
        ),
        InputSpec::stored(
            "new_customers",
            "customers acquired in the window",
            InputKind::Count,
            Measure::CustomersAcquired,
        ),
    ],
    params: &[ParamSpec {
        name: "categories",
        description: "spend categories counted as acquisition cost: `all` or a comma-separated \
            list of advertising, salaries, commissions, overhead, tools, other",
        default: "all",
        kind: ParamKind::Set(&SpendCategories::NAMES),
    }],
    dimensions: &[
        Dimension::Campaign,
        Dimension::Channel,
        Dimension::ANY_ATTRIBUTE,
    ],
    default_group_by: &[],
};

impl Metric for Cac {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn gather(&self, ctx: &Gather<'_>) -> Result<Inputs, MetricError> {
        let mut inputs = ctx.gather_declared(self.descriptor())?;
        if !ctx.is_explicit("spend") {
            let categories = ctx
                .params()
                .set("categories")
                .map_or(SpendCategories::ALL, SpendCategories::from_names);
            inputs.set("spend", ctx.measure(Measure::Spend(categories))?);
        }
        Ok(inputs)
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        let spend = inputs.get("spend")?;
        let new_customers = inputs.get("new_customers")?;
        ratio(
            spend,
            new_customers,
            "no customers were acquired in the window (new_customers = 0)",
        )
    }
}

kpi_core::register_metric!(Cac);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;

    fn cac(spend: &str, new_customers: &str) -> Result<Value, MetricError> {
        evaluate_with(
            &Cac,
            &inputs([("spend", spend), ("new_customers", new_customers)]),
            &[],
        )
    }

    #[test]
    fn worked_example_10000_spent_10_customers_is_1000() {
        assert_defined(cac("10000", "10"), "1000");
    }

    #[test]
    fn rounds_to_two_places() {
        // 10 000 / 3 = 3 333.333… → 3 333.33
        assert_defined(cac("10000", "3"), "3333.33");
    }

    #[test]
    fn no_new_customer_is_undefined() {
        assert!(matches!(cac("5000", "0").unwrap(), Value::Undefined(_)));
    }

    #[test]
    fn negative_spend_or_fractional_customers_are_rejected() {
        assert!(matches!(
            cac("-1", "10"),
            Err(MetricError::InvalidInput { .. })
        ));
        assert!(matches!(
            cac("100", "2.5"),
            Err(MetricError::InvalidInput { .. })
        ));
    }

    #[test]
    fn reads_all_spend_and_acquired_customers_from_the_store() {
        let source = FakeSource::new([
            (Measure::Spend(SpendCategories::ALL), "10000"),
            (Measure::CustomersAcquired, "10"),
        ]);
        let row = compute_one(
            &[&Cac],
            &spec("marketing.cac", year_2024(), &[], &[]),
            &source,
        );
        assert_eq!(row.value, Value::Defined(d("1000")));
        assert_eq!(row.inputs.get("spend").unwrap(), d("10000"));
        assert_eq!(row.inputs.get("new_customers").unwrap(), d("10"));
    }

    #[test]
    fn categories_param_narrows_the_spend_read() {
        let advertising_and_salaries = SpendCategories::from_names(&["advertising", "salaries"]);
        assert_eq!(advertising_and_salaries, SpendCategories(0b11));
        let source = FakeSource::new([
            (Measure::Spend(SpendCategories::ALL), "10000"),
            (Measure::Spend(advertising_and_salaries), "6000"),
            (Measure::CustomersAcquired, "10"),
        ]);
        let row = compute_one(
            &[&Cac],
            &spec(
                "marketing.cac",
                year_2024(),
                &[("categories", "advertising, salaries")],
                &[],
            ),
            &source,
        );
        assert_eq!(row.value, Value::Defined(d("600")));
        assert_eq!(row.inputs.get("spend").unwrap(), d("6000"));
    }

    #[test]
    fn no_customer_acquired_in_the_store_is_undefined() {
        let source = FakeSource::new([
            (Measure::Spend(SpendCategories::ALL), "2500"),
            (Measure::CustomersAcquired, "0"),
        ]);
        let row = compute_one(
            &[&Cac],
            &spec("marketing.cac", year_2024(), &[], &[]),
            &source,
        );
        assert_eq!(
            row.value,
            Value::Undefined("no customers were acquired in the window (new_customers = 0)".into())
        );
    }
}
