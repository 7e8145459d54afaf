use kpi_core::{
    ratio, Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor, MetricError,
    ParamKind, ParamSpec, Params, Unit, Value,
};

/// `marketing.cac_payback_months`: cac / (new_customer_mrr × gross_margin).
pub struct CacPaybackMonths;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "marketing.cac_payback_months",
    name: "CAC payback period",
    family: "marketing",
    description: "Months of gross profit from a new customer's subscription needed to earn back \
        what it cost to acquire them. cac is marketing.cac for the same window (spend over \
        customers acquired in it); new_customer_mrr is the mean first MRR (the first MRR \
        change of their earliest subscription) of the customers acquired in the window that \
        have a subscription; gross_margin (a parameter, 1 by default) is the share of that \
        MRR kept as gross profit.",
    formula: "cac / (new_customer_mrr × gross_margin)",
    unit: Unit::Months,
    direction: Direction::LowerIsBetter,
    inputs: &[
        InputSpec::metric(
            "cac",
            "customer acquisition cost (marketing.cac)",
            "marketing.cac",
        ),
        InputSpec::stored(
            "new_customer_mrr",
            "mean first MRR of the customers acquired in the window",
            InputKind::NonNegative,
            Measure::NewCustomerMeanFirstMrr,
        ),
    ],
    params: &[ParamSpec {
        name: "gross_margin",
        description: "share of MRR kept as gross profit, from 0 to 1",
        default: "1",
        kind: ParamKind::Decimal { min: "0", max: "1" },
    }],
    dimensions: &[kpi_core::Dimension::ANY_ATTRIBUTE],
    default_group_by: &[],
};

impl Metric for CacPaybackMonths {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, params: &Params) -> Result<Value, MetricError> {
        let cac = inputs.get("cac")?;
        let mrr = inputs.get("new_customer_mrr")?;
        let margin = params.require_decimal("gross_margin")?;
        if cac.is_sign_negative() && !cac.is_zero() {
            return Err(MetricError::InvalidInput {
                input: "cac".into(),
                reason: format!("an acquisition cost cannot be negative (got {cac})"),
            });
        }
        if margin.is_zero() {
            return Ok(Value::Undefined(
                "gross_margin is 0: no profit ever pays the acquisition cost back".into(),
            ));
        }
        let monthly_profit = mrr
            .checked_mul(margin)
            .ok_or_else(|| MetricError::Overflow("new_customer_mrr × gross_margin".into()))?;
        ratio(
            cac,
            monthly_profit,
            "new customers bring no MRR (new_customer_mrr = 0)",
        )
    }
}

kpi_core::register_metric!(CacPaybackMonths);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cac;
    use kpi_core::testing::*;
    use kpi_core::SpendCategories;

    fn payback(cac: &str, mrr: &str, raw: &[(&str, &str)]) -> Result<Value, MetricError> {
        evaluate_with(
            &CacPaybackMonths,
            &inputs([("cac", cac), ("new_customer_mrr", mrr)]),
            raw,
        )
    }

    #[test]
    fn worked_example_cac_1000_mrr_100_margin_0_8_is_12_5() {
        assert_defined(payback("1000", "100", &[("gross_margin", "0.8")]), "12.5");
    }

    #[test]
    fn margin_defaults_to_1() {
        assert_defined(payback("1000", "100", &[]), "10");
    }

    #[test]
    fn rounds_to_two_places() {
        // 1 000 / (90 × 1) = 11.111… → 11.11
        assert_defined(payback("1000", "90", &[]), "11.11");
    }

    #[test]
    fn zero_mrr_or_zero_margin_is_undefined() {
        assert!(matches!(
            payback("1000", "0", &[]).unwrap(),
            Value::Undefined(_)
        ));
        assert!(matches!(
            payback("1000", "100", &[("gross_margin", "0")]).unwrap(),
            Value::Undefined(_)
        ));
    }

    #[test]
    fn negative_cac_or_mrr_is_rejected() {
        assert!(matches!(
            payback("-1000", "100", &[]),
            Err(MetricError::InvalidInput { .. })
        ));
        assert!(matches!(
            payback("1000", "-100", &[]),
            Err(MetricError::InvalidInput { .. })
        ));
    }

    #[test]
    fn margin_above_1_is_rejected_by_params() {
        let raw = [("gross_margin".to_owned(), "1.2".to_owned())].into();
        assert!(kpi_core::Params::parse(CacPaybackMonths.descriptor(), &raw).is_err());
    }

    #[test]
    fn reads_cac_from_the_cac_metric_and_mrr_from_the_store() {
        let source = FakeSource::new([
            (Measure::Spend(SpendCategories::ALL), "10000"),
            (Measure::CustomersAcquired, "10"),
            (Measure::NewCustomerMeanFirstMrr, "100"),
        ]);
        let row = compute_one(
            &[&CacPaybackMonths, &Cac],
            &spec(
                "marketing.cac_payback_months",
                year_2024(),
                &[("gross_margin", "0.8")],
                &[],
            ),
            &source,
        );
        assert_eq!(row.value, Value::Defined(d("12.5")));
        assert_eq!(row.inputs.get("cac").unwrap(), d("1000"));
        assert_eq!(row.inputs.get("new_customer_mrr").unwrap(), d("100"));
    }

    #[test]
    fn undefined_cac_makes_the_payback_undefined() {
        let source = FakeSource::new([
            (Measure::Spend(SpendCategories::ALL), "10000"),
            (Measure::CustomersAcquired, "0"),
            (Measure::NewCustomerMeanFirstMrr, "0"),
        ]);
        let row = compute_one(
            &[&CacPaybackMonths, &Cac],
            &spec("marketing.cac_payback_months", year_2024(), &[], &[]),
            &source,
        );
        assert_eq!(
            row.value,
            Value::Undefined(
                "cac is undefined: no customers were acquired in the window (new_customers = 0)"
                    .into()
            )
        );
    }
}
