//! The rows of a part that read other records: by the customer and by the campaign they
//! read through the lookups. When a customer or a campaign's channel changes, those rows
//! read new dimension values without being written, so they join the part's delta
//! ([`super::delta`]): removed as its base read them, added as they read now.

use super::lookups::Lookups;
use super::part::{KindIndex, Part, RowTable};
use crate::symbols::{Sym, NONE};

/// Per key symbol, the record slots of the rows holding it (compressed: one offset per
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

    /// The slots of the rows holding `key`.
    pub(crate) fn get(&self, key: Sym) -> &[u32] {
        let k = key as usize;
        if k + 1 >= self.offsets.len() {
            return &[];
        }
        &self.slots[self.offsets[k] as usize..self.offsets[k + 1] as usize]
    }
}

/// The record slots of a part's rows, by the customer and by the campaign they read.
pub(crate) struct Dependents {
    by_customer: SlotsByKey,
    by_campaign: SlotsByKey,
}

impl Dependents {
    /// Those of `part`'s rows.
    pub(crate) fn of<I: KindIndex>(part: &Part<I>) -> Self {
        let keyed = |key: fn(&I::Context, &I::Row) -> Sym| {
            move || {
                part.positions().map(move |i| {
                    (
                        key(&part.context, part.rows.row(i)),
                        I::record_slot(&part.rows, i),
                    )
                })
            }
        };
        Self {
            by_customer: SlotsByKey::new(keyed(I::customer)),
            by_campaign: SlotsByKey::new(keyed(I::campaign)),
        }
    }

    /// The record slots of the rows reading one of `customers` or `campaigns`.
    pub(crate) fn slots_of(&self, customers: &[Sym], campaigns: &[Sym]) -> Vec<u32> {
        let of_customers = customers.iter().flat_map(|c| self.by_customer.get(*c));
        let of_campaigns = campaigns.iter().flat_map(|c| self.by_campaign.get(*c));
        of_customers.chain(of_campaigns).copied().collect()
    }
}

/// No record slots: for parts whose rows read nothing that other kinds' writes change.
pub(crate) fn nothing_inherited<I: KindIndex>(_: &Part<I>) -> Vec<u32> {
    Vec::new()
}

/// The record slots of `base`'s rows that read differently through `now` than through
/// `then` (the lookups `base` reads through): those of a customer or a campaign's channel
/// that changed since.
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
    if customers.is_empty() && campaigns.is_empty() {
        return Vec::new();
    }
    base.dependents().slots_of(&customers, &campaigns)
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
