//! Blocked second keys: counts and sums over a range of events restricted to a range of a
//! second key (a won deal's customer's acquisition, a lead's conversion).

use std::ops::Range;

use jiff::Timestamp;
use kpi_core::{Decimal, MetricError};

use super::sums::{add, overflow, DecimalSums};

/// Positions per block of [`Blocked`] (tiny under test, so small datasets span blocks).
#[cfg(not(test))]
pub(super) const BLOCK: usize = 256;
#[cfg(test)]
pub(super) const BLOCK: usize = 4;

/// A range of events cut at block boundaries: per whole block, the positions of the
/// matching keys in its sorted keys; and the partial ranges at both ends.
type Split = (Vec<(usize, Range<usize>)>, [Range<usize>; 2]);

/// A second key of an event: a time, or an optional time (none sorts first).
pub(crate) trait BlockKey: Copy {
    /// An `i128` with the same order: nanoseconds since 1970 (none: `i128::MIN`).
    fn rank(self) -> i128;
}

impl BlockKey for Timestamp {
    fn rank(self) -> i128 {
        self.as_nanosecond()
    }
}

impl BlockKey for Option<Timestamp> {
    fn rank(self) -> i128 {
        self.map_or(i128::MIN, |t| t.as_nanosecond())
    }
}

/// The `i64` form of a rank: none and the latest timestamp (a key meaning "never") map to
/// `i64::MIN` and `i64::MAX`; times strictly between them to their nanoseconds; other
/// ranks do not fit.
fn narrow(rank: i128) -> Option<i64> {
    if rank == i128::MIN {
        Some(i64::MIN)
    } else if rank == Timestamp::MAX.as_nanosecond() {
        Some(i64::MAX)
    } else {
        i64::try_from(rank)
            .ok()
            .filter(|n| *n != i64::MIN && *n != i64::MAX)
    }
}

/// The `i64` form of a query bound when every key fits ([`narrow`]): a bound beyond the
/// times that fit compares with every key as the nearest form outside them does.
fn narrow_bound(rank: i128) -> i64 {
    narrow(rank).unwrap_or(if rank > 0 { i64::MAX } else { i64::MIN + 1 })
}

/// Each block's keys, sorted.
struct Keys<K> {
    sorted: Vec<K>,
}

impl<K: Ord + Copy> Keys<K> {
    /// Sorts each block of `keys`; the sorted order of each block's positions.
    /// Sorts each block of the `n` keys `key(i)`; the sorted order of each block's
    /// positions. Only a block's keys are held at a time besides the result.
    fn new(n: usize, key: impl Fn(usize) -> K) -> (Self, Vec<u32>) {
        let mut sorted = Vec::with_capacity(n);
        let mut order = Vec::with_capacity(n);
        let mut block: Vec<(K, u32)> = Vec::with_capacity(BLOCK);
        for start in (0..n).step_by(BLOCK) {
            let end = (start + BLOCK).min(n);
            block.clear();
            block.extend((start..end).map(|i| (key(i), i as u32)));
            block.sort_by_key(|(k, _)| *k);
            sorted.extend(block.iter().map(|(k, _)| *k));
            order.extend(block.iter().map(|(_, i)| *i));
        }
        (Self { sorted }, order)
    }

    /// For each block fully inside `r`, the positions (within the block's sorted keys)
    /// of the keys in `[lo, hi)`; and the partial ranges at both ends.
    fn split(&self, r: Range<usize>, lo: Option<K>, hi: Option<K>) -> Split {
        let first_full = r.start.div_ceil(BLOCK);
        let last_full = r.end / BLOCK;
        if first_full >= last_full {
            return (Vec::new(), [r, 0..0]);
        }
        let blocks = (first_full..last_full)
            .map(|b| {
                let keys = &self.sorted[b * BLOCK..(b + 1) * BLOCK];
                let a = lo.map_or(0, |lo| keys.partition_point(|k| *k < lo));
                let z = hi.map_or(BLOCK, |hi| keys.partition_point(|k| *k < hi));
                (b, a..z.max(a))
            })
            .collect();
        (
            blocks,
            [r.start..first_full * BLOCK, last_full * BLOCK..r.end],
        )
    }
}

/// Sorted block keys as `i64` when every one fits ([`narrow`]), else as `i128` ranks.
enum KeyColumn {
    Narrow(Keys<i64>),
    Wide(Keys<i128>),
}

/// A second key per event of an event list, for counts and sums over a range of events
/// restricted to second keys in `[lo, hi)`: each block of [`BLOCK`] events is kept sorted
/// by second key, with prefix sums of each value column in that order, so a query costs
/// O((n / BLOCK) · log BLOCK + BLOCK) instead of a pass over the range. Only the sorted
/// keys are kept, as 8 bytes where they fit: the partial blocks at a range's ends read
/// their events' keys and values from the rows.
pub(crate) struct Blocked {
    keys: KeyColumn,
    /// Per value column: prefix sums of the values in each block's sorted-key order.
    sums: Vec<DecimalSums>,
}

impl Blocked {
    /// The second keys `key(i)` of `n` events (in event order), and value columns to sum
    /// (`column(i)`: event `i`'s value), read as needed rather than collected.
    pub(crate) fn new<K: BlockKey>(
        n: usize,
        key: impl Fn(usize) -> K,
        columns: &[&dyn Fn(usize) -> Decimal],
    ) -> Self {
        let rank = |i: usize| key(i).rank();
        let (keys, order) = if (0..n).all(|i| narrow(rank(i)).is_some()) {
            let (k, order) = Keys::new(n, |i| narrow(rank(i)).expect("checked above"));
            (KeyColumn::Narrow(k), order)
        } else {
            let (k, order) = Keys::new(n, rank);
            (KeyColumn::Wide(k), order)
        };
        let sums = columns
            .iter()
            .map(|c| DecimalSums::dense(order.iter().map(|i| c(*i as usize))))
            .collect();
        Self { keys, sums }
    }

    /// The whole blocks of `r` split at `[lo, hi)`, and the positions of the partial
    /// ends whose key (`key(i)`: event `i`'s) lies in `[lo, hi)`.
    fn matching<K: BlockKey>(
        &self,
        r: Range<usize>,
        lo: Option<K>,
        hi: Option<K>,
        key: impl Fn(usize) -> K,
    ) -> (Vec<(usize, Range<usize>)>, Vec<usize>) {
        let (lo, hi) = (lo.map(BlockKey::rank), hi.map(BlockKey::rank));
        let (blocks, ends) = match &self.keys {
            KeyColumn::Narrow(k) => k.split(r, lo.map(narrow_bound), hi.map(narrow_bound)),
            KeyColumn::Wide(k) => k.split(r, lo, hi),
        };
        let inside = |i: &usize| {
            let k = key(*i).rank();
            lo.is_none_or(|lo| k >= lo) && hi.is_none_or(|hi| k < hi)
        };
        (blocks, ends.into_iter().flatten().filter(inside).collect())
    }

    /// How many events of `r` have a second key in `[lo, hi)` (`None`: unbounded);
    /// `key(i)` is event `i`'s second key (read for the partial blocks).
    pub(crate) fn count<K: BlockKey>(
        &self,
        r: Range<usize>,
        lo: Option<K>,
        hi: Option<K>,
        key: impl Fn(usize) -> K,
    ) -> usize {
        let (blocks, ends) = self.matching(r, lo, hi, key);
        blocks.iter().map(|(_, x)| x.len()).sum::<usize>() + ends.len()
    }

    /// The sum of value column `col` over the events of `r` with a second key in
    /// `[lo, hi)`, when the block sums are exact (else `None`: add the values one by
    /// one); `event(i)` is event `i`'s second key and value (read for the partial blocks).
    pub(crate) fn sum<K: BlockKey>(
        &self,
        col: usize,
        r: Range<usize>,
        lo: Option<K>,
        hi: Option<K>,
        event: impl Fn(usize) -> (K, Decimal),
    ) -> Option<Result<Decimal, MetricError>> {
        let sums = &self.sums[col];
        let (blocks, ends) = self.matching(r, lo, hi, |i| event(i).0);
        let mut acc = Decimal::ZERO;
        for (b, x) in blocks {
            let part = sums.range(b * BLOCK + x.start..b * BLOCK + x.end, |_| {
                unreachable!("dense sums read no value")
            })?;
            match acc.checked_add(part) {
                Some(a) => acc = a,
                None => return Some(Err(overflow())),
            }
        }
        for i in ends {
            match add(acc, event(i).1) {
                Ok(a) => acc = a,
                Err(e) => return Some(Err(e)),
            }
        }
        Some(Ok(acc))
    }
}

crate::snapshot::snap_fields!(Keys<i64> { sorted });
crate::snapshot::snap_fields!(Keys<i128> { sorted });

/// In the index image (`image.rs`): a tag and the keys, then the sums.
impl crate::snapshot::Snap for Blocked {
    fn put(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        match &self.keys {
            KeyColumn::Narrow(keys) => {
                0u8.put(w)?;
                keys.put(w)?;
            }
            KeyColumn::Wide(keys) => {
                1u8.put(w)?;
                keys.put(w)?;
            }
        }
        self.sums.put(w)
    }
    fn get(r: &mut impl crate::snapshot::ContentSource) -> std::io::Result<Self> {
        use crate::snapshot::{invalid, Snap};
        let keys = match u8::get(r)? {
            0 => KeyColumn::Narrow(Snap::get(r)?),
            1 => KeyColumn::Wide(Snap::get(r)?),
            tag => return Err(invalid(format!("bad block keys form {tag}"))),
        };
        Ok(Self {
            keys,
            sums: Snap::get(r)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_counts_and_sums_match_a_pass() {
        let ts = |s: &str| -> Timestamp { s.parse().unwrap() };
        let base = ts("2024-01-01T00:00:00Z");
        let key = |i: i64| -> Option<Timestamp> {
            // Repeats, none, and (for the wide form) a time beyond i64 nanoseconds.
            match (i * 7919) % 23 {
                0 => None,
                k => Some(base + jiff::SignedDuration::from_hours(k)),
            }
        };
        let narrow_keys: Vec<Option<Timestamp>> = (0..53).map(key).collect();
        let mut wide_keys = narrow_keys.clone();
        wide_keys[17] = Some(ts("9000-01-01T00:00:00Z"));
        let values: Vec<Decimal> = (0..53).map(|i| Decimal::new(i, 1)).collect();
        let never: Vec<Decimal> = (0..53).map(|i| Decimal::new(i % 3, 0)).collect();
        let bounds = [
            None,
            Some(None),
            Some(Some(base)),
            Some(Some(base + jiff::SignedDuration::from_hours(5))),
            Some(Some(base + jiff::SignedDuration::from_hours(11))),
            Some(Some(ts("1000-01-01T00:00:00Z"))),
            Some(Some(ts("2262-04-11T23:47:16.854775807Z"))),
            Some(Some(ts("9000-01-01T00:00:00Z"))),
            Some(Some(Timestamp::MAX)),
        ];
        for (keys, narrow) in [(&narrow_keys, true), (&wide_keys, false)] {
            let b = Blocked::new(keys.len(), |i| keys[i], &[&|i| values[i], &|i| never[i]]);
            assert_eq!(matches!(b.keys, KeyColumn::Narrow(_)), narrow);
            for start in 0..53 {
                for end in start..=53 {
                    for lo in bounds {
                        for hi in bounds {
                            let inside = |i: &usize| {
                                lo.is_none_or(|lo| keys[*i] >= lo)
                                    && hi.is_none_or(|hi| keys[*i] < hi)
                            };
                            let count = (start..end).filter(inside).count();
                            assert_eq!(b.count(start..end, lo, hi, |i| keys[i]), count);
                            for (col, v) in [&values, &never].into_iter().enumerate() {
                                let sum: Decimal = (start..end).filter(inside).map(|i| v[i]).sum();
                                let got = b.sum(col, start..end, lo, hi, |i| (keys[i], v[i]));
                                assert_eq!(got.unwrap().unwrap(), sum);
                            }
                        }
                    }
                }
            }
        }
        // "Never" keys (the latest timestamp) stay narrow and sort last.
        let lead_keys = [
            base,
            Timestamp::MAX,
            base - jiff::SignedDuration::from_hours(1),
        ];
        let b = Blocked::new(lead_keys.len(), |i| lead_keys[i], &[]);
        assert!(matches!(b.keys, KeyColumn::Narrow(_)));
        let key = |i: usize| lead_keys[i];
        assert_eq!(
            b.count(0..3, None, Some(ts("9000-01-01T00:00:00Z")), key),
            2
        );
        assert_eq!(
            b.count(0..3, Some(ts("9000-01-01T00:00:00Z")), None, key),
            1
        );
        assert_eq!(b.count(0..3, Some(Timestamp::MAX), None, key), 1);
        assert_eq!(b.count(0..3, None, Some(Timestamp::MAX), key), 2);
    }
}
