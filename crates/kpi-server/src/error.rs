//! The one place domain errors become gRPC statuses.
//!
//! | error | code |
//! |---|---|
//! | `ComputeError::UnknownMetric` | NOT_FOUND |
//! | `ComputeError::InvalidArgument`, a malformed request | INVALID_ARGUMENT + google.rpc.BadRequest |
//! | `ComputeError::Cancelled` (deadline passed, caller gone) | DEADLINE_EXCEEDED |
//! | `ComputeError::TooManyRows` | RESOURCE_EXHAUSTED: the answer is larger than this server allows; a narrower window, a coarser granularity or fewer groups fits |
//! | `ComputeError::Store`, `StoreError` | INTERNAL |
//! | `StoreError::StorageFull` | RESOURCE_EXHAUSTED: the disk is full; nothing of the call was stored |
//! | `StoreError::Unavailable` | UNAVAILABLE: writes refused after a failed write, a listing while the disk is full, or the PostgreSQL database unreachable |
//! | `StoreError::InvalidPageToken` | INVALID_ARGUMENT (field `page_token`) |
//! | `StoreError::InvalidTenant` | INVALID_ARGUMENT (field `tenant`) |
//!
//! A status travels in HTTP/2 headers (`grpc-message`, `grpc-status-details-bin`), which
//! clients cap at a few KiB, and error texts echo request values (a metric id, a
//! dimension): messages are clipped to [`MAX_MESSAGE_BYTES`] and each field violation's
//! field and description to [`MAX_FIELD_BYTES`], so a 1 MB name still gets its answer.

use kpi_core::{ComputeError, FieldViolation};
use kpi_proto::kpi::v1 as pb;
use kpi_store::StoreError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Longest status message sent, in bytes.
pub(crate) const MAX_MESSAGE_BYTES: usize = 1024;
/// Longest field name or description of one field violation sent, in bytes.
pub(crate) const MAX_FIELD_BYTES: usize = 256;
/// Longest request value recorded on an RPC's span (and so logged), in bytes.
pub(crate) const MAX_LOGGED_BYTES: usize = 128;
/// Most field violations sent in one status.
const MAX_VIOLATIONS: usize = 16;

/// `text` cut to at most `max` bytes on a character boundary, with `…` when cut.
pub(crate) fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// INVALID_ARGUMENT with one google.rpc.BadRequest field violation per bad field (at
/// most 16, each clipped).
pub(crate) fn invalid_argument(
    message: impl Into<String>,
    violations: &[FieldViolation],
) -> Status {
    let details = ErrorDetails::with_bad_request(
        violations
            .iter()
            .take(MAX_VIOLATIONS)
            .map(|v| {
                tonic_types::FieldViolation::new(
                    clip(&v.field, MAX_FIELD_BYTES),
                    clip(&v.description, MAX_FIELD_BYTES),
                )
            })
            .collect::<Vec<_>>(),
    );
    Status::with_error_details(
        Code::InvalidArgument,
        clip(&message.into(), MAX_MESSAGE_BYTES),
        details,
    )
}

/// The status a failed compute request answers with.
pub(crate) fn compute_status(err: ComputeError) -> Status {
    // Clipped first, so the advice after it always fits.
    let message = clip(&err.to_string(), MAX_MESSAGE_BYTES - 128);
    match err {
        ComputeError::UnknownMetric(_) => Status::not_found(format!(
            "{message}; ListMetrics lists the metrics this server computes"
        )),
        ComputeError::InvalidArgument(violations) => invalid_argument(message, &violations),
        ComputeError::Cancelled => Status::deadline_exceeded(
            "the computation was cancelled: the request's deadline passed or the caller left",
        ),
        ComputeError::TooManyRows { .. } => Status::resource_exhausted(format!(
            "{message}; narrow the window, use a coarser granularity or fewer group_by dimensions"
        )),
        ComputeError::Store(_) => {
            tracing::error!(error = %message, "store failed during compute");
            Status::internal(message)
        }
    }
}

/// The status a failed store call answers with.
pub(crate) fn store_status(err: StoreError) -> Status {
    match err {
        StoreError::InvalidPageToken(reason) => invalid_argument(
            format!("invalid page token: {reason}"),
            &[FieldViolation::new(
                "page_token",
                format!(
                    "{reason}; pass a next_page_token from a previous ListRecords answer, or empty"
                ),
            )],
        ),
        StoreError::InvalidTenant(reason) => invalid_argument(
            format!("invalid tenant: {reason}"),
            &[FieldViolation::new("tenant", reason)],
        ),
        StoreError::StorageFull => {
            tracing::warn!("a write was refused: the disk is full");
            Status::resource_exhausted(StoreError::StorageFull.to_string())
        }
        StoreError::Unavailable(reason) => {
            tracing::warn!(reason = %reason, "the store could not serve a call");
            Status::unavailable(clip(&reason, MAX_MESSAGE_BYTES))
        }
        other => {
            tracing::error!(error = %other, "store failed");
            Status::internal(clip(&format!("store: {other}"), MAX_MESSAGE_BYTES))
        }
    }
}

/// A blocking task that panicked or was cancelled.
pub(crate) fn task_status(err: tokio::task::JoinError) -> Status {
    tracing::error!(error = %err, "blocking task failed");
    Status::internal(format!("internal error: {err}"))
}

/// One metric's failure inside a BatchCompute answer: the status Compute would have
/// answered with, as a message.
pub(crate) fn batch_error(err: ComputeError) -> pb::BatchComputeError {
    let field_violations = match &err {
        ComputeError::InvalidArgument(violations) => violations
            .iter()
            .take(MAX_VIOLATIONS)
            .map(|v| pb::FieldViolation {
                field: clip(&v.field, MAX_FIELD_BYTES),
                description: clip(&v.description, MAX_FIELD_BYTES),
            })
            .collect(),
        _ => Vec::new(),
    };
    let status = compute_status(err);
    pb::BatchComputeError {
        code: status.code() as i32,
        message: status.message().to_owned(),
        field_violations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_values_are_clipped_to_fit_in_headers() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("abcdefghijkl", 10), "abcdefg…");
        assert_eq!(clip("ééééé", 6), "é…");
        let huge = "x".repeat(1 << 20);
        let status = compute_status(ComputeError::UnknownMetric(huge.clone()));
        assert_eq!(status.code(), Code::NotFound);
        assert!(
            status.message().len() <= MAX_MESSAGE_BYTES,
            "{}",
            status.message().len()
        );
        let violations: Vec<_> = (0..100)
            .map(|i| FieldViolation::new(format!("params[{huge}{i}]"), huge.clone()))
            .collect();
        let status = compute_status(ComputeError::InvalidArgument(violations.clone()));
        let bad = status.get_details_bad_request().unwrap();
        assert_eq!(bad.field_violations.len(), MAX_VIOLATIONS);
        assert!(bad.field_violations[0].field.starts_with("params[xxx"));
        assert!(bad
            .field_violations
            .iter()
            .all(|v| v.field.len() <= MAX_FIELD_BYTES && v.description.len() <= MAX_FIELD_BYTES));
        let e = batch_error(ComputeError::InvalidArgument(violations));
        assert_eq!(e.field_violations.len(), MAX_VIOLATIONS);
        assert!(e.message.len() <= MAX_MESSAGE_BYTES);
    }

    #[test]
    fn unknown_metric_is_not_found() {
        let status = compute_status(ComputeError::UnknownMetric("sales.nope".into()));
        assert_eq!(status.code(), Code::NotFound);
        assert!(status.message().contains("unknown metric `sales.nope`"));
    }

    #[test]
    fn invalid_argument_carries_bad_request_field_violations() {
        let status = compute_status(ComputeError::InvalidArgument(vec![
            FieldViolation::new("inputs[won]", "`x` is not a decimal number"),
            FieldViolation::new("params[scale]", "`7` is not one of 5, 10"),
        ]));
        assert_eq!(status.code(), Code::InvalidArgument);
        let bad = status.get_details_bad_request().expect("BadRequest detail");
        let fields: Vec<_> = bad
            .field_violations
            .iter()
            .map(|v| (v.field.as_str(), v.description.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("inputs[won]", "`x` is not a decimal number"),
                ("params[scale]", "`7` is not one of 5, 10")
            ]
        );
    }

    #[test]
    fn cancelled_is_deadline_exceeded_and_too_many_rows_is_resource_exhausted() {
        assert_eq!(
            compute_status(ComputeError::Cancelled).code(),
            Code::DeadlineExceeded
        );
        assert_eq!(
            compute_status(ComputeError::TooManyRows {
                rows: 11,
                limit: 10
            })
            .code(),
            Code::ResourceExhausted
        );
        assert_eq!(
            compute_status(ComputeError::Store("disk on fire".into())).code(),
            Code::Internal
        );
    }

    #[test]
    fn a_bad_page_token_is_invalid_argument_on_page_token() {
        let status = store_status(StoreError::InvalidPageToken("not base64".into()));
        assert_eq!(status.code(), Code::InvalidArgument);
        let bad = status.get_details_bad_request().expect("BadRequest detail");
        assert_eq!(bad.field_violations[0].field, "page_token");
    }

    #[test]
    fn batch_errors_keep_code_and_violations() {
        let e = batch_error(ComputeError::invalid(
            "inputs[won]",
            "must be a whole number",
        ));
        assert_eq!(e.code, Code::InvalidArgument as i32);
        assert_eq!(e.field_violations[0].field, "inputs[won]");
        let e = batch_error(ComputeError::UnknownMetric("x.y".into()));
        assert_eq!(e.code, Code::NotFound as i32);
        assert!(e.field_violations.is_empty());
    }
}
