//! One tenant's records as the [`DataSource`] the engine reads: one index snapshot per
//! request, taken at its first read.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use jiff::Timestamp;

use kpi_core::{DataSource, Decimal, Dimension, Measure, MetricError, Scope, Window};

use super::Tenant;
use crate::index::{Index, KindGenerations};
use crate::rows::Rows;

/// One tenant's records as a [`DataSource`]: answers every [`Measure`] from the in-memory
/// index, never from sled.
pub struct TenantSource {
    pub(super) tenant: Option<Arc<Tenant>>,
    pub(super) store: super::Store,
    pub(super) snapshot: OnceLock<Arc<Index>>,
}

impl std::fmt::Debug for TenantSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantSource").finish_non_exhaustive()
    }
}

impl TenantSource {
    fn index(&self) -> &Index {
        static EMPTY: OnceLock<Arc<Index>> = OnceLock::new();
        self.snapshot.get_or_init(|| match &self.tenant {
            Some(t) => self.store.index_of(t),
            None => Arc::clone(EMPTY.get_or_init(|| {
                Arc::new(Index::build(
                    &Rows::default(),
                    &KindGenerations::default(),
                    None,
                ))
            })),
        })
    }
}

impl DataSource for TenantSource {
    fn measure(&self, measure: Measure, scope: &Scope) -> Result<Decimal, MetricError> {
        self.index().measure(measure, scope)
    }

    fn group_values(
        &self,
        dimension: Dimension,
        scope: &Scope,
        measures: &[Measure],
    ) -> Result<Vec<String>, MetricError> {
        self.index().group_values(dimension, scope, measures)
    }

    fn cohort_periods(
        &self,
        scope: &Scope,
        measures: &[Measure],
        period_of: &dyn Fn(Timestamp) -> Result<Window, MetricError>,
    ) -> Result<BTreeSet<Timestamp>, MetricError> {
        self.index().cohort_periods(scope, measures, period_of)
    }
}
