//! Sales KPIs: win rate, deal size, sales cycle, stage duration, quota attainment, revenue,
//! leads, upsell and activities. Each metric lives in its own module with its descriptor, formula and
//! worked-example tests, and registers itself with `kpi_core::register_metric!`.

use kpi_core::{Decimal, MetricError};

mod activities;
mod average_deal_size;
mod lead_conversion_rate;
mod leads_created;
mod quota_attainment;
mod revenue;
mod revenue_per_rep;
mod sales_cycle_days;
mod stage_duration_days;
mod upsell_rate;
mod win_rate;

pub use activities::Activities;
pub use average_deal_size::AverageDealSize;
pub use lead_conversion_rate::LeadConversionRate;
pub use leads_created::LeadsCreated;
pub use quota_attainment::QuotaAttainment;
pub use revenue::Revenue;
pub use revenue_per_rep::RevenuePerRep;
pub use sales_cycle_days::SalesCycleDays;
pub use stage_duration_days::StageDurationDays;
pub use upsell_rate::UpsellRate;
pub use win_rate::WinRate;

/// Dimensions every deal carries: its owner, its customer's source and segment, its campaign
/// and that campaign's channel, its own attributes and its customer's.
const DEAL_DIMENSIONS: &[kpi_core::Dimension] = &[
    kpi_core::Dimension::Owner,
    kpi_core::Dimension::Source,
    kpi_core::Dimension::Campaign,
    kpi_core::Dimension::Channel,
    kpi_core::Dimension::Segment,
    kpi_core::Dimension::ANY_ATTRIBUTE,
    kpi_core::Dimension::ANY_CUSTOMER_ATTRIBUTE,
    kpi_core::Dimension::Cohort,
];

/// Dimensions every lead carries: its source, its campaign and that campaign's channel, and
/// its own attributes (a lead has no customer).
const LEAD_DIMENSIONS: &[kpi_core::Dimension] = &[
    kpi_core::Dimension::Source,
    kpi_core::Dimension::Campaign,
    kpi_core::Dimension::Channel,
    kpi_core::Dimension::ANY_ATTRIBUTE,
];

/// Dimensions every activity carries: who did it, its type, and its customer's source and
/// segment.
const ACTIVITY_DIMENSIONS: &[kpi_core::Dimension] = &[
    kpi_core::Dimension::Owner,
    kpi_core::Dimension::ActivityType,
    kpi_core::Dimension::Source,
    kpi_core::Dimension::Segment,
    kpi_core::Dimension::ANY_ATTRIBUTE,
    kpi_core::Dimension::ANY_CUSTOMER_ATTRIBUTE,
    kpi_core::Dimension::Cohort,
];

/// A total over records (an amount, a number of days) cannot be non-zero when the count of
/// records it sums over is zero: `total` with `count = 0` is an impossible pair of inputs.
fn total_needs_records(
    total_name: &str,
    total: Decimal,
    count_name: &str,
    count: Decimal,
) -> Result<(), MetricError> {
    if count.is_zero() && !total.is_zero() {
        return Err(MetricError::InvalidInput {
            input: total_name.to_owned(),
            reason: format!(
                "{total_name} is {total} but {count_name} is 0: a total cannot come from no records"
            ),
        });
    }
    Ok(())
}

/// The ids of METRICS.md's sales family, in catalogue order.
#[cfg(test)]
const CATALOGUE_IDS: [&str; 11] = [
    "sales.win_rate",
    "sales.average_deal_size",
    "sales.sales_cycle_days",
    "sales.stage_duration_days",
    "sales.quota_attainment",
    "sales.revenue",
    "sales.revenue_per_rep",
    "sales.leads_created",
    "sales.lead_conversion_rate",
    "sales.upsell_rate",
    "sales.activities",
];

#[cfg(test)]
mod tests {
    use super::*;
    use kpi_core::testing::*;
    use kpi_core::{ComputeError, ComputeSpec, Dimension, Measure, Metric, Registry, Value};

    fn sales_metrics() -> Vec<&'static dyn Metric> {
        kpi_core::registry()
            .expect("the registry builds")
            .metrics()
            .filter(|m| m.descriptor().family == "sales")
            .collect()
    }

    #[test]
    fn registry_lists_every_catalogue_id_exactly_once() {
        let ids: Vec<&str> = sales_metrics().iter().map(|m| m.descriptor().id).collect();
        for id in CATALOGUE_IDS {
            assert_eq!(
                ids.iter().filter(|x| **x == id).count(),
                1,
                "{id} must be registered exactly once; registered: {ids:?}"
            );
        }
        assert_eq!(
            ids.len(),
            CATALOGUE_IDS.len(),
            "unexpected sales ids: {ids:?}"
        );
    }

    #[test]
    fn descriptors_are_self_consistent() {
        for m in sales_metrics() {
            let d = m.descriptor();
            assert!(d.id.starts_with("sales."), "{}", d.id);
            assert!(!d.name.is_empty() && !d.description.is_empty(), "{}", d.id);
            for input in d.inputs {
                assert!(
                    d.formula.contains(input.name),
                    "{}: input {} is not in the formula {}",
                    d.id,
                    input.name,
                    d.formula
                );
                assert!(
                    d.description.contains(input.name),
                    "{}: the description does not say how {} is read",
                    d.id,
                    input.name
                );
            }
            for g in d.default_group_by {
                assert!(d.dimensions.contains(g), "{}: default group {g}", d.id);
            }
        }
    }

    #[test]
    fn the_fake_source_refuses_measures_it_does_not_hold() {
        // What makes the per-metric registry tests meaningful: reading an unexpected measure
        // is an error, not a silent zero.
        let fake = FakeSource::new([(Measure::DealsWon, "3")]);
        let registry = Registry::from_metrics([&AverageDealSize as &'static dyn Metric]).unwrap();
        let spec = ComputeSpec::new("sales.average_deal_size", Some(q1_2024()));
        assert!(matches!(
            registry.compute(&spec, Some(&fake)),
            Err(ComputeError::Store(_))
        ));
    }

    #[test]
    fn explicit_inputs_override_stored_ones() {
        // won from the request replaces DealsWon (which the fake does not even hold);
        // won_amount still comes from the store.
        let fake = FakeSource::new([(Measure::WonAmount, "900")]);
        let request = spec("sales.average_deal_size", q1_2024(), &[], &[("won", "4")]);
        let row = compute_one(&[&AverageDealSize], &request, &fake);
        assert_eq!(row.inputs, inputs([("won_amount", "900"), ("won", "4")]));
        assert_eq!(row.value, Value::Defined(d("225")));
    }

    #[test]
    fn explicit_input_overrides_a_stored_value_that_exists() {
        // Both measures are stored; the request's leads (120) wins over the stored 100.
        let fake = FakeSource::new([
            (Measure::LeadsCreated, "100"),
            (Measure::LeadsConverted, "30"),
        ]);
        let request = spec(
            "sales.lead_conversion_rate",
            q1_2024(),
            &[],
            &[("leads", "120")],
        );
        let row = compute_one(&[&LeadConversionRate], &request, &fake);
        assert_eq!(row.inputs.try_get("leads"), Some(d("120")));
        assert_eq!(row.inputs.try_get("converted"), Some(d("30")));
        assert_eq!(row.value, Value::Defined(d("25")));
    }

    #[test]
    fn impossible_stored_inputs_are_reported_against_the_input() {
        let fake = FakeSource::new([
            (Measure::LeadsCreated, "10"),
            (Measure::LeadsConverted, "11"),
        ]);
        let registry =
            Registry::from_metrics([&LeadConversionRate as &'static dyn Metric]).unwrap();
        let spec = ComputeSpec::new("sales.lead_conversion_rate", Some(q1_2024()));
        match registry.compute(&spec, Some(&fake)) {
            Err(ComputeError::InvalidArgument(v)) => assert_eq!(v[0].field, "inputs[converted]"),
            other => panic!("expected an invalid argument, got {other:?}"),
        }
    }

    #[test]
    fn unsupported_dimension_is_refused() {
        let fake = FakeSource::default();
        let registry = Registry::from_metrics([&QuotaAttainment as &'static dyn Metric]).unwrap();
        let mut spec = ComputeSpec::new("sales.quota_attainment", Some(q1_2024()));
        spec.group_by = vec![Dimension::Campaign];
        assert!(matches!(
            registry.compute(&spec, Some(&fake)),
            Err(ComputeError::InvalidArgument(_))
        ));
    }

    #[test]
    fn helper_checks() {
        assert!(total_needs_records("won_amount", d("0"), "won", d("0")).is_ok());
        assert!(total_needs_records("won_amount", d("1"), "won", d("1")).is_ok());
        assert_invalid_input(
            total_needs_records("won_amount", d("0.01"), "won", d("0")),
            "won_amount",
        );
        let why = "it counts some of them";
        assert!(kpi_core::at_most("converted", d("30"), "leads", d("30"), why).is_ok());
        assert_invalid_input(
            kpi_core::at_most("converted", d("31"), "leads", d("30"), why),
            "converted",
        );
    }
}
