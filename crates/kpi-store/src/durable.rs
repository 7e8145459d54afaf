//! The fsync'd commit point behind every acknowledged write.
//!
//! sled's `flush` writes its log with `sync_file_range(2)` (sled issue 1452): the data
//! reaches the kernel and the device queue, which survives a process crash, but neither the
//! file's metadata (its size, when the log grew) nor the drive's volatile write cache is
//! flushed, so a power loss may lose acknowledged writes. sled also writes large values to
//! `blobs/` and its `conf` without syncing them. A [`Commit`] closes those gaps: after
//! sled's flush it `fdatasync`s the log file `db` (the data and the size it needs to be
//! read back) and every blob file not yet synced, and `fsync`s `blobs/` and the data
//! directory whenever their entries changed (new blobs, `snap.*` snapshots).
//!
//! Concurrent writers share commits (group commit): each write bumps an epoch before it
//! commits; a commit notes the epoch before flushing and, once synced, covers every write up
//! to it, so a writer that finds its epoch covered returns without an fsync of its own.
//!
//! An fsync that fails leaves the kernel's dirty pages in an unknown state (a later fsync
//! may report success without having written them), so the first failure poisons the
//! commit: every later write is refused until the store is reopened.

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use crate::error::StoreError;

/// The fsync'd commit point of a store on disk.
#[derive(Debug)]
pub(crate) struct Commit {
    dir: PathBuf,
    /// Bumped by every write once it is applied to sled.
    written: AtomicU64,
    /// The epoch the last successful commit covers, and the blob files already synced.
    synced: Mutex<Synced>,
    /// Set by a failed fsync; every later commit fails.
    poisoned: AtomicBool,
}

#[derive(Debug, Default)]
struct Synced {
    epoch: u64,
    blobs: HashSet<PathBuf>,
    /// The data directory's entries when it was last fsync'd.
    entries: Vec<std::ffi::OsString>,
}

fn io_error(what: &str, path: &Path, err: io::Error) -> StoreError {
    StoreError::Sled(sled::Error::Io(io::Error::new(
        err.kind(),
        format!("{what} {}: {err}", path.display()),
    )))
}

/// `fsync(2)` on a file or directory (opened read-only, which Linux allows for both).
fn fsync(path: &Path) -> Result<(), StoreError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_error("fsync", path, e))
}

/// `fdatasync(2)` on a file: its data and the metadata needed to read it (its size), not
/// its timestamps.
fn fdatasync(path: &Path) -> Result<(), StoreError> {
    File::open(path)
        .and_then(|f| f.sync_data())
        .map_err(|e| io_error("fsync", path, e))
}

/// The names in a directory, sorted.
fn entries(dir: &Path) -> Result<Vec<std::ffi::OsString>, StoreError> {
    let mut names = std::fs::read_dir(dir)
        .and_then(|entries| {
            entries
                .map(|e| e.map(|e| e.file_name()))
                .collect::<io::Result<Vec<_>>>()
        })
        .map_err(|e| io_error("listing", dir, e))?;
    names.sort();
    Ok(names)
}

impl Commit {
    /// The commit point of the sled database in `dir` (already opened, so its files
    /// exist); syncs what sled wrote while opening (`conf`, `db`, the directory).
    pub(crate) fn open(dir: &Path) -> Result<Commit, StoreError> {
        let commit = Commit {
            dir: dir.to_owned(),
            written: AtomicU64::new(0),
            synced: Mutex::new(Synced::default()),
            poisoned: AtomicBool::new(false),
        };
        let conf = dir.join("conf");
        if conf.exists() {
            fsync(&conf)?;
        }
        {
            let mut synced = commit.lock();
            commit.sync_files(&mut synced)?;
        }
        Ok(commit)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Synced> {
        self.synced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Notes that a write was applied to sled (call before [`Commit::commit`]).
    pub(crate) fn wrote(&self) {
        self.written.fetch_add(1, Ordering::SeqCst);
    }

    /// Makes every write noted so far durable against a power loss: sled flush, then
    /// fsync. Returns at once when a concurrent commit already covered them.
    pub(crate) fn commit(&self, db: &sled::Db) -> Result<(), StoreError> {
        let target = self.written.load(Ordering::SeqCst);
        let mut synced = self.lock();
        self.check()?;
        if synced.epoch >= target {
            return Ok(());
        }
        // Every write up to `covered` was applied before this flush began, so the flush
        // writes it and the fsync below makes it durable.
        let covered = self.written.load(Ordering::SeqCst);
        let result = db
            .flush()
            .map_err(StoreError::from)
            .and_then(|_| self.sync_files(&mut synced));
        match result {
            Ok(()) => {
                synced.epoch = covered;
                Ok(())
            }
            Err(e) => {
                self.poisoned.store(true, Ordering::SeqCst);
                tracing::error!(error = %e, "commit failed: the store refuses writes until reopened");
                Err(e)
            }
        }
    }

    /// Refuses writes once a commit failed.
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        if self.poisoned.load(Ordering::SeqCst) {
            return Err(StoreError::Sled(sled::Error::Io(io::Error::other(
                "an earlier fsync failed, so what is on disk is unknown: the store refuses writes until it is reopened",
            ))));
        }
        Ok(())
    }

    /// fdatasyncs `db` and the blob files not yet synced; fsyncs `blobs/` when one was,
    /// and the data directory when its entries changed.
    fn sync_files(&self, synced: &mut Synced) -> Result<(), StoreError> {
        fdatasync(&self.dir.join("db"))?;
        let blobs = self.dir.join("blobs");
        let mut new_blob = false;
        match std::fs::read_dir(&blobs) {
            Ok(entries) => {
                for entry in entries {
                    let path = entry.map_err(|e| io_error("listing", &blobs, e))?.path();
                    if synced.blobs.contains(&path) {
                        continue;
                    }
                    match fdatasync(&path) {
                        Ok(()) => {}
                        // sled removes blobs it no longer needs, at any time.
                        Err(StoreError::Sled(sled::Error::Io(e)))
                            if e.kind() == io::ErrorKind::NotFound =>
                        {
                            continue
                        }
                        Err(e) => return Err(e),
                    }
                    synced.blobs.insert(path);
                    new_blob = true;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("listing", &blobs, e)),
        }
        // Forget blobs sled has removed, so the set stays as small as the directory.
        synced.blobs.retain(|p| p.exists());
        if new_blob {
            fsync(&blobs)?;
        }
        let now = entries(&self.dir)?;
        if now != synced.entries {
            fsync(&self.dir)?;
            synced.entries = now;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_sync_and_concurrent_writers_share_them() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let commit = Commit::open(dir.path()).unwrap();
        assert_eq!(commit.lock().epoch, 0);
        db.insert(b"k1", b"v1").unwrap();
        commit.wrote();
        commit.wrote();
        commit.commit(&db).unwrap();
        assert_eq!(commit.lock().epoch, 2, "one commit covers both writes");
        // Nothing new: no flush, no fsync, no change.
        commit.commit(&db).unwrap();
        assert_eq!(commit.lock().epoch, 2);
    }

    #[test]
    fn large_values_go_to_synced_blob_files() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let commit = Commit::open(dir.path()).unwrap();
        // Over sled's inline limit (a quarter of a 512 KiB segment): stored as a blob.
        db.insert(b"big", vec![7u8; 300 * 1024]).unwrap();
        commit.wrote();
        commit.commit(&db).unwrap();
        let blobs = commit.lock().blobs.len();
        assert!(blobs >= 1, "the blob file was synced ({blobs})");
    }

    #[test]
    fn a_failed_commit_poisons_every_later_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let commit = Commit::open(dir.path()).unwrap();
        commit.check().unwrap();
        // The data directory vanishing makes the fsync of `db` fail.
        let moved = dir.path().with_extension("moved");
        std::fs::rename(dir.path(), &moved).unwrap();
        db.insert(b"k", b"v").unwrap();
        commit.wrote();
        let err = commit.commit(&db).unwrap_err();
        assert!(err.to_string().contains("fsync"), "{err}");
        std::fs::rename(&moved, dir.path()).unwrap();
        let err = commit.commit(&db).unwrap_err();
        assert!(err.to_string().contains("refuses writes"), "{err}");
    }
}
