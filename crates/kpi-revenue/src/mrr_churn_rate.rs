use kpi_core::{
    percent, Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor,
    MetricError, Params, Unit, Value,
};

/// `revenue.mrr_churn_rate`: (churned_mrr + contraction_mrr) / mrr_at_start × 100.
pub struct MrrChurnRate;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "revenue.mrr_churn_rate",
    name: "MRR churn rate",
    family: "revenue",
    description: "Share of the MRR at the start of the window lost during it to cancellations \
        and downgrades (gross MRR churn; expansion does not offset it). churned_mrr is the MRR \
        in effect just before each subscription that ended in the window (ended_at, or a \
        change to 0) ended; contraction_mrr the sum of decreases in the window that leave a \
        subscription running; mrr_at_start the sum of the MRR in effect at the start of \
        subscriptions active at the start. It can exceed 100 when MRR expanded and was then \
        lost within the window.",
    formula: "(churned_mrr + contraction_mrr) / mrr_at_start × 100",
    unit: Unit::Percent,
    direction: Direction::LowerIsBetter,
    inputs: &[
        InputSpec::stored(
            "churned_mrr",
            "MRR in effect just before each subscription that ended in the window ended",
            InputKind::NonNegative,
            Measure::ChurnedMrr,
        ),
        InputSpec::stored(
            "contraction_mrr",
            "sum of MRR decreases in the window that leave the subscription running",
            InputKind::NonNegative,
            Measure::ContractionMrr,
        ),
        InputSpec::stored(
            "mrr_at_start",
            "MRR in effect at the start of subscriptions active at the start",
            InputKind::NonNegative,
            Measure::MrrAtStart,
        ),
    ],
    params: &[],
    dimensions: crate::REVENUE_DIMENSIONS,
    default_group_by: &[],
};

impl Metric for MrrChurnRate {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        let churned_mrr = inputs.get("churned_mrr")?;
        let contraction_mrr = inputs.get("contraction_mrr")?;
        let mrr_at_start = inputs.get("mrr_at_start")?;
        let lost = churned_mrr
            .checked_add(contraction_mrr)
            .ok_or_else(|| MetricError::Overflow("churned_mrr + contraction_mrr".into()))?;
        percent(
            lost,
            mrr_at_start,
            "there was no MRR at the start of the window (mrr_at_start = 0)",
        )
    }
}

kpi_core::register_metric!(MrrChurnRate);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;
    use kpi_core::{ComputeSpec, Decimal};

    fn churn_rate(
        churned_mrr: &str,
        contraction_mrr: &str,
        mrr_at_start: &str,
        raw_params: &[(&str, &str)],
    ) -> Result<Value, MetricError> {
        evaluate_with(
            &MrrChurnRate,
            &inputs([
                ("churned_mrr", churned_mrr),
                ("contraction_mrr", contraction_mrr),
                ("mrr_at_start", mrr_at_start),
            ]),
            raw_params,
        )
    }

    #[test]
    fn churned_300_contracted_200_of_10_000_is_5() {
        // (300 + 200) / 10 000 × 100 = 5.
        assert_defined(churn_rate("300", "200", "10000", &[]), "5");
    }

    #[test]
    fn can_exceed_100_when_mrr_expanded_then_churned() {
        // 1 000 at start, expanded to 3 000, then cancelled: 3 000 / 1 000 × 100 = 300.
        assert_defined(churn_rate("3000", "0", "1000", &[]), "300");
    }

    #[test]
    fn nothing_lost_is_zero() {
        assert_defined(churn_rate("0", "0", "10000", &[]), "0");
    }

    #[test]
    fn rounds_to_precision() {
        // 100 / 3 000 × 100 = 3.333… → 3.33; 3.3 at precision 1.
        assert_defined(churn_rate("100", "0", "3000", &[]), "3.33");
        assert_defined(churn_rate("100", "0", "3000", &[("precision", "1")]), "3.3");
        // 200 / 3 000 × 100 = 6.666… → 6.67.
        assert_defined(churn_rate("150", "50", "3000", &[]), "6.67");
    }

    #[test]
    fn no_mrr_at_start_is_undefined() {
        assert_undefined(
            churn_rate("500", "0", "0", &[]),
            "there was no MRR at the start of the window (mrr_at_start = 0)",
        );
    }

    #[test]
    fn negative_amounts_are_rejected() {
        assert_invalid_input(churn_rate("-1", "0", "1000", &[]), "churned_mrr");
        assert_invalid_input(churn_rate("0", "0", "-1000", &[]), "mrr_at_start");
    }

    #[test]
    fn overflow_is_an_error() {
        let max = Decimal::MAX.to_string();
        assert!(matches!(
            churn_rate(&max, &max, "1", &[]),
            Err(MetricError::Overflow(_))
        ));
    }

    #[test]
    fn reads_churn_contraction_and_mrr_at_start_from_the_store() {
        let source = FakeSource::new([
            (Measure::ChurnedMrr, "300"),
            (Measure::ContractionMrr, "200"),
            (Measure::MrrAtStart, "10000"),
        ]);
        let rows = compute(
            &[&MrrChurnRate],
            &ComputeSpec::new("revenue.mrr_churn_rate", Some(q1_2024())),
            &source,
        );
        assert_eq!(rows[0].value, Value::Defined(d("5")));
        assert_eq!(
            rows[0].inputs,
            inputs([
                ("churned_mrr", "300"),
                ("contraction_mrr", "200"),
                ("mrr_at_start", "10000"),
            ])
        );
    }
}
