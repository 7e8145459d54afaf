//! Parts: the rows of one unit, the index over all of them and, built on first use, one
//! index per value of each dimension; and the selection a query reads from a part.

use std::collections::{HashMap, HashSet};
use std::io;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use jiff::Timestamp;
use kpi_core::{AttributeName, Decimal, Dimension, MetricError, Window};

use super::cohort::{CohortPartition, CohortPartitions, PeriodOf, PeriodRows};
use super::dependents::{RowKey, SlotsByKey};
use super::events::{EventList, HasRow};
use super::lookups::Lookups;
use super::sums::{add, DecimalSums, IntegerSums};
use crate::attribute_columns::{AttributeColumns, Column};
use crate::dims::{dim_index, Unit, NDIMS};
use crate::long_work::GetOrBuild as _;
use crate::rows::{Slab, EMPTY};
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
    /// Whether `i` is the position of a row.
    fn holds(&self, i: u32) -> bool;
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

    fn holds(&self, i: u32) -> bool {
        (i as usize) < self.len()
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

    fn holds(&self, i: u32) -> bool {
        self.get(i).is_some()
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
    /// The value of built-in dimension `d` of `row` ([`NONE`] when it has none).
    fn attr(context: &Self::Context, row: &Self::Row, d: Dimension) -> Sym;
    /// The slot of the record whose custom attributes are the row's own (`attr.<name>`):
    /// the row's record's, or a stage entry's deal's.
    fn record_slot(rows: &Self::Table, position: u32) -> u32;
    /// The lookups the rows read their customer through (`customer.<name>`), for a unit
    /// whose rows have a customer ([`Unit::has_customer`]); `None` for the others.
    fn customer_lookups(_context: &Self::Context) -> Option<&Lookups> {
        None
    }
    /// The customer id symbol of `row` ([`NONE`]: it has none); read only for a unit whose
    /// rows have a customer.
    fn customer(_context: &Self::Context, _row: &Self::Row) -> Sym {
        NONE
    }
    /// The symbol of the campaign whose channel `row` reads through the lookups ([`NONE`]:
    /// it reads none).
    fn campaign(_context: &Self::Context, _row: &Self::Row) -> Sym {
        NONE
    }
    /// Builds now what the index otherwise builds on first use ([`Selection::lazy`]), for rows
    /// `subset` (the index's own).
    fn warm(&self, _context: &Self::Context, _rows: &Self::Table, _subset: &[u32]) {}
}

/// The dimension filters of a scope: the values resolved to symbols (`None`: a value no
/// record has), and the cohort's window ([`Dimension::Cohort`]: rows whose customer was
/// acquired in it; see [`super::cohort`]).
#[derive(Default)]
pub(crate) struct ResolvedFilters {
    pub(crate) values: Vec<(Dimension, Option<Sym>)>,
    pub(crate) cohort: Option<Window>,
}

impl ResolvedFilters {
    /// Whether no filter restricts the rows.
    pub(crate) fn is_empty(&self) -> bool {
        self.values.is_empty() && self.cohort.is_none()
    }

    /// The dimensions filtered on.
    fn dimensions(&self) -> impl Iterator<Item = Dimension> + '_ {
        self.values
            .iter()
            .map(|(d, _)| *d)
            .chain(self.cohort.map(|_| Dimension::Cohort))
    }
}

/// Per value of one dimension: the rows having it, and the index over them.
pub(crate) type Partition<I> = HashMap<Sym, (Vec<u32>, I)>;

/// A dimension's partition, built on first use.
type PartitionCell<I> = OnceLock<Arc<Partition<I>>>;

/// The values a dimension takes among a part's rows, listed on first use.
type ValuesCell = OnceLock<Arc<HashSet<Sym>>>;

/// One custom attribute as a dimension of a part: the column its values are read from
/// (the rows' own records' or their customers'), and, built on first use, one index per
/// value and the values the rows have.
struct AttributeDimension<I> {
    column: Column,
    parts: PartitionCell<I>,
    distinct: ValuesCell,
}

impl<I> AttributeDimension<I> {
    fn new(column: &Column) -> Self {
        Self {
            column: column.clone(),
            parts: OnceLock::new(),
            distinct: OnceLock::new(),
        }
    }
}

/// The rows of one unit (a record kind, deal stage exits or stays), what they read their
/// dimension values from; the index over all of them; and, built on first use, one index
/// per value of each dimension.
pub(crate) struct Part<I: KindIndex> {
    unit: Unit,
    pub(crate) rows: Arc<I::Table>,
    pub(crate) context: I::Context,
    /// The positions of the rows it covers (ascending), when not every row of `rows`: a
    /// delta's rows ([`super::delta`]).
    only: Option<Arc<[u32]>>,
    all: OnceLock<Arc<I>>,
    parts: [PartitionCell<I>; NDIMS],
    /// Per dimension, the values the rows have (computed on first use, without indexes).
    distinct: [ValuesCell; NDIMS],
    /// Per attribute some row's record (`attr.<name>`) or customer (`customer.<name>`)
    /// has had: its column, partitions and values. Every row has the value `""` of any
    /// other attribute.
    attributes: HashMap<Dimension, AttributeDimension<I>>,
    /// Its rows by each [`RowKey`], listed on first use.
    by_key: [OnceLock<Arc<SlotsByKey>>; RowKey::ALL.len()],
    /// Set once [`Warm::warm`] built what the index builds on first use.
    warmed: OnceLock<()>,
    /// Its rows by cohort (customer acquired in a window), for the windows read so far.
    cohorts: OnceLock<Box<CohortPartitions<I>>>,
}

/// The attribute dimension `make` names for the column `name` (a valid attribute name).
fn attribute(make: fn(AttributeName) -> Dimension, name: &str) -> Dimension {
    make(AttributeName::new(name).expect("stored attribute names are valid"))
}

/// A part whose index can be built ahead of the queries.
pub(crate) trait Warm: Sync {
    /// Builds the index over every row, if not yet built.
    fn warm(&self);
}

impl<I: KindIndex> Warm for Part<I> {
    fn warm(&self) {
        // Once: each index built after a write warms the parts it shares again.
        self.warmed.get_or_init(|| {
            let all = self.all();
            let subset: Vec<u32> = self.positions().collect();
            all.warm(&self.context, &self.rows, &subset);
        });
    }
}

/// Which rows a query reads: an index, and the filters it does not already apply.
pub(crate) struct Selection<'a, I: KindIndex> {
    part: &'a Part<I>,
    pub(crate) index: &'a I,
    pub(crate) rows: &'a I::Table,
    pub(crate) context: &'a I::Context,
    /// Remaining dimension = value conditions.
    conds: Vec<(Dimension, Sym)>,
    /// The cohort condition: the rows' customer acquired in this window.
    cohort: Option<Window>,
    /// The rows `index` covers, `None` for all.
    subset: Option<&'a [u32]>,
}

impl<I: KindIndex> Part<I> {
    /// The part of `unit` over `rows`, whose records' custom attributes are `own`; its
    /// index is built on first use ([`Part::all`]).
    pub(crate) fn new(
        unit: Unit,
        rows: impl Into<Arc<I::Table>>,
        context: I::Context,
        own: &AttributeColumns,
    ) -> Self {
        let rows = rows.into();
        let mut attributes: HashMap<Dimension, AttributeDimension<I>> = own
            .columns()
            .map(|(name, column)| {
                (
                    attribute(Dimension::Attribute, name),
                    AttributeDimension::new(column),
                )
            })
            .collect();
        attributes.extend(Self::customer_attributes(&context));
        Self {
            unit,
            rows,
            context,
            only: None,
            all: OnceLock::new(),
            parts: Default::default(),
            distinct: Default::default(),
            attributes,
            by_key: Default::default(),
            warmed: OnceLock::new(),
            cohorts: OnceLock::new(),
        }
    }

    /// The `customer.<name>` dimensions of the rows read through `context` (none for a
    /// unit whose rows have no customer).
    fn customer_attributes(
        context: &I::Context,
    ) -> impl Iterator<Item = (Dimension, AttributeDimension<I>)> + '_ {
        I::customer_lookups(context)
            .into_iter()
            .flat_map(|lookups| lookups.customer_attributes().columns())
            .map(|(name, column)| {
                (
                    attribute(Dimension::CustomerAttribute, name),
                    AttributeDimension::new(column),
                )
            })
    }

    /// The positions of its rows by `key`, listed now if they were not yet.
    pub(crate) fn positions_by(&self, key: RowKey) -> &SlotsByKey {
        self.by_key[key as usize].get_or_build(self.len(), || {
            Arc::new(SlotsByKey::new(|| {
                self.positions()
                    .map(|i| (key.of::<I>(&self.context, self.rows.row(i)), i))
            }))
        })
    }

    /// The key of the row at `position`.
    pub(crate) fn key_of(&self, position: u32, key: RowKey) -> Sym {
        key.of::<I>(&self.context, self.rows.row(position))
    }

    /// The record slots of its rows whose `key` is one of `keys`.
    pub(crate) fn record_slots_of(&self, key: RowKey, keys: &[Sym]) -> Vec<u32> {
        if keys.is_empty() {
            return Vec::new();
        }
        let by_key = self.positions_by(key);
        keys.iter()
            .flat_map(|k| by_key.get(*k))
            .map(|i| I::record_slot(&self.rows, *i))
            .collect()
    }

    /// The record slots (unsorted) where a custom attribute of its rows' own records
    /// differs from `earlier`'s (the same unit's part over an earlier state of the rows).
    pub(crate) fn attribute_slots_changed_since(&self, earlier: &Part<I>) -> Vec<u32> {
        let mut out = Vec::new();
        let none = Column::default();
        let dimensions: HashSet<&Dimension> = self
            .attributes
            .keys()
            .chain(earlier.attributes.keys())
            .collect();
        for d in dimensions {
            if matches!(d, Dimension::Attribute(_)) {
                let column = |part: &Part<I>| part.attributes.get(d).map(|a| a.column.clone());
                let (now, then) = (column(self), column(earlier));
                now.as_ref()
                    .unwrap_or(&none)
                    .slots_changed_since(then.as_ref().unwrap_or(&none), &mut out);
            }
        }
        out
    }

    /// Lists its rows by the customer and the campaign they read now (what a write of
    /// those changes: [`super::dependents`]).
    pub(crate) fn list_dependents(&self) {
        self.positions_by(RowKey::Customer);
        self.positions_by(RowKey::Campaign);
    }

    /// Whether the row at `position` matches `filters` (each checked row by row).
    pub(crate) fn matches(&self, position: u32, filters: &ResolvedFilters) -> bool {
        filters.values.iter().all(|(d, v)| match v {
            Some(v) if self.cells(*d).is_some() => self.value(position, *d) == *v,
            // An attribute no row has: `""` for every row.
            Some(v) => *v == EMPTY,
            None => false,
        }) && filters.cohort.is_none_or(|w| {
            super::cohort::acquired_in::<I>(&self.context, self.rows.row(position), &w)
        })
    }

    /// The index over every row, built now if it was not yet.
    pub(crate) fn all(&self) -> &I {
        self.all.get_or_build(self.len(), || {
            let subset: Vec<u32> = self.positions().collect();
            Arc::new(I::build(&self.context, &self.rows, &subset))
        })
    }

    /// How many rows there are.
    pub(crate) fn len(&self) -> usize {
        match &self.only {
            Some(positions) => positions.len(),
            None => self.rows.count(),
        }
    }

    /// The positions of its rows, ascending.
    pub(crate) fn positions(&self) -> Box<dyn Iterator<Item = u32> + '_> {
        match &self.only {
            Some(positions) => Box::new(positions.iter().copied()),
            None => self.rows.positions(),
        }
    }

    /// How many rows there are, and their positions.
    fn counted_positions(&self) -> (usize, impl Iterator<Item = u32> + '_) {
        (self.len(), self.positions())
    }

    /// The part over the rows at `positions` (ascending, among its own) alone, with the
    /// same table, context and attribute columns; nothing built.
    pub(crate) fn restricted(&self, positions: Vec<u32>) -> Self
    where
        I::Context: Clone,
    {
        Self {
            only: Some(positions.into()),
            ..self.restricted_to_all()
        }
    }

    /// The same rows, table, context and attribute columns; nothing built.
    pub(crate) fn restricted_to_all(&self) -> Self
    where
        I::Context: Clone,
    {
        Self {
            unit: self.unit,
            rows: Arc::clone(&self.rows),
            context: self.context.clone(),
            only: self.only.clone(),
            all: OnceLock::new(),
            parts: Default::default(),
            distinct: Default::default(),
            attributes: self
                .attributes
                .iter()
                .map(|(d, a)| (*d, AttributeDimension::new(&a.column)))
                .collect(),
            by_key: Default::default(),
            warmed: OnceLock::new(),
            cohorts: OnceLock::new(),
        }
    }

    /// The partitions of built-in dimensions built so far, by position in [`NDIMS`] order
    /// (for the index image).
    pub(crate) fn built_partitions(&self) -> Vec<(usize, &Partition<I>)> {
        let built = self.parts.iter().enumerate();
        built
            .filter_map(|(d, cell)| cell.get().map(|p| (d, &**p)))
            .collect()
    }

    /// The value lists of built-in dimensions listed so far (for the index image).
    pub(crate) fn listed_values(&self) -> Vec<(usize, &HashSet<Sym>)> {
        let listed = self.distinct.iter().enumerate();
        listed
            .filter_map(|(d, cell)| cell.get().map(|v| (d, &**v)))
            .collect()
    }

    /// Whether `positions` ascend and each is one of its rows.
    pub(crate) fn holds_ascending(&self, positions: &[u32]) -> bool {
        positions.windows(2).all(|w| w[0] < w[1]) && self.holds_each(&mut positions.iter().copied())
    }

    /// Takes the index over every row `read` reads (from the index image) unless one is
    /// built: readers meanwhile wait for it rather than build it too
    /// ([`super::image::fill_from_image`]).
    pub(crate) fn restore_all(&self, read: impl FnOnce() -> io::Result<I>) -> io::Result<()> {
        super::image::fill_from_image(
            &self.all,
            || read().map(Arc::new),
            || {
                let subset: Vec<u32> = self.positions().collect();
                Arc::new(I::build(&self.context, &self.rows, &subset))
            },
        )
    }

    /// Takes the partition of built-in dimension `d` (by position in [`NDIMS`] order)
    /// `read` reads, as [`Part::restore_all`] does.
    pub(crate) fn restore_partition(
        &self,
        d: usize,
        read: impl FnOnce() -> io::Result<Partition<I>>,
    ) -> io::Result<()> {
        super::image::fill_from_image(
            &self.parts[d],
            || read().map(Arc::new),
            || Arc::new(self.build_partition(Dimension::ALL[d])),
        )
    }

    /// Takes the values of built-in dimension `d` read from the index image, unless
    /// listed; and notes, once everything is read, that it is warm.
    pub(crate) fn restore_values(&self, d: usize, values: HashSet<Sym>) {
        let _ = self.distinct[d].set(Arc::new(values));
    }

    /// Takes the cohort partitions `read` reads, as [`Part::restore_all`] does.
    pub(crate) fn restore_cohorts(
        &self,
        read: impl FnOnce() -> io::Result<CohortPartitions<I>>,
    ) -> io::Result<()> {
        super::image::fill_from_image(
            &self.cohorts,
            || read().map(Box::new),
            || Box::new(CohortPartitions::new()),
        )
    }

    /// Its cohort partitions, when some were read.
    pub(crate) fn built_cohorts(&self) -> Option<&CohortPartitions<I>> {
        self.cohorts.get().map(|c| &**c)
    }

    /// Whether each position is one of its rows.
    pub(crate) fn holds_each(&self, positions: &mut dyn Iterator<Item = u32>) -> bool {
        if self.only.is_some() {
            return false;
        }
        for p in positions {
            if !self.rows.holds(p) {
                return false;
            }
        }
        true
    }

    /// Notes that what the index builds on first use was read from the index image.
    pub(crate) fn restored(&self) {
        let _ = self.warmed.set(());
    }

    /// Whether the index over every row is built.
    pub(crate) fn has_all(&self) -> bool {
        self.all.get().is_some()
    }

    /// Builds now the partitions `other` (a part of the same unit) has built.
    pub(crate) fn build_partitions_like(&self, other: &Part<I>) {
        for (i, cell) in other.parts.iter().enumerate() {
            if cell.get().is_some() {
                self.partition(Dimension::ALL[i]);
            }
        }
        for (d, a) in &other.attributes {
            if a.parts.get().is_some() && self.attributes.contains_key(d) {
                self.partition(*d);
            }
        }
        if let Some(cohorts) = other.cohorts.get() {
            if cohorts.has_by_acquisition() {
                let cohorts = self
                    .cohorts
                    .get_or_init(|| Box::new(CohortPartitions::new()));
                cohorts.by_acquisition(&self.context, &self.rows, self.counted_positions());
            }
            for w in cohorts.built_windows() {
                self.cohort_partition(w);
            }
        }
    }

    /// Whether a row other than those `skipped` says has the value `v` of dimension `d`
    /// and matches `filters` (read row by row).
    pub(crate) fn has_value_outside(
        &self,
        d: Dimension,
        v: Sym,
        filters: &ResolvedFilters,
        skipped: &dyn Fn(u32) -> bool,
    ) -> Result<bool, MetricError> {
        if filters.is_empty() {
            return Ok(self
                .positions()
                .any(|i| !skipped(i) && self.value(i, d) == v));
        }
        let Some(sel) = self.select(filters)? else {
            return Ok(false);
        };
        let found = sel
            .subset_rows()
            .any(|i| !skipped(i) && sel.ok(i) && self.value(i, d) == v);
        Ok(found)
    }

    /// The value of dimension `d` (one the unit carries) of the row at `position`: an
    /// attribute's is its value's symbol, or [`EMPTY`] when the record (or customer) has
    /// none.
    fn value(&self, position: u32, d: Dimension) -> Sym {
        let column = |d: &Dimension| self.attributes.get(d).map(|a| &a.column);
        let present = |v: Sym| if v == NONE { EMPTY } else { v };
        match d {
            Dimension::Attribute(_) => column(&d).map_or(EMPTY, |c| {
                present(c.get(I::record_slot(&self.rows, position)))
            }),
            Dimension::CustomerAttribute(_) => {
                let (Some(c), Some(lookups)) = (column(&d), I::customer_lookups(&self.context))
                else {
                    return EMPTY;
                };
                let customer = I::customer(&self.context, self.rows.row(position));
                match lookups.customer_slot(customer) {
                    Some(slot) => present(c.get(slot)),
                    None => EMPTY,
                }
            }
            d => I::attr(&self.context, self.rows.row(position), d),
        }
    }

    /// The cells of dimension `d`'s partitions and values (`None`: an attribute no row's
    /// record or customer has, whose value is `""` for every row).
    fn cells(&self, d: Dimension) -> Option<(&PartitionCell<I>, &ValuesCell)> {
        match d {
            Dimension::Attribute(_) | Dimension::CustomerAttribute(_) => {
                self.attributes.get(&d).map(|a| (&a.parts, &a.distinct))
            }
            d => Some((&self.parts[dim_index(d)], &self.distinct[dim_index(d)])),
        }
    }

    /// Refuses a dimension the unit's rows cannot carry.
    fn check_carried(&self, d: Dimension) -> Result<(), MetricError> {
        if self.unit.carries(d) {
            return Ok(());
        }
        Err(MetricError::UnsupportedDimension {
            dimension: d.name(),
            reason: format!("{} records cannot carry it", self.unit.name()),
        })
    }

    fn build_partition(&self, d: Dimension) -> Partition<I> {
        let mut groups: HashMap<Sym, Vec<u32>> = HashMap::new();
        for i in self.positions() {
            let v = self.value(i, d);
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

    /// The rows matching `filters`, or `None` when none can; an error when the unit's
    /// rows cannot carry a dimension filtered on (never ignored).
    pub(crate) fn select(
        &self,
        filters: &ResolvedFilters,
    ) -> Result<Option<Selection<'_, I>>, MetricError> {
        for d in filters.dimensions() {
            self.check_carried(d)?;
        }
        let mut conds = Vec::new();
        for (d, sym) in &filters.values {
            let Some(sym) = *sym else {
                return Ok(None);
            };
            match self.cells(*d) {
                Some(_) => conds.push((*d, sym)),
                // An attribute no row has: `""` matches every row, other values none.
                None if sym == EMPTY => {}
                None => return Ok(None),
            }
        }
        // Read the smallest partition; check the other conditions row by row. The index
        // over every row is built only when no condition narrows the rows (a part that
        // is always read through a partition, such as stage stays, never builds it).
        let mut best: Option<(usize, &(Vec<u32>, I))> = None;
        for (k, (d, sym)) in conds.iter().enumerate() {
            let Some(part) = self.partition(*d).get(sym) else {
                return Ok(None);
            };
            if best.is_none_or(|(_, b)| part.0.len() < b.0.len()) {
                best = Some((k, part));
            }
        }
        // A cohort is a partition too (kept for the first windows read), taken when it is
        // the smallest; otherwise it is checked row by row.
        let cohort = filters.cohort.and_then(|w| self.cohort_partition(w));
        if let Some((subset, index)) = cohort {
            if best.is_none_or(|(_, b)| subset.len() < b.0.len()) {
                return Ok(Some(Selection {
                    part: self,
                    index,
                    rows: &self.rows,
                    context: &self.context,
                    conds,
                    cohort: None,
                    subset: Some(subset),
                }));
            }
        }
        Ok(Some(match best {
            Some((k, (subset, index))) => {
                conds.swap_remove(k);
                Selection {
                    part: self,
                    index,
                    rows: &self.rows,
                    context: &self.context,
                    conds,
                    cohort: filters.cohort,
                    subset: Some(subset),
                }
            }
            None => Selection {
                part: self,
                index: self.all(),
                rows: &self.rows,
                context: &self.context,
                conds: Vec::new(),
                cohort: filters.cohort,
                subset: None,
            },
        }))
    }

    /// The rows whose customer was acquired in `w` and their index, built on the window's
    /// first read; `None` when the part keeps no more cohorts.
    fn cohort_partition(&self, w: Window) -> Option<&CohortPartition<I>> {
        self.cohorts
            .get_or_init(|| Box::new(CohortPartitions::new()))
            .get(w, &self.context, &self.rows, self.counted_positions())
    }

    fn partition(&self, d: Dimension) -> &Partition<I> {
        let (parts, _) = self.cells(d).expect("a dimension some row has");
        parts.get_or_build(self.len(), || Arc::new(self.build_partition(d)))
    }

    /// Adds to `out` the values of dimension `d` among the rows matching `filters`; an
    /// error when the unit's rows cannot carry `d` or a dimension filtered on.
    pub(crate) fn values(
        &self,
        d: Dimension,
        filters: &ResolvedFilters,
        out: &mut HashSet<Sym>,
    ) -> Result<(), MetricError> {
        self.check_carried(d)?;
        if filters.is_empty() {
            let Some((parts, distinct)) = self.cells(d) else {
                // An attribute no row has: every row has `""`.
                if self.len() > 0 {
                    out.insert(EMPTY);
                }
                return Ok(());
            };
            // The values alone: a partition (an index per value) is built only when a
            // query reads one.
            let values = distinct.get_or_build(self.len(), || {
                Arc::new(match parts.get() {
                    Some(p) => p.keys().copied().collect(),
                    None => self
                        .positions()
                        .map(|i| self.value(i, d))
                        .filter(|v| *v != NONE)
                        .collect(),
                })
            });
            out.extend(values.iter().copied());
            return Ok(());
        }
        let Some(sel) = self.select(filters)? else {
            return Ok(());
        };
        for row in sel.subset_rows() {
            let v = self.value(row, d);
            if sel.ok(row) && v != NONE {
                out.insert(v);
            }
        }
        Ok(())
    }
}

impl<I: KindIndex> Part<I> {
    /// Adds to `out` the acquisition instants of the customers of its rows matching
    /// `filters` (a row's each time, unsorted); an error when a filter's dimension is not
    /// carried.
    pub(crate) fn acquisitions(
        &self,
        filters: &ResolvedFilters,
        out: &mut Vec<Timestamp>,
    ) -> Result<(), MetricError> {
        self.check_carried(Dimension::Cohort)?;
        if filters.is_empty() {
            // Every row: no index needed (a part over every current row after a write
            // builds none for this).
            for i in self.positions() {
                out.extend(super::cohort::acquired::<I>(
                    &self.context,
                    self.rows.row(i),
                ));
            }
            return Ok(());
        }
        let Some(sel) = self.select(filters)? else {
            return Ok(());
        };
        for row in sel.subset_rows() {
            if sel.ok(row) {
                out.extend(super::cohort::acquired::<I>(
                    &self.context,
                    self.rows.row(row),
                ));
            }
        }
        Ok(())
    }

    /// The cohort periods (`period_of`) of the customers of its rows matching `filters`,
    /// each with how many rows it holds, ascending. With no filter, from its rows sorted by
    /// acquisition (kept for cohort filters too: [`CohortPartitions`]).
    pub(crate) fn cohort_periods(
        &self,
        filters: &ResolvedFilters,
        period_of: PeriodOf<'_>,
    ) -> Result<Vec<PeriodRows>, MetricError> {
        self.check_carried(Dimension::Cohort)?;
        if filters.is_empty() {
            let sorted = self
                .cohorts
                .get_or_init(|| Box::new(CohortPartitions::new()))
                .by_acquisition(&self.context, &self.rows, self.counted_positions());
            return super::cohort::cut(sorted, |(t, _)| *t, period_of);
        }
        let mut instants = Vec::new();
        self.acquisitions(filters, &mut instants)?;
        instants.sort_unstable();
        super::cohort::cut(&instants, |t| *t, period_of)
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
        let rows = self.subset.map_or_else(|| self.part.len(), <[u32]>::len);
        cell.get_or_build(rows, || match self.subset {
            Some(subset) => build(self.context, self.rows, subset),
            None => {
                let all: Vec<u32> = self.part.positions().collect();
                build(self.context, self.rows, &all)
            }
        })
    }

    /// Whether every row of the index matches (no condition left to check).
    pub(crate) fn all(&self) -> bool {
        self.conds.is_empty() && self.cohort.is_none()
    }

    /// Whether `row` matches the remaining conditions.
    pub(crate) fn ok(&self, row: u32) -> bool {
        self.conds
            .iter()
            .all(|(d, s)| self.part.value(row, *d) == *s)
            && self.cohort.is_none_or(|w| {
                super::cohort::acquired_in::<I>(self.context, self.rows.row(row), &w)
            })
    }

    fn subset_rows(&self) -> Box<dyn Iterator<Item = u32> + '_> {
        match self.subset {
            Some(s) => Box::new(s.iter().copied()),
            None => self.part.positions(),
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
