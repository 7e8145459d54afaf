//! Incremental maintenance: a part after writes is a *base* (the part as last built, over
//! the rows of its time, which it keeps) plus a *delta*: the base's rows that writes have
//! since removed or replaced, and the rows written since, each an index of a few rows.
//!
//! Rows are compared slot by slot in the chunks changed since the previous index
//! ([`Slab::slots_changed_since`]: a write copies the chunk of rows it changes, so every
//! chunk the previous index still shares is unchanged), and the slots of the previous
//! index's delta stay in it ([`LayeredPart::changed_since`]): a row that differs, or its
//! record's custom attributes, is counted as removed (the base's) and added (today's); a
//! record written again unchanged changes nothing. So an index after a write costs what
//! that write changed, not what every write since the base did.
//!
//! - A measure additive over rows (a count or sum over a window, a point-in-time count or
//!   sum: each row adds its own share, read through the same context) is
//!   `base − removed + added`, each read by the part's own code ([`additive`]).
//! - Any other (a distinct count, a count of keys with two rows or more) is read from the
//!   part over every current row, built once on its first such read
//!   ([`LayeredPart::measure`]).
//! - Once the delta covers more than [`FOLD_FRACTION`] of the base's rows, the background
//!   warm-up builds that part over every current row (with the partitions the base had
//!   built) and the next index takes it as its base; an index already published never
//!   changes, so one request reads one state. A delta larger than half the base (and a
//!   few chunks) is folded at once: the part is built anew on its next read.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use jiff::Timestamp;
use kpi_core::{Decimal, Dimension, Measure, MetricError};

use super::cohort::{PeriodOf, PeriodRows};
use super::dependents::RowKey;
use super::part::{KindIndex, Part, ResolvedFilters, Warm};
use super::sums::add;
use crate::rows::Slab;
#[cfg(test)]
use crate::slab::CHUNK;
use crate::symbols::{Sym, NONE};

/// The share of the base's rows past which the delta is folded in the background.
const FOLD_FRACTION: usize = 32;

/// Rows a delta may cover beyond half its base's before the part is built anew at once
/// (a tenant too small to be warmed in the background folds there).
#[cfg(not(test))]
const REBUILD_SLACK: usize = 16_384;
/// Small under test, as the slab's chunks are, so test data reaches it.
#[cfg(test)]
const REBUILD_SLACK: usize = 4 * CHUNK;

/// Whether `measure` is a sum over rows of what each row alone contributes (given the
/// rows it reads through its context: customers, campaigns, subscription classes), so
/// that a part's value is its base's, less the removed rows', plus the added rows'. The
/// others count distinct keys among rows (reps, buyers, upsold customers, paying
/// customers; repeat buyers: customers with two purchases or more), are means, or sum
/// rounded fractions (prorated quotas).
pub(crate) fn additive(measure: Measure) -> bool {
    !matches!(
        measure,
        Measure::ClosingReps
            | Measure::UpsoldCustomers
            | Measure::Buyers
            | Measure::RepeatBuyers
            | Measure::PayingCustomersAtEnd
            | Measure::MeanChurnedTenureYears
            | Measure::NewCustomerMeanFirstMrr
            // Each quota's share is a rounded fraction: the base's sum less the removed
            // shares can differ from the sum over the current rows in the last digit.
            | Measure::QuotaProrated
    )
}

/// The record slots changed since the base, ascending.
struct ChangedSlots {
    slots: Vec<u32>,
}

impl ChangedSlots {
    /// Whether the record at `slot` changed.
    fn contains(&self, slot: u32) -> bool {
        self.slots.binary_search(&slot).is_ok()
    }
}

/// Makes the part over every current row (nothing built in it).
pub(crate) type MakeCurrent<I> = Box<dyn Fn() -> Part<I> + Send + Sync>;

/// Lists the record slots of a base's rows (the part given) that read other records
/// changed since an earlier context (the context given): [`super::dependents`].
pub(crate) type Inherited<'a, I> = &'a dyn Fn(&Part<I>, &<I as KindIndex>::Context) -> Vec<u32>;

/// What changed since the base: its rows removed or replaced, the rows added, and the
/// part over every current row (made on first use).
struct Delta<I: KindIndex> {
    changed: ChangedSlots,
    removed: Part<I>,
    added: Part<I>,
    current: OnceLock<Arc<Part<I>>>,
    make_current: MakeCurrent<I>,
}

impl<I: KindIndex> Delta<I> {
    /// How many rows there are now, the base having `base` rows.
    fn base_len_after(&self, base: usize) -> usize {
        base - self.removed.len() + self.added.len()
    }

    fn current(&self) -> &Arc<Part<I>> {
        // Making it builds nothing but a stage part's entry list (long work of its own).
        self.current.get_or_init(|| Arc::new((self.make_current)()))
    }
}

/// The fold of a base and its deltas into a new base: claimed by the first warm-up that
/// finds the delta large, done once it is built; shared by the successive parts over one
/// base, so one fold runs at a time.
pub(crate) struct Fold<I: KindIndex> {
    claimed: AtomicBool,
    done: OnceLock<Arc<Part<I>>>,
}

impl<I: KindIndex> Default for Fold<I> {
    fn default() -> Self {
        Self {
            claimed: AtomicBool::new(false),
            done: OnceLock::new(),
        }
    }
}

/// A part as a base and, after writes, a delta ([the module](self)).
pub(crate) struct LayeredPart<I: KindIndex> {
    base: Arc<Part<I>>,
    delta: Option<Delta<I>>,
    fold: Arc<Fold<I>>,
}

impl<R, I> LayeredPart<I>
where
    I: KindIndex<Row = R, Table = Slab<R>> + 'static,
    I::Context: Clone,
    R: PartialEq + Send + Sync + 'static,
{
    /// The part over `current` (today's part, nothing built), as `previous`'s base (or the
    /// fold of it, when done) plus a delta: the rows that differ from the base's, and those
    /// `inherited` lists given the base and an earlier context (record slots of the base's
    /// rows that read other records changed since that context: [`super::dependents`]).
    /// The base keeps reading through its own context, the delta's added rows through
    /// `current`'s. Only what changed since `previous` is compared
    /// ([`LayeredPart::changed_since`]).
    pub(crate) fn next(
        previous: &LayeredPart<I>,
        current: Part<I>,
        inherited: Inherited<'_, I>,
    ) -> Self {
        let (base, fold) = previous.next_base();
        let (mut changed, since) = previous.changed_since(&base);
        changed.extend(current.rows.slots_changed_since(&since.rows));
        changed.extend(current.attribute_slots_changed_since(since));
        changed.extend(inherited(&base, &since.context));
        changed.sort_unstable();
        changed.dedup();
        let live = |rows: &Slab<R>| {
            let slots = changed.iter().copied();
            slots.filter(|s| rows.get(*s).is_some()).collect()
        };
        let removed = base.restricted(live(&base.rows));
        let added = current.restricted(live(&current.rows));
        let current = Arc::new(current);
        let make_current: MakeCurrent<I> = Box::new(move || current.restricted_to_all());
        Self::layered(base, fold, &changed, removed, added, make_current)
    }
}

impl<I: KindIndex> LayeredPart<I> {
    /// The base the next part starts from, with its fold: the fold of this part's base
    /// when done, else its base.
    pub(crate) fn next_base(&self) -> (Arc<Part<I>>, Arc<Fold<I>>) {
        match self.fold.done.get() {
            Some(folded) => (Arc::clone(folded), Arc::default()),
            None => (Arc::clone(&self.base), Arc::clone(&self.fold)),
        }
    }

    /// The part over every current row, with what this part built, for the index image:
    /// its base when it has no delta (a row outside a delta reads the same through the
    /// base as now), else the part over every current row, built now as a fold builds it.
    pub(crate) fn settled(&self) -> Arc<Part<I>> {
        let Some(delta) = &self.delta else {
            return Arc::clone(&self.base);
        };
        let current = delta.current();
        current.warm();
        current.build_partitions_like(&self.base);
        Arc::clone(current)
    }

    /// How many partitions of built-in dimensions its base has built.
    pub(crate) fn base_partitions(&self) -> usize {
        self.base.built_partitions().len()
    }

    /// Reads into its base (a part over every row, as a first build makes it) what the
    /// index image holds of it.
    pub(crate) fn restore_image(
        &self,
        r: &mut impl crate::snapshot::ContentSource,
    ) -> std::io::Result<()>
    where
        I: super::image::Imaged,
    {
        if self.delta.is_some() {
            return Err(crate::snapshot::invalid(
                "an image read into a part with a delta",
            ));
        }
        self.base.restore_image(r)
    }

    /// What a part over `base` (this part's next base: [`LayeredPart::next_base`]) starts
    /// its delta from: the record slots already changed since `base`, and the part whose
    /// rows and context the writes since are compared with: this part's added rows (today's
    /// rows and context, when it is `base` plus a delta), else `base` itself. So each index
    /// compares only what changed since the previous one, not since its base: a slot in the
    /// delta stays there (its removed and added rows cancel out if it was written back),
    /// and a row outside it reads the same through the base's context as through the latest.
    pub(crate) fn changed_since<'a>(&'a self, base: &'a Arc<Part<I>>) -> (Vec<u32>, &'a Part<I>) {
        match &self.delta {
            Some(delta) if Arc::ptr_eq(base, &self.base) => {
                (delta.changed.slots.clone(), &delta.added)
            }
            _ => (Vec::new(), base),
        }
    }

    /// The base, read through the delta of the records at `changed` slots (ascending; the
    /// records the rows are read through): the base's rows of them (`removed`) and today's
    /// (`added`); with none changed, the base alone; past half the base, a part built anew.
    pub(crate) fn layered(
        base: Arc<Part<I>>,
        fold: Arc<Fold<I>>,
        changed: &[u32],
        removed: Part<I>,
        added: Part<I>,
        make_current: MakeCurrent<I>,
    ) -> Self {
        if changed.is_empty() {
            return Self {
                base,
                delta: None,
                fold,
            };
        }
        if removed.len() + added.len() > base.len() / 2 + REBUILD_SLACK {
            // Too large to be worth a delta: built anew (on first read).
            return Self::built(make_current());
        }
        Self {
            base,
            delta: Some(Delta {
                changed: ChangedSlots {
                    slots: changed.to_vec(),
                },
                removed,
                added,
                current: OnceLock::new(),
                make_current,
            }),
            fold,
        }
    }

    /// A part built anew: no delta.
    pub(crate) fn built(part: Part<I>) -> Self {
        Self {
            base: Arc::new(part),
            delta: None,
            fold: Arc::default(),
        }
    }

    /// How many rows there are.
    pub(crate) fn len(&self) -> usize {
        match &self.delta {
            Some(delta) => delta.base_len_after(self.base.len()),
            None => self.base.len(),
        }
    }

    /// The value of `measure`, which `read` reads from a part: `base − removed + added`
    /// when it is [`additive`], else read from the part over every current row.
    pub(crate) fn measure(
        &self,
        measure: Measure,
        read: impl Fn(&Part<I>) -> Result<Decimal, MetricError>,
    ) -> Result<Decimal, MetricError> {
        let Some(delta) = &self.delta else {
            return read(&self.base);
        };
        if !additive(measure) {
            return read(delta.current());
        }
        let kept = read(&self.base)?
            .checked_sub(read(&delta.removed)?)
            .ok_or_else(|| MetricError::Overflow("a part's value less its removed rows".into()))?;
        add(kept, read(&delta.added)?)
    }

    /// Several sums over rows (each additive: [`additive`]) read together by `read`, as
    /// `base − removed + added` each: the parts of a mean.
    pub(crate) fn sums<const N: usize>(
        &self,
        read: impl Fn(&Part<I>) -> Result<[Decimal; N], MetricError>,
    ) -> Result<[Decimal; N], MetricError> {
        let base = read(&self.base)?;
        let Some(delta) = &self.delta else {
            return Ok(base);
        };
        let (removed, added) = (read(&delta.removed)?, read(&delta.added)?);
        let mut out = base;
        for i in 0..N {
            out[i] = base[i].checked_sub(removed[i]).ok_or_else(|| {
                MetricError::Overflow("a part's sum less its removed rows".into())
            })?;
            out[i] = add(out[i], added[i])?;
        }
        Ok(out)
    }

    /// A count of distinct keys ([`RowKey`]) among the rows `counted` says count, a key
    /// counting when at least `at_least` of its rows do; `read` reads it from a part.
    /// With a delta: the base's count, corrected for the keys of the delta's counted rows,
    /// whose rows are counted one by one (the base's through its rows by key). Of the
    /// delta's parts, only the positions `candidates` lists are checked: every row that
    /// may count (those of the window's events, through the part's own index), not every
    /// row written since the base.
    pub(crate) fn distinct(
        &self,
        read: impl Fn(&Part<I>) -> Result<Decimal, MetricError>,
        key: RowKey,
        at_least: usize,
        candidates: impl Fn(&Part<I>) -> Result<Vec<u32>, MetricError>,
        counted: impl Fn(&Part<I>, u32) -> bool,
    ) -> Result<Decimal, MetricError> {
        let Some(delta) = &self.delta else {
            return read(&self.base);
        };
        // Per key of the delta's counted rows: (removed, added) rows counted.
        let mut changed: HashMap<Sym, (usize, usize)> = HashMap::new();
        for (part, added) in [(&delta.removed, false), (&delta.added, true)] {
            for i in candidates(part)?.into_iter().filter(|i| counted(part, *i)) {
                let n = changed.entry(part.key_of(i, key)).or_default();
                if added {
                    n.1 += 1;
                } else {
                    n.0 += 1;
                }
            }
        }
        if changed.contains_key(&NONE) {
            // Rows without a key are not listed by key: read every current row.
            return read(delta.current());
        }
        let by_key = self.base.positions_by(key);
        let mut value = read(&self.base)?;
        for (k, (removed, added)) in changed {
            // Only whether the key counts before and after matters: with `at_least +
            // removed` rows counted in the base it counts both times, so counting stops
            // there (a rep's closed deals are many; one in the window is enough).
            let before = by_key
                .get(k)
                .iter()
                .filter(|i| counted(&self.base, **i))
                .take(at_least + removed)
                .count();
            let after = before + added - removed;
            let one = |n: usize| Decimal::from(u8::from(n >= at_least));
            value = add(value, one(after) - one(before))?;
        }
        Ok(value)
    }

    /// Adds to `out` the values of dimension `d` among the current rows matching `filters`
    /// ([`Part::values`]): the added rows', and the base's unless every base row having
    /// it was removed.
    pub(crate) fn values(
        &self,
        d: Dimension,
        filters: &ResolvedFilters,
        out: &mut HashSet<Sym>,
    ) -> Result<(), MetricError> {
        let Some(delta) = &self.delta else {
            return self.base.values(d, filters, out);
        };
        let (mut base, mut removed, mut added) = (HashSet::new(), HashSet::new(), HashSet::new());
        self.base.values(d, filters, &mut base)?;
        delta.removed.values(d, filters, &mut removed)?;
        delta.added.values(d, filters, &mut added)?;
        let rows = &self.base.rows;
        let changed = |position: u32| delta.changed.contains(I::record_slot(rows, position));
        for v in base {
            if added.contains(&v)
                || !removed.contains(&v)
                || self.base.has_value_outside(d, v, filters, &changed)?
            {
                out.insert(v);
            }
        }
        out.extend(added);
        Ok(())
    }
}

impl<I: KindIndex> LayeredPart<I> {
    /// Adds to `out` the acquisition instants of the customers of the current rows matching
    /// `filters` ([`Part::acquisitions`], for cohort groups): read from the part over every
    /// current row when there is a delta.
    pub(crate) fn acquisitions(
        &self,
        filters: &ResolvedFilters,
        out: &mut Vec<Timestamp>,
    ) -> Result<(), MetricError> {
        match &self.delta {
            None => self.base.acquisitions(filters, out),
            Some(delta) => delta.current().acquisitions(filters, out),
        }
    }

    /// The cohort periods of the customers of the current rows matching `filters`, each
    /// with how many rows it holds ([`Part::cohort_periods`]): a row counts alone, so with
    /// a delta a period's rows are the base's less the removed plus the added, and the
    /// part over every current row is never built for it.
    pub(crate) fn cohort_periods(
        &self,
        filters: &ResolvedFilters,
        period_of: PeriodOf<'_>,
    ) -> Result<Vec<PeriodRows>, MetricError> {
        let base = self.base.cohort_periods(filters, period_of)?;
        let Some(delta) = &self.delta else {
            return Ok(base);
        };
        let mut rows: BTreeMap<Timestamp, isize> = BTreeMap::new();
        for (part, sign) in [(&delta.removed, -1), (&delta.added, 1)] {
            for (start, n) in part.cohort_periods(filters, period_of)? {
                *rows.entry(start).or_default() += sign * n as isize;
            }
        }
        for (start, n) in base {
            *rows.entry(start).or_default() += n as isize;
        }
        Ok(rows
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(start, n)| (start, n as usize))
            .collect())
    }

    /// Lists the base's dependents now ([`Part::dependents`]), as the warm-up does.
    pub(crate) fn list_dependents(&self) {
        self.base.list_dependents();
    }

    /// With a delta past [`FOLD_FRACTION`] of the base, folds the base and the delta into
    /// a new base (unless another warm-up already does): the part over every current row,
    /// with what the base had built (the index over every row, the partitions).
    pub(crate) fn fold_if_large(&self) {
        let Some(delta) = &self.delta else {
            return;
        };
        let large = (delta.removed.len() + delta.added.len()) * FOLD_FRACTION > self.base.len();
        if large && !self.fold.claimed.swap(true, Ordering::AcqRel) {
            let current = delta.current();
            if self.base.has_all() {
                current.warm();
            }
            current.build_partitions_like(&self.base);
            current.list_dependents();
            let _ = self.fold.done.set(Arc::clone(current));
        }
    }
}

#[cfg(test)]
impl<I: KindIndex> LayeredPart<I> {
    /// Whether it is `previous`'s base plus a delta.
    pub(crate) fn layered_on(&self, previous: &LayeredPart<I>) -> bool {
        self.delta.is_some() && Arc::ptr_eq(&self.base, &previous.base)
    }

    /// Whether it has a delta.
    pub(crate) fn has_delta(&self) -> bool {
        self.delta.is_some()
    }

    /// Whether its base's index over every row is built, and how many partitions of
    /// built-in dimensions and cohorts the base has built.
    pub(crate) fn base_built(&self) -> (bool, usize) {
        let cohorts = self
            .base
            .built_cohorts()
            .map_or(0, |c| c.built_windows().len());
        (
            self.base.has_all(),
            self.base.built_partitions().len() + cohorts,
        )
    }
}

impl<I: KindIndex> Warm for LayeredPart<I> {
    /// Builds the base's index and lists its dependents (what a write of other records
    /// reads), and folds a large delta ([`LayeredPart::fold_if_large`]).
    fn warm(&self) {
        self.base.warm();
        self.base.list_dependents();
        self.fold_if_large();
    }
}

#[cfg(test)]
mod tests {
    use kpi_core::{Scope, Window};

    use super::*;
    use crate::generate::Rng;
    use crate::index::tests::{canonical, grid, RandomTenant};
    use crate::index::{Index, KindGenerations};
    use crate::record::{Lead, Record, RecordKind, Source};
    use crate::rows::Rows;

    /// Leads at slots `0..n`, created on the test grid.
    fn leads(n: usize) -> Vec<Record> {
        let grid = grid();
        (0..n)
            .map(|i| {
                Record::Lead(Lead {
                    id: format!("l{i}"),
                    created_at: grid[i % grid.len()],
                    source: Source::Sales,
                    campaign_id: None,
                    converted_at: None,
                    customer_id: None,
                    attributes: Default::default(),
                })
            })
            .collect()
    }

    fn leads_created(index: &Index) -> Decimal {
        let grid = grid();
        let window = Window::new(grid[0], grid[grid.len() - 1]).unwrap();
        index
            .measure(Measure::LeadsCreated, &Scope::new(window))
            .unwrap()
    }

    /// One delete is a delta of one row (removed: the base's; added: none), answering
    /// `base − removed + added`; a record written again unchanged is none; the warm-up
    /// folds a delta past a 32nd of the base, and the index after the next write takes the
    /// fold as its base.
    #[test]
    fn a_write_is_a_delta_of_its_rows_then_folded() {
        let records = leads(5 * CHUNK);
        let mut rows = Rows::of(records.iter().cloned());
        let mut kinds = KindGenerations::default();
        let first = Index::build(&rows, &kinds, None);
        assert!(first.leads.delta.is_none());
        assert_eq!(leads_created(&first), Decimal::from(5 * CHUNK as u64 - 5));

        // Delete the lead at slot CHUNK + 1 (the second chunk).
        assert!(rows.remove(RecordKind::Lead, CHUNK as u32 + 1));
        kinds[RecordKind::Lead as usize] += 1;
        let second = Index::build(&rows, &kinds, Some(&first));
        let delta = second.leads.delta.as_ref().expect("a delta");
        assert!(Arc::ptr_eq(&second.leads.base, &first.leads.base));
        assert_eq!((delta.removed.len(), delta.added.len()), (1, 0));
        assert!(delta.changed.contains(CHUNK as u32 + 1) && !delta.changed.contains(CHUNK as u32));
        let fresh = Index::build(&rows, &kinds, None);
        assert_eq!(leads_created(&second), leads_created(&fresh));
        // The same lead written again unchanged: no delta.
        rows.put(0, &records[0]);
        kinds[RecordKind::Lead as usize] += 1;
        let again = Index::build(&rows, &kinds, Some(&second));
        assert_eq!(again.leads.delta.as_ref().map(|d| d.removed.len()), Some(1));

        // Past a 32nd of the base: delete every other lead of the first chunk too.
        for slot in (0..CHUNK as u32).step_by(2) {
            assert!(rows.remove(RecordKind::Lead, slot));
        }
        kinds[RecordKind::Lead as usize] += 1;
        let second = Index::build(&rows, &kinds, Some(&again));
        let delta = second.leads.delta.as_ref().expect("a delta");
        assert_eq!(delta.removed.len(), 1 + CHUNK / 2);
        let fresh = Index::build(&rows, &kinds, None);
        assert_eq!(leads_created(&second), leads_created(&fresh));

        second.warm(&|| true);
        let folded = second.leads.fold.done.get().expect("folded");
        assert!(Arc::ptr_eq(folded, delta.current()));
        // Until the leads change again, the next index shares the part as it is.
        let unchanged = Index::build(&rows, &kinds, Some(&second));
        assert!(Arc::ptr_eq(&unchanged.leads, &second.leads));
        // Write the lead at slot 1 anew, created at another time.
        let mut moved = records[1].clone();
        if let Record::Lead(lead) = &mut moved {
            lead.created_at = grid()[3];
        }
        rows.put(1, &moved);
        kinds[RecordKind::Lead as usize] += 1;
        let third = Index::build(&rows, &kinds, Some(&unchanged));
        assert!(Arc::ptr_eq(&third.leads.base, folded));
        let delta = third.leads.delta.as_ref().expect("a delta");
        assert_eq!((delta.removed.len(), delta.added.len()), (1, 1));
        let fresh = Index::build(&rows, &kinds, None);
        assert_eq!(leads_created(&third), leads_created(&fresh));
    }

    /// Leads created in each window between two consecutive grid times.
    fn leads_by_window(index: &Index) -> Vec<Decimal> {
        grid()
            .windows(2)
            .map(|w| {
                let window = Window::new(w[0], w[1]).unwrap();
                let scope = Scope::new(window);
                index.measure(Measure::LeadsCreated, &scope).unwrap()
            })
            .collect()
    }

    /// Successive writes over one base: each index compares only what changed since the
    /// previous one and keeps the previous delta's slots, so it answers as an index built
    /// anew; a record written back as its base had it stays in the delta, its removed and
    /// added rows cancelling out.
    #[test]
    fn successive_writes_keep_one_base_and_the_earlier_slots() {
        let records = leads(5 * CHUNK);
        let moved = |slot: usize, at: usize| {
            let mut record = records[slot].clone();
            if let Record::Lead(lead) = &mut record {
                lead.created_at = grid()[at];
            }
            record
        };
        let far = 2 * CHUNK + 7;
        let writes = [
            (3, moved(3, 6)),
            (far, moved(far, 1)),
            (3, records[3].clone()),
        ];
        let mut rows = Rows::of(records.iter().cloned());
        let mut kinds = KindGenerations::default();
        let first = Index::build(&rows, &kinds, None);
        let mut previous = Index::build(&rows, &kinds, Some(&first));
        for (slot, record) in writes {
            rows.put(slot as u32, &record);
            kinds[RecordKind::Lead as usize] += 1;
            let next = Index::build(&rows, &kinds, Some(&previous));
            assert!(Arc::ptr_eq(&next.leads.base, &first.leads.base));
            let fresh = Index::build(&rows, &kinds, None);
            assert_eq!(leads_by_window(&next), leads_by_window(&fresh));
            previous = next;
        }
        let delta = previous.leads.delta.as_ref().expect("a delta");
        assert_eq!(delta.changed.slots, [3, far as u32]);
        assert_eq!((delta.removed.len(), delta.added.len()), (2, 2));
    }

    /// A delta past half its base (and a few chunks) is not kept: the part is built anew.
    #[test]
    fn a_delta_past_half_the_base_is_built_anew() {
        let mut rows = Rows::of(leads(2 * CHUNK));
        let mut kinds = KindGenerations::default();
        let first = Index::build(&rows, &kinds, None);
        for (i, r) in leads(8 * CHUNK).into_iter().enumerate().skip(2 * CHUNK) {
            let slot = rows.allocate(RecordKind::Lead);
            assert_eq!(slot as usize, i);
            rows.put(slot, &r);
        }
        kinds[RecordKind::Lead as usize] += 1;
        let second = Index::build(&rows, &kinds, Some(&first));
        assert!(second.leads.delta.is_none());
        assert!(!Arc::ptr_eq(&second.leads.base, &first.leads.base));
        assert_eq!(leads_created(&second), Decimal::from(8 * CHUNK as u64 - 8));
    }

    /// Distinct counts are not additive: they are read from the part over every current
    /// row, which answers as an index built anew.
    #[test]
    fn distinct_counts_read_every_current_row() {
        assert!(!additive(Measure::Buyers) && !additive(Measure::ClosingReps));
        assert!(additive(Measure::DealsWon) && additive(Measure::OpenAmount));
        let grid = grid();
        let records = RandomTenant {
            rng: Rng(5),
            grid: grid.clone(),
        }
        .records();
        let mut rows = Rows::of(records.iter().cloned());
        let mut kinds = KindGenerations::default();
        let first = Index::build(&rows, &kinds, None);
        let model = canonical(records);
        let purchase = model.of_kind(RecordKind::Purchase).count() as u32 - 1;
        assert!(rows.remove(RecordKind::Purchase, purchase));
        kinds[RecordKind::Purchase as usize] += 1;
        let second = Index::build(&rows, &kinds, Some(&first));
        assert!(second.purchases.delta.is_some());
        let fresh = Index::build(&rows, &kinds, None);
        let window = Window::new(grid[0], grid[grid.len() - 1]).unwrap();
        for m in [Measure::Buyers, Measure::RepeatBuyers, Measure::Purchases] {
            let scope = Scope::new(window);
            assert_eq!(second.measure(m, &scope), fresh.measure(m, &scope), "{m:?}");
        }
    }

    /// After a deal write the stage exits and stays listed before are their base plus the
    /// delta of the deals written, and answer as entries listed anew.
    #[test]
    fn stage_parts_follow_deal_writes_as_deltas() {
        let grid = grid();
        let records: Vec<Record> = (0..4)
            .flat_map(|seed| {
                RandomTenant {
                    rng: Rng(seed + 90),
                    grid: grid.clone(),
                }
                .records()
                .into_iter()
                .filter(|r| r.kind() == RecordKind::Deal)
                .enumerate()
                .map(move |(i, mut r)| {
                    if let Record::Deal(d) = &mut r {
                        d.id = format!("{}-{seed}-{i}", d.id);
                    }
                    r
                })
            })
            .collect();
        assert!(records.len() > 4 * CHUNK);
        let mut rows = Rows::of(records.iter().cloned());
        let mut kinds = KindGenerations::default();
        let first = Index::build(&rows, &kinds, None);
        let window = Window::new(grid[0], grid[grid.len() - 1]).unwrap();
        let scope = Scope::new(window);
        first.measure(Measure::StageExits, &scope).unwrap();
        assert!(rows.remove(RecordKind::Deal, 1));
        kinds[RecordKind::Deal as usize] += 1;
        let second = Index::build(&rows, &kinds, Some(&first));
        let stages = second.stages.get().expect("kept");
        assert!(stages.exits.delta.is_some() && stages.stays.delta.is_some());
        let fresh = Index::build(&rows, &kinds, None);
        for m in [Measure::StageExits, Measure::StageDaysTotal] {
            assert_eq!(second.measure(m, &scope), fresh.measure(m, &scope), "{m:?}");
        }
    }
}
