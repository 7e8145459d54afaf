//! The demo dataset of `kpid demo` and `kpid serve --demo`: the deterministic generated
//! CRM records (`kpi_store::generate`), loaded through the store API before serving.

use std::net::SocketAddr;

use anyhow::Context as _;
use clap::Args;
use kpi_store::generate::{generate, DemoOptions};
use kpi_store::Store;

/// Records per `Store::put` while loading (each put is flushed: fewer, larger puts).
const LOAD_CHUNK: usize = 5_000;

/// The demo dataset's size and seed.
#[derive(Debug, Clone, Args)]
pub(crate) struct DatasetArgs {
    /// Approximate number of demo records, over every kind (with --demo).
    #[arg(long, default_value_t = 20_000, requires = "demo")]
    pub(crate) records: usize,
    /// Seed of the demo dataset: the same seed gives the same records (with --demo).
    #[arg(long, default_value_t = 42, requires = "demo")]
    pub(crate) seed: u64,
}

impl DatasetArgs {
    /// The generator's options: these records and seed, ending at the default end, with
    /// the open data model (custom attributes on customers and deals, activities), so the
    /// demo can be grouped by `attr.*` and `customer.*`.
    pub(crate) fn options(&self) -> DemoOptions {
        DemoOptions {
            seed: self.seed,
            records: self.records,
            attributes_and_activities: true,
            ..DemoOptions::default()
        }
    }
}

/// A fresh temporary data directory for `kpid demo` (removed when dropped).
pub(crate) fn temporary_data_dir() -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new().prefix("kpid-demo-").tempdir()
}

/// The window `[start, end)` that holds every demo record: the two calendar years
/// before the generator's end.
pub(crate) fn window(options: &DemoOptions) -> (jiff::Timestamp, jiff::Timestamp) {
    let end = options.end;
    let start = end
        .to_zoned(jiff::tz::TimeZone::UTC)
        .checked_sub(jiff::Span::new().years(2))
        .map_or(jiff::Timestamp::MIN, |zoned| zoned.timestamp());
    (start, end)
}

/// Generates the dataset, stores it for the server's tenant, and logs how many records
/// were loaded and sample commands that compute a metric over it on `addr`.
pub(crate) async fn load(
    store: &Store,
    dataset: &DatasetArgs,
    addr: SocketAddr,
) -> anyhow::Result<()> {
    let options = dataset.options();
    let (start, end) = window(&options);
    tracing::info!(
        records = options.records,
        seed = options.seed,
        "generating the demo dataset"
    );
    let loading = {
        let store = store.clone();
        let options = options.clone();
        tokio::task::spawn_blocking(move || put_all(&store, &options))
    };
    let (accepted, rejected) = loading
        .await
        .context("the demo loader panicked")?
        .context("cannot store the demo dataset")?;
    for reason in rejected.iter().take(5) {
        tracing::warn!(reason = %reason, "demo record rejected");
    }
    tracing::info!(
        records = accepted,
        rejected = rejected.len(),
        seed = options.seed,
        start = %start,
        end = %end,
        "demo dataset loaded"
    );
    let request = format!(
        r#"{{"metric_id": "sales.win_rate", "start": "{start}", "end": "{end}", "granularity": "GRANULARITY_QUARTER"}}"#
    );
    tracing::info!("try: grpcurl -plaintext -d '{request}' {addr} kpi.v1.MetricsService/Compute");
    tracing::info!(
        "or: kpid compute sales.win_rate --addr {addr} --from {start} --to {end} --by quarter"
    );
    Ok(())
}

/// Generates and stores the dataset in chunks; the accepted count and the rejections.
fn put_all(
    store: &Store,
    options: &DemoOptions,
) -> Result<(u64, Vec<String>), kpi_store::StoreError> {
    let mut records = generate(options).into_iter();
    let mut accepted = 0;
    let mut rejected = Vec::new();
    let mut offset = 0;
    loop {
        let chunk: Vec<_> = records.by_ref().take(LOAD_CHUNK).collect();
        if chunk.is_empty() {
            return Ok((accepted, rejected));
        }
        let size = chunk.len();
        let outcome = store.put(kpi_server::TENANT, chunk)?;
        accepted += outcome.accepted;
        rejected.extend(
            outcome
                .rejected
                .into_iter()
                .map(|r| format!("record #{}: {}", offset + r.index, r.reason)),
        );
        offset += size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_the_two_years_before_the_end() {
        let (start, end) = window(&DemoOptions::default());
        assert_eq!(start.to_string(), "2023-01-01T00:00:00Z");
        assert_eq!(end.to_string(), "2025-01-01T00:00:00Z");
    }

    #[test]
    fn the_dataset_loads_through_the_store() {
        let store = Store::temporary().unwrap();
        let dataset = DatasetArgs {
            records: 300,
            seed: 7,
        };
        let (accepted, rejected) = put_all(&store, &dataset.options()).unwrap();
        assert!(rejected.is_empty(), "{rejected:?}");
        assert!(accepted >= 250, "{accepted}");
        assert_eq!(store.stats().records, accepted);
        // Loading again upserts the same records.
        put_all(&store, &dataset.options()).unwrap();
        assert_eq!(store.stats().records, accepted);
    }
}
