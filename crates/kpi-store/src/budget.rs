//! The memory budget of the tenants' query state (`kpid serve --memory-budget`).
//!
//! A tenant's query state is its index (`index/`: the parts built from its rows, their
//! partitions and lazily built lists) — everything a read can rebuild from the rows. When
//! the query state of every tenant together exceeds the budget, the state of the least
//! recently read tenants is released (their index dropped; a request already reading it
//! keeps its snapshot until it ends) until it is back under [`LOW_WATER`] of the budget.
//! A released tenant's next read builds its index again from its rows, so it answers as
//! before, only slower once. Rows, sled and settings are never released: rows are what
//! writes change and what the snapshot saves.
//!
//! The bytes counted are an estimate made when an index is built, from its tenant's rows
//! ([`estimate`]): the index does not count its own heap. The figures come from
//! measurements (BENCHMARKS.md): about 24 KiB of query state for a tenant of 400 records
//! after one read, and about 45 bytes a row for the whole index and the dashboard's
//! partitions at 10M records.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, TryLockError};

/// Query state counted for any tenant read, whatever its size.
pub(crate) const FIXED_BYTES: u64 = 16 * 1024;
/// Query state counted per row of a tenant.
pub(crate) const ROW_BYTES: u64 = 48;
/// A release goes down to this share of the budget, so that the next builds do not each
/// trigger one.
const LOW_WATER: f64 = 0.9;

/// The query state the memory budget counts for a tenant of `rows` rows.
pub fn estimate(rows: usize) -> u64 {
    FIXED_BYTES + ROW_BYTES * rows as u64
}

/// One tenant's part of the budget's bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct Usage {
    /// The budget's clock when the tenant was last read.
    last_read: AtomicU64,
    /// The bytes its current index is counted as (0 when it holds none).
    charged: AtomicU64,
}

impl Usage {
    /// When it was last read (larger is later).
    pub(crate) fn last_read(&self) -> u64 {
        self.last_read.load(Ordering::Relaxed)
    }

    /// The bytes its query state is counted as.
    pub(crate) fn charged(&self) -> u64 {
        self.charged.load(Ordering::Relaxed)
    }
}

/// The budget and what the tenants hold against it.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    /// The budget in bytes; 0 = none.
    limit: AtomicU64,
    /// Bytes of query state held, over every tenant.
    held: AtomicU64,
    /// Tenants' query states released so far.
    released: AtomicU64,
    /// Ticks once per read.
    clock: AtomicU64,
    /// Held by the one thread releasing (others skip: it releases for them).
    releasing: Mutex<()>,
}

/// What a store's budget holds now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BudgetStats {
    /// The budget in bytes, if any.
    pub limit: Option<u64>,
    /// Bytes of query state held (estimated when each index was built).
    pub held_bytes: u64,
    /// Tenants whose query state was released since the store opened.
    pub released: u64,
}

impl Budget {
    /// Sets the budget (`None`: no budget).
    pub(crate) fn set_limit(&self, limit: Option<u64>) {
        self.limit
            .store(limit.map_or(0, |l| l.max(1)), Ordering::Relaxed);
    }

    /// Whether a budget is set.
    pub(crate) fn limited(&self) -> bool {
        self.limit.load(Ordering::Relaxed) > 0
    }

    /// Notes a read of the tenant of `usage`.
    pub(crate) fn read(&self, usage: &Usage) {
        let now = self.clock.fetch_add(1, Ordering::Relaxed) + 1;
        usage.last_read.store(now, Ordering::Relaxed);
    }

    /// Counts `bytes` as the query state of `usage`'s tenant instead of what it was
    /// counted as; whether the budget is now exceeded. Call while holding the tenant's
    /// index slot, so a release cannot interleave.
    pub(crate) fn charge(&self, usage: &Usage, bytes: u64) -> bool {
        let old = usage.charged.swap(bytes, Ordering::Relaxed);
        let held = if bytes >= old {
            self.held.fetch_add(bytes - old, Ordering::Relaxed) + (bytes - old)
        } else {
            self.held.fetch_sub(old - bytes, Ordering::Relaxed) - (old - bytes)
        };
        let limit = self.limit.load(Ordering::Relaxed);
        limit > 0 && held > limit
    }

    /// Uncounts the query state of `usage`'s tenant, released. Call while holding the
    /// tenant's index slot, after emptying it.
    pub(crate) fn uncharge(&self, usage: &Usage) {
        let old = usage.charged.swap(0, Ordering::Relaxed);
        if old > 0 {
            self.held.fetch_sub(old, Ordering::Relaxed);
            self.released.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Releases through `release` the tenants of `candidates` (each with its usage) least
    /// recently read first, until what is held is under the low-water mark. Skipped when
    /// another thread is releasing. `release` empties a tenant's index slot and calls
    /// [`Budget::uncharge`].
    pub(crate) fn release<T>(&self, mut candidates: Vec<(u64, T)>, mut release: impl FnMut(&T)) {
        let _releasing = match self.releasing.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        let limit = self.limit.load(Ordering::Relaxed);
        if limit == 0 {
            return;
        }
        let low = (limit as f64 * LOW_WATER) as u64;
        candidates.sort_unstable_by_key(|(last_read, _)| *last_read);
        for (_, tenant) in &candidates {
            if self.held.load(Ordering::Relaxed) <= low {
                break;
            }
            release(tenant);
        }
    }

    /// What it holds now.
    pub(crate) fn stats(&self) -> BudgetStats {
        let limit = self.limit.load(Ordering::Relaxed);
        BudgetStats {
            limit: (limit > 0).then_some(limit),
            held_bytes: self.held.load(Ordering::Relaxed),
            released: self.released.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_and_releases_the_least_recently_read_first() {
        let budget = Budget::default();
        budget.set_limit(Some(estimate(100) * 2));
        let tenants: Vec<Usage> = (0..3).map(|_| Usage::default()).collect();
        // Read in the order 1, 0, 2: tenant 1 is the least recently read.
        for i in [1, 0, 2] {
            budget.read(&tenants[i]);
        }
        assert!(!budget.charge(&tenants[0], estimate(100)));
        assert!(!budget.charge(&tenants[1], estimate(100)));
        assert!(
            budget.charge(&tenants[2], estimate(100)),
            "three over a budget of two"
        );
        let mut released = Vec::new();
        let candidates = (0..3).map(|i| (tenants[i].last_read(), i)).collect();
        budget.release(candidates, |&i| {
            released.push(i);
            budget.uncharge(&tenants[i]);
        });
        // Down to 90 % of two tenants' state: one released is not enough, two are.
        assert_eq!(released, [1, 0]);
        assert_eq!(
            budget.stats(),
            BudgetStats {
                limit: Some(estimate(100) * 2),
                held_bytes: estimate(100),
                released: 2,
            }
        );
        // A rebuild after a write counts the new size instead of the old.
        assert!(!budget.charge(&tenants[2], estimate(10)));
        assert_eq!(budget.stats().held_bytes, estimate(10));
    }

    #[test]
    fn without_a_budget_nothing_is_exceeded() {
        let budget = Budget::default();
        let usage = Usage::default();
        assert!(!budget.charge(&usage, u64::MAX / 2));
        budget.release(vec![(0, ())], |_| panic!("nothing to release"));
        assert_eq!(budget.stats().limit, None);
    }
}
