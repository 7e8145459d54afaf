//! What a failed write to sled leaves behind, and what the sled backend needs to take
//! writes again.
//!
//! A write that fails (sled cannot write its log, or the fsync fails) poisons the sled
//! database: sled refuses every later operation, listings included. The store then stops
//! writing and its queries keep answering from memory, which never saw the failed writes
//! (`pending.rs`). What happens next depends on why it failed:
//!
//! - **A full disk** (or a spent quota) is *recoverable*: nothing was lost that had been
//!   acknowledged, so the store reopens sled from its files, writes back what the failed
//!   writes replaced ([`Originals`]), commits, and takes writes again: retried in the
//!   background until space is freed. sled after recovery then holds exactly what the
//!   queries saw, which is also what a restart shows.
//! - **Any other I/O error** is not: after a failed fsync the kernel may have dropped data
//!   it still reports as written, so no later success proves anything. Writes are refused
//!   until kpid restarts (and opens the store from what is really on disk).

use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use super::backend::AnyBackend;
use super::open::open_sled_dir;
use super::sled_backend::{Sled, SledBackend, RECOVERY_RETRY};
use super::{lock, Store};
use crate::durable::Commit;
use crate::error::StoreError;
use crate::pending::{add_originals, Before, Originals};
use crate::settings;

/// Whether the store takes writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteHealth {
    /// Writes are taken.
    Writable,
    /// The disk is full: writes answer [`StoreError::StorageFull`] until space is freed,
    /// then resume by themselves.
    DiskFull,
    /// A write failed for another reason: writes are refused until kpid restarts.
    Failed,
}

/// The store's write state, kept under its writer lock.
#[derive(Debug, Default)]
pub(crate) enum WriteState {
    /// Taking writes.
    #[default]
    Writable,
    /// A write failed; nothing is written until [`WriteState::recoverable`] ones recover.
    Failed {
        /// Why, as the error every refused write answers.
        cause: Cause,
        /// What the failed writes replaced in sled, to be written back.
        originals: Originals,
    },
}

/// Why writes stopped.
#[derive(Debug, Clone)]
pub(crate) enum Cause {
    /// No space left (or the quota is spent): recoverable.
    Full,
    /// Another I/O error, in words: refused until restart.
    Io(String),
}

impl WriteState {
    /// The health this state reports.
    pub(crate) fn health(&self) -> WriteHealth {
        match self {
            WriteState::Writable => WriteHealth::Writable,
            WriteState::Failed {
                cause: Cause::Full, ..
            } => WriteHealth::DiskFull,
            WriteState::Failed { .. } => WriteHealth::Failed,
        }
    }

    /// The error a write answers while writes are stopped.
    pub(crate) fn refusal(cause: &Cause) -> StoreError {
        match cause {
            Cause::Full => StoreError::StorageFull,
            Cause::Io(reason) => StoreError::Unavailable(format!(
                "a write to disk failed ({reason}), so what is on disk is unknown: the store \
                 refuses writes until kpid is restarted"
            )),
        }
    }

    /// Notes a failed write whose discarded writes replaced `originals`; the error its
    /// caller answers.
    pub(crate) fn fail(&mut self, error: &StoreError, originals: Originals) -> StoreError {
        let cause = cause_of(error);
        match self {
            WriteState::Writable => {
                *self = WriteState::Failed {
                    cause: cause.clone(),
                    originals,
                }
            }
            WriteState::Failed {
                cause: held,
                originals: older,
            } => {
                add_originals(older, originals);
                // A non-recoverable cause is never downgraded.
                if let Cause::Io(_) = cause {
                    *held = cause.clone();
                }
            }
        }
        match self {
            WriteState::Failed { cause, .. } => Self::refusal(cause),
            WriteState::Writable => unreachable!("just failed"),
        }
    }
}

/// Why `error` happened, as a [`Cause`].
pub(crate) fn cause_of(error: &StoreError) -> Cause {
    match error {
        StoreError::StorageFull => Cause::Full,
        StoreError::Sled(sled::Error::Io(e)) if is_full(e) => Cause::Full,
        StoreError::Sled(sled::Error::Io(e)) => Cause::Io(io_text(e)),
        other => Cause::Io(other.to_string()),
    }
}

/// Whether an I/O error means no space is left (or the quota is spent). sled wraps the
/// OS error in one of its own, keeping the kind.
pub(crate) fn is_full(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) || matches!(error.raw_os_error(), Some(28 | 122))
}

/// An I/O error in plain words: sled 0.34 wraps the OS error's Rust debug output
/// (`Os { code: 28, kind: StorageFull, … }`) in an error of the same kind, which then
/// reads as just its kind.
pub(crate) fn io_text(error: &io::Error) -> String {
    let text = error.to_string();
    if text.contains("Os {") || text.contains("Custom {") {
        io::Error::from(error.kind()).to_string()
    } else {
        text
    }
}

impl SledBackend {
    /// A write that failed midway (under the writer lock, after changing sled as `before`
    /// says): undoes it in sled, or, when sled failed, stops writes. The error to answer.
    pub(super) fn abandon(
        &self,
        store: &Store,
        sled: &Sled,
        error: StoreError,
        before: Vec<(Vec<u8>, Before)>,
    ) -> StoreError {
        if matches!(error, StoreError::Sled(sled::Error::Io(_))) {
            let mut originals = Originals::new();
            add_originals(&mut originals, before);
            return self.stop_writes(store, error, originals);
        }
        // A stored value that does not decode: sled works, so the call is undone at once.
        for (key, value) in before.into_iter().rev() {
            let undone = match value {
                Some(value) => sled.tree.insert(&key, value).map(drop),
                None => sled.tree.remove(&key).map(drop),
            };
            if let Err(e) = undone {
                return self.stop_writes(store, e.into(), Originals::new());
            }
        }
        error
    }

    /// After a failed write (under the writer lock): discards every write not yet
    /// committed, stops writes, closes sled (which refuses everything once a write failed)
    /// and, for a full disk, starts retrying the recovery. The error to answer.
    pub(super) fn stop_writes(
        &self,
        store: &Store,
        error: StoreError,
        mut originals: Originals,
    ) -> StoreError {
        let mut discarded = Originals::new();
        self.pending.discard_all(&mut discarded, |write| {
            let mut records = write
                .tenant
                .records
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            write.changes.discard(&mut records.rows);
        });
        // The queued writes came before the one that failed midway.
        add_originals(&mut discarded, std::mem::take(&mut originals));
        let answer = lock(&self.write_state).fail(&error, discarded);
        if let Some(sled) = self
            .sled
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            self.disk_bytes
                .store(sled.db.size_on_disk().unwrap_or(0), Ordering::Relaxed);
        }
        match lock(&self.write_state).health() {
            WriteHealth::DiskFull => {
                tracing::error!(error = %error, "the disk is full: writes stop until space is freed; queries keep answering");
                self.spawn_recovery(store);
            }
            _ => {
                tracing::error!(error = %error, "a write failed: the store refuses writes until kpid restarts; queries keep answering")
            }
        }
        answer
    }

    /// The error a write answers while writes are stopped.
    pub(super) fn refusal(&self) -> StoreError {
        match &*lock(&self.write_state) {
            WriteState::Failed { cause, .. } => WriteState::refusal(cause),
            WriteState::Writable => StoreError::Unavailable(
                "the write was undone by a failed write before it; send it again".into(),
            ),
        }
    }

    /// The error a listing answers while sled is closed.
    pub(super) fn unreadable(&self) -> StoreError {
        match &*lock(&self.write_state) {
            WriteState::Failed {
                cause: Cause::Full, ..
            } => StoreError::Unavailable(
                "the record store cannot list records while its disk is full; queries keep \
                 answering, and listings resume by themselves once space is freed"
                    .into(),
            ),
            WriteState::Failed { cause, .. } => WriteState::refusal(cause),
            WriteState::Writable => {
                StoreError::Unavailable("the record store is reopening; retry shortly".into())
            }
        }
    }

    /// sled's handles, when writes are taken (call under the writer lock).
    pub(super) fn writable_sled(&self) -> Result<Sled, StoreError> {
        self.opened.wait();
        if let WriteState::Failed { cause, .. } = &*lock(&self.write_state) {
            return Err(WriteState::refusal(cause));
        }
        self.sled
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| self.unreadable())
    }

    /// Retries [`SledBackend::recover`] in a thread until it succeeds or the store is dropped.
    pub(super) fn spawn_recovery(&self, store: &Store) {
        if self.recovering.swap(true, Ordering::SeqCst) {
            return;
        }
        let inner = Arc::downgrade(&store.inner);
        let spawned = std::thread::Builder::new()
            .name("kpid-store-recovery".into())
            .spawn(move || loop {
                std::thread::sleep(RECOVERY_RETRY);
                let Some(inner) = inner.upgrade() else { return };
                let store = Store { inner };
                let AnyBackend::Sled(sled) = &store.inner.backend else {
                    unreachable!("only sled stops writes")
                };
                match sled.recover(&store) {
                    Ok(true) => {
                        sled.recovering.store(false, Ordering::SeqCst);
                        return;
                    }
                    Ok(false) => {}
                    Err(e) => tracing::debug!(error = %e, "the store cannot take writes yet"),
                }
            });
        if let Err(e) = spawned {
            self.recovering.store(false, Ordering::SeqCst);
            tracing::error!(error = %e, "cannot start the store's recovery thread");
        }
    }

    /// After a full disk: reopens sled, writes back what the failed writes replaced, and
    /// commits; then writes are taken again. Whether the store takes writes now (`false`:
    /// it never will before a restart).
    pub(super) fn recover(&self, store: &Store) -> Result<bool, StoreError> {
        let _writer = lock(&self.writer);
        let originals = match &*lock(&self.write_state) {
            WriteState::Writable => return Ok(true),
            WriteState::Failed {
                cause: Cause::Full,
                originals,
            } => originals.clone(),
            WriteState::Failed { .. } => return Ok(false),
        };
        let Some(dir) = &self.dir else {
            return Ok(false);
        };
        let db = open_sled_dir(dir)?;
        let sled = Sled::new(db, Some(Commit::open(dir)?))?;
        for (key, value) in &originals {
            match value {
                Some(value) => sled.tree.insert(key, value.clone()).map(drop)?,
                None => sled.tree.remove(key).map(drop)?,
            }
        }
        // A settings change that failed may be in sled: hold only what was acknowledged.
        settings::restore(
            &sled.settings,
            &store
                .inner
                .settings
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )?;
        sled.wrote();
        sled.commit()?;
        *self.sled.write().unwrap_or_else(PoisonError::into_inner) = Some(sled);
        *lock(&self.write_state) = WriteState::Writable;
        tracing::info!(
            restored = originals.len(),
            "disk space is back: the store takes writes again"
        );
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sled_io(kind: io::ErrorKind) -> StoreError {
        // As sled 0.34 reports it: the OS error's debug text inside an error of the kind.
        let os = io::Error::from_raw_os_error(28);
        StoreError::Sled(sled::Error::Io(io::Error::new(kind, format!("{os:?}"))))
    }

    #[test]
    fn a_full_disk_is_recoverable_and_reads_plainly() {
        let mut state = WriteState::default();
        assert_eq!(state.health(), WriteHealth::Writable);
        let answered = state.fail(&sled_io(io::ErrorKind::StorageFull), Originals::new());
        assert!(matches!(answered, StoreError::StorageFull));
        assert_eq!(state.health(), WriteHealth::DiskFull);
        assert!(!answered.to_string().contains("Os {"), "{answered}");
        assert!(is_full(&io::Error::from_raw_os_error(122)));
    }

    #[test]
    fn another_io_error_is_not_and_is_never_downgraded() {
        let mut state = WriteState::default();
        let mut originals = Originals::new();
        originals.insert(b"k".to_vec(), None);
        let eio = StoreError::Sled(sled::Error::Io(io::Error::from_raw_os_error(5)));
        let answered = state.fail(&eio, originals);
        assert!(matches!(answered, StoreError::Unavailable(_)), "{answered}");
        assert!(
            answered.to_string().contains("Input/output error"),
            "{answered}"
        );
        let mut later = Originals::new();
        later.insert(b"k".to_vec(), Some(sled::IVec::from(&b"v"[..])));
        later.insert(b"j".to_vec(), None);
        state.fail(&sled_io(io::ErrorKind::StorageFull), later);
        assert_eq!(state.health(), WriteHealth::Failed);
        let WriteState::Failed { originals, .. } = &state else {
            panic!("failed")
        };
        assert_eq!(
            originals.get(&b"k"[..]),
            Some(&None),
            "the older value wins"
        );
        assert_eq!(originals.len(), 2);
    }

    #[test]
    fn io_text_drops_debug_output() {
        let wrapped = io::Error::new(io::ErrorKind::PermissionDenied, "Os { code: 13 }");
        assert_eq!(io_text(&wrapped), "permission denied");
    }
}
