//! The request message limit: a tower layer that reads the gRPC length prefix of every
//! request message as the body streams in and fails the request with RESOURCE_EXHAUSTED
//! (the code other gRPC servers use) as soon as one message declares more bytes than the
//! limit, before any of it is buffered.
//!
//! tonic checks the same limit itself but answers OUT_OF_RANGE; this layer sees the
//! prefix first. The decompressed size of a compressed message is bounded by tonic's
//! `max_decoding_message_size`, which already answers RESOURCE_EXHAUSTED.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf as _, Bytes};
use http::Request;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::body::Body;
use tonic::Status;
use tower::{Layer, Service};

/// Applies [`MessageLimit`] to a service.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MessageLimitLayer {
    /// Largest request message, in bytes.
    pub(crate) max_bytes: usize,
}

impl<S> Layer<S> for MessageLimitLayer {
    type Service = MessageLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MessageLimit {
            inner,
            max_bytes: self.max_bytes,
        }
    }
}

/// Wraps each request body in a [`LimitedBody`].
#[derive(Debug, Clone)]
pub(crate) struct MessageLimit<S> {
    inner: S,
    max_bytes: usize,
}

impl<S> Service<Request<Body>> for MessageLimit<S>
where
    S: Service<Request<Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let max_bytes = self.max_bytes;
        self.inner
            .call(request.map(|body| Body::new(LimitedBody::new(body, max_bytes))))
    }
}

/// Where the reader is in the stream of length-prefixed messages. Only the prefixes are
/// read: a compressed message's prefix gives its compressed length, which is what arrives.
#[derive(Debug, Default)]
pub(crate) struct Framing {
    /// Bytes of the current 5-byte prefix (compression flag, big-endian length) seen.
    prefix: [u8; 5],
    prefix_len: usize,
    /// Bytes of the current message still to come.
    remaining: u64,
    /// Messages whose last byte has been seen.
    complete: u64,
}

impl Framing {
    /// How many messages have arrived whole.
    pub(crate) fn complete_messages(&self) -> u64 {
        self.complete
    }

    /// Follows `chunk`; the declared length of the first message over `max_bytes`.
    pub(crate) fn advance(&mut self, mut chunk: &[u8], max_bytes: usize) -> Result<(), u64> {
        while !chunk.is_empty() {
            if self.remaining > 0 {
                let skip = usize::try_from(self.remaining)
                    .unwrap_or(usize::MAX)
                    .min(chunk.len());
                chunk.advance(skip);
                self.remaining -= skip as u64;
                if self.remaining == 0 {
                    self.complete += 1;
                }
                continue;
            }
            let take = (5 - self.prefix_len).min(chunk.len());
            self.prefix[self.prefix_len..self.prefix_len + take].copy_from_slice(&chunk[..take]);
            self.prefix_len += take;
            chunk.advance(take);
            if self.prefix_len == 5 {
                let declared = u64::from(u32::from_be_bytes([
                    self.prefix[1],
                    self.prefix[2],
                    self.prefix[3],
                    self.prefix[4],
                ]));
                if declared > max_bytes as u64 {
                    return Err(declared);
                }
                self.prefix_len = 0;
                self.remaining = declared;
                if declared == 0 {
                    self.complete += 1;
                }
            }
        }
        Ok(())
    }
}

pin_project_lite::pin_project! {
    /// A request body that fails with RESOURCE_EXHAUSTED at the prefix of a message over
    /// the limit.
    pub(crate) struct LimitedBody<B> {
        #[pin]
        inner: B,
        framing: Framing,
        max_bytes: usize,
        failed: bool,
    }
}

impl<B> LimitedBody<B> {
    pub(crate) fn new(inner: B, max_bytes: usize) -> Self {
        Self {
            inner,
            framing: Framing::default(),
            max_bytes,
            failed: false,
        }
    }
}

impl<B> HttpBody for LimitedBody<B>
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
        if *this.failed {
            return Poll::Ready(None);
        }
        let frame = match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        if let Some(data) = frame.data_ref() {
            if let Err(declared) = this.framing.advance(data, *this.max_bytes) {
                *this.failed = true;
                return Poll::Ready(Some(Err(Status::resource_exhausted(format!(
                    "a request message of {declared} bytes is larger than this server accepts \
                     ({} bytes; see --max-message-bytes)",
                    this.max_bytes
                )))));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(len: u32) -> Vec<u8> {
        let mut bytes = vec![0];
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend(std::iter::repeat_n(7u8, len as usize));
        bytes
    }

    #[test]
    fn messages_within_the_limit_pass_in_any_chunking() {
        let mut stream = message(10);
        stream.extend(message(0));
        stream.extend(message(10));
        for chunk_size in 1..=stream.len() {
            let mut framing = Framing::default();
            for chunk in stream.chunks(chunk_size) {
                assert_eq!(framing.advance(chunk, 10), Ok(()), "chunks of {chunk_size}");
            }
            assert_eq!((framing.prefix_len, framing.remaining), (0, 0));
            assert_eq!(framing.complete_messages(), 3, "chunks of {chunk_size}");
        }
    }

    #[test]
    fn the_first_message_over_the_limit_is_caught_at_its_prefix() {
        let mut stream = message(3);
        stream.extend(&message(11)[..5]);
        for chunk_size in 1..=stream.len() {
            let mut framing = Framing::default();
            let outcome = stream
                .chunks(chunk_size)
                .map(|chunk| framing.advance(chunk, 10))
                .find(Result::is_err);
            assert_eq!(outcome, Some(Err(11)), "chunks of {chunk_size}");
        }
    }

    #[tokio::test]
    async fn the_body_fails_with_resource_exhausted() {
        use http_body_util::BodyExt as _;
        let mut bytes = message(4);
        bytes.extend(message(100));
        let body = LimitedBody::new(Body::new(http_body_util::Full::new(Bytes::from(bytes))), 50);
        let status = body.collect().await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.message().contains("100 bytes"), "{status:?}");

        let body = LimitedBody::new(
            Body::new(http_body_util::Full::new(Bytes::from(message(50)))),
            50,
        );
        assert_eq!(body.collect().await.unwrap().to_bytes().len(), 55);
    }
}
