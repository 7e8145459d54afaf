//! Event lists: rows (or rows with a payload) sorted by one of their times, the unit every
//! measure counts and sums over.

use std::collections::HashMap;
use std::ops::Range;

use jiff::Timestamp;
use kpi_core::Window;

use super::times::{from_nanos, Times};
use crate::symbols::{Sym, NONE};

/// Anything an event list holds: it refers to a row.
pub(crate) trait HasRow {
    /// The row it belongs to.
    fn row(&self) -> u32;
}

impl HasRow for u32 {
    fn row(&self) -> u32 {
        *self
    }
}

impl<X> HasRow for (u32, X) {
    fn row(&self) -> u32 {
        self.0
    }
}

/// Events sorted by time (`times`), with their items (a row, or a row and a payload)
/// alongside.
pub(crate) struct EventList<T> {
    pub(crate) times: Times,
    pub(crate) items: Vec<T>,
}

impl<T> EventList<T> {
    /// Sorts `items` (about `hint` of them) by time (ties in any order: no query tells
    /// them apart). The events are gathered straight into their narrow form while every
    /// time fits, so a large list is never held as timestamps on the way.
    pub(crate) fn collect(hint: usize, items: impl Iterator<Item = (Timestamp, T)>) -> Self {
        let nanos = |t: Timestamp| i64::try_from(t.as_nanosecond()).ok();
        let mut narrow: Vec<(i64, T)> = Vec::with_capacity(hint);
        let mut full: Option<Vec<(Timestamp, T)>> = None;
        for (t, x) in items {
            match (&mut full, nanos(t)) {
                (Some(f), _) => f.push((t, x)),
                (None, Some(n)) => narrow.push((n, x)),
                (None, None) => {
                    let mut f: Vec<(Timestamp, T)> = std::mem::take(&mut narrow)
                        .into_iter()
                        .map(|(n, x)| (from_nanos(n), x))
                        .collect();
                    f.push((t, x));
                    full = Some(f);
                }
            }
        }
        match full {
            None => {
                narrow.sort_unstable_by_key(|(t, _)| *t);
                let times = Times::nanos(narrow.len(), |i| narrow[i].0);
                let items = narrow.into_iter().map(|(_, x)| x).collect();
                Self { times, items }
            }
            Some(mut sorted) => {
                sorted.sort_unstable_by_key(|(t, _)| *t);
                let times = sorted.iter().map(|(t, _)| *t).collect();
                let items = sorted.into_iter().map(|(_, x)| x).collect();
                Self {
                    times: Times::Full(times),
                    items,
                }
            }
        }
    }

    /// Positions of the events in `w` (`start ≤ t < end`).
    pub(crate) fn range(&self, w: &Window) -> Range<usize> {
        let lo = self.before(w.start);
        let hi = self.before(w.end).max(lo);
        lo..hi
    }

    /// How many events are strictly before `t`.
    pub(crate) fn before(&self, t: Timestamp) -> usize {
        self.times.before(t)
    }
}

/// For each event, the position of the previous event with the same key (or [`NONE`]).
pub(crate) fn previous_same<T: HasRow>(ev: &EventList<T>, key: impl Fn(u32) -> Sym) -> Vec<u32> {
    let mut last: HashMap<Sym, u32> = HashMap::new();
    ev.items
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let i = u32::try_from(i).expect("fewer than 2^32 events");
            last.insert(key(e.row()), i).unwrap_or(NONE)
        })
        .collect()
}

/// The rows `subset` that have a time (`time(row)`), sorted by it.
pub(crate) fn rows_by_time(
    rows_subset: &[u32],
    time: impl Fn(u32) -> Option<Timestamp>,
) -> EventList<u32> {
    // Counted first, so the sort buffer is no larger than the list (many lists hold a
    // fraction of the rows: won deals, upsells, churned customers).
    let n = rows_subset.iter().filter(|r| time(**r).is_some()).count();
    EventList::collect(
        n,
        rows_subset.iter().filter_map(|r| time(*r).map(|t| (t, *r))),
    )
}

impl<T: crate::snapshot::Snap> crate::snapshot::Snap for EventList<T> {
    fn put(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        self.times.put(w)?;
        self.items.put(w)
    }
    fn get(r: &mut impl crate::snapshot::ContentSource) -> std::io::Result<Self> {
        use crate::snapshot::Snap;
        let (times, items): (Times, Vec<T>) = (Snap::get(r)?, Snap::get(r)?);
        if times.len() != items.len() {
            return Err(crate::snapshot::invalid(
                "an event list's times and items differ in number",
            ));
        }
        Ok(Self { times, items })
    }
}
