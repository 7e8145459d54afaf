use kpi_core::{
    ratio, Direction, Gather, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor,
    MetricError, Params, Unit, Value,
};

/// `revenue.total_monthly_revenue`: mrr + non_recurring / months.
pub struct TotalMonthlyRevenue;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "revenue.total_monthly_revenue",
    name: "Total monthly revenue",
    family: "revenue",
    description: "Monthly revenue counting both recurring and one-time income: the MRR at the \
        end of the window plus the window's non-recurring revenue spread evenly over its \
        months. mrr is the sum of the MRR in effect at the end of subscriptions active at the \
        end; non_recurring the sum of purchase amounts in the window; months is months(W) of \
        the window (or bucket): whole calendar months when it starts and ends on the first of \
        a month in the request's time zone, otherwise days × 12 / 365.",
    formula: "mrr + non_recurring / months",
    unit: Unit::Currency,
    direction: Direction::HigherIsBetter,
    inputs: &[
        InputSpec::stored(
            "mrr",
            "MRR in effect at the end of subscriptions active at the end",
            InputKind::NonNegative,
            Measure::MrrAtEnd,
        ),
        InputSpec::stored(
            "non_recurring",
            "sum of one-time purchase amounts in the window",
            InputKind::NonNegative,
            Measure::PurchaseRevenue,
        ),
        InputSpec::custom(
            "months",
            "months(W): the window's length in months",
            InputKind::NonNegative,
        ),
    ],
    params: &[],
    dimensions: crate::REVENUE_DIMENSIONS,
    default_group_by: &[],
};

impl Metric for TotalMonthlyRevenue {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn gather(&self, ctx: &Gather<'_>) -> Result<Inputs, MetricError> {
        let mut inputs = ctx.gather_declared(self.descriptor())?;
        if !ctx.is_explicit("months") {
            inputs.set("months", ctx.months());
        }
        Ok(inputs)
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        let mrr = inputs.get("mrr")?;
        let non_recurring = inputs.get("non_recurring")?;
        let months = inputs.get("months")?;
        let monthly_non_recurring = match ratio(
            non_recurring,
            months,
            "the window is empty (months = 0), so one-time revenue has no monthly share",
        )? {
            Value::Defined(v) => v,
            undefined => return Ok(undefined),
        };
        mrr.checked_add(monthly_non_recurring)
            .map(Value::Defined)
            .ok_or_else(|| MetricError::Overflow("mrr + non_recurring / months".into()))
    }
}

kpi_core::register_metric!(TotalMonthlyRevenue);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;
    use kpi_core::{ComputeSpec, Decimal, Granularity};

    fn total(
        mrr: &str,
        non_recurring: &str,
        months: &str,
        raw_params: &[(&str, &str)],
    ) -> Result<Value, MetricError> {
        evaluate_with(
            &TotalMonthlyRevenue,
            &inputs([
                ("mrr", mrr),
                ("non_recurring", non_recurring),
                ("months", months),
            ]),
            raw_params,
        )
    }

    fn source() -> FakeSource {
        FakeSource::new([
            (Measure::MrrAtEnd, "10000"),
            (Measure::PurchaseRevenue, "6000"),
        ])
    }

    #[test]
    fn worked_example_mrr_10_000_and_6_000_one_time_over_3_months_is_12_000() {
        // 10 000 + 6 000 / 3 = 10 000 + 2 000 = 12 000.
        assert_defined(total("10000", "6000", "3", &[]), "12000");
    }

    #[test]
    fn rounds_to_precision() {
        // 10 000 + 1 000 / 3 = 10 333.333… → 10 333.33, or 10 333 at precision 0.
        assert_defined(total("10000", "1000", "3", &[]), "10333.33");
        assert_defined(total("10000", "1000", "3", &[("precision", "0")]), "10333");
    }

    #[test]
    fn empty_window_is_undefined() {
        assert_undefined(
            total("10000", "0", "0", &[]),
            "the window is empty (months = 0), so one-time revenue has no monthly share",
        );
    }

    #[test]
    fn negative_inputs_are_rejected() {
        assert_invalid_input(total("10000", "6000", "-3", &[]), "months");
        assert_invalid_input(total("10000", "-6000", "3", &[]), "non_recurring");
    }

    #[test]
    fn overflow_is_an_error() {
        let max = Decimal::MAX.to_string();
        assert!(matches!(
            total(&max, "1", "1", &[]),
            Err(MetricError::Overflow(_))
        ));
        assert!(matches!(
            total("0", &max, "0.5", &[]),
            Err(MetricError::Overflow(_))
        ));
    }

    #[test]
    fn reads_mrr_purchases_and_the_windows_months_from_the_store() {
        let rows = compute(
            &[&TotalMonthlyRevenue],
            &ComputeSpec::new("revenue.total_monthly_revenue", Some(q1_2024())),
            &source(),
        );
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].value, Value::Defined(d("12000")));
        assert_eq!(
            rows[0].inputs,
            inputs([("mrr", "10000"), ("non_recurring", "6000"), ("months", "3")])
        );
    }

    #[test]
    fn a_window_not_on_month_boundaries_counts_days_times_12_over_365() {
        // 1–31 January is 30 days: months = 30 × 12 / 365 = 72 / 73.
        let w = window("2024-01-01T00:00:00Z", "2024-01-31T00:00:00Z");
        let rows = compute(
            &[&TotalMonthlyRevenue],
            &ComputeSpec::new("revenue.total_monthly_revenue", Some(w)),
            &source(),
        );
        let months = Decimal::from(360) / Decimal::from(365);
        assert_eq!(rows[0].inputs.try_get("months"), Some(months));
        // 10 000 + 6 000 × 73 / 72 = 10 000 + 6 083.333… = 16 083.33.
        assert_eq!(rows[0].value, Value::Defined(d("16083.33")));
    }

    #[test]
    fn each_monthly_bucket_spreads_over_one_month() {
        let mut spec = ComputeSpec::new("revenue.total_monthly_revenue", Some(q1_2024()));
        spec.granularity = Some(Granularity::Month);
        let rows = compute(&[&TotalMonthlyRevenue], &spec, &source());
        assert_eq!(rows.len(), 3);
        for row in &rows {
            assert_eq!(row.inputs.try_get("months"), Some(Decimal::ONE));
            // The fake source answers 6 000 for every bucket: 10 000 + 6 000 / 1.
            assert_eq!(row.value, Value::Defined(d("16000")));
        }
    }

    #[test]
    fn explicit_months_override_the_window() {
        let mut spec = ComputeSpec::new("revenue.total_monthly_revenue", Some(q1_2024()));
        spec.inputs.insert("months".into(), "6".into());
        let rows = compute(&[&TotalMonthlyRevenue], &spec, &source());
        // 10 000 + 6 000 / 6 = 11 000.
        assert_eq!(rows[0].value, Value::Defined(d("11000")));
        assert_eq!(
            rows[0].inputs,
            inputs([("mrr", "10000"), ("non_recurring", "6000"), ("months", "6")])
        );
    }
}
