//! Stage entries of deals (one per stage of each deal's history), read as stage exits (by
//! exit time) and as stage stays (in effect while the deal is open: the open deals of a
//! stage); the measures they answer. Stage entries are read through their deals' rows:
//! the stage parts read what the deal part reads ([`deals::READS`]) and are kept, refit or
//! rebuilt with it.

use std::sync::Arc;

use jiff::Timestamp;
use kpi_core::{Decimal, Dimension, Measure, MetricError, Window};

use super::count;
use super::deals::DealIx;
use super::events::{rows_by_time, EventList};
use super::lookups::Lookups;
use super::part::{Ix, Part, Resolved, Table};
use super::sums::{DecSums, IntSums};
use crate::dims::Unit;
use crate::rows::{DealRow, Slab};
use crate::symbols::Sym;
use crate::units::{nanos_between, nanos_to, DAY_NANOS};

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
pub(crate) struct StageRow {
    pub(crate) deal: u32,
    pub(crate) idx: u32,
}

/// What stage rows read: the store's deals and the lookups.
#[derive(Clone)]
pub(crate) struct StageCtx {
    pub(crate) deals: Arc<Slab<DealRow>>,
    pub(crate) lk: Arc<Lookups>,
}

impl StageCtx {
    /// The deal of a stage row.
    pub(crate) fn deal(&self, r: &StageRow) -> &DealRow {
        self.deals.row(r.deal)
    }

    /// The stage of a stage row and when the deal entered it.
    pub(crate) fn entry(&self, r: &StageRow) -> (Sym, Timestamp) {
        let (stage, at) = self.deal(r).stages[r.idx as usize];
        (stage, at.get())
    }

    fn attr(&self, r: &StageRow, d: Dimension) -> Sym {
        match d {
            Dimension::Stage => self.entry(r).0,
            _ => DealIx::attr(&self.lk, self.deal(r), d),
        }
    }

    /// When the deal entered its next stage, if it did.
    fn next_entry(&self, r: &StageRow) -> Option<Timestamp> {
        self.deal(r)
            .stages
            .get(r.idx as usize + 1)
            .map(|(_, at)| at.get())
    }

    /// When the deal left the stage: its next stage's entry, else its close.
    pub(crate) fn exit(&self, r: &StageRow) -> Option<Timestamp> {
        self.next_entry(r).or(self.deal(r).closed_at.get())
    }

    /// The time spent in the stage until the exit (zero without one), in nanoseconds.
    pub(crate) fn stage_nanos(&self, r: &StageRow) -> i128 {
        let entered = self.entry(r).1;
        nanos_between(entered, self.exit(r).unwrap_or(entered))
    }

    /// The deal's stay in the stage while it is open.
    pub(crate) fn stay(&self, r: &StageRow) -> Stay {
        let d = self.deal(r);
        Stay {
            from: self.entry(r).1.max(d.created_at.get()),
            until: match (self.next_entry(r), d.closed_at.get()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        }
    }
}

/// Stage exits by exit time.
pub(crate) struct ExitIx {
    pub(crate) exits: EventList<u32>,
    pub(crate) nanos: IntSums,
}

impl Ix for ExitIx {
    type Row = StageRow;
    type Rows = Vec<StageRow>;
    type Ctx = StageCtx;

    fn attr(ctx: &StageCtx, r: &StageRow, d: Dimension) -> Sym {
        ctx.attr(r, d)
    }

    fn build(ctx: &StageCtx, rows: &Self::Rows, subset: &[u32]) -> Self {
        let exits = rows_by_time(subset, |r| ctx.exit(rows.row(r)));
        let nanos = IntSums::new(exits.items.iter().map(|r| ctx.stage_nanos(rows.row(*r))));
        ExitIx { exits, nanos }
    }
}

/// A deal's stay in one stage of its history while it is open: it is in the stage at `t`
/// when `from < t ≤ until`. `from` is the later of the deal's creation and the stage's
/// entry; `until` the earlier of the next stage's entry and the deal's close (`None`:
/// still there). So at `t` the stay counts exactly when the deal was created before `t`,
/// is open at `t` (not closed before it) and the stage is the last one entered before `t`.
pub(crate) struct Stay {
    pub(crate) from: Timestamp,
    pub(crate) until: Option<Timestamp>,
}

impl Stay {
    /// Whether the stay covers any instant (a stage left before the deal was created
    /// covers none).
    pub(crate) fn covers_some_time(&self) -> bool {
        self.until.is_none_or(|u| self.from <= u)
    }
}

/// Stage stays by start and by end, with their deals' amounts summed. Stays that cover no
/// time are left out, so the stays in effect at `t` are those starting before `t` less
/// those ending before `t`.
pub(crate) struct StageStayIx {
    pub(crate) from: EventList<u32>,
    pub(crate) from_amount: DecSums,
    pub(crate) until: EventList<u32>,
    pub(crate) until_amount: DecSums,
}

impl Ix for StageStayIx {
    type Row = StageRow;
    type Rows = Vec<StageRow>;
    type Ctx = StageCtx;

    fn attr(ctx: &StageCtx, r: &StageRow, d: Dimension) -> Sym {
        ctx.attr(r, d)
    }

    fn build(ctx: &StageCtx, rows: &Self::Rows, subset: &[u32]) -> Self {
        let stay = |r: u32| Some(ctx.stay(rows.row(r))).filter(Stay::covers_some_time);
        let from = rows_by_time(subset, |r| stay(r).map(|s| s.from));
        let until = rows_by_time(subset, |r| stay(r).and_then(|s| s.until));
        let amount = |r: &u32| ctx.deal(rows.row(*r)).amount;
        StageStayIx {
            from_amount: DecSums::new(from.items.iter().map(amount)),
            until_amount: DecSums::new(until.items.iter().map(amount)),
            from,
            until,
        }
    }
}

/// The deals' stage entries, as stage exits and as stage stays (one list of entries, read
/// by both).
pub(crate) struct StageParts {
    pub(crate) exits: Part<ExitIx>,
    pub(crate) stays: Part<StageStayIx>,
}

impl StageParts {
    /// The entries of the deals `ctx` reads, listed now (one entry per stage of each
    /// deal's history: `(deal slot, position)`).
    pub(crate) fn list(ctx: &StageCtx) -> Self {
        let deals = &ctx.deals;
        let entries: usize = deals.iter().map(|d| d.stages.len()).sum();
        let mut list = Vec::with_capacity(entries);
        for (deal, d) in deals.slots() {
            list.extend((0..d.stages.len() as u32).map(|idx| StageRow { deal, idx }));
        }
        let list = Arc::new(list);
        StageParts {
            exits: Part::new(Unit::StageExit, Arc::clone(&list), ctx.clone()),
            stays: Part::new(Unit::StageStay, list, ctx.clone()),
        }
    }

    /// The same entries read through `ctx`, whose customers changed ([`Part::refit`]).
    pub(crate) fn refit(&self, ctx: &StageCtx) -> Self {
        StageParts {
            exits: self.exits.refit(ctx.clone()),
            stays: self.stays.refit(ctx.clone()),
        }
    }
}

/// The stage exits' value of `measure` (one the exits answer: [`exits_answer`]) over `w` and the filters `f`.
pub(crate) fn measure(
    exits: &Part<ExitIx>,
    measure: Measure,
    w: &Window,
    f: &Resolved,
) -> Result<Decimal, MetricError> {
    let Some(s) = exits.select(f) else {
        return Ok(Decimal::ZERO);
    };
    let r = s.ix.exits.range(w);
    Ok(if measure == Measure::StageExits {
        count(s.count(&s.ix.exits, r))
    } else {
        let nanos = s.int_sum(&s.ix.exits, r, &s.ix.nanos, |e| s.ctx.stage_nanos(s.row(e)));
        nanos_to(nanos, DAY_NANOS)?
    })
}

/// [`Measure::DealsOpen`] or [`Measure::OpenAmount`] at `end` read through stage stays
/// (the filters name a stage): the stays in effect at `end` began before it and did
/// not end before it.
pub(crate) fn open_in_stage(
    stays: &Part<StageStayIx>,
    measure: Measure,
    end: Timestamp,
    f: &Resolved,
) -> Result<Decimal, MetricError> {
    let Some(s) = stays.select(f) else {
        return Ok(Decimal::ZERO);
    };
    let ix = s.ix;
    let begun = ix.from.before(end);
    let ended = ix.until.before(end);
    let in_effect = |e: &u32| s.ctx.stay(s.row(e)).until.is_none_or(|u| u >= end);
    Ok(match measure {
        Measure::DealsOpen if s.all() => count(begun - ended),
        Measure::DealsOpen => count(s.count_where(&ix.from, 0..begun, in_effect)),
        _ => {
            let fast = s
                .all()
                .then(|| {
                    let amount = |e: &u32| s.ctx.deal(s.row(e)).amount;
                    ix.from_amount
                        .prefix(begun, |i| amount(&ix.from.items[i]))?
                        .checked_sub(
                            ix.until_amount
                                .prefix(ended, |i| amount(&ix.until.items[i]))?,
                        )
                })
                .flatten();
            match fast {
                Some(sum) => sum,
                None => s.sum_where(&ix.from, 0..begun, in_effect, |e| {
                    s.ctx.deal(s.row(e)).amount
                })?,
            }
        }
    })
}
