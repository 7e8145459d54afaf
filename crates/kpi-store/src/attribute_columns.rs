//! Custom attributes in memory: per record kind, per attribute name a column holding, by
//! slot, the interned dimension value of the attribute (`NONE`: the record has none).
//! Columns are chunked like the rows' slabs, each chunk behind an `Arc`, so the index
//! shares them and a write copies only the chunk it changes.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::attributes::Attributes;
use crate::symbols::{Interner, Sym, NONE};

/// Slots per chunk of a [`Column`].
#[cfg(not(test))]
const CHUNK: usize = 4096;
/// Small under test, so test data spans chunks.
#[cfg(test)]
const CHUNK: usize = 8;

/// One attribute's values by slot.
#[derive(Clone, Default)]
pub(crate) struct Column {
    chunks: Vec<Arc<Vec<Sym>>>,
}

impl Column {
    /// The value at `slot` ([`NONE`] when the record there has none).
    pub(crate) fn get(&self, slot: u32) -> Sym {
        let (c, o) = (slot as usize / CHUNK, slot as usize % CHUNK);
        self.chunks
            .get(c)
            .and_then(|chunk| chunk.get(o))
            .copied()
            .unwrap_or(NONE)
    }

    fn set(&mut self, slot: u32, value: Sym) {
        let (c, o) = (slot as usize / CHUNK, slot as usize % CHUNK);
        if value == NONE && self.get(slot) == NONE {
            return;
        }
        while self.chunks.len() <= c {
            self.chunks.push(Arc::default());
        }
        let chunk = Arc::make_mut(&mut self.chunks[c]);
        if chunk.len() <= o {
            chunk.resize(o + 1, NONE);
        }
        chunk[o] = value;
    }

    /// The slots holding a value, with it.
    /// The slots whose value differs from `earlier`'s (an earlier copy of this column),
    /// comparing only the chunks not shared with it.
    pub(crate) fn slots_changed_since(&self, earlier: &Column, out: &mut Vec<u32>) {
        for c in 0..self.chunks.len().max(earlier.chunks.len()) {
            if let (Some(now), Some(then)) = (self.chunks.get(c), earlier.chunks.get(c)) {
                if Arc::ptr_eq(now, then) {
                    continue;
                }
            }
            let from = (c * CHUNK) as u32;
            out.extend((from..from + CHUNK as u32).filter(|s| self.get(*s) != earlier.get(*s)));
        }
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = (u32, Sym)> + '_ {
        self.chunks.iter().enumerate().flat_map(|(c, chunk)| {
            chunk
                .iter()
                .enumerate()
                .filter(|(_, v)| **v != NONE)
                .map(move |(o, v)| ((c * CHUNK + o) as u32, *v))
        })
    }
}

/// The attributes of one kind's records: a column per attribute name any of them has
/// (had: a column is kept when its last value goes).
#[derive(Clone, Default)]
pub(crate) struct AttributeColumns {
    columns: BTreeMap<Box<str>, Column>,
}

impl AttributeColumns {
    /// Replaces the attributes of the record at `slot` with `attributes`, interning their
    /// dimension values in `values`.
    pub(crate) fn put(&mut self, slot: u32, attributes: &Attributes, values: &mut Interner) {
        for (name, column) in &mut self.columns {
            if !attributes.contains_key(&**name) {
                column.set(slot, NONE);
            }
        }
        for (name, value) in attributes {
            let sym = values.intern(&value.dimension_value());
            self.set(name, slot, sym);
        }
    }

    /// Sets the value of attribute `name` at `slot` (when loading).
    pub(crate) fn set(&mut self, name: &str, slot: u32, value: Sym) {
        match self.columns.get_mut(name) {
            Some(column) => column.set(slot, value),
            None => {
                let mut column = Column::default();
                column.set(slot, value);
                self.columns.insert(name.into(), column);
            }
        }
    }

    /// Removes every attribute of the record at `slot`.
    pub(crate) fn remove(&mut self, slot: u32) {
        for column in self.columns.values_mut() {
            column.set(slot, NONE);
        }
    }

    /// The column of attribute `name`, if any record has had it.
    /// The slots (ascending, without repeats) where some attribute's value differs from
    /// `earlier`'s (an earlier copy of these columns).
    pub(crate) fn slots_changed_since(&self, earlier: &AttributeColumns) -> Vec<u32> {
        let mut out = Vec::new();
        let none = Column::default();
        for name in self.columns.keys().chain(earlier.columns.keys()) {
            let now = self.columns.get(name).unwrap_or(&none);
            let then = earlier.columns.get(name).unwrap_or(&none);
            now.slots_changed_since(then, &mut out);
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    pub(crate) fn column(&self, name: &str) -> Option<&Column> {
        self.columns.get(name)
    }

    /// Every column, by name.
    pub(crate) fn columns(&self) -> impl Iterator<Item = (&str, &Column)> {
        self.columns.iter().map(|(n, c)| (&**n, c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::AttributeValue;

    #[test]
    fn an_upsert_replaces_the_whole_map_and_copies_one_chunk() {
        let mut values = Interner::default();
        let mut columns = AttributeColumns::default();
        let region =
            |v: &str| Attributes::from([("region".to_owned(), AttributeValue::Text(v.to_owned()))]);
        for slot in 0..(3 * CHUNK as u32) {
            columns.put(slot, &region("EMEA"), &mut values);
        }
        let copy = columns.clone();
        let seats = Attributes::from([(
            "seats".to_owned(),
            AttributeValue::Decimal("12.50".parse().unwrap()),
        )]);
        columns.put(1, &seats, &mut values);
        let emea = values.get("EMEA").unwrap();
        let twelve = values.get("12.5").unwrap();
        assert_eq!(columns.column("region").unwrap().get(1), NONE);
        assert_eq!(columns.column("seats").unwrap().get(1), twelve);
        assert_eq!(copy.column("region").unwrap().get(1), emea);
        assert!(copy.column("seats").is_none());
        let shared: Vec<bool> = (0..3)
            .map(|c| {
                Arc::ptr_eq(
                    &copy.column("region").unwrap().chunks[c],
                    &columns.column("region").unwrap().chunks[c],
                )
            })
            .collect();
        assert_eq!(shared, vec![false, true, true]);
        columns.remove(2);
        assert_eq!(columns.column("region").unwrap().get(2), NONE);
        assert_eq!(
            columns.column("region").unwrap().values().count(),
            3 * CHUNK - 2
        );
        assert_eq!(columns.column("region").unwrap().get(1_000_000), NONE);
    }
}
