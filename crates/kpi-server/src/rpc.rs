//! What every handler shares: blocking work (sled, the compute engine) run off the async
//! workers (a Compute without a deadline in place, handing the worker's other tasks over
//! only when the store starts long work), inside the RPC's span, and the fields a handler
//! records on that span (the `rpc` span itself is opened by the observability layer).

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

/// Runs a computation (the engine's answer to one Compute): in place on this async worker
/// when no deadline races the request (`raced` false: nothing may abandon the handler
/// midway) and the runtime is multi-threaded; else on the blocking pool as [`blocking`]
/// does. In place, no thread hand-off sits on a warm answer's path: the blocking pool
/// costs two cross-thread wake-ups (the pool's thread, then the worker awaiting it), and
/// `block_in_place` one (a thread taking over this worker's other tasks), each of which on
/// a busy two-core machine costs about as much as a warm Compute itself. Work the store
/// announces as long (building the index, or what a part of 50 000 rows or more builds on
/// its first read: `kpi_store::with_long_work_runner`) goes through `block_in_place`, so a
/// cold computation holds only this thread; a caller leaving meanwhile no longer stops it
/// between rows.
pub(crate) async fn compute<T: Send + 'static>(
    raced: bool,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Status> {
    let multi_threaded = tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::MultiThread;
    if raced || !multi_threaded {
        return blocking(work).await;
    }
    Ok(kpi_store::with_long_work_runner(hand_over_worker, work))
}

/// Runs `work` after handing this async worker's other tasks to another thread.
fn hand_over_worker(work: &mut dyn FnMut()) {
    tokio::task::block_in_place(work)
}

/// Records `value` as `field` of the current RPC's span (a no-op outside one).
pub(crate) fn record(field: &'static str, value: impl tracing::Value) {
    Span::current().record(field, value);
}
