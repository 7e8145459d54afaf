//! `kpi.v1.MetricsService`: the metric catalogue and the compute RPCs, over the link-time
//! registry and the tenant's stored records.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use kpi_core::{ComputeSpec, Registry};
use kpi_proto::kpi::v1 as pb;
use kpi_proto::kpi::v1::metrics_service_server::MetricsService;
use kpi_store::{Store, TenantSettings};
use tonic::{Request, Response, Status};

use crate::auth::tenant_of;
use crate::convert::compute::{
    batch_specs, compute_spec, descriptor_to_proto, row_to_proto, SpecLimits,
};
use crate::deadline::Raced;
use crate::error::{batch_error, clip, compute_status, MAX_LOGGED_BYTES};
use crate::rpc::{blocking, compute, record};
use crate::sequence::reached;
use crate::Limits;

/// The MetricsService handlers: ListMetrics, Compute, BatchCompute.
#[derive(Clone)]
pub struct MetricsApi {
    registry: &'static Registry,
    store: Store,
    limits: Limits,
}

impl std::fmt::Debug for MetricsApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsApi")
            .field("metrics", &self.registry.len())
            .field("limits", &self.limits)
            .finish()
    }
}

/// Sets the cancellation flag when dropped: a handler's future is dropped when the caller
/// goes away or its deadline passes (the deadline layer), and the engine then stops
/// between rows.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl MetricsApi {
    /// Handlers over `registry` that read stored inputs from `store`.
    pub fn new(registry: &'static Registry, store: Store, limits: Limits) -> Self {
        Self {
            registry,
            store,
            limits,
        }
    }

    fn spec_limits(&self) -> (SpecLimits, CancelOnDrop) {
        let cancelled = Arc::new(AtomicBool::new(false));
        (
            SpecLimits {
                max_rows: self.limits.max_rows,
                cancelled: cancelled.clone(),
            },
            CancelOnDrop(cancelled),
        )
    }
}

/// Computes `spec` in the tenant's calendar (week start, fiscal year) and, when the
/// request named no time zone, in the tenant's default zone.
fn in_tenant_calendar(spec: &mut ComputeSpec, settings: &TenantSettings, zone_given: bool) {
    spec.calendar = settings.calendar();
    if !zone_given {
        spec.time_zone = settings.time_zone();
    }
}

#[tonic::async_trait]
impl MetricsService for MetricsApi {
    async fn list_metrics(
        &self,
        request: Request<pb::ListMetricsRequest>,
    ) -> Result<Response<pb::ListMetricsResponse>, Status> {
        let family = request.into_inner().family;
        record("family", clip(&family, MAX_LOGGED_BYTES).as_str());
        let metrics: Vec<_> = self
            .registry
            .metrics()
            .map(|m| m.descriptor())
            .filter(|d| family.is_empty() || d.family == family)
            .map(descriptor_to_proto)
            .collect();
        record("rows", metrics.len());
        Ok(Response::new(pb::ListMetricsResponse { metrics }))
    }

    async fn compute(
        &self,
        request: Request<pb::ComputeRequest>,
    ) -> Result<Response<pb::ComputeResponse>, Status> {
        let tenant = tenant_of(&request);
        let raced = request.extensions().get::<Raced>().is_some();
        let request = request.into_inner();
        record(
            "metric_id",
            clip(&request.metric_id, MAX_LOGGED_BYTES).as_str(),
        );
        let (limits, _cancel_on_drop) = self.spec_limits();
        let zone_given = !request.time_zone.is_empty();
        let min_sequence = request.min_sequence;
        let mut spec = compute_spec(request, &limits).map_err(compute_status)?;
        reached(&self.store, tenant.as_str(), min_sequence).await?;
        in_tenant_calendar(&mut spec, &self.store.settings(tenant.as_str()), zone_given);
        let registry = self.registry;
        let source = self.store.source(tenant.as_str());
        let rows = compute(raced, move || registry.compute(&spec, Some(&source)))
            .await?
            .map_err(compute_status)?;
        record("rows", rows.len());
        Ok(Response::new(pb::ComputeResponse {
            rows: rows.into_iter().map(row_to_proto).collect(),
        }))
    }

    async fn batch_compute(
        &self,
        request: Request<pb::BatchComputeRequest>,
    ) -> Result<Response<pb::BatchComputeResponse>, Status> {
        let tenant = tenant_of(&request);
        let request = request.into_inner();
        let ids: Vec<&str> = request
            .metrics
            .iter()
            .map(|m| m.metric_id.as_str())
            .collect();
        record("metric_id", clip(&ids.join(","), MAX_LOGGED_BYTES).as_str());
        let (limits, _cancel_on_drop) = self.spec_limits();
        let zone_given = !request.time_zone.is_empty();
        let min_sequence = request.min_sequence;
        let mut specs =
            batch_specs(request, &limits, self.limits.max_batch_metrics).map_err(compute_status)?;
        reached(&self.store, tenant.as_str(), min_sequence).await?;
        let settings = self.store.settings(tenant.as_str());
        for spec in &mut specs {
            in_tenant_calendar(spec, &settings, zone_given);
        }
        let ids: Vec<String> = specs.iter().map(|s| s.metric_id.clone()).collect();
        let registry = self.registry;
        let source = self.store.source(tenant.as_str());
        let answers = blocking(move || registry.compute_batch(&specs, Some(&source))).await?;
        let mut rows = 0;
        let results = ids
            .into_iter()
            .zip(answers)
            .map(|(metric_id, answer)| match answer {
                Ok(answer) => {
                    rows += answer.len();
                    pb::BatchComputeResult {
                        metric_id,
                        rows: answer.into_iter().map(row_to_proto).collect(),
                        error: None,
                    }
                }
                Err(err) => pb::BatchComputeResult {
                    metric_id,
                    rows: Vec::new(),
                    error: Some(batch_error(err)),
                },
            })
            .collect();
        record("rows", rows);
        Ok(Response::new(pb::BatchComputeResponse { results }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_the_guard_cancels_the_computation() {
        let flag = Arc::new(AtomicBool::new(false));
        let guard = CancelOnDrop(flag.clone());
        assert!(!flag.load(Ordering::Relaxed));
        drop(guard);
        assert!(flag.load(Ordering::Relaxed));
    }
}
