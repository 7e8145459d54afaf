//! `kpi.v1.RecordsService`: upserts, deletes and lists the tenant's records in the store.

use std::future::Future;
use std::pin::Pin;

use kpi_core::FieldViolation;
use kpi_proto::kpi::v1 as pb;
use kpi_proto::kpi::v1::records_service_server::RecordsService;
use kpi_store::{PreparedPut, RecordKey, Store, Unapplied, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{tenant_of, Tenant};
use crate::convert::records::{record_from_proto, record_kind, record_to_proto};
use crate::error::{clip, invalid_argument, store_status, MAX_LOGGED_BYTES};
use crate::rpc::{blocking, record};
use crate::sequence::reached;
use crate::Limits;

/// The RecordsService handlers: Ingest, PutRecords, DeleteRecords, ListRecords.
#[derive(Clone)]
pub struct RecordsApi {
    store: Store,
    max_records_per_request: usize,
}

impl std::fmt::Debug for RecordsApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordsApi").finish_non_exhaustive()
    }
}

/// What one batch of records came to.
#[derive(Debug, Default)]
struct Stored {
    accepted: u64,
    rejected: Vec<pb::RejectedRecord>,
}

impl RecordsApi {
    /// Handlers over `store`.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            max_records_per_request: Limits::default().max_records_per_request,
        }
    }

    /// The same handlers, enforcing `limits.max_records_per_request`.
    pub fn with_limits(self, limits: Limits) -> Self {
        Self {
            max_records_per_request: limits.max_records_per_request,
            ..self
        }
    }

    /// Converts and upserts one batch: records that fail conversion or the store's
    /// validation are rejected with their index (plus `offset`, for a stream) and a reason
    /// naming the kind and field; the valid ones are durable when this returns.
    async fn put(
        &self,
        tenant: &Tenant,
        records: Vec<pb::Record>,
        offset: u64,
    ) -> Result<Stored, Status> {
        let converted = self.convert(tenant, records).await?;
        let (stored, _) = self.store_batch(converted, offset, None, false).await?;
        Ok(stored)
    }

    /// Checks a batch's size, converts its records to the store's and prepares them
    /// ([`Store::prepare`]: validated and encoded), on the blocking pool: the first half
    /// of [`RecordsApi::put`].
    async fn convert(
        &self,
        tenant: &Tenant,
        records: Vec<pb::Record>,
    ) -> Result<Converted, Status> {
        if records.len() > self.max_records_per_request {
            return Err(invalid_argument(
                "too many records in one request",
                &[FieldViolation::new(
                    "records",
                    format!(
                        "{} records in one message; at most {} are accepted per PutRecords \
                         request or Ingest message (--max-records-per-request): split the batch",
                        records.len(),
                        self.max_records_per_request
                    ),
                )],
            ));
        }
        if records.is_empty() {
            return Ok(Converted::default());
        }
        let store = self.store.clone();
        let tenant = tenant.clone();
        blocking(move || {
            let mut valid = Vec::with_capacity(records.len());
            let mut positions = Vec::with_capacity(records.len());
            let mut rejected = Vec::new();
            for (i, record) in records.into_iter().enumerate() {
                match record_from_proto(record) {
                    Ok(record) => {
                        positions.push((i, record.kind().as_str()));
                        valid.push(record);
                    }
                    Err(reason) => rejected.push((i, reason)),
                }
            }
            if valid.is_empty() {
                return Ok(Converted {
                    prepared: None,
                    rejected,
                });
            }
            let prepared = store
                .prepare(tenant.as_str(), valid)
                .map_err(store_status)?;
            for r in &prepared.outcome().rejected {
                let (position, kind) = positions.get(r.index).copied().ok_or_else(|| {
                    Status::internal(format!(
                        "the store rejected record {} of a batch of {}",
                        r.index,
                        positions.len()
                    ))
                })?;
                // The store's reasons name the field; say which kind of record too.
                rejected.push((position, format!("{kind}: {}", r.reason)));
            }
            Ok(Converted {
                prepared: Some(prepared),
                rejected,
            })
        })
        .await?
    }

    /// Writes a prepared batch (on the blocking pool): the second half of
    /// [`RecordsApi::put`]. `chained` (a stream's batch): the write is left for the next
    /// batch to apply, which applies `previous` while it is written
    /// ([`Store::put_chained`]), and comes back with what is left to apply; else it is
    /// applied before this returns.
    async fn store_batch(
        &self,
        converted: Converted,
        offset: u64,
        previous: Option<Unapplied>,
        chained: bool,
    ) -> Result<(Stored, Option<Unapplied>), Status> {
        let Converted {
            prepared,
            mut rejected,
        } = converted;
        let store = self.store.clone();
        blocking(move || {
            let mut accepted = 0;
            let mut unapplied = previous;
            if let Some(prepared) = prepared {
                let (outcome, written) = store
                    .put_chained(prepared, unapplied.take())
                    .map_err(store_status)?;
                if chained {
                    unapplied = Some(written);
                } else {
                    store.apply(written);
                }
                accepted = outcome.accepted;
            }
            rejected.sort_by_key(|(i, _)| *i);
            let stored = Stored {
                accepted,
                rejected: rejected
                    .into_iter()
                    .map(|(i, reason)| pb::RejectedRecord {
                        index: offset + i as u64,
                        reason,
                    })
                    .collect(),
            };
            Ok((stored, unapplied))
        })
        .await?
    }

    /// Applies what a stream's last batch left (on the blocking pool).
    async fn apply(&self, unapplied: Option<Unapplied>) -> Result<(), Status> {
        let Some(unapplied) = unapplied else {
            return Ok(());
        };
        let store = self.store.clone();
        blocking(move || store.apply(unapplied)).await
    }
}

/// A batch converted to the store's records and prepared for its write (none when no
/// record is valid), and the positions that failed conversion or validation with the
/// reason.
#[derive(Debug, Default)]
struct Converted {
    prepared: Option<PreparedPut>,
    rejected: Vec<(usize, String)>,
}

#[tonic::async_trait]
impl RecordsService for RecordsApi {
    async fn ingest(
        &self,
        request: Request<Streaming<pb::IngestRequest>>,
    ) -> Result<Response<pb::IngestResponse>, Status> {
        let tenant = tenant_of(&request);
        let mut stream = request.into_inner();
        let mut total = Stored::default();
        let mut offset = 0u64;
        // One message is stored while the next is received and converted, and the one
        // before it is applied to the rows while it is written ([`Store::put_chained`]):
        // messages are still written one at a time, in order, each only once the one before
        // it is durable (a failure stores nothing after it), and every message written is
        // applied before the call returns, even a failing one.
        type Storing<'a> =
            Pin<Box<dyn Future<Output = Result<(Stored, Option<Unapplied>), Status>> + Send + 'a>>;
        let mut storing: Option<Storing<'_>> = None;
        let mut unapplied: Option<Unapplied> = None;
        loop {
            let next = async {
                let Some(message) = stream.message().await? else {
                    return Ok(None);
                };
                let count = message.records.len() as u64;
                Ok::<_, Status>(Some((self.convert(&tenant, message.records).await?, count)))
            };
            let next = match storing.take() {
                Some(previous) => {
                    let (stored, next) = tokio::join!(previous, next);
                    let (stored, left) = stored?;
                    unapplied = left;
                    total.accepted += stored.accepted;
                    total.rejected.extend(stored.rejected);
                    next
                }
                None => next.await,
            };
            let next = match next {
                Ok(next) => next,
                Err(status) => {
                    self.apply(unapplied).await?;
                    return Err(status);
                }
            };
            let Some((converted, count)) = next else {
                break;
            };
            storing = Some(Box::pin(self.store_batch(
                converted,
                offset,
                unapplied.take(),
                true,
            )));
            offset += count;
            record("records", offset);
        }
        self.apply(unapplied).await?;
        tracing::info!(
            records = offset,
            accepted = total.accepted,
            rejected = total.rejected.len(),
            "ingested"
        );
        Ok(Response::new(pb::IngestResponse {
            accepted: total.accepted,
            rejected: total.rejected,
            sequence: self.store.sequence(tenant.as_str()),
        }))
    }

    async fn put_records(
        &self,
        request: Request<pb::PutRecordsRequest>,
    ) -> Result<Response<pb::PutRecordsResponse>, Status> {
        let tenant = tenant_of(&request);
        let records = request.into_inner().records;
        record("records", records.len());
        let stored = self.put(&tenant, records, 0).await?;
        Ok(Response::new(pb::PutRecordsResponse {
            accepted: stored.accepted,
            rejected: stored.rejected,
            sequence: self.store.sequence(tenant.as_str()),
        }))
    }

    async fn delete_records(
        &self,
        request: Request<pb::DeleteRecordsRequest>,
    ) -> Result<Response<pb::DeleteRecordsResponse>, Status> {
        let tenant = tenant_of(&request);
        let keys = request.into_inner().keys;
        record("keys", keys.len());
        let mut violations = Vec::new();
        let mut parsed = Vec::with_capacity(keys.len());
        for (i, key) in keys.into_iter().enumerate() {
            let kind = record_kind(&key.kind).map_err(|reason| {
                violations.push(FieldViolation::new(format!("keys[{i}].kind"), reason))
            });
            if key.id.is_empty() {
                violations.push(FieldViolation::new(format!("keys[{i}].id"), "missing"));
            }
            if let Ok(kind) = kind {
                parsed.push(RecordKey { kind, id: key.id });
            }
        }
        if !violations.is_empty() {
            return Err(invalid_argument("invalid record keys", &violations));
        }
        let store = self.store.clone();
        let (deleted, sequence) = blocking(move || {
            let deleted = store.delete(tenant.as_str(), &parsed)?;
            Ok((deleted, store.sequence(tenant.as_str())))
        })
        .await?
        .map_err(store_status)?;
        Ok(Response::new(pb::DeleteRecordsResponse {
            deleted,
            sequence,
        }))
    }

    async fn list_records(
        &self,
        request: Request<pb::ListRecordsRequest>,
    ) -> Result<Response<pb::ListRecordsResponse>, Status> {
        let tenant = tenant_of(&request);
        let request = request.into_inner();
        if !request.kind.is_empty() {
            record("kind", clip(&request.kind, MAX_LOGGED_BYTES).as_str());
        }
        let mut violations = Vec::new();
        let kind = if request.kind.is_empty() {
            None
        } else {
            record_kind(&request.kind)
                .map_err(|reason| violations.push(FieldViolation::new("kind", reason)))
                .ok()
        };
        let page_size = match request.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n < 0 => {
                violations.push(FieldViolation::new(
                    "page_size",
                    format!("{n} is negative; give 0 for the default of {DEFAULT_PAGE_SIZE}"),
                ));
                DEFAULT_PAGE_SIZE
            }
            n => (n as usize).min(MAX_PAGE_SIZE),
        };
        if !violations.is_empty() {
            return Err(invalid_argument("invalid ListRecords request", &violations));
        }
        reached(&self.store, tenant.as_str(), request.min_sequence).await?;
        let store = self.store.clone();
        let page =
            blocking(move || store.list(tenant.as_str(), kind, page_size, &request.page_token))
                .await?
                .map_err(store_status)?;
        record("rows", page.records.len());
        Ok(Response::new(pb::ListRecordsResponse {
            records: page.records.into_iter().map(record_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}
