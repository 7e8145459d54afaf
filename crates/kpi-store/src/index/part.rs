//! The generic machinery of the index: interned dimension values, time-sorted event lists
//! with prefix sums, and partitions of a kind's rows by dimension value.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use jiff::Timestamp;
use kpi_core::{Decimal, Dimension, MetricError, Window};

use crate::dims::{dim_index, Unit, NDIMS};
use crate::rows::Slab;

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

/// Times per stretch of a [`Times::Packed`] list.
#[cfg(not(test))]
const TIME_STRIDE: usize = 64;
/// Small under test, so short lists span stretches.
#[cfg(test)]
const TIME_STRIDE: usize = 4;

/// The units a packed time list may count in, coarsest first (seconds, milliseconds,
/// microseconds, nanoseconds).
const TIME_UNITS: [i64; 4] = [1_000_000_000, 1_000_000, 1_000, 1];

/// Sorted event times. Packed when every time fits `i64` nanoseconds since 1970 (the
/// years 1678 to 2261) and each stretch of [`TIME_STRIDE`] times spans fewer than 2^32
/// units (136 years of whole seconds, 49 days of milliseconds): 4 bytes a time instead
/// of 16. Else `i64` nanoseconds when every time fits; else timestamps. Each form exact.
pub(crate) enum Times {
    /// Time `i` is `base[i / TIME_STRIDE] + off[i] × unit` nanoseconds since 1970.
    Packed {
        unit: i64,
        base: Vec<i64>,
        off: Vec<u32>,
    },
    /// Nanoseconds since 1970-01-01T00:00:00Z.
    Nanos(Vec<i64>),
    /// Timestamps, when some time lies outside the range of `i64` nanoseconds.
    Full(Vec<Timestamp>),
}

impl Times {
    /// Sorted `times`, narrow when every one fits.
    pub(crate) fn new(times: Vec<Timestamp>) -> Self {
        let nanos: Option<Vec<i64>> = times
            .iter()
            .map(|t| i64::try_from(t.as_nanosecond()).ok())
            .collect();
        match nanos {
            Some(n) => Self::nanos(n.len(), |i| n[i]),
            None => Times::Full(times),
        }
    }

    /// The `n` sorted times `time(i)` (nanoseconds since 1970), packed when they fit.
    fn nanos(n: usize, time: impl Fn(usize) -> i64) -> Self {
        let mut unit = 0;
        for i in 0..n {
            while time(i) % TIME_UNITS[unit] != 0 {
                unit += 1;
            }
        }
        let unit = TIME_UNITS[unit];
        let mut base: Vec<i64> = Vec::with_capacity(n / TIME_STRIDE + 1);
        let mut off = Vec::with_capacity(n);
        for i in 0..n {
            let t = time(i);
            if i % TIME_STRIDE == 0 {
                base.push(t);
            }
            let steps = (i128::from(t) - i128::from(base[i / TIME_STRIDE])) / i128::from(unit);
            match u32::try_from(steps) {
                Ok(o) => off.push(o),
                Err(_) => return Times::Nanos((0..n).map(time).collect()),
            }
        }
        Times::Packed { unit, base, off }
    }

    /// How many times are strictly before `t`.
    pub(crate) fn before(&self, t: Timestamp) -> usize {
        let n = match self {
            Times::Full(v) => return v.partition_point(|x| *x < t),
            Times::Nanos(v) => v.len(),
            Times::Packed { off, .. } => off.len(),
        };
        let Ok(t) = i64::try_from(t.as_nanosecond()) else {
            // Beyond every stored time, or before every one.
            return if t.as_nanosecond() > 0 { n } else { 0 };
        };
        match self {
            Times::Packed { unit, base, off } => {
                // Stretches from `k` on start at or after `t`; every time of the ones
                // before `k - 1` precedes the start of `k - 1`, so precedes `t`.
                let k = base.partition_point(|b| *b < t);
                if k == 0 {
                    return 0;
                }
                let from = (k - 1) * TIME_STRIDE;
                let stretch = &off[from..off.len().min(from + TIME_STRIDE)];
                // base + o × unit < t  ⟺  o < ⌈(t − base) / unit⌉ (t − base > 0).
                let steps = (i128::from(t) - i128::from(base[k - 1]) + i128::from(*unit) - 1)
                    / i128::from(*unit);
                from + stretch.partition_point(|o| i128::from(*o) < steps)
            }
            Times::Nanos(v) => v.partition_point(|x| *x < t),
            Times::Full(_) => unreachable!("answered above"),
        }
    }

    /// The times, in order.
    pub(crate) fn iter(&self) -> Box<dyn Iterator<Item = Timestamp> + '_> {
        match self {
            Times::Packed { unit, base, off } => {
                let unit = *unit;
                Box::new(
                    off.iter().enumerate().map(move |(i, o)| {
                        from_nanos(base[i / TIME_STRIDE] + i64::from(*o) * unit)
                    }),
                )
            }
            Times::Nanos(v) => Box::new(v.iter().map(|n| from_nanos(*n))),
            Times::Full(v) => Box::new(v.iter().copied()),
        }
    }
}

/// The timestamp of `i64` nanoseconds stored from one.
fn from_nanos(n: i64) -> Timestamp {
    Timestamp::from_nanosecond(i128::from(n)).expect("stored from a timestamp")
}

/// Events sorted by time (`t`), with their payloads (`v`) alongside.
pub(crate) struct Ev<T> {
    pub(crate) t: Times,
    pub(crate) v: Vec<T>,
}

impl<T> Ev<T> {
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
                let t = Times::nanos(narrow.len(), |i| narrow[i].0);
                let v = narrow.into_iter().map(|(_, x)| x).collect();
                Self { t, v }
            }
            Some(mut items) => {
                items.sort_unstable_by_key(|(t, _)| *t);
                let t = items.iter().map(|(t, _)| *t).collect();
                let v = items.into_iter().map(|(_, x)| x).collect();
                Self {
                    t: Times::Full(t),
                    v,
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
        self.t.before(t)
    }
}

/// Positions between two kept prefix sums of a [`DecSums`] or an [`IntSums`]: a range's
/// sum is the difference of two kept sums plus at most `2 × (SUM_STRIDE − 1)` values read
/// from the rows, so the sums cost a fraction of a byte per event instead of 8.
#[cfg(not(test))]
const SUM_STRIDE: usize = 32;
/// Small under test, so short lists have kept sums and values on both sides.
#[cfg(test)]
const SUM_STRIDE: usize = 4;

/// `r` cut at multiples of `stride`: the positions before the first whole stretch, the
/// kept sums bounding the whole stretches (`k` for position `k × stride`), the positions
/// after them.
fn cut(r: Range<usize>, stride: usize) -> [Range<usize>; 3] {
    let (first, last) = (r.start.div_ceil(stride), r.end / stride);
    if first > last {
        return [r, 0..0, 0..0];
    }
    [r.start..first * stride, first..last, last * stride..r.end]
}

/// The prefix sums of `values` kept at every `stride`-th position (the sum of the values
/// before it), including the end when it is one; `add` gives up (`None`) when a partial
/// sum would not be exact.
fn kept_sums<V, S: Copy>(
    values: impl Iterator<Item = V>,
    stride: usize,
    zero: S,
    add: impl Fn(S, V) -> Option<S>,
) -> Option<Vec<S>> {
    let mut p = Vec::with_capacity(values.size_hint().0 / stride + 1);
    let mut acc = zero;
    let mut n = 0;
    for v in values {
        if n % stride == 0 {
            p.push(acc);
        }
        acc = add(acc, v)?;
        n += 1;
    }
    if n % stride == 0 {
        p.push(acc);
    }
    Some(p)
}

/// `a + b` when exact: addition aligns to the larger scale, and a smaller result scale
/// means the sum was rounded to fit (adding zero returns the other side as it is).
fn exact_add(a: Decimal, b: Decimal) -> Option<Decimal> {
    if a.is_zero() || b.is_zero() {
        return Some(if a.is_zero() { b } else { a });
    }
    a.checked_add(b)
        .filter(|s| s.scale() >= a.scale().max(b.scale()))
}

/// The largest scale among `values` (0 for none).
fn max_scale(values: impl Iterator<Item = Decimal>) -> u32 {
    values.map(|v| v.scale()).max().unwrap_or(0)
}

/// `v` as an `i64` multiple of `10^-scale` (`scale` ≥ `v`'s), if it fits.
fn at_scale(v: Decimal, scale: u32) -> Option<i64> {
    let factor = 10i128.checked_pow(scale - v.scale())?;
    i64::try_from(v.mantissa().checked_mul(factor)?).ok()
}

/// Prefix sums of decimals, kept every [`SUM_STRIDE`] events (every event for a
/// [`Blocked`]'s sums): `i64` multiples of `10^-scale` (the largest scale among the
/// values) when every value and partial sum fits, which amounts usually do; else
/// decimals; else none, when a partial sum would not be exact: queries then add the
/// values one by one. Each form is exact.
pub(crate) struct DecSums {
    stride: usize,
    form: DecForm,
}

/// How a [`DecSums`] keeps its sums.
enum DecForm {
    /// `p[k]` × 10^-scale: the sum of the first `k × stride` values.
    Small { scale: u32, p: Vec<i64> },
    /// Decimal partial sums.
    Wide(Vec<Decimal>),
    /// No exact partial sums.
    Inexact,
}

impl DecSums {
    /// Prefix sums of `values` (read twice, never collected), kept every [`SUM_STRIDE`]:
    /// a range's sum reads the values of its ends ([`DecSums::range`]).
    pub(crate) fn new(values: impl Iterator<Item = Decimal> + Clone) -> Self {
        Self::every(SUM_STRIDE, values)
    }

    /// Prefix sums of `values` at every position: [`DecSums::range`] reads no value.
    pub(crate) fn dense(values: impl Iterator<Item = Decimal> + Clone) -> Self {
        Self::every(1, values)
    }

    fn every(stride: usize, values: impl Iterator<Item = Decimal> + Clone) -> Self {
        let scale = max_scale(values.clone());
        let small = || {
            kept_sums(values.clone(), stride, 0i64, |acc, v| {
                acc.checked_add(at_scale(v, scale)?)
            })
        };
        let form = match small() {
            Some(p) => DecForm::Small { scale, p },
            None => match kept_sums(values, stride, Decimal::ZERO, exact_add) {
                Some(p) => DecForm::Wide(p),
                None => DecForm::Inexact,
            },
        };
        Self { stride, form }
    }

    /// The exact sum of values `r`, if known; `value(i)` is the `i`-th value (read for
    /// the positions between kept sums).
    pub(crate) fn range(
        &self,
        r: Range<usize>,
        value: impl Fn(usize) -> Decimal,
    ) -> Option<Decimal> {
        let [head, kept, tail] = cut(r, self.stride);
        let ends = head.chain(tail);
        match &self.form {
            DecForm::Small { scale, p } => {
                let mut s = i128::from(p[kept.end]) - i128::from(p[kept.start]);
                for i in ends {
                    s += i128::from(at_scale(value(i), *scale)?);
                }
                Some(Decimal::from_i128_with_scale(s, *scale))
            }
            DecForm::Wide(p) => {
                let mut s = exact_add(p[kept.end], -p[kept.start])?;
                for i in ends {
                    s = exact_add(s, value(i))?;
                }
                Some(s)
            }
            DecForm::Inexact => None,
        }
    }

    /// The exact sum of the first `n` values, if known ([`DecSums::range`]).
    pub(crate) fn prefix(&self, n: usize, value: impl Fn(usize) -> Decimal) -> Option<Decimal> {
        self.range(0..n, value)
    }
}

/// A column of decimals: `i64` multiples of `10^-scale` (the largest scale among them)
/// when every value fits (8 bytes a value instead of 16), else decimals. Both exact.
pub(crate) enum DecCol {
    /// `v[i]` × 10^-scale.
    Small { scale: u32, v: Vec<i64> },
    /// The decimals.
    Wide(Vec<Decimal>),
}

impl DecCol {
    /// The column of `values` (read twice).
    pub(crate) fn new(values: impl Iterator<Item = Decimal> + Clone) -> Self {
        let scale = max_scale(values.clone());
        let small: Option<Vec<i64>> = values.clone().map(|v| at_scale(v, scale)).collect();
        match small {
            Some(v) => DecCol::Small { scale, v },
            None => DecCol::Wide(values.collect()),
        }
    }

    /// The value at `i`.
    pub(crate) fn get(&self, i: usize) -> Decimal {
        match self {
            DecCol::Small { scale, v } => Decimal::from_i128_with_scale(i128::from(v[i]), *scale),
            DecCol::Wide(v) => v[i],
        }
    }
}

/// Prefix sums of integers (nanoseconds, message counts), kept every [`SUM_STRIDE`]
/// events as `i128` (sums of durations outgrow `i64` nanoseconds within a few thousand
/// events); saturating.
pub(crate) struct IntSums {
    /// `p[k]`: the sum of the first `k × SUM_STRIDE` values.
    p: Vec<i128>,
}

impl IntSums {
    /// Prefix sums of `values`.
    pub(crate) fn new(values: impl Iterator<Item = i128>) -> Self {
        let p = kept_sums(values, SUM_STRIDE, 0i128, |acc, v| {
            Some(acc.saturating_add(v))
        })
        .expect("saturating sums always add");
        IntSums { p }
    }

    /// The sum of values `r`; `value(i)` is the `i`-th value (read for the positions
    /// between kept sums).
    pub(crate) fn range(&self, r: Range<usize>, value: impl Fn(usize) -> i128) -> i128 {
        let [head, kept, tail] = cut(r, SUM_STRIDE);
        head.chain(tail)
            .map(value)
            .fold(self.p[kept.end] - self.p[kept.start], i128::saturating_add)
    }
}

/// For each event, the position of the previous event with the same key (or [`NONE`]).
pub(crate) fn previous_same<T: HasRow>(ev: &Ev<T>, key: impl Fn(u32) -> Sym) -> Vec<u32> {
    let mut last: HashMap<Sym, u32> = HashMap::new();
    ev.v.iter()
        .enumerate()
        .map(|(i, e)| {
            let i = u32::try_from(i).expect("fewer than 2^32 events");
            last.insert(key(e.row()), i).unwrap_or(NONE)
        })
        .collect()
}

/// The overflow error of a sum of stored amounts.
pub(crate) fn overflow() -> MetricError {
    MetricError::Overflow("a sum of stored amounts".into())
}

/// Adds exactly or reports overflow.
pub(crate) fn add(acc: Decimal, x: Decimal) -> Result<Decimal, MetricError> {
    acc.checked_add(x).ok_or_else(overflow)
}

/// The rows a part reads, by position.
pub(crate) trait Table: Send + Sync {
    /// A row.
    type Row;
    /// The row at position `i` (one of [`Table::positions`]).
    fn row(&self, i: u32) -> &Self::Row;
    /// The positions of the rows, ascending.
    fn positions(&self) -> Box<dyn Iterator<Item = u32> + '_>;
    /// How many rows there are.
    fn count(&self) -> usize;
}

/// Rows converted for the index, at positions `0..len`.
impl<R: Send + Sync> Table for Vec<R> {
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
impl<R: Send + Sync> Table for Slab<R> {
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
pub(crate) trait Ix: Sized + Send + Sync {
    /// The unit's row: what the index is built from, with the keys its dimension values
    /// are read through (not the values: rows carry no copies of what they inherit).
    type Row: Send + Sync;
    /// Where the rows are.
    type Rows: Table<Row = Self::Row>;
    /// What rows read their inherited fields and dimension values from (their customers,
    /// campaigns or deals), shared by every part built at the same time.
    type Ctx: Send + Sync;
    /// Builds the index of rows `subset` (ascending positions in `rows`).
    fn build(ctx: &Self::Ctx, rows: &Self::Rows, subset: &[u32]) -> Self;
    /// The value of dimension `d` of `row` ([`NONE`] when it has none).
    fn attr(ctx: &Self::Ctx, row: &Self::Row, d: Dimension) -> Sym;
    /// Builds now what the index otherwise builds on first use ([`Sel::lazy`]), for rows
    /// `subset` (the index's own).
    fn warm(&self, _ctx: &Self::Ctx, _rows: &Self::Rows, _subset: &[u32]) {}
}

/// The dimension filters of a scope, resolved to symbols (`None`: a value no record has).
pub(crate) type Resolved = Vec<(Dimension, Option<Sym>)>;

/// Per value of one dimension: the rows having it, and the index over them.
type Partition<I> = HashMap<Sym, (Vec<u32>, I)>;

/// The dimensions a row may read through its customer (a purchase's owner is its
/// customer's): what [`Part::refit`] does not keep.
const VIA_CUSTOMER: [Dimension; 3] = [Dimension::Owner, Dimension::Source, Dimension::Segment];

/// The rows of one unit (a record kind, deal stage exits or stays), what they read their
/// dimension values from; the index over all of them; and, built on first use, one index
/// per value of each dimension. Each is behind an `Arc`, so a part refit to new
/// customers ([`Part::refit`]) shares what they do not change.
pub(crate) struct Part<I: Ix> {
    unit: Unit,
    pub(crate) rows: Arc<I::Rows>,
    pub(crate) ctx: I::Ctx,
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

impl<I: Ix> Warm for Part<I> {
    fn warm(&self) {
        let all = self.all();
        let subset: Vec<u32> = self.rows.positions().collect();
        all.warm(&self.ctx, &self.rows, &subset);
    }
}

/// Which rows a query reads: an index, and the filters it does not already apply.
pub(crate) struct Sel<'a, I: Ix> {
    pub(crate) ix: &'a I,
    pub(crate) rows: &'a I::Rows,
    pub(crate) ctx: &'a I::Ctx,
    /// Remaining dimension = value conditions.
    conds: Vec<(Dimension, Sym)>,
    /// The rows `ix` covers, `None` for all.
    subset: Option<&'a [u32]>,
}

impl<I: Ix> Part<I> {
    /// The part of `unit` over `rows`; its index is built on first use ([`Part::all`]).
    pub(crate) fn new(unit: Unit, rows: impl Into<Arc<I::Rows>>, ctx: I::Ctx) -> Self {
        let rows = rows.into();
        Self {
            unit,
            rows,
            ctx,
            all: OnceLock::new(),
            parts: Default::default(),
            distinct: Default::default(),
        }
    }

    /// The same rows read through `ctx`, whose customers changed (nothing else it reads
    /// did): the index over every row and the partitions by dimensions no row reads
    /// through its customer are shared; the rest is rebuilt on first use, and what an
    /// index derives from customers is rebuilt when first read through the new lookups
    /// (`ByCustomers`).
    pub(crate) fn refit(&self, ctx: I::Ctx) -> Self {
        Self {
            unit: self.unit,
            rows: Arc::clone(&self.rows),
            ctx,
            all: shared(&self.all),
            parts: not_via_customer(&self.parts),
            distinct: not_via_customer(&self.distinct),
        }
    }

    /// The index over every row, built now if it was not yet.
    pub(crate) fn all(&self) -> &I {
        self.all.get_or_init(|| {
            let subset: Vec<u32> = self.rows.positions().collect();
            Arc::new(I::build(&self.ctx, &self.rows, &subset))
        })
    }

    /// How many rows there are.
    pub(crate) fn len(&self) -> usize {
        self.rows.count()
    }

    fn attr(&self, row: u32, d: Dimension) -> Sym {
        I::attr(&self.ctx, self.rows.row(row), d)
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
                let ix = I::build(&self.ctx, &self.rows, &subset);
                (sym, (subset, ix))
            })
            .collect()
    }

    /// The rows matching `filters` (those on dimensions this unit carries), or `None`
    /// when none can.
    pub(crate) fn select(&self, filters: &Resolved) -> Option<Sel<'_, I>> {
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
            Some((k, (subset, ix))) => {
                conds.swap_remove(k);
                Sel {
                    ix,
                    rows: &self.rows,
                    ctx: &self.ctx,
                    conds,
                    subset: Some(subset),
                }
            }
            None => Sel {
                ix: self.all(),
                rows: &self.rows,
                ctx: &self.ctx,
                conds: Vec::new(),
                subset: None,
            },
        })
    }

    /// Adds to `out` the values of dimension `d` among the rows matching `filters`.
    pub(crate) fn values(&self, d: Dimension, filters: &Resolved, out: &mut HashSet<Sym>) {
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

impl<'a, I: Ix> Sel<'a, I> {
    /// What the index builds on first use (`cell`, one of its fields), built now if it
    /// was not yet, from the rows the index covers.
    pub(crate) fn lazy<T>(
        &self,
        cell: &'a OnceLock<T>,
        build: impl FnOnce(&I::Ctx, &I::Rows, &[u32]) -> T,
    ) -> &'a T {
        cell.get_or_init(|| match self.subset {
            Some(subset) => build(self.ctx, self.rows, subset),
            None => {
                let all: Vec<u32> = self.rows.positions().collect();
                build(self.ctx, self.rows, &all)
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
            .all(|(d, s)| I::attr(self.ctx, r, *d) == *s)
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
    pub(crate) fn count<T: HasRow>(&self, ev: &Ev<T>, r: Range<usize>) -> usize {
        if self.all() {
            return r.len();
        }
        ev.v[r].iter().filter(|e| self.ok(e.row())).count()
    }

    /// Events `r` of `ev` that match and satisfy `f`.
    pub(crate) fn count_where<T: HasRow>(
        &self,
        ev: &Ev<T>,
        r: Range<usize>,
        f: impl Fn(&T) -> bool,
    ) -> usize {
        ev.v[r].iter().filter(|e| self.ok(e.row()) && f(e)).count()
    }

    /// Sum of `f` over events `r` that match, from the prefix sums when possible.
    pub(crate) fn sum<T: HasRow>(
        &self,
        ev: &Ev<T>,
        r: Range<usize>,
        sums: &DecSums,
        f: impl Fn(&T) -> Decimal,
    ) -> Result<Decimal, MetricError> {
        if self.all() {
            if let Some(s) = sums.range(r.clone(), |i| f(&ev.v[i])) {
                return Ok(s);
            }
        }
        self.sum_where(ev, r, |_| true, f)
    }

    /// Sum of `f` over events `r` that match and satisfy `keep`, one by one.
    pub(crate) fn sum_where<T: HasRow>(
        &self,
        ev: &Ev<T>,
        r: Range<usize>,
        keep: impl Fn(&T) -> bool,
        f: impl Fn(&T) -> Decimal,
    ) -> Result<Decimal, MetricError> {
        let mut acc = Decimal::ZERO;
        for e in &ev.v[r] {
            if self.ok(e.row()) && keep(e) {
                acc = add(acc, f(e))?;
            }
        }
        Ok(acc)
    }

    /// Sum of the integer `f` over events `r` that match.
    pub(crate) fn int_sum<T: HasRow>(
        &self,
        ev: &Ev<T>,
        r: Range<usize>,
        sums: &IntSums,
        f: impl Fn(&T) -> i128,
    ) -> i128 {
        if self.all() {
            return sums.range(r, |i| f(&ev.v[i]));
        }
        ev.v[r]
            .iter()
            .filter(|e| self.ok(e.row()))
            .map(f)
            .fold(0i128, i128::saturating_add)
    }

    /// Distinct keys among the matching events `r`; `prev` gives each event's previous
    /// event with the same key (used when every event matches).
    pub(crate) fn distinct<T: HasRow>(
        &self,
        ev: &Ev<T>,
        r: Range<usize>,
        prev: &[u32],
        key: impl Fn(&T) -> Sym,
    ) -> usize {
        if self.all() {
            let lo = r.start as u32;
            return prev[r].iter().filter(|p| **p == NONE || **p < lo).count();
        }
        ev.v[r]
            .iter()
            .filter(|e| self.ok(e.row()))
            .map(key)
            .collect::<HashSet<_>>()
            .len()
    }
}

/// Positions per block of [`Blocked`] (tiny under test, so small datasets span blocks).
#[cfg(not(test))]
const BLOCK: usize = 256;
#[cfg(test)]
const BLOCK: usize = 4;

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
enum KeyCol {
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
    keys: KeyCol,
    /// Per value column: prefix sums of the values in each block's sorted-key order.
    sums: Vec<DecSums>,
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
            (KeyCol::Narrow(k), order)
        } else {
            let (k, order) = Keys::new(n, rank);
            (KeyCol::Wide(k), order)
        };
        let sums = columns
            .iter()
            .map(|c| DecSums::dense(order.iter().map(|i| c(*i as usize))))
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
            KeyCol::Narrow(k) => k.split(r, lo.map(narrow_bound), hi.map(narrow_bound)),
            KeyCol::Wide(k) => k.split(r, lo, hi),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every range of `values` summed by `sums` (reading `values` between kept sums).
    fn ranges(sums: &DecSums, values: &[Decimal]) -> Vec<Option<Decimal>> {
        let mut out = Vec::new();
        for start in 0..=values.len() {
            for end in start..=values.len() {
                out.push(sums.range(start..end, |i| {
                    assert!((start..end).contains(&i), "{i} read for {start}..{end}");
                    values[i]
                }));
            }
        }
        out
    }

    /// Every range's sum added one by one.
    fn passes(values: &[Decimal]) -> Vec<Option<Decimal>> {
        let mut out = Vec::new();
        for start in 0..=values.len() {
            for end in start..=values.len() {
                out.push(Some(values[start..end].iter().sum()));
            }
        }
        out
    }

    #[test]
    fn prefix_sums_give_up_rather_than_round() {
        let exact: Vec<Decimal> = (0..23)
            .map(|i| Decimal::new(i * 37 % 11 - 5, (i % 3) as u32))
            .collect();
        for sums in [
            DecSums::new(exact.iter().copied()),
            DecSums::dense(exact.iter().copied()),
        ] {
            assert!(matches!(sums.form, DecForm::Small { scale: 2, .. }));
            assert_eq!(ranges(&sums, &exact), passes(&exact));
        }
        // Too wide for i64 at scale 2, still exact as decimals.
        let wide: Vec<Decimal> = (0..11)
            .map(|i| match i % 3 {
                0 => Decimal::new(i64::MAX, 0),
                1 => Decimal::new(-i64::MAX, 0),
                _ => Decimal::new(i, 2),
            })
            .collect();
        let sums = DecSums::new(wide.iter().copied());
        assert!(matches!(sums.form, DecForm::Wide(_)));
        assert_eq!(ranges(&sums, &wide), passes(&wide));
        assert_eq!(sums.range(0..3, |i| wide[i]), Some(Decimal::new(2, 2)));
        // 10^28 + 0.5 needs a mantissa of 10^29 + 5, beyond 96 bits: it would be rounded.
        let big = Decimal::from_i128_with_scale(10i128.pow(28), 0);
        let inexact = [big, Decimal::new(5, 1)];
        let sums = DecSums::new(inexact.iter().copied());
        assert_eq!(sums.range(0..2, |i| inexact[i]), None);
        let overflow = [Decimal::MAX, Decimal::ONE];
        let sums = DecSums::new(overflow.iter().copied());
        assert_eq!(sums.prefix(2, |i| overflow[i]), None);
        // A range between kept sums whose values alone are not exact.
        let head = [Decimal::new(1, 1), big, Decimal::new(5, 1), -big];
        let sums = DecSums::new(head.iter().chain(&[Decimal::ZERO; 5]).copied());
        assert_eq!(sums.range(0..3, |i| head[i]), None);
    }

    #[test]
    fn decimal_columns_are_exact_in_both_forms() {
        let small = [
            Decimal::new(-5, 0),
            Decimal::new(125, 3),
            Decimal::new(i64::MAX / 10_000, 4),
        ];
        let col = DecCol::new(small.iter().copied());
        assert!(matches!(col, DecCol::Small { scale: 4, .. }));
        for (i, v) in small.iter().enumerate() {
            assert_eq!(col.get(i), *v);
        }
        let wide = [
            Decimal::new(1, 0),
            Decimal::new(i64::MAX, 0),
            Decimal::new(1, 1),
        ];
        let col = DecCol::new(wide.iter().copied());
        assert!(matches!(col, DecCol::Wide(_)));
        for (i, v) in wide.iter().enumerate() {
            assert_eq!(col.get(i), *v);
        }
    }

    #[test]
    fn integer_prefix_sums_are_exact() {
        let day = 86_400_000_000_000i128;
        // Durations of a few days, their totals beyond i64; one value beyond i64.
        let mut values: Vec<i128> = (0..300).map(|i| (i % 7 - 2) * day * 10).collect();
        values[130] = i128::from(i64::MAX) * 4;
        let sums = IntSums::new(values.iter().copied());
        for start in 0..=values.len() {
            for end in start..=values.len() {
                let read = |i: usize| {
                    assert!((start..end).contains(&i), "{i} read for {start}..{end}");
                    values[i]
                };
                assert_eq!(
                    sums.range(start..end, read),
                    values[start..end].iter().sum::<i128>(),
                    "{start}..{end}"
                );
            }
        }
    }

    #[test]
    fn event_times_count_exactly_in_every_form() {
        let ts = |s: &str| -> Timestamp { s.parse().unwrap() };
        let at = |n: i128| Timestamp::from_nanosecond(n).unwrap();
        let base = ts("2024-01-01T00:00:00Z").as_nanosecond();
        let sec = 1_000_000_000i128;
        // Whole seconds (with ties, before and after 1970), milliseconds, nanoseconds
        // within 4 s per stretch, nanoseconds over years, beyond i64 nanoseconds.
        let seconds: Vec<Timestamp> = (0..23)
            .map(|i| at((i * 7 % 5 - 2) * sec * 86_400 * 400 + (i / 3) * sec))
            .collect();
        let millis: Vec<Timestamp> = (0..23).map(|i| at(base + (i % 9) * 1_000_000)).collect();
        let nanos: Vec<Timestamp> = (0..23).map(|i| at(base + (i % 7) * 3 + i)).collect();
        let years = [
            "2024-01-01T00:00:00Z",
            "2024-01-01T00:00:00.000000001Z",
            "1970-01-01T00:00:00Z",
            "2261-12-31T23:59:59Z",
        ]
        .map(ts)
        .to_vec();
        let far = [
            "2024-01-01T00:00:00Z",
            "9000-01-01T00:00:00Z",
            "1970-06-01T00:00:00Z",
        ]
        .map(ts)
        .to_vec();
        let extremes = [
            "1000-01-01T00:00:00Z",
            "1969-01-01T00:00:00Z",
            "2262-06-01T00:00:00Z",
            "9999-01-01T00:00:00Z",
        ]
        .map(ts);
        for (times, form) in [
            (seconds, "packed 1000000000"),
            (millis, "packed 1000000"),
            (nanos, "packed 1"),
            (years, "nanos"),
            (far, "full"),
        ] {
            let ev = Ev::collect(times.len(), times.iter().map(|t| (*t, ())));
            let got = match &ev.t {
                Times::Packed { unit, .. } => format!("packed {unit}"),
                Times::Nanos(_) => "nanos".into(),
                Times::Full(_) => "full".into(),
            };
            assert_eq!(got, form);
            let mut sorted = times.clone();
            sorted.sort();
            assert_eq!(ev.t.iter().collect::<Vec<_>>(), sorted);
            let near = sorted.iter().flat_map(|t| {
                let n = t.as_nanosecond();
                [n - 1, n, n + 1].map(|n| Timestamp::from_nanosecond(n).unwrap_or(*t))
            });
            for b in near.chain(extremes) {
                assert_eq!(
                    ev.before(b),
                    sorted.iter().filter(|t| **t < b).count(),
                    "{form}: {b}"
                );
            }
        }
    }

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
            assert_eq!(matches!(b.keys, KeyCol::Narrow(_)), narrow);
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
        assert!(matches!(b.keys, KeyCol::Narrow(_)));
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
