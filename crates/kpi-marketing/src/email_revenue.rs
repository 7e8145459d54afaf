use kpi_core::{
    Dimension, Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor,
    MetricError, Params, Unit, Value,
};

/// `marketing.email_revenue`: attributed_revenue.
pub struct EmailRevenue;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "marketing.email_revenue",
    name: "Email revenue",
    family: "marketing",
    description: "Revenue won through email campaigns. attributed_revenue is the sum of the \
        amounts of won deals closed in the window whose campaign's channel is email.",
    formula: "attributed_revenue",
    unit: Unit::Currency,
    direction: Direction::HigherIsBetter,
    inputs: &[InputSpec::stored(
        "attributed_revenue",
        "won deal amounts closed in the window, from email campaigns",
        InputKind::NonNegative,
        Measure::EmailAttributedRevenue,
    )],
    params: &[],
    dimensions: &[
        Dimension::Owner,
        Dimension::Source,
        Dimension::Campaign,
        Dimension::Channel,
        Dimension::Segment,
        Dimension::ANY_ATTRIBUTE,
        Dimension::ANY_CUSTOMER_ATTRIBUTE,
        Dimension::Cohort,
    ],
    default_group_by: &[],
};

impl Metric for EmailRevenue {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        Ok(Value::Defined(inputs.get("attributed_revenue")?))
    }
}

kpi_core::register_metric!(EmailRevenue);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;

    fn email_revenue(revenue: &str) -> Result<Value, MetricError> {
        evaluate_with(
            &EmailRevenue,
            &inputs([("attributed_revenue", revenue)]),
            &[],
        )
    }

    #[test]
    fn is_the_attributed_revenue() {
        assert_defined(email_revenue("42000"), "42000");
    }

    #[test]
    fn rounds_to_two_places() {
        assert_defined(email_revenue("1234.565"), "1234.57");
    }

    #[test]
    fn no_email_revenue_is_zero_not_undefined() {
        assert_defined(email_revenue("0"), "0");
    }

    #[test]
    fn negative_revenue_is_rejected() {
        assert!(matches!(
            email_revenue("-5"),
            Err(MetricError::InvalidInput { .. })
        ));
    }

    #[test]
    fn reads_email_attributed_revenue() {
        let source = FakeSource::new([(Measure::EmailAttributedRevenue, "42000.50")]);
        let row = compute_one(
            &[&EmailRevenue],
            &spec("marketing.email_revenue", year_2024(), &[], &[]),
            &source,
        );
        assert_eq!(row.value, Value::Defined(d("42000.5")));
        assert_eq!(row.inputs.get("attributed_revenue").unwrap(), d("42000.50"));
    }
}
