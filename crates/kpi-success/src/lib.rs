//! Customer-success KPIs: churn, retention, renewals, NPS, CSAT, CES, ticket resolution and
//! first-response times, and repeat customers. Each metric lives in its own module with its
//! descriptor, formula and worked-example tests, and registers itself with
//! `kpi_core::register_metric!`.

mod avg_resolution_hours;
mod ces;
mod churn_rate;
mod cohort_retention;
mod csat;
mod first_response_hours;
mod nps;
mod renewal_rate;
mod repeat_customer_rate;
mod retention_rate;

pub use avg_resolution_hours::AvgResolutionHours;
pub use ces::Ces;
pub use churn_rate::ChurnRate;
pub use cohort_retention::CohortRetention;
pub use csat::Csat;
pub use first_response_hours::FirstResponseHours;
pub use nps::Nps;
pub use renewal_rate::RenewalRate;
pub use repeat_customer_rate::RepeatCustomerRate;
pub use retention_rate::RetentionRate;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kpi_core::{registry, Dimension, Direction, InputSource, Metric, Unit};

    /// Every `success.*` id of METRICS.md.
    const CATALOGUE_IDS: [&str; 10] = [
        "success.churn_rate",
        "success.retention_rate",
        "success.renewal_rate",
        "success.nps",
        "success.csat",
        "success.ces",
        "success.avg_resolution_hours",
        "success.first_response_hours",
        "success.repeat_customer_rate",
        "success.cohort_retention",
    ];

    #[test]
    fn every_catalogue_id_is_registered_exactly_once() {
        let registry = registry().expect("the linked metrics form a valid registry");
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for m in registry.metrics() {
            let d = m.descriptor();
            if d.family == "success" || d.id.starts_with("success.") {
                *counts.entry(d.id).or_default() += 1;
            }
        }
        for id in CATALOGUE_IDS {
            assert_eq!(counts.get(id), Some(&1), "{id} registered once");
        }
        assert_eq!(
            counts.len(),
            CATALOGUE_IDS.len(),
            "no success metric beyond the catalogue: {counts:?}"
        );
    }

    #[test]
    fn descriptors_are_complete_and_consistent() {
        let metrics: [&dyn Metric; 10] = [
            &super::ChurnRate,
            &super::RetentionRate,
            &super::RenewalRate,
            &super::Nps,
            &super::Csat,
            &super::Ces,
            &super::AvgResolutionHours,
            &super::FirstResponseHours,
            &super::RepeatCustomerRate,
            &super::CohortRetention,
        ];
        for (m, id) in metrics.iter().zip(CATALOGUE_IDS) {
            let d = m.descriptor();
            assert_eq!(d.id, id);
            assert_eq!(d.family, "success");
            assert!(!d.name.is_empty() && !d.description.is_empty());
            for input in d.inputs {
                assert!(
                    d.formula.contains(input.name),
                    "{id}: formula names input {}",
                    input.name
                );
                assert!(!matches!(input.source, InputSource::Metric(_)));
            }
            for g in d.default_group_by {
                assert!(
                    d.dimensions.contains(g),
                    "{id}: default group {g} supported"
                );
            }
            assert!(!d.dimensions.contains(&Dimension::Stage));
        }
        assert_eq!(
            super::AvgResolutionHours.descriptor().default_group_by,
            &[Dimension::Agent]
        );
        assert_eq!(super::Nps.descriptor().unit, Unit::Score);
        assert_eq!(
            super::ChurnRate.descriptor().direction,
            Direction::LowerIsBetter
        );
    }
}
