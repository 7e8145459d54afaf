use kpi_core::{
    percent, Dimension, Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor,
    MetricError, Params, Unit, Value,
};

/// `marketing.campaign_roi`: (attributed_revenue − campaign_spend) / campaign_spend × 100.
pub struct CampaignRoi;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "marketing.campaign_roi",
    name: "Campaign ROI",
    family: "marketing",
    description: "Return on campaign spend: the revenue campaigns brought in beyond what they \
        cost, as a percentage of what they cost; one row per campaign by default. \
        attributed_revenue is the sum of the amounts of won deals closed in the window that \
        carry the campaign's id; campaign_spend is the sum of the spend records dated in the \
        window that carry it. It is negative when a campaign did not earn its cost back.",
    formula: "(attributed_revenue − campaign_spend) / campaign_spend × 100",
    unit: Unit::Percent,
    direction: Direction::HigherIsBetter,
    inputs: &[
        InputSpec::stored(
            "attributed_revenue",
            "won deal amounts closed in the window, attributed to a campaign",
            InputKind::NonNegative,
            Measure::CampaignAttributedRevenue,
        ),
        InputSpec::stored(
            "campaign_spend",
            "spend in the window attributed to a campaign",
            InputKind::NonNegative,
            Measure::CampaignSpend,
        ),
    ],
    params: &[],
    dimensions: &[
        Dimension::Campaign,
        Dimension::Channel,
        Dimension::ANY_ATTRIBUTE,
    ],
    default_group_by: &[Dimension::Campaign],
};

impl Metric for CampaignRoi {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        let revenue = inputs.get("attributed_revenue")?;
        let spend = inputs.get("campaign_spend")?;
        let gain = revenue
            .checked_sub(spend)
            .ok_or_else(|| MetricError::Overflow("attributed_revenue − campaign_spend".into()))?;
        percent(
            gain,
            spend,
            "nothing was spent on the campaign in the window (campaign_spend = 0)",
        )
    }
}

kpi_core::register_metric!(CampaignRoi);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;

    fn roi(revenue: &str, spend: &str) -> Result<Value, MetricError> {
        evaluate_with(
            &CampaignRoi,
            &inputs([("attributed_revenue", revenue), ("campaign_spend", spend)]),
            &[],
        )
    }

    #[test]
    fn worked_example_revenue_15000_spend_5000_is_200() {
        assert_defined(roi("15000", "5000"), "200");
    }

    #[test]
    fn a_campaign_that_lost_money_is_negative() {
        // (2 000 − 5 000) / 5 000 × 100 = −60
        assert_defined(roi("2000", "5000"), "-60");
    }

    #[test]
    fn rounds_to_two_places() {
        // (1 000 − 300) / 300 × 100 = 233.333… → 233.33
        assert_defined(roi("1000", "300"), "233.33");
    }

    #[test]
    fn no_spend_is_undefined() {
        assert!(matches!(roi("15000", "0").unwrap(), Value::Undefined(_)));
    }

    #[test]
    fn negative_amounts_are_rejected() {
        assert!(matches!(
            roi("-1", "5000"),
            Err(MetricError::InvalidInput { .. })
        ));
        assert!(matches!(
            roi("15000", "-5000"),
            Err(MetricError::InvalidInput { .. })
        ));
    }

    #[test]
    fn groups_by_campaign_by_default() {
        assert_eq!(
            CampaignRoi.descriptor().default_group_by,
            &[Dimension::Campaign]
        );
    }

    #[test]
    fn reads_each_campaigns_revenue_and_spend_in_its_own_row() {
        let source = FakeSource::new([
            (Measure::CampaignAttributedRevenue, "15000"),
            (Measure::CampaignSpend, "5000"),
        ])
        .with_group(Dimension::Campaign, "spring", []);
        // no group_by in the request: the default, campaign, applies
        let row = compute_one(
            &[&CampaignRoi],
            &spec("marketing.campaign_roi", year_2024(), &[], &[]),
            &source,
        );
        assert_eq!(
            row.group.get(&Dimension::Campaign).map(String::as_str),
            Some("spring")
        );
        assert_eq!(row.value, Value::Defined(d("200")));
        assert_eq!(row.inputs.get("attributed_revenue").unwrap(), d("15000"));
        assert_eq!(row.inputs.get("campaign_spend").unwrap(), d("5000"));
        let reads = source.reads();
        assert_eq!(reads.len(), 2);
        for (_, scope) in reads.iter() {
            assert_eq!(
                scope.filters.get(&Dimension::Campaign).map(String::as_str),
                Some("spring"),
                "each measure is read for the row's campaign"
            );
        }
    }
}
