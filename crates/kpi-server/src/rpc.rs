//! What every handler shares: blocking work (sled, the compute engine) run off the async
//! workers, inside the RPC's span, and the fields a handler records on that span (the
//! `rpc` span itself is opened by the observability layer).

use tonic::Status;
use tracing::Span;

use crate::error::task_status;

/// Runs `work` on tokio's blocking pool, inside the current span.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Status> {
    let span = Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(work))
        .await
        .map_err(task_status)
}

/// Records `value` as `field` of the current RPC's span (a no-op outside one).
pub(crate) fn record(field: &'static str, value: impl tracing::Value) {
    Span::current().record(field, value);
}
