use kpi_core::{
    percent, Dimension, Direction, Gather, InputKind, InputSpec, Inputs, Measure, Metric,
    MetricDescriptor, MetricError, ParamKind, ParamSpec, Params, Unit, Value,
};

/// `marketing.marketing_sourced_pct`: from_marketing / new_customers × 100.
pub struct MarketingSourcedPct;

/// The `basis` parameter's words.
const BASES: [&str; 2] = ["count", "revenue"];

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "marketing.marketing_sourced_pct",
    name: "Marketing-sourced share of new business",
    family: "marketing",
    description: "Share of new business that marketing brought in, over the customers acquired \
        in the window. With basis `count` (the default) new_customers counts the customers \
        whose acquired_at is in the window and from_marketing those of them whose source is \
        marketing. With basis `revenue` new_customers is the revenue of those new customers \
        (their won deal amounts and purchases in the window) and from_marketing the part of it \
        that comes from marketing-sourced customers.",
    formula: "from_marketing / new_customers × 100",
    unit: Unit::Percent,
    direction: Direction::HigherIsBetter,
    inputs: &[
        InputSpec::custom(
            "from_marketing",
            "new customers (or their revenue) whose source is marketing",
            InputKind::NonNegative,
        ),
        InputSpec::custom(
            "new_customers",
            "customers acquired in the window (or their revenue)",
            InputKind::NonNegative,
        ),
    ],
    params: &[ParamSpec {
        name: "basis",
        description: "`count` compares numbers of new customers, `revenue` their revenue",
        default: "count",
        kind: ParamKind::Choice(&BASES),
    }],
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

/// Whether the share is taken over customer revenue rather than customer counts.
fn by_revenue(params: &Params) -> bool {
    params.choice("basis") == Some("revenue")
}

impl Metric for MarketingSourcedPct {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn gather(&self, ctx: &Gather<'_>) -> Result<Inputs, MetricError> {
        let mut inputs = ctx.gather_declared(self.descriptor())?;
        let (from_marketing, total) = if by_revenue(ctx.params()) {
            (
                Measure::NewCustomerRevenueFromMarketing,
                Measure::NewCustomerRevenue,
            )
        } else {
            (
                Measure::CustomersAcquiredFromMarketing,
                Measure::CustomersAcquired,
            )
        };
        if !ctx.is_explicit("from_marketing") {
            inputs.set("from_marketing", ctx.measure(from_marketing)?);
        }
        if !ctx.is_explicit("new_customers") {
            inputs.set("new_customers", ctx.measure(total)?);
        }
        Ok(inputs)
    }

    fn evaluate(&self, inputs: &Inputs, params: &Params) -> Result<Value, MetricError> {
        let from_marketing = inputs.get("from_marketing")?;
        let new_customers = inputs.get("new_customers")?;
        let revenue = by_revenue(params);
        if !revenue {
            for (name, value) in [
                ("from_marketing", from_marketing),
                ("new_customers", new_customers),
            ] {
                if !value.fract().is_zero() {
                    return Err(MetricError::InvalidInput {
                        input: name.into(),
                        reason: format!(
                            "with basis count it is a number of customers, a whole number (got {value})"
                        ),
                    });
                }
            }
        }
        kpi_core::at_most(
            "from_marketing",
            from_marketing,
            "new_customers",
            new_customers,
            "marketing-sourced customers are part of all new customers",
        )?;
        let reason = if revenue {
            "customers acquired in the window brought no revenue (new_customers = 0)"
        } else {
            "no customers were acquired in the window (new_customers = 0)"
        };
        percent(from_marketing, new_customers, reason)
    }
}

kpi_core::register_metric!(MarketingSourcedPct);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;

    fn sourced(
        from_marketing: &str,
        new_customers: &str,
        raw: &[(&str, &str)],
    ) -> Result<Value, MetricError> {
        evaluate_with(
            &MarketingSourcedPct,
            &inputs([
                ("from_marketing", from_marketing),
                ("new_customers", new_customers),
            ]),
            raw,
        )
    }

    #[test]
    fn counts_30_of_120_new_customers_is_25() {
        assert_defined(sourced("30", "120", &[]), "25");
    }

    #[test]
    fn revenue_basis_accepts_amounts() {
        // 12 345.50 of 50 000 → 24.691
        assert_defined(
            sourced(
                "12345.50",
                "50000",
                &[("basis", "revenue"), ("precision", "3")],
            ),
            "24.691",
        );
    }

    #[test]
    fn rounds_to_two_places() {
        // 1 / 3 × 100 = 33.333… → 33.33
        assert_defined(sourced("1", "3", &[]), "33.33");
    }

    #[test]
    fn no_new_customer_is_undefined() {
        assert_undefined(
            sourced("0", "0", &[]),
            "no customers were acquired in the window (new_customers = 0)",
        );
        assert_undefined(
            sourced("0", "0", &[("basis", "revenue")]),
            "customers acquired in the window brought no revenue (new_customers = 0)",
        );
    }

    #[test]
    fn more_from_marketing_than_new_customers_is_rejected() {
        assert_invalid_input(sourced("11", "10", &[]), "from_marketing");
        assert!(matches!(
            sourced("100.01", "100", &[("basis", "revenue")]),
            Err(MetricError::InvalidInput { .. })
        ));
    }

    #[test]
    fn fractional_counts_are_rejected_on_the_count_basis() {
        assert!(matches!(
            sourced("2.5", "10", &[]),
            Err(MetricError::InvalidInput { .. })
        ));
    }

    #[test]
    fn count_basis_reads_customer_counts() {
        let source = FakeSource::new([
            (Measure::CustomersAcquiredFromMarketing, "30"),
            (Measure::CustomersAcquired, "120"),
        ]);
        let row = compute_one(
            &[&MarketingSourcedPct],
            &spec("marketing.marketing_sourced_pct", year_2024(), &[], &[]),
            &source,
        );
        assert_eq!(row.value, Value::Defined(d("25")));
        assert_eq!(row.inputs.get("from_marketing").unwrap(), d("30"));
        assert_eq!(row.inputs.get("new_customers").unwrap(), d("120"));
    }

    #[test]
    fn revenue_basis_reads_new_customer_revenue() {
        let source = FakeSource::new([
            (Measure::NewCustomerRevenueFromMarketing, "20000"),
            (Measure::NewCustomerRevenue, "50000"),
        ]);
        let row = compute_one(
            &[&MarketingSourcedPct],
            &spec(
                "marketing.marketing_sourced_pct",
                year_2024(),
                &[("basis", "revenue")],
                &[],
            ),
            &source,
        );
        assert_eq!(row.value, Value::Defined(d("40")));
        assert_eq!(row.inputs.get("from_marketing").unwrap(), d("20000"));
        assert_eq!(row.inputs.get("new_customers").unwrap(), d("50000"));
    }
}
