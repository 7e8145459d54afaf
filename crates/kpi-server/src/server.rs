//! [`serve`]: the tonic server with both kpi.v1 services, health checking and reflection,
//! and its graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kpi_core::RegistryError;
use kpi_proto::kpi::v1::metrics_service_server::{MetricsServiceServer, SERVICE_NAME as METRICS};
use kpi_proto::kpi::v1::records_service_server::{RecordsServiceServer, SERVICE_NAME as RECORDS};
use kpi_store::{Store, StoreError};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic_health::ServingStatus;

use crate::{Limits, MetricsApi, RecordsApi};

/// What [`serve`] runs with.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The opened record store; flushed after shutdown.
    pub store: Store,
    /// Per-request limits.
    pub limits: Limits,
    /// Longest a request may run on the server (`None`: only the caller's own
    /// `grpc-timeout` applies). It covers a whole Ingest stream too.
    pub request_timeout: Option<Duration>,
    /// How long in-flight requests may take to finish after the shutdown signal before
    /// their connections are closed.
    pub shutdown_grace: Duration,
}

impl ServerConfig {
    /// Defaults around an opened store: default [`Limits`], no server-side timeout, 20 s
    /// of shutdown grace.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            limits: Limits::default(),
            request_timeout: None,
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

/// Why the server could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The linked metrics are inconsistent (a duplicate id…).
    #[error("metric registry: {0}")]
    Registry(#[from] RegistryError),
    /// The reflection service could not read the descriptor sets.
    #[error("reflection: {0}")]
    Reflection(String),
    /// The listener has no local address.
    #[error("listener: {0}")]
    Listener(#[source] std::io::Error),
    /// The transport failed while serving.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The store could not be flushed after shutdown.
    #[error("flushing the store: {0}")]
    Flush(#[from] StoreError),
    /// The flush task panicked.
    #[error("flushing the store: {0}")]
    FlushTask(#[from] tokio::task::JoinError),
}

const SERVICES: [&str; 3] = ["", METRICS, RECORDS];

/// Serves kpid on `listener` until `shutdown` completes, then finishes in-flight requests
/// (for at most `shutdown_grace`) and flushes the store.
///
/// Serves `kpi.v1.MetricsService`, `kpi.v1.RecordsService`, `grpc.health.v1.Health`
/// (SERVING for "" and both services; NOT_SERVING from the shutdown signal on) and
/// server reflection v1 and v1alpha. Logs `kpid ready` with the bound `addr` once it
/// accepts requests.
pub async fn serve(
    config: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let registry = kpi_core::registry()?;
    let addr = listener.local_addr().map_err(ServeError::Listener)?;
    let limits = config.limits;

    let (health_reporter, health) = tonic_health::server::health_reporter();
    for name in SERVICES {
        health_reporter
            .set_service_status(name, ServingStatus::Serving)
            .await;
    }
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(kpi_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;

    let metrics =
        MetricsServiceServer::new(MetricsApi::new(registry, config.store.clone(), limits))
            .max_decoding_message_size(limits.max_message_bytes)
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
            .send_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Zstd);
    let records = RecordsServiceServer::new(RecordsApi::new(config.store.clone()))
        .max_decoding_message_size(limits.max_message_bytes)
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        .send_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Zstd);

    let stopping = Arc::new(Notify::new());
    let signal = {
        let stopping = stopping.clone();
        let health_reporter = health_reporter.clone();
        async move {
            shutdown.await;
            tracing::info!(
                "shutdown requested: refusing new connections, finishing in-flight requests"
            );
            for name in SERVICES {
                health_reporter
                    .set_service_status(name, ServingStatus::NotServing)
                    .await;
            }
            stopping.notify_one();
        }
    };

    let mut builder = Server::builder();
    if let Some(timeout) = config.request_timeout {
        builder = builder.timeout(timeout);
    }
    let server = builder
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(metrics)
        .add_service(records)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), signal);

    tracing::info!(addr = %addr, metrics = registry.len(), "kpid ready");
    let grace = config.shutdown_grace;
    tokio::select! {
        served = server => served?,
        () = async { stopping.notified().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace_secs = grace.as_secs(), "in-flight requests did not finish in time; closing their connections");
        }
    }

    let store = config.store;
    tokio::task::spawn_blocking(move || store.flush()).await??;
    tracing::info!("kpid stopped: store flushed");
    Ok(())
}
