//! The store: a durable backend (`backend.rs`: sled, `sled_backend.rs`, or PostgreSQL,
//! `postgres_backend.rs`), and per tenant, shared by both, the rows in memory (`rows.rs`)
//! plus the query index derived from them (rebuilt lazily, once per batch of writes,
//! sharing the parts the writes did not touch). Validation, listing pages and the memory
//! budget are here; a tenant's records as the engine's data source, `source.rs`.

mod backend;
pub(crate) mod current_marker;
mod index_image;
mod open;
mod pg;
mod postgres_backend;
pub(crate) mod recovery;
mod replica;
mod sled_backend;
mod source;
#[cfg(test)]
mod tests;

pub use self::pg::records_row as postgres_records_row;
pub use self::recovery::WriteHealth;
pub use self::source::TenantSource;

#[cfg(test)]
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};

use self::backend::AnyBackend;
use self::pg::LoggedWrite;
use crate::budget::{self, Budget, BudgetStats, Usage};
use crate::codec::{check_tenant, kind_of_byte, parse_page_token, token_after};
use crate::error::StoreError;
use crate::index::{Index, KindGenerations};
use crate::record::{Record, RecordKind};
use crate::rows::Rows;
use crate::settings::{SettingsByTenant, SettingsUpdate, TenantSettings};
use crate::validate::validate;

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

/// A batch validated and encoded for the store, not yet written ([`Store::prepare`]).
#[derive(Debug)]
pub struct PreparedPut {
    tenant: String,
    /// What the put comes to once written.
    outcome: PutOutcome,
    /// The valid records (of two with one key, only the later where the backend needs it).
    records: Vec<Record>,
    /// Each record as the backend stores it ([`backend::Backend::encode`]).
    encoded: Vec<Vec<u8>>,
}

/// A write durable in the store that reads do not see yet ([`Store::put_chained`]);
/// [`Store::apply`] applies it. Dropped unapplied, it is applied by the tenant's next
/// write or (PostgreSQL) the change log's follower, since it is committed.
#[derive(Default)]
#[must_use = "reads see the write once it is applied: pass it to Store::apply"]
pub struct Unapplied {
    /// The tenant written (empty: nothing was).
    tenant: String,
    /// On PostgreSQL, the write as the change log holds it, and those before it this
    /// process had not applied (read in its transaction).
    logged: Option<LoggedOwn>,
}

/// A write this process committed to the change log, to apply in the tenant's order.
struct LoggedOwn {
    tenant: Arc<Tenant>,
    missed: Vec<LoggedWrite>,
    own: LoggedWrite,
}

impl PreparedPut {
    /// What the put comes to once written: the records accepted and those rejected, by
    /// their index in the batch prepared.
    pub fn outcome(&self) -> &PutOutcome {
        &self.outcome
    }
}

impl Unapplied {
    /// A write of `tenant` applied already, but for its index (sled).
    fn applied(tenant: &str) -> Self {
        Self {
            tenant: tenant.to_owned(),
            logged: None,
        }
    }

    /// A committed write of `tenant` to apply after `missed`.
    fn logged(tenant: &str, logged: LoggedOwn) -> Self {
        Self {
            tenant: tenant.to_owned(),
            logged: Some(logged),
        }
    }

    /// The tenant sequence the write committed under (PostgreSQL).
    fn sequence(&self) -> Option<u64> {
        self.logged.as_ref().map(|l| l.own.sequence)
    }
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
    /// Bytes the records take on this machine's disk (sled; 0 on PostgreSQL).
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
/// of the writes (`pending.rs`); on PostgreSQL, the tenant's change log through its
/// sequence (`Tenant::sequence`, `replica.rs`).
#[derive(Default)]
struct TenantRecords {
    rows: Rows,
    generation: u64,
    /// Per kind, the writes that changed it (an index rebuilds only what they touch).
    kinds: KindGenerations,
    /// On PostgreSQL, the slot of each record's row (empty on sled).
    slots: replica::RecordSlots,
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
    /// The index last published: the generation and sequence of the rows it was built
    /// from, and the index (`None` before the first read, and once the memory budget
    /// released it).
    index: Mutex<Option<Published>>,
    /// Held while an index is built, so builds run one at a time (see [`Tenant::index`]).
    building: Mutex<()>,
    /// On PostgreSQL, the sequence of the last write of the tenant applied to its rows (0
    /// on sled). Changed only with the rows, under their write lock
    /// ([`Tenant::set_sequence`]), and read without it: a reader never waits for a write
    /// applying its rows.
    sequence: AtomicU64,
    /// When it was last read, in milliseconds of [`since_start`]: a write builds the index
    /// of a tenant read in the last [`READ_RECENTLY_MS`] before it answers.
    read_at: AtomicU64,
    /// The generation of the rows of the last write acknowledged without an index built
    /// for it (its tenant not read recently): no reader reads a published index older.
    acknowledged_unbuilt: AtomicU64,
    /// When it was last read and what its index is counted as (`budget.rs`).
    usage: Usage,
}

/// An index and the rows it was built from.
#[derive(Clone)]
struct Published {
    generation: u64,
    sequence: u64,
    index: Arc<Index>,
}

/// A tenant read this recently has its index built by each write, before the write is
/// acknowledged, so its next reader finds it built.
const READ_RECENTLY_MS: u64 = 2_000;

/// Milliseconds since the first call.
fn since_start() -> u64 {
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}

impl Tenant {
    /// A tenant holding `records` (opened from the store), applied through `sequence`.
    fn new(records: TenantRecords, sequence: u64) -> Self {
        Tenant {
            sequence: AtomicU64::new(sequence),
            records: RwLock::new(records),
            ..Tenant::default()
        }
    }

    /// The sequence of the last write applied to its rows ([`Tenant::sequence`]).
    fn applied(&self) -> u64 {
        self.sequence.load(Ordering::SeqCst)
    }

    /// Notes that its rows reached `sequence`; the caller holds their write lock (`_rows`).
    fn set_sequence(&self, _rows: &mut TenantRecords, sequence: u64) {
        self.sequence.store(sequence, Ordering::SeqCst);
    }

    /// The index a read sees: the one published, when it holds every write acknowledged;
    /// else built now (after the build running, if one is), and whether that build took
    /// the tenants' query state over the memory budget.
    ///
    /// A write is acknowledged only once an index holding it is published
    /// ([`Tenant::refresh`], before it answers), or after it marked itself
    /// `acknowledged_unbuilt` (its tenant not read recently): so the index published holds
    /// every acknowledged write unless its generation is below that mark. A reader takes
    /// neither the rows' lock nor the build's on that path: it never waits for a write
    /// applying its rows or for a build, and a write not yet acknowledged may be missing
    /// from what it reads. On PostgreSQL the rows' sequence must be the index's too: a
    /// reader may be waiting for a sequence (another replica's write), so it waits for
    /// the build bringing it.
    fn index(&self, budget: &Budget) -> (Arc<Index>, bool) {
        budget.read(&self.usage);
        self.read_at.store(since_start(), Ordering::Relaxed);
        if let Some(published) = lock(&self.index).as_ref() {
            let holds_acknowledged =
                published.generation >= self.acknowledged_unbuilt.load(Ordering::SeqCst);
            if holds_acknowledged && published.sequence == self.applied() {
                return (Arc::clone(&published.index), false);
            }
        }
        // Long work whatever the size: a tenant's first build, or one a write left to its
        // next read (counting the rows would take the lock a reader never waits for).
        crate::long_work::run(crate::long_work::LONG_WORK_ROWS, || {
            let _building = lock(&self.building);
            self.build(budget)
        })
    }

    /// After a write changed its rows, before the write is acknowledged: when it was read
    /// in the last [`READ_RECENTLY_MS`] and has an index, builds the index of the rows now
    /// (readers meanwhile read the one published: see [`Tenant::index`]); whether that
    /// took the query state over the memory budget.
    fn refresh(&self, budget: &Budget) -> bool {
        if lock(&self.index).is_none() {
            return false;
        }
        let read_at = self.read_at.load(Ordering::Relaxed);
        if since_start().saturating_sub(read_at) > READ_RECENTLY_MS {
            let generation = self
                .records
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .generation;
            self.acknowledged_unbuilt
                .fetch_max(generation, Ordering::SeqCst);
            return false;
        }
        let _building = lock(&self.building);
        self.build(budget).1
    }

    /// The generation of its rows (a count of the writes applied to them).
    fn generation(&self) -> u64 {
        self.records
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .generation
    }

    /// The generation of the rows its published index was built from.
    fn published_generation(&self) -> Option<u64> {
        lock(&self.index).as_ref().map(|p| p.generation)
    }

    /// How many rows it has.
    fn rows_len(&self) -> usize {
        self.records
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .rows
            .len()
    }

    /// Builds and publishes the index of the rows now, from the one published (unless it
    /// is current). The caller holds `building`.
    fn build(&self, budget: &Budget) -> (Arc<Index>, bool) {
        self.build_then(budget, |_, _| {})
    }

    /// [`Tenant::build`], and `then` given the index published (when it is new) and the
    /// generation of the rows it was built from, before it warms: a new index's parts are
    /// built by the warm-up only after `then` (which reads the index image into it:
    /// `store/index_image.rs`); readers meanwhile read it and build what they read.
    fn build_then(&self, budget: &Budget, then: impl FnOnce(&Index, u64)) -> (Arc<Index>, bool) {
        let previous = lock(&self.index).clone();
        let (published, rows) = {
            let records = self.records.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(previous) = &previous {
                if previous.generation == records.generation {
                    return (Arc::clone(&previous.index), false);
                }
            }
            let prev = previous.as_ref().map(|p| &*p.index);
            let index = Arc::new(Index::build(&records.rows, &records.kinds, prev));
            let published = Published {
                generation: records.generation,
                sequence: self.applied(),
                index,
            };
            (published, records.rows.len())
        };
        // The rows' lock is not held here: a reader takes it before the index's.
        let index = Arc::clone(&published.index);
        let generation = published.generation;
        let mut slot = lock(&self.index);
        *slot = Some(published);
        let over_budget = budget.charge(&self.usage, budget::estimate(rows));
        drop(slot);
        then(&index, generation);
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

/// A store: the tenants in memory, shared by both backends, and the backend.
struct Inner {
    /// Every tenant's rows and index, by name.
    tenants: RwLock<HashMap<String, Arc<Tenant>>>,
    /// Every tenant's settings as committed; a tenant missing has the defaults.
    settings: RwLock<SettingsByTenant>,
    /// The memory budget of the tenants' query state (`budget.rs`).
    budget: Budget,
    /// Whether the index image is written when the store closes (`index_image.rs`).
    index_image: std::sync::atomic::AtomicBool,
    /// Where the records are kept durably.
    backend: AnyBackend,
}

/// How [`Store::open_with`] opens a store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// After loading a rows snapshot that verified, also scan sled and compare the rows: on
    /// any difference (logged as a warning) serve the scanned rows. An operator's scrub: it
    /// costs a scan's time, and holds both readings in memory while comparing.
    pub verify_snapshot: bool,
    /// The memory budget of the tenants' query state, in bytes ([`Store::set_memory_budget`]).
    pub memory_budget: Option<u64>,
    /// Neither read the index image at open nor write it when closing (it is removed):
    /// a shorter stop, and the first reads after a start build the indexes.
    pub no_index_image: bool,
}

/// The record store: durable in sled or PostgreSQL, queried from memory. Cheap to clone;
/// every clone is the same store.
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
    /// Every tenant with its name, as listed now (the list's lock is not kept).
    fn tenants(&self) -> Vec<(String, Arc<Tenant>)> {
        let tenants = self.inner.tenants.read();
        let tenants = tenants.unwrap_or_else(PoisonError::into_inner);
        tenants
            .iter()
            .map(|(n, t)| (n.clone(), Arc::clone(t)))
            .collect()
    }

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
    /// id); they are durable (committed: see [`Store::flush`]) and applied to the rows
    /// reads see before this returns. Rejected records carry their index in `records`.
    /// When the same key occurs twice, the later record wins.
    pub fn put(&self, tenant: &str, records: Vec<Record>) -> Result<PutOutcome, StoreError> {
        let (outcome, unapplied) = self.put_chained(self.prepare(tenant, records)?, None)?;
        self.apply(unapplied);
        Ok(outcome)
    }

    /// The first half of [`Store::put`]: validates each record and encodes the valid ones
    /// as the store keeps them, writing nothing (so a stream prepares its next batch
    /// while the one before is written). A rate's base currency is the one in effect now.
    pub fn prepare(&self, tenant: &str, records: Vec<Record>) -> Result<PreparedPut, StoreError> {
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
        let encoded = self.inner.backend.encode(&mut valid);
        Ok(PreparedPut {
            tenant: tenant.to_owned(),
            outcome: PutOutcome { accepted, rejected },
            records: valid,
            encoded,
        })
    }

    /// The second half of [`Store::put`], for one of a stream of batches (Ingest): the
    /// batch is durable when this returns, but reads see it only once it is applied — by
    /// the next batch's call (`previous`, applied while this batch is written: the two
    /// overlap) or by [`Store::apply`]. `previous` is applied even when this batch fails.
    /// On sled a write is applied as it is acknowledged, and what is left for `apply` is
    /// only the index built ahead of the readers ([`Tenant::refresh`]).
    pub fn put_chained(
        &self,
        prepared: PreparedPut,
        previous: Option<Unapplied>,
    ) -> Result<(PutOutcome, Unapplied), StoreError> {
        let PreparedPut {
            tenant,
            outcome,
            records,
            encoded,
        } = prepared;
        std::thread::scope(|scope| {
            // The change log is read from the previous batch's write on: it is applied
            // before this one (here, first), and reading the tenant's applied sequence
            // would wait for that apply.
            let after = previous
                .as_ref()
                .filter(|p| p.tenant == tenant)
                .and_then(Unapplied::sequence);
            if let Some(previous) = previous {
                scope.spawn(|| self.apply(previous));
            }
            let unapplied = if records.is_empty() {
                Unapplied::default()
            } else {
                self.inner
                    .backend
                    .put(self, &tenant, records, encoded, after)?
            };
            Ok((outcome, unapplied))
        })
    }

    /// Applies a write [`Store::put_chained`] made durable to the rows reads see (and
    /// builds the index of a tenant being read: [`Tenant::refresh`]).
    pub fn apply(&self, unapplied: Unapplied) {
        let Unapplied { tenant, logged } = unapplied;
        if let Some(logged) = logged {
            self.apply_own(&logged.tenant, &tenant, logged.missed, logged.own);
        }
        if !tenant.is_empty() {
            self.refresh(&tenant);
        }
    }

    /// The sequence of `tenant`'s last write this process applied to its rows and
    /// settings. On PostgreSQL it numbers the writes of the tenant's change log, shared by
    /// every replica; every write this process acknowledges is applied before its call
    /// returns, so read right after a write it covers that write. On sled it is 0: one
    /// process serves the records, and every write is visible once acknowledged.
    pub fn sequence(&self, tenant: &str) -> u64 {
        self.tenant(tenant).map_or(0, |t| t.applied())
    }

    /// Whether this process applied `tenant`'s writes through `sequence` (so a read sees
    /// them); on sled, always.
    pub fn has_applied(&self, tenant: &str, sequence: u64) -> bool {
        !self.inner.backend.sequences_writes() || self.sequence(tenant) >= sequence
    }

    /// Deletes records by key, durably; returns how many existed.
    pub fn delete(&self, tenant: &str, keys: &[RecordKey]) -> Result<u64, StoreError> {
        check_tenant(tenant)?;
        let deleted = self.inner.backend.delete(self, tenant, keys)?;
        self.refresh(tenant);
        Ok(deleted)
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

    /// Changes a tenant's settings, durably, refused with the same errors as records while
    /// writes are refused; the next request sees them. Returns the settings now in effect.
    pub fn update_settings(
        &self,
        tenant: &str,
        update: &SettingsUpdate,
    ) -> Result<TenantSettings, StoreError> {
        check_tenant(tenant)?;
        let settings = self.inner.backend.update_settings(self, tenant, update)?;
        self.refresh(tenant);
        Ok(settings)
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
        let after = if page_token.is_empty() {
            None
        } else {
            Some(parse_page_token(page_token, kind)?)
        };
        let after = after.as_deref().map(|bytes| {
            let kind = kind_of_byte(bytes[0]).expect("checked by the parse");
            let id = std::str::from_utf8(&bytes[1..]).expect("checked by the parse");
            (kind, id)
        });
        // One record more than the page says whether another page follows.
        let mut records = self
            .inner
            .backend
            .list(tenant, kind, after, page_size + 1)?;
        let more = records.len() > page_size;
        records.truncate(page_size);
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
        let (index, over_budget) = tenant.index(&self.inner.budget);
        if over_budget {
            // Dropping a large index takes a while.
            crate::long_work::run(crate::long_work::LONG_WORK_ROWS, || {
                self.release_others(tenant)
            });
        }
        index
    }

    /// After a write to `tenant` (before it is acknowledged): its index built now if it
    /// is being read ([`Tenant::refresh`]).
    fn refresh(&self, tenant: &str) {
        if let Some(t) = self.tenant(tenant) {
            if t.refresh(&self.inner.budget) {
                self.release_others(&t);
            }
        }
    }

    /// Over the budget: releases the least recently read tenants' indexes, never
    /// `tenant`'s.
    fn release_others(&self, tenant: &Arc<Tenant>) {
        let budget = &self.inner.budget;
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

    /// Makes every write so far durable: on sled, sled's flush and then (for a store on
    /// disk) the fsync'd commit point; on PostgreSQL every acknowledged write is
    /// committed already. [`Store::put`] and [`Store::delete`] do this before they return.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.inner.backend.flush(self)
    }

    /// Saves what makes the next open fast (kpid calls this when it stops): on sled, every
    /// tenant's rows to the snapshot file the next open reads instead of scanning the
    /// records, current until the next write (a temporary store only commits); on
    /// PostgreSQL, nothing. When the file cannot be written ([`StoreError::Snapshot`], a
    /// full disk say) every write is still committed and no snapshot is current: the next
    /// open scans.
    pub fn save_snapshot(&self) -> Result<(), StoreError> {
        self.inner.backend.save_snapshot(self)
    }

    /// [`Store::save_snapshot`], then closes the store: writes are refused after it, reads
    /// go on (kpid calls this when it stops). On sled, the current-snapshot marker is
    /// written once sled is closed, so it notes sled's log as the next start finds it.
    pub fn close(&self) -> Result<(), StoreError> {
        self.inner.backend.close(self)
    }

    /// Whether the store takes writes (for health checks).
    pub fn write_health(&self) -> WriteHealth {
        self.inner.backend.write_health()
    }

    /// The sled backend (tests of sled's own behaviour).
    #[cfg(test)]
    fn sled_backend(&self) -> &sled_backend::SledBackend {
        match &self.inner.backend {
            AnyBackend::Sled(sled) => sled,
            AnyBackend::Postgres(_) => panic!("a sled store"),
        }
    }

    /// Whether the rows snapshot is current (the store was opened from it, or saved it, and
    /// nothing was written since).
    #[cfg(test)]
    pub(crate) fn snapshot_is_current(&self) -> bool {
        self.sled_backend().snapshot_is_current()
    }

    /// Settings changes that reached sled and then failed with a full disk (its commit,
    /// say): writes stop, and the change was never acknowledged.
    #[cfg(test)]
    pub(crate) fn fail_settings_write(&self, written: &[(&str, &TenantSettings)]) {
        self.sled_backend().fail_settings_write(self, written);
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
            disk_bytes: self.inner.backend.disk_bytes(),
        }
    }
}
