//! The store: sled for durability, and per tenant the rows in memory (`rows.rs`) plus the
//! query index derived from them (rebuilt lazily, once per batch of writes, sharing the
//! parts the writes did not touch), and the rows snapshot read at open (`snapshot.rs`).
//! What a failed write leaves and how writes resume is `recovery.rs`; a tenant's records
//! as the engine's data source, `source.rs`; the PostgreSQL backend, `pg.rs`, and how its
//! replicas follow its change log, `replica.rs`.

mod open;
mod pg;
pub(crate) mod recovery;
mod replica;
mod source;
#[cfg(test)]
mod tests;

pub use self::recovery::WriteHealth;
pub use self::source::TenantSource;

#[cfg(test)]
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};

use self::recovery::WriteState;
use crate::budget::{self, Budget, BudgetStats, Usage};
use crate::codec::{
    check_tenant, decode_record, encode_record, encode_record_without_slot, kind_byte,
    parse_page_token, record_key, split_key, tenant_prefix, token_after, value_slot,
};
use crate::durable::Commit;
use crate::error::StoreError;
use crate::index::{Index, KindGenerations};
use crate::pending::{Before, Originals, PendingWrites, RowChanges};
use crate::record::{Record, RecordKind};
use crate::rows::Rows;
use crate::settings::{self, SettingsByTenant, SettingsUpdate, TenantSettings};
use crate::snapshot;
use crate::validate::validate;

/// sled's page cache. The query side answers from memory, so sled's cache only serves
/// writes, listings and the scan at open; sled's default (1 GiB) would add up to a
/// gigabyte of resident memory to a large store for little gain. At 10M records, 16 MiB
/// instead of 256 MiB holds about 300 MiB less after the ingest, at the same ingest speed
/// (BENCHMARKS.md).
const SLED_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// Records per page when a listing asks for 0.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Most records one page holds; larger requests are cut to this.
pub const MAX_PAGE_SIZE: usize = 1000;

/// The key of one record within a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordKey {
    /// Its kind.
    pub kind: RecordKind,
    /// Its id.
    pub id: String,
}

/// What a put did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutOutcome {
    /// How many records were stored (durably).
    pub accepted: u64,
    /// The records that were not, with why.
    pub rejected: Vec<Rejected>,
}

/// A record a put did not store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Its position in the records handed to [`Store::put`].
    pub index: usize,
    /// Why, in words a person understands.
    pub reason: String,
}

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordPage {
    /// The records, in key order (kind, then id).
    pub records: Vec<Record>,
    /// The token of the next page, or "" when this is the last.
    pub next_page_token: String,
}

/// Size of the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Records held, over every tenant.
    pub records: u64,
    /// Bytes sled uses on disk.
    pub disk_bytes: u64,
}

/// The records of one tenant, by kind and id (the tests' and the reference's view).
#[cfg(test)]
#[derive(Debug, Default, Clone)]
pub(crate) struct Canonical {
    by_kind: [BTreeMap<String, Record>; RecordKind::ALL.len()],
    /// The tenant's base currency (`""`: none), which the reference converts amounts to.
    pub(crate) base_currency: String,
}

#[cfg(test)]
impl Canonical {
    /// Inserts or replaces a record.
    pub(crate) fn upsert(&mut self, record: Record) {
        self.by_kind[record.kind() as usize].insert(record.id().to_owned(), record);
    }

    /// The records of one kind, by id.
    pub(crate) fn of_kind(&self, kind: RecordKind) -> impl Iterator<Item = &Record> {
        self.by_kind[kind as usize].values()
    }

    /// Removes a record; whether it existed.
    pub(crate) fn remove(&mut self, kind: RecordKind, id: &str) -> bool {
        self.by_kind[kind as usize].remove(id).is_some()
    }

    /// Every record, by kind then id.
    pub(crate) fn records(&self) -> impl Iterator<Item = &Record> {
        self.by_kind.iter().flat_map(BTreeMap::values)
    }
}

/// A tenant's rows plus a counter bumped on every change. Mirrors what sled holds durably:
/// every change is applied to sled first, then here once a commit covers it, in the order
/// of the writes (`pending.rs`); on PostgreSQL, the tenant's change log through `sequence`
/// (`replica.rs`).
#[derive(Default)]
struct TenantRecords {
    rows: Rows,
    generation: u64,
    /// Per kind, the writes that changed it (an index rebuilds only what they touch).
    kinds: KindGenerations,
    /// On PostgreSQL, the slot of each record's row (empty on sled).
    slots: replica::RecordSlots,
    /// On PostgreSQL, the sequence of the last write of the tenant applied (0 on sled).
    sequence: u64,
}

impl TenantRecords {
    /// Notes a write that changed records of `kinds`.
    fn changed(&mut self, kinds: impl IntoIterator<Item = RecordKind>) {
        self.generation += 1;
        for k in kinds {
            self.kinds[k as usize] = self.generation;
        }
    }
}

/// One tenant's in-memory state.
#[derive(Default)]
struct Tenant {
    records: RwLock<TenantRecords>,
    /// The index and the generation it was built from (`None` before the first read, and
    /// once the memory budget released it).
    index: Mutex<Option<(u64, Arc<Index>)>>,
    /// When it was last read and what its index is counted as (`budget.rs`).
    usage: Usage,
}

impl Tenant {
    /// The index of the current records, built now if a write happened since the last
    /// build (or the budget released it), and whether that build took the tenants' query
    /// state over the memory budget. Concurrent readers wait for one build.
    fn index(&self, budget: &Budget) -> (Arc<Index>, bool) {
        budget.read(&self.usage);
        let mut slot = lock(&self.index);
        let records = self.records.read().unwrap_or_else(PoisonError::into_inner);
        if let Some((generation, index)) = slot.as_ref() {
            if *generation == records.generation {
                return (Arc::clone(index), false);
            }
        }
        let prev = slot.as_ref().map(|(_, index)| Arc::clone(index));
        let index = Arc::new(Index::build(&records.rows, &records.kinds, prev.as_deref()));
        *slot = Some((records.generation, Arc::clone(&index)));
        let over_budget = budget.charge(&self.usage, budget::estimate(records.rows.len()));
        if index.large() {
            // The parts this read needs are built as it reads them; the others meanwhile.
            // It stops early once nothing else holds the index (a write replaced it).
            let warm = Arc::clone(&index);
            std::thread::spawn(move || warm.warm(&|| Arc::strong_count(&warm) > 1));
        }
        (index, over_budget)
    }

    /// Drops its index (the memory budget's release); the next read builds it again. A
    /// request reading the index keeps it until it ends.
    fn release_index(&self, budget: &Budget) {
        let mut slot = lock(&self.index);
        *slot = None;
        budget.uncharge(&self.usage);
    }
}

/// Checks that a stored record is the one its key names.
fn check_key(key: &[u8], record: &Record, kind: RecordKind, id: &str) -> Result<(), StoreError> {
    if record.kind() != kind || record.id() != id {
        return Err(StoreError::Corrupt(format!(
            "key {} holds the {} record {}",
            crate::codec::hex(key),
            record.kind().as_str(),
            record.id()
        )));
    }
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One opening of the sled database: a recovery from a full disk reopens it.
#[derive(Clone)]
struct Sled {
    db: sled::Db,
    /// Every record of every tenant.
    tree: sled::Tree,
    /// The token of the current snapshot.
    meta: sled::Tree,
    /// Every tenant's settings (`settings.rs`).
    settings: sled::Tree,
    /// The fsync'd commit point (`None` for a temporary store, which nothing outlives).
    commit: Option<Arc<Commit>>,
}

impl Sled {
    fn new(db: sled::Db, commit: Option<Commit>) -> Result<Sled, StoreError> {
        Ok(Sled {
            tree: db.open_tree("records")?,
            meta: db.open_tree("meta")?,
            settings: db.open_tree("settings")?,
            db,
            commit: commit.map(Arc::new),
        })
    }

    /// Notes a write applied to sled, for the commit point.
    fn wrote(&self) {
        if let Some(commit) = &self.commit {
            commit.wrote();
        }
    }

    /// The commit point: sled flush plus fsync, shared by concurrent writers.
    fn commit(&self) -> Result<(), StoreError> {
        match &self.commit {
            Some(commit) => commit.commit(&self.db),
            None => {
                self.db.flush()?;
                Ok(())
            }
        }
    }
}

struct Inner {
    /// sled's handles; `None` after a failed write poisoned them, until a recovery
    /// reopens the database.
    sled: RwLock<Option<Sled>>,
    tenants: RwLock<HashMap<String, Arc<Tenant>>>,
    /// Serializes writes so sled and the in-memory records change in the same order.
    writer: Mutex<()>,
    /// Writes in sled whose commit has not returned: their row changes wait there.
    pending: PendingWrites<Tenant>,
    /// Whether writes are taken (changed under the writer lock).
    write_state: Mutex<WriteState>,
    /// Whether a thread retries the recovery from a full disk.
    recovering: AtomicBool,
    /// sled's size on disk when last read (kept while sled is closed).
    disk_bytes: AtomicU64,
    /// The data directory (`None` for a temporary store).
    dir: Option<PathBuf>,
    /// Whether `meta` names a current snapshot, which the next write must retire first.
    snapshot_current: AtomicBool,
    /// Every tenant's settings as committed; a tenant missing has the defaults.
    settings: RwLock<SettingsByTenant>,
    /// The memory budget of the tenants' query state (`budget.rs`).
    budget: Budget,
    /// The PostgreSQL database holding the records instead of sled (`pg.rs`); `sled` is
    /// then `None` for good.
    postgres: Option<pg::Postgres>,
}

/// How often a store whose disk was full tries to take writes again.
const RECOVERY_RETRY: std::time::Duration = std::time::Duration::from_millis(500);

/// The key in `meta` of the current snapshot's token.
const SNAPSHOT_TOKEN: &[u8] = b"snapshot";

/// How [`Store::open_with`] opens a store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// After loading a rows snapshot that verified, also scan sled and compare the rows: on
    /// any difference (logged as a warning) serve the scanned rows. An operator's scrub: it
    /// costs a scan's time, and holds both readings in memory while comparing.
    pub verify_snapshot: bool,
    /// The memory budget of the tenants' query state, in bytes ([`Store::set_memory_budget`]).
    pub memory_budget: Option<u64>,
}

/// The record store: durable in sled, queried from memory. Cheap to clone; every clone is
/// the same store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    fn tenant(&self, tenant: &str) -> Option<Arc<Tenant>> {
        self.inner
            .tenants
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tenant)
            .cloned()
    }

    fn tenant_or_create(&self, tenant: &str) -> Arc<Tenant> {
        if let Some(t) = self.tenant(tenant) {
            return t;
        }
        let mut tenants = self
            .inner
            .tenants
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let t = Arc::clone(tenants.entry(tenant.to_owned()).or_default());
        drop(tenants);
        // Its amounts are converted to its base currency (settings may precede records).
        let base = self.settings(tenant).base_currency;
        let mut records = t.records.write().unwrap_or_else(PoisonError::into_inner);
        let kinds = records.rows.set_base_currency(&base);
        records.changed(kinds);
        drop(records);
        t
    }

    /// After a change of `tenant`'s settings: its amounts are converted to the base
    /// currency now in effect (the kinds whose rows change are rebuilt on the next read).
    fn settings_changed(&self, tenant: &str, settings: &TenantSettings) {
        if let Some(t) = self.tenant(tenant) {
            let mut records = t.records.write().unwrap_or_else(PoisonError::into_inner);
            let kinds = records.rows.set_base_currency(&settings.base_currency);
            if !kinds.is_empty() {
                records.changed(kinds);
            }
        }
    }

    /// Validates each record ([`validate`]) and upserts the valid ones by (tenant, kind,
    /// id); they are durable (sled flushed, then fsync'd: see [`Store::flush`]) before
    /// this returns. Rejected records carry
    /// their index in `records`. When the same key occurs twice, the later record wins.
    pub fn put(&self, tenant: &str, records: Vec<Record>) -> Result<PutOutcome, StoreError> {
        check_tenant(tenant)?;
        let mut rejected = Vec::new();
        let mut valid = Vec::with_capacity(records.len());
        // A rate is towards the base currency in effect when it is written.
        let base = self.settings(tenant).base_currency;
        for (index, mut record) in records.into_iter().enumerate() {
            if let Record::FxRate(r) = &mut record {
                r.base = (!base.is_empty()).then(|| base.clone());
            }
            match validate(&record) {
                Ok(()) => valid.push(record),
                Err(reason) => rejected.push(Rejected { index, reason }),
            }
        }
        let accepted = valid.len() as u64;
        if let Some(postgres) = &self.inner.postgres {
            if !valid.is_empty() {
                self.put_postgres(postgres, tenant, valid)?;
            }
            return Ok(PutOutcome { accepted, rejected });
        }
        if !valid.is_empty() {
            // Encoded outside the lock; the slot (bytes 1..5) is filled in below.
            let mut encoded: Vec<(Vec<u8>, Vec<u8>)> = valid
                .iter()
                .map(|r| (record_key(tenant, r.kind(), r.id()), encode_record(r, 0)))
                .collect();
            let writer = lock(&self.inner.writer);
            let sled = self.writable_sled()?;
            self.retire_snapshot(&sled)?;
            let t = self.tenant_or_create(tenant);
            let slots: Vec<u32> = {
                let mut state = t.records.write().unwrap_or_else(PoisonError::into_inner);
                valid
                    .iter()
                    .map(|r| state.rows.allocate(r.kind()))
                    .collect()
            };
            // One insert per record, not one sled `Batch`: a batch holds sled's exclusive
            // lock and one epoch for all of it, which halves throughput. Queries still see
            // the call all at once (its rows change once it is committed); after a crash
            // an unacknowledged call may be stored in part. sled hands back the value each
            // insert replaces, which names the slot to free.
            let mut replaced = Vec::with_capacity(valid.len());
            let mut before: Vec<(Vec<u8>, Before)> = Vec::with_capacity(valid.len());
            for ((key, mut value), slot) in encoded.drain(..).zip(&slots) {
                value[1..5].copy_from_slice(&slot.to_le_bytes());
                let failed = match sled.tree.insert(&key, value) {
                    Ok(old) => {
                        let old_slot = old.as_ref().map(|v| value_slot(&key, v)).transpose();
                        before.push((key, old));
                        match old_slot {
                            Ok(old_slot) => {
                                replaced.push(old_slot.flatten());
                                continue;
                            }
                            Err(e) => e,
                        }
                    }
                    Err(e) => e.into(),
                };
                // Nothing of the call reaches the rows: its reserved slots go back.
                let mut records = t.records.write().unwrap_or_else(PoisonError::into_inner);
                for (record, slot) in valid.iter().zip(&slots) {
                    records.rows.release(record.kind(), *slot);
                }
                drop(records);
                return Err(self.abandon(&sled, failed, before));
            }
            let changes = valid
                .into_iter()
                .zip(slots)
                .zip(replaced)
                .map(|((record, slot), old)| (record, slot, old))
                .collect();
            let ticket = self.inner.pending.push(t, RowChanges::Put(changes), before);
            sled.wrote();
            // Committing outside the writer lock lets concurrent writers share one fsync;
            // none of them returns before its batch is on disk.
            drop(writer);
            self.commit_through(&sled, ticket)?;
        }
        Ok(PutOutcome { accepted, rejected })
    }

    /// [`Store::put`] of valid records into PostgreSQL: one write, committed, then applied
    /// to the rows in the tenant's sequence order (`replica.rs`).
    fn put_postgres(
        &self,
        postgres: &pg::Postgres,
        tenant: &str,
        mut valid: Vec<Record>,
    ) -> Result<(), StoreError> {
        // The later of two records with one key wins (as in sled): keep only it.
        let mut seen = std::collections::HashSet::new();
        valid.reverse();
        valid.retain(|r| seen.insert((r.kind(), r.id().to_owned())));
        valid.reverse();
        let encoded: Vec<(RecordKind, &str, Vec<u8>)> = valid
            .iter()
            .map(|r| (r.kind(), r.id(), encode_record_without_slot(r)))
            .collect();
        let t = self.tenant_or_create(tenant);
        let committed = postgres.put(tenant, &encoded, self.applied(&t))?;
        drop(encoded);
        let own = pg::LoggedWrite {
            sequence: committed.sequence,
            changes: valid.into_iter().map(pg::Change::Upsert).collect(),
        };
        self.apply_own(&t, tenant, committed.missed, own);
        Ok(())
    }

    /// The sequence of the tenant's last write applied to its rows.
    fn applied(&self, t: &Tenant) -> u64 {
        t.records
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .sequence
    }

    /// The sequence of `tenant`'s last write this process applied to its rows and
    /// settings. On PostgreSQL it numbers the writes of the tenant's change log, shared by
    /// every replica; every write this process acknowledges is applied before its call
    /// returns, so read right after a write it covers that write. On sled it is 0: one
    /// process serves the records, and every write is visible once acknowledged.
    pub fn sequence(&self, tenant: &str) -> u64 {
        self.tenant(tenant).map_or(0, |t| self.applied(&t))
    }

    /// Whether this process applied `tenant`'s writes through `sequence` (so a read sees
    /// them); on sled, always.
    pub fn has_applied(&self, tenant: &str, sequence: u64) -> bool {
        self.inner.postgres.is_none() || self.sequence(tenant) >= sequence
    }

    /// Deletes records by key, durably; returns how many existed.
    pub fn delete(&self, tenant: &str, keys: &[RecordKey]) -> Result<u64, StoreError> {
        check_tenant(tenant)?;
        if let Some(postgres) = &self.inner.postgres {
            if keys.is_empty() {
                return Ok(0);
            }
            let t = self.tenant_or_create(tenant);
            let keys: Vec<(RecordKind, &str)> =
                keys.iter().map(|k| (k.kind, k.id.as_str())).collect();
            let committed = postgres.delete(tenant, &keys, self.applied(&t))?;
            let deleted = committed.outcome.len() as u64;
            if deleted == 0 {
                // Nothing changed: no write, only those it had not applied.
                self.apply_logged(&t, tenant, committed.missed);
            } else {
                let own = pg::LoggedWrite {
                    sequence: committed.sequence,
                    changes: committed
                        .outcome
                        .into_iter()
                        .map(|(kind, id)| pg::Change::Delete(kind, id))
                        .collect(),
                };
                self.apply_own(&t, tenant, committed.missed, own);
            }
            return Ok(deleted);
        }
        let Some(t) = self.tenant(tenant) else {
            return Ok(0);
        };
        let writer = lock(&self.inner.writer);
        let sled = self.writable_sled()?;
        self.retire_snapshot(&sled)?;
        let mut freed = Vec::new();
        let mut before: Vec<(Vec<u8>, Before)> = Vec::new();
        for k in keys {
            let key = record_key(tenant, k.kind, &k.id);
            let failed = match sled.tree.remove(&key) {
                Ok(None) => continue,
                Ok(Some(old)) => {
                    let slot = value_slot(&key, &old);
                    before.push((key, Some(old)));
                    match slot {
                        Ok(Some(slot)) => {
                            freed.push((k.kind, slot));
                            continue;
                        }
                        Ok(None) => continue,
                        Err(e) => e,
                    }
                }
                Err(e) => e.into(),
            };
            return Err(self.abandon(&sled, failed, before));
        }
        if before.is_empty() {
            return Ok(0);
        }
        let removed = freed.len() as u64;
        let ticket = self
            .inner
            .pending
            .push(t, RowChanges::Delete(freed), before);
        sled.wrote();
        drop(writer);
        self.commit_through(&sled, ticket)?;
        Ok(removed)
    }

    /// A tenant's settings (the defaults when it never changed them).
    pub fn settings(&self, tenant: &str) -> TenantSettings {
        self.inner
            .settings
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tenant)
            .cloned()
            .unwrap_or_default()
    }

    /// Changes a tenant's settings, durably: written and committed under the writer lock
    /// (settings change rarely, so the fsync is not shared) and refused with the same
    /// errors as records while writes are stopped; the next request sees them. Returns
    /// the settings now in effect.
    pub fn update_settings(
        &self,
        tenant: &str,
        update: &SettingsUpdate,
    ) -> Result<TenantSettings, StoreError> {
        check_tenant(tenant)?;
        if let Some(postgres) = &self.inner.postgres {
            // Applied to the settings the database holds (another replica may have
            // changed them since this one applied them).
            let t = self.tenant_or_create(tenant);
            let committed = postgres.update_settings(
                tenant,
                |stored| update.applied_to(&stored.unwrap_or_default()),
                self.applied(&t),
            )?;
            let own = pg::LoggedWrite {
                sequence: committed.sequence,
                changes: vec![pg::Change::Settings(committed.outcome.clone())],
            };
            self.apply_own(&t, tenant, committed.missed, own);
            return Ok(committed.outcome);
        }
        let _writer = lock(&self.inner.writer);
        let sled = self.writable_sled()?;
        let changed = update.applied_to(&self.settings(tenant));
        let written = settings::write(&sled.settings, tenant, &changed).and_then(|()| {
            sled.wrote();
            sled.commit()
        });
        if let Err(e) = written {
            // What sled holds of the change is unknown: a recovery writes back the
            // settings in memory, which it has not touched.
            return Err(self.stop_writes(e, Originals::new()));
        }
        self.inner
            .settings
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(tenant.to_owned(), changed.clone());
        self.settings_changed(tenant, &changed);
        Ok(changed)
    }

    /// Pages through a tenant's records (optionally one kind), in key order (kind, then
    /// id). `page_size` 0 means [`DEFAULT_PAGE_SIZE`]; more than [`MAX_PAGE_SIZE`] is cut
    /// to it. `page_token` "" is the first page; `next_page_token` "" means no more. A
    /// malformed token is [`StoreError::InvalidPageToken`].
    pub fn list(
        &self,
        tenant: &str,
        kind: Option<RecordKind>,
        page_size: usize,
        page_token: &str,
    ) -> Result<RecordPage, StoreError> {
        check_tenant(tenant)?;
        let page_size = match page_size {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        if let Some(postgres) = &self.inner.postgres {
            let after = if page_token.is_empty() {
                None
            } else {
                let bytes = parse_page_token(page_token, kind)?;
                let kind = crate::codec::kind_of_byte(bytes[0]).expect("checked by the parse");
                let id = std::str::from_utf8(&bytes[1..]).expect("checked by the parse");
                Some((kind, id.to_owned()))
            };
            let mut entries = postgres.list(tenant, kind, after, page_size + 1)?;
            let more = entries.len() > page_size;
            entries.truncate(page_size);
            let records = entries
                .iter()
                .map(|(key, value)| decode_record(key, value))
                .collect::<Result<Vec<_>, _>>()?;
            let next_page_token = match records.last() {
                Some(last) if more => token_after(last.kind(), last.id()),
                _ => String::new(),
            };
            return Ok(RecordPage {
                records,
                next_page_token,
            });
        }
        let mut prefix = tenant_prefix(tenant);
        if let Some(k) = kind {
            prefix.push(kind_byte(k));
        }
        let start = if page_token.is_empty() {
            prefix.clone()
        } else {
            let mut start = tenant_prefix(tenant);
            start.extend(parse_page_token(page_token, kind)?);
            // The smallest key after the token's key.
            start.push(0);
            start
        };
        let mut records = Vec::new();
        let mut more = false;
        let tree = match &*self
            .inner
            .sled
            .read()
            .unwrap_or_else(PoisonError::into_inner)
        {
            Some(sled) => sled.tree.clone(),
            None => return Err(self.unreadable()),
        };
        for item in tree.range(start..) {
            let (key, value) = item?;
            if !key.starts_with(&prefix) {
                break;
            }
            if records.len() == page_size {
                more = true;
                break;
            }
            split_key(&key)?;
            records.push(decode_record(&key, &value)?);
        }
        let next_page_token = match records.last() {
            Some(last) if more => token_after(last.kind(), last.id()),
            _ => String::new(),
        };
        Ok(RecordPage {
            records,
            next_page_token,
        })
    }

    /// The tenant's records as a [`kpi_core::DataSource`] for `Registry::compute`. The source reads
    /// one consistent snapshot, taken at its first read: make one per request.
    pub fn source(&self, tenant: &str) -> TenantSource {
        TenantSource {
            tenant: self.tenant(tenant),
            store: self.clone(),
            snapshot: OnceLock::new(),
        }
    }

    /// Sets the memory budget of the tenants' query state (`None`: none). While the query
    /// state of every tenant together (estimated from their rows when each index is built,
    /// `budget.rs`) exceeds it, the least recently read tenants' indexes are released; a
    /// released tenant's next read builds its index again. Rows are never released.
    pub fn set_memory_budget(&self, bytes: Option<u64>) {
        self.inner.budget.set_limit(bytes);
    }

    /// The memory budget, the query state held against it and the releases so far.
    pub fn budget_stats(&self) -> BudgetStats {
        self.inner.budget.stats()
    }

    /// The index `tenant` reads; over the budget, releases the least recently read
    /// tenants' (never `tenant`'s).
    fn index_of(&self, tenant: &Arc<Tenant>) -> Arc<Index> {
        let budget = &self.inner.budget;
        let (index, over_budget) = tenant.index(budget);
        if over_budget {
            let candidates: Vec<(u64, Arc<Tenant>)> = self
                .inner
                .tenants
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .values()
                .filter(|t| !Arc::ptr_eq(t, tenant) && t.usage.charged() > 0)
                .map(|t| (t.usage.last_read(), Arc::clone(t)))
                .collect();
            budget.release(candidates, |t| t.release_index(budget));
        }
        index
    }

    /// Makes every write so far durable: sled's flush, then (for a store on disk) the
    /// fsync'd commit point, which sled's flush alone is not (it uses
    /// `sync_file_range`, which survives a process crash but not a power loss).
    /// [`Store::put`] and [`Store::delete`] do this before they return.
    pub fn flush(&self) -> Result<(), StoreError> {
        if self.inner.postgres.is_some() {
            // Every acknowledged write is committed in PostgreSQL already.
            return Ok(());
        }
        let _writer = lock(&self.inner.writer);
        let sled = self.writable_sled()?;
        let ticket = self.inner.pending.last_ticket();
        self.commit_through(&sled, ticket)
    }

    /// Commits (see [`Sled::commit`]); then the writes up to `ticket` are durable and their
    /// rows change. A write whose commit failed, or that a failed commit of another
    /// discarded, answers the error that stopped writes.
    fn commit_through(&self, sled: &Sled, ticket: u64) -> Result<(), StoreError> {
        if let Err(e) = sled.commit() {
            let _writer = lock(&self.inner.writer);
            return Err(self.stop_writes(e, Originals::new()));
        }
        let applied = self.inner.pending.apply_through(ticket, |write| {
            let mut records = write
                .tenant
                .records
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let kinds = write.changes.apply(&mut records.rows);
            records.changed(kinds);
        });
        if applied {
            Ok(())
        } else {
            Err(self.refusal())
        }
    }

    /// Writes every tenant's rows to the snapshot file that the next open reads instead of
    /// scanning the records (kpid calls this when it stops). Commits first; the snapshot
    /// is current until the next write. A temporary store only commits. When the file
    /// cannot be written ([`StoreError::Snapshot`], a full disk say) every write is still
    /// committed and no snapshot is current: the next open scans.
    pub fn save_snapshot(&self) -> Result<(), StoreError> {
        let Some(dir) = &self.inner.dir else {
            return self.flush();
        };
        let _writer = lock(&self.inner.writer);
        let sled = match self.writable_sled() {
            Ok(sled) => sled,
            // Every acknowledged write is durable; only the next start is slower.
            Err(e) => return Err(StoreError::Snapshot(std::io::Error::other(e.to_string()))),
        };
        // Every acknowledged write is committed already; what fails here was never
        // acknowledged.
        self.commit_through(&sled, self.inner.pending.last_ticket())
            .map_err(|e| StoreError::Snapshot(std::io::Error::other(e.to_string())))?;
        if self.inner.snapshot_current.load(Ordering::SeqCst) {
            // Nothing was written since the snapshot was loaded or saved: it is current.
            tracing::info!("rows snapshot current: not written again");
            return Ok(());
        }
        let token = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            h.finish()
        };
        let tenants: Vec<(String, Arc<Tenant>)> = self
            .inner
            .tenants
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(n, t)| (n.clone(), Arc::clone(t)))
            .collect();
        let guards: Vec<_> = tenants
            .iter()
            .map(|(n, t)| {
                (
                    n.as_str(),
                    t.records.read().unwrap_or_else(PoisonError::into_inner),
                )
            })
            .collect();
        let rows: Vec<(&str, &Rows)> = guards.iter().map(|(n, g)| (*n, &g.rows)).collect();
        let started = std::time::Instant::now();
        snapshot::write(dir, token, &rows).map_err(StoreError::Snapshot)?;
        sled.meta.insert(SNAPSHOT_TOKEN, &token.to_le_bytes())?;
        sled.wrote();
        sled.commit()?;
        self.inner.snapshot_current.store(true, Ordering::SeqCst);
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "rows snapshot written"
        );
        Ok(())
    }

    /// Whether the rows snapshot is current (the store was opened from it, or saved it, and
    /// nothing was written since).
    #[cfg(test)]
    pub(crate) fn snapshot_is_current(&self) -> bool {
        self.inner.snapshot_current.load(Ordering::SeqCst)
    }

    /// Settings changes that reached sled and then failed with a full disk (its commit,
    /// say): writes stop, and the change was never acknowledged.
    #[cfg(test)]
    pub(crate) fn fail_settings_write(&self, written: &[(&str, &TenantSettings)]) {
        let _writer = lock(&self.inner.writer);
        let sled = self.writable_sled().expect("writable");
        for (tenant, settings) in written {
            settings::write(&sled.settings, tenant, settings).expect("written");
        }
        self.stop_writes(StoreError::StorageFull, Originals::new());
    }

    /// Calls `f` with a tenant's rows (no rows when the tenant has none).
    #[cfg(test)]
    pub(crate) fn with_rows<R>(&self, tenant: &str, f: impl FnOnce(&Rows) -> R) -> R {
        match self.tenant(tenant) {
            Some(t) => f(&t
                .records
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .rows),
            None => f(&Rows::default()),
        }
    }

    /// Before the first write after a snapshot was written or loaded: removes its token,
    /// durably, so that a crash after this write cannot reopen the stale snapshot.
    /// Call under the writer lock.
    fn retire_snapshot(&self, sled: &Sled) -> Result<(), StoreError> {
        if self.inner.snapshot_current.load(Ordering::SeqCst) {
            let retired = sled.meta.remove(SNAPSHOT_TOKEN).map_err(StoreError::from);
            sled.wrote();
            if let Err(e) = retired.and_then(|_| sled.commit()) {
                return Err(self.stop_writes(e, Originals::new()));
            }
            self.inner.snapshot_current.store(false, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Records held and bytes on disk.
    pub fn stats(&self) -> StoreStats {
        let records = self
            .inner
            .tenants
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|t| {
                t.records
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .rows
                    .len() as u64
            })
            .sum();
        StoreStats {
            records,
            disk_bytes: match &*self
                .inner
                .sled
                .read()
                .unwrap_or_else(PoisonError::into_inner)
            {
                Some(sled) => {
                    let bytes = sled.db.size_on_disk().unwrap_or(0);
                    self.inner.disk_bytes.store(bytes, Ordering::Relaxed);
                    bytes
                }
                None => self.inner.disk_bytes.load(Ordering::Relaxed),
            },
        }
    }
}
