//! Read-your-writes across replicas: a write answers with the tenant's sequence after it
//! (`kpi_store::Store::sequence`), and a read naming `min_sequence` waits here until this
//! kpid has applied the tenant's writes that far. The deadline layer ends the wait at the
//! request's deadline (DEADLINE_EXCEEDED); without one it ends after [`LONGEST_WAIT`]
//! with UNAVAILABLE.

use std::time::{Duration, Instant};

use kpi_store::Store;
use tonic::Status;

/// How long a read without a deadline waits for its `min_sequence`.
pub(crate) const LONGEST_WAIT: Duration = Duration::from_secs(10);

/// The first pause between two looks at the tenant's sequence; it doubles up to
/// [`LONGEST_PAUSE`]. A replica applies a notified write within milliseconds.
const FIRST_PAUSE: Duration = Duration::from_millis(1);
const LONGEST_PAUSE: Duration = Duration::from_millis(50);

/// Returns once this kpid applied `tenant`'s writes through `min_sequence` (at once for 0,
/// and on sled); UNAVAILABLE when that takes longer than [`LONGEST_WAIT`].
pub(crate) async fn reached(store: &Store, tenant: &str, min_sequence: u64) -> Result<(), Status> {
    if min_sequence == 0 || store.has_applied(tenant, min_sequence) {
        return Ok(());
    }
    let started = Instant::now();
    let mut pause = FIRST_PAUSE;
    loop {
        tokio::time::sleep(pause).await;
        if store.has_applied(tenant, min_sequence) {
            return Ok(());
        }
        if started.elapsed() >= LONGEST_WAIT {
            return Err(Status::unavailable(format!(
                "this kpid has applied the tenant's writes through sequence {}, not yet \
                 through min_sequence {min_sequence}, after waiting {} s (is its PostgreSQL \
                 database reachable? a sequence no write returned is never reached): retry, \
                 or ask another replica",
                store.sequence(tenant),
                LONGEST_WAIT.as_secs()
            )));
        }
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}
