//! kpid's gRPC edge: the `kpi.v1.MetricsService` and `kpi.v1.RecordsService` handlers,
//! gRPC health checking and server reflection, and [`serve`], which runs them on a
//! listener until a shutdown signal and then flushes the store.
//!
//! Handlers are thin: they convert the proto into domain types ([`kpi_core::ComputeSpec`],
//! [`kpi_store::Record`]) in `convert`, call the registry or the store on the blocking
//! pool, and map errors to statuses in `error` — the one place that decides gRPC codes.
//! Protobuf types never reach `kpi-core` or `kpi-store`.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = kpi_store::Store::open("./kpid-data")?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:50051").await?;
//! kpi_server::serve(
//!     kpi_server::ServerConfig::new(store),
//!     listener,
//!     async { tokio::signal::ctrl_c().await.ok(); },
//! )
//! .await?;
//! # Ok(())
//! # }
//! ```

mod convert;
mod error;
mod metrics;
mod records;
mod rpc;
mod server;

pub use metrics::MetricsApi;
pub use records::RecordsApi;
pub use server::{serve, ServeError, ServerConfig};

/// The tenant every request reads and writes until authentication maps API keys to
/// tenants.
pub const TENANT: &str = "default";

/// Limits on what one request may ask of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most rows one metric's answer may have (buckets × groups); more is
    /// RESOURCE_EXHAUSTED.
    pub max_rows: usize,
    /// Most metrics in one BatchCompute call; more is INVALID_ARGUMENT.
    pub max_batch_metrics: usize,
    /// Largest request message, in bytes (each message of an Ingest stream counts alone).
    pub max_message_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_rows: 100_000,
            max_batch_metrics: 100,
            max_message_bytes: 16 * 1024 * 1024,
        }
    }
}
