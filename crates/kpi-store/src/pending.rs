//! Writes that sled holds but no commit has covered yet.
//!
//! A write changes sled under the store's writer lock, then commits (flush + fsync) outside
//! it, so that concurrent writers share one fsync. Its row changes wait here meanwhile: they
//! become visible to queries only once a commit covers them, in the order the writes were
//! made, so a query never sees what a crash could still take back. A commit covers every
//! write noted before it began, so the writes applied are always a prefix of the queue.
//! When a commit fails, the whole queue is *discarded*: no row change is ever applied, and
//! the values each write replaced in sled are kept (as [`Originals`]) for the store to
//! restore when it recovers (`store/recovery.rs`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::record::{Record, RecordKind};
use crate::rows::Rows;

/// The value a key held in sled before a write (`None`: absent).
pub(crate) type Before = Option<sled::IVec>;

/// Per sled key, the value it held before the first write that was discarded: what the key
/// must hold again for sled to match what the queries saw.
pub(crate) type Originals = BTreeMap<Vec<u8>, Before>;

/// What a write changes in its tenant's rows once it is durable.
#[derive(Debug)]
pub(crate) enum RowChanges {
    /// Upserts: each record, the slot reserved for its row, and the slot of the row it
    /// replaces.
    Put(Vec<(Record, u32, Option<u32>)>),
    /// Deletes: the kind and slot of each row removed.
    Delete(Vec<(RecordKind, u32)>),
}

impl RowChanges {
    /// Applies the changes; the kinds they touched.
    pub(crate) fn apply(&self, rows: &mut Rows) -> Vec<RecordKind> {
        let mut kinds = self.apply_rows(rows);
        // Written exchange rates convert the amounts again.
        kinds.extend(rows.convert_again());
        kinds
    }

    fn apply_rows(&self, rows: &mut Rows) -> Vec<RecordKind> {
        match self {
            RowChanges::Put(puts) => puts
                .iter()
                .map(|(record, slot, replaced)| {
                    rows.put(*slot, record);
                    if let Some(old) = replaced {
                        rows.remove(record.kind(), *old);
                    }
                    record.kind()
                })
                .collect(),
            RowChanges::Delete(freed) => freed
                .iter()
                .map(|(kind, slot)| {
                    rows.remove(*kind, *slot);
                    *kind
                })
                .collect(),
        }
    }

    /// Gives back the slots reserved for changes that will never be applied.
    pub(crate) fn discard(&self, rows: &mut Rows) {
        if let RowChanges::Put(puts) = self {
            for (record, slot, _) in puts {
                rows.release(record.kind(), *slot);
            }
        }
    }
}

/// One write waiting for its commit.
#[derive(Debug)]
pub(crate) struct PendingWrite<T> {
    /// Its place in the order of writes.
    pub(crate) ticket: u64,
    /// The tenant whose rows it changes.
    pub(crate) tenant: Arc<T>,
    /// What it changes in the rows.
    pub(crate) changes: RowChanges,
    /// Each sled key it wrote, with the value the key held before, in write order.
    pub(crate) before: Vec<(Vec<u8>, Before)>,
}

/// The queue of writes waiting for their commit, in ticket order.
#[derive(Debug)]
pub(crate) struct PendingWrites<T> {
    state: Mutex<Queue<T>>,
}

#[derive(Debug)]
struct Queue<T> {
    writes: VecDeque<PendingWrite<T>>,
    /// The last ticket handed out.
    last_ticket: u64,
    /// Every ticket up to this one is applied or discarded.
    applied_through: u64,
    /// The tickets discarded, one range per failed commit (rare: a full or failing disk).
    discarded: Vec<std::ops::RangeInclusive<u64>>,
}

impl<T> Default for PendingWrites<T> {
    fn default() -> Self {
        Self {
            state: Mutex::new(Queue {
                writes: VecDeque::new(),
                last_ticket: 0,
                applied_through: 0,
                discarded: Vec::new(),
            }),
        }
    }
}

impl<T> PendingWrites<T> {
    fn lock(&self) -> MutexGuard<'_, Queue<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a write (call under the store's writer lock, after changing sled); its ticket.
    pub(crate) fn push(
        &self,
        tenant: Arc<T>,
        changes: RowChanges,
        before: Vec<(Vec<u8>, Before)>,
    ) -> u64 {
        let mut queue = self.lock();
        queue.last_ticket += 1;
        let ticket = queue.last_ticket;
        queue.writes.push_back(PendingWrite {
            ticket,
            tenant,
            changes,
            before,
        });
        ticket
    }

    /// The last ticket handed out: a commit that began after it covers every write queued.
    pub(crate) fn last_ticket(&self) -> u64 {
        self.lock().last_ticket
    }

    /// After a commit that covers `ticket`: applies, in order, every write up to it that is
    /// still queued (`apply` gets each one). Whether `ticket` is applied now (by this call
    /// or an earlier one); `false` means it was discarded by a failed commit.
    pub(crate) fn apply_through(
        &self,
        ticket: u64,
        mut apply: impl FnMut(&PendingWrite<T>),
    ) -> bool {
        let mut queue = self.lock();
        while queue.writes.front().is_some_and(|w| w.ticket <= ticket) {
            let write = queue.writes.pop_front().expect("front exists");
            apply(&write);
            queue.applied_through = write.ticket;
        }
        ticket <= queue.applied_through && !queue.discarded.iter().any(|r| r.contains(&ticket))
    }

    /// After a failed commit: removes every queued write (`discard` gets each one, in
    /// order) and adds what they replaced to `originals` (a key already there keeps its
    /// older value).
    pub(crate) fn discard_all(
        &self,
        originals: &mut Originals,
        mut discard: impl FnMut(&PendingWrite<T>),
    ) {
        let mut queue = self.lock();
        let (first, last) = (queue.applied_through + 1, queue.last_ticket);
        for write in queue.writes.drain(..) {
            discard(&write);
            add_originals(originals, write.before);
        }
        if first <= last {
            queue.discarded.push(first..=last);
            queue.applied_through = last;
        }
    }
}

/// Adds the values a discarded write replaced to `originals`; a key already there keeps
/// the value it had before the earlier write.
pub(crate) fn add_originals(
    originals: &mut Originals,
    before: impl IntoIterator<Item = (Vec<u8>, Before)>,
) {
    for (key, value) in before {
        originals.entry(key).or_insert(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn before(pairs: &[(&str, Option<&str>)]) -> Vec<(Vec<u8>, Before)> {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    k.as_bytes().to_vec(),
                    v.map(|v| sled::IVec::from(v.as_bytes())),
                )
            })
            .collect()
    }

    #[test]
    fn applies_in_order_and_only_through_the_ticket() {
        let queue = PendingWrites::<()>::default();
        let t1 = queue.push(Arc::new(()), RowChanges::Delete(vec![]), vec![]);
        let t2 = queue.push(Arc::new(()), RowChanges::Delete(vec![]), vec![]);
        let t3 = queue.push(Arc::new(()), RowChanges::Delete(vec![]), vec![]);
        assert_eq!((t1, t2, t3), (1, 2, 3));
        let mut seen = vec![];
        // The commit covering the second write covers the first too.
        assert!(queue.apply_through(t2, |w| seen.push(w.ticket)));
        assert_eq!(seen, [1, 2]);
        // The first writer's own commit returns later: already applied.
        assert!(queue.apply_through(t1, |w| seen.push(w.ticket)));
        assert_eq!(seen, [1, 2]);
        assert_eq!(queue.last_ticket(), 3);
        assert!(queue.apply_through(t3, |w| seen.push(w.ticket)));
        assert_eq!(seen, [1, 2, 3]);
    }

    #[test]
    fn a_discarded_write_is_never_applied_and_its_originals_are_the_oldest() {
        let queue = PendingWrites::<()>::default();
        let applied = queue.push(
            Arc::new(()),
            RowChanges::Delete(vec![]),
            before(&[("a", None)]),
        );
        assert!(queue.apply_through(applied, |_| {}));
        let first = queue.push(
            Arc::new(()),
            RowChanges::Delete(vec![]),
            before(&[("a", Some("v1")), ("b", None)]),
        );
        let second = queue.push(
            Arc::new(()),
            RowChanges::Delete(vec![]),
            before(&[("a", Some("v2")), ("c", Some("c0")), ("b", Some("b1"))]),
        );
        let mut originals = Originals::new();
        // An earlier failure already recorded `c`: its value then wins.
        originals.insert(b"c".to_vec(), None);
        let mut discarded = vec![];
        queue.discard_all(&mut originals, |w| discarded.push(w.ticket));
        assert_eq!(discarded, [first, second]);
        assert!(!queue.apply_through(second, |_| panic!("nothing left to apply")));
        assert!(!queue.apply_through(first, |_| panic!("nothing left to apply")));
        assert!(queue.apply_through(applied, |_| {}));
        // Writes after the failure are applied as usual; the discarded stay discarded.
        let later = queue.push(Arc::new(()), RowChanges::Delete(vec![]), vec![]);
        assert!(queue.apply_through(later, |_| {}));
        assert!(!queue.apply_through(first, |_| {}));
        let got: Vec<(&[u8], Option<&[u8]>)> = originals
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (&b"a"[..], Some(&b"v1"[..])),
                (&b"b"[..], None),
                (&b"c"[..], None)
            ]
        );
    }
}
