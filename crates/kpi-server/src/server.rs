//! [`serve`] and [`serve_opening`]: the kpi.v1 services, health checking and reflection
//! behind the cross-cutting layers, on hyper, with graceful shutdown; and the optional
//! Prometheus endpoint.
//!
//! Every request passes, outermost first: CORS (a browser page on another origin may call),
//! grpc-web translation (HTTP/1.1 `application/grpc-web*` becomes gRPC), observation (a
//! span per RPC, Prometheus metrics), authentication, the deadline (`grpc-timeout` and the
//! server's request timeout answer DEADLINE_EXCEEDED), the request message limit
//! (RESOURCE_EXHAUSTED), load shedding (a slot once the first message is in), then the
//! services. kpid serves HTTP/1.1 and HTTP/2 on one port. Before all of them, a plain
//! `GET /` is answered with the dashboard page when it is on (see `dashboard`).
//!
//! The accept loop is ours rather than `tonic::transport::Server`'s because tonic's server
//! enforces `grpc-timeout` outside every user layer and answers CANCELLED; here the
//! deadline layer owns the deadline.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderName, Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use kpi_core::RegistryError;
use kpi_proto::kpi::v1::metrics_service_server::{MetricsServiceServer, SERVICE_NAME as METRICS};
use kpi_proto::kpi::v1::records_service_server::{RecordsServiceServer, SERVICE_NAME as RECORDS};
use kpi_proto::kpi::v1::tenant_service_server::{TenantServiceServer, SERVICE_NAME as TENANT};
use kpi_store::{Store, StoreError, WriteHealth};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tonic::body::Body;
use tonic::codec::CompressionEncoding;
use tonic::service::Routes;
use tonic_health::ServingStatus;
use tower::{Layer as _, Service, ServiceBuilder, ServiceExt as _};
use tower_http::cors::{AllowHeaders, AllowOrigin, Cors, CorsLayer};

use crate::auth::{ApiKeys, AuthLayer};
use crate::concurrency::ConcurrencyLimitLayer;
use crate::connections::{ConnectionLimits, Connections, Slot};
use crate::dashboard::{DashboardPage, ServeDashboard};
use crate::deadline::DeadlineLayer;
use crate::limit::MessageLimitLayer;
use crate::methods::MethodTable;
use crate::observe::ObserveLayer;
use crate::opening::Opening;
use crate::prometheus::{scrape, GrpcMetrics};
use crate::tls::{TlsError, TlsFiles};
use crate::{Limits, MetricsApi, RecordsApi, TenantApi};

/// How the server runs, apart from its store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Per-request limits.
    pub limits: Limits,
    /// Longest a request may run on the server (`None`: only the caller's own
    /// `grpc-timeout` applies). It covers a whole Ingest stream too.
    pub request_timeout: Option<Duration>,
    /// How long in-flight requests may take to finish after the shutdown signal before
    /// their connections are closed.
    pub shutdown_grace: Duration,
    /// Where to serve Prometheus metrics on `GET /metrics` (`None`: no endpoint).
    pub metrics_addr: Option<SocketAddr>,
    /// The API keys and their tenants (`None`: authentication is off and every caller is
    /// the tenant `default`).
    pub api_keys: Option<Arc<ApiKeys>>,
    /// Most kpi.v1 RPCs running at once; one more is answered RESOURCE_EXHAUSTED at once.
    /// An RPC counts from the arrival of its (first) request message.
    pub max_concurrent_requests: usize,
    /// Most kpi.v1 RPCs of one tenant running at once (`None`: see
    /// [`ServerConfig::per_tenant_limit`]).
    pub max_concurrent_requests_per_tenant: Option<usize>,
    /// Serve TLS (and mutual TLS with a client CA) instead of plaintext.
    pub tls: Option<TlsFiles>,
    /// Most connections, and the handshake and idle timeouts.
    pub connections: ConnectionLimits,
    /// The page answering a plain `GET /` on the serving port (`None`: no page; every
    /// request goes to the gRPC stack).
    pub dashboard: Option<DashboardPage>,
}

impl ServerConfig {
    /// The default for [`ServerConfig::max_concurrent_requests`].
    pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 256;

    /// The most RPCs one tenant may run at once: the configured value (at most the global
    /// limit), else, with API keys, half the global limit (at least 1), so that no tenant
    /// can take every slot; without keys every caller is the one tenant `default`, which
    /// then has the whole global limit.
    pub fn per_tenant_limit(&self) -> usize {
        let global = self.max_concurrent_requests.max(1);
        match (self.max_concurrent_requests_per_tenant, &self.api_keys) {
            (Some(limit), _) => limit.clamp(1, global),
            (None, Some(_)) => (global / 2).max(1),
            (None, None) => global,
        }
    }
}

impl Default for ServerConfig {
    /// Default [`Limits`], no server-side timeout, 20 s of shutdown grace, no metrics
    /// endpoint, authentication off, 256 concurrent requests, plaintext, no dashboard.
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            request_timeout: None,
            shutdown_grace: Duration::from_secs(20),
            metrics_addr: None,
            api_keys: None,
            max_concurrent_requests: Self::DEFAULT_MAX_CONCURRENT_REQUESTS,
            max_concurrent_requests_per_tenant: None,
            tls: None,
            connections: ConnectionLimits::default(),
            dashboard: None,
        }
    }
}

/// Why the server could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The linked metrics are inconsistent (a duplicate id…).
    #[error("metric registry: {0}")]
    Registry(#[from] RegistryError),
    /// The reflection service or the method table could not read the descriptor sets.
    #[error("reflection: {0}")]
    Reflection(String),
    /// The listener has no local address.
    #[error("listener: {0}")]
    Listener(#[source] std::io::Error),
    /// The metrics endpoint's address could not be bound.
    #[error("cannot listen on {addr} for metrics: {source}")]
    MetricsListener {
        /// The address asked for.
        addr: SocketAddr,
        /// Why binding failed.
        #[source]
        source: std::io::Error,
    },
    /// The TLS certificate, key or client CA could not be loaded.
    #[error("tls: {0}")]
    Tls(#[from] TlsError),
    /// The record store could not be opened.
    #[error("{0}")]
    Open(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store could not be flushed after shutdown.
    #[error("flushing the store: {0}")]
    Flush(#[from] StoreError),
    /// The flush task panicked.
    #[error("flushing the store: {0}")]
    FlushTask(#[from] tokio::task::JoinError),
}

const SERVICES: [&str; 4] = ["", METRICS, RECORDS, TENANT];

/// How often the records service's health reads whether the store takes writes.
const WRITE_HEALTH_POLL: Duration = Duration::from_millis(250);

/// How long the metrics endpoint's connections may take to close after shutdown.
const METRICS_GRACE: Duration = Duration::from_secs(1);

/// Most HTTP/2 streams (RPCs) open at once on one connection (RFC 9113 advises at least
/// 100); the client waits for one to end before it opens another.
const MAX_STREAMS_PER_CONNECTION: u32 = 100;

/// Serves kpid over an opened `store` on `listener` until `shutdown` completes; see
/// [`serve_opening`].
pub async fn serve(
    store: Store,
    config: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    serve_opening(
        std::future::ready(Ok::<_, Infallible>(store)),
        config,
        listener,
        shutdown,
    )
    .await
}

/// Serves kpid on `listener` while `open` opens the record store, and until `shutdown`
/// completes; then finishes in-flight requests (for at most `shutdown_grace`) and
/// flushes the store.
///
/// Serves `kpi.v1.MetricsService`, `kpi.v1.RecordsService`, `kpi.v1.TenantService`,
/// `grpc.health.v1.Health` and server reflection v1 and v1alpha, over HTTP/2 and
/// (grpc-web) HTTP/1.1. Health is NOT_SERVING for "" and every kpi.v1 service until the store is open (their RPCs answer
/// UNAVAILABLE meanwhile), SERVING then, and NOT_SERVING again from the shutdown signal
/// on; in between, `kpi.v1.RecordsService` is NOT_SERVING while the store refuses writes
/// ([`Store::write_health`]). Logs `kpid ready` with the bound `addr` once the store is
/// open, and the metrics endpoint's address before that when
/// [`ServerConfig::metrics_addr`] is set.
pub async fn serve_opening<E>(
    open: impl Future<Output = Result<Store, E>>,
    config: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let registry = kpi_core::registry()?;
    let addr = listener.local_addr().map_err(ServeError::Listener)?;
    let tls = config.tls.as_ref().map(crate::tls::acceptor).transpose()?;
    if let Some(files) = &config.tls {
        tracing::info!(
            cert = %files.cert.display(),
            mutual = files.client_ca.is_some(),
            "serving TLS"
        );
    }
    let limits = config.limits;
    let store_cell: Arc<OnceLock<Store>> = Arc::default();

    let prometheus = match config.metrics_addr {
        None => None,
        Some(metrics_addr) => {
            let listener = TcpListener::bind(metrics_addr).await.map_err(|source| {
                ServeError::MetricsListener {
                    addr: metrics_addr,
                    source,
                }
            })?;
            let bound = listener.local_addr().map_err(ServeError::Listener)?;
            Some((
                listener,
                bound,
                Arc::new(GrpcMetrics::new(store_cell.clone())),
            ))
        }
    };

    let (health_reporter, health) = tonic_health::server::health_reporter();
    for name in SERVICES {
        health_reporter
            .set_service_status(name, ServingStatus::NotServing)
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
    let methods = MethodTable::from_descriptor_sets(&[
        kpi_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ])
    .map_err(|e| ServeError::Reflection(e.to_string()))?;

    let metrics_cell = Arc::new(OnceLock::new());
    let records_cell = Arc::new(OnceLock::new());
    let tenant_cell = Arc::new(OnceLock::new());
    let routes = Routes::new(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(Opening::new(metrics_cell.clone()))
        .add_service(Opening::new(records_cell.clone()))
        .add_service(Opening::new(tenant_cell.clone()))
        .prepare();
    let grpc = edge(
        routes,
        methods,
        prometheus.as_ref().map(|(_, _, metrics)| metrics.clone()),
        &config,
        EdgeLayers::ALL,
    );
    let grpc = grpc.map_request(|request: Request<Incoming>| request.map(Body::new));
    // The page, when on, in front of the whole stack: no layer runs for it, and an RPC
    // pays one method comparison.
    let grpc = ServeDashboard {
        page: config.dashboard.clone(),
        inner: grpc,
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let metrics_server = prometheus.map(|(listener, bound, metrics)| {
        tracing::info!(addr = %bound, "metrics endpoint listening on /metrics");
        let endpoint =
            tower::service_fn(move |request: Request<Incoming>| scrape(metrics.clone(), request));
        tokio::spawn(run_http(
            listener,
            None,
            endpoint,
            stop_rx.clone(),
            METRICS_GRACE,
            config.connections,
        ))
    });

    let control = async {
        let mut shutdown = std::pin::pin!(shutdown);
        tracing::info!(addr = %addr, "listening; opening the record store");
        let opened = tokio::select! {
            opened = open => opened,
            () = &mut shutdown => {
                tracing::info!("shutdown requested while the record store was opening");
                stop_tx.send_replace(true);
                return Ok(None);
            }
        };
        let store = match opened {
            Ok(store) => store,
            Err(e) => {
                stop_tx.send_replace(true);
                return Err(ServeError::Open(e.into()));
            }
        };
        let _ = store_cell.set(store.clone());
        let _ = metrics_cell.set(metrics_service(registry, store.clone(), limits));
        let _ = records_cell.set(
            RecordsServiceServer::new(RecordsApi::new(store.clone()).with_limits(limits))
                .max_decoding_message_size(limits.max_decoding_message_bytes)
                .max_encoding_message_size(limits.max_encoding_message_bytes)
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                .send_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Zstd),
        );
        let _ = tenant_cell.set(
            TenantServiceServer::new(TenantApi::new(store.clone()))
                .max_decoding_message_size(limits.max_decoding_message_bytes)
                .max_encoding_message_size(limits.max_encoding_message_bytes)
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                .send_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Zstd),
        );
        for name in SERVICES {
            health_reporter
                .set_service_status(name, ServingStatus::Serving)
                .await;
        }
        if config.dashboard.is_some() {
            let scheme = if config.tls.is_some() {
                "https"
            } else {
                "http"
            };
            tracing::info!(url = %format!("{scheme}://{addr}/"), "dashboard page");
        }
        tracing::info!(addr = %addr, metrics = registry.len(), "kpid ready");

        // While serving, the records service's health follows whether the store takes
        // writes (a full disk turns it NOT_SERVING; queries stay SERVING).
        let mut writes = WriteHealth::Writable;
        let mut poll = tokio::time::interval(WRITE_HEALTH_POLL);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = poll.tick() => {
                    let now = store.write_health();
                    if now != writes {
                        writes = now;
                        let status = if now == WriteHealth::Writable {
                            ServingStatus::Serving
                        } else {
                            ServingStatus::NotServing
                        };
                        tracing::warn!(writes = ?now, "{RECORDS} health is now {status:?}");
                        health_reporter.set_service_status(RECORDS, status).await;
                    }
                }
            }
        }
        tracing::info!(
            "shutdown requested: refusing new connections, finishing in-flight requests"
        );
        for name in SERVICES {
            health_reporter
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        stop_tx.send_replace(true);
        Ok(Some(store))
    };
    let (opened, drained) = tokio::join!(
        control,
        run_http(
            listener,
            tls,
            grpc,
            stop_rx.clone(),
            config.shutdown_grace,
            config.connections
        )
    );
    if !drained {
        tracing::warn!(
            grace_secs = config.shutdown_grace.as_secs(),
            "in-flight requests did not finish in time; closing their connections"
        );
    }
    if let Some(endpoint) = metrics_server {
        if let Err(e) = endpoint.await {
            tracing::error!(error = %e, "the metrics endpoint failed");
        }
    }

    match opened? {
        Some(store) => {
            match tokio::task::spawn_blocking(move || store.close()).await? {
                Ok(()) => {}
                // Everything is committed; only the next start is slower (it scans).
                Err(StoreError::Snapshot(e)) => tracing::warn!(
                    error = %e,
                    "the rows snapshot was not written; the next start reads every record"
                ),
                Err(e) => return Err(e.into()),
            }
            tracing::info!("kpid stopped: store flushed");
        }
        None => tracing::info!("kpid stopped before the store was open"),
    }
    Ok(())
}

/// The `kpi.v1.MetricsService` server over `store`, as kpid serves it.
fn metrics_service(
    registry: &'static kpi_core::Registry,
    store: Store,
    limits: crate::Limits,
) -> MetricsServiceServer<MetricsApi> {
    MetricsServiceServer::new(MetricsApi::new(registry, store, limits))
        .max_decoding_message_size(limits.max_decoding_message_bytes)
        .max_encoding_message_size(limits.max_encoding_message_bytes)
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        .send_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Zstd)
}

/// Which of the edge's layers [`edge`] stacks: every one in kpid; the profiling harness
/// (`cargo run --release -p kpi-bench --example edge_cost`) leaves one out at a time to
/// measure what each costs. Not a stable API.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeLayers {
    /// [`cors`].
    pub cors: bool,
    /// grpc-web translation.
    pub grpc_web: bool,
    /// The `rpc` span and the Prometheus metrics.
    pub observe: bool,
    /// Authentication and the tenant.
    pub auth: bool,
    /// `grpc-timeout` and the server's request timeout.
    pub deadline: bool,
    /// The request message limit.
    pub message_limit: bool,
    /// Load shedding.
    pub concurrency: bool,
}

impl EdgeLayers {
    /// Every layer, as kpid serves.
    pub const ALL: Self = Self {
        cors: true,
        grpc_web: true,
        observe: true,
        auth: true,
        deadline: true,
        message_limit: true,
        concurrency: true,
    };
    /// No layer: the services alone.
    pub const NONE: Self = Self {
        cors: false,
        grpc_web: false,
        observe: false,
        auth: false,
        deadline: false,
        message_limit: false,
        concurrency: false,
    };
}

/// The cross-cutting `layers` (see the module docs for their order) around `routes`.
fn edge(
    routes: Routes,
    methods: MethodTable,
    metrics: Option<Arc<GrpcMetrics>>,
    config: &ServerConfig,
    layers: EdgeLayers,
) -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send + 'static>
       + Clone
       + Send
       + 'static {
    ServiceBuilder::new()
        .option_layer(layers.cors.then(|| {
            let cors = cors();
            tower::layer::layer_fn(move |inner| CorsForBrowsers {
                cors: cors.layer(inner),
            })
        }))
        .option_layer(layers.grpc_web.then(tonic_web::GrpcWebLayer::new))
        .option_layer(
            layers
                .observe
                .then(|| ObserveLayer::new(Arc::new(methods), metrics)),
        )
        .option_layer(layers.auth.then(|| AuthLayer {
            keys: config.api_keys.clone(),
        }))
        .option_layer(layers.deadline.then_some(DeadlineLayer {
            server_timeout: config.request_timeout,
        }))
        .option_layer(layers.message_limit.then_some(MessageLimitLayer {
            max_bytes: config.limits.max_decoding_message_bytes,
        }))
        .option_layer(layers.concurrency.then(|| {
            ConcurrencyLimitLayer::new(config.max_concurrent_requests, config.per_tenant_limit())
        }))
        .service(routes)
}

/// kpid's edge as [`serve_opening`] stacks it (`layers` of it, with the Prometheus
/// metrics on and `config`'s API keys), over health checking (SERVING), reflection and,
/// given a `store`, `kpi.v1.MetricsService` over it: what the profiling harness calls in
/// process, without the network. With `track_requests`, each request is counted in
/// flight on a connection, as the accept loop counts it. Not a stable API.
#[doc(hidden)]
pub async fn profiled_edge(
    config: &ServerConfig,
    layers: EdgeLayers,
    track_requests: bool,
    store: Option<Store>,
) -> Result<tower::util::BoxCloneService<Request<Body>, Response<Body>, Infallible>, ServeError> {
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(kpi_proto::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    let methods = MethodTable::from_descriptor_sets(&[
        kpi_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
    ])
    .map_err(|e| ServeError::Reflection(e.to_string()))?;
    let store_cell: Arc<OnceLock<Store>> = Arc::default();
    let mut routes = Routes::new(health).add_service(reflection);
    if let Some(store) = store {
        routes = routes.add_service(metrics_service(
            kpi_core::registry()?,
            store.clone(),
            config.limits,
        ));
        let _ = store_cell.set(store);
    }
    let routes = routes.prepare();
    let metrics = Arc::new(GrpcMetrics::new(store_cell));
    // The health reporter's sender must outlive the service.
    std::mem::forget(health_reporter);
    let service = edge(routes, methods, Some(metrics), config, layers);
    if !track_requests {
        return Ok(tower::util::BoxCloneService::new(service));
    }
    let slot = Connections::new(config.connections)
        .admit()
        .expect("a new listener has room");
    let tracked = slot
        .service(service)
        .map_response(|response| response.map(Body::new));
    std::mem::forget(slot);
    Ok(tower::util::BoxCloneService::new(tracked))
}

/// CORS for grpc-web callers on any origin. Credentials (cookies) are not allowed;
/// API keys travel in request headers, which the preflight mirrors.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods([http::Method::POST])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([
            HeaderName::from_static("grpc-status"),
            HeaderName::from_static("grpc-message"),
            HeaderName::from_static("grpc-status-details-bin"),
            HeaderName::from_static("grpc-encoding"),
        ])
        .max_age(Duration::from_secs(24 * 60 * 60))
}

/// [`cors`] for the requests that carry an `Origin` header, which browsers send with every
/// cross-origin request and preflight; other callers (gRPC clients) skip it, and their
/// answers carry no CORS headers, which only browsers read.
#[derive(Debug, Clone)]
struct CorsForBrowsers<S> {
    cors: Cors<S>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for CorsForBrowsers<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = CorsForBrowsersFuture<<Cors<S> as Service<Request<ReqBody>>>::Future, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        // Cors is ready when the service it wraps is.
        self.cors.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if request.headers().contains_key(http::header::ORIGIN) {
            CorsForBrowsersFuture::Cors {
                future: self.cors.call(request),
            }
        } else {
            CorsForBrowsersFuture::Plain {
                future: self.cors.get_mut().call(request),
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of [`CorsForBrowsers`]: through CORS, or straight from the service.
    #[project = CorsForBrowsersProjection]
    enum CorsForBrowsersFuture<C, P> {
        Cors { #[pin] future: C },
        Plain { #[pin] future: P },
    }
}

impl<C, P, T, E> Future for CorsForBrowsersFuture<C, P>
where
    C: Future<Output = Result<T, E>>,
    P: Future<Output = Result<T, E>>,
{
    type Output = Result<T, E>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            CorsForBrowsersProjection::Cors { future } => future.poll(cx),
            CorsForBrowsersProjection::Plain { future } => future.poll(cx),
        }
    }
}

/// Accepts HTTP/1.1 and HTTP/2 connections (over TLS when `tls` is set) on `listener`
/// for `service`, within `limits` (see `connections`), until `stop` turns true, then
/// stops accepting, lets each connection finish its in-flight requests and closes it.
/// Whether every connection closed within `grace`.
async fn run_http<S, B>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    service: S,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
    limits: ConnectionLimits,
) -> bool
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper enforces its HTTP/1 header read timeout only with a timer.
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    // A stream waiting for its request message holds no concurrency slot: bound how many
    // one connection may open.
    builder
        .http2()
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION);
    let connections = Connections::new(limits);
    // An error means the sender is gone, which means stop too.
    let mut stopped = std::pin::pin!(async move {
        let _ = stop.wait_for(|stop| *stop).await;
    });
    loop {
        tokio::select! {
            () = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let Some(slot) = connections.admit() else {
                        tracing::warn!(
                            max_connections = limits.max_connections,
                            "connection limit reached with a request in flight on every connection: closing a new one"
                        );
                        continue;
                    };
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
                    }
                    tokio::spawn(serve_connection(slot, stream, tls.clone(), builder.clone(), service.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    tokio::time::timeout(grace, connections.shutdown())
        .await
        .is_ok()
}

/// Serves one accepted connection in its `slot`, after a TLS handshake when `tls` is set
/// (the handshake runs here, not in the accept loop, and within the slot's handshake
/// deadline).
async fn serve_connection<S, B>(
    slot: Slot,
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    builder: auto::Builder<TokioExecutor>,
    service: S,
) where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let service = TowerToHyperService::new(slot.service(service));
    let served = match tls {
        None => {
            let io = TokioIo::new(slot.io(stream));
            slot.serve(builder.serve_connection(io, service)).await
        }
        Some(tls) => {
            let handshake = tokio::time::timeout_at(slot.handshake_deadline(), tls.accept(stream));
            let stream = tokio::select! {
                handshake = handshake => handshake,
                () = slot.told_to_close() => return,
            };
            let stream = match stream {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!("TLS handshake timed out");
                    return;
                }
            };
            let io = TokioIo::new(slot.io(stream));
            slot.serve(builder.serve_connection(io, service)).await
        }
    };
    if let Err(e) = served {
        tracing::debug!(error = %e, "connection closed with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer_headers(origin: Option<&str>) -> http::HeaderMap {
        let service = tower::service_fn(|_: Request<Body>| async {
            Ok::<_, Infallible>(Response::new(Body::empty()))
        });
        let mut service = CorsForBrowsers {
            cors: cors().layer(service),
        };
        let mut request = Request::post("/grpc.health.v1.Health/Check");
        if let Some(origin) = origin {
            request = request.header(http::header::ORIGIN, origin);
        }
        let request = request.body(Body::empty()).unwrap();
        let response = service.ready().await.unwrap().call(request).await.unwrap();
        response.headers().clone()
    }

    #[tokio::test]
    async fn cors_headers_answer_only_requests_with_an_origin() {
        let browser = answer_headers(Some("http://dashboard.example")).await;
        assert_eq!(browser[http::header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(browser.contains_key(http::header::ACCESS_CONTROL_EXPOSE_HEADERS));
        let grpc_client = answer_headers(None).await;
        assert!(!grpc_client.contains_key(http::header::ACCESS_CONTROL_ALLOW_ORIGIN));
        assert!(!grpc_client.contains_key(http::header::VARY));
    }
}
