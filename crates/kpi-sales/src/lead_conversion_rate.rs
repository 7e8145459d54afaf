use kpi_core::{
    percent, Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor,
    MetricError, Params, Unit, Value,
};

/// `sales.lead_conversion_rate`: converted / leads × 100.
pub struct LeadConversionRate;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "sales.lead_conversion_rate",
    name: "Lead conversion rate",
    family: "sales",
    description: "Share of the leads created in the window that converted. leads counts the \
                  leads whose created_at is in the window; converted counts those of them whose \
                  converted_at is before the window's end.",
    formula: "converted / leads × 100",
    unit: Unit::Percent,
    direction: Direction::HigherIsBetter,
    inputs: &[
        InputSpec::stored(
            "converted",
            "leads created in the window and converted before its end",
            InputKind::Count,
            Measure::LeadsConverted,
        ),
        InputSpec::stored(
            "leads",
            "leads created in the window",
            InputKind::Count,
            Measure::LeadsCreated,
        ),
    ],
    params: &[],
    dimensions: crate::LEAD_DIMENSIONS,
    default_group_by: &[],
};

impl Metric for LeadConversionRate {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        let converted = inputs.get("converted")?;
        let leads = inputs.get("leads")?;
        kpi_core::at_most(
            "converted",
            converted,
            "leads",
            leads,
            "it counts some of them",
        )?;
        percent(
            converted,
            leads,
            "no leads were created in the window (leads = 0)",
        )
    }
}

kpi_core::register_metric!(LeadConversionRate);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;

    fn lead_conversion_rate(converted: &str, leads: &str) -> Result<Value, MetricError> {
        evaluate_with(
            &LeadConversionRate,
            &inputs([("converted", converted), ("leads", leads)]),
            &[],
        )
    }

    #[test]
    fn worked_example_30_of_100_leads_is_30() {
        assert_defined(lead_conversion_rate("30", "100"), "30");
    }

    #[test]
    fn rounds_to_two_places() {
        // 2 / 3 × 100 = 66.666… → 66.67; 1 / 8 × 100 = 12.5
        assert_defined(lead_conversion_rate("2", "3"), "66.67");
        assert_defined(lead_conversion_rate("1", "8"), "12.5");
    }

    #[test]
    fn precision_param_sets_the_places() {
        // 12.5 → 13 (half away from zero)
        let given = inputs([("converted", "1"), ("leads", "8")]);
        assert_defined(
            evaluate_with(&LeadConversionRate, &given, &[("precision", "0")]),
            "13",
        );
    }

    #[test]
    fn no_leads_is_undefined() {
        assert_undefined(
            lead_conversion_rate("0", "0"),
            "no leads were created in the window (leads = 0)",
        );
    }

    #[test]
    fn more_converted_than_leads_is_invalid() {
        assert_invalid_input(lead_conversion_rate("31", "30"), "converted");
        assert_invalid_input(lead_conversion_rate("1", "0"), "converted");
        assert_defined(lead_conversion_rate("30", "30"), "100");
    }

    #[test]
    fn stored_leads_feed_the_inputs() {
        let fake = FakeSource::new([
            (Measure::LeadsCreated, "100"),
            (Measure::LeadsConverted, "30"),
        ]);
        let row = compute_one(
            &[&LeadConversionRate],
            &spec("sales.lead_conversion_rate", q1_2024(), &[], &[]),
            &fake,
        );
        assert_eq!(row.inputs, inputs([("converted", "30"), ("leads", "100")]));
        assert_eq!(row.value, Value::Defined(d("30")));
    }
}
