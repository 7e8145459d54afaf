//! The PostgreSQL backend: the records, deletes and tenant settings live in PostgreSQL
//! instead of sled; in memory the store keeps the same rows and index.
//!
//! Schema (every primary key starts with the tenant, so Citus can distribute each table by
//! it; README "PostgreSQL"):
//!
//! - `kpid_migrations (version, applied_at)`: the migrations applied, one row each.
//! - `records (tenant, kind, id, value)`: one row per record; `kind` is the kind's key byte
//!   and `value` the very bytes sled holds (`codec.rs`: format byte, row slot, MessagePack),
//!   so both backends share one record codec. `id` sorts bytewise (`COLLATE "C"`), as
//!   sled's keys do, so listings page in the same order on both.
//! - `settings (tenant, value)`: a tenant's settings, encoded as in sled.
//!
//! Migrations are versioned and applied at open in one transaction that holds a lock on
//! `kpid_migrations`; a database with a version newer than this binary knows is refused.
//! A write is acknowledged only after its transaction commits. The client is the blocking
//! `postgres` crate: the store's API is synchronous and runs on blocking threads.

use std::collections::HashMap;
use std::sync::Mutex;

use postgres::{Client, NoTls};

use crate::codec::{kind_byte, kind_of_byte, record_key, value_slot};
use crate::error::StoreError;
use crate::record::RecordKind;
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
];

/// The key of the session advisory lock a kpid holds on its database.
const SERVER_LOCK: i64 = 0x6b70_6964; // "kpid"

/// The schema version this binary writes.
pub(crate) const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// One stored record as read back: its sled-layout key and value.
pub(crate) type KeyValue = (Vec<u8>, Vec<u8>);

/// A connection to the database (reconnected when it drops).
pub(crate) struct Postgres {
    url: String,
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
fn unavailable(e: postgres::Error) -> StoreError {
    let text = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => e.to_string(),
    };
    StoreError::Unavailable(format!(
        "the record store's PostgreSQL database failed: {text}; nothing of this call was stored"
    ))
}

impl Postgres {
    /// Connects to `url` and brings the schema up to date. While the database cannot be
    /// reached this waits, retrying every second and logging why (kpid answers health
    /// NOT_SERVING meanwhile); any other failure (say, a newer schema) returns.
    pub(crate) fn open(url: &str) -> Result<Postgres, StoreError> {
        let pg = Postgres {
            url: url.to_owned(),
            client: Mutex::new(None),
        };
        let started = std::time::Instant::now();
        let mut attempts = 0u64;
        loop {
            match Client::connect(url, NoTls) {
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
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
            }
        }
        pg.with(migrate)?;
        Ok(pg)
    }

    /// Runs `f` on the connection, connecting first when there is none (or it closed).
    pub(crate) fn with<R>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let mut slot = self
            .client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.as_ref().is_none_or(Client::is_closed) {
            let client = Client::connect(&self.url, NoTls).map_err(|e| {
                StoreError::Unavailable(format!(
                    "cannot connect to the record store's PostgreSQL database: {e}"
                ))
            })?;
            // One kpid per database until replicas exist: each keeps its own row slots in
            // the stored values, which two writers would hand out twice.
            let mut client = client;
            let alone: bool = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&SERVER_LOCK])
                .map_err(unavailable)?
                .get(0);
            if !alone {
                return Err(StoreError::Unavailable(
                    "another kpid serves this PostgreSQL database (it holds kpid's advisory \
                     lock): one kpid per database until replicas are supported"
                        .into(),
                ));
            }
            *slot = Some(client);
        }
        f(slot.as_mut().expect("connected"))
    }

    /// Every record of every tenant, as sled keys and values.
    pub(crate) fn scan(&self) -> Result<Vec<KeyValue>, StoreError> {
        self.with(|c| {
            let rows = c
                .query("SELECT tenant, kind, id, value FROM records", &[])
                .map_err(unavailable)?;
            rows.iter().map(key_value).collect()
        })
    }

    /// Every tenant's settings.
    pub(crate) fn settings(&self) -> Result<SettingsByTenant, StoreError> {
        self.with(|c| {
            let rows = c
                .query("SELECT tenant, value FROM settings", &[])
                .map_err(unavailable)?;
            let mut out = SettingsByTenant::new();
            for row in rows {
                let tenant: String = row.get(0);
                let value: Vec<u8> = row.get(1);
                let settings = TenantSettings::decode(&tenant, &value)?;
                out.insert(tenant, settings);
            }
            Ok(out)
        })
    }

    /// Upserts `records` (kind, id, value; no key twice) in one transaction, committed
    /// before this returns; the row slot of each record that one replaced.
    pub(crate) fn put(
        &self,
        tenant: &str,
        records: &[(RecordKind, &str, Vec<u8>)],
    ) -> Result<HashMap<(RecordKind, String), u32>, StoreError> {
        let kinds: Vec<i16> = records.iter().map(|r| i16::from(kind_byte(r.0))).collect();
        let ids: Vec<&str> = records.iter().map(|r| r.1).collect();
        let values: Vec<&[u8]> = records.iter().map(|r| r.2.as_slice()).collect();
        self.with(|c| {
            let mut tx = c.transaction().map_err(unavailable)?;
            // Every part of one statement sees the same snapshot: `old` reads the values
            // the upsert replaces.
            let rows = tx
                .query(
                    "WITH input AS (
                         SELECT * FROM unnest($2::int2[], $3::text[], $4::bytea[]) AS t(kind, id, value)
                     ),
                     old AS (
                         SELECT r.kind, r.id, r.value FROM records r
                         JOIN input i ON r.kind = i.kind AND r.id = i.id COLLATE \"C\"
                         WHERE r.tenant = $1
                     ),
                     upsert AS (
                         INSERT INTO records (tenant, kind, id, value)
                         SELECT $1, kind, id, value FROM input
                         ON CONFLICT (tenant, kind, id) DO UPDATE SET value = EXCLUDED.value
                     )
                     SELECT $1::text, kind, id, value FROM old",
                    &[&tenant, &kinds, &ids, &values],
                )
                .map_err(unavailable)?;
            let replaced = slots(&rows)?;
            tx.commit().map_err(unavailable)?;
            Ok(replaced)
        })
    }

    /// Deletes records by key in one transaction, committed before this returns; the row
    /// slot of each record that existed.
    pub(crate) fn delete(
        &self,
        tenant: &str,
        keys: &[(RecordKind, &str)],
    ) -> Result<HashMap<(RecordKind, String), u32>, StoreError> {
        let kinds: Vec<i16> = keys.iter().map(|k| i16::from(kind_byte(k.0))).collect();
        let ids: Vec<&str> = keys.iter().map(|k| k.1).collect();
        self.with(|c| {
            let rows = c
                .query(
                    "DELETE FROM records r
                     USING unnest($2::int2[], $3::text[]) AS k(kind, id)
                     WHERE r.tenant = $1 AND r.kind = k.kind AND r.id = k.id COLLATE \"C\"
                     RETURNING r.tenant, r.kind, r.id, r.value",
                    &[&tenant, &kinds, &ids],
                )
                .map_err(unavailable)?;
            slots(&rows)
        })
    }

    /// Stores a tenant's settings, committed before this returns.
    pub(crate) fn write_settings(
        &self,
        tenant: &str,
        settings: &TenantSettings,
    ) -> Result<(), StoreError> {
        let value = settings.encode();
        self.with(|c| {
            c.execute(
                "INSERT INTO settings (tenant, value) VALUES ($1, $2)
                 ON CONFLICT (tenant) DO UPDATE SET value = EXCLUDED.value",
                &[&tenant, &value],
            )
            .map_err(unavailable)?;
            Ok(())
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

/// A `(tenant, kind, id, value)` row as a sled key and value.
fn key_value(row: &postgres::Row) -> Result<KeyValue, StoreError> {
    let tenant: &str = row.get(0);
    let kind: i16 = row.get(1);
    let id: &str = row.get(2);
    let value: Vec<u8> = row.get(3);
    let kind = u8::try_from(kind)
        .ok()
        .and_then(kind_of_byte)
        .ok_or_else(|| StoreError::Corrupt(format!("record {id} has the unknown kind {kind}")))?;
    Ok((record_key(tenant, kind, id), value))
}

/// The row slot of each `(tenant, kind, id, value)` row, by kind and id.
fn slots(rows: &[postgres::Row]) -> Result<HashMap<(RecordKind, String), u32>, StoreError> {
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        let (key, value) = key_value(row)?;
        let kind = kind_of_byte(row.get::<_, i16>(1) as u8).expect("checked");
        if let Some(slot) = value_slot(&key, &value)? {
            out.insert((kind, row.get::<_, String>(2)), slot);
        }
    }
    Ok(out)
}

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction; refuses a newer database.
fn migrate(c: &mut Client) -> Result<(), StoreError> {
    let mut tx = c.transaction().map_err(unavailable)?;
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
