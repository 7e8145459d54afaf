use kpi_core::{
    Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor, MetricError,
    Params, Unit, Value,
};

/// `revenue.net_new_mrr`: new_mrr + expansion_mrr + reactivation_mrr − contraction_mrr −
/// churned_mrr.
pub struct NetNewMrr;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "revenue.net_new_mrr",
    name: "Net new MRR",
    family: "revenue",
    description: "How much MRR grew (or, when negative, shrank) through the window's \
        movements: MRR at the end = MRR at the start + net new MRR, exactly. new_mrr is the \
        first MRR of subscriptions started in the window by customers with none active who \
        never had paid MRR; expansion_mrr the MRR increases in the window of existing \
        customers; reactivation_mrr the first MRR of subscriptions started in the window by \
        customers with none active who had paid MRR before (returning customers); \
        contraction_mrr the decreases in the window that leave a subscription \
        running; churned_mrr the MRR in effect just before each subscription that ended in \
        the window (ended_at, or a change to 0) ended. As Stripe's MRR growth (new + \
        reactivation + expansion − churned − contraction).",
    formula: "new_mrr + expansion_mrr + reactivation_mrr − contraction_mrr − churned_mrr",
    unit: Unit::Currency,
    direction: Direction::HigherIsBetter,
    inputs: &[
        InputSpec::stored(
            "new_mrr",
            "first MRR of subscriptions started in the window by customers with none active \
                who never had paid MRR",
            InputKind::NonNegative,
            Measure::NewMrr,
        ),
        InputSpec::stored(
            "expansion_mrr",
            "sum of MRR increases in the window of existing customers' subscriptions",
            InputKind::NonNegative,
            Measure::ExpansionMrr,
        ),
        InputSpec::stored(
            "reactivation_mrr",
            "first MRR of subscriptions started in the window by customers with none active \
                who had paid MRR before",
            InputKind::NonNegative,
            Measure::ReactivationMrr,
        ),
        InputSpec::stored(
            "contraction_mrr",
            "sum of MRR decreases in the window that leave the subscription running",
            InputKind::NonNegative,
            Measure::ContractionMrr,
        ),
        InputSpec::stored(
            "churned_mrr",
            "MRR in effect just before each subscription that ended in the window ended",
            InputKind::NonNegative,
            Measure::ChurnedMrr,
        ),
    ],
    params: &[],
    dimensions: crate::REVENUE_DIMENSIONS,
    default_group_by: &[],
};

impl Metric for NetNewMrr {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        let new_mrr = inputs.get("new_mrr")?;
        let expansion_mrr = inputs.get("expansion_mrr")?;
        let reactivation_mrr = inputs.get("reactivation_mrr")?;
        let contraction_mrr = inputs.get("contraction_mrr")?;
        let churned_mrr = inputs.get("churned_mrr")?;
        let gained = new_mrr
            .checked_add(expansion_mrr)
            .and_then(|x| x.checked_add(reactivation_mrr))
            .ok_or_else(|| {
                MetricError::Overflow("new_mrr + expansion_mrr + reactivation_mrr".into())
            })?;
        let lost = contraction_mrr
            .checked_add(churned_mrr)
            .ok_or_else(|| MetricError::Overflow("contraction_mrr + churned_mrr".into()))?;
        gained.checked_sub(lost).map(Value::Defined).ok_or_else(|| {
            MetricError::Overflow(
                "new_mrr + expansion_mrr + reactivation_mrr − contraction_mrr − churned_mrr".into(),
            )
        })
    }
}

kpi_core::register_metric!(NetNewMrr);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;
    use kpi_core::{ComputeSpec, Decimal};

    /// Net new MRR of new, expansion, contraction and churned MRR, with no reactivation.
    fn net_new(
        new_mrr: &str,
        expansion_mrr: &str,
        contraction_mrr: &str,
        churned_mrr: &str,
        raw_params: &[(&str, &str)],
    ) -> Result<Value, MetricError> {
        net_new_with_reactivation(
            new_mrr,
            expansion_mrr,
            "0",
            contraction_mrr,
            churned_mrr,
            raw_params,
        )
    }

    fn net_new_with_reactivation(
        new_mrr: &str,
        expansion_mrr: &str,
        reactivation_mrr: &str,
        contraction_mrr: &str,
        churned_mrr: &str,
        raw_params: &[(&str, &str)],
    ) -> Result<Value, MetricError> {
        evaluate_with(
            &NetNewMrr,
            &inputs([
                ("new_mrr", new_mrr),
                ("expansion_mrr", expansion_mrr),
                ("reactivation_mrr", reactivation_mrr),
                ("contraction_mrr", contraction_mrr),
                ("churned_mrr", churned_mrr),
            ]),
            raw_params,
        )
    }

    #[test]
    fn growth_is_new_plus_expansion_minus_contraction_and_churn() {
        // 5 000 + 2 000 − 500 − 1 500 = 5 000.
        assert_defined(net_new("5000", "2000", "500", "1500", &[]), "5000");
    }

    #[test]
    fn reactivation_adds_like_new_mrr() {
        // 5 000 new + 2 000 expansion + 700 reactivation − 500 − 1 500 = 5 700.
        assert_defined(
            net_new_with_reactivation("5000", "2000", "700", "500", "1500", &[]),
            "5700",
        );
        // A month where only returning customers move MRR: 0 + 0 + 300 − 0 − 100 = 200.
        assert_defined(
            net_new_with_reactivation("0", "0", "300", "0", "100", &[]),
            "200",
        );
        assert_invalid_input(
            net_new_with_reactivation("0", "0", "-1", "0", "0", &[]),
            "reactivation_mrr",
        );
    }

    #[test]
    fn may_be_negative() {
        // 1 000 + 0 − 1 000 − 2 000 = −2 000.
        assert_defined(net_new("1000", "0", "1000", "2000", &[]), "-2000");
    }

    #[test]
    fn no_movement_is_zero_not_undefined() {
        assert_defined(net_new("0", "0", "0", "0", &[]), "0");
    }

    #[test]
    fn rounds_half_away_from_zero_on_both_sides() {
        assert_defined(net_new("0.005", "0", "0", "0", &[]), "0.01");
        assert_defined(net_new("0", "0", "0.005", "0", &[]), "-0.01");
        assert_defined(
            net_new("100.5", "0", "0", "0", &[("precision", "0")]),
            "101",
        );
    }

    #[test]
    fn negative_movement_is_rejected() {
        // A movement is a sum of amounts; a decrease is given as a positive contraction.
        assert_invalid_input(net_new("0", "0", "-500", "0", &[]), "contraction_mrr");
    }

    #[test]
    fn overflow_is_an_error() {
        let max = Decimal::MAX.to_string();
        assert!(matches!(
            net_new(&max, &max, "0", "0", &[]),
            Err(MetricError::Overflow(_))
        ));
        assert!(matches!(
            net_new("0", "0", &max, &max, &[]),
            Err(MetricError::Overflow(_))
        ));
        assert!(matches!(
            net_new_with_reactivation(&max, "0", &max, "0", "0", &[]),
            Err(MetricError::Overflow(_))
        ));
    }

    #[test]
    fn reads_the_five_movements_from_the_store() {
        let source = FakeSource::new([
            (Measure::NewMrr, "5000"),
            (Measure::ExpansionMrr, "2000"),
            (Measure::ReactivationMrr, "700"),
            (Measure::ContractionMrr, "500"),
            (Measure::ChurnedMrr, "1500"),
        ]);
        let rows = compute(
            &[&NetNewMrr],
            &ComputeSpec::new("revenue.net_new_mrr", Some(q1_2024())),
            &source,
        );
        // 5 000 + 2 000 + 700 − 500 − 1 500.
        assert_eq!(rows[0].value, Value::Defined(d("5700")));
        assert_eq!(
            rows[0].inputs,
            inputs([
                ("new_mrr", "5000"),
                ("expansion_mrr", "2000"),
                ("reactivation_mrr", "700"),
                ("contraction_mrr", "500"),
                ("churned_mrr", "1500"),
            ])
        );
    }
}
