//! The index image at the store's level (the format is `index/image.rs`): the large
//! tenants' indexes written after the rows snapshot when kpid stops, and read back into
//! their first indexes when it opens over that snapshot, before they warm.

use std::path::Path;
use std::time::Instant;

use super::*;
use crate::index::image::{self, ImageReader};

/// Tenants of at least this many rows have their index written to the image: those whose
/// index is built at open (`store/open.rs`); under test every tenant, so small stores
/// read theirs back.
#[cfg(not(test))]
const IMAGED_ROWS: usize = super::open::WARM_AT_OPEN_ROWS;
#[cfg(test)]
const IMAGED_ROWS: usize = 1;

impl Store {
    /// Whether the index image is written when the store closes; off removes the one in
    /// `dir` (its reads of it are over by then: none is read when off).
    pub(super) fn set_index_image(&self, on: bool, dir: &Path) {
        self.inner.index_image.store(on, Ordering::Relaxed);
        if !on {
            let _ = std::fs::remove_file(dir.join(image::FILE));
        }
    }

    /// Writes the image of the indexes of the tenants of at least [`IMAGED_ROWS`] rows over the rows of snapshot `token` in `dir` (each index brought up to date and
    /// every part over every current row: a part holding a delta is built anew), unless
    /// the image there is of `token` already. Not under a memory budget (nothing is read
    /// back under one), nor when turned off ([`OpenOptions::no_index_image`]). Failures
    /// are logged: only the next start is slower.
    pub(super) fn write_index_image(&self, dir: &Path, token: u64) {
        if self.inner.budget.limited() || !self.inner.index_image.load(Ordering::Relaxed) {
            return;
        }
        let started = Instant::now();
        let mut large = self.tenants();
        large.retain(|(_, t)| t.rows_len() >= IMAGED_ROWS);
        if large.is_empty() {
            // An image of other rows is never read: free its space.
            let _ = std::fs::remove_file(dir.join(image::FILE));
            return;
        }
        let indexes: Vec<(&str, Arc<Index>)> = large
            .iter()
            .map(|(n, t)| (n.as_str(), self.index_of(t)))
            .collect();
        let built_beyond = indexes.iter().any(|(_, index)| index.built_beyond_image());
        if !built_beyond && image::is_current(dir, token) {
            tracing::info!("index image current: not written again");
            return;
        }
        // Every part over every current row first (long for parts written since they
        // were built), then the writing.
        indexes.iter().for_each(|(_, index)| index.settle());
        let settled = started.elapsed();
        let refs: Vec<(&str, &Index)> = indexes.iter().map(|(n, i)| (*n, &**i)).collect();
        match image::write(dir, token, &refs) {
            Ok(()) => tracing::info!(
                tenants = refs.len(),
                settle_ms = settled.as_millis() as u64,
                image_write_ms = (started.elapsed() - settled).as_millis() as u64,
                "index image written"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "cannot write the index image: the next start builds the indexes")
            }
        }
    }

    /// Reads the index image in `dir`, when it is over the rows of snapshot `token` (the
    /// one loaded, each tenant's at generation `loaded`), into each tenant's first index
    /// as it is published, when that index is over those rows. A tenant the image lacks,
    /// one written meanwhile (its first index is over other rows) and the tenants after
    /// it, or an image that does not verify, are built as before; an image of other rows
    /// is removed.
    pub(super) fn read_index_image(&self, dir: &Path, token: u64, loaded: &HashMap<String, u64>) {
        let started = Instant::now();
        let mut reader = match ImageReader::open(dir, token) {
            Ok(Some(reader)) => reader,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(reason = %e, "the index image is not read: removing it; the indexes are built");
                let _ = std::fs::remove_file(dir.join(image::FILE));
                return;
            }
        };
        loop {
            let name = match reader.next_tenant() {
                Ok(Some(name)) => name,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(reason = %e, "the index image does not verify: the rest is built");
                    break;
                }
            };
            let Some(tenant) = self.tenant(&name) else {
                tracing::warn!(tenant = %name, "the index image names a tenant the rows lack: the rest is built");
                break;
            };
            let tenant_started = Instant::now();
            let _building = lock(&tenant.building);
            let as_loaded = loaded.get(&name).copied();
            let mut restored = None;
            let (index, _) = tenant.build_then(&self.inner.budget, |index, generation| {
                if Some(generation) == as_loaded {
                    restored = Some(reader.restore(index));
                }
            });
            // An index a read published first, over the rows as loaded, takes what the
            // image holds too.
            let restored = restored.unwrap_or_else(|| {
                if tenant.published_generation() != as_loaded {
                    return Err(std::io::Error::other(
                        "written since it opened: its index is over other rows",
                    ));
                }
                reader.restore(&index)
            });
            if let Err(e) = restored {
                tracing::warn!(tenant = %name, reason = %e, "the index image does not verify: the rest is built");
                break;
            }
            tracing::info!(
                tenant = %name,
                elapsed_ms = tenant_started.elapsed().as_millis() as u64,
                "a tenant's index read from the index image"
            );
        }
        tracing::info!(
            image_ms = started.elapsed().as_millis() as u64,
            "index image read"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::generate::Rng;
    use crate::index::tests::{compare_with_reference, grid, grid_scopes, RandomTenant};

    /// The parts of `tenant`'s published index, once every one is built (waiting up to 20
    /// s for the image's reader, a background thread).
    fn built_parts(store: &Store, tenant: &str) -> Vec<(bool, usize)> {
        let t = store.tenant(tenant).expect("a tenant");
        for _ in 0..2000 {
            if let Some(published) = lock(&t.index).as_ref() {
                let built = published.index.built_parts();
                if built.iter().all(|(all, _)| *all) {
                    return built;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the index was not read from the image");
    }

    /// An image is read only into an index over the rows as loaded: after a write (here
    /// between the open and the read), the tenant's index is built from its rows and
    /// answers as the reference does, nothing read from the image.
    #[test]
    fn an_image_is_not_read_into_rows_written_since_the_open() {
        let dir = tempfile::tempdir().unwrap();
        let scopes = grid_scopes(&grid());
        let records = RandomTenant {
            rng: Rng(43),
            grid: grid(),
        }
        .records();
        let mut model = crate::index::tests::canonical(records.clone());
        let store = Store::open(dir.path()).unwrap();
        store.put("t", records).unwrap();
        compare_with_reference(&store.source("t"), &model, &scopes);
        store.save_snapshot().unwrap();
        let token = image::token_of(dir.path()).expect("an image written");
        let kept = dir.path().join("kept.image");
        std::fs::copy(dir.path().join(image::FILE), &kept).unwrap();
        drop(store);

        // Opened without reading it; the image put back, then a write, then the read.
        let off = crate::OpenOptions {
            no_index_image: true,
            ..crate::OpenOptions::default()
        };
        let store = Store::open_with(dir.path(), off).unwrap();
        let loaded = HashMap::from([("t".to_owned(), store.tenant("t").unwrap().generation())]);
        std::fs::copy(&kept, dir.path().join(image::FILE)).unwrap();
        // Every deal's amount changed: as many rows as the image's, other sums.
        let deals: Vec<crate::record::Record> = model
            .of_kind(crate::record::RecordKind::Deal)
            .cloned()
            .map(|r| match r {
                crate::record::Record::Deal(mut d) => {
                    d.amount += kpi_core::Decimal::ONE;
                    crate::record::Record::Deal(d)
                }
                other => other,
            })
            .collect();
        for d in &deals {
            model.upsert(d.clone());
        }
        store.put("t", deals).unwrap();
        store.read_index_image(dir.path(), token, &loaded);
        let t = store.tenant("t").unwrap();
        let published = lock(&t.index).clone().expect("an index published");
        assert!(
            published.index.built_parts().iter().all(|(all, _)| !*all),
            "nothing read from the image"
        );
        compare_with_reference(&store.source("t"), &model, &scopes);
    }

    /// A store that saves its snapshot writes its tenants' index image beside it (of the
    /// snapshot's token); opened again, the tenant's first index is read from it before
    /// any read (every part and the partitions the last run built) and answers as the
    /// reference does. After a write the next stop writes an image of the new snapshot.
    #[test]
    fn a_reopened_store_reads_its_indexes_from_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let scopes = grid_scopes(&grid());
        let mut tenant = RandomTenant {
            rng: Rng(41),
            grid: grid(),
        };
        let records = tenant.records();
        let model = crate::index::tests::canonical(records.clone());
        let store = Store::open(dir.path()).unwrap();
        store.put("t", records).unwrap();
        compare_with_reference(&store.source("t"), &model, &scopes);
        let built_before = {
            let t = store.tenant("t").unwrap();
            let published = lock(&t.index).clone().unwrap();
            published.index.built_parts()
        };
        store.save_snapshot().unwrap();
        let token = image::token_of(dir.path()).expect("an image written");
        drop(store);

        let store = Store::open(dir.path()).unwrap();
        assert!(store.snapshot_is_current());
        let expected: Vec<(bool, usize)> = built_before.iter().map(|(_, p)| (true, *p)).collect();
        assert!(expected.iter().any(|(_, partitions)| *partitions > 0));
        assert_eq!(built_parts(&store, "t"), expected);
        compare_with_reference(&store.source("t"), &model, &scopes);
        // Nothing written: the image stays as it is.
        store.save_snapshot().unwrap();
        assert_eq!(image::token_of(dir.path()), Some(token));

        let deal_id = model
            .of_kind(crate::record::RecordKind::Deal)
            .next()
            .unwrap()
            .id()
            .to_owned();
        let key = crate::RecordKey {
            kind: crate::record::RecordKind::Deal,
            id: deal_id.clone(),
        };
        assert_eq!(store.delete("t", &[key]).unwrap(), 1);
        store.save_snapshot().unwrap();
        let next = image::token_of(dir.path()).expect("an image written");
        assert_ne!(next, token, "an image of the new snapshot");
        drop(store);

        // Turned off: the image there is removed, and none is written.
        let off = crate::OpenOptions {
            no_index_image: true,
            ..crate::OpenOptions::default()
        };
        let store = Store::open_with(dir.path(), off).unwrap();
        assert!(!dir.path().join(image::FILE).exists());
        let mut model = model;
        assert!(model.remove(crate::record::RecordKind::Deal, &deal_id));
        compare_with_reference(&store.source("t"), &model, &scopes);
        store.save_snapshot().unwrap();
        assert!(!dir.path().join(image::FILE).exists());
    }
}
