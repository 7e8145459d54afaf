//! Every dimension a metric offers (its descriptor's `dimensions`) filters every measure
//! the metric reads: the records of each part answering the measure carry it
//! (`kpi_store::filtering_dimensions`, from each kind's declared dimensions). Where one
//! does not, a filter or group on that dimension is refused by the store; the cases known
//! today are listed in [`IGNORED`], so a new one fails here. And the attribute dimensions
//! (`attr.*`, `customer.*`) and `cohort` are offered exactly where every measure read
//! carries them:
//! they are derived from what kpi-store's parts carry, not kept by hand.

use std::collections::BTreeSet;
use std::sync::Mutex;

use kpi_core::{ComputeSpec, DataSource, Decimal, Dimension, Measure, MetricError, Scope, Window};

use kpi_marketing as _;
use kpi_revenue as _;
use kpi_sales as _;
use kpi_success as _;

/// (metric, dimension, measure): the measure, read by the metric, ignores a filter on the
/// dimension the metric offers (a part answering the measure does not carry it).
const IGNORED: &[(&str, Dimension, &str)] = &[];

/// A data source that records the measures read and answers 1 for each.
#[derive(Default)]
struct Recording(Mutex<BTreeSet<Measure>>);

impl DataSource for Recording {
    fn measure(&self, measure: Measure, _: &Scope) -> Result<Decimal, MetricError> {
        self.0.lock().unwrap().insert(measure);
        Ok(Decimal::ONE)
    }

    fn group_values(
        &self,
        _: Dimension,
        _: &Scope,
        _: &[Measure],
    ) -> Result<Vec<String>, MetricError> {
        Ok(Vec::new())
    }
}

#[test]
fn every_offered_dimension_filters_every_measure_read() {
    let registry = kpi_core::registry().expect("registry builds");
    let window = Window::new(
        "2024-01-01T00:00:00Z".parse().unwrap(),
        "2024-02-01T00:00:00Z".parse().unwrap(),
    )
    .unwrap();
    let mut found = Vec::new();
    let mut misoffered = Vec::new();
    for metric in registry.metrics() {
        let d = metric.descriptor();
        let source = Recording::default();
        let mut spec = ComputeSpec::new(d.id, Some(window));
        spec.ungrouped = true;
        // Only the measures read matter, whatever the formula makes of them.
        let _ = registry.compute(&spec, Some(&source));
        let read = source.0.into_inner().unwrap();
        for dimension in d.dimensions {
            for measure in &read {
                if !kpi_store::filtering_dimensions(*measure).contains(dimension) {
                    found.push((d.id, *dimension, format!("{measure:?}")));
                }
            }
        }
        for wildcard in [
            Dimension::ANY_ATTRIBUTE,
            Dimension::ANY_CUSTOMER_ATTRIBUTE,
            Dimension::Cohort,
        ] {
            let carried = !read.is_empty()
                && read
                    .iter()
                    .all(|m| kpi_store::filtering_dimensions(*m).contains(&wildcard));
            if carried != d.dimensions.contains(&wildcard) {
                misoffered.push(format!(
                    "{} {} {wildcard}",
                    d.id,
                    if carried { "should offer" } else { "offers" }
                ));
            }
        }
    }
    let known: Vec<(&str, Dimension, String)> = IGNORED
        .iter()
        .map(|(id, d, m)| (*id, *d, (*m).to_owned()))
        .collect();
    assert_eq!(
        found, known,
        "metrics offering a dimension that a measure they read ignores"
    );
    assert!(
        misoffered.is_empty(),
        "attribute dimensions offered where the measures read do not carry them, or not \
         offered where they do:\n{}",
        misoffered.join("\n")
    );
}
