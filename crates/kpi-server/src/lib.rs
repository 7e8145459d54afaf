//! kpid's gRPC edge: the `kpi.v1.MetricsService`, `kpi.v1.RecordsService` and
//! `kpi.v1.TenantService` handlers,
//! gRPC health checking and server reflection, and [`serve`], which runs them on a
//! listener until a shutdown signal and then flushes the store.
//!
//! Handlers are thin: they convert the proto into domain types ([`kpi_core::ComputeSpec`],
//! [`kpi_store::Record`]) in `convert`, call the registry or the store on the blocking
//! pool, and map errors to statuses in `error` — the one place that decides gRPC codes.
//! Protobuf types never reach `kpi-core` or `kpi-store`.
//!
//! Cross-cutting concerns are tower layers around every service, not handler code:
//! grpc-web and CORS, a tracing span and Prometheus metrics per RPC (`observe`,
//! `prometheus`), API-key authentication and tenancy ([`auth`]), load shedding
//! (`concurrency`), deadlines (`deadline`) and the request message limit (`limit`); TLS
//! and mutual TLS ([`TlsFiles`]) wrap the connections.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:50051").await?;
//! // Health answers NOT_SERVING while the store opens.
//! let open = async {
//!     tokio::task::spawn_blocking(|| kpi_store::Store::open("./kpid-data")).await?
//!         .map_err(Box::<dyn std::error::Error + Send + Sync>::from)
//! };
//! kpi_server::serve_opening(
//!     open,
//!     kpi_server::ServerConfig::default(),
//!     listener,
//!     async { tokio::signal::ctrl_c().await.ok(); },
//! )
//! .await?;
//! # Ok(())
//! # }
//! ```

pub mod alloc;
pub mod auth;
mod concurrency;
mod connections;
mod convert;
mod dashboard;
mod deadline;
mod error;
/// Entry points for the fuzz targets in `fuzz/`; not a stable API.
#[doc(hidden)]
pub mod fuzzing;
mod limit;
mod methods;
mod metrics;
mod observe;
mod opening;
mod prometheus;
mod records;
mod rpc;
mod sequence;
mod server;
mod tenant;
mod tls;

#[cfg(unix)]
pub use connections::raise_open_file_limit;
pub use connections::ConnectionLimits;
pub use convert::records::record_to_proto;
pub use dashboard::DashboardPage;
pub use metrics::MetricsApi;
pub use records::RecordsApi;
#[doc(hidden)]
pub use server::{profiled_edge, EdgeLayers};
pub use server::{serve, serve_opening, ServeError, ServerConfig};
pub use tenant::TenantApi;
pub use tls::{TlsError, TlsFiles};

/// The tenant every request reads and writes when authentication is off (no API keys
/// configured); with keys, each key's tenant (see [`auth`]).
pub const TENANT: &str = "default";

/// Limits on what one request may ask of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most rows one metric's answer may have (buckets × groups); more is
    /// RESOURCE_EXHAUSTED.
    pub max_rows: usize,
    /// Most metrics in one BatchCompute call; more is INVALID_ARGUMENT.
    pub max_batch_metrics: usize,
    /// Most records in one PutRecords request or one Ingest message; more is
    /// INVALID_ARGUMENT on the field `records`.
    pub max_records_per_request: usize,
    /// Largest request message, in bytes (each message of an Ingest stream counts alone);
    /// a larger one is RESOURCE_EXHAUSTED. Bounds a compressed message's decompressed
    /// size too.
    pub max_decoding_message_bytes: usize,
    /// Largest response message, in bytes.
    pub max_encoding_message_bytes: usize,
}

impl Limits {
    /// The default largest request message: 4 MiB, gRPC's usual receive limit.
    pub const DEFAULT_MAX_DECODING_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
    /// The default largest response message: 16 MiB.
    pub const DEFAULT_MAX_ENCODING_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

    /// The default limits with requests of up to `bytes` per message; responses may be
    /// as large, and at least the default 16 MiB.
    pub fn with_max_message_bytes(bytes: usize) -> Self {
        Self {
            max_decoding_message_bytes: bytes,
            max_encoding_message_bytes: bytes.max(Self::DEFAULT_MAX_ENCODING_MESSAGE_BYTES),
            ..Self::default()
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_rows: 100_000,
            max_batch_metrics: 100,
            max_records_per_request: 10_000,
            max_decoding_message_bytes: Self::DEFAULT_MAX_DECODING_MESSAGE_BYTES,
            max_encoding_message_bytes: Self::DEFAULT_MAX_ENCODING_MESSAGE_BYTES,
        }
    }
}
