//! Marketing KPIs: customer acquisition cost and its payback, the marketing-sourced share of
//! new business, customer lifetime value (gross and net) and its ratio to CAC, campaign ROI
//! and email performance. Each metric lives in its own module with its descriptor, formula
//! and worked-example tests, and registers itself with `kpi_core::register_metric!`.

mod cac;
mod cac_payback_months;
mod campaign_roi;
mod clv;
mod clv_cac_ratio;
mod clv_net;
mod email_click_rate;
mod email_open_rate;
mod email_revenue;
mod marketing_sourced_pct;
mod tenure;

pub use cac::Cac;
pub use cac_payback_months::CacPaybackMonths;
pub use campaign_roi::CampaignRoi;
pub use clv::Clv;
pub use clv_cac_ratio::ClvCacRatio;
pub use clv_net::ClvNet;
pub use email_click_rate::EmailClickRate;
pub use email_open_rate::EmailOpenRate;
pub use email_revenue::EmailRevenue;
pub use marketing_sourced_pct::MarketingSourcedPct;

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;
    use kpi_core::{Measure, Metric, Value};

    /// Every marketing id of METRICS.md.
    const CATALOGUE: [&str; 10] = [
        "marketing.cac",
        "marketing.cac_payback_months",
        "marketing.marketing_sourced_pct",
        "marketing.clv",
        "marketing.clv_net",
        "marketing.clv_cac_ratio",
        "marketing.campaign_roi",
        "marketing.email_revenue",
        "marketing.email_open_rate",
        "marketing.email_click_rate",
    ];

    #[test]
    fn every_catalogue_metric_is_registered_exactly_once() {
        let registry = kpi_core::registry().expect("registry builds");
        for id in CATALOGUE {
            let count = registry
                .metrics()
                .filter(|m| m.descriptor().id == id)
                .count();
            assert_eq!(count, 1, "{id} registered {count} times");
        }
        let mut linked: Vec<&str> = registry
            .metrics()
            .map(|m| m.descriptor().id)
            .filter(|id| id.starts_with("marketing."))
            .collect();
        linked.sort_unstable();
        let mut expected = CATALOGUE.to_vec();
        expected.sort_unstable();
        assert_eq!(
            linked, expected,
            "no marketing metric outside the catalogue"
        );
    }

    #[test]
    fn descriptors_are_consistent() {
        let registry = kpi_core::registry().expect("registry builds");
        for m in registry
            .metrics()
            .filter(|m| m.descriptor().family == "marketing")
        {
            let d = m.descriptor();
            assert!(!d.description.is_empty() && !d.name.is_empty(), "{}", d.id);
            for input in d.inputs {
                assert!(
                    d.formula.contains(input.name),
                    "{}: formula `{}` does not name input {}",
                    d.id,
                    d.formula,
                    input.name
                );
            }
            for g in d.default_group_by {
                assert!(d.dimensions.contains(g), "{}: default group {g}", d.id);
            }
        }
    }

    #[test]
    fn an_explicit_input_replaces_the_stored_one() {
        // Only the customer count is stored: spend comes from the request, so the fake
        // source fails the test if the metric still reads it.
        let source = FakeSource::new([(Measure::CustomersAcquired, "8")]);
        let request = spec("marketing.cac", year_2024(), &[], &[("spend", "4000")]);
        let row = compute_one(&[&Cac as &'static dyn Metric], &request, &source);
        assert_eq!(row.value, Value::Defined(d("500")));
        assert_eq!(row.inputs.get("spend").unwrap(), d("4000"));
        assert_eq!(row.inputs.get("new_customers").unwrap(), d("8"));
    }

    #[test]
    fn an_explicit_input_reaches_a_derived_metric() {
        // clv_cac_ratio: cac given by the caller (no spend is stored, so reading it would
        // fail), clv read from stored purchases and churned tenure.
        let request = spec(
            "marketing.clv_cac_ratio",
            year_2024(),
            &[],
            &[("cac", "400")],
        );
        let source = FakeSource::new([
            (Measure::PurchaseRevenue, "100000"),
            (Measure::Purchases, "2500"),
            (Measure::Buyers, "500"),
            (Measure::MeanChurnedTenureYears, "4"),
            (Measure::CustomersChurnedBeforeEnd, "30"),
        ]);
        let row = compute_one(
            &[&ClvCacRatio as &'static dyn Metric, &Clv, &ClvNet, &Cac],
            &request,
            &source,
        );
        // CLV 800 / CAC 400 = 2
        assert_eq!(row.value, Value::Defined(d("2")));
        assert_eq!(row.inputs.get("clv").unwrap(), d("800"));
        assert_eq!(row.inputs.get("cac").unwrap(), d("400"));
    }
}
