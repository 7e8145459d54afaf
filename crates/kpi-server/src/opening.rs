//! A service that exists before its store does: until the record store is open, its
//! requests are answered UNAVAILABLE (which clients retry), and health says NOT_SERVING.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use http::{Request, Response};
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::Status;
use tower::{Service, ServiceExt as _};

/// Routes to the service in its cell once it is set.
#[derive(Debug)]
pub(crate) struct Opening<S> {
    cell: Arc<OnceLock<S>>,
}

impl<S> Clone for Opening<S> {
    fn clone(&self) -> Self {
        Self {
            cell: self.cell.clone(),
        }
    }
}

impl<S> Opening<S> {
    /// A service answering UNAVAILABLE until `cell` is set.
    pub(crate) fn new(cell: Arc<OnceLock<S>>) -> Self {
        Self { cell }
    }
}

impl<S: NamedService> NamedService for Opening<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<Request<Body>> for Opening<S>
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

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        match self.cell.get() {
            Some(service) => Box::pin(service.clone().oneshot(request)),
            None => Box::pin(std::future::ready(Ok(Status::unavailable(
                "the record store is still opening; retry shortly",
            )
            .into_http()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone)]
    struct Answer;

    impl NamedService for Answer {
        const NAME: &'static str = "test.Answer";
    }

    impl Service<Request<Body>> for Answer {
        type Response = Response<Body>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Response<Body>, Infallible>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _request: Request<Body>) -> Self::Future {
            std::future::ready(Ok(Status::already_exists("answered").into_http()))
        }
    }

    #[tokio::test]
    async fn unavailable_until_the_service_is_set() {
        let cell = Arc::new(OnceLock::new());
        let opening = Opening::new(cell.clone());
        assert_eq!(<Opening<Answer> as NamedService>::NAME, "test.Answer");
        let code =
            |response: Response<Body>| Status::from_header_map(response.headers()).unwrap().code();
        let before = opening
            .clone()
            .oneshot(Request::new(Body::empty()))
            .await
            .unwrap();
        assert_eq!(code(before), tonic::Code::Unavailable);
        assert!(cell.set(Answer).is_ok());
        let after = opening.oneshot(Request::new(Body::empty())).await.unwrap();
        assert_eq!(code(after), tonic::Code::AlreadyExists);
    }
}
