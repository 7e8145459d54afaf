//! The sled backend, the embedded default: every record, the settings and the snapshot
//! token in one sled database on this machine, fsync'd at a commit point (`durable.rs`)
//! that concurrent writers share, their row changes waiting for it (`pending.rs`). Opening
//! it (from the rows snapshot or by a scan) is `open.rs`; a failed write and the recovery
//! from a full disk, `recovery.rs`; the rows snapshot saved at stop, `snapshot.rs`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock};

use super::backend::Backend;
use super::current_marker;
use super::recovery::{Cause, WriteState};
use super::{lock, RecordKey, Store, Tenant, Unapplied, WriteHealth};
use crate::codec::{
    decode_record, encode_record, kind_byte, record_key, split_key, tenant_prefix, value_slot,
};
use crate::durable::Commit;
use crate::error::StoreError;
use crate::pending::{Before, Originals, PendingWrites, RowChanges};
use crate::record::{Record, RecordKind};
use crate::rows::Rows;
use crate::settings::{self, SettingsUpdate, TenantSettings};
use crate::snapshot;

/// sled's page cache. The query side answers from memory, so sled's cache only serves
/// writes, listings and the scan at open; sled's default (1 GiB) would add up to a
/// gigabyte of resident memory to a large store for little gain. At 10M records, 16 MiB
/// instead of 256 MiB holds about 300 MiB less after the ingest, at the same ingest speed
/// (BENCHMARKS.md).
pub(super) const SLED_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// How often a store whose disk was full tries to take writes again.
pub(super) const RECOVERY_RETRY: std::time::Duration = std::time::Duration::from_millis(500);

/// The key in `meta` of the current snapshot's token.
pub(super) const SNAPSHOT_TOKEN: &[u8] = b"snapshot";

/// The token of the snapshot `meta` names current, if any.
pub(super) fn snapshot_token(meta: &sled::Tree) -> Result<Option<u64>, StoreError> {
    Ok(meta
        .get(SNAPSHOT_TOKEN)?
        .and_then(|v| <[u8; 8]>::try_from(&*v).ok())
        .map(u64::from_le_bytes))
}

/// One opening of the sled database: a recovery from a full disk reopens it.
#[derive(Clone)]
pub(super) struct Sled {
    pub(super) db: sled::Db,
    /// Every record of every tenant.
    pub(super) tree: sled::Tree,
    /// The token of the current snapshot.
    pub(super) meta: sled::Tree,
    /// Every tenant's settings (`settings.rs`).
    pub(super) settings: sled::Tree,
    /// The fsync'd commit point (`None` for a temporary store, which nothing outlives).
    commit: Option<Arc<Commit>>,
}

impl Sled {
    pub(super) fn new(db: sled::Db, commit: Option<Commit>) -> Result<Sled, StoreError> {
        Ok(Sled {
            tree: db.open_tree("records")?,
            meta: db.open_tree("meta")?,
            settings: db.open_tree("settings")?,
            db,
            commit: commit.map(Arc::new),
        })
    }

    /// Notes a write applied to sled, for the commit point.
    pub(super) fn wrote(&self) {
        if let Some(commit) = &self.commit {
            commit.wrote();
        }
    }

    /// The commit point: sled flush plus fsync, shared by concurrent writers.
    pub(super) fn commit(&self) -> Result<(), StoreError> {
        match &self.commit {
            Some(commit) => commit.commit(&self.db),
            None => {
                self.db.flush()?;
                Ok(())
            }
        }
    }
}

/// The records in a sled database, and the state of its writes.
pub(super) struct SledBackend {
    /// sled's handles; `None` after a failed write poisoned them, until a recovery
    /// reopens the database.
    pub(super) sled: RwLock<Option<Sled>>,
    /// Serializes writes so sled and the in-memory records change in the same order.
    pub(super) writer: Mutex<()>,
    /// Writes in sled whose commit has not returned: their row changes wait there.
    pub(super) pending: PendingWrites<Tenant>,
    /// Whether writes are taken (changed under the writer lock).
    pub(super) write_state: Mutex<WriteState>,
    /// Whether a thread retries the recovery from a full disk.
    pub(super) recovering: AtomicBool,
    /// sled's size on disk when last read (kept while sled is closed).
    pub(super) disk_bytes: AtomicU64,
    /// The data directory (`None` for a temporary store).
    pub(super) dir: Option<PathBuf>,
    /// Whether `meta` names a current snapshot, which the next write must retire first.
    pub(super) snapshot_current: AtomicBool,
    /// Whether sled has opened: a start that answers queries from a current snapshot
    /// before (`current_marker.rs`) makes writes and listings wait for it.
    pub(super) opened: Opened,
}

/// A latch set once sled has opened (or failed to).
pub(super) struct Opened {
    done: Mutex<bool>,
    changed: Condvar,
}

impl Opened {
    fn new(done: bool) -> Opened {
        Opened {
            done: Mutex::new(done),
            changed: Condvar::new(),
        }
    }

    /// Returns once sled has opened (or failed to).
    pub(super) fn wait(&self) {
        let mut done = lock(&self.done);
        while !*done {
            done = self
                .changed
                .wait(done)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Sled has opened (or failed to): wakes every waiter.
    pub(super) fn set(&self) {
        *lock(&self.done) = true;
        self.changed.notify_all();
    }
}

impl SledBackend {
    /// The backend over an opened sled database, writable, no write pending.
    pub(super) fn new(sled: Sled, dir: Option<PathBuf>, snapshot_current: bool) -> SledBackend {
        SledBackend::with(Some(sled), dir, snapshot_current)
    }

    /// The backend of a store whose rows came from the current snapshot in `dir` while
    /// sled still opens: writes and listings wait until [`SledBackend::open_done`] gives it
    /// sled (or why it failed to open).
    pub(super) fn opening(dir: PathBuf) -> SledBackend {
        SledBackend::with(None, Some(dir), true)
    }

    /// Opened when given `sled`, else waiting for it.
    fn with(sled: Option<Sled>, dir: Option<PathBuf>, snapshot_current: bool) -> SledBackend {
        SledBackend {
            opened: Opened::new(sled.is_some()),
            sled: RwLock::new(sled),
            writer: Mutex::new(()),
            pending: PendingWrites::default(),
            write_state: Mutex::new(WriteState::Writable),
            recovering: AtomicBool::new(false),
            disk_bytes: AtomicU64::new(0),
            dir,
            snapshot_current: AtomicBool::new(snapshot_current),
        }
    }

    /// Sled opened for a backend made by [`SledBackend::opening`] (`Err`: it did not, and
    /// writes are refused until a restart); the waiting writes and listings go on.
    pub(super) fn open_done(&self, sled: Result<Sled, StoreError>) {
        match sled {
            Ok(sled) => {
                *self.sled.write().unwrap_or_else(PoisonError::into_inner) = Some(sled);
            }
            Err(e) => {
                tracing::error!(error = %e, "sled did not open: queries answer from the rows snapshot, writes are refused until kpid restarts");
                *lock(&self.write_state) = WriteState::Failed {
                    cause: Cause::Io(e.to_string()),
                    originals: Originals::new(),
                };
            }
        }
        self.opened.set();
    }

    /// Commits (see [`Sled::commit`]); then the writes up to `ticket` are durable and their
    /// rows change. A write whose commit failed, or that a failed commit of another
    /// discarded, answers the error that stopped writes.
    fn commit_through(&self, store: &Store, sled: &Sled, ticket: u64) -> Result<(), StoreError> {
        if let Err(e) = sled.commit() {
            let _writer = lock(&self.writer);
            return Err(self.stop_writes(store, e, Originals::new()));
        }
        let applied = self.pending.apply_through(ticket, |write| {
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

    /// Before the first write after a snapshot was written or loaded: removes its token,
    /// durably, so that a crash after this write cannot reopen the stale snapshot.
    /// Call under the writer lock.
    fn retire_snapshot(&self, store: &Store, sled: &Sled) -> Result<(), StoreError> {
        if self.snapshot_current.load(Ordering::SeqCst) {
            // The marker first: a start must never read it once the token is gone.
            if let Err(e) = self.remove_marker() {
                return Err(self.stop_writes(store, e, Originals::new()));
            }
            let retired = sled.meta.remove(SNAPSHOT_TOKEN).map_err(StoreError::from);
            sled.wrote();
            if let Err(e) = retired.and_then(|_| sled.commit()) {
                return Err(self.stop_writes(store, e, Originals::new()));
            }
            self.snapshot_current.store(false, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Commits, then saves every tenant's rows to the snapshot (unless it is current) and
    /// the index image beside it: the token of the snapshot now current (`None`: a
    /// temporary store, which only commits).
    fn snapshot_saved(&self, store: &Store) -> Result<Option<u64>, StoreError> {
        let Some(dir) = &self.dir else {
            self.flush(store)?;
            return Ok(None);
        };
        let _writer = lock(&self.writer);
        let sled = match self.writable_sled() {
            Ok(sled) => sled,
            // Every acknowledged write is durable; only the next start is slower.
            Err(e) => return Err(StoreError::Snapshot(std::io::Error::other(e.to_string()))),
        };
        // Every acknowledged write is committed already; what fails here was never
        // acknowledged.
        self.commit_through(store, &sled, self.pending.last_ticket())
            .map_err(|e| StoreError::Snapshot(std::io::Error::other(e.to_string())))?;
        if self.snapshot_current.load(Ordering::SeqCst) {
            // Nothing was written since the snapshot was loaded or saved: it is current.
            tracing::info!("rows snapshot current: not written again");
            let token = snapshot_token(&sled.meta)?;
            if let Some(token) = token {
                store.write_index_image(dir, token);
            }
            return Ok(token);
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
        let tenants = store.tenants();
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
        self.snapshot_current.store(true, Ordering::SeqCst);
        tracing::info!(
            snapshot_write_ms = started.elapsed().as_millis() as u64,
            "rows snapshot written"
        );
        drop(guards);
        store.write_index_image(dir, token);
        Ok(Some(token))
    }

    /// Writes the current-snapshot marker for the committed snapshot `token`, with the
    /// settings in memory (call under the writer lock, so they are sled's); a failure only
    /// makes the next start open sled first.
    fn write_marker(&self, store: &Store, dir: &std::path::Path, token: u64) {
        let settings = store
            .inner
            .settings
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Err(e) = current_marker::write(dir, token, &settings) {
            tracing::warn!(error = %e, "the current-snapshot marker was not written: the next start opens sled first");
        }
    }

    /// Removes the current-snapshot marker, durably (before anything that makes it false).
    fn remove_marker(&self) -> Result<(), StoreError> {
        match &self.dir {
            Some(dir) => current_marker::remove(dir).map_err(|e| StoreError::Sled(e.into())),
            None => Ok(()),
        }
    }

    /// Whether the rows snapshot is current (the store was opened from it, or saved it, and
    /// nothing was written since).
    #[cfg(test)]
    pub(super) fn snapshot_is_current(&self) -> bool {
        self.snapshot_current.load(Ordering::SeqCst)
    }

    /// Settings changes that reached sled and then failed with a full disk (its commit,
    /// say): writes stop, and the change was never acknowledged.
    #[cfg(test)]
    pub(super) fn fail_settings_write(&self, store: &Store, written: &[(&str, &TenantSettings)]) {
        let _writer = lock(&self.writer);
        let sled = self.writable_sled().expect("writable");
        for (tenant, settings) in written {
            settings::write(&sled.settings, tenant, settings).expect("written");
        }
        self.stop_writes(store, StoreError::StorageFull, Originals::new());
    }
}

impl Backend for SledBackend {
    /// With slot 0: the write fills in the slot it reserves. Every record, in order (the
    /// write's inserts make the later of one key win).
    fn encode(&self, records: &mut Vec<Record>) -> Vec<Vec<u8>> {
        records.iter().map(|r| encode_record(r, 0)).collect()
    }

    /// Inserts each record with the slot reserved for its row (sled hands back the value
    /// it replaces, which names the slot to free), then commits outside the writer lock.
    fn put(
        &self,
        store: &Store,
        tenant: &str,
        records: Vec<Record>,
        values: Vec<Vec<u8>>,
        _after: Option<u64>,
    ) -> Result<Unapplied, StoreError> {
        // Keyed outside the lock; the slot (bytes 1..5) is filled in below.
        let mut encoded: Vec<(Vec<u8>, Vec<u8>)> = records
            .iter()
            .zip(values)
            .map(|(r, value)| (record_key(tenant, r.kind(), r.id()), value))
            .collect();
        let writer = lock(&self.writer);
        let sled = self.writable_sled()?;
        self.retire_snapshot(store, &sled)?;
        let t = store.tenant_or_create(tenant);
        let slots: Vec<u32> = {
            let mut state = t.records.write().unwrap_or_else(PoisonError::into_inner);
            records
                .iter()
                .map(|r| state.rows.allocate(r.kind()))
                .collect()
        };
        // One insert per record, not one sled `Batch`: a batch holds sled's exclusive
        // lock and one epoch for all of it, which halves throughput. Queries still see
        // the call all at once (its rows change once it is committed); after a crash
        // an unacknowledged call may be stored in part. sled hands back the value each
        // insert replaces, which names the slot to free.
        let mut replaced = Vec::with_capacity(records.len());
        let mut before: Vec<(Vec<u8>, Before)> = Vec::with_capacity(records.len());
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
            let mut state = t.records.write().unwrap_or_else(PoisonError::into_inner);
            for (record, slot) in records.iter().zip(&slots) {
                state.rows.release(record.kind(), *slot);
            }
            drop(state);
            return Err(self.abandon(store, &sled, failed, before));
        }
        let changes = records
            .into_iter()
            .zip(slots)
            .zip(replaced)
            .map(|((record, slot), old)| (record, slot, old))
            .collect();
        let ticket = self.pending.push(t, RowChanges::Put(changes), before);
        sled.wrote();
        // Committing outside the writer lock lets concurrent writers share one fsync;
        // none of them returns before its batch is on disk.
        drop(writer);
        self.commit_through(store, &sled, ticket)?;
        Ok(Unapplied::applied(tenant))
    }

    fn delete(&self, store: &Store, tenant: &str, keys: &[RecordKey]) -> Result<u64, StoreError> {
        let Some(t) = store.tenant(tenant) else {
            return Ok(0);
        };
        let writer = lock(&self.writer);
        let sled = self.writable_sled()?;
        self.retire_snapshot(store, &sled)?;
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
            return Err(self.abandon(store, &sled, failed, before));
        }
        if before.is_empty() {
            return Ok(0);
        }
        let removed = freed.len() as u64;
        let ticket = self.pending.push(t, RowChanges::Delete(freed), before);
        sled.wrote();
        drop(writer);
        self.commit_through(store, &sled, ticket)?;
        Ok(removed)
    }

    /// Written and committed under the writer lock (settings change rarely, so the fsync
    /// is not shared), and refused with the same errors as records while writes are
    /// stopped.
    fn update_settings(
        &self,
        store: &Store,
        tenant: &str,
        update: &SettingsUpdate,
    ) -> Result<TenantSettings, StoreError> {
        let _writer = lock(&self.writer);
        let sled = self.writable_sled()?;
        // The marker holds the settings: it goes first.
        if let Err(e) = self.remove_marker() {
            return Err(self.stop_writes(store, e, Originals::new()));
        }
        let changed = update.applied_to(&store.settings(tenant));
        let written = settings::write(&sled.settings, tenant, &changed).and_then(|()| {
            sled.wrote();
            sled.commit()
        });
        if let Err(e) = written {
            // What sled holds of the change is unknown: a recovery writes back the
            // settings in memory, which it has not touched.
            return Err(self.stop_writes(store, e, Originals::new()));
        }
        store
            .inner
            .settings
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(tenant.to_owned(), changed.clone());
        store.settings_changed(tenant, &changed);
        Ok(changed)
    }

    fn list(
        &self,
        tenant: &str,
        kind: Option<RecordKind>,
        after: Option<(RecordKind, &str)>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let mut prefix = tenant_prefix(tenant);
        if let Some(k) = kind {
            prefix.push(kind_byte(k));
        }
        let start = match after {
            None => prefix.clone(),
            Some((kind, id)) => {
                let mut start = record_key(tenant, kind, id);
                // The smallest key after `after`.
                start.push(0);
                start
            }
        };
        self.opened.wait();
        let tree = match &*self.sled.read().unwrap_or_else(PoisonError::into_inner) {
            Some(sled) => sled.tree.clone(),
            None => return Err(self.unreadable()),
        };
        let mut records = Vec::new();
        for item in tree.range(start..) {
            let (key, value) = item?;
            if !key.starts_with(&prefix) || records.len() == limit {
                break;
            }
            split_key(&key)?;
            records.push(decode_record(&key, &value)?);
        }
        Ok(records)
    }

    /// sled's flush, then (for a store on disk) the fsync'd commit point, which sled's
    /// flush alone is not (it uses `sync_file_range`, which survives a process crash but
    /// not a power loss).
    fn flush(&self, store: &Store) -> Result<(), StoreError> {
        let _writer = lock(&self.writer);
        let sled = self.writable_sled()?;
        let ticket = self.pending.last_ticket();
        self.commit_through(store, &sled, ticket)
    }

    /// Writes every tenant's rows to the snapshot file that the next open reads instead of
    /// scanning the records. Commits first; the snapshot is current until the next write.
    /// A temporary store only commits. When the file cannot be written
    /// ([`StoreError::Snapshot`], a full disk say) every write is still committed and no
    /// snapshot is current: the next open scans.
    fn save_snapshot(&self, store: &Store) -> Result<(), StoreError> {
        if let (Some(token), Some(dir)) = (self.snapshot_saved(store)?, &self.dir) {
            self.write_marker(store, dir, token);
        }
        Ok(())
    }

    /// The rows snapshot saved, then sled closed (its background threads, which may still
    /// clean its log, stopped), then the current-snapshot marker written: it notes sled's
    /// log as it stays.
    fn close(&self, store: &Store) -> Result<(), StoreError> {
        let token = self.snapshot_saved(store)?;
        let _writer = lock(&self.writer);
        *lock(&self.write_state) = WriteState::Failed {
            cause: Cause::Io("the store is closed".into()),
            originals: Originals::new(),
        };
        let closing = self
            .sled
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(closing);
        // A write since the snapshot retired its token: no marker then.
        let current = self.snapshot_current.load(Ordering::SeqCst);
        if let (Some(token), Some(dir), true) = (token, &self.dir, current) {
            self.write_marker(store, dir, token);
        }
        Ok(())
    }

    /// One process serves the records: every write is visible once acknowledged.
    fn sequences_writes(&self) -> bool {
        false
    }

    fn write_health(&self) -> WriteHealth {
        lock(&self.write_state).health()
    }

    fn disk_bytes(&self) -> u64 {
        match &*self.sled.read().unwrap_or_else(PoisonError::into_inner) {
            Some(sled) => {
                let bytes = sled.db.size_on_disk().unwrap_or(0);
                self.disk_bytes.store(bytes, Ordering::Relaxed);
                bytes
            }
            None => self.disk_bytes.load(Ordering::Relaxed),
        }
    }
}
