//! Load shedding: at most N kpi.v1 RPCs run at once; one more is answered
//! RESOURCE_EXHAUSTED at once rather than queued (tower's `ConcurrencyLimit` would queue
//! it, and a queue grows without bound under overload). A slot is held from the call
//! until the response's body ends, so a streaming RPC (Ingest) holds one for its whole
//! life. Health checking and reflection are never shed: a probe must see the server alive
//! however busy it is.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::body::Body;
use tonic::Status;
use tower::{Layer, Service};

use crate::auth::is_open;

/// Applies [`ConcurrencyLimit`] to a service.
#[derive(Debug, Clone)]
pub(crate) struct ConcurrencyLimitLayer {
    slots: Arc<Semaphore>,
    max: usize,
}

impl ConcurrencyLimitLayer {
    /// At most `max` (at least 1) RPCs at once.
    pub(crate) fn new(max: usize) -> Self {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            slots: Arc::new(Semaphore::new(max)),
            max,
        }
    }
}

impl<S> Layer<S> for ConcurrencyLimitLayer {
    type Service = ConcurrencyLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ConcurrencyLimit {
            inner,
            layer: self.clone(),
        }
    }
}

/// Sheds kpi.v1 RPCs beyond the limit; see the module docs.
#[derive(Debug, Clone)]
pub(crate) struct ConcurrencyLimit<S> {
    inner: S,
    layer: ConcurrencyLimitLayer,
}

impl<S, B> Service<Request<B>> for ConcurrencyLimit<S>
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
        if is_open(request.uri().path()) {
            return Box::pin(self.inner.call(request));
        }
        let Ok(permit) = self.layer.slots.clone().try_acquire_owned() else {
            tracing::info!(
                limit = self.layer.max,
                "shedding a request: the server is at its concurrency limit"
            );
            let status = Status::resource_exhausted(format!(
                "the server is busy: it runs at most {} requests at once \
                 (--max-concurrent-requests); retry with backoff",
                self.layer.max
            ));
            return Box::pin(std::future::ready(Ok(status.into_http())));
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| {
                Body::new(PermitBody {
                    inner: body,
                    _permit: permit,
                })
            }))
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that holds its RPC's slot until it is dropped.
    struct PermitBody {
        #[pin]
        inner: Body,
        _permit: OwnedSemaphorePermit,
    }
}

impl HttpBody for PermitBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        self.project().inner.poll_frame(cx)
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
    use tokio::sync::oneshot;

    #[tokio::test]
    async fn a_call_beyond_the_limit_is_shed_at_once_and_health_never_is() {
        let (release_tx, release_rx) = oneshot::channel::<()>();
        let release = Arc::new(std::sync::Mutex::new(Some(release_rx)));
        let inner = tower::service_fn(move |request: Request<Body>| {
            let wait = if request.uri().path().ends_with("/Slow") {
                release.lock().unwrap().take()
            } else {
                None
            };
            async move {
                if let Some(wait) = wait {
                    let _ = wait.await;
                }
                // A body with data: an empty one ends at once, and its slot with it.
                let body = Body::new(http_body_util::Full::new(Bytes::from_static(b"answer")));
                Ok::<_, Infallible>(Response::new(body))
            }
        });
        let mut service = ConcurrencyLimitLayer::new(1).layer(inner);
        let call = |path: &str| Request::builder().uri(path).body(Body::empty()).unwrap();

        let slow = tokio::spawn(service.call(call("/kpi.v1.MetricsService/Slow")));
        tokio::task::yield_now().await;
        let shed = service
            .call(call("/kpi.v1.MetricsService/Compute"))
            .await
            .unwrap();
        let status = Status::from_header_map(shed.headers()).unwrap();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.message().contains("at most 1 request"), "{status:?}");
        let health = service
            .call(call("/grpc.health.v1.Health/Check"))
            .await
            .unwrap();
        assert!(
            Status::from_header_map(health.headers()).is_none(),
            "served"
        );

        release_tx.send(()).unwrap();
        let slow = slow.await.unwrap().unwrap();
        // The slot is held until the body is dropped.
        let shed = service
            .call(call("/kpi.v1.MetricsService/Compute"))
            .await
            .unwrap();
        assert_eq!(
            Status::from_header_map(shed.headers()).unwrap().code(),
            tonic::Code::ResourceExhausted
        );
        drop(slow);
        let ok = service
            .call(call("/kpi.v1.MetricsService/Compute"))
            .await
            .unwrap();
        assert!(Status::from_header_map(ok.headers()).is_none(), "served");
    }
}
