//! Entry points for the cargo-fuzz targets in `fuzz/`: the handlers' decoding, conversion,
//! validation and computation without the network. Not a stable API.
//!
//! Each takes arbitrary bytes and must never panic; each also checks properties that must
//! hold for every input (a valid record survives the wire round trip unchanged; an error
//! maps to a status without panicking) and panics when one does not, which the fuzzer
//! reports.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use kpi_core::Registry;
use kpi_proto::kpi::v1 as pb;
use kpi_store::Store;
use prost::Message as _;

use crate::convert::compute::{batch_specs, compute_spec, row_to_proto, SpecLimits};
use crate::convert::records::{record_from_proto, record_to_proto};
use crate::error::{batch_error, compute_status};
use crate::{Limits, TENANT};

/// What [`records`] made of its input.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RecordsOutcome {
    /// Records in the decoded request.
    pub records: usize,
    /// Records that converted from the proto.
    pub converted: usize,
    /// Records that also passed the store's validation.
    pub valid: usize,
}

/// Decodes `bytes` as a `kpi.v1.PutRecordsRequest` (an `IngestRequest` has the same wire
/// form) and converts and validates every record as PutRecords and Ingest do, minus the
/// write. `None` when the bytes do not decode. Panics if a valid record does not survive
/// the domain → proto → domain round trip unchanged.
pub fn records(bytes: &[u8]) -> Option<RecordsOutcome> {
    let request = pb::PutRecordsRequest::decode(bytes).ok()?;
    let mut outcome = RecordsOutcome {
        records: request.records.len(),
        ..RecordsOutcome::default()
    };
    for record in request.records {
        let Ok(record) = record_from_proto(record) else {
            continue;
        };
        outcome.converted += 1;
        if kpi_store::validate(&record).is_err() {
            continue;
        }
        outcome.valid += 1;
        let wire = record_to_proto(record.clone());
        // What ListRecords answers must decode back to the same record.
        let reencoded =
            pb::Record::decode(wire.encode_to_vec().as_slice()).expect("an encoded record decodes");
        assert_eq!(
            record_from_proto(reencoded).as_ref(),
            Ok(&record),
            "a valid record changed on the wire round trip"
        );
    }
    Some(outcome)
}

/// What [`compute`] made of its input.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ComputeOutcome {
    /// The bytes decoded as a `ComputeRequest` and it was answered with rows.
    pub compute_rows: Option<usize>,
    /// The bytes decoded as a `BatchComputeRequest` and it was answered: how many metrics
    /// answered with rows.
    pub batch_answered: Option<usize>,
}

/// Decodes `bytes` as a `kpi.v1.ComputeRequest` and as a `kpi.v1.BatchComputeRequest`
/// (whichever succeed) and runs each as Compute and BatchCompute do: the server's
/// conversion with the default [`Limits`], then the engine over `store`'s default tenant,
/// then the rows' or the error's wire form.
pub fn compute(registry: &Registry, store: &Store, bytes: &[u8]) -> ComputeOutcome {
    let limits = Limits::default();
    let spec_limits = SpecLimits {
        max_rows: limits.max_rows,
        cancelled: Arc::new(AtomicBool::new(false)),
    };
    let mut outcome = ComputeOutcome::default();
    if let Ok(request) = pb::ComputeRequest::decode(bytes) {
        let answer = compute_spec(request, &spec_limits)
            .and_then(|spec| registry.compute(&spec, Some(&store.source(TENANT))));
        match answer {
            Ok(rows) => {
                let rows: Vec<pb::Row> = rows.into_iter().map(row_to_proto).collect();
                outcome.compute_rows = Some(rows.len());
            }
            Err(err) => {
                let _status = compute_status(err);
            }
        }
    }
    if let Ok(request) = pb::BatchComputeRequest::decode(bytes) {
        match batch_specs(request, &spec_limits, limits.max_batch_metrics) {
            Ok(specs) => {
                let answers = registry.compute_batch(&specs, Some(&store.source(TENANT)));
                assert_eq!(answers.len(), specs.len(), "one answer per metric");
                let mut answered = 0;
                for answer in answers {
                    match answer {
                        Ok(rows) => {
                            answered += 1;
                            let _rows: Vec<pb::Row> = rows.into_iter().map(row_to_proto).collect();
                        }
                        Err(err) => {
                            let _error = batch_error(err);
                        }
                    }
                }
                outcome.batch_answered = Some(answered);
            }
            Err(err) => {
                let _status = compute_status(err);
            }
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer_request() -> pb::PutRecordsRequest {
        pb::PutRecordsRequest {
            records: vec![
                pb::Record {
                    record: Some(pb::record::Record::Customer(pb::Customer {
                        id: "c1".into(),
                        acquired_at: Some(prost_types::Timestamp {
                            seconds: 1_704_067_200,
                            nanos: 0,
                        }),
                        source: pb::Source::Sales.into(),
                        ..Default::default()
                    })),
                },
                pb::Record { record: None },
            ],
        }
    }

    #[test]
    fn records_converts_and_validates_each_record() {
        let bytes = customer_request().encode_to_vec();
        assert_eq!(
            records(&bytes),
            Some(RecordsOutcome {
                records: 2,
                converted: 1,
                valid: 1
            })
        );
        assert_eq!(records(&[0xff, 0xff, 0xff]), None, "not a message");
    }

    #[test]
    fn compute_answers_both_request_forms() {
        let store = Store::temporary().unwrap();
        let registry = Registry::from_metrics(std::iter::empty()).unwrap();
        let request = pb::ComputeRequest {
            metric_id: "sales.win_rate".into(),
            ..Default::default()
        };
        // No metric is registered here: the unknown metric maps to NOT_FOUND.
        let outcome = compute(&registry, &store, &request.encode_to_vec());
        assert_eq!(outcome.compute_rows, None);
        let batch = pb::BatchComputeRequest {
            metrics: vec![pb::BatchComputeMetric {
                metric_id: "sales.win_rate".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let outcome = compute(&registry, &store, &batch.encode_to_vec());
        assert_eq!(outcome.batch_answered, Some(0), "answered, with an error");
    }
}
