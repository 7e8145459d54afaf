//! The PostgreSQL backend: the records, deletes and tenant settings live in PostgreSQL
//! instead of sled, written by any number of kpid processes (replicas); in memory each
//! keeps the same rows and index, and follows the change log (`replica.rs`).
//!
//! Schema (every primary key starts with the tenant, so Citus can distribute each table by
//! it; README "Running several replicas"):
//!
//! - `kpid_migrations (version, applied_at)`: the migrations applied, one row each.
//! - `records (tenant, kind, id, value)`: one row per record; `kind` is the kind's key byte
//!   and `value` the record as sled's first-release values hold it (`codec.rs`: format byte
//!   0x01, MessagePack): no row slot, since each process places rows at its own slots. `id`
//!   sorts bytewise (`COLLATE "C"`), as sled's keys do, so listings page in the same order
//!   on both backends.
//! - `settings (tenant, value)`: a tenant's settings, encoded as in sled.
//! - `tenant_sequences (tenant, sequence)`: the sequence of the tenant's last write.
//! - `change_log (tenant, sequence, kinds, ids, contents, logged_at)`: one row per write,
//!   its changes in order as three arrays of one length: an upserted record (its kind, id
//!   and value), a deleted one (content NULL), or the tenant's settings (kind 0, id '', the
//!   settings' value). One row, not one per change: a write of 10 000 records adds one
//!   index entry to the log, which halves the log's cost to a write; its ids and values
//!   are compressed with lz4 (migration 4; pglz, the default, cost more CPU than it saved,
//!   and a server without lz4 keeps them uncompressed; BENCHMARKS.md).
//!
//! A write is one transaction: it first bumps its tenant's row of `tenant_sequences`
//! (which locks it until the commit), so one tenant's writes commit one at a time, each
//! with the next sequence: a tenant's sequences are gapless and in commit order. It then
//! changes `records` or `settings` and appends its changes to `change_log` under that
//! sequence, in one statement that receives the batch once (arrays of kinds, ids and
//! values: `records` gets them unnested, the log as they are), and notifies `kpid_changes`
//! with the tenant's name (delivered at the commit). A write is acknowledged only after
//! its transaction commits. The write path's statements are prepared once per connection.
//! A put first tries a plain insert of its records (an ingest's keys are new), which skips
//! the per-row probe of `ON CONFLICT` (a batch of 256 records or more is copied in with a
//! binary `COPY`, which also skips the executor's work per row); if a key exists, that
//! insert is rolled back to a savepoint and the batch upserted, in the same transaction.
//!
//! The change log is only read by replicas catching up, from the sequence they applied;
//! one that opens reads `records`, `settings` and `tenant_sequences` in one snapshot.
//! So old entries may be deleted at any time (README, "Pruning the change log"); a replica
//! that finds the entries it needs deleted reloads that tenant from `records`.
//!
//! Migrations (`pg/schema.rs`) are versioned and applied at open in one transaction that holds a lock on
//! `kpid_migrations`, so replicas starting together migrate once; a database with a
//! version newer than this binary knows is refused. The client is the blocking `postgres`
//! crate: the store's API is synchronous and runs on blocking threads.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use postgres::{Client, GenericClient, IsolationLevel, NoTls, Statement, Transaction};

use crate::codec::{
    decode_record, encode_record_without_slot, kind_byte, kind_of_byte, record_key,
};
use crate::error::StoreError;
use crate::record::{Record, RecordKind};
use crate::settings::{SettingsByTenant, TenantSettings};

mod schema;

use self::schema::migrate;
#[cfg(test)]
use self::schema::{MIGRATIONS, SCHEMA_VERSION};

/// The channel a write notifies, with its tenant's name as the payload.
pub(crate) const CHANNEL: &str = "kpid_changes";

/// The `change_log.kind` of a settings change (no record kind has key byte 0).
const SETTINGS_KIND: i16 = 0;

/// How long connecting may take before it counts as a failure (unless the URL says).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One stored record as read back: its sled-layout key and value.
pub(crate) type KeyValue = (Vec<u8>, Vec<u8>);

/// One change a write made.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Change {
    /// A record stored (new, or replacing the one with its kind and id).
    Upsert(Record),
    /// A record deleted.
    Delete(RecordKind, String),
    /// The tenant's settings, as they are after the write.
    Settings(TenantSettings),
}

/// The changes of one write, with the tenant's sequence it committed under.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LoggedWrite {
    pub(crate) sequence: u64,
    pub(crate) changes: Vec<Change>,
}

/// Everything of one tenant, read in one snapshot.
pub(crate) struct TenantState {
    pub(crate) records: Vec<KeyValue>,
    pub(crate) settings: Option<TenantSettings>,
    pub(crate) sequence: u64,
}

/// Everything of every tenant, read in one snapshot (what a store opens with).
pub(crate) struct Loaded {
    pub(crate) records: Vec<KeyValue>,
    pub(crate) settings: SettingsByTenant,
    pub(crate) sequences: Vec<(String, u64)>,
}

/// A write committed: its sequence, and the writes of other processes (or of this one,
/// not yet applied) that committed since the sequence the caller had applied.
pub(crate) struct Committed<T> {
    pub(crate) sequence: u64,
    pub(crate) missed: Vec<LoggedWrite>,
    pub(crate) outcome: T,
}

/// A connection to the database (reconnected when it drops).
pub(crate) struct Postgres {
    config: postgres::Config,
    connection: Mutex<Option<Connection>>,
}

/// An open connection, and the writes' statements prepared on it.
struct Connection {
    client: Client,
    prepared: Prepared,
}

/// Statements prepared on one connection, by their SQL: prepared at the first use, so that
/// each later call sends only its parameters (one round trip, not two).
#[derive(Default)]
struct Prepared(HashMap<&'static str, Statement>);

impl Prepared {
    /// The statement of `sql`, prepared on the transaction's connection when it is not yet
    /// (a prepared statement outlives the transaction, even one rolled back).
    fn statement(
        &mut self,
        tx: &mut Transaction<'_>,
        sql: &'static str,
    ) -> Result<Statement, StoreError> {
        if let Some(statement) = self.0.get(sql) {
            return Ok(statement.clone());
        }
        let statement = tx.prepare(sql).map_err(unavailable)?;
        self.0.insert(sql, statement.clone());
        Ok(statement)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // The blocking client owns a small runtime, which must not be dropped on an async
        // thread (a server drops the store there): drop it on a thread of its own.
        if let Some(connection) = self
            .connection
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            let _ = std::thread::spawn(move || drop(connection)).join();
        }
    }
}

/// A PostgreSQL error as the store's.
pub(crate) fn unavailable(e: postgres::Error) -> StoreError {
    let text = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => e.to_string(),
    };
    StoreError::Unavailable(format!(
        "the record store's PostgreSQL database failed: {text}; nothing of this call was \
         acknowledged (a write may still have committed: resending it is safe)"
    ))
}

impl Postgres {
    /// Connects to `url` and brings the schema up to date. While the database cannot be
    /// reached this waits, retrying every second and logging why (kpid answers health
    /// NOT_SERVING meanwhile); any other failure (say, a newer schema) returns.
    pub(crate) fn open(url: &str) -> Result<Postgres, StoreError> {
        let mut config: postgres::Config = url.parse().map_err(|e| {
            StoreError::Unavailable(format!("the PostgreSQL URL does not parse: {e}"))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let pg = Postgres {
            config,
            connection: Mutex::new(None),
        };
        let started = std::time::Instant::now();
        let mut attempts = 0u64;
        loop {
            match pg.connect() {
                Ok(client) => {
                    drop(client);
                    break;
                }
                Err(e) => {
                    if attempts.is_multiple_of(10) {
                        tracing::warn!(
                            reason = %e,
                            waited_s = started.elapsed().as_secs(),
                            "the record store's PostgreSQL database is unreachable: retrying every second"
                        );
                    }
                    attempts += 1;
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
        pg.with(migrate)?;
        Ok(pg)
    }

    /// A new connection.
    pub(crate) fn connect(&self) -> Result<Client, StoreError> {
        self.config.connect(NoTls).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot connect to the record store's PostgreSQL database ({e}): writes are \
                 refused until it is back; reads answer from the records this kpid applied"
            ))
        })
    }

    /// The connection in `slot`: a new one when there is none, it closed, or `fresh`.
    fn connected<'a>(
        &self,
        slot: &'a mut Option<Connection>,
        fresh: bool,
    ) -> Result<&'a mut Connection, StoreError> {
        if fresh || slot.as_ref().is_none_or(|c| c.client.is_closed()) {
            *slot = Some(Connection {
                client: self.connect()?,
                prepared: Prepared::default(),
            });
        }
        Ok(slot.as_mut().expect("connected"))
    }

    /// Runs `f`, which only reads (or is safe to repeat), on the connection: connecting
    /// first when there is none, and once more when the connection turns out closed (the
    /// database restarted since its last use).
    pub(crate) fn with<R>(
        &self,
        mut f: impl FnMut(&mut Client) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let mut slot = self
            .connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut retried = false;
        loop {
            let c = &mut self.connected(&mut slot, retried)?.client;
            match f(c) {
                Err(_) if !retried && c.is_closed() => retried = true,
                done => return done,
            }
        }
    }

    /// Runs `f` in a transaction (with the statements prepared on its connection) and
    /// commits it. A connection found closed when the transaction begins (nothing of it
    /// sent) is replaced once; a failure after that is the caller's (the write may or may
    /// not have committed).
    fn write<R>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>, &mut Prepared) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let mut slot = self
            .connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut retried = false;
        loop {
            let Connection { client, prepared } = self.connected(&mut slot, retried)?;
            let mut tx = match client.transaction() {
                Ok(tx) => tx,
                // The server ended the connection (it restarted): nothing was sent.
                Err(e) if !retried && (e.is_closed() || is_fatal(&e)) => {
                    retried = true;
                    continue;
                }
                Err(e) => return Err(unavailable(e)),
            };
            let outcome = f(&mut tx, prepared)?;
            tx.commit().map_err(unavailable)?;
            return Ok(outcome);
        }
    }

    /// Every record, every tenant's settings and sequence, in one snapshot: the sequences
    /// are those of the last write the records and settings include.
    pub(crate) fn load(&self) -> Result<Loaded, StoreError> {
        self.with(|c| {
            let mut tx = snapshot(c)?;
            let records = tx
                .query("SELECT tenant, kind, id, value FROM records", &[])
                .map_err(unavailable)?
                .iter()
                .map(key_value)
                .collect::<Result<Vec<_>, _>>()?;
            let mut settings = SettingsByTenant::new();
            for row in tx
                .query("SELECT tenant, value FROM settings", &[])
                .map_err(unavailable)?
            {
                let tenant: String = row.get(0);
                let decoded = TenantSettings::decode(&tenant, row.get(1))?;
                settings.insert(tenant, decoded);
            }
            let sequences = sequences(&mut tx)?;
            tx.commit().map_err(unavailable)?;
            Ok(Loaded {
                records,
                settings,
                sequences,
            })
        })
    }

    /// Upserts `records` (kind, id, value; no key twice) in one write of `tenant`,
    /// committed before this returns. `applied` is the tenant's sequence the caller has
    /// applied: the writes after it and before this one come back too.
    pub(crate) fn put(
        &self,
        tenant: &str,
        records: &[(RecordKind, &str, impl AsRef<[u8]>)],
        applied: u64,
    ) -> Result<Committed<()>, StoreError> {
        let kinds: Vec<i16> = records.iter().map(|r| i16::from(kind_byte(r.0))).collect();
        let ids: Vec<&str> = records.iter().map(|r| r.1).collect();
        let values: Vec<&[u8]> = records.iter().map(|r| r.2.as_ref()).collect();
        self.write(|tx, prepared| {
            let sequence = next_sequence(tx, prepared, tenant)?;
            let sequence_param = sequence as i64;
            let params: [&(dyn postgres::types::ToSql + Sync); 5] =
                [&tenant, &kinds, &ids, &values, &sequence_param];
            // New keys first, without the probe of `ON CONFLICT`; when a key exists, that
            // insert is undone to the savepoint and the batch upserted.
            tx.batch_execute("SAVEPOINT new_keys")
                .map_err(unavailable)?;
            let inserted = if records.len() >= COPY_FROM_ROWS {
                // A large batch is copied in, as the binary `COPY` a bulk load uses, and
                // logged by a statement of its own.
                let log = prepared.statement(tx, LOG_PUT)?;
                copy_new(tx, tenant, &kinds, &ids, &values)
                    .and_then(|()| tx.execute(&log, &params).map(|_| ()))
            } else {
                let insert = prepared.statement(tx, INSERT_NEW)?;
                tx.execute(&insert, &params).map(|_| ())
            };
            match inserted {
                Ok(()) => {}
                Err(e) if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) => {
                    tx.batch_execute("ROLLBACK TO SAVEPOINT new_keys")
                        .map_err(unavailable)?;
                    let put = prepared.statement(tx, PUT)?;
                    tx.execute(&put, &params).map_err(unavailable)?;
                }
                Err(e) => return Err(unavailable(e)),
            }
            let missed = read_log(tx, tenant, applied, sequence - 1)?;
            Ok(Committed {
                sequence,
                missed,
                outcome: (),
            })
        })
    }

    /// Deletes records by key in one write of `tenant` (none when no key exists),
    /// committed before this returns; the kind and id of each record deleted. `applied` as
    /// for [`Postgres::put`]; with nothing deleted, the sequence is the tenant's current.
    pub(crate) fn delete(
        &self,
        tenant: &str,
        keys: &[(RecordKind, &str)],
        applied: u64,
    ) -> Result<Committed<Vec<(RecordKind, String)>>, StoreError> {
        let kinds: Vec<i16> = keys.iter().map(|k| i16::from(kind_byte(k.0))).collect();
        let ids: Vec<&str> = keys.iter().map(|k| k.1).collect();
        self.write(|tx, prepared| {
            let current = current_sequence(tx, prepared, tenant)?;
            let sequence = current + 1;
            let delete = prepared.statement(tx, DELETE)?;
            let rows = tx
                .query(&delete, &[&tenant, &kinds, &ids, &(sequence as i64)])
                .map_err(unavailable)?;
            let deleted = rows
                .iter()
                .map(|row| Ok((record_kind(row.get(0))?, row.get::<_, String>(1))))
                .collect::<Result<Vec<_>, StoreError>>()?;
            if deleted.is_empty() {
                let missed = read_log(tx, tenant, applied, current)?;
                return Ok(Committed {
                    sequence: current,
                    missed,
                    outcome: deleted,
                });
            }
            let advance = prepared.statement(tx, ADVANCE_SEQUENCE)?;
            tx.execute(&advance, &[&tenant, &(sequence as i64), &CHANNEL])
                .map_err(unavailable)?;
            let missed = read_log(tx, tenant, applied, current)?;
            Ok(Committed {
                sequence,
                missed,
                outcome: deleted,
            })
        })
    }

    /// Changes a tenant's settings in one write, committed before this returns: `change`
    /// gets the settings the database holds (`None`: the defaults) and returns the new
    /// ones. `applied` as for [`Postgres::put`].
    pub(crate) fn update_settings(
        &self,
        tenant: &str,
        change: impl FnOnce(Option<TenantSettings>) -> TenantSettings,
        applied: u64,
    ) -> Result<Committed<TenantSettings>, StoreError> {
        self.write(|tx, prepared| {
            let sequence = next_sequence(tx, prepared, tenant)?;
            let stored = tx
                .query_opt("SELECT value FROM settings WHERE tenant = $1", &[&tenant])
                .map_err(unavailable)?
                .map(|row| TenantSettings::decode(tenant, row.get(0)))
                .transpose()?;
            let changed = change(stored);
            let value = changed.encode();
            tx.execute(
                "WITH written AS (
                     INSERT INTO settings (tenant, value) VALUES ($1, $2)
                     ON CONFLICT (tenant) DO UPDATE SET value = EXCLUDED.value
                 )
                 INSERT INTO change_log (tenant, sequence, kinds, ids, contents)
                 VALUES ($1, $3, ARRAY[$4::int2], ARRAY[''], ARRAY[$2::bytea])",
                &[&tenant, &value, &(sequence as i64), &SETTINGS_KIND],
            )
            .map_err(unavailable)?;
            let missed = read_log(tx, tenant, applied, sequence - 1)?;
            Ok(Committed {
                sequence,
                missed,
                outcome: changed,
            })
        })
    }

    /// Up to `limit` records of a tenant (optionally one kind) after `after` (kind byte,
    /// id), in key order.
    pub(crate) fn list(
        &self,
        tenant: &str,
        kind: Option<RecordKind>,
        after: Option<(RecordKind, String)>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        let kind = kind.map(|k| i16::from(kind_byte(k)));
        let (after_kind, after_id) = match &after {
            Some((k, id)) => (i16::from(kind_byte(*k)), id.as_str()),
            None => (-1, ""),
        };
        let limit = limit as i64;
        self.with(|c| {
            let rows = c
                .query(
                    "SELECT tenant, kind, id, value FROM records
                     WHERE tenant = $1 AND ($2::int2 IS NULL OR kind = $2)
                       AND (kind, id) > ($3::int2, $4::text COLLATE \"C\")
                     ORDER BY kind, id LIMIT $5",
                    &[&tenant, &kind, &after_kind, &after_id, &limit],
                )
                .map_err(unavailable)?;
            rows.iter().map(key_value).collect()
        })
    }
}

/// The `kind` and `value` of `record`'s row in `records`, as a write stores them: for a
/// benchmark writing the same rows another way (kpi-bench's `COPY` floor).
pub fn records_row(record: &Record) -> (i16, Vec<u8>) {
    (
        i16::from(kind_byte(record.kind())),
        encode_record_without_slot(record),
    )
}

/// Whether the server ended the connection with the error (a shutdown, say).
fn is_fatal(e: &postgres::Error) -> bool {
    e.as_db_error().is_some_and(|db| db.severity() == "FATAL")
}

/// A read-only transaction that sees one snapshot of the database.
fn snapshot(c: &mut Client) -> Result<postgres::Transaction<'_>, StoreError> {
    c.build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(unavailable)
}

/// Bumps the tenant's sequence (`$1`; locking its row until the transaction ends) and
/// queues the notification of the write on the channel `$2`: the write's sequence.
const NEXT_SEQUENCE: &str = "WITH bumped AS (
         INSERT INTO tenant_sequences (tenant, sequence) VALUES ($1, 1)
         ON CONFLICT (tenant) DO UPDATE SET sequence = tenant_sequences.sequence + 1
         RETURNING sequence
     )
     SELECT sequence, pg_notify($2, $1) FROM bumped";

/// The tenant's (`$1`) sequence, its row locked until the transaction ends (made at 0 when
/// the tenant never wrote).
const CURRENT_SEQUENCE: &str = "INSERT INTO tenant_sequences (tenant, sequence) VALUES ($1, 0)
     ON CONFLICT (tenant) DO UPDATE SET sequence = tenant_sequences.sequence
     RETURNING sequence";

/// Sets the tenant's (`$1`, row locked) sequence to `$2` and queues the notification of the
/// write on the channel `$3`.
const ADVANCE_SEQUENCE: &str = "WITH advanced AS (
         UPDATE tenant_sequences SET sequence = $2 WHERE tenant = $1
     )
     SELECT pg_notify($3, $1)";

/// One write of records: upserts them into `records` and logs them as one row of
/// `change_log`. The batch is sent once, as arrays (`$2` kinds, `$3` ids, `$4` values; no
/// key twice), for tenant `$1` under the write's sequence `$5`.
const PUT: &str = "WITH upserted AS (
         INSERT INTO records (tenant, kind, id, value)
         SELECT $1::text, kind, id, value
         FROM unnest($2::int2[], $3::text[], $4::bytea[]) AS batch(kind, id, value)
         ON CONFLICT (tenant, kind, id) DO UPDATE SET value = EXCLUDED.value
     )
     INSERT INTO change_log (tenant, sequence, kinds, ids, contents)
     VALUES ($1, $5, $2, $3, $4)";

/// [`PUT`] for keys none of which exists: a plain insert (a unique violation when one
/// does), which does not probe each key before inserting it as `ON CONFLICT` does (that
/// probe costs as much as the insert: BENCHMARKS.md).
const INSERT_NEW: &str = "WITH inserted AS (
         INSERT INTO records (tenant, kind, id, value)
         SELECT $1::text, kind, id, value
         FROM unnest($2::int2[], $3::text[], $4::bytea[]) AS batch(kind, id, value)
     )
     INSERT INTO change_log (tenant, sequence, kinds, ids, contents)
     VALUES ($1, $5, $2, $3, $4)";

/// Logs one write of records (`$2` kinds, `$3` ids, `$4` values) of tenant `$1` under the
/// sequence `$5` as [`INSERT_NEW`] does, for a batch [`copy_new`] inserted.
const LOG_PUT: &str = "INSERT INTO change_log (tenant, sequence, kinds, ids, contents)
     VALUES ($1, $5, $2, $3, $4)";

/// Batches of at least this many records are inserted with [`copy_new`] (a `COPY` costs a
/// round trip more than [`INSERT_NEW`], and saves the executor's work per row).
const COPY_FROM_ROWS: usize = 256;

/// Inserts the records (kinds, ids and values, in step) of `tenant` with a binary `COPY`
/// into `records`: a unique violation when a key exists, as [`INSERT_NEW`].
fn copy_new(
    tx: &mut Transaction<'_>,
    tenant: &str,
    kinds: &[i16],
    ids: &[&str],
    values: &[&[u8]],
) -> Result<(), postgres::Error> {
    use postgres::binary_copy::BinaryCopyInWriter;
    use postgres::types::Type;
    let sink = tx.copy_in("COPY records (tenant, kind, id, value) FROM STDIN BINARY")?;
    let mut writer =
        BinaryCopyInWriter::new(sink, &[Type::TEXT, Type::INT2, Type::TEXT, Type::BYTEA]);
    for ((kind, id), value) in kinds.iter().zip(ids).zip(values) {
        writer.write(&[&tenant, kind, id, value])?;
    }
    writer.finish()?;
    Ok(())
}

/// One write of deletes: deletes tenant `$1`'s records of the keys `$2` (kinds) and `$3`
/// (ids), logs those that existed as one row of `change_log` under the sequence `$4`
/// (none when nothing was deleted), and returns their kinds and ids.
const DELETE: &str = "WITH deleted AS (
         DELETE FROM records r
         USING unnest($2::int2[], $3::text[]) AS k(kind, id)
         WHERE r.tenant = $1 AND r.kind = k.kind AND r.id = k.id COLLATE \"C\"
         RETURNING r.kind, r.id
     ),
     logged AS (
         INSERT INTO change_log (tenant, sequence, kinds, ids, contents)
         SELECT $1::text, $4::int8, array_agg(kind ORDER BY kind, id),
                array_agg(id ORDER BY kind, id), array_agg(NULL::bytea)
         FROM deleted HAVING count(*) > 0
     )
     SELECT kind, id FROM deleted";

/// Bumps the tenant's sequence (locking its row until the transaction ends), queues the
/// notification of the write, and returns the write's sequence.
fn next_sequence(
    tx: &mut Transaction<'_>,
    prepared: &mut Prepared,
    tenant: &str,
) -> Result<u64, StoreError> {
    let statement = prepared.statement(tx, NEXT_SEQUENCE)?;
    let row = tx
        .query_one(&statement, &[&tenant, &CHANNEL])
        .map_err(unavailable)?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// The tenant's sequence, its row locked until the transaction ends (made at 0 when the
/// tenant never wrote).
fn current_sequence(
    tx: &mut Transaction<'_>,
    prepared: &mut Prepared,
    tenant: &str,
) -> Result<u64, StoreError> {
    let statement = prepared.statement(tx, CURRENT_SEQUENCE)?;
    let row = tx.query_one(&statement, &[&tenant]).map_err(unavailable)?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// Every tenant's sequence.
pub(crate) fn sequences(c: &mut impl GenericClient) -> Result<Vec<(String, u64)>, StoreError> {
    Ok(
        c.query("SELECT tenant, sequence FROM tenant_sequences", &[])
            .map_err(unavailable)?
            .iter()
            .map(|row| (row.get::<_, String>(0), row.get::<_, i64>(1) as u64))
            .collect(),
    )
}

/// One tenant's sequence (0 when it never wrote).
pub(crate) fn sequence_of(c: &mut impl GenericClient, tenant: &str) -> Result<u64, StoreError> {
    Ok(c.query_opt(
        "SELECT sequence FROM tenant_sequences WHERE tenant = $1",
        &[&tenant],
    )
    .map_err(unavailable)?
    .map_or(0, |row| row.get::<_, i64>(0) as u64))
}

/// The writes of `tenant` with a sequence in `after + 1 ..= through`, in order, as the
/// change log holds them (a write pruned from it is missing: the caller checks).
pub(crate) fn read_log(
    c: &mut impl GenericClient,
    tenant: &str,
    after: u64,
    through: u64,
) -> Result<Vec<LoggedWrite>, StoreError> {
    if through <= after {
        return Ok(Vec::new());
    }
    let rows = c
        .query(
            "SELECT sequence, kinds, ids, contents FROM change_log
             WHERE tenant = $1 AND sequence > $2 AND sequence <= $3
             ORDER BY sequence",
            &[&tenant, &(after as i64), &(through as i64)],
        )
        .map_err(unavailable)?;
    rows.iter()
        .map(|row| {
            let sequence = row.get::<_, i64>(0) as u64;
            let kinds: Vec<i16> = row.get(1);
            let ids: Vec<String> = row.get(2);
            let contents: Vec<Option<&[u8]>> = row.get(3);
            if kinds.len() != ids.len() || ids.len() != contents.len() {
                return Err(StoreError::Corrupt(format!(
                    "the change log of tenant `{tenant}` at sequence {sequence} holds {} kinds, \
                     {} ids and {} contents",
                    kinds.len(),
                    ids.len(),
                    contents.len()
                )));
            }
            let changes = kinds
                .into_iter()
                .zip(ids)
                .zip(contents)
                .map(|((kind, id), content)| logged_change(tenant, sequence, kind, id, content))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(LoggedWrite { sequence, changes })
        })
        .collect()
}

/// One change of a logged write: a settings change (kind 0), a delete (no content) or an
/// upsert (the record's stored value, which must be of the logged kind and id).
fn logged_change(
    tenant: &str,
    sequence: u64,
    kind: i16,
    id: String,
    content: Option<&[u8]>,
) -> Result<Change, StoreError> {
    Ok(match (kind, content) {
        (SETTINGS_KIND, Some(value)) => Change::Settings(TenantSettings::decode(tenant, value)?),
        (kind, None) => Change::Delete(record_kind(kind)?, id),
        (kind, Some(value)) => {
            let kind = record_kind(kind)?;
            let key = record_key(tenant, kind, &id);
            let record = decode_record(&key, value)?;
            if record.kind() != kind || record.id() != id {
                return Err(StoreError::Corrupt(format!(
                    "the change log of tenant `{tenant}` at sequence {sequence} holds the {} \
                     record {} under the key of the {} record {id}",
                    record.kind().as_str(),
                    record.id(),
                    kind.as_str()
                )));
            }
            Change::Upsert(record)
        }
    })
}

/// Everything of one tenant, in one snapshot.
pub(crate) fn tenant_state(c: &mut Client, tenant: &str) -> Result<TenantState, StoreError> {
    let mut tx = snapshot(c)?;
    let records = tx
        .query(
            "SELECT tenant, kind, id, value FROM records WHERE tenant = $1",
            &[&tenant],
        )
        .map_err(unavailable)?
        .iter()
        .map(key_value)
        .collect::<Result<Vec<_>, _>>()?;
    let settings = tx
        .query_opt("SELECT value FROM settings WHERE tenant = $1", &[&tenant])
        .map_err(unavailable)?
        .map(|row| TenantSettings::decode(tenant, row.get(0)))
        .transpose()?;
    let sequence = sequence_of(&mut tx, tenant)?;
    tx.commit().map_err(unavailable)?;
    Ok(TenantState {
        records,
        settings,
        sequence,
    })
}

/// The record kind of a stored key byte.
fn record_kind(kind: i16) -> Result<RecordKind, StoreError> {
    u8::try_from(kind)
        .ok()
        .and_then(kind_of_byte)
        .ok_or_else(|| StoreError::Corrupt(format!("a stored record has the unknown kind {kind}")))
}

/// A `(tenant, kind, id, value)` row as a sled key and value.
fn key_value(row: &postgres::Row) -> Result<KeyValue, StoreError> {
    let tenant: &str = row.get(0);
    let kind = record_kind(row.get(1))?;
    let id: &str = row.get(2);
    let value: Vec<u8> = row.get(3);
    Ok((record_key(tenant, kind, id), value))
}

#[cfg(test)]
mod tests;
