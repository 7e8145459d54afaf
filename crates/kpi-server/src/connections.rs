//! Connection bookkeeping for the accept loop: how many connections are open, which have
//! not sent their first bytes yet, which have no request in flight, and what to do about
//! them.
//!
//! Every accepted connection takes a [`Slot`] ([`Connections::admit`]) for its lifetime.
//! A connection that has not sent the 24 bytes of the HTTP/2 preface (or as much of an
//! HTTP/1 request) within the handshake timeout is closed at once; one with no request in
//! flight for the idle timeout gets a graceful shutdown (GOAWAY for HTTP/2). At the
//! connection limit a new connection evicts the oldest one still in its handshake, else the
//! longest-idle one; only when every connection has a request in flight is the new one
//! closed. Requests are counted by wrapping the service ([`Slot::service`]): a request is in
//! flight from the call until its response body is finished or dropped.
//!
//! [`Connections::shutdown`] turns every connection to a graceful shutdown and waits for
//! them all: a connection is never dropped while a request on it is in flight, so a
//! request the server accepted is answered.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use hyper_util::server::graceful::GracefulConnection;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

/// The limits on connections (see `ServerConfig::connections`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most connections open at once (each holds one file descriptor).
    pub max_connections: usize,
    /// How long a new connection may take to send its first request bytes (the HTTP/2
    /// preface or an HTTP/1 request line), its TLS handshake included.
    pub handshake_timeout: Duration,
    /// How long a connection may stay without a request in flight before it is closed
    /// gracefully.
    pub idle_timeout: Duration,
}

impl ConnectionLimits {
    /// The default for [`ConnectionLimits::max_connections`].
    pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
    /// The default for [`ConnectionLimits::handshake_timeout`].
    pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
    /// The default for [`ConnectionLimits::idle_timeout`].
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
}

impl Default for ConnectionLimits {
    /// 4096 connections, 10 s to send the first request bytes, 5 minutes idle.
    fn default() -> Self {
        Self {
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            handshake_timeout: Self::DEFAULT_HANDSHAKE_TIMEOUT,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// Bytes a client must send before its connection counts as started: the length of the
/// HTTP/2 connection preface, which is also the most hyper reads to tell HTTP/1 from
/// HTTP/2.
const PREFACE_BYTES: usize = 24;

/// How long a connection told to shut down gracefully, with no request in flight, may
/// take to close (the client's answer to the GOAWAY's PING) before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The open connections of one listener.
#[derive(Clone)]
pub(crate) struct Connections {
    shared: Arc<Shared>,
}

struct Shared {
    limits: ConnectionLimits,
    /// The connections that count against the limit (an evicted one leaves at once).
    table: Mutex<Vec<Arc<Conn>>>,
    /// Connection tasks still running, evicted ones included.
    live: AtomicUsize,
    /// Notified when `live` drops to zero.
    drained: Notify,
    /// True once the server shuts down.
    stop: watch::Sender<bool>,
}

/// One connection's state, shared by its task, its service and its IO.
struct Conn {
    accepted: Instant,
    /// Sent its first request bytes (or a request).
    started: AtomicBool,
    in_flight: AtomicUsize,
    /// When `in_flight` last dropped to zero (or the connection started).
    idle_since: Mutex<Instant>,
    /// Told to close by [`Connections::admit`] to make room.
    evicted: AtomicBool,
    /// Woken on every change above.
    wake: Notify,
}

impl Conn {
    fn start(&self) {
        if !self.started.swap(true, Ordering::AcqRel) {
            *lock(&self.idle_since) = Instant::now();
            self.wake.notify_one();
        }
    }

    fn is_idle(&self) -> bool {
        self.started.load(Ordering::Acquire) && self.in_flight.load(Ordering::Acquire) == 0
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Connections {
    pub(crate) fn new(limits: ConnectionLimits) -> Self {
        Self {
            shared: Arc::new(Shared {
                limits,
                table: Mutex::new(Vec::new()),
                live: AtomicUsize::new(0),
                drained: Notify::new(),
                stop: watch::Sender::new(false),
            }),
        }
    }

    /// A slot for a connection just accepted, evicting one at the limit; `None` when every
    /// connection has a request in flight (close the new one).
    pub(crate) fn admit(&self) -> Option<Slot> {
        let mut table = lock(&self.shared.table);
        if table.len() >= self.shared.limits.max_connections.max(1) {
            let victim = eviction_candidate(&table)?;
            let evicted = table.swap_remove(victim);
            evicted.evicted.store(true, Ordering::Release);
            evicted.wake.notify_one();
            tracing::debug!(
                handshaking = !evicted.started.load(Ordering::Acquire),
                "connection limit reached: closing a connection to make room"
            );
        }
        let now = Instant::now();
        let conn = Arc::new(Conn {
            accepted: now,
            started: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            idle_since: Mutex::new(now),
            evicted: AtomicBool::new(false),
            wake: Notify::new(),
        });
        table.push(conn.clone());
        self.shared.live.fetch_add(1, Ordering::AcqRel);
        Some(Slot {
            conn,
            shared: self.shared.clone(),
        })
    }

    /// Turns every connection to a graceful shutdown and completes once all have closed.
    pub(crate) async fn shutdown(&self) {
        self.shared.stop.send_replace(true);
        loop {
            let drained = self.shared.drained.notified();
            let mut drained = std::pin::pin!(drained);
            drained.as_mut().enable();
            if self.shared.live.load(Ordering::Acquire) == 0 {
                return;
            }
            drained.await;
        }
    }
}

/// The index of the connection to evict: the oldest still in its handshake, else the
/// longest idle; `None` when every connection has a request in flight.
fn eviction_candidate(table: &[Arc<Conn>]) -> Option<usize> {
    let handshaking = table
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.started.load(Ordering::Acquire))
        .min_by_key(|(_, c)| c.accepted);
    if let Some((i, _)) = handshaking {
        return Some(i);
    }
    table
        .iter()
        .enumerate()
        .filter(|(_, c)| c.is_idle())
        .min_by_key(|(_, c)| *lock(&c.idle_since))
        .map(|(i, _)| i)
}

/// One admitted connection; dropping it frees its place.
pub(crate) struct Slot {
    conn: Arc<Conn>,
    shared: Arc<Shared>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        lock(&self.shared.table).retain(|c| !Arc::ptr_eq(c, &self.conn));
        if self.shared.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.drained.notify_waiters();
        }
    }
}

impl Slot {
    /// When the connection must have sent its first request bytes (a TLS handshake must
    /// end by then too).
    pub(crate) fn handshake_deadline(&self) -> Instant {
        self.conn.accepted + self.shared.limits.handshake_timeout
    }

    /// `service`, counting this connection's requests in flight.
    pub(crate) fn service<S>(&self, service: S) -> TrackRequests<S> {
        TrackRequests {
            inner: service,
            conn: self.conn.clone(),
        }
    }

    /// `io`, noting when the client has sent its first request bytes.
    pub(crate) fn io<I>(&self, io: I) -> WatchFirstBytes<I> {
        WatchFirstBytes {
            inner: io,
            read: 0,
            conn: self.conn.clone(),
        }
    }

    /// Completes once the connection is evicted or the server shuts down.
    pub(crate) async fn told_to_close(&self) {
        let mut stop = self.shared.stop.subscribe();
        loop {
            let woken = self.conn.wake.notified();
            if *stop.borrow_and_update() || self.conn.evicted.load(Ordering::Acquire) {
                return;
            }
            tokio::select! {
                () = woken => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Drives `connection` to its end: closes it at once when its handshake times out or
    /// it is evicted before starting, and gracefully (GOAWAY) when it idles out, is
    /// evicted or the server shuts down. A connection shutting down gracefully is dropped
    /// once it has no request in flight for [`CLOSE_GRACE`], never while one is.
    pub(crate) async fn serve<C: GracefulConnection>(self, connection: C) -> Result<(), C::Error> {
        let mut connection = std::pin::pin!(connection);
        let mut stop = self.shared.stop.subscribe();
        let limits = self.shared.limits;
        let conn = &self.conn;
        let mut closing: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let started = conn.started.load(Ordering::Acquire);
            let idle = conn.is_idle();
            let told_to_close = *stop.borrow_and_update() || conn.evicted.load(Ordering::Acquire);
            let deadline = match closing {
                Some(since) if idle => {
                    // From the GOAWAY, or from the end of the last request.
                    let until = since.max(*lock(&conn.idle_since)) + CLOSE_GRACE;
                    if now >= until {
                        return Ok(());
                    }
                    Some(until)
                }
                Some(_) => None,
                None if !started => {
                    if told_to_close {
                        return Ok(());
                    }
                    if now >= self.handshake_deadline() {
                        tracing::debug!("no request bytes within the handshake timeout");
                        return Ok(());
                    }
                    Some(self.handshake_deadline())
                }
                None => {
                    let idle_until = *lock(&conn.idle_since) + limits.idle_timeout;
                    if told_to_close || (idle && now >= idle_until) {
                        if !told_to_close {
                            tracing::debug!("idle timeout: closing the connection");
                        }
                        connection.as_mut().graceful_shutdown();
                        closing = Some(now);
                        continue;
                    }
                    idle.then_some(idle_until)
                }
            };
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                result = connection.as_mut() => return result,
                () = conn.wake.notified() => {}
                _ = stop.changed(), if closing.is_none() => {}
                () = sleep => {}
            }
        }
    }
}

/// A service that counts its connection's requests in flight (see [`Slot::service`]).
#[derive(Clone)]
pub(crate) struct TrackRequests<S> {
    inner: S,
    conn: Arc<Conn>,
}

/// Holds one request in flight until dropped.
struct InFlight(Arc<Conn>);

impl InFlight {
    fn new(conn: Arc<Conn>) -> Self {
        conn.start();
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(conn)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // Idle from now on if it was the last one.
        *lock(&self.0.idle_since) = Instant::now();
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.wake.notify_one();
        }
    }
}

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for TrackRequests<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<TrackedBody<ResBody>>;
    type Error = S::Error;
    type Future = TrackedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let in_flight = InFlight::new(self.conn.clone());
        TrackedFuture {
            inner: self.inner.call(request),
            in_flight: Some(in_flight),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`TrackRequests`]: the request stays in flight in the body.
    pub(crate) struct TrackedFuture<F> {
        #[pin]
        inner: F,
        in_flight: Option<InFlight>,
    }
}

impl<F, B, E> Future for TrackedFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<TrackedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = std::task::ready!(this.inner.poll(cx))?;
        let in_flight = this.in_flight.take();
        Poll::Ready(Ok(response.map(|inner| TrackedBody {
            inner,
            _in_flight: in_flight,
        })))
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its request in flight until it ends or is dropped.
    pub(crate) struct TrackedBody<B> {
        #[pin]
        inner: B,
        _in_flight: Option<InFlight>,
    }
}

impl<B: http_body::Body> http_body::Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// An IO that marks its connection started once [`PREFACE_BYTES`] have been read.
    pub(crate) struct WatchFirstBytes<I> {
        #[pin]
        inner: I,
        read: usize,
        conn: Arc<Conn>,
    }
}

impl<I: AsyncRead> AsyncRead for WatchFirstBytes<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let result = this.inner.poll_read(cx, buf);
        if *this.read < PREFACE_BYTES {
            *this.read += buf.filled().len() - before;
            if *this.read >= PREFACE_BYTES {
                this.conn.start();
            }
        }
        result
    }
}

impl<I: AsyncWrite> AsyncWrite for WatchFirstBytes<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Raises this process's soft limit on open files (RLIMIT_NOFILE) to its hard limit, so
/// that every connection kpid admits can have its file descriptor. Returns the soft limit
/// now in force.
#[cfg(unix)]
pub fn raise_open_file_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass it and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads the struct we pass it; raising the soft limit up to the
        // hard limit needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        limit = raised;
    }
    // rlim_t is u64 on Linux but not on every unix.
    #[allow(clippy::useless_conversion)]
    Ok(u64::try_from(limit.rlim_cur).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_connections: usize) -> ConnectionLimits {
        ConnectionLimits {
            max_connections,
            ..ConnectionLimits::default()
        }
    }

    #[tokio::test]
    async fn at_the_limit_the_oldest_handshaking_then_the_longest_idle_is_evicted() {
        let connections = Connections::new(limits(3));
        let busy = connections.admit().unwrap();
        let _busy_request = InFlight::new(busy.conn.clone());
        let idle_old = connections.admit().unwrap();
        idle_old.conn.start();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let handshaking = connections.admit().unwrap();

        // Full: the handshaking one goes first, though it is the newest.
        let fourth = connections.admit().unwrap();
        assert!(handshaking.conn.evicted.load(Ordering::Acquire));
        fourth.conn.start();

        // Then the longest idle, never the busy one.
        let fifth = connections.admit().unwrap();
        assert!(idle_old.conn.evicted.load(Ordering::Acquire));
        fifth.conn.start();
        let sixth = connections.admit().unwrap();
        assert!(fourth.conn.evicted.load(Ordering::Acquire));
        let _fifth_request = InFlight::new(fifth.conn.clone());
        sixth.conn.start();
        let _sixth_request = InFlight::new(sixth.conn.clone());

        // Every connection busy: the new one is refused.
        assert!(connections.admit().is_none());
        assert!(!busy.conn.evicted.load(Ordering::Acquire));
    }

    #[tokio::test]
    async fn shutdown_waits_for_every_slot() {
        let connections = Connections::new(limits(10));
        let slot = connections.admit().unwrap();
        let shutdown = tokio::spawn({
            let connections = connections.clone();
            async move { connections.shutdown().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!shutdown.is_finished());
        drop(slot);
        tokio::time::timeout(Duration::from_secs(5), shutdown)
            .await
            .expect("shutdown completes once the last slot is gone")
            .unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_limit() {
        let soft = raise_open_file_limit().unwrap();
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes the struct we pass it.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        #[allow(clippy::useless_conversion)]
        let hard = u64::try_from(limit.rlim_max).unwrap();
        assert_eq!(soft, hard);
        assert_eq!(limit.rlim_cur, limit.rlim_max);
    }
}
