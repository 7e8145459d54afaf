//! What a failed write leaves behind, and what the store needs to take writes again.
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

use crate::error::StoreError;
use crate::pending::{add_originals, Originals};

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
