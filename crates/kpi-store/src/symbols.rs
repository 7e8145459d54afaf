//! Interned strings: dimension values and customer ids as `u32` symbols, which rows hold
//! instead of strings (the index reads them, so they sit below both rows and index).

use std::collections::HashMap;

/// An interned string (a dimension value or a customer id).
pub(crate) type Sym = u32;
/// No value.
pub(crate) const NONE: Sym = u32::MAX;

/// Strings ↔ symbols.
#[derive(Default, Clone)]
pub(crate) struct Interner {
    ids: HashMap<String, Sym>,
    names: Vec<String>,
}

impl Interner {
    /// The symbol of `s`, interning it.
    pub(crate) fn intern(&mut self, s: &str) -> Sym {
        if let Some(id) = self.ids.get(s) {
            return *id;
        }
        let id = Sym::try_from(self.names.len()).expect("fewer than 2^32 distinct strings");
        self.ids.insert(s.to_owned(), id);
        self.names.push(s.to_owned());
        id
    }

    /// The symbol of `s`, or [`NONE`].
    pub(crate) fn intern_opt(&mut self, s: Option<&str>) -> Sym {
        s.map_or(NONE, |s| self.intern(s))
    }

    /// The symbol of `s` if it was interned.
    pub(crate) fn get(&self, s: &str) -> Option<Sym> {
        self.ids.get(s).copied()
    }

    /// Every string, in symbol order.
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// The string of a symbol.
    pub(crate) fn name(&self, sym: Sym) -> &str {
        &self.names[sym as usize]
    }
}
