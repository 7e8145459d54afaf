//! Customer-success KPIs: churn, retention, renewals, NPS, CSAT, CES, ticket resolution and
//! first-response times, and repeat customers. Each metric lives in its own module with its
//! descriptor, formula and worked-example tests, and registers itself with
//! `kpi_core::register_metric!`.

mod avg_resolution_hours;
mod ces;
mod churn_rate;
mod csat;
mod first_response_hours;
mod nps;
mod renewal_rate;
mod repeat_customer_rate;
mod retention_rate;

pub use avg_resolution_hours::AvgResolutionHours;
pub use ces::Ces;
pub use churn_rate::ChurnRate;
pub use csat::Csat;
pub use first_response_hours::FirstResponseHours;
pub use nps::Nps;
pub use renewal_rate::RenewalRate;
pub use repeat_customer_rate::RepeatCustomerRate;
pub use retention_rate::RetentionRate;

#[cfg(test)]
mod test_support {
    //! A fake [`DataSource`] answering measures from a map, and helpers to compute a metric
    //! through the registry and engine as the server does.

    use std::collections::{BTreeMap, HashMap};
    use std::str::FromStr;

    use jiff::Timestamp;
    use kpi_core::{
        ComputeSpec, DataSource, Decimal, Dimension, Measure, Metric, MetricError, Registry, Row,
        Scope, Window,
    };

    /// Answers each measure from a map; a measure not in the map is a store error, so a
    /// metric reading a measure it should not read fails the test loudly.
    pub(crate) struct FakeSource(pub(crate) HashMap<Measure, Decimal>);

    impl FakeSource {
        /// A source holding these measures.
        pub(crate) fn new(measures: impl IntoIterator<Item = (Measure, i64)>) -> Self {
            Self(
                measures
                    .into_iter()
                    .map(|(m, v)| (m, Decimal::from(v)))
                    .collect(),
            )
        }

        /// Adds a measure with a decimal value.
        pub(crate) fn with_decimal(mut self, measure: Measure, value: &str) -> Self {
            self.0.insert(measure, dec(value));
            self
        }
    }

    impl DataSource for FakeSource {
        fn measure(&self, measure: Measure, _scope: &Scope) -> Result<Decimal, MetricError> {
            self.0
                .get(&measure)
                .copied()
                .ok_or_else(|| MetricError::Store(format!("unexpected measure {measure:?}")))
        }

        fn group_values(
            &self,
            _dimension: Dimension,
            _scope: &Scope,
        ) -> Result<Vec<String>, MetricError> {
            Ok(Vec::new())
        }
    }

    /// An exact decimal from its text.
    pub(crate) fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).expect("test decimal")
    }

    /// The calendar year 2024, UTC.
    pub(crate) fn window_2024() -> Window {
        let start: Timestamp = "2024-01-01T00:00:00Z".parse().expect("start");
        let end: Timestamp = "2025-01-01T00:00:00Z".parse().expect("end");
        Window::new(start, end).expect("window")
    }

    /// A request for `id` over 2024 with these params and explicit inputs.
    pub(crate) fn spec(id: &str, params: &[(&str, &str)], inputs: &[(&str, &str)]) -> ComputeSpec {
        let mut spec = ComputeSpec::new(id, Some(window_2024()));
        spec.params = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>();
        spec.inputs = inputs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>();
        spec
    }

    /// Computes `spec` with a registry holding only `metric`, reading from `source`, and
    /// returns its single row.
    pub(crate) fn compute_one(
        metric: &'static dyn Metric,
        spec: &ComputeSpec,
        source: &FakeSource,
    ) -> Row {
        let registry = Registry::from_metrics([metric]).expect("registry");
        let mut rows = registry.compute(spec, Some(source)).expect("compute");
        assert_eq!(
            rows.len(),
            1,
            "one row for an ungrouped, unbucketed request"
        );
        rows.remove(0)
    }

    /// The row's inputs as (name, decimal text) pairs, in name order.
    pub(crate) fn inputs_of(row: &Row) -> Vec<(String, String)> {
        row.inputs
            .iter()
            .map(|(k, v)| (k.to_owned(), v.normalize().to_string()))
            .collect()
    }

    /// (name, text) pairs as owned strings, for comparing with [`inputs_of`].
    pub(crate) fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kpi_core::{registry, Dimension, Direction, InputSource, Metric, Unit};

    /// Every `success.*` id of METRICS.md.
    const CATALOGUE_IDS: [&str; 9] = [
        "success.churn_rate",
        "success.retention_rate",
        "success.renewal_rate",
        "success.nps",
        "success.csat",
        "success.ces",
        "success.avg_resolution_hours",
        "success.first_response_hours",
        "success.repeat_customer_rate",
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
        let metrics: [&dyn Metric; 9] = [
            &super::ChurnRate,
            &super::RetentionRate,
            &super::RenewalRate,
            &super::Nps,
            &super::Csat,
            &super::Ces,
            &super::AvgResolutionHours,
            &super::FirstResponseHours,
            &super::RepeatCustomerRate,
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
