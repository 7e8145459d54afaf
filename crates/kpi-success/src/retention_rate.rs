use kpi_core::{
    percent, Dimension, Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor,
    MetricError, Params, Unit, Value,
};

/// `success.retention_rate`: (at_end − new_retained) / at_start × 100.
pub struct RetentionRate;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "success.retention_rate",
    name: "Customer retention rate",
    family: "success",
    description: "Share of the customers active at the start of the window who are still \
        active at its end. at_end counts customers active at the end of the window; \
        new_retained counts customers acquired in the window who are still active at its end \
        (they are taken out of at_end so only existing customers count); at_start counts \
        customers active at the start of the window.",
    formula: "(at_end − new_retained) / at_start × 100",
    unit: Unit::Percent,
    direction: Direction::HigherIsBetter,
    inputs: &[
        InputSpec::stored(
            "at_end",
            "customers active at the end of the window",
            InputKind::Count,
            Measure::CustomersAtEnd,
        ),
        InputSpec::stored(
            "new_retained",
            "customers acquired in the window and active at its end",
            InputKind::Count,
            Measure::CustomersNewRetained,
        ),
        InputSpec::stored(
            "at_start",
            "customers active at the start of the window",
            InputKind::Count,
            Measure::CustomersAtStart,
        ),
    ],
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

impl Metric for RetentionRate {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        let at_end = inputs.get("at_end")?;
        let new_retained = inputs.get("new_retained")?;
        let at_start = inputs.get("at_start")?;
        kpi_core::at_most(
            "new_retained",
            new_retained,
            "at_end",
            at_end,
            "new customers retained are part of at_end",
        )?;
        // Both are non-negative and new_retained ≤ at_end: this cannot underflow.
        let kept = at_end - new_retained;
        if kept > at_start {
            return Err(MetricError::InvalidInput {
                input: "at_end".into(),
                reason: format!(
                    "{kept} existing customers at end (at_end − new_retained) is more than \
                     the {at_start} active at start"
                ),
            });
        }
        percent(
            kept,
            at_start,
            "no customers were active at the start of the window (at_start = 0)",
        )
    }
}

kpi_core::register_metric!(RetentionRate);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;
    use kpi_core::Decimal;

    fn retention_rate(at_end: i64, new_retained: i64, at_start: i64) -> Result<Value, MetricError> {
        evaluate_with(
            &RetentionRate,
            &inputs([
                ("at_end", at_end),
                ("new_retained", new_retained),
                ("at_start", at_start),
            ]),
            &[],
        )
    }

    #[test]
    fn worked_example_start_100_end_103_5_new_all_kept_is_98() {
        // (103 − 5) / 100 × 100 = 98
        assert_defined(retention_rate(103, 5, 100), "98");
    }

    #[test]
    fn rounds_to_two_places() {
        // (2 − 0) / 3 × 100 = 66.666… → 66.67
        assert_defined(retention_rate(2, 0, 3), "66.67");
    }

    #[test]
    fn no_customers_at_start_is_undefined() {
        assert!(matches!(retention_rate(4, 4, 0), Ok(Value::Undefined(_))));
        assert!(matches!(retention_rate(0, 0, 0), Ok(Value::Undefined(_))));
    }

    #[test]
    fn more_new_retained_than_at_end_is_invalid() {
        assert_invalid_input(retention_rate(3, 5, 100), "new_retained");
    }

    #[test]
    fn more_existing_at_end_than_at_start_is_invalid() {
        // 110 − 5 = 105 existing customers at end, but only 100 at start.
        assert_invalid_input(retention_rate(110, 5, 100), "at_end");
        assert!(matches!(
            retention_rate(1, 0, 0),
            Err(MetricError::InvalidInput { .. })
        ));
    }

    #[test]
    fn stored_measures_feed_each_input() {
        let source = FakeSource::new([
            (Measure::CustomersAtEnd, 103),
            (Measure::CustomersNewRetained, 5),
            (Measure::CustomersAtStart, 100),
        ]);
        let row = compute_one(
            &[&RetentionRate],
            &spec("success.retention_rate", year_2024(), &[], &[]),
            &source,
        );
        assert_eq!(
            row.inputs,
            inputs([
                ("at_end", "103"),
                ("at_start", "100"),
                ("new_retained", "5")
            ])
        );
        assert_eq!(row.value, Value::Defined(Decimal::from(98)));
    }

    #[test]
    fn explicit_new_retained_overrides_the_stored_one() {
        let source = FakeSource::new([
            (Measure::CustomersAtEnd, 103),
            (Measure::CustomersAtStart, 100),
        ]);
        let row = compute_one(
            &[&RetentionRate],
            &spec(
                "success.retention_rate",
                year_2024(),
                &[],
                &[("new_retained", "13")],
            ),
            &source,
        );
        assert_eq!(
            row.inputs,
            inputs([
                ("at_end", "103"),
                ("at_start", "100"),
                ("new_retained", "13")
            ])
        );
        assert_eq!(row.value, Value::Defined(Decimal::from(90)));
    }
}
