use kpi_core::{
    percent, Dimension, Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor,
    MetricError, Params, Unit, Value,
};

/// `success.renewal_rate`: renewed / due × 100.
pub struct RenewalRate;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "success.renewal_rate",
    name: "Renewal rate",
    family: "success",
    description: "Share of the subscriptions due for renewal in the window that were renewed. \
        due counts subscriptions whose renewal_due_at is in the window; renewed counts those \
        of them marked renewed.",
    formula: "renewed / due × 100",
    unit: Unit::Percent,
    direction: Direction::HigherIsBetter,
    inputs: &[
        InputSpec::stored(
            "renewed",
            "subscriptions due for renewal in the window that were renewed",
            InputKind::Count,
            Measure::Renewed,
        ),
        InputSpec::stored(
            "due",
            "subscriptions with renewal_due_at in the window",
            InputKind::Count,
            Measure::RenewalsDue,
        ),
    ],
    params: &[],
    dimensions: &[
        Dimension::Owner,
        Dimension::Source,
        Dimension::Segment,
        Dimension::ANY_ATTRIBUTE,
        Dimension::ANY_CUSTOMER_ATTRIBUTE,
        Dimension::Cohort,
    ],
    default_group_by: &[],
};

impl Metric for RenewalRate {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        let renewed = inputs.get("renewed")?;
        let due = inputs.get("due")?;
        kpi_core::at_most(
            "renewed",
            renewed,
            "due",
            due,
            "only a subscription due for renewal can be renewed",
        )?;
        percent(
            renewed,
            due,
            "no subscription was due for renewal in the window (due = 0)",
        )
    }
}

kpi_core::register_metric!(RenewalRate);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;
    use kpi_core::Decimal;

    fn renewal_rate(renewed: i64, due: i64) -> Result<Value, MetricError> {
        evaluate_with(
            &RenewalRate,
            &inputs([("renewed", renewed), ("due", due)]),
            &[],
        )
    }

    #[test]
    fn worked_example_900_of_1000_is_90() {
        assert_defined(renewal_rate(900, 1000), "90");
    }

    #[test]
    fn worked_example_next_year_600_of_1000_is_60() {
        assert_defined(renewal_rate(600, 1000), "60");
    }

    #[test]
    fn rounds_to_two_places() {
        // 1 / 7 × 100 = 14.2857… → 14.29
        assert_defined(renewal_rate(1, 7), "14.29");
    }

    #[test]
    fn precision_param_changes_the_rounding() {
        // 12.5 → 13 (half away from zero)
        let given = inputs([("renewed", 1), ("due", 8)]);
        assert_defined(
            evaluate_with(&RenewalRate, &given, &[("precision", "0")]),
            "13",
        );
    }

    #[test]
    fn nothing_due_is_undefined() {
        assert!(matches!(renewal_rate(0, 0), Ok(Value::Undefined(_))));
    }

    #[test]
    fn more_renewed_than_due_is_invalid() {
        assert_invalid_input(renewal_rate(1001, 1000), "renewed");
    }

    #[test]
    fn stored_measures_feed_renewed_and_due() {
        let source = FakeSource::new([(Measure::Renewed, 900), (Measure::RenewalsDue, 1000)]);
        let row = compute_one(
            &[&RenewalRate],
            &spec("success.renewal_rate", year_2024(), &[], &[]),
            &source,
        );
        assert_eq!(row.inputs, inputs([("due", "1000"), ("renewed", "900")]));
        assert_eq!(row.value, Value::Defined(Decimal::from(90)));
    }
}
