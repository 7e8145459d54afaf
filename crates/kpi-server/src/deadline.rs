//! Deadlines: a tower layer that reads the caller's `grpc-timeout` (and the server's own
//! request timeout, whichever is sooner) and answers DEADLINE_EXCEEDED when it passes.
//!
//! The handler's future is dropped at the deadline; a compute handler's drop guard then
//! sets the engine's cancellation flag, so the computation on the blocking pool stops
//! between rows instead of running on for nobody. A raced request carries [`Raced`] in
//! its extensions, which keeps its computation on the blocking pool (a Compute with no
//! deadline runs in place, where nothing could drop it midway).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderMap, Request, Response};
use tonic::body::Body;
use tonic::Status;
use tower::{Layer, Service};

/// The gRPC deadline header.
const GRPC_TIMEOUT: &str = "grpc-timeout";

/// In a request's extensions when a deadline races it: its handler may be dropped midway,
/// so it must not compute in place (`rpc::compute`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Raced;

/// Applies [`Deadline`] to a service.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeadlineLayer {
    /// The longest any request may run, whatever its caller asked.
    pub(crate) server_timeout: Option<Duration>,
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deadline {
            inner,
            server_timeout: self.server_timeout,
        }
    }
}

/// Races each request against its deadline; see the module docs.
#[derive(Debug, Clone)]
pub(crate) struct Deadline<S> {
    inner: S,
    server_timeout: Option<Duration>,
}

impl<S, B> Service<Request<B>> for Deadline<S>
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
        let timeout = match (grpc_timeout(request.headers()), self.server_timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let Some(timeout) = timeout else {
            return Box::pin(self.inner.call(request));
        };
        let mut request = request;
        request.extensions_mut().insert(Raced);
        let response = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout(timeout, response).await {
                Ok(response) => response,
                Err(_) => {
                    tracing::debug!(
                        timeout_ms = timeout.as_millis() as u64,
                        "deadline passed: the request was abandoned"
                    );
                    Ok(Status::deadline_exceeded(format!(
                        "the deadline of {} passed before the server answered",
                        describe(timeout)
                    ))
                    .into_http())
                }
            }
        })
    }
}

fn describe(timeout: Duration) -> String {
    if timeout >= Duration::from_secs(1) {
        format!("{:.3} s", timeout.as_secs_f64())
    } else {
        format!("{} ms", timeout.as_secs_f64() * 1000.0)
    }
}

/// The request's `grpc-timeout`: 1 to 8 ASCII digits and a unit, `H` (hours), `M`
/// (minutes), `S` (seconds), `m` (milliseconds), `u` (microseconds) or `n` (nanoseconds).
/// A malformed value is ignored, as other gRPC servers do.
fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(GRPC_TIMEOUT)?;
    let parsed = parse_grpc_timeout(value.as_bytes());
    if parsed.is_none() {
        tracing::debug!(value = ?value, "ignoring a malformed grpc-timeout header");
    }
    parsed
}

fn parse_grpc_timeout(value: &[u8]) -> Option<Duration> {
    let (unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let amount: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(amount * 3600),
        b'M' => Duration::from_secs(amount * 60),
        b'S' => Duration::from_secs(amount),
        b'm' => Duration::from_millis(amount),
        b'u' => Duration::from_micros(amount),
        b'n' => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_units_parse() {
        assert_eq!(parse_grpc_timeout(b"2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout(b"3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout(b"10S"), Some(Duration::from_secs(10)));
        assert_eq!(
            parse_grpc_timeout(b"250m"),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_grpc_timeout(b"7u"), Some(Duration::from_micros(7)));
        assert_eq!(
            parse_grpc_timeout(b"99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
    }

    #[test]
    fn malformed_grpc_timeouts_are_ignored() {
        for bad in [
            &b""[..],
            b"m",
            b"10",
            b"10s",
            b"123456789m",
            b"-1S",
            b"1.5S",
        ] {
            assert_eq!(
                parse_grpc_timeout(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    fn service(
        delay: Duration,
    ) -> impl Service<
        Request<()>,
        Response = Response<Body>,
        Error = Infallible,
        Future = impl Future<Output = Result<Response<Body>, Infallible>> + Send + 'static,
    > + Clone {
        tower::service_fn(move |_request: Request<()>| async move {
            tokio::time::sleep(delay).await;
            Ok::<_, Infallible>(Response::new(Body::empty()))
        })
    }

    fn status_of(response: &Response<Body>) -> Option<tonic::Code> {
        Status::from_header_map(response.headers()).map(|s| s.code())
    }

    #[tokio::test(start_paused = true)]
    async fn the_sooner_of_caller_and_server_deadline_applies() {
        use tower::ServiceExt as _;
        let slow = service(Duration::from_secs(5));

        let mut request = Request::new(());
        request
            .headers_mut()
            .insert(GRPC_TIMEOUT, "100m".parse().unwrap());
        let layer = DeadlineLayer {
            server_timeout: Some(Duration::from_secs(60)),
        };
        let response = layer.layer(slow.clone()).oneshot(request).await.unwrap();
        assert_eq!(status_of(&response), Some(tonic::Code::DeadlineExceeded));

        let layer = DeadlineLayer {
            server_timeout: Some(Duration::from_secs(1)),
        };
        let started = tokio::time::Instant::now();
        let response = layer
            .layer(slow.clone())
            .oneshot(Request::new(()))
            .await
            .unwrap();
        assert_eq!(status_of(&response), Some(tonic::Code::DeadlineExceeded));
        assert_eq!(started.elapsed(), Duration::from_secs(1));

        let layer = DeadlineLayer {
            server_timeout: None,
        };
        let response = layer.layer(slow).oneshot(Request::new(())).await.unwrap();
        assert_eq!(status_of(&response), None, "no deadline: the answer comes");
    }
}
