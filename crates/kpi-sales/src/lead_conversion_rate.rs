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
        crate::part_of_whole("converted", converted, "leads", leads)?;
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
    use std::collections::{BTreeMap, HashMap};

    use super::*;
    use crate::test_support::{d, q1_2024, FakeSource};
    use kpi_core::engine::evaluate;
    use kpi_core::{ComputeSpec, Registry};

    fn lead_conversion_rate(converted: &str, leads: &str) -> Result<Value, MetricError> {
        let inputs = Inputs::new()
            .with("converted", d(converted))
            .with("leads", d(leads));
        evaluate(&LeadConversionRate, &inputs, &Params::default())
    }

    #[test]
    fn worked_example_30_of_100_leads_is_30() {
        assert_eq!(
            lead_conversion_rate("30", "100").unwrap(),
            Value::Defined(d("30"))
        );
    }

    #[test]
    fn rounds_to_two_places() {
        // 2 / 3 × 100 = 66.666… → 66.67; 1 / 8 × 100 = 12.5
        assert_eq!(
            lead_conversion_rate("2", "3").unwrap(),
            Value::Defined(d("66.67"))
        );
        assert_eq!(
            lead_conversion_rate("1", "8").unwrap(),
            Value::Defined(d("12.5"))
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
            .with("converted", d("1"))
            .with("leads", d("8"));
        // 12.5 → 13 (half away from zero)
        assert_eq!(
            evaluate(&LeadConversionRate, &inputs, &params).unwrap(),
            Value::Defined(d("13"))
        );
    }

    #[test]
    fn no_leads_is_undefined() {
        assert_eq!(
            lead_conversion_rate("0", "0").unwrap(),
            Value::Undefined("no leads were created in the window (leads = 0)".into())
        );
    }

    #[test]
    fn more_converted_than_leads_is_invalid() {
        assert!(matches!(
            lead_conversion_rate("31", "30"),
            Err(MetricError::InvalidInput { input, .. }) if input == "converted"
        ));
        assert!(matches!(
            lead_conversion_rate("1", "0"),
            Err(MetricError::InvalidInput { input, .. }) if input == "converted"
        ));
        assert_eq!(
            lead_conversion_rate("30", "30").unwrap(),
            Value::Defined(d("100"))
        );
    }

    #[test]
    fn stored_leads_feed_the_inputs() {
        let fake = FakeSource::new(HashMap::from([
            (Measure::LeadsCreated, d("100")),
            (Measure::LeadsConverted, d("30")),
        ]));
        let registry =
            Registry::from_metrics([&LeadConversionRate as &'static dyn Metric]).unwrap();
        let rows = registry
            .compute(
                &ComputeSpec::new("sales.lead_conversion_rate", Some(q1_2024())),
                Some(&fake),
            )
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0].inputs,
            Inputs::new()
                .with("converted", d("30"))
                .with("leads", d("100"))
        );
        assert_eq!(rows[0].value, Value::Defined(d("30")));
    }
}
