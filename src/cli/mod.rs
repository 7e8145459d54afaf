//! The client subcommands of `kpid` (`import`, `metrics`, `compute`, `settings`) and the demo dataset
//! loader of `kpid demo` / `kpid serve --demo`.
//!
//! Every client subcommand talks to a running server over gRPC with the generated
//! `kpi.v1` clients; nothing here reaches into the store or the registry directly.

pub(crate) mod cohorts;
pub(crate) mod compute;
pub(crate) mod csv_columns;
pub(crate) mod demo;
pub(crate) mod descriptors;
pub(crate) mod import;
pub(crate) mod messages;
pub(crate) mod metrics;
pub(crate) mod ndjson;
#[cfg(test)]
mod probe;
pub(crate) mod readers;
pub(crate) mod scalars;
pub(crate) mod settings;
pub(crate) mod table;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use tonic::metadata::AsciiMetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};
use tonic_types::StatusExt as _;

/// How long connecting to the server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the server is, and the API key to call it with.
#[derive(Debug, Clone, Args)]
pub(crate) struct ServerAddr {
    /// Address of the kpid server: HOST:PORT, or a full `http://HOST:PORT` URL.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub(crate) addr: String,
    /// API key, sent as `authorization: Bearer KEY` (needed when the server has
    /// --api-keys; `kpid keys add` makes one).
    #[arg(long, env = "KPID_API_KEY", hide_env_values = true, value_name = "KEY")]
    pub(crate) api_key: Option<String>,
}

/// A connection to the server that sends the API key, if any, with every call.
pub(crate) type Connection = InterceptedService<Channel, BearerKey>;

/// Adds `authorization: Bearer KEY` to every call when there is a key.
#[derive(Debug, Clone)]
pub(crate) struct BearerKey(Option<AsciiMetadataValue>);

impl BearerKey {
    /// The header for `key`; an error when the key cannot be a header value.
    fn new(key: Option<&str>) -> Result<Self, String> {
        key.map(|key| {
            format!("Bearer {}", key.trim())
                .parse::<AsciiMetadataValue>()
                .map_err(|_| "--api-key: an API key is printable ASCII".to_owned())
        })
        .transpose()
        .map(BearerKey)
    }
}

impl Interceptor for BearerKey {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

impl ServerAddr {
    /// The server's URL: `addr` with `http://` in front unless it names a scheme.
    pub(crate) fn url(&self) -> String {
        if self.addr.contains("://") {
            self.addr.clone()
        } else {
            format!("http://{}", self.addr)
        }
    }

    /// A connection, or a message saying why there is none.
    pub(crate) async fn connect(&self) -> Result<Connection, String> {
        let key = BearerKey::new(self.api_key.as_deref())?;
        let url = self.url();
        let endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| format!("`{}` is not a server address: {e}", self.addr))?
            .connect_timeout(CONNECT_TIMEOUT);
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| format!("cannot connect to {url}: {}", error_chain(&e)))?;
        Ok(InterceptedService::new(channel, key))
    }
}

/// How a client subcommand prints its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// An aligned, human-readable table.
    Table,
    /// One JSON document (the proto3 JSON mapping of the response, every field present).
    Json,
    /// Comma-separated values with a header row.
    Csv,
}

/// Exit code of a client subcommand that failed (I/O, connection, RPC error).
pub(crate) const EXIT_FAILURE: u8 = 1;

/// Prints a failed call's status on stderr: its code and message, then each
/// `google.rpc.BadRequest` field violation on its own line.
pub(crate) fn print_status(context: &str, status: &tonic::Status) {
    eprintln!("{}", describe_status(context, status));
}

/// The text [`print_status`] prints.
pub(crate) fn describe_status(context: &str, status: &tonic::Status) -> String {
    let mut text = format!(
        "error: {context}: {} ({})",
        status.message(),
        code_name(status.code())
    );
    if let Some(bad_request) = status.get_details_bad_request() {
        for violation in bad_request.field_violations {
            text.push_str(&format!(
                "\n  {}: {}",
                violation.field, violation.description
            ));
        }
    }
    text
}

/// Prints `error: message` on stderr and returns the failure exit code.
pub(crate) fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_FAILURE)
}

/// The gRPC name of a status code (`INVALID_ARGUMENT`).
pub(crate) fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// An error and its sources, `: `-separated, without repeating a source whose text the
/// message already ends with.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Splits `KEY=VALUE` (the value may contain `=`); for clap's `value_parser`.
pub(crate) fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

/// A proto timestamp as RFC 3339 text in UTC (`2024-01-05T10:00:00Z`); out-of-range
/// values print their raw seconds and nanoseconds.
pub(crate) fn timestamp_text(ts: &prost_types::Timestamp) -> String {
    match jiff::Timestamp::new(ts.seconds, ts.nanos) {
        Ok(t) => t.to_string(),
        Err(_) => format!("{}s+{}ns", ts.seconds, ts.nanos),
    }
}

/// A proto timestamp of an instant.
pub(crate) fn timestamp_proto(t: jiff::Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: t.subsec_nanosecond(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_get_a_scheme_once() {
        let plain = ServerAddr {
            addr: "127.0.0.1:50051".into(),
            api_key: None,
        };
        assert_eq!(plain.url(), "http://127.0.0.1:50051");
        let url = ServerAddr {
            addr: "https://kpid.example:443".into(),
            api_key: None,
        };
        assert_eq!(url.url(), "https://kpid.example:443");
    }

    #[test]
    fn the_api_key_goes_in_the_authorization_header() {
        let mut key = BearerKey::new(Some("kpid_abc")).unwrap();
        let request = key.call(tonic::Request::new(())).unwrap();
        assert_eq!(
            request.metadata().get("authorization").unwrap(),
            "Bearer kpid_abc"
        );
        let mut none = BearerKey::new(None).unwrap();
        let request = none.call(tonic::Request::new(())).unwrap();
        assert!(request.metadata().get("authorization").is_none());
        assert!(BearerKey::new(Some("k\ny")).is_err());
    }

    #[test]
    fn key_values_split_at_the_first_equals_sign() {
        assert_eq!(
            key_value("spend=10000").unwrap(),
            ("spend".to_owned(), "10000".to_owned())
        );
        assert_eq!(
            key_value("owner=a=b").unwrap(),
            ("owner".to_owned(), "a=b".to_owned())
        );
        assert_eq!(key_value("k=").unwrap(), ("k".to_owned(), String::new()));
        assert!(key_value("spend").is_err());
        assert!(key_value("=3").is_err());
    }

    #[test]
    fn statuses_list_their_field_violations() {
        use tonic_types::{ErrorDetails, StatusExt as _};
        let status = tonic::Status::with_error_details(
            tonic::Code::InvalidArgument,
            "the request is malformed",
            ErrorDetails::with_bad_request_violation("inputs[won]", "`x` is not a decimal"),
        );
        assert_eq!(
            describe_status("compute", &status),
            "error: compute: the request is malformed (INVALID_ARGUMENT)\n  inputs[won]: `x` is not a decimal"
        );
        let plain = tonic::Status::not_found("no metric `a.b`");
        assert_eq!(
            describe_status("compute", &plain),
            "error: compute: no metric `a.b` (NOT_FOUND)"
        );
    }

    #[test]
    fn timestamps_print_as_rfc3339_utc() {
        let t: jiff::Timestamp = "2024-01-05T10:00:00Z".parse().unwrap();
        assert_eq!(timestamp_text(&timestamp_proto(t)), "2024-01-05T10:00:00Z");
    }
}
