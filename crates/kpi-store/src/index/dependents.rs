//! The rows of a part that read other records: by the customer and by the campaign they
//! read through the lookups. When a customer or a campaign's channel changes, those rows
//! read new dimension values without being written, so they join the part's delta
//! ([`super::delta`]): removed as its base read them, added as they read now.

use super::lookups::Lookups;
use super::part::{KindIndex, Part};
use crate::symbols::{Sym, NONE};

/// Per key symbol, the positions of the rows holding it (compressed: one offset per
/// symbol, one list of slots).
pub(crate) struct SlotsByKey {
    offsets: Vec<u32>,
    slots: Vec<u32>,
}

impl SlotsByKey {
    /// The slots `pairs` lists by key (`(key, slot)`, each time called; [`NONE`] keys
    /// left out).
    pub(crate) fn new<P: Iterator<Item = (Sym, u32)>>(pairs: impl Fn() -> P) -> Self {
        let keys = pairs()
            .filter(|(k, _)| *k != NONE)
            .map(|(k, _)| k as usize + 1)
            .max()
            .unwrap_or(0);
        let mut offsets = vec![0u32; keys + 1];
        for (k, _) in pairs().filter(|(k, _)| *k != NONE) {
            offsets[k as usize + 1] += 1;
        }
        for i in 1..offsets.len() {
            offsets[i] += offsets[i - 1];
        }
        let mut next = offsets.clone();
        let mut slots = vec![0u32; offsets.last().copied().unwrap_or(0) as usize];
        for (k, slot) in pairs().filter(|(k, _)| *k != NONE) {
            let at = &mut next[k as usize];
            slots[*at as usize] = slot;
            *at += 1;
        }
        Self { offsets, slots }
    }

    /// The positions of the rows holding `key`.
    pub(crate) fn get(&self, key: Sym) -> &[u32] {
        let k = key as usize;
        if k + 1 >= self.offsets.len() {
            return &[];
        }
        &self.slots[self.offsets[k] as usize..self.offsets[k + 1] as usize]
    }
}

/// What rows are listed by ([`Part::positions_by`]): the customer or the campaign they
/// read, or their owner.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowKey {
    Customer,
    Campaign,
    Owner,
}

impl RowKey {
    /// Every key, in the order parts keep their lists.
    pub(crate) const ALL: [RowKey; 3] = [RowKey::Customer, RowKey::Campaign, RowKey::Owner];

    /// The key of `row` ([`NONE`]: none).
    pub(crate) fn of<I: KindIndex>(self, context: &I::Context, row: &I::Row) -> Sym {
        match self {
            RowKey::Customer => I::customer(context, row),
            RowKey::Campaign => I::campaign(context, row),
            RowKey::Owner => I::attr(context, row, kpi_core::Dimension::Owner),
        }
    }
}

/// No record slots: for parts whose rows read nothing that other kinds' writes change.
pub(crate) fn nothing_inherited<I: KindIndex>(_: &Part<I>, _: &I::Context) -> Vec<u32> {
    Vec::new()
}

/// The record slots of `base`'s rows that read differently through `now` than through
/// `then` (the lookups `base` reads through, or later ones): those of a customer or a
/// campaign's channel that changed since. A row written since `base` is not listed
/// (it is in the delta already).
pub(crate) fn changed_through_lookups<I: KindIndex>(
    base: &Part<I>,
    then: &Lookups,
    now: &Lookups,
) -> Vec<u32> {
    if std::ptr::eq(then, now) {
        return Vec::new();
    }
    let customers = now.customers_changed_since(then);
    let campaigns = now.channels_changed_since(then);
    let mut slots = base.record_slots_of(RowKey::Customer, &customers);
    slots.extend(base.record_slots_of(RowKey::Campaign, &campaigns));
    slots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_listed_by_key() {
        let pairs = [(3, 10), (NONE, 11), (1, 12), (3, 13)];
        let by_key = SlotsByKey::new(|| pairs.iter().copied());
        assert_eq!(by_key.get(3), &[10, 13]);
        assert_eq!(by_key.get(1), &[12]);
        assert!(by_key.get(0).is_empty() && by_key.get(2).is_empty());
        assert!(by_key.get(99).is_empty() && by_key.get(NONE).is_empty());
        let none = SlotsByKey::new(std::iter::empty);
        assert!(none.get(0).is_empty());
    }
}
