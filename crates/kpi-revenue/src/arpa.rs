use kpi_core::{
    ratio, Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor, MetricError,
    Params, Unit, Value,
};

/// `revenue.arpa`: average revenue per account, mrr / paying_customers.
pub struct Arpa;

static DESCRIPTOR: MetricDescriptor = MetricDescriptor {
    id: "revenue.arpa",
    name: "ARPA",
    family: "revenue",
    description: "Average monthly recurring revenue per paying account at the end of the \
        window (or of each bucket). mrr is the sum of the MRR in effect at the end of \
        subscriptions active at the end; paying_customers is the number of distinct customers \
        with a subscription active at the end (a customer with two subscriptions counts once).",
    formula: "mrr / paying_customers",
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
            "paying_customers",
            "distinct customers with a subscription active at the end",
            InputKind::Count,
            Measure::PayingCustomersAtEnd,
        ),
    ],
    params: &[],
    dimensions: crate::REVENUE_DIMENSIONS,
    default_group_by: &[],
};

impl Metric for Arpa {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &DESCRIPTOR
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        let mrr = inputs.get("mrr")?;
        let paying_customers = inputs.get("paying_customers")?;
        ratio(
            mrr,
            paying_customers,
            "no customer has an active subscription at the end (paying_customers = 0)",
        )
    }
}

kpi_core::register_metric!(Arpa);

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;
    use kpi_core::ComputeSpec;

    fn arpa(
        mrr: &str,
        paying_customers: &str,
        raw_params: &[(&str, &str)],
    ) -> Result<Value, MetricError> {
        evaluate_with(
            &Arpa,
            &inputs([("mrr", mrr), ("paying_customers", paying_customers)]),
            raw_params,
        )
    }

    #[test]
    fn mrr_10_000_over_50_customers_is_200() {
        // The revenue.mrr example read the other way: 10 000 of MRR from 50 customers.
        assert_defined(arpa("10000", "50", &[]), "200");
    }

    #[test]
    fn rounds_to_precision() {
        // 1 000 / 3 = 333.333… → 333.33, or 333 at precision 0.
        assert_defined(arpa("1000", "3", &[]), "333.33");
        assert_defined(arpa("1000", "3", &[("precision", "0")]), "333");
        // 1 000 / 6 = 166.666… → 166.67 (half away from zero).
        assert_defined(arpa("1000", "6", &[]), "166.67");
    }

    #[test]
    fn no_paying_customer_is_undefined() {
        assert_undefined(
            arpa("0", "0", &[]),
            "no customer has an active subscription at the end (paying_customers = 0)",
        );
    }

    #[test]
    fn fractional_or_negative_customers_are_rejected() {
        assert_invalid_input(arpa("1000", "2.5", &[]), "paying_customers");
        assert_invalid_input(arpa("-1000", "5", &[]), "mrr");
    }

    #[test]
    fn reads_mrr_and_paying_customers_at_end_from_the_store() {
        let source = FakeSource::new([
            (Measure::MrrAtEnd, "10000"),
            (Measure::PayingCustomersAtEnd, "50"),
        ]);
        let rows = compute(
            &[&Arpa],
            &ComputeSpec::new("revenue.arpa", Some(q1_2024())),
            &source,
        );
        assert_eq!(rows[0].value, Value::Defined(d("200")));
        assert_eq!(
            rows[0].inputs,
            inputs([("mrr", "10000"), ("paying_customers", "50")])
        );
    }
}
