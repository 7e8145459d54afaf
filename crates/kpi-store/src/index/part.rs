//! Parts: the rows of one unit, the index over all of them and, built on first use, one
//! index per value of each dimension; and the selection a query reads from a part.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use kpi_core::{Decimal, Dimension, MetricError};

use super::events::{EventList, HasRow};
use super::sums::{add, DecimalSums, IntegerSums};
use crate::dims::{dim_index, Unit, NDIMS};
use crate::rows::Slab;
use crate::symbols::{Sym, NONE};

/// The rows a part reads, by position.
pub(crate) trait RowTable: Send + Sync {
    /// A row.
    type Row;
    /// The row at position `i` (one of [`RowTable::positions`]).
    fn row(&self, i: u32) -> &Self::Row;
    /// The positions of the rows, ascending.
    fn positions(&self) -> Box<dyn Iterator<Item = u32> + '_>;
    /// How many rows there are.
    fn count(&self) -> usize;
}

/// Rows converted for the index, at positions `0..len`.
impl<R: Send + Sync> RowTable for Vec<R> {
    type Row = R;

    fn row(&self, i: u32) -> &R {
        &self[i as usize]
    }

    fn positions(&self) -> Box<dyn Iterator<Item = u32> + '_> {
        Box::new(0..self.len() as u32)
    }

    fn count(&self) -> usize {
        self.len()
    }
}

/// The store's own rows, at their slots (read in place, not copied).
impl<R: Send + Sync> RowTable for Slab<R> {
    type Row = R;

    fn row(&self, i: u32) -> &R {
        Slab::row(self, i)
    }

    fn positions(&self) -> Box<dyn Iterator<Item = u32> + '_> {
        Box::new(self.slots().map(|(i, _)| i))
    }

    fn count(&self) -> usize {
        self.len()
    }
}

/// An index over a subset of a unit's rows.
pub(crate) trait KindIndex: Sized + Send + Sync {
    /// The unit's row: what the index is built from, with the keys its dimension values
    /// are read through (not the values: rows carry no copies of what they inherit).
    type Row: Send + Sync;
    /// Where the rows are.
    type Table: RowTable<Row = Self::Row>;
    /// What rows read their inherited fields and dimension values from (their customers,
    /// campaigns or deals), shared by every part built at the same time.
    type Context: Send + Sync;
    /// Builds the index of rows `subset` (ascending positions in `rows`).
    fn build(context: &Self::Context, rows: &Self::Table, subset: &[u32]) -> Self;
    /// The value of dimension `d` of `row` ([`NONE`] when it has none).
    fn attr(context: &Self::Context, row: &Self::Row, d: Dimension) -> Sym;
    /// Builds now what the index otherwise builds on first use ([`Selection::lazy`]), for rows
    /// `subset` (the index's own).
    fn warm(&self, _context: &Self::Context, _rows: &Self::Table, _subset: &[u32]) {}
}

/// The dimension filters of a scope, resolved to symbols (`None`: a value no record has).
pub(crate) type ResolvedFilters = Vec<(Dimension, Option<Sym>)>;

/// Per value of one dimension: the rows having it, and the index over them.
type Partition<I> = HashMap<Sym, (Vec<u32>, I)>;

/// The dimensions a row may read through its customer (a purchase's owner is its
/// customer's): what [`Part::refit`] does not keep.
const VIA_CUSTOMER: [Dimension; 3] = [Dimension::Owner, Dimension::Source, Dimension::Segment];

/// The rows of one unit (a record kind, deal stage exits or stays), what they read their
/// dimension values from; the index over all of them; and, built on first use, one index
/// per value of each dimension. Each is behind an `Arc`, so a part refit to new
/// customers ([`Part::refit`]) shares what they do not change.
pub(crate) struct Part<I: KindIndex> {
    unit: Unit,
    pub(crate) rows: Arc<I::Table>,
    pub(crate) context: I::Context,
    all: OnceLock<Arc<I>>,
    parts: [OnceLock<Arc<Partition<I>>>; NDIMS],
    /// Per dimension, the values the rows have (computed on first use, without indexes).
    distinct: [OnceLock<Arc<HashSet<Sym>>>; NDIMS],
}

/// A cell holding what `cell` holds, shared.
fn shared<T>(cell: &OnceLock<Arc<T>>) -> OnceLock<Arc<T>> {
    cell.get()
        .map_or_else(OnceLock::new, |v| OnceLock::from(Arc::clone(v)))
}

/// Per dimension, what `cells` hold, shared, except for the dimensions a row may read
/// through its customer ([`VIA_CUSTOMER`]), left empty.
fn not_via_customer<T>(cells: &[OnceLock<Arc<T>>; NDIMS]) -> [OnceLock<Arc<T>>; NDIMS] {
    std::array::from_fn(|i| {
        if VIA_CUSTOMER.contains(&Dimension::ALL[i]) {
            OnceLock::new()
        } else {
            shared(&cells[i])
        }
    })
}

/// A part whose index can be built ahead of the queries.
pub(crate) trait Warm: Sync {
    /// Builds the index over every row, if not yet built.
    fn warm(&self);
}

impl<I: KindIndex> Warm for Part<I> {
    fn warm(&self) {
        let all = self.all();
        let subset: Vec<u32> = self.rows.positions().collect();
        all.warm(&self.context, &self.rows, &subset);
    }
}

/// Which rows a query reads: an index, and the filters it does not already apply.
pub(crate) struct Selection<'a, I: KindIndex> {
    pub(crate) index: &'a I,
    pub(crate) rows: &'a I::Table,
    pub(crate) context: &'a I::Context,
    /// Remaining dimension = value conditions.
    conds: Vec<(Dimension, Sym)>,
    /// The rows `index` covers, `None` for all.
    subset: Option<&'a [u32]>,
}

impl<I: KindIndex> Part<I> {
    /// The part of `unit` over `rows`; its index is built on first use ([`Part::all`]).
    pub(crate) fn new(unit: Unit, rows: impl Into<Arc<I::Table>>, context: I::Context) -> Self {
        let rows = rows.into();
        Self {
            unit,
            rows,
            context,
            all: OnceLock::new(),
            parts: Default::default(),
            distinct: Default::default(),
        }
    }

    /// The same rows read through `context`, whose customers changed (nothing else it reads
    /// did): the index over every row and the partitions by dimensions no row reads
    /// through its customer are shared; the rest is rebuilt on first use, and what an
    /// index derives from customers is rebuilt when first read through the new lookups
    /// (`ByCustomers`).
    pub(crate) fn refit(&self, context: I::Context) -> Self {
        Self {
            unit: self.unit,
            rows: Arc::clone(&self.rows),
            context,
            all: shared(&self.all),
            parts: not_via_customer(&self.parts),
            distinct: not_via_customer(&self.distinct),
        }
    }

    /// The index over every row, built now if it was not yet.
    pub(crate) fn all(&self) -> &I {
        self.all.get_or_init(|| {
            let subset: Vec<u32> = self.rows.positions().collect();
            Arc::new(I::build(&self.context, &self.rows, &subset))
        })
    }

    /// How many rows there are.
    pub(crate) fn len(&self) -> usize {
        self.rows.count()
    }

    fn attr(&self, row: u32, d: Dimension) -> Sym {
        I::attr(&self.context, self.rows.row(row), d)
    }

    fn partition(&self, d: Dimension) -> &Partition<I> {
        self.parts[dim_index(d)].get_or_init(|| Arc::new(self.build_partition(d)))
    }

    fn build_partition(&self, d: Dimension) -> Partition<I> {
        let mut groups: HashMap<Sym, Vec<u32>> = HashMap::new();
        for i in self.rows.positions() {
            let v = self.attr(i, d);
            if v != NONE {
                groups.entry(v).or_default().push(i);
            }
        }
        groups
            .into_iter()
            .map(|(sym, mut subset)| {
                subset.shrink_to_fit();
                let index = I::build(&self.context, &self.rows, &subset);
                (sym, (subset, index))
            })
            .collect()
    }

    /// The rows matching `filters` (those on dimensions this unit carries), or `None`
    /// when none can.
    pub(crate) fn select(&self, filters: &ResolvedFilters) -> Option<Selection<'_, I>> {
        let mut conds = Vec::new();
        for (d, sym) in filters {
            if self.unit.carries(*d) {
                conds.push((*d, (*sym)?));
            }
        }
        // Read the smallest partition; check the other conditions row by row. The index
        // over every row is built only when no condition narrows the rows (a part that
        // is always read through a partition, such as stage stays, never builds it).
        let mut best: Option<(usize, &(Vec<u32>, I))> = None;
        for (k, (d, sym)) in conds.iter().enumerate() {
            let part = self.partition(*d).get(sym)?;
            if best.is_none_or(|(_, b)| part.0.len() < b.0.len()) {
                best = Some((k, part));
            }
        }
        Some(match best {
            Some((k, (subset, index))) => {
                conds.swap_remove(k);
                Selection {
                    index,
                    rows: &self.rows,
                    context: &self.context,
                    conds,
                    subset: Some(subset),
                }
            }
            None => Selection {
                index: self.all(),
                rows: &self.rows,
                context: &self.context,
                conds: Vec::new(),
                subset: None,
            },
        })
    }

    /// Adds to `out` the values of dimension `d` among the rows matching `filters`.
    pub(crate) fn values(&self, d: Dimension, filters: &ResolvedFilters, out: &mut HashSet<Sym>) {
        if !self.unit.carries(d) {
            return;
        }
        if !filters.iter().any(|(f, _)| self.unit.carries(*f)) {
            // The values alone: a partition (an index per value) is built only when a
            // query reads one.
            let values = self.distinct[dim_index(d)].get_or_init(|| {
                Arc::new(match self.parts[dim_index(d)].get() {
                    Some(p) => p.keys().copied().collect(),
                    None => self
                        .rows
                        .positions()
                        .map(|i| self.attr(i, d))
                        .filter(|v| *v != NONE)
                        .collect(),
                })
            });
            out.extend(values.iter().copied());
            return;
        }
        let Some(sel) = self.select(filters) else {
            return;
        };
        for row in sel.subset_rows() {
            let v = self.attr(row, d);
            if sel.ok(row) && v != NONE {
                out.insert(v);
            }
        }
    }
}

impl<'a, I: KindIndex> Selection<'a, I> {
    /// What the index builds on first use (`cell`, one of its fields), built now if it
    /// was not yet, from the rows the index covers.
    pub(crate) fn lazy<T>(
        &self,
        cell: &'a OnceLock<T>,
        build: impl FnOnce(&I::Context, &I::Table, &[u32]) -> T,
    ) -> &'a T {
        cell.get_or_init(|| match self.subset {
            Some(subset) => build(self.context, self.rows, subset),
            None => {
                let all: Vec<u32> = self.rows.positions().collect();
                build(self.context, self.rows, &all)
            }
        })
    }

    /// Whether every row of the index matches (no condition left to check).
    pub(crate) fn all(&self) -> bool {
        self.conds.is_empty()
    }

    /// Whether `row` matches the remaining conditions.
    pub(crate) fn ok(&self, row: u32) -> bool {
        let r = self.rows.row(row);
        self.conds
            .iter()
            .all(|(d, s)| I::attr(self.context, r, *d) == *s)
    }

    fn subset_rows(&self) -> Box<dyn Iterator<Item = u32> + '_> {
        match self.subset {
            Some(s) => Box::new(s.iter().copied()),
            None => self.rows.positions(),
        }
    }

    /// The row of an event.
    pub(crate) fn row<T: HasRow>(&self, e: &T) -> &'a I::Row {
        self.rows.row(e.row())
    }

    /// Events `r` of `ev` that match.
    pub(crate) fn count<T: HasRow>(&self, ev: &EventList<T>, r: Range<usize>) -> usize {
        if self.all() {
            return r.len();
        }
        ev.items[r].iter().filter(|e| self.ok(e.row())).count()
    }

    /// Events `r` of `ev` that match and satisfy `f`.
    pub(crate) fn count_where<T: HasRow>(
        &self,
        ev: &EventList<T>,
        r: Range<usize>,
        f: impl Fn(&T) -> bool,
    ) -> usize {
        ev.items[r]
            .iter()
            .filter(|e| self.ok(e.row()) && f(e))
            .count()
    }

    /// Sum of `f` over events `r` that match, from the prefix sums when possible.
    pub(crate) fn sum<T: HasRow>(
        &self,
        ev: &EventList<T>,
        r: Range<usize>,
        sums: &DecimalSums,
        f: impl Fn(&T) -> Decimal,
    ) -> Result<Decimal, MetricError> {
        if self.all() {
            if let Some(s) = sums.range(r.clone(), |i| f(&ev.items[i])) {
                return Ok(s);
            }
        }
        self.sum_where(ev, r, |_| true, f)
    }

    /// Sum of `f` over events `r` that match and satisfy `keep`, one by one.
    pub(crate) fn sum_where<T: HasRow>(
        &self,
        ev: &EventList<T>,
        r: Range<usize>,
        keep: impl Fn(&T) -> bool,
        f: impl Fn(&T) -> Decimal,
    ) -> Result<Decimal, MetricError> {
        let mut acc = Decimal::ZERO;
        for e in &ev.items[r] {
            if self.ok(e.row()) && keep(e) {
                acc = add(acc, f(e))?;
            }
        }
        Ok(acc)
    }

    /// Sum of the integer `f` over events `r` that match.
    pub(crate) fn int_sum<T: HasRow>(
        &self,
        ev: &EventList<T>,
        r: Range<usize>,
        sums: &IntegerSums,
        f: impl Fn(&T) -> i128,
    ) -> i128 {
        if self.all() {
            return sums.range(r, |i| f(&ev.items[i]));
        }
        ev.items[r]
            .iter()
            .filter(|e| self.ok(e.row()))
            .map(f)
            .fold(0i128, i128::saturating_add)
    }

    /// Distinct keys among the matching events `r`; `prev` gives each event's previous
    /// event with the same key (used when every event matches).
    pub(crate) fn distinct<T: HasRow>(
        &self,
        ev: &EventList<T>,
        r: Range<usize>,
        prev: &[u32],
        key: impl Fn(&T) -> Sym,
    ) -> usize {
        if self.all() {
            let lo = r.start as u32;
            return prev[r].iter().filter(|p| **p == NONE || **p < lo).count();
        }
        ev.items[r]
            .iter()
            .filter(|e| self.ok(e.row()))
            .map(key)
            .collect::<HashSet<_>>()
            .len()
    }
}
