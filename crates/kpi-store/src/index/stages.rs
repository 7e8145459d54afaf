//! Stage entries of deals (one per stage of each deal's history), read as stage exits (by
//! exit time) and as stage stays (in effect while the deal is open: the open deals of a
//! stage); the measures they answer. Stage entries are read through their deals' rows:
//! the stage parts read what the deal part reads ([`deals::READS`]) and are kept or
//! maintained with it.

use std::sync::{Arc, OnceLock};

use jiff::Timestamp;
use kpi_core::{Decimal, Dimension, Measure, MetricError, Window};

use super::count;
use super::deals::DealIndex;
use super::delta::LayeredPart;
use super::dependents::changed_through_lookups;
use super::events::{rows_by_time, EventList};
use super::lookups::Lookups;
use super::part::{KindIndex, Part, ResolvedFilters, RowTable};
use super::sums::{DecimalSums, IntegerSums};
use crate::attribute_columns::AttributeColumns;
use crate::dims::Unit;
use crate::long_work::GetOrBuild as _;
use crate::rows::{DealRow, Slab};
use crate::symbols::Sym;
use crate::units::{nanos_between, nanos_decimal};

/// Whether the stage exits answer `measure`.
pub(crate) fn exits_answer(measure: Measure) -> bool {
    matches!(measure, Measure::StageExits | Measure::StageDaysTotal)
}

/// Whether the stage stays answer `measure`, in place of the deals, when the filters name
/// a stage (an open deal is then read through its current stage: the stay in the last
/// stage it entered before the end).
pub(crate) fn stays_answer(measure: Measure) -> bool {
    matches!(measure, Measure::DealsOpen | Measure::OpenAmount)
}

/// A deal's entry into a stage: the deal (its slot among the store's deals) and the
/// entry's position in its stage history, where the stage, the time and the next entry
/// are read. Stage exits and stage stays both read these rows (shared).
pub(crate) struct StageEntryRef {
    pub(crate) deal: u32,
    pub(crate) position: u32,
}

/// What stage rows read: the store's deals, their custom attributes and the lookups.
#[derive(Clone)]
pub(crate) struct StageContext {
    pub(crate) deals: Arc<Slab<DealRow>>,
    pub(crate) deal_attributes: Arc<AttributeColumns>,
    pub(crate) lookups: Arc<Lookups>,
}

impl StageContext {
    /// The deal of a stage row.
    pub(crate) fn deal(&self, r: &StageEntryRef) -> &DealRow {
        self.deals.row(r.deal)
    }

    /// The stage of a stage row and when the deal entered it.
    pub(crate) fn entry(&self, r: &StageEntryRef) -> (Sym, Timestamp) {
        let (stage, at) = self.deal(r).stages[r.position as usize];
        (stage, at.get())
    }

    fn attr(&self, r: &StageEntryRef, d: Dimension) -> Sym {
        match d {
            Dimension::Stage => self.entry(r).0,
            _ => DealIndex::attr(&self.lookups, self.deal(r), d),
        }
    }

    /// When the deal entered its next stage, if it did.
    fn next_entry(&self, r: &StageEntryRef) -> Option<Timestamp> {
        self.deal(r)
            .stages
            .get(r.position as usize + 1)
            .map(|(_, at)| at.get())
    }

    /// When the deal left the stage: its next stage's entry, else its close.
    pub(crate) fn exit(&self, r: &StageEntryRef) -> Option<Timestamp> {
        self.next_entry(r).or(self.deal(r).closed_at.get())
    }

    /// The time spent in the stage until the exit (zero without one), in nanoseconds.
    pub(crate) fn stage_nanos(&self, r: &StageEntryRef) -> i128 {
        let entered = self.entry(r).1;
        nanos_between(entered, self.exit(r).unwrap_or(entered))
    }

    /// The deal's stay in the stage while it is open.
    pub(crate) fn stay(&self, r: &StageEntryRef) -> StageStay {
        let d = self.deal(r);
        StageStay {
            from: self.entry(r).1.max(d.created_at.get()),
            until: match (self.next_entry(r), d.closed_at.get()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        }
    }
}

/// Stage exits by exit time.
pub(crate) struct StageExitIndex {
    pub(crate) exits: EventList<u32>,
    pub(crate) nanos: IntegerSums,
}

impl KindIndex for StageExitIndex {
    type Row = StageEntryRef;
    type Table = Vec<StageEntryRef>;
    type Context = StageContext;

    fn record_slot(rows: &Self::Table, position: u32) -> u32 {
        rows.row(position).deal
    }

    fn customer_lookups(context: &StageContext) -> Option<&Lookups> {
        Some(&context.lookups)
    }

    fn customer(context: &StageContext, r: &StageEntryRef) -> Sym {
        context.deal(r).customer
    }

    fn campaign(context: &StageContext, r: &StageEntryRef) -> Sym {
        context.deal(r).campaign
    }

    fn attr(context: &StageContext, r: &StageEntryRef, d: Dimension) -> Sym {
        context.attr(r, d)
    }

    fn build(context: &StageContext, rows: &Self::Table, subset: &[u32]) -> Self {
        let exits = rows_by_time(subset, |r| context.exit(rows.row(r)));
        let nanos = IntegerSums::new(
            exits
                .items
                .iter()
                .map(|r| context.stage_nanos(rows.row(*r))),
        );
        StageExitIndex { exits, nanos }
    }
}

/// A deal's stay in one stage of its history while it is open: it is in the stage at `t`
/// when `from < t ≤ until`. `from` is the later of the deal's creation and the stage's
/// entry; `until` the earlier of the next stage's entry and the deal's close (`None`:
/// still there). So at `t` the stay counts exactly when the deal was created before `t`,
/// is open at `t` (not closed before it) and the stage is the last one entered before `t`.
pub(crate) struct StageStay {
    pub(crate) from: Timestamp,
    pub(crate) until: Option<Timestamp>,
}

impl StageStay {
    /// Whether the stay covers any instant (a stage left before the deal was created
    /// covers none).
    pub(crate) fn covers_some_time(&self) -> bool {
        self.until.is_none_or(|u| self.from <= u)
    }
}

/// Stage stays by start and by end, with their deals' amounts summed. Stays that cover no
/// time are left out, so the stays in effect at `t` are those starting before `t` less
/// those ending before `t`.
pub(crate) struct StageStayIndex {
    pub(crate) from: EventList<u32>,
    pub(crate) from_amount: DecimalSums,
    pub(crate) until: EventList<u32>,
    pub(crate) until_amount: DecimalSums,
}

impl KindIndex for StageStayIndex {
    type Row = StageEntryRef;
    type Table = Vec<StageEntryRef>;
    type Context = StageContext;

    fn record_slot(rows: &Self::Table, position: u32) -> u32 {
        rows.row(position).deal
    }

    fn customer_lookups(context: &StageContext) -> Option<&Lookups> {
        Some(&context.lookups)
    }

    fn customer(context: &StageContext, r: &StageEntryRef) -> Sym {
        context.deal(r).customer
    }

    fn campaign(context: &StageContext, r: &StageEntryRef) -> Sym {
        context.deal(r).campaign
    }

    fn attr(context: &StageContext, r: &StageEntryRef, d: Dimension) -> Sym {
        context.attr(r, d)
    }

    fn build(context: &StageContext, rows: &Self::Table, subset: &[u32]) -> Self {
        let stay = |r: u32| Some(context.stay(rows.row(r))).filter(StageStay::covers_some_time);
        let from = rows_by_time(subset, |r| stay(r).map(|s| s.from));
        let until = rows_by_time(subset, |r| stay(r).and_then(|s| s.until));
        let amount = |r: &u32| context.deal(rows.row(*r)).amount;
        StageStayIndex {
            from_amount: DecimalSums::new(from.items.iter().map(amount)),
            until_amount: DecimalSums::new(until.items.iter().map(amount)),
            from,
            until,
        }
    }
}

/// The deals' stage entries, as stage exits and as stage stays (one list of entries, read
/// by both), each a base plus, after deal writes, a delta ([`LayeredPart`]).
pub(crate) struct StageParts {
    pub(crate) exits: LayeredPart<StageExitIndex>,
    pub(crate) stays: LayeredPart<StageStayIndex>,
}

/// The entries (one per stage of each deal's history: `(deal slot, position)`) of the
/// deals of `context` at `slots` (ascending), in that order.
fn entries(context: &StageContext, slots: &[u32]) -> Vec<StageEntryRef> {
    let deals = &context.deals;
    let count = slots.iter().map(|s| deals.row(*s).stages.len()).sum();
    let mut list = Vec::with_capacity(count);
    for deal in slots.iter().copied() {
        let positions = deals.row(deal).stages.len() as u32;
        list.extend((0..positions).map(|position| StageEntryRef { deal, position }));
    }
    list
}

/// The entries of every deal of `context`, listed once however many parts read them.
fn every_entry(context: &StageContext) -> Arc<Vec<StageEntryRef>> {
    let slots: Vec<u32> = context.deals.slots().map(|(slot, _)| slot).collect();
    Arc::new(entries(context, &slots))
}

impl StageParts {
    /// The entries of the deals `context` reads, listed now.
    pub(crate) fn list(context: &StageContext) -> Self {
        let list = every_entry(context);
        StageParts {
            exits: LayeredPart::built(Self::part(context, Unit::StageExit, &list)),
            stays: LayeredPart::built(Self::part(context, Unit::StageStay, &list)),
        }
    }

    /// The part of `unit` (stage exits or stays) over `entries` read through `context`;
    /// nothing built.
    pub(crate) fn part<I>(
        context: &StageContext,
        unit: Unit,
        entries: &Arc<Vec<StageEntryRef>>,
    ) -> Part<I>
    where
        I: KindIndex<Row = StageEntryRef, Table = Vec<StageEntryRef>, Context = StageContext>,
    {
        Part::new(
            unit,
            Arc::clone(entries),
            context.clone(),
            &context.deal_attributes,
        )
    }

    /// The entries of the deals of `context`, whose deals, customers or campaigns changed
    /// since these were listed: each part its base plus the delta of the chunks of deals
    /// written since, or reading a customer or campaign's channel that changed since.
    pub(crate) fn next(&self, context: &StageContext) -> Self {
        // Both parts list every current entry at most once, when one folds.
        let every: Arc<OnceLock<Arc<Vec<StageEntryRef>>>> = Arc::default();
        StageParts {
            exits: layered(&self.exits, context, Unit::StageExit, &every),
            stays: layered(&self.stays, context, Unit::StageStay, &every),
        }
    }
}

/// `previous` (over stage entries) as its base plus the delta of the deals written since,
/// read through `context`.
fn layered<I>(
    previous: &LayeredPart<I>,
    context: &StageContext,
    unit: Unit,
    every: &Arc<OnceLock<Arc<Vec<StageEntryRef>>>>,
) -> LayeredPart<I>
where
    I: KindIndex<Row = StageEntryRef, Table = Vec<StageEntryRef>, Context = StageContext>,
{
    let (base, fold) = previous.next_base();
    // The deals that differ, whose custom attributes do, or that read a customer or a
    // campaign's channel that does: those of the previous delta, and those that changed
    // since the previous index (its added entries read through its context).
    let (mut changed, since) = previous.changed_since(&base);
    let then = &since.context;
    changed.extend(context.deals.slots_changed_since(&then.deals));
    if !Arc::ptr_eq(&context.deal_attributes, &then.deal_attributes) {
        changed.extend(
            context
                .deal_attributes
                .slots_changed_since(&then.deal_attributes),
        );
    }
    changed.extend(changed_through_lookups(
        &base,
        &then.lookups,
        &context.lookups,
    ));
    changed.sort_unstable();
    changed.dedup();
    // The base's entries are in deal slot order: those of a deal are a range.
    let listed = &base.rows;
    let removed: Vec<u32> = changed
        .iter()
        .flat_map(|deal| {
            let start = listed.partition_point(|e| e.deal < *deal);
            let end = listed.partition_point(|e| e.deal <= *deal);
            start as u32..end as u32
        })
        .collect();
    let removed = base.restricted(removed);
    let slots: Vec<u32> = changed
        .iter()
        .copied()
        .filter(|s| context.deals.get(*s).is_some())
        .collect();
    let added = Part::new(
        unit,
        entries(context, &slots),
        context.clone(),
        &context.deal_attributes,
    );
    let (context, every) = (context.clone(), Arc::clone(every));
    let make_current = Box::new(move || {
        let list = every.get_or_build(context.deals.len(), || every_entry(&context));
        Part::new(
            unit,
            Arc::clone(list),
            context.clone(),
            &context.deal_attributes,
        )
    });
    LayeredPart::layered(base, fold, &changed, removed, added, make_current)
}

/// The stage exits' value of `measure` (one the exits answer: [`exits_answer`]) over `w` and the filters `f`.
pub(crate) fn measure(
    exits: &Part<StageExitIndex>,
    measure: Measure,
    w: &Window,
    f: &ResolvedFilters,
) -> Result<Decimal, MetricError> {
    let Some(s) = exits.select(f)? else {
        return Ok(Decimal::ZERO);
    };
    let r = s.index.exits.range(w);
    Ok(if measure == Measure::StageExits {
        count(s.count(&s.index.exits, r))
    } else {
        let nanos = s.int_sum(&s.index.exits, r, &s.index.nanos, |e| {
            s.context.stage_nanos(s.row(e))
        });
        nanos_decimal(nanos)?
    })
}

/// [`Measure::DealsOpen`] or [`Measure::OpenAmount`] at `end` read through stage stays
/// (the filters name a stage): the stays in effect at `end` began before it and did
/// not end before it.
pub(crate) fn open_in_stage(
    stays: &Part<StageStayIndex>,
    measure: Measure,
    end: Timestamp,
    f: &ResolvedFilters,
) -> Result<Decimal, MetricError> {
    let Some(s) = stays.select(f)? else {
        return Ok(Decimal::ZERO);
    };
    let index = s.index;
    let begun = index.from.before(end);
    let ended = index.until.before(end);
    let in_effect = |e: &u32| s.context.stay(s.row(e)).until.is_none_or(|u| u >= end);
    Ok(match measure {
        Measure::DealsOpen if s.all() => count(begun - ended),
        Measure::DealsOpen => count(s.count_where(&index.from, 0..begun, in_effect)),
        _ => {
            let fast = s
                .all()
                .then(|| {
                    let amount = |e: &u32| s.context.deal(s.row(e)).amount;
                    index
                        .from_amount
                        .prefix(begun, |i| amount(&index.from.items[i]))?
                        .checked_sub(
                            index
                                .until_amount
                                .prefix(ended, |i| amount(&index.until.items[i]))?,
                        )
                })
                .flatten();
            match fast {
                Some(sum) => sum,
                None => s.sum_where(&index.from, 0..begun, in_effect, |e| {
                    s.context.deal(s.row(e)).amount
                })?,
            }
        }
    })
}

crate::snapshot::snap_fields!(StageEntryRef { deal, position });
crate::snapshot::snap_fields!(StageExitIndex { exits, nanos });
crate::snapshot::snap_fields!(StageStayIndex {
    from,
    from_amount,
    until,
    until_amount
});
super::image::imaged_as_written!(StageExitIndex, StageStayIndex);
