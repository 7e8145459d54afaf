//! Observability: a tower layer that opens one tracing span per RPC and, when the RPC
//! ends (its response's last frame, or the caller leaving), records its code and duration
//! on the span, logs one event in it and updates the Prometheus metrics.
//!
//! The `rpc` span carries `service`, `method`, `tenant` (recorded by the auth layer), and
//! what the handler records on it (`metric_id`, `family`, `kind`, `records`, `keys`,
//! `rows`), then `code` and `duration_ms`. Its end event is logged at debug for OK, error for INTERNAL, UNKNOWN
//! and DATA_LOSS, and info otherwise (a rejected or abandoned request).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::body::Body;
use tonic::{Code, Status};
use tower::{Layer, Service};
use tracing::field::Empty;
use tracing::{Instrument as _, Span};

use crate::methods::{MethodTable, RpcMethod};
use crate::prometheus::{code_name, GrpcMetrics};

/// Applies [`Observe`] to a service.
#[derive(Debug, Clone)]
pub(crate) struct ObserveLayer {
    methods: Arc<MethodTable>,
    metrics: Option<Arc<GrpcMetrics>>,
}

impl ObserveLayer {
    /// Spans for the methods in `methods`; Prometheus metrics when `metrics` is set.
    pub(crate) fn new(methods: Arc<MethodTable>, metrics: Option<Arc<GrpcMetrics>>) -> Self {
        Self { methods, metrics }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            layer: self.clone(),
        }
    }
}

/// Observes each RPC; see the module docs.
#[derive(Debug, Clone)]
pub(crate) struct Observe<S> {
    inner: S,
    layer: ObserveLayer,
}

impl<S, B> Service<Request<B>> for Observe<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let method = self.layer.methods.lookup(request.uri().path());
        let span = tracing::info_span!(
            "rpc",
            service = %method.service,
            method = %method.method,
            tenant = Empty,
            metric_id = Empty,
            family = Empty,
            kind = Empty,
            records = Empty,
            keys = Empty,
            rows = Empty,
            code = Empty,
            duration_ms = Empty,
        );
        if let Some(metrics) = &self.layer.metrics {
            metrics.started(&method);
        }
        let end = RpcEnd {
            span: span.clone(),
            started: Instant::now(),
            method,
            metrics: self.layer.metrics.clone(),
            status: None,
        };
        let response = self.inner.call(request).instrument(span);
        Box::pin(async move {
            let response = response.await?;
            let (parts, body) = response.into_parts();
            let mut end = end;
            // A trailers-only answer (an error before any message) has its status in the
            // headers.
            end.status = status_in(&parts.headers);
            let body = ObservedBody {
                inner: body,
                end: Some(end),
            };
            Ok(Response::from_parts(parts, Body::new(body)))
        })
    }
}

/// The gRPC status in `headers` (a trailers-only answer's headers, or the trailers), if
/// any. An OK one, the most common, is read from `grpc-status` alone:
/// [`Status::from_header_map`] also decodes the message and copies the other headers
/// into the status's metadata, which only an error's log line reads.
fn status_in(headers: &http::HeaderMap) -> Option<Status> {
    if headers.get("grpc-status")? == "0" {
        return Some(Status::new(Code::Ok, ""));
    }
    Status::from_header_map(headers)
}

/// What is known of an RPC until it ends.
struct RpcEnd {
    span: Span,
    started: Instant,
    method: Arc<RpcMethod>,
    metrics: Option<Arc<GrpcMetrics>>,
    /// The status from the headers or trailers, once seen.
    status: Option<Status>,
}

impl RpcEnd {
    /// Records and logs the end, with `fallback` as the code when no status was seen.
    fn finish(self, fallback: Code) {
        let elapsed = self.started.elapsed();
        let (code, message) = match &self.status {
            Some(status) => (status.code(), status.message()),
            None => (fallback, ""),
        };
        if let Some(metrics) = &self.metrics {
            metrics.handled(&self.method, code, elapsed);
        }
        self.span.in_scope(|| {
            // The code and duration go on the span only when its end event is logged
            // (formatting them costs more than the rest of the span): an OK RPC's is at
            // debug, usually off.
            let record = |span: &Span| {
                span.record("code", code_name(code));
                span.record("duration_ms", elapsed.as_secs_f64() * 1000.0);
            };
            match code {
                Code::Ok => {
                    if tracing::enabled!(tracing::Level::DEBUG) {
                        record(&self.span);
                        tracing::debug!("rpc finished");
                    }
                }
                Code::Internal | Code::Unknown | Code::DataLoss => {
                    record(&self.span);
                    tracing::error!(detail = message, "rpc failed");
                }
                _ => {
                    record(&self.span);
                    tracing::info!(detail = message, "rpc rejected");
                }
            }
        });
    }
}

pin_project_lite::pin_project! {
    /// A response body that ends its RPC's observation when its last frame passes or it
    /// is dropped unfinished.
    struct ObservedBody<B> {
        #[pin]
        inner: B,
        end: Option<RpcEnd>,
    }

    impl<B> PinnedDrop for ObservedBody<B> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(end) = this.project().end.take() {
                // Dropped before the end: the caller reset the stream or left, unless the
                // status was already in the headers (then the body was empty).
                end.finish(Code::Cancelled);
            }
        }
    }
}

impl<B> HttpBody for ObservedBody<B>
where
    B: HttpBody<Data = Bytes, Error = Status>,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(trailers), Some(end)) = (frame.trailers_ref(), this.end.as_mut()) {
                    end.status = status_in(trailers);
                }
            }
            Poll::Ready(Some(Err(status))) => {
                if let Some(mut end) = this.end.take() {
                    end.status = Some(status.clone());
                    end.finish(Code::Unknown);
                }
            }
            Poll::Ready(None) => {
                if let Some(end) = this.end.take() {
                    end.finish(Code::Unknown);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;
    use tower::ServiceExt as _;

    fn layer() -> (ObserveLayer, Arc<GrpcMetrics>) {
        let methods = MethodTable::from_descriptor_sets(&[kpi_proto::FILE_DESCRIPTOR_SET]).unwrap();
        let metrics = Arc::new(GrpcMetrics::new(Arc::new(OnceLock::new())));
        (
            ObserveLayer::new(Arc::new(methods), Some(metrics.clone())),
            metrics,
        )
    }

    async fn call(layer: &ObserveLayer, path: &str, answer: Result<(), Status>) {
        use http_body_util::BodyExt as _;
        let service = tower::service_fn(move |_: Request<()>| {
            let answer = answer.clone();
            async move {
                Ok::<_, Infallible>(match answer {
                    Err(status) => status.into_http(),
                    Ok(()) => {
                        let mut trailers = http::HeaderMap::new();
                        trailers.insert("grpc-status", "0".parse().unwrap());
                        let body = http_body_util::StreamBody::new(tokio_stream::iter(vec![
                            Ok::<_, Status>(Frame::data(Bytes::from_static(b"\0\0\0\0\0"))),
                            Ok(Frame::trailers(trailers)),
                        ]));
                        Response::new(Body::new(body))
                    }
                })
            }
        });
        let request = Request::post(path).body(()).unwrap();
        let response = layer.layer(service).oneshot(request).await.unwrap();
        response.into_body().collect().await.unwrap();
    }

    #[tokio::test]
    async fn each_rpc_is_counted_once_with_its_code() {
        let (layer, metrics) = layer();
        call(&layer, "/kpi.v1.MetricsService/Compute", Ok(())).await;
        call(
            &layer,
            "/kpi.v1.MetricsService/Compute",
            Err(Status::not_found("no such metric")),
        )
        .await;
        call(&layer, "/no.Such/Method", Err(Status::unimplemented(""))).await;
        let text = metrics.encode();
        let compute =
            r#"grpc_type="unary",grpc_service="kpi.v1.MetricsService",grpc_method="Compute""#;
        for line in [
            format!("grpc_server_started_total{{{compute}}} 2"),
            format!("grpc_server_handled_total{{{compute},grpc_code=\"OK\"}} 1"),
            format!("grpc_server_handled_total{{{compute},grpc_code=\"NotFound\"}} 1"),
            r#"grpc_server_handled_total{grpc_type="unary",grpc_service="unknown",grpc_method="unknown",grpc_code="Unimplemented"} 1"#.to_owned(),
        ] {
            assert!(text.contains(&line), "{line} in\n{text}");
        }
    }

    #[tokio::test]
    async fn a_body_dropped_unfinished_counts_as_cancelled() {
        let (layer, metrics) = layer();
        let service = tower::service_fn(|_: Request<()>| async {
            let body = http_body_util::StreamBody::new(tokio_stream::pending::<
                Result<Frame<Bytes>, Status>,
            >());
            Ok::<_, Infallible>(Response::new(Body::new(body)))
        });
        let request = Request::post("/kpi.v1.RecordsService/ListRecords")
            .body(())
            .unwrap();
        let response = layer.layer(service).oneshot(request).await.unwrap();
        drop(response);
        let text = metrics.encode();
        assert!(
            text.contains(r#"grpc_method="ListRecords",grpc_code="Canceled"} 1"#),
            "{text}"
        );
    }
}
