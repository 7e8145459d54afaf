//! Load shedding: at most N kpi.v1 RPCs run at once, and at most M of them for one tenant;
//! one more is answered RESOURCE_EXHAUSTED at once rather than queued (tower's
//! `ConcurrencyLimit` would queue it, and a queue grows without bound under overload).
//!
//! A slot is taken only once the request's first message has arrived whole (a unary RPC's
//! message; an Ingest stream's first one): until then the request waits without one, so
//! streams that never send a body cannot lock others out. The wait is bounded: by
//! [`FIRST_MESSAGE_TIMEOUT`] (then DEADLINE_EXCEEDED), by the caller's deadline (the
//! deadline layer runs outside this one), and per connection by HTTP/2's limit on
//! concurrent streams. The bytes read while waiting are replayed to the handler ahead of
//! the rest of the body. The slot is then held until the response's body ends, so an
//! Ingest stream holds one for the rest of its life.
//!
//! Health checking and reflection are never shed: a probe must see the server alive
//! however busy it is.

use std::collections::hash_map::{Entry, HashMap};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::body::Body;
use tonic::Status;
use tower::{Layer, Service};

use crate::auth::{is_open, Tenant};
use crate::limit::Framing;

/// How long a request may wait for its first message before it is answered
/// DEADLINE_EXCEEDED (unless the caller's own deadline comes sooner).
pub(crate) const FIRST_MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Applies [`ConcurrencyLimit`] to a service.
#[derive(Debug, Clone)]
pub(crate) struct ConcurrencyLimitLayer {
    slots: Arc<Semaphore>,
    max: usize,
    tenants: Arc<TenantSlots>,
}

impl ConcurrencyLimitLayer {
    /// At most `max` (at least 1) RPCs at once, and at most `max_per_tenant` (at least 1)
    /// of one tenant.
    pub(crate) fn new(max: usize, max_per_tenant: usize) -> Self {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            slots: Arc::new(Semaphore::new(max)),
            max,
            tenants: Arc::new(TenantSlots {
                max: max_per_tenant.max(1),
                in_use: Mutex::default(),
            }),
        }
    }

    /// A slot for one RPC of `tenant`, or the status that sheds it.
    fn try_acquire(&self, tenant: &Tenant) -> Result<Slot, Status> {
        let Ok(global) = self.slots.clone().try_acquire_owned() else {
            tracing::info!(
                limit = self.max,
                %tenant,
                "shedding a request: the server is at its concurrency limit"
            );
            return Err(Status::resource_exhausted(format!(
                "the server is busy: it runs at most {} requests at once \
                 (--max-concurrent-requests); retry with backoff",
                self.max
            )));
        };
        let Some(tenant_permit) = self.tenants.try_acquire(tenant) else {
            tracing::info!(
                limit = self.tenants.max,
                %tenant,
                "shedding a request: its tenant is at its concurrency limit"
            );
            return Err(Status::resource_exhausted(format!(
                "the tenant {tenant} already runs {} requests, the most one tenant may run \
                 at once (--max-concurrent-requests-per-tenant); retry with backoff",
                self.tenants.max
            )));
        };
        Ok(Slot {
            _global: global,
            _tenant: tenant_permit,
        })
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

/// Sheds kpi.v1 RPCs beyond the limits; see the module docs.
#[derive(Debug, Clone)]
pub(crate) struct ConcurrencyLimit<S> {
    inner: S,
    layer: ConcurrencyLimitLayer,
}

impl<S> Service<Request<Body>> for ConcurrencyLimit<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if is_open(request.uri().path()) {
            return Box::pin(self.inner.call(request));
        }
        // The ready service is called once the message is in; a clone stays for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let tenant = request
                .extensions()
                .get::<Tenant>()
                .cloned()
                .unwrap_or_else(Tenant::default_tenant);
            let (parts, body) = request.into_parts();
            let body =
                match tokio::time::timeout(FIRST_MESSAGE_TIMEOUT, read_first_message(body)).await {
                    Ok(Ok(body)) => body,
                    Ok(Err(status)) => return Ok(status.into_http()),
                    Err(_) => {
                        tracing::debug!(%tenant, "no request message arrived in time");
                        return Ok(Status::deadline_exceeded(format!(
                            "no request message arrived within {} s of the call; kpid waits that \
                         long for a call's first message",
                            FIRST_MESSAGE_TIMEOUT.as_secs()
                        ))
                        .into_http());
                    }
                };
            let slot = match layer.try_acquire(&tenant) {
                Ok(slot) => slot,
                Err(status) => return Ok(status.into_http()),
            };
            let response = inner
                .call(Request::from_parts(parts, Body::new(body)))
                .await?;
            Ok(response.map(|body| {
                Body::new(SlotBody {
                    inner: body,
                    _slot: slot,
                })
            }))
        })
    }
}

/// Reads `body` until its first gRPC message has arrived whole (or the body ended); a
/// body that fails first (the message limit layer's RESOURCE_EXHAUSTED, a reset stream)
/// gives its error, which answers the request without a slot.
async fn read_first_message(mut body: Body) -> Result<ReplayBody, Status> {
    let mut framing = Framing::default();
    let mut read_ahead = VecDeque::new();
    while framing.complete_messages() == 0 {
        match body.frame().await {
            None => return Ok(ReplayBody::new(read_ahead, Body::empty())),
            Some(Err(status)) => return Err(status),
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    // Sizes were checked by the message limit layer above: no limit here.
                    let _ = framing.advance(data, usize::MAX);
                }
                read_ahead.push_back(frame);
            }
        }
    }
    Ok(ReplayBody::new(read_ahead, body))
}

pin_project_lite::pin_project! {
    /// A request body whose first frames were read ahead: it yields them again, then the
    /// rest of the body.
    struct ReplayBody {
        read_ahead: VecDeque<Frame<Bytes>>,
        #[pin]
        rest: Body,
    }
}

impl ReplayBody {
    fn new(read_ahead: VecDeque<Frame<Bytes>>, rest: Body) -> Self {
        Self { read_ahead, rest }
    }
}

impl HttpBody for ReplayBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.project();
        if let Some(frame) = this.read_ahead.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        this.rest.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.read_ahead.is_empty() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let read_ahead: u64 = self
            .read_ahead
            .iter()
            .filter_map(Frame::data_ref)
            .map(|data| data.len() as u64)
            .sum();
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower().saturating_add(read_ahead));
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(read_ahead));
        }
        hint
    }
}

/// Slots counted per tenant.
#[derive(Debug)]
struct TenantSlots {
    max: usize,
    in_use: Mutex<HashMap<Tenant, usize>>,
}

impl TenantSlots {
    fn try_acquire(self: &Arc<Self>, tenant: &Tenant) -> Option<TenantPermit> {
        let mut in_use = self.in_use.lock().unwrap_or_else(PoisonError::into_inner);
        let count = in_use.entry(tenant.clone()).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(TenantPermit {
            slots: self.clone(),
            tenant: tenant.clone(),
        })
    }
}

/// One of a tenant's slots, given back when dropped (a tenant with none in use is
/// forgotten, so the map holds only tenants with RPCs running).
#[derive(Debug)]
struct TenantPermit {
    slots: Arc<TenantSlots>,
    tenant: Tenant,
}

impl Drop for TenantPermit {
    fn drop(&mut self) {
        let mut in_use = self
            .slots
            .in_use
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Entry::Occupied(mut count) = in_use.entry(self.tenant.clone()) {
            *count.get_mut() -= 1;
            if *count.get() == 0 {
                count.remove();
            }
        }
    }
}

/// The slots one RPC holds: one of the server's and one of its tenant's.
#[derive(Debug)]
struct Slot {
    _global: OwnedSemaphorePermit,
    _tenant: TenantPermit,
}

pin_project_lite::pin_project! {
    /// A response body that holds its RPC's slot until it is dropped.
    struct SlotBody {
        #[pin]
        inner: Body,
        _slot: Slot,
    }
}

impl HttpBody for SlotBody {
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
    use tokio::sync::{mpsc, oneshot};
    use tokio_stream::wrappers::ReceiverStream;

    /// A gRPC message: the 5-byte prefix and `payload`.
    fn message(payload: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0];
        bytes.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
        bytes.extend_from_slice(payload);
        bytes
    }

    fn data(bytes: &[u8]) -> Result<Frame<Bytes>, Status> {
        Ok(Frame::data(Bytes::copy_from_slice(bytes)))
    }

    /// A body fed frame by frame through the returned sender.
    fn channel_body() -> (mpsc::Sender<Result<Frame<Bytes>, Status>>, Body) {
        let (tx, rx) = mpsc::channel(16);
        let body = Body::new(http_body_util::StreamBody::new(ReceiverStream::new(rx)));
        (tx, body)
    }

    /// Every frame of `body`: data concatenated, and the trailers if any.
    async fn drain(
        body: impl HttpBody<Data = Bytes, Error = Status>,
    ) -> (Vec<u8>, Option<http::HeaderMap>) {
        let collected = body.collect().await.unwrap();
        let trailers = collected.trailers().cloned();
        (collected.to_bytes().to_vec(), trailers)
    }

    fn status_of(response: &Response<Body>) -> Option<Status> {
        Status::from_header_map(response.headers())
    }

    #[tokio::test]
    async fn the_first_message_split_across_frames_is_read_and_replayed_before_the_rest() {
        let first = message(b"hello");
        let second = message(b"world");
        let (tx, body) = channel_body();
        // The prefix itself is split; the frame that ends the message begins the next one.
        tx.send(data(&first[..2])).await.unwrap();
        tx.send(data(&first[2..6])).await.unwrap();
        let mut rest = first[6..].to_vec();
        rest.extend_from_slice(&second[..3]);
        tx.send(data(&rest)).await.unwrap();
        // Returns with the sender still open: the rest of the stream is not waited for.
        let replay = read_first_message(body).await.unwrap();
        assert!(!replay.is_end_stream());
        tx.send(data(&second[3..])).await.unwrap();
        drop(tx);
        let (bytes, trailers) = drain(replay).await;
        assert_eq!(bytes, [first, second].concat());
        assert_eq!(trailers, None);
    }

    #[tokio::test]
    async fn an_empty_message_counts_as_arrived() {
        let (tx, body) = channel_body();
        tx.send(data(&message(b""))).await.unwrap();
        let replay = read_first_message(body).await.unwrap();
        drop(tx);
        assert_eq!(drain(replay).await.0, message(b""));
    }

    #[tokio::test]
    async fn an_empty_body_passes_on_empty() {
        let replay = read_first_message(Body::empty()).await.unwrap();
        assert!(replay.is_end_stream());
        assert_eq!(drain(replay).await, (Vec::new(), None));
        // A body that ends early (a truncated message) passes on as it came: the handler
        // reports it.
        let (tx, body) = channel_body();
        tx.send(data(&message(b"abc")[..6])).await.unwrap();
        drop(tx);
        let replay = read_first_message(body).await.unwrap();
        assert_eq!(drain(replay).await.0, message(b"abc")[..6]);
    }

    #[tokio::test]
    async fn trailers_before_a_whole_message_are_replayed() {
        let (tx, body) = channel_body();
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-end", http::HeaderValue::from_static("1"));
        tx.send(data(&message(b"abc")[..4])).await.unwrap();
        tx.send(Ok(Frame::trailers(trailers.clone())))
            .await
            .unwrap();
        drop(tx);
        let replay = read_first_message(body).await.unwrap();
        assert_eq!(
            drain(replay).await,
            (message(b"abc")[..4].to_vec(), Some(trailers))
        );
    }

    #[tokio::test]
    async fn an_oversized_first_message_fails_at_its_prefix() {
        use crate::limit::LimitedBody;
        let (tx, body) = channel_body();
        // Only the prefix is sent: the 1000 declared bytes never come.
        tx.send(data(&message(&[7; 1000])[..5])).await.unwrap();
        let status = read_first_message(Body::new(LimitedBody::new(body, 100)))
            .await
            .err()
            .unwrap();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
        assert!(status.message().contains("1000 bytes"), "{status:?}");
    }

    /// A service that answers `/…/Slow` once its release fires, and everything else at
    /// once; each answer's body has data, so its slot lasts until the body is dropped.
    fn slow_service(
        release: oneshot::Receiver<()>,
    ) -> impl Service<
        Request<Body>,
        Response = Response<Body>,
        Error = Infallible,
        Future = impl Future<Output = Result<Response<Body>, Infallible>> + Send + 'static,
    > + Clone
           + Send
           + 'static {
        let release = Arc::new(std::sync::Mutex::new(Some(release)));
        tower::service_fn(move |request: Request<Body>| {
            let wait = if request.uri().path().ends_with("/Slow") {
                release.lock().unwrap().take()
            } else {
                None
            };
            async move {
                if let Some(wait) = wait {
                    let _ = wait.await;
                }
                let body = Body::new(http_body_util::Full::new(Bytes::from_static(b"answer")));
                Ok::<_, Infallible>(Response::new(body))
            }
        })
    }

    fn call(path: &str, tenant: &str, body: Body) -> Request<Body> {
        let mut request = Request::builder().uri(path).body(body).unwrap();
        let tenant = crate::auth::ApiKeys::parse(&crate::auth::key_line("k", tenant).unwrap())
            .unwrap()
            .tenant_for_key("k")
            .unwrap();
        request.extensions_mut().insert(tenant);
        request
    }

    fn with_message() -> Body {
        Body::new(http_body_util::Full::new(Bytes::from(message(b"m"))))
    }

    #[tokio::test]
    async fn a_call_beyond_the_limit_is_shed_at_once_and_health_never_is() {
        let (release_tx, release_rx) = oneshot::channel::<()>();
        let mut service = ConcurrencyLimitLayer::new(1, 1).layer(slow_service(release_rx));
        let compute = || call("/kpi.v1.MetricsService/Compute", "a", with_message());

        let slow =
            tokio::spawn(service.call(call("/kpi.v1.MetricsService/Slow", "a", with_message())));
        tokio::task::yield_now().await;
        let shed = service.call(compute()).await.unwrap();
        let status = status_of(&shed).unwrap();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.message().contains("at most 1 request"), "{status:?}");
        let health = service
            .call(call("/grpc.health.v1.Health/Check", "a", Body::empty()))
            .await
            .unwrap();
        assert!(status_of(&health).is_none(), "served");

        release_tx.send(()).unwrap();
        let slow = slow.await.unwrap().unwrap();
        // The slot is held until the body is dropped.
        let shed = service.call(compute()).await.unwrap();
        assert_eq!(
            status_of(&shed).unwrap().code(),
            tonic::Code::ResourceExhausted
        );
        drop(slow);
        let ok = service.call(compute()).await.unwrap();
        assert!(status_of(&ok).is_none(), "served");
    }

    #[tokio::test]
    async fn one_tenant_is_shed_at_its_own_limit_while_others_are_served() {
        let (release_tx, release_rx) = oneshot::channel::<()>();
        let mut service = ConcurrencyLimitLayer::new(4, 1).layer(slow_service(release_rx));
        let slow =
            tokio::spawn(service.call(call("/kpi.v1.MetricsService/Slow", "acme", with_message())));
        tokio::task::yield_now().await;
        let shed = service
            .call(call(
                "/kpi.v1.MetricsService/Compute",
                "acme",
                with_message(),
            ))
            .await
            .unwrap();
        let status = status_of(&shed).unwrap();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(
            status.message().contains("tenant acme")
                && status
                    .message()
                    .contains("--max-concurrent-requests-per-tenant"),
            "{status:?}"
        );
        let other = service
            .call(call(
                "/kpi.v1.MetricsService/Compute",
                "globex",
                with_message(),
            ))
            .await
            .unwrap();
        assert!(status_of(&other).is_none(), "another tenant is served");

        release_tx.send(()).unwrap();
        drop(slow.await.unwrap().unwrap());
        let again = service
            .call(call(
                "/kpi.v1.MetricsService/Compute",
                "acme",
                with_message(),
            ))
            .await
            .unwrap();
        assert!(status_of(&again).is_none(), "the tenant's slot came back");
        drop((other, again));
        assert!(
            service.layer.tenants.in_use.lock().unwrap().is_empty(),
            "idle tenants are forgotten"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_without_its_message_holds_no_slot_and_times_out() {
        let (_release_tx, release_rx) = oneshot::channel::<()>();
        let mut service = ConcurrencyLimitLayer::new(1, 1).layer(slow_service(release_rx));
        // Headers only, and a body that never sends anything.
        let (silent_tx, silent_body) = channel_body();
        let started = tokio::time::Instant::now();
        let silent =
            tokio::spawn(service.call(call("/kpi.v1.MetricsService/Compute", "a", silent_body)));
        tokio::task::yield_now().await;
        let served = service
            .call(call("/kpi.v1.MetricsService/Compute", "a", with_message()))
            .await
            .unwrap();
        assert!(status_of(&served).is_none(), "the only slot was free");
        drop(served);

        let silent = silent.await.unwrap().unwrap();
        let status = status_of(&silent).unwrap();
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
        assert_eq!(started.elapsed(), FIRST_MESSAGE_TIMEOUT);
        drop(silent_tx);
    }
}
