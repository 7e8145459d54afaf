//! What every handler shares: a tracing span per RPC with its outcome logged, and
//! blocking work (sled, the compute engine) run off the async workers.

use std::future::Future;

use tonic::Status;
use tracing::{Instrument as _, Span};

use crate::error::task_status;

/// Runs `handler` inside `span` (method, tenant, metric id…) and logs how it ended:
/// debug on success, info for a rejected request, error for an internal failure.
pub(crate) async fn traced<T>(
    span: Span,
    handler: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    let result = handler.instrument(span.clone()).await;
    span.in_scope(|| match &result {
        Ok(_) => tracing::debug!("ok"),
        Err(status) if status.code() == tonic::Code::Internal => {
            tracing::error!(code = ?status.code(), message = status.message(), "failed")
        }
        Err(status) => {
            tracing::info!(code = ?status.code(), message = status.message(), "rejected")
        }
    });
    result
}

/// Runs `work` on tokio's blocking pool, inside the current span.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Status> {
    let span = Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(work))
        .await
        .map_err(task_status)
}
