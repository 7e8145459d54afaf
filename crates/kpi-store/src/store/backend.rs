//! The seam between the store's shared side (validation, rows, row changes, index, memory
//! budget, `TenantSource`: `store/mod.rs`) and where the records are kept durably: the
//! [`Backend`] trait, what differs between sled (`sled_backend.rs`) and PostgreSQL
//! (`postgres_backend.rs`), and [`AnyBackend`], the one a store was opened with.
//!
//! A write method makes the write durable, then applies its row changes through the shared
//! `RowChanges` before it returns (a put leaves that to [`Store::apply`], so a stream's
//! next batch is written while the one before is applied). When they become visible is the backend's: on sled once
//! a commit (shared by concurrent writers) covers the write (`pending.rs`); on PostgreSQL
//! in the tenant's sequence order, with the other replicas' writes (`replica.rs`).

use super::postgres_backend::PostgresBackend;
use super::sled_backend::SledBackend;
use super::{RecordKey, Store, Unapplied, WriteHealth};
use crate::error::StoreError;
use crate::record::{Record, RecordKind};
use crate::settings::{SettingsUpdate, TenantSettings};

/// Where a store keeps its records, settings and (PostgreSQL) the change log. `store` is
/// the store the backend belongs to: its tenants' rows and settings in memory.
pub(super) trait Backend {
    /// Encodes each of `records` (valid) as the backend stores it, ahead of the write
    /// ([`Store::prepare`]); drops first the earlier of two records with one key when the
    /// write needs each key once.
    fn encode(&self, records: &mut Vec<Record>) -> Vec<Vec<u8>>;

    /// Upserts `records` of `tenant` (at least one, `encoded` by [`Backend::encode`]; of
    /// two with one key the later wins), durably; what is left to apply them to the
    /// tenant's rows ([`Store::apply`]). `after`: the tenant's sequence of a write of this
    /// process that is applied before this one (the previous batch of a stream), else the
    /// one its rows reached is read.
    fn put(
        &self,
        store: &Store,
        tenant: &str,
        records: Vec<Record>,
        encoded: Vec<Vec<u8>>,
        after: Option<u64>,
    ) -> Result<Unapplied, StoreError>;

    /// Deletes records by key, durably, and frees their rows; how many existed.
    fn delete(&self, store: &Store, tenant: &str, keys: &[RecordKey]) -> Result<u64, StoreError>;

    /// Applies `update` to `tenant`'s settings, durably, and to the settings in memory; the
    /// settings now in effect.
    fn update_settings(
        &self,
        store: &Store,
        tenant: &str,
        update: &SettingsUpdate,
    ) -> Result<TenantSettings, StoreError>;

    /// Up to `limit` records of `tenant` (optionally of one kind) after the key `after`, in
    /// key order (kind, then id bytewise).
    fn list(
        &self,
        tenant: &str,
        kind: Option<RecordKind>,
        after: Option<(RecordKind, &str)>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError>;

    /// Makes every write acknowledged so far durable.
    fn flush(&self, store: &Store) -> Result<(), StoreError>;

    /// Saves what makes the next open faster (sled: the rows snapshot), after a flush.
    fn save_snapshot(&self, store: &Store) -> Result<(), StoreError>;

    /// [`Backend::save_snapshot`], then closes the durable layer: writes are refused after
    /// it (kpid's stop).
    fn close(&self, store: &Store) -> Result<(), StoreError> {
        self.save_snapshot(store)
    }

    /// Whether writes are numbered by a tenant sequence that a read may wait for (the
    /// change log several replicas share); otherwise every sequence is 0 and a write is
    /// visible once acknowledged.
    fn sequences_writes(&self) -> bool;

    /// Whether writes are taken.
    fn write_health(&self) -> WriteHealth;

    /// Bytes the records take on this machine's disk (0 when they live elsewhere).
    fn disk_bytes(&self) -> u64;
}

/// The backend a store was opened with. An enum rather than a `Box<dyn Backend>`: each
/// backend's own thread (sled's recovery from a full disk, PostgreSQL's change log
/// follower) holds the store weakly and reaches its backend's state by a match, with no
/// downcast; and there are two backends, both known here.
// One per store, inside its `Arc`: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub(super) enum AnyBackend {
    /// The embedded default.
    Sled(SledBackend),
    /// `--store postgres://…`, shared by any number of replicas.
    Postgres(PostgresBackend),
}

/// The store calls the backend through `dyn Backend`, whichever it is.
impl std::ops::Deref for AnyBackend {
    type Target = dyn Backend + Send + Sync;

    fn deref(&self) -> &Self::Target {
        match self {
            AnyBackend::Sled(sled) => sled,
            AnyBackend::Postgres(postgres) => postgres,
        }
    }
}
