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
//! - `change_log (tenant, sequence, position, kind, id, value, logged_at)`: what each write
//!   changed, in order: an upserted record (its value), a deleted one (`value` NULL), or
//!   the tenant's settings (`kind` 0, `id` '', the settings' value).
//!
//! A write is one transaction: it first bumps its tenant's row of `tenant_sequences`
//! (which locks it until the commit), so one tenant's writes commit one at a time, each
//! with the next sequence: a tenant's sequences are gapless and in commit order. It then
//! changes `records` or `settings`, appends its changes to `change_log` under that
//! sequence, and notifies `kpid_changes` with the tenant's name (delivered at the commit).
//! A write is acknowledged only after its transaction commits.
//!
//! The change log is only read by replicas catching up, from the sequence they applied;
//! one that opens reads `records`, `settings` and `tenant_sequences` in one snapshot.
//! So old entries may be deleted at any time (README, "Pruning the change log"); a replica
//! that finds the entries it needs deleted reloads that tenant from `records`.
//!
//! Migrations are versioned and applied at open in one transaction that holds a lock on
//! `kpid_migrations`, so replicas starting together migrate once; a database with a
//! version newer than this binary knows is refused. The client is the blocking `postgres`
//! crate: the store's API is synchronous and runs on blocking threads.

use std::sync::Mutex;
use std::time::Duration;

use postgres::{Client, GenericClient, IsolationLevel, NoTls};

use crate::codec::{decode_record, kind_byte, kind_of_byte, record_key};
use crate::error::StoreError;
use crate::record::{Record, RecordKind};
use crate::settings::{SettingsByTenant, TenantSettings};

/// The migrations, in order: version `i + 1` is `MIGRATIONS[i]`.
const MIGRATIONS: &[&str] = &[
    // 1: records and settings.
    r#"
    CREATE TABLE records (
        tenant text NOT NULL,
        kind smallint NOT NULL,
        id text COLLATE "C" NOT NULL,
        value bytea NOT NULL,
        PRIMARY KEY (tenant, kind, id)
    );
    CREATE TABLE settings (
        tenant text NOT NULL PRIMARY KEY,
        value bytea NOT NULL
    );
    "#,
    // 2: replicas. Values lose the row slot version 1 stored (format 0x02 → 0x01: each
    // process keeps its own slots), and the per-tenant sequence and change log.
    r#"
    UPDATE records SET value = '\x01'::bytea || substring(value FROM 6)
        WHERE get_byte(value, 0) = 2;
    CREATE TABLE tenant_sequences (
        tenant text NOT NULL PRIMARY KEY,
        sequence bigint NOT NULL
    );
    CREATE TABLE change_log (
        tenant text NOT NULL,
        sequence bigint NOT NULL,
        position integer NOT NULL,
        kind smallint NOT NULL,
        id text COLLATE "C" NOT NULL,
        value bytea,
        logged_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant, sequence, position)
    );
    "#,
];

/// The schema version this binary writes.
pub(crate) const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// The key of the transaction advisory lock a kpid migrating the schema holds.
const MIGRATION_LOCK: i64 = 0x6b70_6964; // "kpid"

/// The channel a write notifies, with its tenant's name as the payload.
pub(crate) const CHANNEL: &str = "kpid_changes";

/// The `change_log.kind` of a settings change (no record kind has key byte 0).
const SETTINGS_KIND: i16 = 0;

/// How long connecting may take before it counts as a failure (unless the URL says).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One stored record as read back: its sled-layout key and value.
pub(crate) type KeyValue = (Vec<u8>, Vec<u8>);

/// One change a write made.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// A record stored (new, or replacing the one with its kind and id).
    Upsert(Record),
    /// A record deleted.
    Delete(RecordKind, String),
    /// The tenant's settings, as they are after the write.
    Settings(TenantSettings),
}

/// The changes of one write, with the tenant's sequence it committed under.
#[derive(Debug, Clone)]
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
    client: Mutex<Option<Client>>,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // The blocking client owns a small runtime, which must not be dropped on an async
        // thread (a server drops the store there): drop it on a thread of its own.
        if let Some(client) = self
            .client
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            let _ = std::thread::spawn(move || drop(client)).join();
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
            client: Mutex::new(None),
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
        slot: &'a mut Option<Client>,
        fresh: bool,
    ) -> Result<&'a mut Client, StoreError> {
        if fresh || slot.as_ref().is_none_or(Client::is_closed) {
            *slot = Some(self.connect()?);
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
            .client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut retried = false;
        loop {
            let c = self.connected(&mut slot, retried)?;
            match f(c) {
                Err(_) if !retried && c.is_closed() => retried = true,
                done => return done,
            }
        }
    }

    /// Runs `f` in a transaction and commits it. A connection found closed when the
    /// transaction begins (nothing of it sent) is replaced once; a failure after that is
    /// the caller's (the write may or may not have committed).
    fn write<R>(
        &self,
        f: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let mut slot = self
            .client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut retried = false;
        loop {
            let c = self.connected(&mut slot, retried)?;
            let mut tx = match c.transaction() {
                Ok(tx) => tx,
                // The server ended the connection (it restarted): nothing was sent.
                Err(e) if !retried && (e.is_closed() || is_fatal(&e)) => {
                    retried = true;
                    continue;
                }
                Err(e) => return Err(unavailable(e)),
            };
            let outcome = f(&mut tx)?;
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
        records: &[(RecordKind, &str, Vec<u8>)],
        applied: u64,
    ) -> Result<Committed<()>, StoreError> {
        let kinds: Vec<i16> = records.iter().map(|r| i16::from(kind_byte(r.0))).collect();
        let ids: Vec<&str> = records.iter().map(|r| r.1).collect();
        let values: Vec<&[u8]> = records.iter().map(|r| r.2.as_slice()).collect();
        self.write(|tx| {
            let sequence = next_sequence(tx, tenant)?;
            tx.execute(
                "WITH input AS (
                     SELECT * FROM unnest($2::int2[], $3::text[], $4::bytea[])
                         WITH ORDINALITY AS t(kind, id, value, position)
                 ),
                 upsert AS (
                     INSERT INTO records (tenant, kind, id, value)
                     SELECT $1::text, kind, id, value FROM input
                     ON CONFLICT (tenant, kind, id) DO UPDATE SET value = EXCLUDED.value
                 )
                 INSERT INTO change_log (tenant, sequence, position, kind, id, value)
                 SELECT $1::text, $5::int8, position, kind, id, value FROM input",
                &[&tenant, &kinds, &ids, &values, &(sequence as i64)],
            )
            .map_err(unavailable)?;
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
        self.write(|tx| {
            let current = current_sequence(tx, tenant)?;
            let sequence = current + 1;
            let rows = tx
                .query(
                    "WITH deleted AS (
                         DELETE FROM records r
                         USING unnest($2::int2[], $3::text[]) AS k(kind, id)
                         WHERE r.tenant = $1 AND r.kind = k.kind AND r.id = k.id COLLATE \"C\"
                         RETURNING r.kind, r.id
                     ),
                     logged AS (
                         INSERT INTO change_log (tenant, sequence, position, kind, id, value)
                         SELECT $1::text, $4::int8, row_number() OVER (), kind, id, NULL FROM deleted
                     )
                     SELECT kind, id FROM deleted",
                    &[&tenant, &kinds, &ids, &(sequence as i64)],
                )
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
            tx.execute(
                "UPDATE tenant_sequences SET sequence = $2 WHERE tenant = $1",
                &[&tenant, &(sequence as i64)],
            )
            .map_err(unavailable)?;
            notify(tx, tenant)?;
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
        self.write(|tx| {
            let sequence = next_sequence(tx, tenant)?;
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
                 INSERT INTO change_log (tenant, sequence, position, kind, id, value)
                 VALUES ($1, $3, 1, $4, '', $2)",
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

/// Bumps the tenant's sequence (locking its row until the transaction ends), queues the
/// notification of the write, and returns the write's sequence.
fn next_sequence(tx: &mut postgres::Transaction<'_>, tenant: &str) -> Result<u64, StoreError> {
    let row = tx
        .query_one(
            "WITH bumped AS (
                 INSERT INTO tenant_sequences (tenant, sequence) VALUES ($1, 1)
                 ON CONFLICT (tenant) DO UPDATE SET sequence = tenant_sequences.sequence + 1
                 RETURNING sequence
             )
             SELECT sequence, pg_notify($2, $1) FROM bumped",
            &[&tenant, &CHANNEL],
        )
        .map_err(unavailable)?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// The tenant's sequence, its row locked until the transaction ends (made at 0 when the
/// tenant never wrote).
fn current_sequence(tx: &mut postgres::Transaction<'_>, tenant: &str) -> Result<u64, StoreError> {
    let row = tx
        .query_one(
            "INSERT INTO tenant_sequences (tenant, sequence) VALUES ($1, 0)
             ON CONFLICT (tenant) DO UPDATE SET sequence = tenant_sequences.sequence
             RETURNING sequence",
            &[&tenant],
        )
        .map_err(unavailable)?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// Queues the notification of a write of `tenant` (sent when the transaction commits).
fn notify(tx: &mut postgres::Transaction<'_>, tenant: &str) -> Result<(), StoreError> {
    tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &tenant])
        .map_err(unavailable)?;
    Ok(())
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
            "SELECT sequence, kind, id, value FROM change_log
             WHERE tenant = $1 AND sequence > $2 AND sequence <= $3
             ORDER BY sequence, position",
            &[&tenant, &(after as i64), &(through as i64)],
        )
        .map_err(unavailable)?;
    let mut writes: Vec<LoggedWrite> = Vec::new();
    for row in &rows {
        let sequence = row.get::<_, i64>(0) as u64;
        let kind: i16 = row.get(1);
        let id: String = row.get(2);
        let value: Option<&[u8]> = row.get(3);
        let change = match (kind, value) {
            (SETTINGS_KIND, Some(value)) => {
                Change::Settings(TenantSettings::decode(tenant, value)?)
            }
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
        };
        match writes.last_mut() {
            Some(last) if last.sequence == sequence => last.changes.push(change),
            _ => writes.push(LoggedWrite {
                sequence,
                changes: vec![change],
            }),
        }
    }
    Ok(writes)
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

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction, one kpid at a time; refuses a
/// newer database.
fn migrate(c: &mut Client) -> Result<(), StoreError> {
    let mut tx = c.transaction().map_err(unavailable)?;
    // Replicas starting together over a new database would race to create the table.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(unavailable)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS kpid_migrations (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         );
         LOCK TABLE kpid_migrations IN EXCLUSIVE MODE;",
    )
    .map_err(unavailable)?;
    let current: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM kpid_migrations", &[])
        .map_err(unavailable)?
        .get(0);
    if current > SCHEMA_VERSION {
        return Err(StoreError::Unavailable(format!(
            "the PostgreSQL database has schema version {current}, newer than this kpid \
             knows ({SCHEMA_VERSION}): run a kpid at least as new as the one that wrote it"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i as i32 + 1;
        tx.batch_execute(sql).map_err(unavailable)?;
        tx.execute(
            "INSERT INTO kpid_migrations (version) VALUES ($1)",
            &[&version],
        )
        .map_err(unavailable)?;
        tracing::info!(version, "PostgreSQL schema migrated");
    }
    tx.commit().map_err(unavailable)?;
    Ok(())
}
