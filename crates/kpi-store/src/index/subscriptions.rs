//! Subscriptions: MRR movements by time (every delta, new, expansion, reactivation,
//! contraction, churn), renewals by due date, paying customers as intervals, and what
//! subscriptions are as a whole (how each starts: new, expansion or reactivation; each
//! customer's first); the measures they answer.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;
use kpi_core::{Decimal, Dimension, Measure, MetricError, Window};

use super::count;
use super::delta::LayeredPart;
use super::dependents::{RowKey, SlotsByKey};
use super::events::{rows_by_time, EventList};
use super::lookups::Lookups;
use super::part::{KindIndex, Part, ResolvedFilters};
use super::sums::{add, DecimalColumn, DecimalSums};
use crate::record::RecordKind;
use crate::rows::{OptionalPackedTime, PackedTime, Slab, SubscriptionRow};
use crate::symbols::{Sym, NONE};

/// The kinds the subscription part reads: subscriptions, and their customers (through the
/// lookups only).
pub(crate) const READS: &[RecordKind] = &[RecordKind::Subscription, RecordKind::Customer];

/// The kinds [`SubscriptionClasses`] reads.
pub(crate) const CLASSES_READ: &[RecordKind] = &[RecordKind::Subscription];

/// Whether the subscription part answers `measure`.
pub(crate) fn answers(measure: Measure) -> bool {
    matches!(
        measure,
        Measure::RenewalsDue
            | Measure::Renewed
            | Measure::MrrAtEnd
            | Measure::MrrAtStart
            | Measure::PayingCustomersAtEnd
            | Measure::NewMrr
            | Measure::ExpansionMrr
            | Measure::ReactivationMrr
            | Measure::ContractionMrr
            | Measure::ChurnedMrr
    )
}

/// A subscription's MRR history, read per the module doc of `crate::subscription`
/// (worked out from the store's row while the index is built, not kept).
pub(crate) struct SubscriptionHistory {
    pub(crate) started: Timestamp,
    pub(crate) first_mrr: Decimal,
    /// What its start is (see [`StartClass`]).
    pub(crate) class: StartClass,
    /// Changes after the starting one and before the end: (at, previous MRR, new MRR).
    pub(crate) changes: Vec<(Timestamp, Decimal, Decimal)>,
    /// The end and the MRR in effect just before it.
    pub(crate) end: Option<(Timestamp, Decimal)>,
}

impl SubscriptionHistory {
    /// The history of `s`, whose start is `class`.
    pub(crate) fn of(s: &SubscriptionRow, class: StartClass) -> Self {
        let end = crate::subscription::end_of(s);
        let mut prev = s.mrr_changes[0].1;
        let mut changes = Vec::new();
        for (at, mrr) in s.mrr_changes.iter().skip(1) {
            let at = at.get();
            if end.is_some_and(|e| at >= e) {
                break;
            }
            changes.push((at, prev, *mrr));
            prev = *mrr;
        }
        SubscriptionHistory {
            started: s.started_at.get(),
            first_mrr: s.mrr_changes[0].1,
            class,
            changes,
            end: end.map(|e| (e, prev)),
        }
    }
}

/// What a subscription's start is, per the module doc of `crate::subscription`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum StartClass {
    /// Its customer had no other subscription active when it started and never had paid
    /// MRR before.
    New,
    /// Its customer had another subscription active when it started.
    Expansion,
    /// Its customer had no other subscription active when it started but had paid MRR
    /// before (a returning customer).
    Reactivation,
}

/// What an MRR movement is (every one is also a delta of the MRR).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum MrrMoveKind {
    /// A start when the customer never had paid MRR and has no subscription active.
    New,
    /// A start beside another active subscription, or a change up.
    Expansion,
    /// A start when the customer had paid MRR before but has no subscription active.
    Reactivation,
    /// A change down.
    Contraction,
    /// A change to the same MRR.
    Unchanged,
    /// The end: the MRR in effect just before it is lost.
    Churn,
}

impl SubscriptionHistory {
    /// Its MRR movements in order: when, the signed change of MRR, and what it is.
    pub(crate) fn into_moves(self) -> impl Iterator<Item = (Timestamp, Decimal, MrrMoveKind)> {
        let start = match self.class {
            StartClass::New => MrrMoveKind::New,
            StartClass::Expansion => MrrMoveKind::Expansion,
            StartClass::Reactivation => MrrMoveKind::Reactivation,
        };
        let changes = self.changes.into_iter().map(|(at, prev, next)| {
            let kind = match next.cmp(&prev) {
                std::cmp::Ordering::Greater => MrrMoveKind::Expansion,
                std::cmp::Ordering::Less => MrrMoveKind::Contraction,
                std::cmp::Ordering::Equal => MrrMoveKind::Unchanged,
            };
            (at, next - prev, kind)
        });
        let end = self
            .end
            .map(|(at, before)| (at, -before, MrrMoveKind::Churn));
        std::iter::once((self.started, self.first_mrr, start))
            .chain(changes)
            .chain(end)
    }
}

/// The intervals `(a, b]` (`b` none: still open) in which the MRR of `s` is above 0, in
/// order: from its start, through its changes before its end, to its end (read from the
/// row as they are listed: nothing is collected).
fn paying(s: &SubscriptionRow) -> impl Iterator<Item = (Timestamp, Option<Timestamp>)> + '_ {
    let end = crate::subscription::end_of(s);
    let steps = crate::subscription::levels_of(s, end).chain(end.map(|at| (at, Decimal::ZERO)));
    let mut open: Option<Timestamp> = None;
    // `None` after the last step: the interval still open, if one is.
    steps
        .map(Some)
        .chain(std::iter::once(None))
        .filter_map(move |step| match step {
            Some((at, mrr)) => match (open, mrr > Decimal::ZERO) {
                (None, true) => {
                    open = Some(at);
                    None
                }
                (Some(a), false) => {
                    open = None;
                    (a < at).then_some((a, Some(at)))
                }
                _ => None,
            },
            None => open.take().map(|a| (a, None)),
        })
}

/// What subscriptions are as a whole, which depends on the subscriptions alone (so an
/// index keeps it while they do not change, and works it out again for the customers whose
/// subscriptions were written): per subscription slot, what its start is ([`StartClass`]:
/// expansion when another subscription of the customer was active when it started, else
/// reactivation when the customer had paid MRR before, else new); per customer id symbol,
/// the slot of their earliest subscription (earliest start, then smallest id; [`NONE`]
/// without one).
pub(crate) struct SubscriptionClasses {
    class: Vec<StartClass>,
    first: Vec<u32>,
    /// The subscriptions they were worked out from.
    rows: Arc<Slab<SubscriptionRow>>,
    /// Per customer, the slots of their subscriptions when `listed` was made, and
    /// (`relisted`) of the customers whose subscriptions were written since.
    listed: Arc<SlotsByKey>,
    relisted: HashMap<Sym, Vec<u32>>,
}

impl SubscriptionClasses {
    /// What the start of the subscription at `slot` is.
    pub(crate) fn start_class(&self, slot: u32) -> StartClass {
        self.class[slot as usize]
    }

    /// The slot of the earliest subscription of the customer with id symbol `customer`.
    pub(crate) fn first(&self, customer: Sym) -> Option<u32> {
        self.first
            .get(customer as usize)
            .copied()
            .filter(|s| *s != NONE)
    }

    /// The classes of `subscriptions`: one sort by customer and start, then one pass.
    pub(crate) fn of(subscriptions: &Arc<Slab<SubscriptionRow>>) -> Self {
        let rows = subscriptions;
        let mut order: Vec<(Sym, u32)> = rows.slots().map(|(slot, s)| (s.customer, slot)).collect();
        order.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| by_start(rows, a.1, b.1)));
        let customers = order.last().map_or(0, |(c, _)| *c as usize + 1);
        let mut class = vec![StartClass::New; rows.slot_count()];
        let mut first = vec![NONE; customers];
        let slots: Vec<u32> = order.iter().map(|(_, slot)| *slot).collect();
        for group in slots.chunk_by(|a, b| rows.row(*a).customer == rows.row(*b).customer) {
            first[rows.row(group[0]).customer as usize] = group[0];
            classify(rows, group, &mut class);
        }
        SubscriptionClasses {
            class,
            first,
            rows: Arc::clone(rows),
            listed: Arc::new(SlotsByKey::new(|| order.iter().copied())),
            relisted: HashMap::new(),
        }
    }

    /// The classes of `now`, a later state of the subscriptions these were worked out
    /// from: worked out again for the customers of the subscriptions written since (all of
    /// them when those are many).
    pub(crate) fn next(&self, now: &Arc<Slab<SubscriptionRow>>) -> Self {
        let written = now.slots_changed_since(&self.rows);
        if written.len() * 8 > now.len() + 64 || self.relisted.len() * 8 > self.first.len() + 64 {
            return Self::of(now);
        }
        let mut customers: Vec<Sym> = written
            .iter()
            .flat_map(|s| [self.rows.get(*s), now.get(*s)])
            .flatten()
            .map(|s| s.customer)
            .collect();
        customers.sort_unstable();
        customers.dedup();
        let mut class = self.class.clone();
        class.resize(now.slot_count(), StartClass::New);
        let mut first = self.first.clone();
        let mut relisted = self.relisted.clone();
        for customer in customers {
            let listed = match self.relisted.get(&customer) {
                Some(slots) => slots.as_slice(),
                None => self.listed.get(customer),
            };
            let mut slots: Vec<u32> = listed
                .iter()
                .chain(&written)
                .copied()
                .filter(|s| now.get(*s).is_some_and(|r| r.customer == customer))
                .collect();
            slots.sort_unstable_by(|a, b| by_start(now, *a, *b));
            slots.dedup();
            if first.len() <= customer as usize {
                first.resize(customer as usize + 1, NONE);
            }
            first[customer as usize] = slots.first().copied().unwrap_or(NONE);
            classify(now, &slots, &mut class);
            relisted.insert(customer, slots);
        }
        SubscriptionClasses {
            class,
            first,
            rows: Arc::clone(now),
            listed: Arc::clone(&self.listed),
            relisted,
        }
    }

    /// The slots of the subscriptions whose class differs from `earlier`'s (classes of an
    /// earlier state of the same subscriptions), among those live in both.
    pub(crate) fn slots_changed_since(&self, earlier: &SubscriptionClasses) -> Vec<u32> {
        if std::ptr::eq(self, earlier) {
            return Vec::new();
        }
        (0..self.class.len().min(earlier.class.len()) as u32)
            .filter(|s| self.class[*s as usize] != earlier.class[*s as usize])
            .collect()
    }

    /// The customers whose first MRR (their earliest subscription's first MRR) may differ
    /// from `earlier`'s (classes of an earlier state of the same subscriptions): another
    /// earliest subscription, or one written since.
    pub(crate) fn firsts_changed_since(&self, earlier: &SubscriptionClasses) -> Vec<Sym> {
        if std::ptr::eq(self, earlier) {
            return Vec::new();
        }
        let mut out: Vec<Sym> = (0..self.first.len().max(earlier.first.len()) as Sym)
            .filter(|c| self.first(*c) != earlier.first(*c))
            .collect();
        for slot in self.rows.slots_changed_since(&earlier.rows) {
            for row in [earlier.rows.get(slot), self.rows.get(slot)]
                .into_iter()
                .flatten()
            {
                out.push(row.customer);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Two subscriptions by start, then id.
fn by_start(rows: &Slab<SubscriptionRow>, a: u32, b: u32) -> std::cmp::Ordering {
    let (a, b) = (rows.row(a), rows.row(b));
    (a.started_at.get(), &a.id).cmp(&(b.started_at.get(), &b.id))
}

/// Sets in `class` what the start of each of one customer's subscriptions `slots` (every
/// one of theirs, by start then id) is.
fn classify(rows: &Slab<SubscriptionRow>, slots: &[u32], class: &mut [StartClass]) {
    // The latest end among subscriptions that started earlier (None inside: never).
    let mut latest_end: Option<Option<Timestamp>> = None;
    // The earliest time from which one of them had an MRR above 0 in effect.
    let mut paid_from: Option<Timestamp> = None;
    let start = |slot: &u32| rows.row(*slot).started_at.get();
    for same_start in slots.chunk_by(|a, b| start(a) == start(b)) {
        let start = start(&same_start[0]);
        let active = match latest_end {
            None => false,
            Some(None) => true,
            Some(Some(e)) => e >= start,
        };
        let paid_before = paid_from.is_some_and(|p| p < start);
        let this = match (active, paid_before) {
            (true, _) => StartClass::Expansion,
            (false, true) => StartClass::Reactivation,
            (false, false) => StartClass::New,
        };
        for slot in same_start {
            class[*slot as usize] = this;
            let row = rows.row(*slot);
            if let Some(p) = crate::subscription::paid_from_of(row) {
                paid_from = Some(paid_from.map_or(p, |q| q.min(p)));
            }
            let end = crate::subscription::end_of(row);
            latest_end = Some(match (latest_end, end) {
                (Some(None), _) | (_, None) => None,
                (Some(Some(a)), Some(b)) => Some(a.max(b)),
                (None, Some(b)) => Some(b),
            });
        }
    }
}

/// What subscription rows read: the lookups, and what each one's start is.
#[derive(Clone)]
pub(crate) struct SubscriptionContext {
    pub(crate) lookups: Arc<Lookups>,
    pub(crate) classes: Arc<SubscriptionClasses>,
}

/// MRR movements of one kind by time: each one's subscription (row) and amount, and the
/// amounts' prefix sums.
pub(crate) struct MrrMoves {
    pub(crate) ev: EventList<u32>,
    amounts: DecimalColumn,
    pub(crate) sums: DecimalSums,
}

impl MrrMoves {
    /// The `n` movements `items` (time, (row, amount)), sorted.
    fn new(n: usize, items: impl Iterator<Item = (Timestamp, (u32, Decimal))>) -> Self {
        let ev = EventList::collect(n, items);
        let amounts = ev.items.iter().map(|(_, x)| *x);
        MrrMoves {
            sums: DecimalSums::new(amounts.clone()),
            amounts: DecimalColumn::new(amounts),
            ev: EventList {
                items: ev.items.iter().map(|(r, _)| *r).collect(),
                times: ev.times,
            },
        }
    }

    /// The amount of movement `i`.
    pub(crate) fn amount(&self, i: usize) -> Decimal {
        self.amounts.get(i)
    }
}

/// MRR movements by time; renewals by due date; paying customers as intervals.
pub(crate) struct SubscriptionIndex {
    /// Every MRR movement, signed; prefix sums are the MRR at a time.
    pub(crate) deltas: MrrMoves,
    pub(crate) new: MrrMoves,
    pub(crate) expansion: MrrMoves,
    pub(crate) reactivation: MrrMoves,
    pub(crate) contraction: MrrMoves,
    pub(crate) churn: MrrMoves,
    pub(crate) due: EventList<u32>,
    pub(crate) renewed: EventList<u32>,
    /// Per customer, the maximal intervals `(a, b]` in which they have an active
    /// subscription with MRR > 0: keyed by `a`, with a row of the customer and `b`.
    pub(crate) paying_from: EventList<(u32, OptionalPackedTime)>,
    /// The same intervals keyed by `b`.
    pub(crate) paying_until: EventList<u32>,
}

impl KindIndex for SubscriptionIndex {
    type Row = SubscriptionRow;
    type Table = Slab<SubscriptionRow>;
    type Context = SubscriptionContext;

    fn record_slot(_: &Self::Table, position: u32) -> u32 {
        position
    }

    fn customer_lookups(context: &SubscriptionContext) -> Option<&Lookups> {
        Some(&context.lookups)
    }

    fn customer(_: &SubscriptionContext, s: &SubscriptionRow) -> Sym {
        s.customer
    }

    fn attr(context: &SubscriptionContext, s: &SubscriptionRow, d: Dimension) -> Sym {
        context.lookups.customer_attr(s.customer, d)
    }

    fn build(context: &SubscriptionContext, rows: &Self::Table, subset: &[u32]) -> Self {
        let history = |r: u32| SubscriptionHistory::of(rows.row(r), context.classes.start_class(r));
        // Each kind of movement in two passes over the histories (counted, then
        // collected), one kind at a time: nothing but the list being sorted is held.
        let moves = |keep: fn(MrrMoveKind) -> bool, lost: bool| {
            let items = || {
                subset.iter().flat_map(move |r| {
                    history(*r)
                        .into_moves()
                        .filter(move |(_, _, kind)| keep(*kind))
                        .map(move |(at, d, _)| (at, (*r, if lost { -d } else { d })))
                })
            };
            MrrMoves::new(items().count(), items())
        };
        // Per customer, the maximal intervals in which they pay: each subscription's,
        // sorted by customer and start, merged in place where they overlap.
        let mut intervals: Vec<(Sym, PackedTime, OptionalPackedTime, u32)> =
            Vec::with_capacity(subset.len());
        for r in subset {
            let row = rows.row(*r);
            intervals.extend(paying(row).map(|(a, b)| {
                (
                    row.customer,
                    PackedTime::new(a),
                    OptionalPackedTime::new(b),
                    *r,
                )
            }));
        }
        intervals.sort_by_key(|(c, a, _, _)| (*c, a.get()));
        let mut kept: usize = 0;
        for i in 0..intervals.len() {
            let (c, a, b, r) = intervals[i];
            match kept.checked_sub(1).map(|k| &mut intervals[k]) {
                // (a1, b1] and (a2, b2] with a2 ≤ b1 make one interval.
                Some(last) if last.0 == c && last.2.get().is_none_or(|b1| a.get() <= b1) => {
                    last.2 = OptionalPackedTime::new(match (last.2.get(), b.get()) {
                        (Some(b1), Some(b2)) => Some(b1.max(b2)),
                        _ => None,
                    });
                }
                _ => {
                    intervals[kept] = (c, a, b, r);
                    kept += 1;
                }
            }
        }
        intervals.truncate(kept);
        let ends = intervals.iter().filter(|i| i.2.get().is_some()).count();
        SubscriptionIndex {
            deltas: moves(|_| true, false),
            new: moves(|k| k == MrrMoveKind::New, false),
            expansion: moves(|k| k == MrrMoveKind::Expansion, false),
            reactivation: moves(|k| k == MrrMoveKind::Reactivation, false),
            contraction: moves(|k| k == MrrMoveKind::Contraction, true),
            churn: moves(|k| k == MrrMoveKind::Churn, true),
            due: rows_by_time(subset, |r| rows.row(r).renewal_due_at.get()),
            renewed: rows_by_time(subset, |r| {
                let s = rows.row(r);
                s.renewal_due_at.get().filter(|_| s.renewed == Some(true))
            }),
            paying_from: EventList::collect(
                intervals.len(),
                intervals.iter().map(|(_, a, b, r)| (a.get(), (*r, *b))),
            ),
            paying_until: EventList::collect(
                ends,
                intervals
                    .iter()
                    .filter_map(|(_, _, b, r)| b.get().map(|b| (b, *r))),
            ),
        }
    }
}

/// The subscriptions' value of `measure` (one [`answers`]) over `w` and the filters `f`.
pub(crate) fn measure(
    part: &Part<SubscriptionIndex>,
    measure: Measure,
    w: &Window,
    f: &ResolvedFilters,
) -> Result<Decimal, MetricError> {
    let Some(s) = part.select(f)? else {
        return Ok(Decimal::ZERO);
    };
    let index = s.index;
    // The sum of movements `r` that match: from the prefix sums when every one does.
    let total = |m: &MrrMoves, r: std::ops::Range<usize>| -> Result<Decimal, MetricError> {
        if s.all() {
            if let Some(x) = m.sums.range(r.clone(), |i| m.amount(i)) {
                return Ok(x);
            }
        }
        let mut acc = Decimal::ZERO;
        for i in r {
            if s.ok(m.ev.items[i]) {
                acc = add(acc, m.amount(i))?;
            }
        }
        Ok(acc)
    };
    let mrr_at = |t: Timestamp| total(&index.deltas, 0..index.deltas.ev.before(t));
    let moved = |m: &MrrMoves| total(m, m.ev.range(w));
    Ok(match measure {
        Measure::RenewalsDue => count(s.count(&index.due, index.due.range(w))),
        Measure::Renewed => count(s.count(&index.renewed, index.renewed.range(w))),
        Measure::MrrAtEnd => mrr_at(w.end)?,
        Measure::MrrAtStart => mrr_at(w.start)?,
        Measure::PayingCustomersAtEnd => {
            let from = index.paying_from.before(w.end);
            if s.all() {
                count(from - index.paying_until.before(w.end))
            } else {
                count(s.count_where(&index.paying_from, 0..from, |(_, b)| {
                    b.get().is_none_or(|b| b >= w.end)
                }))
            }
        }
        Measure::NewMrr => moved(&index.new)?,
        Measure::ExpansionMrr => moved(&index.expansion)?,
        Measure::ReactivationMrr => moved(&index.reactivation)?,
        Measure::ContractionMrr => moved(&index.contraction)?,
        Measure::ChurnedMrr => moved(&index.churn)?,
        _ => unreachable!(
            "subscriptions::measure is called with the measures subscriptions answer only"
        ),
    })
}

/// [`Measure::PayingCustomersAtEnd`] (customers with a subscription paying at the end of
/// `w`) over the filters `f`, from the subscriptions as a base and a delta
/// ([`LayeredPart::distinct`]).
pub(crate) fn paying_customers(
    part: &LayeredPart<SubscriptionIndex>,
    w: &Window,
    f: &ResolvedFilters,
) -> Result<Decimal, MetricError> {
    let measure = Measure::PayingCustomersAtEnd;
    part.distinct(
        |p| self::measure(p, measure, w, f),
        RowKey::Customer,
        1,
        // No list by paying time: every row written since the base is checked.
        |p| Ok(p.positions().collect()),
        |p, i| {
            let row = p.rows.row(i);
            // Its paying intervals lie between its start and its end (at or before
            // `ended_at`): one starting at or after the window's end, or ended before it,
            // has none reaching it.
            if row.started_at.get() >= w.end || row.ended_at.get().is_some_and(|e| e < w.end) {
                return false;
            }
            paying(row).any(|(a, b)| a < w.end && b.is_none_or(|b| b >= w.end)) && p.matches(i, f)
        },
    )
}

crate::snapshot::snap_fields!(MrrMoves { ev, amounts, sums });
crate::snapshot::snap_fields!(SubscriptionIndex {
    deltas,
    new,
    expansion,
    reactivation,
    contraction,
    churn,
    due,
    renewed,
    paying_from,
    paying_until,
});
super::image::imaged_as_written!(SubscriptionIndex);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::tests::after_one_write;
    use crate::record::Record;

    /// A subscription starting earlier: the classes are worked out again for its customer
    /// only and equal those of every subscription worked out anew; the subscription part
    /// is its base plus a delta, and every answer equals the reference's.
    #[test]
    fn a_subscription_write_is_a_delta_and_reclasses_its_customer() {
        let (before, after) = after_one_write(RecordKind::Subscription, |_, r| {
            let Record::Subscription(s) = r else {
                return false;
            };
            s.started_at -= jiff::SignedDuration::from_hours(24 * 40);
            s.mrr_changes[0].at = s.started_at;
            true
        });
        assert!(after.subscriptions.layered_on(&before.subscriptions));
        let anew = SubscriptionClasses::of(&after.classes.rows);
        assert_eq!(after.classes.class, anew.class);
        let firsts = |c: &SubscriptionClasses| {
            (0..anew.first.len() as Sym)
                .map(|i| c.first(i))
                .collect::<Vec<_>>()
        };
        assert_eq!(firsts(&after.classes), firsts(&anew));
        assert!(!after.classes.relisted.is_empty());
    }
}
