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
    dimensions: &[Dimension::Owner],
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
    use std::collections::{BTreeMap, HashMap};

    use super::*;
    use crate::test_support::{d, q1_2024, FakeSource};
    use kpi_core::engine::evaluate;
    use kpi_core::{ComputeSpec, Registry};

    fn quota_attainment(won_amount: &str, quota: &str) -> Result<Value, MetricError> {
        let inputs = Inputs::new()
            .with("won_amount", d(won_amount))
            .with("quota", d(quota));
        evaluate(&QuotaAttainment, &inputs, &Params::default())
    }

    #[test]
    fn worked_example_90_000_sold_of_100_000_is_90() {
        assert_eq!(
            quota_attainment("90000", "100000").unwrap(),
            Value::Defined(d("90"))
        );
    }

    #[test]
    fn over_attainment_goes_past_100() {
        // 125 000 sold against 100 000 → 125
        assert_eq!(
            quota_attainment("125000", "100000").unwrap(),
            Value::Defined(d("125"))
        );
    }

    #[test]
    fn prorated_quota_rounds_to_two_places() {
        // a 120 000 yearly quota prorated to 91 of 366 days = 29 836.065573…;
        // 20 000 / 29 836.065573… × 100 = 67.0329… → 67.03
        let quota = d("120000") * d("91") / d("366");
        let inputs = Inputs::new()
            .with("won_amount", d("20000"))
            .with("quota", quota);
        assert_eq!(
            evaluate(&QuotaAttainment, &inputs, &Params::default()).unwrap(),
            Value::Defined(d("67.03"))
        );
    }

    #[test]
    fn precision_param_sets_the_places() {
        let params = Params::parse(
            &DESCRIPTOR,
            &BTreeMap::from([("precision".to_owned(), "0".to_owned())]),
        )
        .unwrap();
        let inputs = Inputs::new()
            .with("won_amount", d("2")) // 2 / 3 × 100 = 66.666… → 67
            .with("quota", d("3"));
        assert_eq!(
            evaluate(&QuotaAttainment, &inputs, &params).unwrap(),
            Value::Defined(d("67"))
        );
    }

    #[test]
    fn no_quota_is_undefined() {
        assert_eq!(
            quota_attainment("5000", "0").unwrap(),
            Value::Undefined("no quota covers the window (quota = 0)".into())
        );
    }

    #[test]
    fn negative_quota_is_invalid() {
        assert!(matches!(
            quota_attainment("5000", "-100"),
            Err(MetricError::InvalidInput { input, .. }) if input == "quota"
        ));
    }

    #[test]
    fn stored_deals_and_quotas_feed_the_inputs() {
        let fake = FakeSource::new(HashMap::from([
            (Measure::WonAmount, d("90000")),
            (Measure::QuotaProrated, d("100000")),
        ]));
        let registry = Registry::from_metrics([&QuotaAttainment as &'static dyn Metric]).unwrap();
        let rows = registry
            .compute(
                &ComputeSpec::new("sales.quota_attainment", Some(q1_2024())),
                Some(&fake),
            )
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0].inputs,
            Inputs::new()
                .with("won_amount", d("90000"))
                .with("quota", d("100000"))
        );
        assert_eq!(rows[0].value, Value::Defined(d("90")));
    }
}
