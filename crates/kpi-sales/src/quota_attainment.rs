use kpi_core::{
    percent, Dimension, Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor,
    MetricError, Params, Unit, Value,
};

/// `sales.quota_attainment`: won_amount / quota × 100.
pub struct QuotaAttainment;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "sales.quota_attainment",
    name: "Quota attainment",
    family: "sales",
    description: "Share of the sales quota for the window that won deals met. won_amount is the \
                  sum of `amount` of the deals with status won whose closed_at is in the window; \
                  quota is the sum of the quotas whose period overlaps the window, each amount \
                  prorated by the fraction of its period's days that lies in the window. Deals \
                  and quotas share only the owner, so it is grouped and filtered by owner alone.",
    formula: "won_amount / quota × 100",
    unit: Unit::Percent,
    direction: Direction::HigherIsBetter,
    inputs: &[
        InputSpec::stored(
            "won_amount",
            "sum of the amounts of deals won, closed in the window",
            InputKind::NonNegative,
            Measure::WonAmount,
        ),
        InputSpec::stored(
            "quota",
            "quota amounts overlapping the window, prorated by days",
            InputKind::NonNegative,
            Measure::QuotaProrated,
        ),
    ],
    params: &[],
    dimensions: &[Dimension::Owner, Dimension::ANY_ATTRIBUTE],
    default_group_by: &[],
};

impl Metric for QuotaAttainment {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        let won_amount = inputs.get("won_amount")?;
        let quota = inputs.get("quota")?;
        percent(won_amount, quota, "no quota covers the window (quota = 0)")
    }
}

kpi_core::register_metric!(QuotaAttainment);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;

    fn quota_attainment(won_amount: &str, quota: &str) -> Result<Value, MetricError> {
        evaluate_with(
            &QuotaAttainment,
            &inputs([("won_amount", won_amount), ("quota", quota)]),
            &[],
        )
    }

    #[test]
    fn worked_example_90_000_sold_of_100_000_is_90() {
        assert_defined(quota_attainment("90000", "100000"), "90");
    }

    #[test]
    fn over_attainment_goes_past_100() {
        // 125 000 sold against 100 000 → 125
        assert_defined(quota_attainment("125000", "100000"), "125");
    }

    #[test]
    fn prorated_quota_rounds_to_two_places() {
        // a 120 000 yearly quota prorated to 91 of 366 days = 29 836.065573…;
        // 20 000 / 29 836.065573… × 100 = 67.0329… → 67.03
        let quota = d("120000") * d("91") / d("366");
        let given = inputs([("won_amount", d("20000")), ("quota", quota)]);
        assert_defined(evaluate_with(&QuotaAttainment, &given, &[]), "67.03");
    }

    #[test]
    fn precision_param_sets_the_places() {
        // 2 / 3 × 100 = 66.666… → 67
        let given = inputs([("won_amount", "2"), ("quota", "3")]);
        assert_defined(
            evaluate_with(&QuotaAttainment, &given, &[("precision", "0")]),
            "67",
        );
    }

    #[test]
    fn no_quota_is_undefined() {
        assert_undefined(
            quota_attainment("5000", "0"),
            "no quota covers the window (quota = 0)",
        );
    }

    #[test]
    fn negative_quota_is_invalid() {
        assert_invalid_input(quota_attainment("5000", "-100"), "quota");
    }

    #[test]
    fn stored_deals_and_quotas_feed_the_inputs() {
        let fake = FakeSource::new([
            (Measure::WonAmount, "90000"),
            (Measure::QuotaProrated, "100000"),
        ]);
        let row = compute_one(
            &[&QuotaAttainment],
            &spec("sales.quota_attainment", q1_2024(), &[], &[]),
            &fake,
        );
        assert_eq!(
            row.inputs,
            inputs([("won_amount", "90000"), ("quota", "100000")])
        );
        assert_eq!(row.value, Value::Defined(d("90")));
    }
}
