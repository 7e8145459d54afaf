//! The dashboard page on kpid's serving port: [`DashboardPage`] holds the page (built from
//! `web/` into `dashboard/index.html`, committed, embedded here), and [`ServeDashboard`]
//! answers a plain `GET /` with it in front of the gRPC stack. Every other request, which
//! includes every gRPC and grpc-web call (they are POSTs), goes straight to the stack: the
//! page adds one method comparison to the RPC path and no layer.
//!
//! The page holds no data: it calls kpid through grpc-web from the browser, with the
//! user's API key when the server needs one, like any other client.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use base64::Engine as _;
use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use sha2::{Digest as _, Sha256};
use tonic::body::Body;
use tower::Service;

/// The built page: `web/` bundled into one self-contained HTML file by `npm run build`.
const PAGE: &str = include_str!("../dashboard/index.html");

/// The placeholder of the page's suggested window, filled in by
/// [`DashboardPage::suggesting`].
const WINDOW_PLACEHOLDER: &str = r#"<meta name="kpid-window" content="">"#;

/// The dashboard page kpid serves on `GET /`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardPage {
    html: Bytes,
    content_security_policy: HeaderValue,
}

impl Default for DashboardPage {
    /// The page as built; it opens on the twelve whole months before the current one.
    fn default() -> Self {
        Self {
            html: Bytes::from_static(PAGE.as_bytes()),
            content_security_policy: content_security_policy(PAGE),
        }
    }
}

impl DashboardPage {
    /// The page opening on the window `[start, end)` (the demo's data) unless its URL
    /// names another.
    pub fn suggesting(start: jiff::Timestamp, end: jiff::Timestamp) -> Self {
        let meta = format!(r#"<meta name="kpid-window" content="{start}/{end}">"#);
        Self {
            html: Bytes::from(PAGE.replacen(WINDOW_PLACEHOLDER, &meta, 1)),
            // The window is in a meta tag, not in the script or the style.
            content_security_policy: content_security_policy(PAGE),
        }
    }

    fn response(&self, method: &Method) -> Response<Body> {
        let body = if method == Method::HEAD {
            Body::empty()
        } else {
            Body::new(http_body_util::Full::new(self.html.clone()))
        };
        let mut response = Response::new(body);
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(
            CONTENT_SECURITY_POLICY,
            self.content_security_policy.clone(),
        );
        headers.insert(
            http::header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        *response.status_mut() = StatusCode::OK;
        response
    }
}

/// What `page` may run and load: its own inline script and style, named by their SHA-256
/// (nothing injected would run), calls to its own origin, `data:` images.
fn content_security_policy(page: &str) -> HeaderValue {
    let script = inline_sha256(page, r#"<script type="module">"#, "</script>");
    let style = inline_sha256(page, "<style>", "</style>");
    let policy = format!(
        "default-src 'none'; script-src {script}; style-src {style}; connect-src 'self'; \
         img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    );
    HeaderValue::from_str(&policy).expect("hashes and keywords are visible ASCII")
}

/// `'sha256-…'` of the text between `open` and the next `close` in `page`, which the build
/// (`web/build.mjs`) writes once each.
fn inline_sha256(page: &str, open: &str, close: &str) -> String {
    let start = page
        .find(open)
        .expect("the built page has its inline element")
        + open.len();
    let length = page[start..]
        .find(close)
        .expect("the built page closes its inline element");
    let digest = Sha256::digest(&page.as_bytes()[start..start + length]);
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// Whether `request` asks for the page: a GET (or HEAD) of `/` or `/index.html`. gRPC and
/// grpc-web calls are POSTs, so they never match.
fn asks_for_page<B>(request: &Request<B>) -> bool {
    (request.method() == Method::GET || request.method() == Method::HEAD)
        && matches!(request.uri().path(), "/" | "/index.html")
}

/// `inner` (kpid's gRPC stack), with `page` answering the requests for it when set.
#[derive(Debug, Clone)]
pub(crate) struct ServeDashboard<S> {
    pub(crate) page: Option<DashboardPage>,
    pub(crate) inner: S,
}

impl<S, B> Service<Request<B>> for ServeDashboard<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = DashboardFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        match &self.page {
            Some(page) if asks_for_page(&request) => DashboardFuture::Page {
                response: Some(page.response(request.method())),
            },
            _ => DashboardFuture::Inner {
                future: self.inner.call(request),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of [`ServeDashboard`]: the page at once, or the gRPC stack's answer.
    #[project = DashboardFutureProjection]
    pub(crate) enum DashboardFuture<F> {
        Page { response: Option<Response<Body>> },
        Inner { #[pin] future: F },
    }
}

impl<F> Future for DashboardFuture<F>
where
    F: Future<Output = Result<Response<Body>, Infallible>>,
{
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            DashboardFutureProjection::Page { response } => {
                Poll::Ready(Ok(response.take().expect("polled after completion")))
            }
            DashboardFutureProjection::Inner { future } => future.poll(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    use super::*;

    /// A stand-in for the gRPC stack: answers 418 to everything it is given.
    fn grpc_stack() -> impl Service<
        Request<Body>,
        Response = Response<Body>,
        Error = Infallible,
        Future: Send + 'static,
    > + Clone {
        tower::service_fn(|_: Request<Body>| async {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::IM_A_TEAPOT;
            Ok::<_, Infallible>(response)
        })
    }

    async fn answer(page: Option<DashboardPage>, method: Method, path: &str) -> Response<Body> {
        let service = ServeDashboard {
            page,
            inner: grpc_stack(),
        };
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        service.oneshot(request).await.unwrap()
    }

    #[tokio::test]
    async fn get_of_the_root_answers_the_page() {
        let response = answer(Some(DashboardPage::default()), Method::GET, "/").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, PAGE.as_bytes());
    }

    #[tokio::test]
    async fn rpcs_and_other_paths_reach_the_grpc_stack() {
        for (method, path) in [
            (Method::POST, "/"),
            (Method::POST, "/kpi.v1.MetricsService/Compute"),
            (Method::GET, "/kpi.v1.MetricsService/Compute"),
            (Method::GET, "/favicon.ico"),
            (Method::OPTIONS, "/"),
        ] {
            let response = answer(Some(DashboardPage::default()), method.clone(), path).await;
            assert_eq!(
                response.status(),
                StatusCode::IM_A_TEAPOT,
                "{method} {path}"
            );
        }
    }

    #[tokio::test]
    async fn without_a_page_everything_reaches_the_grpc_stack() {
        let response = answer(None, Method::GET, "/").await;
        assert_eq!(response.status(), StatusCode::IM_A_TEAPOT);
    }

    #[test]
    fn only_the_pages_own_script_and_style_may_run() {
        let page = DashboardPage::default();
        let policy = page.content_security_policy.to_str().unwrap();
        assert!(!policy.contains("unsafe"), "{policy}");
        let script_hashes = policy.split("script-src ").nth(1).unwrap();
        assert!(script_hashes.starts_with("'sha256-"), "{policy}");
        // The hash of "<style>x</style>"'s text, `x`: `printf x | sha256sum | xxd -r -p | base64`.
        assert_eq!(
            inline_sha256("<style>x</style>", "<style>", "</style>"),
            "'sha256-LXEWQrcmsEQBYnyp+6wy9chTD7GQPMTbAiWHF5IaSIE='"
        );
        let start: jiff::Timestamp = "2023-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(
            DashboardPage::suggesting(start, start).content_security_policy,
            page.content_security_policy
        );
    }

    #[test]
    fn the_built_page_is_self_contained() {
        assert!(PAGE.contains(WINDOW_PLACEHOLDER));
        // Nothing fetched from elsewhere at run time.
        for reference in ["src=\"http", "href=\"http", "@import", "//cdn"] {
            assert!(!PAGE.contains(reference), "the page references {reference}");
        }
    }

    #[test]
    fn a_suggested_window_is_written_into_the_page() {
        let start: jiff::Timestamp = "2023-01-01T00:00:00Z".parse().unwrap();
        let end: jiff::Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
        let page = DashboardPage::suggesting(start, end);
        let html = std::str::from_utf8(&page.html).unwrap();
        assert!(html.contains(
            r#"<meta name="kpid-window" content="2023-01-01T00:00:00Z/2025-01-01T00:00:00Z">"#
        ));
        assert!(!html.contains(WINDOW_PLACEHOLDER));
    }
}
