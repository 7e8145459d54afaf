use kpi_core::{
    Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor, MetricError,
    Params, Unit, Value,
};

/// `sales.leads_created`: leads.
pub struct LeadsCreated;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "sales.leads_created",
    name: "Leads created",
    family: "sales",
    description: "Number of new leads in the window. leads counts the leads whose created_at is \
                  in the window, converted or not.",
    formula: "leads",
    unit: Unit::Count,
    direction: Direction::HigherIsBetter,
    inputs: &[InputSpec::stored(
        "leads",
        "leads created in the window",
        InputKind::Count,
        Measure::LeadsCreated,
    )],
    params: &[],
    dimensions: crate::LEAD_DIMENSIONS,
    default_group_by: &[],
};

impl Metric for LeadsCreated {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        Ok(Value::Defined(inputs.get("leads")?))
    }
}

kpi_core::register_metric!(LeadsCreated);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;
    use kpi_core::Dimension;

    fn leads_created(leads: &str) -> Result<Value, MetricError> {
        evaluate_with(&LeadsCreated, &inputs([("leads", leads)]), &[])
    }

    #[test]
    fn is_the_lead_count() {
        assert_defined(leads_created("100"), "100");
        assert_defined(leads_created("0"), "0");
    }

    #[test]
    fn whole_count_needs_no_rounding() {
        // 250.00 given in calculator mode is the count 250, reported without trailing zeros
        assert_eq!(
            leads_created("250.00")
                .unwrap()
                .as_decimal()
                .unwrap()
                .to_string(),
            "250"
        );
    }

    #[test]
    fn negative_or_fractional_counts_are_invalid() {
        assert_invalid_input(leads_created("-1"), "leads");
        assert_invalid_input(leads_created("2.5"), "leads");
    }

    #[test]
    fn stored_leads_feed_the_input() {
        let fake = FakeSource::new([(Measure::LeadsCreated, "100")]);
        let row = compute_one(
            &[&LeadsCreated],
            &spec("sales.leads_created", q1_2024(), &[], &[]),
            &fake,
        );
        assert_eq!(row.inputs, inputs([("leads", "100")]));
        assert_eq!(row.value, Value::Defined(d("100")));
    }

    #[test]
    fn groups_by_lead_source() {
        let fake = FakeSource::default()
            .with_group(
                Dimension::Source,
                "marketing",
                [(Measure::LeadsCreated, d("70"))],
            )
            .with_group(
                Dimension::Source,
                "referral",
                [(Measure::LeadsCreated, d("0"))],
            )
            .with_group(
                Dimension::Source,
                "sales",
                [(Measure::LeadsCreated, d("30"))],
            );
        let mut request = spec("sales.leads_created", q1_2024(), &[], &[]);
        request.group_by = vec![Dimension::Source];
        let rows = compute(&[&LeadsCreated], &request, &fake);
        // the referral group has only zero inputs and is dropped
        let got: Vec<_> = rows
            .iter()
            .map(|r| (r.group[&Dimension::Source].as_str(), r.value.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("marketing", Value::Defined(d("70"))),
                ("sales", Value::Defined(d("30"))),
            ]
        );
    }
}
