//! The PostgreSQL backend (`--store postgres://…`): the records, settings and each tenant's
//! change log in one database (`pg.rs`: the schema and its SQL) that any number of kpid
//! processes share. Each write is one transaction, acknowledged after its commit, then
//! applied to the rows in the tenant's sequence order together with the other replicas'
//! writes it had not applied yet; the follower thread applies the rest (`replica.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use super::backend::{AnyBackend, Backend};
use super::pg::{Change, LoggedWrite, Postgres};
use super::{
    replica, Inner, LoggedOwn, OpenOptions, RecordKey, Store, Tenant, TenantRecords, Unapplied,
    WriteHealth,
};
use crate::codec::{decode_record, encode_record_without_slot};
use crate::error::StoreError;
use crate::record::{Record, RecordKind};
use crate::settings::{SettingsUpdate, TenantSettings};

/// The records in a PostgreSQL database shared by replicas.
pub(super) struct PostgresBackend {
    /// The database (its connection, and the SQL of every read and write).
    pub(super) database: Postgres,
}

impl Store {
    /// Opens the store over the PostgreSQL database at `url` (`postgres://user@host:port/db`):
    /// migrates its schema (refusing one newer than this binary), loads every tenant's
    /// records, settings and sequence into memory (in one snapshot), and starts following
    /// the change log the other replicas write (`replica.rs`).
    pub fn open_postgres(url: &str, options: OpenOptions) -> Result<Store, StoreError> {
        let started = std::time::Instant::now();
        let database = Postgres::open(url)?;
        let loaded = database.load()?;
        let mut tenants: HashMap<String, TenantRecords> = HashMap::new();
        replica::place_stored(&mut tenants, &loaded.records)?;
        let sequences: HashMap<String, u64> = loaded.sequences.into_iter().collect();
        for tenant in sequences.keys() {
            tenants.entry(tenant.clone()).or_default();
        }
        tracing::info!(
            records = loaded.records.len(),
            tenants = tenants.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "record store loaded from PostgreSQL"
        );
        let tenants = tenants
            .into_iter()
            .map(|(name, records)| {
                let sequence = sequences.get(&name).copied().unwrap_or(0);
                (name, Arc::new(Tenant::new(records, sequence)))
            })
            .collect();
        let backend = AnyBackend::Postgres(PostgresBackend { database });
        let store = Store {
            inner: Arc::new(Inner::loaded(tenants, loaded.settings, backend)),
        };
        store.set_memory_budget(options.memory_budget);
        store.follow();
        Ok(store)
    }
}

impl Backend for PostgresBackend {
    /// Each key once (the later record wins, as in sled), without the row slot.
    fn encode(&self, records: &mut Vec<Record>) -> Vec<Vec<u8>> {
        let mut seen = std::collections::HashSet::new();
        let mut keep: Vec<bool> = records
            .iter()
            .rev()
            .map(|r| seen.insert((r.kind(), r.id())))
            .collect();
        drop(seen);
        keep.reverse();
        let mut keep = keep.into_iter();
        records.retain(|_| keep.next().unwrap_or(true));
        records.iter().map(encode_record_without_slot).collect()
    }

    /// One write, committed; applied to the rows in the tenant's sequence order
    /// (`replica.rs`) by [`Store::apply`].
    fn put(
        &self,
        store: &Store,
        tenant: &str,
        records: Vec<Record>,
        encoded: Vec<Vec<u8>>,
        after: Option<u64>,
    ) -> Result<Unapplied, StoreError> {
        let encoded: Vec<(RecordKind, &str, &[u8])> = records
            .iter()
            .zip(&encoded)
            .map(|(r, value)| (r.kind(), r.id(), value.as_slice()))
            .collect();
        let t = store.tenant_or_create(tenant);
        let after = after.unwrap_or_else(|| t.applied());
        let committed = self.database.put(tenant, &encoded, after)?;
        drop(encoded);
        let own = LoggedWrite {
            sequence: committed.sequence,
            changes: records.into_iter().map(Change::Upsert).collect(),
        };
        Ok(Unapplied::logged(
            tenant,
            LoggedOwn {
                tenant: t,
                missed: committed.missed,
                own,
            },
        ))
    }

    fn delete(&self, store: &Store, tenant: &str, keys: &[RecordKey]) -> Result<u64, StoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let t = store.tenant_or_create(tenant);
        let keys: Vec<(RecordKind, &str)> = keys.iter().map(|k| (k.kind, k.id.as_str())).collect();
        let committed = self.database.delete(tenant, &keys, t.applied())?;
        let deleted = committed.outcome.len() as u64;
        if deleted == 0 {
            // Nothing changed: no write, only those it had not applied.
            store.apply_logged(&t, tenant, committed.missed);
        } else {
            let own = LoggedWrite {
                sequence: committed.sequence,
                changes: committed
                    .outcome
                    .into_iter()
                    .map(|(kind, id)| Change::Delete(kind, id))
                    .collect(),
            };
            store.apply_own(&t, tenant, committed.missed, own);
        }
        Ok(deleted)
    }

    /// Applied to the settings the database holds (another replica may have changed them
    /// since this one applied them).
    fn update_settings(
        &self,
        store: &Store,
        tenant: &str,
        update: &SettingsUpdate,
    ) -> Result<TenantSettings, StoreError> {
        let t = store.tenant_or_create(tenant);
        let committed = self.database.update_settings(
            tenant,
            |stored| update.applied_to(&stored.unwrap_or_default()),
            t.applied(),
        )?;
        let own = LoggedWrite {
            sequence: committed.sequence,
            changes: vec![Change::Settings(committed.outcome.clone())],
        };
        store.apply_own(&t, tenant, committed.missed, own);
        Ok(committed.outcome)
    }

    fn list(
        &self,
        tenant: &str,
        kind: Option<RecordKind>,
        after: Option<(RecordKind, &str)>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let after = after.map(|(kind, id)| (kind, id.to_owned()));
        self.database
            .list(tenant, kind, after, limit)?
            .iter()
            .map(|(key, value)| decode_record(key, value))
            .collect()
    }

    /// Every acknowledged write is committed in PostgreSQL already.
    fn flush(&self, _store: &Store) -> Result<(), StoreError> {
        Ok(())
    }

    /// Nothing to save: an open reads the database.
    fn save_snapshot(&self, _store: &Store) -> Result<(), StoreError> {
        Ok(())
    }

    /// The tenant's change log numbers its writes, for every replica.
    fn sequences_writes(&self) -> bool {
        true
    }

    /// A write the database refuses fails alone: writes are never stopped.
    fn write_health(&self) -> WriteHealth {
        WriteHealth::Writable
    }

    fn disk_bytes(&self) -> u64 {
        0
    }
}
