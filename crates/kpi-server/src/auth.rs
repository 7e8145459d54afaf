//! Authentication and tenancy: API keys map callers to tenants.
//!
//! The keys file (`kpid serve --api-keys FILE`) holds one line per key,
//! `sha256:<64 hex digits> <tenant>`: the SHA-256 of the key's UTF-8 bytes and the tenant
//! it acts as. Blank lines and lines starting with `#` are ignored, and a `#` comment may
//! follow the tenant. Keys are never stored in clear: a key is 32 random bytes (see
//! [`generate_key`]), so a plain SHA-256 cannot be reversed or brute-forced, and a leaked
//! keys file grants nothing.
//!
//! The auth layer runs before every RPC. With keys configured, every RPC of
//! `kpi.v1.MetricsService` and `kpi.v1.RecordsService` (in fact every path but gRPC health
//! checking and server reflection, which stay open) needs `authorization: Bearer KEY`;
//! a missing, unknown or malformed header answers UNAUTHENTICATED with one generic
//! message. The presented key's hash is looked up among the configured hashes (a hash
//! map: the cost does not grow with the number of keys; what its timing could tell is about
//! the SHA-256 of the attacker's own key, never about a configured key), and the match is
//! confirmed in constant time. The key's [`Tenant`] goes into the request's extensions, where the handlers read
//! it; it is recorded on the RPC's span too. Without keys every caller is
//! the tenant `default`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine as _;
use http::{HeaderMap, Request, Response};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use tonic::body::Body;
use tonic::Status;
use tower::{Layer, Service};
use tracing::Span;

/// The prefix of every key [`generate_key`] makes (it helps secret scanners spot them).
pub const KEY_PREFIX: &str = "kpid_";

/// The longest tenant name a keys file may give.
pub const MAX_TENANT_LEN: usize = 64;

/// The one message every rejected request gets: it says how to authenticate and nothing
/// about what was wrong.
const UNAUTHENTICATED: &str =
    "missing or invalid API key: send the metadata `authorization: Bearer <key>`";

/// Request paths that never need a key: health checking and server reflection.
const OPEN_PREFIXES: [&str; 3] = [
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

/// The tenant a request reads and writes: set by the auth layer in the request's
/// extensions.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Tenant(Arc<str>);

impl Tenant {
    /// The tenant of every caller when authentication is off.
    pub fn default_tenant() -> Self {
        // Made once: every request without keys is this tenant.
        static DEFAULT: std::sync::OnceLock<Tenant> = std::sync::OnceLock::new();
        DEFAULT
            .get_or_init(|| Tenant(Arc::from(kpi_store::DEFAULT_TENANT)))
            .clone()
    }

    /// The tenant's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The tenant of a request: the one [`AuthLayer`] authenticated, or `default` for a
/// request that did not pass through it (handlers called directly, in-process).
pub(crate) fn tenant_of<T>(request: &tonic::Request<T>) -> Tenant {
    request
        .extensions()
        .get::<Tenant>()
        .cloned()
        .unwrap_or_else(Tenant::default_tenant)
}

/// Why a keys file or a tenant name was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// The file could not be read.
    #[error("cannot read the API keys file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is malformed.
    #[error("API keys file line {line}: {reason}")]
    Line {
        /// Its number, from 1.
        line: usize,
        /// What is wrong, without the line's text (it may hold a key pasted by mistake).
        reason: String,
    },
    /// The file holds no key: every request would be refused.
    #[error("the API keys file holds no key; add one with `kpid keys add`")]
    Empty,
    /// A tenant name is not allowed.
    #[error("invalid tenant name: {0}")]
    Tenant(String),
}

/// Checks a tenant name: 1 to [`MAX_TENANT_LEN`] ASCII letters, digits, `-`, `_` or
/// `.`.
pub fn check_tenant_name(name: &str) -> Result<(), KeysError> {
    if name.is_empty() {
        return Err(KeysError::Tenant("it is empty".into()));
    }
    if name.len() > MAX_TENANT_LEN {
        return Err(KeysError::Tenant(format!(
            "it is {} bytes long; at most {MAX_TENANT_LEN} are allowed",
            name.len()
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(KeysError::Tenant(format!(
            "{c:?} is not allowed; use ASCII letters, digits, `-`, `_` and `.`"
        )));
    }
    Ok(())
}

/// SHA-256 of a key's UTF-8 bytes.
pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// A new random key: [`KEY_PREFIX`] and 32 bytes from the operating system's random
/// number generator, base64url without padding.
pub fn generate_key() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    let key = format!(
        "{KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    Ok(key)
}

/// The keys-file line for `key` acting as `tenant` (without a newline).
pub fn key_line(key: &str, tenant: &str) -> Result<String, KeysError> {
    check_tenant_name(tenant)?;
    let hex: String = hash_key(key).iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("sha256:{hex} {tenant}"))
}

/// The configured API keys: hashes and the tenant each one acts as.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeys {
    /// The tenant of each key, by the key's SHA-256.
    entries: HashMap<[u8; 32], Tenant>,
}

impl fmt::Debug for ApiKeys {
    /// The number of keys and the tenants, never the hashes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeys")
            .field("keys", &self.entries.len())
            .field("tenants", &self.tenants())
            .finish()
    }
}

impl ApiKeys {
    /// Reads and parses a keys file; see the module docs for the format.
    pub fn load(path: &Path) -> Result<Self, KeysError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeysError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses the text of a keys file; at least one key is required.
    pub fn parse(text: &str) -> Result<Self, KeysError> {
        let keys = Self::parse_lines(text)?;
        if keys.entries.is_empty() {
            return Err(KeysError::Empty);
        }
        Ok(keys)
    }

    /// Parses the text of a keys file, which may hold no key (`kpid keys add` appends to
    /// such a file).
    pub fn parse_lines(text: &str) -> Result<Self, KeysError> {
        let mut entries: HashMap<[u8; 32], Tenant> = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line_no = n + 1;
            let fail = |reason: &str| KeysError::Line {
                line: line_no,
                reason: reason.to_owned(),
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(hash), Some(tenant)) = (words.next(), words.next()) else {
                return Err(fail("expected `sha256:<64 hex digits> <tenant>`"));
            };
            if let Some(extra) = words.next() {
                if !extra.starts_with('#') {
                    return Err(fail(
                        "expected `sha256:<64 hex digits> <tenant>` and at most a `#` comment after it",
                    ));
                }
            }
            let Some(hex) = hash.strip_prefix("sha256:") else {
                return Err(fail(
                    "a key's hash must start with `sha256:`; keys are never stored in clear (see `kpid keys add`)",
                ));
            };
            let hash = parse_hex(hex).ok_or_else(|| {
                fail("the hash after `sha256:` must be exactly 64 hexadecimal digits")
            })?;
            check_tenant_name(tenant).map_err(|e| fail(&e.to_string()))?;
            if entries.insert(hash, Tenant(Arc::from(tenant))).is_some() {
                return Err(fail("this key's hash is listed twice"));
            }
        }
        Ok(ApiKeys { entries })
    }

    /// How many keys are configured.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The distinct tenants, sorted.
    pub fn tenants(&self) -> Vec<&str> {
        let mut tenants: Vec<&str> = self.entries.values().map(Tenant::as_str).collect();
        tenants.sort_unstable();
        tenants.dedup();
        tenants
    }

    /// The tenant of a presented key: its hash is looked up, and the match confirmed in
    /// constant time (see the module docs).
    pub fn tenant_for_key(&self, key: &str) -> Option<Tenant> {
        let presented = hash_key(key);
        let (hash, tenant) = self.entries.get_key_value(&presented)?;
        bool::from(hash.ct_eq(&presented)).then(|| tenant.clone())
    }

    /// The tenant of a request's `authorization: Bearer KEY` header; `None` when the
    /// header is missing, repeated, not visible ASCII, of another scheme, or names no
    /// configured key.
    pub fn authenticate(&self, headers: &HeaderMap) -> Option<Tenant> {
        let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
        let value = values.next()?;
        if values.next().is_some() {
            return None;
        }
        let value = value.to_str().ok()?;
        let (scheme, key) = value.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let key = key.trim();
        if key.is_empty() {
            return None;
        }
        self.tenant_for_key(key)
    }
}

/// 64 hex digits as 32 bytes.
fn parse_hex(hex: &str) -> Option<[u8; 32]> {
    let digits = hex.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
        let high = (pair[0] as char).to_digit(16)?;
        let low = (pair[1] as char).to_digit(16)?;
        *byte = u8::try_from(high * 16 + low).ok()?;
    }
    Some(bytes)
}

/// Whether a request path is served without a key.
pub(crate) fn is_open(path: &str) -> bool {
    OPEN_PREFIXES.iter().any(|prefix| path.starts_with(prefix))
}

/// Applies [`Auth`] to a service: `None` keys means authentication is off.
#[derive(Debug, Clone)]
pub(crate) struct AuthLayer {
    pub(crate) keys: Option<Arc<ApiKeys>>,
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth {
            inner,
            keys: self.keys.clone(),
        }
    }
}

/// Authenticates each request and puts its [`Tenant`] in the request's extensions; see
/// the module docs.
#[derive(Debug, Clone)]
pub(crate) struct Auth<S> {
    inner: S,
    keys: Option<Arc<ApiKeys>>,
}

impl<S, B> Service<Request<B>> for Auth<S>
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

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let tenant = match &self.keys {
            None => Tenant::default_tenant(),
            Some(_) if is_open(request.uri().path()) => return Box::pin(self.inner.call(request)),
            Some(keys) => match keys.authenticate(request.headers()) {
                Some(tenant) => tenant,
                None => {
                    tracing::debug!(path = request.uri().path(), "unauthenticated request");
                    return Box::pin(std::future::ready(Ok(Status::unauthenticated(
                        UNAUTHENTICATED,
                    )
                    .into_http())));
                }
            },
        };
        request.extensions_mut().insert(tenant.clone());
        let response = self.inner.call(request);
        Box::pin(async move {
            // Polled inside the RPC's span (the observability layer instruments us).
            Span::current().record("tenant", tenant.as_str());
            response.await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const KEY_A: &str = "kpid_alpha-key";
    const KEY_B: &str = "kpid_beta-key";

    fn keys() -> ApiKeys {
        let text = format!(
            "# kpid API keys\n\n{}\n  {}   # the beta team\n",
            key_line(KEY_A, "acme").unwrap(),
            key_line(KEY_B, "globex").unwrap()
        );
        ApiKeys::parse(&text).unwrap()
    }

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(
                http::header::AUTHORIZATION,
                HeaderValue::from_bytes(v).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn the_sha256_of_a_known_key_is_the_published_one() {
        // SHA-256("abc") from FIPS 180-2, appendix B.1.
        let line = key_line("abc", "t").unwrap();
        assert_eq!(
            line,
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad t"
        );
    }

    #[test]
    fn generated_keys_are_prefixed_random_and_43_base64url_characters() {
        let a = generate_key().unwrap();
        let b = generate_key().unwrap();
        assert_ne!(a, b);
        let body = a.strip_prefix(KEY_PREFIX).unwrap();
        assert_eq!(body.len(), 43, "{a}");
        assert!(body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }

    #[test]
    fn keys_map_to_their_tenants() {
        let keys = keys();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys.tenants(), ["acme", "globex"]);
        assert_eq!(keys.tenant_for_key(KEY_A).unwrap().as_str(), "acme");
        assert_eq!(keys.tenant_for_key(KEY_B).unwrap().as_str(), "globex");
        assert_eq!(keys.tenant_for_key("kpid_other"), None);
        assert_eq!(keys.tenant_for_key(""), None);
    }

    #[test]
    fn only_a_single_well_formed_bearer_header_authenticates() {
        let keys = keys();
        let bearer = format!("Bearer {KEY_A}");
        assert_eq!(
            keys.authenticate(&headers(&[bearer.as_bytes()]))
                .unwrap()
                .as_str(),
            "acme"
        );
        let lower = format!("bearer {KEY_B}");
        assert_eq!(
            keys.authenticate(&headers(&[lower.as_bytes()]))
                .unwrap()
                .as_str(),
            "globex"
        );
        let basic = format!("Basic {KEY_A}");
        let rejected: [&[&[u8]]; 7] = [
            &[],
            &[b"Bearer"],
            &[b"Bearer "],
            &[basic.as_bytes()],
            &[KEY_A.as_bytes()],
            &[b"Bearer kpid_\xff\xfe"],
            &[bearer.as_bytes(), bearer.as_bytes()],
        ];
        for values in rejected {
            assert_eq!(keys.authenticate(&headers(values)), None, "{values:?}");
        }
    }

    #[test]
    fn malformed_files_are_refused_with_the_line_number_and_never_the_text() {
        let good = key_line(KEY_A, "acme").unwrap();
        let cases = [
            ("kpid_secret acme", 1, "sha256:"),
            ("sha256:abcd acme", 1, "64 hexadecimal"),
            (
                &format!("{}zz acme", &good[..good.len() - 7]),
                1,
                "64 hexadecimal",
            ),
            ("sha256:", 1, "expected"),
            (&format!("# c\n{good}\n{good}"), 3, "twice"),
            (&format!("{good} extra"), 1, "comment"),
            (
                &format!("{}ac/me", &good[..good.len() - 4]),
                1,
                "not allowed",
            ),
        ];
        for (text, line, reason) in cases {
            match ApiKeys::parse(text) {
                Err(KeysError::Line { line: l, reason: r }) => {
                    assert_eq!(l, line, "{text}");
                    assert!(r.contains(reason), "{text}: {r}");
                    assert!(!r.contains("kpid_secret"), "{r}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(matches!(
            ApiKeys::parse("# nothing\n\n"),
            Err(KeysError::Empty)
        ));
        assert!(ApiKeys::parse_lines("# nothing\n").unwrap().is_empty());
    }

    #[test]
    fn tenant_names_are_checked() {
        for good in ["acme", "a", "team-1.prod_eu", &"x".repeat(MAX_TENANT_LEN)] {
            check_tenant_name(good).unwrap();
        }
        for bad in [
            "",
            "a b",
            "ac/me",
            "é",
            "a\u{0}",
            &"x".repeat(MAX_TENANT_LEN + 1),
        ] {
            assert!(check_tenant_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn debug_shows_tenants_not_hashes() {
        let shown = format!("{:?}", keys());
        assert!(
            shown.contains("acme") && shown.contains("keys: 2"),
            "{shown}"
        );
        let hex = &key_line(KEY_A, "acme").unwrap()[7..20];
        assert!(!shown.contains(hex), "{shown}");
    }

    fn layer_call(
        keys: Option<ApiKeys>,
        path: &str,
        auth: Option<&str>,
    ) -> (tonic::Code, Option<Tenant>) {
        let seen = Arc::new(std::sync::Mutex::new(None));
        let inner = {
            let seen = seen.clone();
            tower::service_fn(move |request: Request<Body>| {
                *seen.lock().unwrap() = request.extensions().get::<Tenant>().cloned();
                std::future::ready(Ok::<_, Infallible>(Status::ok("").into_http::<Body>()))
            })
        };
        let mut service = AuthLayer {
            keys: keys.map(Arc::new),
        }
        .layer(inner);
        let mut request = Request::builder().uri(path);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let request = request.body(Body::empty()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let response = runtime.block_on(service.call(request)).unwrap();
        let code =
            Status::from_header_map(response.headers()).map_or(tonic::Code::Ok, |s| s.code());
        let tenant = seen.lock().unwrap().clone();
        (code, tenant)
    }

    #[test]
    fn the_layer_rejects_unauthenticated_kpi_calls_and_leaves_health_open() {
        let compute = "/kpi.v1.MetricsService/Compute";
        let (code, tenant) = layer_call(Some(keys()), compute, None);
        assert_eq!((code, tenant), (tonic::Code::Unauthenticated, None));
        let (code, _) = layer_call(
            Some(keys()),
            "/kpi.v1.RecordsService/PutRecords",
            Some("Bearer nope"),
        );
        assert_eq!(code, tonic::Code::Unauthenticated);
        let (code, _) = layer_call(Some(keys()), "/unknown.Service/Call", None);
        assert_eq!(code, tonic::Code::Unauthenticated, "closed by default");

        let bearer = format!("Bearer {KEY_B}");
        let (code, tenant) = layer_call(Some(keys()), compute, Some(&bearer));
        assert_eq!(code, tonic::Code::Ok);
        assert_eq!(tenant.unwrap().as_str(), "globex");

        for open in [
            "/grpc.health.v1.Health/Check",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        ] {
            assert_eq!(
                layer_call(Some(keys()), open, None).0,
                tonic::Code::Ok,
                "{open}"
            );
        }

        let (code, tenant) = layer_call(None, compute, None);
        assert_eq!(code, tonic::Code::Ok);
        assert_eq!(tenant, Some(Tenant::default_tenant()));
    }
}
