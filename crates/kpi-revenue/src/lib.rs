//! Revenue KPIs: MRR, ARPA, the MRR movements (new, expansion, reactivation, contraction,
//! churned, net new), the MRR churn rate, total monthly revenue and new-customer revenue. Each metric
//! lives in its own module with its descriptor, formula and worked-example tests, and
//! registers itself with `kpi_core::register_metric!`.
//!
//! MRR movements come from each subscription's list of `(at, mrr)` changes; a change to 0
//! or `ended_at` ends the subscription.

mod arpa;
mod churned_mrr;
mod cohort_mrr_retention;
mod contraction_mrr;
mod expansion_mrr;
mod mrr;
mod mrr_churn_rate;
mod net_new_mrr;
mod new_customer_revenue;
mod new_mrr;
mod reactivation_mrr;
mod total_monthly_revenue;

pub use arpa::Arpa;
pub use churned_mrr::ChurnedMrr;
pub use cohort_mrr_retention::CohortMrrRetention;
pub use contraction_mrr::ContractionMrr;
pub use expansion_mrr::ExpansionMrr;
pub use mrr::Mrr;
pub use mrr_churn_rate::MrrChurnRate;
pub use net_new_mrr::NetNewMrr;
pub use new_customer_revenue::NewCustomerRevenue;
pub use new_mrr::NewMrr;
pub use reactivation_mrr::ReactivationMrr;
pub use total_monthly_revenue::TotalMonthlyRevenue;

use kpi_core::Dimension;

/// The dimensions every revenue metric can be grouped by and filtered on: owner, source and
/// segment, which subscriptions and purchases carry through their customer (and won deals
/// carry too), and the records' own and their customers' attributes. Campaign and channel
/// are not among them: a subscription or purchase has none.
const REVENUE_DIMENSIONS: &[Dimension] = &[
    Dimension::Owner,
    Dimension::Source,
    Dimension::Segment,
    Dimension::ANY_ATTRIBUTE,
    Dimension::ANY_CUSTOMER_ATTRIBUTE,
    Dimension::Cohort,
];

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;
    use kpi_core::{ComputeError, ComputeSpec, Dimension, InputSource, Measure, Metric, Value};

    /// Every `revenue.*` id of METRICS.md, and reactivation MRR (issue 14).
    const CATALOGUE_IDS: [&str; 12] = [
        "revenue.mrr",
        "revenue.arpa",
        "revenue.new_mrr",
        "revenue.expansion_mrr",
        "revenue.reactivation_mrr",
        "revenue.contraction_mrr",
        "revenue.churned_mrr",
        "revenue.net_new_mrr",
        "revenue.mrr_churn_rate",
        "revenue.total_monthly_revenue",
        "revenue.new_customer_revenue",
        "revenue.cohort_mrr_retention",
    ];

    const ALL: [&'static dyn Metric; 12] = [
        &Mrr,
        &Arpa,
        &NewMrr,
        &ExpansionMrr,
        &ReactivationMrr,
        &ContractionMrr,
        &ChurnedMrr,
        &NetNewMrr,
        &MrrChurnRate,
        &TotalMonthlyRevenue,
        &NewCustomerRevenue,
        &CohortMrrRetention,
    ];

    #[test]
    fn registry_lists_every_catalogue_id_exactly_once() {
        let registry = kpi_core::registry().expect("registry builds");
        let listed: Vec<&str> = registry
            .metrics()
            .map(|m| m.descriptor().id)
            .filter(|id| id.starts_with("revenue."))
            .collect();
        for id in CATALOGUE_IDS {
            assert_eq!(
                listed.iter().filter(|l| **l == id).count(),
                1,
                "{id} must be registered exactly once"
            );
        }
        assert_eq!(
            listed.len(),
            CATALOGUE_IDS.len(),
            "no revenue metric outside the catalogue: {listed:?}"
        );
    }

    #[test]
    fn descriptors_are_consistent() {
        for metric in ALL {
            let desc = metric.descriptor();
            assert_eq!(desc.family, "revenue", "{}", desc.id);
            assert!(!desc.description.is_empty(), "{}", desc.id);
            for input in desc.inputs {
                assert!(
                    desc.formula.contains(input.name),
                    "{}: formula `{}` names input {}",
                    desc.id,
                    desc.formula,
                    input.name
                );
                assert!(!input.description.is_empty(), "{}", desc.id);
            }
            assert_eq!(desc.dimensions, REVENUE_DIMENSIONS, "{}", desc.id);
            // A cohort table is grouped by cohort and takes the cohorts' period.
            let cohort_table = desc.id == "revenue.cohort_mrr_retention";
            assert_eq!(
                desc.default_group_by.is_empty(),
                !cohort_table,
                "{}",
                desc.id
            );
            assert_eq!(desc.params.is_empty(), !cohort_table, "{}", desc.id);
        }
    }

    #[test]
    fn every_stored_input_reads_a_subscription_purchase_or_deal_measure() {
        let mut stored = 0;
        for metric in ALL {
            for input in metric.descriptor().inputs {
                if let InputSource::Stored(m) = input.source {
                    stored += 1;
                    assert!(
                        matches!(
                            m,
                            Measure::MrrAtEnd
                                | Measure::MrrAtStart
                                | Measure::PayingCustomersAtEnd
                                | Measure::NewMrr
                                | Measure::ExpansionMrr
                                | Measure::ReactivationMrr
                                | Measure::ContractionMrr
                                | Measure::ChurnedMrr
                                | Measure::PurchaseRevenue
                                | Measure::NewCustomerRevenue
                        ),
                        "{}: {m:?}",
                        metric.descriptor().id
                    );
                }
            }
        }
        // Every input but months and a cohort's starting MRR.
        assert_eq!(
            stored, 20,
            "every input but months and starting_mrr is stored"
        );
    }

    #[test]
    fn explicit_input_overrides_the_stored_one() {
        let source = FakeSource::new([
            (Measure::MrrAtEnd, "10000"),
            (Measure::PayingCustomersAtEnd, "50"),
        ]);
        let mut spec = ComputeSpec::new("revenue.arpa", Some(q1_2024()));
        spec.inputs.insert("paying_customers".into(), "40".into());
        let rows = compute(&[&Arpa], &spec, &source);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].value, Value::Defined(d("250")));
        assert_eq!(
            rows[0].inputs,
            inputs([("mrr", "10000"), ("paying_customers", "40")])
        );

        let mut spec = ComputeSpec::new("revenue.mrr", Some(q1_2024()));
        spec.inputs.insert("mrr".into(), "5000".into());
        let rows = compute(&[&Mrr], &spec, &source);
        assert_eq!(rows[0].value, Value::Defined(d("5000")));
        assert_eq!(rows[0].inputs, inputs([("mrr", "5000")]));
    }

    #[test]
    fn calculator_mode_needs_no_store() {
        let registry = kpi_core::Registry::from_metrics(ALL).unwrap();
        let spec = ComputeSpec::calculator(
            "revenue.total_monthly_revenue",
            [("mrr", "10000"), ("non_recurring", "6000"), ("months", "3")],
        );
        let rows = registry.compute(&spec, None).unwrap();
        assert_eq!(rows[0].value, Value::Defined(d("12000")));
    }

    #[test]
    fn unsupported_dimension_is_refused() {
        let source = FakeSource::new([(Measure::MrrAtEnd, "10000")]);
        let mut spec = ComputeSpec::new("revenue.mrr", Some(q1_2024()));
        spec.group_by.push(Dimension::Campaign);
        let err = kpi_core::Registry::from_metrics([&Mrr as &'static dyn Metric])
            .unwrap()
            .compute(&spec, Some(&source))
            .unwrap_err();
        assert!(matches!(err, ComputeError::InvalidArgument(_)), "{err:?}");
    }
}
