//! The slab a kind's rows live in: rows at slots, free slots reused, held in chunks that a
//! copy shares (copy on write), so the index reads rows in place and a write copies only
//! the chunk it changes.

use std::sync::Arc;

/// Slots per chunk of a [`Slab`]: what a write copies of a chunk an index still shares
/// (BENCHMARKS.md, "Slab chunks" has what the size costs a write).
#[cfg(not(test))]
pub(crate) const CHUNK: usize = 1024;
/// Small under test, so test data spans chunks.
#[cfg(test)]
pub(crate) const CHUNK: usize = 8;

/// Rows of one kind at their slots; free slots are reused. The slots are held in chunks of
/// [`CHUNK`], each behind an `Arc`: a copy of the slab (an index keeps one) shares the
/// chunks, and a write copies only the chunk it changes if a copy still shares it. A chunk
/// grows to its highest slot in use, so a small tenant holds a few slots per kind, not a
/// whole chunk (1024 rows of each kind it has).
#[derive(Clone)]
pub(crate) struct Slab<T> {
    chunks: Vec<Arc<Vec<Option<T>>>>,
    /// One past the highest slot ever used.
    end: usize,
    free: Vec<u32>,
    live: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self {
            chunks: Vec::new(),
            end: 0,
            free: Vec::new(),
            live: 0,
        }
    }
}

/// The chunk of a slot and the slot's place in it.
fn chunk_of(slot: u32) -> (usize, usize) {
    (slot as usize / CHUNK, slot as usize % CHUNK)
}

impl<T> Slab<T> {
    /// The live rows.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flat_map(|c| c.iter()).flatten()
    }

    /// How many rows are live.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// One past the highest slot in use: every slot is below it.
    pub(crate) fn slot_count(&self) -> usize {
        self.end
    }

    /// The row at `slot`, if it is live.
    pub(crate) fn get(&self, slot: u32) -> Option<&T> {
        let (c, o) = chunk_of(slot);
        self.chunks
            .get(c)
            .and_then(|c| c.get(o))
            .and_then(Option::as_ref)
    }

    /// The row at `slot`, which must be live.
    pub(crate) fn row(&self, slot: u32) -> &T {
        self.get(slot).expect("a live slot")
    }

    /// The live rows with their slots.
    pub(crate) fn slots(&self) -> impl Iterator<Item = (u32, &T)> {
        self.chunks.iter().enumerate().flat_map(|(c, chunk)| {
            chunk
                .iter()
                .enumerate()
                .filter_map(move |(o, r)| r.as_ref().map(|r| ((c * CHUNK + o) as u32, r)))
        })
    }

    /// Whether a row lives at `slot`.
    pub(crate) fn occupied(&self, slot: u32) -> bool {
        self.get(slot).is_some()
    }

    /// The chunks (by number, ascending) that differ from `earlier`'s, an earlier copy of
    /// this slab: a write copies the chunk it changes while a copy shares it, so a chunk
    /// still shared holds the same rows, and one that is not may hold others.
    pub(crate) fn chunks_changed_since(&self, earlier: &Slab<T>) -> Vec<u32> {
        (0..self.chunks.len().max(earlier.chunks.len()))
            .filter(|c| match (self.chunks.get(*c), earlier.chunks.get(*c)) {
                (Some(now), Some(then)) => !Arc::ptr_eq(now, then),
                (now, then) => now.or(then).is_some_and(|chunk| !chunk.is_empty()),
            })
            .map(|c| c as u32)
            .collect()
    }

    /// The slots (ascending) whose row differs from `earlier`'s (an earlier copy of this
    /// slab): live in one only, or live in both with rows that differ. Only the chunks
    /// changed since are compared ([`Slab::chunks_changed_since`]).
    pub(crate) fn slots_changed_since(&self, earlier: &Slab<T>) -> Vec<u32>
    where
        T: PartialEq,
    {
        let mut out = Vec::new();
        for c in self.chunks_changed_since(earlier) {
            let from = c * CHUNK as u32;
            for slot in from..from + CHUNK as u32 {
                if self.get(slot) != earlier.get(slot) {
                    out.push(slot);
                }
            }
        }
        out
    }

    /// A free slot to reuse, if any.
    pub(crate) fn reuse_free_slot(&mut self) -> Option<u32> {
        self.free.pop()
    }

    /// Lists `slot` (not live) as free for reuse.
    pub(crate) fn mark_free(&mut self, slot: u32) {
        self.free.push(slot);
    }

    /// Rebuilds the free list from the holes (after loading rows at their slots).
    pub(crate) fn collect_free(&mut self) {
        let end = self.end;
        self.free = self
            .chunks
            .iter()
            .enumerate()
            .rev()
            .flat_map(|(c, chunk)| {
                (0..CHUNK)
                    .rev()
                    .map(move |o| (c * CHUNK + o, chunk.get(o).is_some_and(Option::is_some)))
            })
            .filter(|&(slot, live)| slot < end && !live)
            .map(|(slot, _)| slot as u32)
            .collect();
    }
}

/// Builds a [`Slab`] from rows given in ascending slot order (when loading a snapshot):
/// each chunk is filled in place, sized once, before it goes behind its `Arc`, instead of
/// [`Slab::put`]'s check of the `Arc` and growth of the chunk row by row.
pub(crate) struct AscendingSlab<T> {
    chunks: Vec<Arc<Vec<Option<T>>>>,
    /// The chunk being filled (number `chunks.len()`).
    filling: Vec<Option<T>>,
    /// One past the last slot pushed.
    end: usize,
    /// Rows pushed.
    live: usize,
    /// Rows still to come, as announced: what a new chunk makes room for.
    coming: usize,
}

impl<T> AscendingSlab<T> {
    /// A builder for `rows` rows.
    pub(crate) fn new(rows: usize) -> Self {
        Self {
            chunks: Vec::new(),
            filling: Vec::new(),
            end: 0,
            live: 0,
            coming: rows,
        }
    }

    /// One past the last slot pushed: the next slot must be at least this.
    pub(crate) fn end(&self) -> usize {
        self.end
    }

    /// Puts `row` at `slot`, which must be at least [`AscendingSlab::end`].
    pub(crate) fn push(&mut self, slot: u32, row: T) {
        assert!(slot as usize >= self.end, "slots ascend");
        let (c, o) = chunk_of(slot);
        while self.chunks.len() < c {
            let full = std::mem::take(&mut self.filling);
            self.chunks.push(Arc::new(full));
        }
        if self.filling.capacity() == 0 {
            self.filling = Vec::with_capacity(CHUNK.min(o + self.coming));
        }
        self.filling.resize_with(o, || None);
        self.filling.push(Some(row));
        self.end = slot as usize + 1;
        self.live += 1;
        self.coming = self.coming.saturating_sub(1);
    }

    /// The slab, its free list empty (see [`Slab::collect_free`]).
    pub(crate) fn finish(mut self) -> Slab<T> {
        if !self.filling.is_empty() {
            self.chunks.push(Arc::new(self.filling));
        }
        Slab {
            chunks: self.chunks,
            end: self.end,
            free: Vec::new(),
            live: self.live,
        }
    }
}

impl<T: Clone> Slab<T> {
    /// Puts `row` at `slot`, replacing the row there.
    pub(crate) fn put(&mut self, slot: u32, row: T) {
        let (c, o) = chunk_of(slot);
        while self.chunks.len() <= c {
            self.chunks.push(Arc::default());
        }
        self.end = self.end.max(slot as usize + 1);
        let chunk = Arc::make_mut(&mut self.chunks[c]);
        if chunk.len() <= o {
            chunk.resize_with(o + 1, || None);
        }
        if chunk[o].replace(row).is_none() {
            self.live += 1;
        }
    }

    /// Removes the row at `slot` and frees the slot; false when none lived there.
    pub(crate) fn remove(&mut self, slot: u32) -> bool {
        if !self.occupied(slot) {
            return false;
        }
        let (c, o) = chunk_of(slot);
        Arc::make_mut(&mut self.chunks[c])[o] = None;
        self.live -= 1;
        self.free.push(slot);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascending_slots_build_the_slab_puts_build() {
        // Holes inside a chunk, a whole chunk skipped, a last chunk partly filled.
        let slots: Vec<u32> = (0..5 * CHUNK as u32)
            .filter(|s| s % 3 != 1 && !(CHUNK as u32..2 * CHUNK as u32).contains(s))
            .collect();
        let mut put: Slab<u64> = Slab::default();
        let mut ascending = AscendingSlab::new(slots.len());
        for &slot in &slots {
            put.put(slot, u64::from(slot) * 7);
            ascending.push(slot, u64::from(slot) * 7);
        }
        let built = ascending.finish();
        assert_eq!(
            (built.len(), built.slot_count()),
            (put.len(), put.slot_count())
        );
        let rows = |s: &Slab<u64>| s.slots().map(|(slot, r)| (slot, *r)).collect::<Vec<_>>();
        assert_eq!(rows(&built), rows(&put));
        assert!(!built.occupied(CHUNK as u32) && built.occupied(2 * CHUNK as u32 + 2));
    }

    #[test]
    fn a_write_copies_only_the_chunk_a_copy_shares() {
        let mut slab: Slab<u64> = Slab::default();
        for slot in 0..(3 * CHUNK as u32) {
            slab.put(slot, u64::from(slot));
        }
        let copy = slab.clone();
        slab.put(1, 100);
        assert!(slab.remove(2 * CHUNK as u32));
        assert!(!slab.remove(2 * CHUNK as u32));
        // The copy still has what it had; the original has the writes.
        assert_eq!((*copy.row(1), *slab.row(1)), (1, 100));
        assert!(copy.occupied(2 * CHUNK as u32) && !slab.occupied(2 * CHUNK as u32));
        assert_eq!((copy.len(), slab.len()), (3 * CHUNK, 3 * CHUNK - 1));
        // Only the two written chunks were copied.
        let shared: Vec<bool> = (0..3)
            .map(|c| Arc::ptr_eq(&copy.chunks[c], &slab.chunks[c]))
            .collect();
        assert_eq!(shared, vec![false, true, false]);
        assert_eq!(
            slab.slots().map(|(s, _)| s).collect::<Vec<_>>(),
            (0..3 * CHUNK as u32)
                .filter(|s| *s != 2 * CHUNK as u32)
                .collect::<Vec<_>>()
        );
    }
}
