//! Opening a store over sled (from the rows snapshot when a current one verifies, else by
//! scanning sled), loading every tenant's records into memory, and building the large
//! tenants' indexes in the background; and what opening either backend ends with
//! ([`Inner::loaded`]). PostgreSQL's open is `postgres_backend.rs`.

use std::path::PathBuf;

use super::current_marker;
use super::sled_backend::{snapshot_token, Sled, SledBackend, SLED_CACHE_BYTES, SNAPSHOT_TOKEN};
use super::*;
use crate::codec::{decode_record, encode_record, split_key, value_slot};
use crate::durable::Commit;
use crate::settings;
use crate::snapshot;

/// Tenants of at least this many rows get their index built at open (see
/// [`Store::warm_large_tenants`]); a smaller one's first read builds it in milliseconds.
pub(super) const WARM_AT_OPEN_ROWS: usize = 50_000;

impl Inner {
    /// The state of a store whose `backend` loaded `tenants` and their settings: no
    /// memory budget.
    pub(super) fn loaded(
        tenants: HashMap<String, Arc<Tenant>>,
        settings: SettingsByTenant,
        backend: AnyBackend,
    ) -> Inner {
        // The amounts are converted to each tenant's base currency with its rates.
        for (name, tenant) in &tenants {
            let base = settings.get(name).map_or("", |s| s.base_currency.as_str());
            let mut records = tenant
                .records
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let kinds = records.rows.set_base_currency(base);
            records.changed(kinds);
        }
        Inner {
            tenants: RwLock::new(tenants),
            settings: RwLock::new(settings),
            budget: Budget::default(),
            index_image: std::sync::atomic::AtomicBool::new(true),
            backend,
        }
    }
}

impl Store {
    /// Opens (or creates) the store in directory `path` and loads every record into
    /// memory (from the rows snapshot when a current one verifies, else by scanning sled).
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        Self::open_with(path, OpenOptions::default())
    }

    /// [`Store::open`], as `options` say.
    ///
    /// The rows snapshot, if there is one, is read on a second thread while sled opens
    /// (sled reads its whole log to rebuild its page table: about as long as the snapshot
    /// takes to read), then kept only if sled names it current.
    pub fn open_with(path: impl AsRef<Path>, options: OpenOptions) -> Result<Store, StoreError> {
        let path: &Path = path.as_ref();
        if !options.verify_snapshot {
            if let Some(store) = Self::open_before_sled(path, &options)? {
                return Ok(store);
            }
        }
        let started = std::time::Instant::now();
        let (db, early) = std::thread::scope(|s| {
            let early = s.spawn(|| snapshot::read_early(path));
            let db = open_sled(
                sled::Config::new()
                    .path(path)
                    .cache_capacity(SLED_CACHE_BYTES),
            );
            let sled_ms = started.elapsed().as_millis() as u64;
            let early = early
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e));
            tracing::info!(
                sled_ms,
                snapshot_ms = early.elapsed.as_millis() as u64,
                "sled opened and the rows snapshot read, side by side"
            );
            (db, early)
        });
        let db = db?;
        let dir = canonical(path)?;
        let commit = Commit::open(&dir)?;
        Self::load_with(db, Some(commit), Some(dir), options, Some(early))
    }

    /// The store from the rows snapshot when the current-snapshot marker names it
    /// (`current_marker.rs`), answering queries at once while sled opens on a thread of its
    /// own (writes and listings wait for it); `None` when there is no such marker, or the
    /// snapshot does not verify (the marker is then removed and the store opens as before).
    fn open_before_sled(path: &Path, options: &OpenOptions) -> Result<Option<Store>, StoreError> {
        let started = std::time::Instant::now();
        let discard = |why: &dyn std::fmt::Display| {
            tracing::warn!(reason = %why, "the current-snapshot marker is not used: opening sled first");
            let _ = current_marker::remove(path);
        };
        let marker = match current_marker::read(path) {
            Ok(Some(marker)) => marker,
            Ok(None) => return Ok(None),
            Err(e) => {
                discard(&e);
                return Ok(None);
            }
        };
        if current_marker::LogFile::of(path).ok() != Some(marker.log) {
            discard(&"sled's log changed since it was written");
            return Ok(None);
        }
        let tenants = match snapshot::read(path, marker.token) {
            Ok(Some(tenants)) => tenants,
            Ok(None) => {
                discard(&"no rows snapshot");
                return Ok(None);
            }
            Err(e) => {
                discard(&e);
                return Ok(None);
            }
        };
        let dir = canonical(path)?;
        // Named by the marker: sled opens meanwhile (writes and listings wait for it).
        let tenants = serving(snapshot_records(tenants, started, true));
        let backend = SledBackend::opening(dir.clone());
        let thread_dir = dir.clone();
        let store = Store {
            inner: Arc::new(Inner::loaded(
                tenants,
                marker.settings,
                AnyBackend::Sled(backend),
            )),
        };
        store.set_memory_budget(options.memory_budget);
        // The large tenants warm once sled has opened, leaving the cores meanwhile to sled
        // and to the first queries; but at once when an index image of these rows is
        // there to read (reading it costs a fraction of building).
        store.set_index_image(!options.no_index_image, &dir);
        let mut warm = options.memory_budget.is_none();
        if warm && !options.no_index_image && crate::index::image::is_current(&dir, marker.token) {
            store.warm_large_tenants(Some((dir.clone(), marker.token)));
            warm = false;
        }
        let weak = Arc::downgrade(&store.inner);
        let token = marker.token;
        let spawned = std::thread::Builder::new()
            .name("kpid-sled-open".into())
            .spawn(move || {
                let opened = Self::open_sled_behind(&thread_dir, token);
                tracing::info!(
                    sled_ms = started.elapsed().as_millis() as u64,
                    ok = opened.is_ok(),
                    "sled opened behind the current snapshot"
                );
                if let Some(inner) = weak.upgrade() {
                    Store { inner }.sled_opened(opened, warm);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot open sled on a thread of its own: opening it first");
            store.sled_opened(Self::open_sled_behind(&dir, token), warm);
        }
        Ok(Some(store))
    }

    /// Sled opened (or failed to) behind a store opened by [`Store::open_before_sled`]:
    /// the waiting writes go on, and the large tenants warm when `warm`.
    fn sled_opened(&self, opened: Result<Sled, StoreError>, warm: bool) {
        if let AnyBackend::Sled(backend) = &self.inner.backend {
            backend.open_done(opened);
        }
        if warm {
            self.warm_large_tenants(None);
        }
    }

    /// Opens sled in `dir` behind rows read from the snapshot `token` names: its commit
    /// point, and a check that sled names that snapshot current too (it always does: the
    /// marker is removed before the token; if not, writes are refused and the marker goes,
    /// so the next start scans).
    fn open_sled_behind(dir: &Path, token: u64) -> Result<Sled, StoreError> {
        let db = open_sled_dir(dir)?;
        let commit = Commit::open(dir)?;
        let sled = Sled::new(db, Some(commit))?;
        let held = snapshot_token(&sled.meta)?;
        if held != Some(token) {
            let _ = current_marker::remove(dir);
            return Err(StoreError::Corrupt(format!(
                "sled names snapshot {held:?} current, the marker {token}: the rows read may not be sled's"
            )));
        }
        Ok(sled)
    }

    /// A store in a temporary sled database, removed when dropped (for tests).
    pub fn temporary() -> Result<Store, StoreError> {
        let db = sled::Config::new().temporary(true).open()?;
        Self::load(db, None, None, OpenOptions::default())
    }

    /// Loads the records of sled `db`: from the snapshot in `dir` when it is current and
    /// verifies (and, with [`OpenOptions::verify_snapshot`], matches a scan), else by
    /// scanning; a snapshot not read is removed.
    pub(crate) fn load(
        db: sled::Db,
        commit: Option<Commit>,
        dir: Option<PathBuf>,
        options: OpenOptions,
    ) -> Result<Store, StoreError> {
        Self::load_with(db, commit, dir, options, None)
    }

    /// [`Store::load`], with the snapshot already read (`early`) when given.
    fn load_with(
        db: sled::Db,
        commit: Option<Commit>,
        dir: Option<PathBuf>,
        options: OpenOptions,
        early: Option<snapshot::Early>,
    ) -> Result<Store, StoreError> {
        let tree = db.open_tree("records")?;
        let meta = db.open_tree("meta")?;
        let token = snapshot_token(&meta)?;
        let started = std::time::Instant::now();
        let snapshot = match (&dir, token) {
            (Some(dir), Some(token)) => match early {
                Some(early) => early.current(token),
                None => snapshot::read(dir, token),
            }
            .unwrap_or_else(|e| {
                tracing::warn!(
                    path = %dir.join(snapshot::FILE).display(),
                    reason = %e,
                    "the rows snapshot does not verify: removing it and scanning the records"
                );
                None
            }),
            _ => None,
        };
        // The rows of a scan already made (to verify the snapshot, which differed).
        let mut scanned = None;
        let snapshot = match snapshot {
            Some(tenants) if options.verify_snapshot => {
                let rows = Self::scan(&db, &tree)?;
                if Self::same_rows(&tenants, &rows) {
                    tracing::info!("the rows snapshot matches the records in sled");
                    Some(tenants)
                } else {
                    scanned = Some(rows);
                    None
                }
            }
            other => other,
        };
        let snapshot_current = snapshot.is_some();
        let tenants = match snapshot {
            Some(tenants) => snapshot_records(tenants, started, false),
            None => {
                if token.is_some() {
                    // A token without its snapshot: retire it.
                    meta.remove(SNAPSHOT_TOKEN)?;
                    db.flush()?;
                }
                if let Some(dir) = &dir {
                    // A stale snapshot (and the index image over it) is never read again:
                    // free its space.
                    let _ = std::fs::remove_file(dir.join(snapshot::FILE));
                    let _ = std::fs::remove_file(dir.join(crate::index::image::FILE));
                }
                match scanned {
                    Some(rows) => rows,
                    None => Self::scan(&db, &tree)?,
                }
            }
        };
        let tenants = serving(tenants);
        let tenant_settings = settings::load(&db.open_tree("settings")?)?;
        drop((tree, meta));
        let image = match (&dir, token) {
            (Some(dir), Some(token)) if snapshot_current && !options.no_index_image => {
                Some((dir.clone(), token))
            }
            _ => None,
        };
        let image_dir = dir.clone();
        let backend = SledBackend::new(Sled::new(db, commit)?, dir, snapshot_current);
        let store = Store {
            inner: Arc::new(Inner::loaded(
                tenants,
                tenant_settings,
                AnyBackend::Sled(backend),
            )),
        };
        store.set_memory_budget(options.memory_budget);
        if let Some(dir) = &image_dir {
            store.set_index_image(!options.no_index_image, dir);
        }
        if options.memory_budget.is_none() {
            store.warm_large_tenants(image);
        }
        Ok(store)
    }

    /// Builds the index of every tenant of at least [`WARM_AT_OPEN_ROWS`] rows, largest
    /// first, on a background thread, as its first read would (which also warms every
    /// part, `Tenant::index`): the first dashboard after a restart finds its parts built
    /// or being built. A read arriving first builds what it reads itself (a part both
    /// reach is built once). Holds the store only while it builds (a dropped store stops
    /// it); not with a memory budget, under which nothing is built before it is read.
    /// With `image` (a data directory and the token of the rows snapshot loaded), what
    /// the index image there holds is read first (`store/index_image.rs`).
    fn warm_large_tenants(&self, image: Option<(PathBuf, u64)>) {
        let tenants = self.tenants();
        let mut large: Vec<(usize, Arc<Tenant>)> = tenants
            .iter()
            .map(|(_, t)| (t.rows_len(), Arc::clone(t)))
            .filter(|(rows, _)| *rows >= WARM_AT_OPEN_ROWS)
            .collect();
        if large.is_empty() && image.is_none() {
            return;
        }
        large.sort_by_key(|(rows, _)| std::cmp::Reverse(*rows));
        // The image holds indexes over the rows as loaded: each tenant's generation now,
        // before the store is shared and any write applied.
        let loaded: HashMap<String, u64> = tenants
            .iter()
            .map(|(name, t)| (name.clone(), t.generation()))
            .collect();
        let store = Arc::downgrade(&self.inner);
        let spawned = std::thread::Builder::new()
            .name("kpid-warm-at-open".into())
            .spawn(move || {
                if let (Some((dir, token)), Some(inner)) = (image, store.upgrade()) {
                    Store { inner }.read_index_image(&dir, token, &loaded);
                }
                for (rows, tenant) in large {
                    let Some(inner) = store.upgrade() else { return };
                    let started = std::time::Instant::now();
                    drop(Store { inner }.index_of(&tenant));
                    tracing::info!(
                        rows,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "a large tenant's index built at open; its parts are warming"
                    );
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start warming the index at open: the first reads build it");
        }
    }

    /// Every tenant's rows, from a scan of the records in sled.
    fn scan(
        db: &sled::Db,
        tree: &sled::Tree,
    ) -> Result<HashMap<String, TenantRecords>, StoreError> {
        let mut tenants: HashMap<String, TenantRecords> = HashMap::new();
        let mut count = 0u64;
        let mut legacy = 0u64;
        for item in tree.iter() {
            let (key, value) = item?;
            count += 1;
            if !Self::load_entry(&mut tenants, &key, &value)? {
                // A first-release value: given a slot below, once every slot is known.
                legacy += 1;
            }
        }
        for t in tenants.values_mut() {
            t.rows.loaded();
        }
        if legacy > 0 {
            // Rewrite first-release values with a slot each.
            for item in tree.iter() {
                let (key, value) = item?;
                if value_slot(&key, &value)?.is_some() {
                    continue;
                }
                let (tenant, kind, _) = split_key(&key)?;
                let record = decode_record(&key, &value)?;
                let rows = &mut tenants.entry(tenant.to_owned()).or_default().rows;
                let slot = rows.allocate(kind);
                tree.insert(key.clone(), encode_record(&record, slot))?;
                rows.put(slot, &record);
            }
            db.flush()?;
            tracing::info!(records = legacy, "stored values given their row slot");
        }
        tracing::info!(
            records = count,
            tenants = tenants.len(),
            "record store loaded"
        );
        Ok(tenants)
    }

    /// Puts one stored record (its key and value) into its tenant's rows; `false` for a
    /// first-release value, which has no slot yet (and is left out).
    fn load_entry(
        tenants: &mut HashMap<String, TenantRecords>,
        key: &[u8],
        value: &[u8],
    ) -> Result<bool, StoreError> {
        let (tenant, kind, id) = split_key(key)?;
        let record = decode_record(key, value)?;
        check_key(key, &record, kind, id)?;
        let Some(slot) = value_slot(key, value)? else {
            return Ok(false);
        };
        let rows = match tenants.get_mut(tenant) {
            Some(t) => &mut t.rows,
            None => &mut tenants.entry(tenant.to_owned()).or_default().rows,
        };
        if rows.occupied(kind, slot) {
            return Err(StoreError::Corrupt(format!(
                "key {} holds slot {slot}, which another {} record holds too",
                crate::codec::hex(key),
                kind.as_str()
            )));
        }
        rows.put(slot, &record);
        Ok(true)
    }

    /// Whether the rows of a snapshot equal those of a scan of sled; when not, logs a
    /// warning counting the tenants and naming the kinds that differ.
    fn same_rows(snapshot: &[(String, Rows)], scanned: &HashMap<String, TenantRecords>) -> bool {
        let empty = Rows::default();
        let from_snapshot: HashMap<&str, &Rows> = snapshot
            .iter()
            .map(|(n, rows)| (n.as_str(), rows))
            .collect();
        let mut names: Vec<&str> = from_snapshot.keys().copied().collect();
        names.extend(scanned.keys().map(String::as_str));
        names.sort_unstable();
        names.dedup();
        let mut tenants = 0usize;
        let mut kinds = std::collections::BTreeSet::new();
        for name in names {
            let a = from_snapshot.get(name).copied().unwrap_or(&empty);
            let b = scanned.get(name).map_or(&empty, |t| &t.rows);
            let differing = snapshot::differing_kinds(a, b);
            if !differing.is_empty() {
                tenants += 1;
                kinds.extend(differing);
            }
        }
        if tenants > 0 {
            tracing::warn!(
                tenants,
                kinds = kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(","),
                "the rows snapshot differs from the records in sled: removing it and serving the scanned rows"
            );
        }
        tenants == 0
    }
}

/// Each tenant's records as a snapshot holds them (rows only, nothing applied yet), logged
/// with the time since `started` and whether they are read `before_sled` has opened.
fn snapshot_records(
    tenants: Vec<(String, Rows)>,
    started: std::time::Instant,
    before_sled: bool,
) -> HashMap<String, TenantRecords> {
    let tenants: HashMap<String, TenantRecords> = tenants
        .into_iter()
        .map(|(name, rows)| {
            let records = TenantRecords {
                rows,
                ..TenantRecords::default()
            };
            (name, records)
        })
        .collect();
    tracing::info!(
        records = tenants.values().map(|t| t.rows.len()).sum::<usize>(),
        tenants = tenants.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        before_sled,
        "record store loaded from its snapshot"
    );
    tenants
}

/// The tenants, ready to serve, from their records (sled writes carry no sequence).
fn serving(tenants: HashMap<String, TenantRecords>) -> HashMap<String, Arc<Tenant>> {
    tenants
        .into_iter()
        .map(|(name, records)| (name, Arc::new(Tenant::new(records, 0))))
        .collect()
}

/// `path` made absolute, so the commit point does not depend on the working directory.
fn canonical(path: &Path) -> Result<PathBuf, StoreError> {
    std::fs::canonicalize(path).map_err(|e| {
        StoreError::Sled(sled::Error::Io(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", path.display()),
        )))
    })
}

/// sled opened on `dir` with kpid's settings.
pub(super) fn open_sled_dir(dir: &Path) -> Result<sled::Db, StoreError> {
    Ok(open_sled(
        sled::Config::new()
            .path(dir)
            .cache_capacity(SLED_CACHE_BYTES),
    )?)
}

/// Opens sled, waiting a little while the database file is still locked: sled 0.34 releases
/// its file lock when its background flusher thread ends, shortly *after* the last `Db`
/// handle is dropped, so reopening a store in the same process can race that thread.
fn open_sled(config: sled::Config) -> sled::Result<sled::Db> {
    const WAIT: std::time::Duration = std::time::Duration::from_secs(5);
    const STEP: std::time::Duration = std::time::Duration::from_millis(20);
    let started = std::time::Instant::now();
    loop {
        match config.open() {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock") && started.elapsed() < WAIT =>
            {
                std::thread::sleep(STEP);
            }
            other => return other,
        }
    }
}
