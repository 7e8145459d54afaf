//! The Prometheus endpoint: the go-grpc-prometheus server metrics the observability layer
//! counts (`grpc_server_started_total`, `grpc_server_handled_total`,
//! `grpc_server_handling_seconds`) and the store's gauges, read at scrape time, served
//! as OpenMetrics text on `GET /metrics`.

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use kpi_store::{Store, WriteHealth};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tonic::Code;

use crate::methods::RpcMethod;

/// The OpenMetrics text exposition's content type.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// go-grpc-prometheus's default buckets for `grpc_server_handling_seconds`, in seconds.
const HANDLING_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The labels of an RPC that started.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StartedLabels {
    grpc_type: &'static str,
    grpc_service: String,
    grpc_method: String,
}

/// The labels of an RPC that ended.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandledLabels {
    grpc_type: &'static str,
    grpc_service: String,
    grpc_method: String,
    grpc_code: &'static str,
}

/// One method's series, looked up in their families (labels built, hashed and compared)
/// the first time the method is counted, then updated directly: a counter or a histogram
/// cloned from its family is the same series. A method table's methods are counted by
/// one [`GrpcMetrics`] (the server builds one of each).
#[derive(Debug, Default)]
pub(crate) struct MethodSeries {
    started: OnceLock<Counter>,
    /// By code (`Code as usize`, 0 to 16).
    handled: [OnceLock<(Counter, Histogram)>; 17],
}

/// The server's Prometheus metrics.
pub(crate) struct GrpcMetrics {
    registry: Registry,
    started: Family<StartedLabels, Counter>,
    handled: Family<HandledLabels, Counter>,
    handling: Family<HandledLabels, Histogram, fn() -> Histogram>,
    records_stored: Gauge,
    store_size_bytes: Gauge,
    store_writable: Gauge,
    query_state_bytes: Gauge,
    query_state_budget_bytes: Gauge,
    query_states_released: Gauge,
    store: Arc<OnceLock<Store>>,
}

impl std::fmt::Debug for GrpcMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcMetrics").finish_non_exhaustive()
    }
}

fn handling_histogram() -> Histogram {
    Histogram::new(HANDLING_BUCKETS)
}

impl GrpcMetrics {
    /// Empty metrics; the store gauges read `store` once it is open.
    pub(crate) fn new(store: Arc<OnceLock<Store>>) -> Self {
        let mut registry = Registry::default();
        let started = Family::<StartedLabels, Counter>::default();
        let handled = Family::<HandledLabels, Counter>::default();
        let handling: Family<HandledLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(handling_histogram);
        let records_stored = Gauge::default();
        let store_size_bytes = Gauge::default();
        let store_writable = Gauge::default();
        let query_state_bytes = Gauge::default();
        let query_state_budget_bytes = Gauge::default();
        let query_states_released = Gauge::default();
        registry.register(
            "grpc_server_started",
            "Total number of RPCs started on the server",
            started.clone(),
        );
        registry.register(
            "grpc_server_handled",
            "Total number of RPCs completed on the server, regardless of success or failure",
            handled.clone(),
        );
        registry.register(
            "grpc_server_handling_seconds",
            "Response latency (seconds) of gRPC that had been application-level handled by the server",
            handling.clone(),
        );
        registry.register(
            "kpid_records_stored",
            "Records held in the store, over every tenant",
            records_stored.clone(),
        );
        registry.register(
            "kpid_store_size_bytes",
            "Bytes the store uses on disk",
            store_size_bytes.clone(),
        );
        registry.register(
            "kpid_store_writable",
            "1 while the store takes writes, 0 while it refuses them (a full disk, a failed write)",
            store_writable.clone(),
        );
        registry.register(
            "kpid_query_state_bytes",
            "Bytes of the tenants' query state (their indexes) held, as estimated when each was built",
            query_state_bytes.clone(),
        );
        registry.register(
            "kpid_query_state_budget_bytes",
            "The memory budget of the tenants' query state (--memory-budget), 0 when none",
            query_state_budget_bytes.clone(),
        );
        registry.register(
            "kpid_query_states_released",
            "Tenants' query states the memory budget released since the store opened",
            query_states_released.clone(),
        );
        Self {
            registry,
            started,
            handled,
            handling,
            records_stored,
            store_size_bytes,
            store_writable,
            query_state_bytes,
            query_state_budget_bytes,
            query_states_released,
            store,
        }
    }

    /// Counts an RPC that started.
    pub(crate) fn started(&self, method: &RpcMethod) {
        method
            .series
            .started
            .get_or_init(|| {
                self.started
                    .get_or_create(&StartedLabels {
                        grpc_type: method.rpc_type.as_str(),
                        grpc_service: method.service.clone(),
                        grpc_method: method.method.clone(),
                    })
                    .clone()
            })
            .inc();
    }

    /// Counts an RPC that ended with `code` after `elapsed`.
    pub(crate) fn handled(&self, method: &RpcMethod, code: Code, elapsed: Duration) {
        let (handled, handling) = method.series.handled[code as usize].get_or_init(|| {
            let labels = HandledLabels {
                grpc_type: method.rpc_type.as_str(),
                grpc_service: method.service.clone(),
                grpc_method: method.method.clone(),
                grpc_code: code_name(code),
            };
            (
                self.handled.get_or_create(&labels).clone(),
                self.handling.get_or_create(&labels).clone(),
            )
        });
        handled.inc();
        handling.observe(elapsed.as_secs_f64());
    }

    /// The exposition, with the store gauges read now.
    pub(crate) fn encode(&self) -> String {
        if let Some(store) = self.store.get() {
            let stats = store.stats();
            self.records_stored
                .set(i64::try_from(stats.records).unwrap_or(i64::MAX));
            self.store_size_bytes
                .set(i64::try_from(stats.disk_bytes).unwrap_or(i64::MAX));
            self.store_writable
                .set(i64::from(store.write_health() == WriteHealth::Writable));
            let budget = store.budget_stats();
            let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            self.query_state_bytes.set(gauge(budget.held_bytes));
            self.query_state_budget_bytes
                .set(gauge(budget.limit.unwrap_or(0)));
            self.query_states_released.set(gauge(budget.released));
        }
        let mut text = String::new();
        // Writing to a String cannot fail. (The encoder ends each HELP text with a period.)
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// A status code as go-grpc-prometheus labels it (Go's `codes.Code.String()`).
pub(crate) fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// Answers one request to the metrics endpoint: the exposition on `GET /metrics`, 404
/// elsewhere, 405 for other methods.
pub(crate) async fn scrape<B>(
    metrics: Arc<GrpcMetrics>,
    request: Request<B>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let plain = |status: StatusCode, text: &'static str| {
        let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    };
    if request.uri().path() != "/metrics" {
        return Ok(plain(
            StatusCode::NOT_FOUND,
            "not found: the metrics are at /metrics\n",
        ));
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: use GET\n",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return Ok(response);
    }
    // Store::stats asks sled for its size on disk, which reads the file system.
    let text = match tokio::task::spawn_blocking(move || metrics.encode()).await {
        Ok(text) => text,
        Err(e) => {
            tracing::error!(error = %e, "encoding the metrics failed");
            return Ok(plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "encoding the metrics failed\n",
            ));
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(text)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(CONTENT_TYPE),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::RpcType;

    fn compute() -> RpcMethod {
        RpcMethod {
            service: "kpi.v1.MetricsService".into(),
            method: "Compute".into(),
            rpc_type: RpcType::Unary,
            series: Default::default(),
        }
    }

    #[test]
    fn the_exposition_carries_counters_histograms_and_store_gauges() {
        let cell = Arc::new(OnceLock::new());
        let metrics = GrpcMetrics::new(cell.clone());
        let compute = compute();
        metrics.started(&compute);
        metrics.started(&compute);
        metrics.handled(&compute, Code::Ok, Duration::from_millis(30));
        metrics.handled(&compute, Code::NotFound, Duration::from_millis(2));
        let store = Store::temporary().unwrap();
        cell.set(store).unwrap();

        let text = metrics.encode();
        let labels =
            r#"grpc_type="unary",grpc_service="kpi.v1.MetricsService",grpc_method="Compute""#;
        assert!(
            text.contains(&format!("grpc_server_started_total{{{labels}}} 2")),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "grpc_server_handled_total{{{labels},grpc_code=\"OK\"}} 1"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "grpc_server_handled_total{{{labels},grpc_code=\"NotFound\"}} 1"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "grpc_server_handling_seconds_bucket{{le=\"0.025\",{labels},grpc_code=\"OK\"}} 0"
            )) || text.contains(&format!(
                "grpc_server_handling_seconds_bucket{{{labels},grpc_code=\"OK\",le=\"0.025\"}} 0"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "grpc_server_handling_seconds_count{{{labels},grpc_code=\"OK\"}} 1"
            )),
            "{text}"
        );
        assert!(text.contains("kpid_records_stored 0"), "{text}");
        assert!(text.contains("kpid_store_size_bytes "), "{text}");
        assert!(text.contains("kpid_store_writable 1"), "{text}");
        assert!(text.contains("kpid_query_state_bytes 0"), "{text}");
        assert!(text.contains("kpid_query_state_budget_bytes 0"), "{text}");
        assert!(text.contains("kpid_query_states_released 0"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn codes_are_named_as_go_names_them() {
        assert_eq!(code_name(Code::Ok), "OK");
        assert_eq!(code_name(Code::Cancelled), "Canceled");
        assert_eq!(code_name(Code::DeadlineExceeded), "DeadlineExceeded");
        assert_eq!(code_name(Code::Unauthenticated), "Unauthenticated");
    }

    #[tokio::test]
    async fn the_endpoint_serves_only_get_metrics() {
        let metrics = Arc::new(GrpcMetrics::new(Arc::new(OnceLock::new())));
        let get = |path: &str| Request::get(path).body(()).unwrap();
        let ok = scrape(metrics.clone(), get("/metrics")).await.unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
        let missing = scrape(metrics.clone(), get("/")).await.unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        let post = Request::post("/metrics").body(()).unwrap();
        let refused = scrape(metrics, post).await.unwrap();
        assert_eq!(refused.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}
