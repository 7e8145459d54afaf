use kpi_core::{
    Direction, Gather, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor,
    MetricError, ParamKind, ParamSpec, Params, Unit, Value,
};

use crate::tenure::{expected_lifetime_years, window_years};

/// `marketing.clv_net`: annual_profit_per_customer × retention_years − cac.
pub struct ClvNet;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "marketing.clv_net",
    name: "Net customer lifetime value",
    family: "marketing",
    description: "Gross profit a customer brings over their lifetime, less what it cost to \
        acquire them. annual_profit_per_customer is the sum of purchase amounts in the window \
        divided by the customers active at any time in it, spread to a year by years(W), times \
        the `gross_margin` parameter (1 by default; it applies when this input is read from \
        stored records); retention_years is the `retention_years` parameter when given (it \
        then also wins over an explicit input), otherwise the mean tenure (churned_at − \
        acquired_at, in 365-day years) of the customers who churned before the window's end, \
        undefined when none did; cac is marketing.cac for the same window. It is negative when \
        a customer costs more than they bring.",
    formula: "annual_profit_per_customer × retention_years − cac",
    unit: Unit::Currency,
    direction: Direction::HigherIsBetter,
    inputs: &[
        InputSpec::custom(
            "annual_profit_per_customer",
            "yearly purchase revenue per active customer × gross margin",
            InputKind::NonNegative,
        ),
        InputSpec::custom(
            "retention_years",
            "expected years a customer stays",
            InputKind::NonNegative,
        ),
        InputSpec::metric(
            "cac",
            "customer acquisition cost (marketing.cac)",
            "marketing.cac",
        ),
    ],
    params: &[
        ParamSpec {
            name: "gross_margin",
            description: "share of revenue kept as gross profit, from 0 to 1",
            default: "1",
            kind: ParamKind::Decimal { min: "0", max: "1" },
        },
        ParamSpec {
            name: "retention_years",
            description: "expected years a customer stays; when unset, the mean tenure of the \
                customers who churned before the window's end",
            default: "",
            kind: ParamKind::Decimal { min: "0", max: "" },
        },
    ],
    dimensions: &[kpi_core::Dimension::ANY_ATTRIBUTE],
    default_group_by: &[],
};

/// Yearly purchase revenue per customer active in the window, times the gross margin.
fn annual_profit_per_customer(ctx: &Gather<'_>) -> Result<kpi_core::Decimal, MetricError> {
    const INPUT: &str = "annual_profit_per_customer";
    let active = ctx.measure(Measure::CustomersActiveInWindow)?;
    if active.is_zero() {
        return Err(MetricError::UndefinedInput {
            input: INPUT.into(),
            reason: "no customer was active in the window".into(),
        });
    }
    let years = window_years(ctx, INPUT)?;
    let margin = ctx.params().require_decimal("gross_margin")?;
    let revenue = ctx.measure(Measure::PurchaseRevenue)?;
    let customer_years = active
        .checked_mul(years)
        .ok_or_else(|| MetricError::Overflow("active customers × years".into()))?;
    revenue
        .checked_mul(margin)
        .and_then(|profit| profit.checked_div(customer_years))
        .ok_or_else(|| MetricError::Overflow(INPUT.into()))
}

impl Metric for ClvNet {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn gather(&self, ctx: &Gather<'_>) -> Result<Inputs, MetricError> {
        let mut inputs = ctx.gather_declared(self.descriptor())?;
        if !ctx.is_explicit("annual_profit_per_customer") {
            inputs.set(
                "annual_profit_per_customer",
                annual_profit_per_customer(ctx)?,
            );
        }
        if !ctx.is_explicit("retention_years") {
            inputs.set(
                "retention_years",
                expected_lifetime_years(ctx, "retention_years", "retention_years")?,
            );
        }
        Ok(inputs)
    }

    fn evaluate(&self, inputs: &Inputs, params: &Params) -> Result<Value, MetricError> {
        let profit = inputs.get("annual_profit_per_customer")?;
        let retention = match params.decimal("retention_years") {
            Some(years) => years,
            None => inputs.get("retention_years")?,
        };
        let cac = inputs.get("cac")?;
        if cac.is_sign_negative() && !cac.is_zero() {
            return Err(MetricError::InvalidInput {
                input: "cac".into(),
                reason: format!("an acquisition cost cannot be negative (got {cac})"),
            });
        }
        profit
            .checked_mul(retention)
            .and_then(|lifetime| lifetime.checked_sub(cac))
            .map(Value::Defined)
            .ok_or_else(|| {
                MetricError::Overflow("annual_profit_per_customer × retention_years − cac".into())
            })
    }
}

kpi_core::register_metric!(ClvNet);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cac;
    use kpi_core::testing::*;
    use kpi_core::{Row, SpendCategories, Window};

    fn clv_net(
        profit: &str,
        retention: &str,
        cac: &str,
        raw: &[(&str, &str)],
    ) -> Result<Value, MetricError> {
        evaluate_with(
            &ClvNet,
            &inputs([
                ("annual_profit_per_customer", profit),
                ("retention_years", retention),
                ("cac", cac),
            ]),
            raw,
        )
    }

    #[test]
    fn worked_example_3000_a_year_2_years_cac_1000_is_5000() {
        assert_defined(clv_net("3000", "2", "1000", &[]), "5000");
    }

    #[test]
    fn a_customer_costing_more_than_they_bring_is_negative() {
        assert_defined(clv_net("300", "2", "1000", &[]), "-400");
    }

    #[test]
    fn rounds_to_two_places() {
        // 333.3333 × 1 − 0 → 333.33; 100.005 → 100.01 (half away from zero)
        assert_defined(clv_net("333.3333", "1", "0", &[]), "333.33");
        assert_defined(clv_net("100.005", "1", "0", &[]), "100.01");
    }

    #[test]
    fn retention_param_wins_over_the_input() {
        assert_defined(
            clv_net("3000", "2", "1000", &[("retention_years", "3")]),
            "8000",
        );
    }

    #[test]
    fn negative_inputs_are_rejected() {
        assert_invalid_input(clv_net("3000", "2", "-1", &[]), "cac");
        assert!(matches!(
            clv_net("-3000", "2", "1000", &[]),
            Err(MetricError::InvalidInput { .. })
        ));
    }

    fn stored() -> FakeSource {
        FakeSource::new([
            // cac: 10 000 / 10 = 1 000
            (Measure::Spend(SpendCategories::ALL), "10000"),
            (Measure::CustomersAcquired, "10"),
            // 1 500 000 of purchases by 400 active customers in one year = 3 750 each
            (Measure::PurchaseRevenue, "1500000"),
            (Measure::CustomersActiveInWindow, "400"),
            (Measure::CustomersChurnedBeforeEnd, "25"),
            (Measure::MeanChurnedTenureYears, "2"),
        ])
    }

    /// Net CLV (and the CAC it reads) over `window` with these params, from `source`.
    fn clv_net_row(window: Window, params: &[(&str, &str)], source: &FakeSource) -> Row {
        let request = spec("marketing.clv_net", window, params, &[]);
        compute_one(&[&ClvNet, &Cac], &request, source)
    }

    #[test]
    fn reads_profit_tenure_and_cac_from_the_store() {
        let row = clv_net_row(year_2024(), &[("gross_margin", "0.8")], &stored());
        // 3 750 × 0.8 = 3 000 a year, × 2 years − 1 000 = 5 000
        assert_eq!(
            row.inputs.get("annual_profit_per_customer").unwrap(),
            d("3000")
        );
        assert_eq!(row.inputs.get("retention_years").unwrap(), d("2"));
        assert_eq!(row.inputs.get("cac").unwrap(), d("1000"));
        assert_eq!(row.value, Value::Defined(d("5000")));
    }

    #[test]
    fn a_shorter_window_spreads_revenue_to_a_year() {
        let row = clv_net_row(first_half_2024(), &[("retention_years", "1")], &stored());
        // 1 500 000 / 400 / 0.5 = 7 500 a year, × 1 year − 1 000 = 6 500
        assert_eq!(
            row.inputs.get("annual_profit_per_customer").unwrap(),
            d("7500")
        );
        assert_eq!(row.inputs.get("retention_years").unwrap(), d("1"));
        assert_eq!(row.value, Value::Defined(d("6500")));
    }

    #[test]
    fn no_active_customer_is_undefined() {
        let source = FakeSource::new([
            (Measure::Spend(SpendCategories::ALL), "10000"),
            (Measure::CustomersAcquired, "10"),
            (Measure::PurchaseRevenue, "0"),
            (Measure::CustomersActiveInWindow, "0"),
            (Measure::CustomersChurnedBeforeEnd, "25"),
            (Measure::MeanChurnedTenureYears, "2"),
        ]);
        let row = clv_net_row(year_2024(), &[], &source);
        assert_eq!(
            row.value,
            Value::Undefined(
                "annual_profit_per_customer is undefined: no customer was active in the window"
                    .into()
            )
        );
    }

    #[test]
    fn no_churned_customer_and_no_param_is_undefined() {
        let source = FakeSource::new([
            (Measure::Spend(SpendCategories::ALL), "10000"),
            (Measure::CustomersAcquired, "10"),
            (Measure::PurchaseRevenue, "1500000"),
            (Measure::CustomersActiveInWindow, "400"),
            (Measure::CustomersChurnedBeforeEnd, "0"),
            (Measure::MeanChurnedTenureYears, "0"),
        ]);
        let row = clv_net_row(year_2024(), &[], &source);
        assert_eq!(
            row.value,
            Value::Undefined(
                "retention_years is undefined: no customer has churned before the window's \
                 end; give the retention_years parameter"
                    .into()
            )
        );
    }
}
