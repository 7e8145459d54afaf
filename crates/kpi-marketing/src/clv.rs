use kpi_core::{
    ratio, Dimension, Direction, Gather, InputKind, InputSpec, Inputs, Measure, Metric,
    MetricDescriptor, MetricError, ParamKind, ParamSpec, Params, Unit, Value,
};

use crate::tenure::{expected_lifetime_years, window_years};

/// `marketing.clv`: (revenue / purchases) × (purchases / customers) / years × lifespan_years.
pub struct Clv;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "marketing.clv",
    name: "Customer lifetime value",
    family: "marketing",
    description: "Revenue a customer brings over their whole lifetime: the average value of a \
        purchase times the purchases a customer makes, spread over the window to a yearly \
        value, times the years a customer stays. revenue is the sum of purchase amounts in the \
        window, purchases their count, customers the distinct customers who made them; years \
        is years(W) of the window; lifespan_years is the `lifespan_years` parameter when given \
        (it then also wins over an explicit input), otherwise the mean tenure (churned_at − \
        acquired_at, in 365-day years) of the customers who churned before the window's end, \
        undefined when none did.",
    formula: "(revenue / purchases) × (purchases / customers) / years × lifespan_years",
    unit: Unit::Currency,
    direction: Direction::HigherIsBetter,
    inputs: &[
        InputSpec::stored(
            "revenue",
            "sum of purchase amounts in the window",
            InputKind::NonNegative,
            Measure::PurchaseRevenue,
        ),
        InputSpec::stored(
            "purchases",
            "purchases made in the window",
            InputKind::Count,
            Measure::Purchases,
        ),
        InputSpec::stored(
            "customers",
            "distinct customers with a purchase in the window",
            InputKind::Count,
            Measure::Buyers,
        ),
        InputSpec::custom("years", "years(W) of the window", InputKind::Positive),
        InputSpec::custom(
            "lifespan_years",
            "expected customer lifetime in years",
            InputKind::NonNegative,
        ),
    ],
    params: &[ParamSpec {
        name: "lifespan_years",
        description: "expected customer lifetime in years; when unset, the mean tenure of the \
            customers who churned before the window's end",
        default: "",
        kind: ParamKind::Decimal { min: "0", max: "" },
    }],
    dimensions: &[
        Dimension::Owner,
        Dimension::Source,
        Dimension::Segment,
        Dimension::ANY_ATTRIBUTE,
        Dimension::ANY_CUSTOMER_ATTRIBUTE,
        Dimension::Cohort,
    ],
    default_group_by: &[],
};

impl Metric for Clv {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn gather(&self, ctx: &Gather<'_>) -> Result<Inputs, MetricError> {
        let mut inputs = ctx.gather_declared(self.descriptor())?;
        if !ctx.is_explicit("years") {
            inputs.set("years", window_years(ctx, "years")?);
        }
        if !ctx.is_explicit("lifespan_years") {
            inputs.set(
                "lifespan_years",
                expected_lifetime_years(ctx, "lifespan_years", "lifespan_years")?,
            );
        }
        Ok(inputs)
    }

    fn evaluate(&self, inputs: &Inputs, params: &Params) -> Result<Value, MetricError> {
        let revenue = inputs.get("revenue")?;
        let purchases = inputs.get("purchases")?;
        let customers = inputs.get("customers")?;
        let years = inputs.get("years")?;
        let lifespan = match params.decimal("lifespan_years") {
            Some(years) => years,
            None => inputs.get("lifespan_years")?,
        };
        if purchases.is_zero() && !revenue.is_zero() {
            return Err(MetricError::InvalidInput {
                input: "revenue".into(),
                reason: format!("there is revenue ({revenue}) but no purchase"),
            });
        }
        if customers > purchases || (customers.is_zero() && !purchases.is_zero()) {
            return Err(MetricError::InvalidInput {
                input: "customers".into(),
                reason: format!(
                    "every customer counted made at least one purchase and every purchase has \
                     a customer ({customers} customers, {purchases} purchases)"
                ),
            });
        }
        if customers.is_zero() {
            return Ok(Value::Undefined(
                "no customer made a purchase in the window (customers = 0)".into(),
            ));
        }
        // revenue / customers / years × lifespan_years, the catalogue's formula with
        // purchases cancelled out, as one division so the answer stays exact.
        let lifetime_revenue = revenue
            .checked_mul(lifespan)
            .ok_or_else(|| MetricError::Overflow("revenue × lifespan_years".into()))?;
        let customer_years = customers
            .checked_mul(years)
            .ok_or_else(|| MetricError::Overflow("customers × years".into()))?;
        ratio(
            lifetime_revenue,
            customer_years,
            "the window is empty (years = 0)",
        )
    }
}

kpi_core::register_metric!(Clv);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;

    fn clv(
        revenue: &str,
        purchases: &str,
        customers: &str,
        years: &str,
        lifespan_years: &str,
        raw: &[(&str, &str)],
    ) -> Result<Value, MetricError> {
        evaluate_with(
            &Clv,
            &inputs([
                ("revenue", revenue),
                ("purchases", purchases),
                ("customers", customers),
                ("years", years),
                ("lifespan_years", lifespan_years),
            ]),
            raw,
        )
    }

    #[test]
    fn worked_example_100000_over_2500_purchases_500_customers_4_years_is_800() {
        assert_defined(clv("100000", "2500", "500", "1", "4", &[]), "800");
    }

    #[test]
    fn worked_example_steps() {
        // value per purchase 100 000 / 2 500 = 40: with one purchase per customer, the CLV
        // of a customer who stays one year is the value of a purchase
        assert_defined(clv("100000", "2500", "2500", "1", "1", &[]), "40");
        // purchases per customer 2 500 / 500 = 5: at a value of 1 per purchase, a one-year
        // CLV counts the purchases of a customer
        assert_defined(clv("2500", "2500", "500", "1", "1", &[]), "5");
        // 40 × 5 = 200 a year: the CLV of a customer who stays one year
        assert_defined(clv("100000", "2500", "500", "1", "1", &[]), "200");
    }

    #[test]
    fn worked_example_35_per_purchase_and_6_years_is_1050() {
        // 87 500 / 2 500 = 35 per purchase, × 5 purchases per customer = 175 a year, × 6
        assert_defined(clv("87500", "2500", "500", "1", "1", &[]), "175");
        assert_defined(clv("87500", "2500", "500", "1", "6", &[]), "1050");
    }

    #[test]
    fn the_window_spreads_revenue_per_year() {
        // the same revenue earned in half a year is worth twice as much a year
        assert_defined(clv("100000", "2500", "500", "0.5", "4", &[]), "1600");
    }

    #[test]
    fn an_exact_midpoint_rounds_half_away_from_zero() {
        // 1 / 9 per purchase × 9 / 8 purchases per customer = 0.125 exactly → 0.13
        assert_defined(clv("1", "9", "8", "1", "1", &[]), "0.13");
    }

    #[test]
    fn rounds_to_two_places() {
        // 1 000 / 3 / 1 × 1 = 333.333… → 333.33
        assert_defined(clv("1000", "3", "3", "1", "1", &[]), "333.33");
    }

    #[test]
    fn lifespan_param_wins_over_the_input() {
        assert_defined(
            clv(
                "100000",
                "2500",
                "500",
                "1",
                "4",
                &[("lifespan_years", "6")],
            ),
            "1200",
        );
    }

    #[test]
    fn no_customer_is_undefined() {
        assert_undefined(
            clv("0", "0", "0", "1", "4", &[]),
            "no customer made a purchase in the window (customers = 0)",
        );
    }

    #[test]
    fn impossible_inputs_are_rejected() {
        // revenue without a purchase
        assert_invalid_input(clv("100", "0", "0", "1", "4", &[]), "revenue");
        // more buyers than purchases
        assert_invalid_input(clv("100", "2", "3", "1", "4", &[]), "customers");
        // purchases by nobody
        assert_invalid_input(clv("100", "2", "0", "1", "4", &[]), "customers");
        // a window of zero years
        assert_invalid_input(clv("100", "2", "1", "0", "4", &[]), "years");
    }

    #[test]
    fn reads_purchases_window_and_churned_tenure_from_the_store() {
        let source = FakeSource::new([
            (Measure::PurchaseRevenue, "100000"),
            (Measure::Purchases, "2500"),
            (Measure::Buyers, "500"),
            (Measure::CustomersChurnedBeforeEnd, "12"),
            (Measure::MeanChurnedTenureYears, "4"),
        ]);
        let row = compute_one(
            &[&Clv],
            &spec("marketing.clv", year_2024(), &[], &[]),
            &source,
        );
        assert_eq!(row.value, Value::Defined(d("800")));
        assert_eq!(row.inputs.get("revenue").unwrap(), d("100000"));
        assert_eq!(row.inputs.get("purchases").unwrap(), d("2500"));
        assert_eq!(row.inputs.get("customers").unwrap(), d("500"));
        assert_eq!(row.inputs.get("years").unwrap(), d("1"));
        assert_eq!(row.inputs.get("lifespan_years").unwrap(), d("4"));
    }

    #[test]
    fn lifespan_param_replaces_the_stored_tenure() {
        // no churn measure in the source: the param means it is never read
        let source = FakeSource::new([
            (Measure::PurchaseRevenue, "87500"),
            (Measure::Purchases, "2500"),
            (Measure::Buyers, "500"),
        ]);
        let row = compute_one(
            &[&Clv],
            &spec(
                "marketing.clv",
                first_half_2024(),
                &[("lifespan_years", "6")],
                &[],
            ),
            &source,
        );
        assert_eq!(row.inputs.get("years").unwrap(), d("0.5"));
        assert_eq!(row.inputs.get("lifespan_years").unwrap(), d("6"));
        // 87 500 / 500 / 0.5 × 6 = 2 100
        assert_eq!(row.value, Value::Defined(d("2100")));
    }

    #[test]
    fn no_churned_customer_and_no_param_is_undefined() {
        let source = FakeSource::new([
            (Measure::PurchaseRevenue, "100000"),
            (Measure::Purchases, "2500"),
            (Measure::Buyers, "500"),
            (Measure::CustomersChurnedBeforeEnd, "0"),
            (Measure::MeanChurnedTenureYears, "0"),
        ]);
        let row = compute_one(
            &[&Clv],
            &spec("marketing.clv", year_2024(), &[], &[]),
            &source,
        );
        assert_eq!(
            row.value,
            Value::Undefined(
                "lifespan_years is undefined: no customer has churned before the window's end; \
                 give the lifespan_years parameter"
                    .into()
            )
        );
    }

    #[test]
    fn an_empty_window_is_undefined() {
        let source = FakeSource::new([
            (Measure::PurchaseRevenue, "0"),
            (Measure::Purchases, "0"),
            (Measure::Buyers, "0"),
        ]);
        let start = "2024-01-01T00:00:00Z".parse().unwrap();
        let empty = kpi_core::Window::new(start, start).unwrap();
        let row = compute_one(
            &[&Clv],
            &spec("marketing.clv", empty, &[("lifespan_years", "4")], &[]),
            &source,
        );
        assert_eq!(
            row.value,
            Value::Undefined("years is undefined: the window is empty (it lasts 0 years)".into())
        );
    }
}
