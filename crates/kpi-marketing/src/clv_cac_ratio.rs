use kpi_core::{
    ratio, Direction, Gather, InputKind, InputSpec, Inputs, Metric, MetricDescriptor, MetricError,
    ParamKind, ParamSpec, Params, Unit, Value,
};

/// `marketing.clv_cac_ratio`: clv / cac.
pub struct ClvCacRatio;

/// The `clv` parameter's words.
const CLV_KINDS: [&str; 2] = ["clv", "clv_net"];

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "marketing.clv_cac_ratio",
    name: "CLV to CAC ratio",
    family: "marketing",
    description: "How many times a customer's lifetime value repays what it cost to acquire \
        them: 3 is healthy, 1 only breaks even. clv is marketing.clv for the same window (or \
        marketing.clv_net with the `clv` parameter set to clv_net), computed with that \
        metric's default parameters; cac is marketing.cac for the same window.",
    formula: "clv / cac",
    unit: Unit::Ratio,
    direction: Direction::HigherIsBetter,
    inputs: &[
        InputSpec::custom(
            "clv",
            "customer lifetime value (marketing.clv or marketing.clv_net)",
            InputKind::Any,
        ),
        InputSpec::metric(
            "cac",
            "customer acquisition cost (marketing.cac)",
            "marketing.cac",
        ),
    ],
    params: &[ParamSpec {
        name: "clv",
        description: "which lifetime value to compare: `clv` (marketing.clv) or `clv_net` \
            (marketing.clv_net)",
        default: "clv",
        kind: ParamKind::Choice(&CLV_KINDS),
    }],
    dimensions: &[kpi_core::Dimension::ANY_ATTRIBUTE],
    default_group_by: &[],
};

impl Metric for ClvCacRatio {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn gather(&self, ctx: &Gather<'_>) -> Result<Inputs, MetricError> {
        let mut inputs = ctx.gather_declared(self.descriptor())?;
        if !ctx.is_explicit("clv") {
            let metric_id = match ctx.params().choice("clv") {
                Some("clv_net") => "marketing.clv_net",
                _ => "marketing.clv",
            };
            inputs.set("clv", ctx.metric("clv", metric_id)?);
        }
        Ok(inputs)
    }

    /// `gather` picks clv or clv_net by the `clv` param, so both are listed: their params
    /// (`lifespan_years`, `retention_years`, `gross_margin`, `categories`) may be given here.
    fn uses_metrics(&self) -> Vec<&'static str> {
        vec!["marketing.clv", "marketing.clv_net", "marketing.cac"]
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        let clv = inputs.get("clv")?;
        let cac = inputs.get("cac")?;
        if cac.is_sign_negative() && !cac.is_zero() {
            return Err(MetricError::InvalidInput {
                input: "cac".into(),
                reason: format!("an acquisition cost cannot be negative (got {cac})"),
            });
        }
        ratio(clv, cac, "acquiring customers cost nothing (cac = 0)")
    }
}

kpi_core::register_metric!(ClvCacRatio);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cac, Clv, ClvNet};
    use kpi_core::testing::*;
    use kpi_core::{Measure, SpendCategories};

    fn clv_cac(clv: &str, cac: &str) -> Result<Value, MetricError> {
        evaluate_with(&ClvCacRatio, &inputs([("clv", clv), ("cac", cac)]), &[])
    }

    #[test]
    fn worked_example_clv_3000_cac_1000_is_3() {
        assert_defined(clv_cac("3000", "1000"), "3");
    }

    #[test]
    fn rounds_to_two_places() {
        // 2 000 / 1 500 = 1.333… → 1.33
        assert_defined(clv_cac("2000", "1500"), "1.33");
    }

    #[test]
    fn a_negative_net_clv_gives_a_negative_ratio() {
        assert_defined(clv_cac("-500", "1000"), "-0.5");
    }

    #[test]
    fn zero_cac_is_undefined() {
        assert_undefined(
            clv_cac("3000", "0"),
            "acquiring customers cost nothing (cac = 0)",
        );
    }

    #[test]
    fn negative_cac_is_rejected() {
        assert_invalid_input(clv_cac("3000", "-1000"), "cac");
    }

    fn stored() -> FakeSource {
        FakeSource::new([
            // cac: 10 000 / 10 = 1 000
            (Measure::Spend(SpendCategories::ALL), "10000"),
            (Measure::CustomersAcquired, "10"),
            // clv: 150 000 / 500 customers / 1 year × 10 years = 3 000
            (Measure::PurchaseRevenue, "150000"),
            (Measure::Purchases, "2500"),
            (Measure::Buyers, "500"),
            (Measure::CustomersChurnedBeforeEnd, "40"),
            (Measure::MeanChurnedTenureYears, "10"),
            // clv_net: 150 000 / 300 active / 1 year = 500 a year × 10 years − 1 000 = 4 000
            (Measure::CustomersActiveInWindow, "300"),
        ])
    }

    const ALL: [&'static dyn Metric; 4] = [&ClvCacRatio, &Clv, &ClvNet, &Cac];

    #[test]
    fn reads_clv_and_cac_from_their_metrics() {
        let row = compute_one(
            &ALL,
            &spec("marketing.clv_cac_ratio", year_2024(), &[], &[]),
            &stored(),
        );
        assert_eq!(row.inputs.get("clv").unwrap(), d("3000"));
        assert_eq!(row.inputs.get("cac").unwrap(), d("1000"));
        assert_eq!(row.value, Value::Defined(d("3")));
    }

    #[test]
    fn params_of_the_metrics_it_uses_are_passed_on() {
        // No customer churned, so clv needs its lifespan_years param, given on this request:
        // 150 000 / 500 / 1 year × 4 years = 1 200; cac over advertising only:
        // 4 000 / 10 = 400; 1 200 / 400 = 3.
        let source = stored()
            .with(Measure::CustomersChurnedBeforeEnd, "0")
            .with(Measure::MeanChurnedTenureYears, "0")
            .with(
                Measure::Spend(SpendCategories::from_names(&["advertising"])),
                "4000",
            );
        let row = compute_one(
            &ALL,
            &spec(
                "marketing.clv_cac_ratio",
                year_2024(),
                &[("lifespan_years", "4"), ("categories", "advertising")],
                &[],
            ),
            &source,
        );
        assert_eq!(row.inputs.get("clv").unwrap(), d("1200"));
        assert_eq!(row.inputs.get("cac").unwrap(), d("400"));
        assert_eq!(row.value, Value::Defined(d("3")));
        // A bad value for a dependency's param is still a field error of this request.
        let registry = kpi_core::Registry::from_metrics(ALL).unwrap();
        let err = registry
            .compute(
                &spec(
                    "marketing.clv_cac_ratio",
                    year_2024(),
                    &[("lifespan_years", "-1")],
                    &[],
                ),
                Some(&source),
            )
            .unwrap_err();
        assert!(format!("{err}").contains("params[lifespan_years]"), "{err}");
    }

    #[test]
    fn clv_param_selects_the_net_lifetime_value() {
        let row = compute_one(
            &ALL,
            &spec(
                "marketing.clv_cac_ratio",
                year_2024(),
                &[("clv", "clv_net")],
                &[],
            ),
            &stored(),
        );
        assert_eq!(row.inputs.get("clv").unwrap(), d("4000"));
        assert_eq!(row.inputs.get("cac").unwrap(), d("1000"));
        assert_eq!(row.value, Value::Defined(d("4")));
    }

    #[test]
    fn undefined_clv_makes_the_ratio_undefined() {
        let mut source = stored();
        source.insert(Measure::CustomersChurnedBeforeEnd, kpi_core::Decimal::ZERO);
        let row = compute_one(
            &ALL,
            &spec("marketing.clv_cac_ratio", year_2024(), &[], &[]),
            &source,
        );
        assert!(
            matches!(&row.value, Value::Undefined(reason) if reason.starts_with("clv is undefined: lifespan_years is undefined")),
            "{:?}",
            row.value
        );
    }
}
