//! The flattened rows of each unit and the event lists built over them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use jiff::Timestamp;
use kpi_core::{Decimal, Dimension, SurveyKind};

use super::blocked::Blocked;
use super::events::{previous_same, EventList};
use super::part::{Ix, Table};
use super::sums::{DecCol, DecSums, IntSums};
use super::times::Times;
use crate::record::{DealKind, DealStatus, Source};
use crate::rows::{CustomerRow, DealRow, LeadRow, PurchaseRow, SubRow, SurveyRow, TicketRow};
use crate::rows::{OptTs, Slab, Ts};
use crate::symbols::{Sym, NONE};
use crate::units::nanos_between;

// ---------------------------------------------------------------- lookups

/// What rows inherit from their customer or campaign, looked up by symbol when read
/// (rows keep the key, not a copy; customers are read in the store's rows).
pub(crate) struct Lookups {
    /// By customer id symbol: the customer's slot among `customers` ([`NONE`]: not stored).
    slots: Vec<u32>,
    /// The store's customers.
    customers: Arc<Slab<CustomerRow>>,
    /// By the dimension symbol of a campaign id: the symbol of its channel's name.
    channels: Vec<Sym>,
    /// The symbol of the email channel's name.
    email: Sym,
    /// By source: the symbol of its name.
    sources: [Sym; Source::ALL.len()],
}

impl Lookups {
    /// Lookups over the store's `customers` (of `ids` customer id symbols) and campaigns'
    /// channels (by id symbol).
    pub(crate) fn new(
        customers: Arc<Slab<CustomerRow>>,
        ids: usize,
        channels: Vec<Sym>,
        email: Sym,
        sources: [Sym; Source::ALL.len()],
    ) -> Self {
        let mut slots = vec![NONE; ids];
        for (slot, c) in customers.slots() {
            slots[c.id as usize] = slot;
        }
        Self {
            slots,
            customers,
            channels,
            email,
            sources,
        }
    }

    /// The symbol of a source's name.
    pub(crate) fn source(&self, s: Source) -> Sym {
        self.sources[s as usize]
    }

    /// The customer with this id symbol, if stored.
    pub(crate) fn customer(&self, id: Sym) -> Option<&CustomerRow> {
        let slot = *self.slots.get(id as usize)?;
        (slot != NONE).then(|| self.customers.row(slot))
    }

    /// When the customer with this id symbol was acquired (`None`: no such customer), and
    /// whether they are marketing-sourced.
    pub(crate) fn acquisition(&self, id: Sym) -> (Option<Timestamp>, bool) {
        let c = self.customer(id);
        (
            c.map(CustomerRow::acquired),
            c.is_some_and(|c| c.source == Source::Marketing),
        )
    }

    /// The channel of the campaign with this symbol ([`NONE`]: no such campaign).
    pub(crate) fn channel(&self, campaign: Sym) -> Sym {
        self.channels
            .get(campaign as usize)
            .copied()
            .unwrap_or(NONE)
    }

    /// Whether the campaign with this symbol is an email campaign.
    pub(crate) fn is_email(&self, campaign: Sym) -> bool {
        self.channel(campaign) == self.email
    }

    /// The owner, source or segment of a customer ([`NONE`] for other dimensions or no
    /// such customer).
    pub(crate) fn customer_attr(&self, id: Sym, d: Dimension) -> Sym {
        match (self.customer(id), d) {
            (Some(c), Dimension::Owner) => c.owner,
            (Some(c), Dimension::Source) => self.source(c.source),
            (Some(c), Dimension::Segment) => c.segment,
            _ => NONE,
        }
    }
}

fn ev_rows(rows_subset: &[u32], time: impl Fn(u32) -> Option<Timestamp>) -> EventList<u32> {
    // Counted first, so the sort buffer is no larger than the list (many lists hold a
    // fraction of the rows: won deals, upsells, churned customers).
    let n = rows_subset.iter().filter(|r| time(**r).is_some()).count();
    EventList::collect(
        n,
        rows_subset.iter().filter_map(|r| time(*r).map(|t| (t, *r))),
    )
}

/// What an index derives from its rows' customers (won deals or purchases by their
/// customer's acquisition): built on first use through some lookups, and built again when
/// read through other lookups (the part was refit to new customers: `Part::refit`).
pub(crate) struct ByCustomers<T> {
    cell: Mutex<Option<(Weak<Lookups>, Arc<T>)>>,
}

impl<T> Default for ByCustomers<T> {
    fn default() -> Self {
        Self {
            cell: Mutex::new(None),
        }
    }
}

impl<T> ByCustomers<T> {
    /// What `build` derives through `lk`, built now unless it was through these lookups.
    pub(crate) fn get(&self, lk: &Arc<Lookups>, build: impl FnOnce() -> T) -> Arc<T> {
        let mut cell = self.cell.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((of, v)) = &*cell {
            // The weak reference keeps the lookups' allocation, so its address is theirs.
            if std::ptr::eq(of.as_ptr(), Arc::as_ptr(lk)) {
                return Arc::clone(v);
            }
        }
        let v = Arc::new(build());
        *cell = Some((Arc::downgrade(lk), Arc::clone(&v)));
        v
    }
}

/// `n` sales (`sale(i)`: the customer and the amount of sale `i`) by their customer's
/// acquisition, summing every amount ([`ALL_AMOUNTS`]) and the amounts of
/// marketing-sourced customers ([`MARKETING_AMOUNTS`]).
fn by_acquisition(lk: &Lookups, n: usize, sale: impl Fn(usize) -> (Sym, Decimal)) -> Blocked {
    let acquisition = |i: usize| lk.acquisition(sale(i).0);
    Blocked::new(
        n,
        |i| acquisition(i).0,
        &[&|i| sale(i).1, &|i| {
            if acquisition(i).1 {
                sale(i).1
            } else {
                Decimal::ZERO
            }
        }],
    )
}

// ---------------------------------------------------------------- deals

/// The value column of a by-acquisition [`Blocked`] summing every amount.
pub(crate) const ALL_AMOUNTS: usize = 0;
/// The value column of a by-acquisition [`Blocked`] summing the amounts of
/// marketing-sourced customers.
pub(crate) const MARKETING_AMOUNTS: usize = 1;

impl DealRow {
    /// Whether it was won.
    pub(crate) fn won(&self) -> bool {
        self.status == DealStatus::Won
    }

    /// Whether it was lost.
    pub(crate) fn lost(&self) -> bool {
        self.status == DealStatus::Lost
    }

    /// Whether it sells more to an existing customer (upsell or cross-sell).
    pub(crate) fn upsell(&self) -> bool {
        matches!(self.kind, DealKind::Upsell | DealKind::CrossSell)
    }

    /// The time from its creation to its close (zero while open), in nanoseconds.
    pub(crate) fn cycle_nanos(&self) -> i128 {
        let created = self.created_at.get();
        nanos_between(created, self.closed_at.get().unwrap_or(created))
    }

    /// Its amount if it carries a campaign, else zero.
    pub(crate) fn campaign_amount(&self) -> Decimal {
        if self.campaign != NONE {
            self.amount
        } else {
            Decimal::ZERO
        }
    }

    /// Its amount if its campaign's channel is email, else zero.
    pub(crate) fn email_amount(&self, lk: &Lookups) -> Decimal {
        if lk.is_email(self.campaign) {
            self.amount
        } else {
            Decimal::ZERO
        }
    }

    /// When its customer was acquired, and whether the customer is marketing-sourced.
    pub(crate) fn customer_acquired(&self, lk: &Lookups) -> (Option<Timestamp>, bool) {
        lk.acquisition(self.customer)
    }
}

/// Deals by closing time (won, lost, both, won upsells) and by creation time. What a
/// campaign's or a rep's dashboard rarely reads (every deal by creation and by close, won
/// deals by their customer's acquisition) is built on first use ([`Sel::lazy`]), so the
/// partitions grouped queries build stay small.
pub(crate) struct DealIx {
    pub(crate) won: EventList<u32>,
    pub(crate) won_amount: DecSums,
    pub(crate) won_cycle: IntSums,
    pub(crate) won_campaign_amount: DecSums,
    pub(crate) won_email_amount: DecSums,
    pub(crate) lost: EventList<u32>,
    pub(crate) upsell: EventList<u32>,
    pub(crate) upsell_prev_customer: Vec<u32>,
    /// Won deals (in `won` order) by their customer's acquisition, summing amounts
    /// ([`ALL_AMOUNTS`]) and the amounts of marketing-sourced customers
    /// ([`MARKETING_AMOUNTS`]); see [`DealIx::by_acquisition`].
    pub(crate) won_by_acquisition: ByCustomers<Blocked>,
    /// Closed and created deals; see [`DealOther::build`].
    pub(crate) other: OnceLock<DealOther>,
}

/// Every deal by close and by creation, with amounts summed.
pub(crate) struct DealOther {
    pub(crate) closed: EventList<u32>,
    pub(crate) closed_prev_owner: Vec<u32>,
    /// Closed deals' amounts summed in `closed` order.
    pub(crate) closed_amount: DecSums,
    pub(crate) created: EventList<u32>,
    pub(crate) created_amount: DecSums,
}

impl DealOther {
    /// The closed and created deals among `subset`.
    pub(crate) fn build(_: &Arc<Lookups>, rows: &Slab<DealRow>, subset: &[u32]) -> Self {
        let row = |r: u32| rows.row(r);
        let amount = |r: &u32| row(*r).amount;
        let (closed, created) = join(
            subset.len() >= PARALLEL_ROWS,
            || ev_rows(subset, |r| row(r).closed_at.get()),
            || ev_rows(subset, |r| Some(row(r).created_at.get())),
        );
        DealOther {
            closed_amount: DecSums::new(closed.items.iter().map(amount)),
            closed_prev_owner: previous_same(&closed, |r| row(r).owner),
            created_amount: DecSums::new(created.items.iter().map(amount)),
            closed,
            created,
        }
    }
}

impl DealIx {
    /// The won deals of `won` by their customer's acquisition (for
    /// [`DealIx::won_by_acquisition`]).
    pub(crate) fn by_acquisition(
        lk: &Lookups,
        rows: &Slab<DealRow>,
        won: &EventList<u32>,
    ) -> Blocked {
        by_acquisition(lk, won.items.len(), |i| {
            let d = rows.row(won.items[i]);
            (d.customer, d.amount)
        })
    }
}

impl Ix for DealIx {
    type Row = DealRow;
    type Rows = Slab<DealRow>;
    type Ctx = Arc<Lookups>;

    fn attr(lk: &Arc<Lookups>, d: &DealRow, dim: Dimension) -> Sym {
        match dim {
            Dimension::Owner => d.owner,
            Dimension::Campaign => d.campaign,
            Dimension::Channel => lk.channel(d.campaign),
            Dimension::Source | Dimension::Segment => lk.customer_attr(d.customer, dim),
            Dimension::Stage | Dimension::Agent => NONE,
        }
    }

    fn build(lk: &Arc<Lookups>, rows: &Self::Rows, subset: &[u32]) -> Self {
        let row = |r: u32| rows.row(r);
        let amount = |r: &u32| row(*r).amount;
        // Won deals on one side, lost deals and upsells on the other (two threads for
        // large parts).
        let won_side = || {
            let won = ev_rows(subset, |r| row(r).closed_at.get().filter(|_| row(r).won()));
            let won_rows = || won.items.iter().map(|r| row(*r));
            let sums = (
                DecSums::new(won.items.iter().map(amount)),
                IntSums::new(won_rows().map(DealRow::cycle_nanos)),
                DecSums::new(won_rows().map(DealRow::campaign_amount)),
                DecSums::new(won_rows().map(|d| d.email_amount(lk))),
            );
            (won, sums)
        };
        let other_side = || {
            let lost = ev_rows(subset, |r| row(r).closed_at.get().filter(|_| row(r).lost()));
            let upsell = ev_rows(subset, |r| {
                let d = row(r);
                d.closed_at
                    .get()
                    .filter(|_| d.won() && d.upsell() && d.customer != NONE)
            });
            let upsell_prev_customer = previous_same(&upsell, |r| row(r).customer);
            (lost, upsell, upsell_prev_customer)
        };
        let ((won, (won_amount, won_cycle, won_campaign_amount, won_email_amount)), others) =
            join(subset.len() >= PARALLEL_ROWS, won_side, other_side);
        let (lost, upsell, upsell_prev_customer) = others;
        DealIx {
            won,
            won_amount,
            won_cycle,
            won_campaign_amount,
            won_email_amount,
            lost,
            upsell,
            upsell_prev_customer,
            won_by_acquisition: ByCustomers::default(),
            other: OnceLock::new(),
        }
    }

    fn warm(&self, lk: &Arc<Lookups>, rows: &Self::Rows, subset: &[u32]) {
        join(
            subset.len() >= PARALLEL_ROWS,
            || {
                self.other
                    .get_or_init(|| DealOther::build(lk, rows, subset))
            },
            || {
                self.won_by_acquisition
                    .get(lk, || DealIx::by_acquisition(lk, rows, &self.won))
            },
        );
    }
}

/// Rows from which a part's index is built on two threads.
#[cfg(not(test))]
const PARALLEL_ROWS: usize = 100_000;
/// Small under test, so the tests run the two-thread path.
#[cfg(test)]
const PARALLEL_ROWS: usize = 16;

/// Runs `a` and `b`, on two threads when `parallel`.
fn join<A: Send, B: Send>(
    parallel: bool,
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    if !parallel {
        return (a(), b());
    }
    std::thread::scope(|scope| {
        let a = scope.spawn(a);
        let b = b();
        (a.join().unwrap_or_else(|e| std::panic::resume_unwind(e)), b)
    })
}

// ---------------------------------------------------------------- stage entries

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
        let exits = ev_rows(subset, |r| ctx.exit(rows.row(r)));
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
        let from = ev_rows(subset, |r| stay(r).map(|s| s.from));
        let until = ev_rows(subset, |r| stay(r).and_then(|s| s.until));
        let amount = |r: &u32| ctx.deal(rows.row(*r)).amount;
        StageStayIx {
            from_amount: DecSums::new(from.items.iter().map(amount)),
            until_amount: DecSums::new(until.items.iter().map(amount)),
            from,
            until,
        }
    }
}

// ---------------------------------------------------------------- quotas

/// A quota.
pub(crate) struct QuotaRow {
    pub(crate) owner: Sym,
    pub(crate) start: Timestamp,
    pub(crate) end: Timestamp,
    pub(crate) amount: Decimal,
}

/// Quotas by period start.
pub(crate) struct QuotaIx {
    pub(crate) by_start: EventList<u32>,
    /// `max_end[i]`: the latest end among quotas `0..=i` (by start).
    pub(crate) max_end: Vec<Timestamp>,
}

impl Ix for QuotaIx {
    type Row = QuotaRow;
    type Rows = Vec<QuotaRow>;
    type Ctx = ();

    fn attr((): &(), q: &QuotaRow, d: Dimension) -> Sym {
        match d {
            Dimension::Owner => q.owner,
            _ => NONE,
        }
    }

    fn build((): &(), rows: &Self::Rows, subset: &[u32]) -> Self {
        let by_start = ev_rows(subset, |r| Some(rows.row(r).start));
        let max_end = by_start
            .items
            .iter()
            .scan(None, |latest: &mut Option<Timestamp>, r| {
                let end = rows.row(*r).end;
                let m = latest.map_or(end, |l| l.max(end));
                *latest = Some(m);
                Some(m)
            })
            .collect();
        QuotaIx { by_start, max_end }
    }
}

// ---------------------------------------------------------------- leads

/// Leads by creation time.
pub(crate) struct LeadIx {
    pub(crate) created: EventList<u32>,
    /// Leads (in `created` order) by conversion time (never: the end of time).
    pub(crate) created_by_conversion: Blocked,
}

impl Ix for LeadIx {
    type Row = LeadRow;
    type Rows = Slab<LeadRow>;
    type Ctx = Arc<Lookups>;

    fn attr(lk: &Arc<Lookups>, l: &LeadRow, d: Dimension) -> Sym {
        match d {
            Dimension::Source => lk.source(l.source),
            Dimension::Campaign => l.campaign,
            Dimension::Channel => lk.channel(l.campaign),
            _ => NONE,
        }
    }

    fn build(_: &Arc<Lookups>, rows: &Self::Rows, subset: &[u32]) -> Self {
        let created = ev_rows(subset, |r| Some(rows.row(r).created_at.get()));
        LeadIx {
            created_by_conversion: Blocked::new(
                created.items.len(),
                |i| {
                    let lead = rows.row(created.items[i]);
                    lead.converted_at.get().unwrap_or(Timestamp::MAX)
                },
                &[],
            ),
            created,
        }
    }
}

// ---------------------------------------------------------------- customers

impl CustomerRow {
    /// When the customer was acquired.
    pub(crate) fn acquired(&self) -> Timestamp {
        self.acquired_at.get()
    }

    /// When the customer churned, if they did.
    pub(crate) fn churned(&self) -> Option<Timestamp> {
        self.churned_at.get()
    }

    /// The time from acquisition to churn (zero without one), in nanoseconds.
    pub(crate) fn tenure_nanos(&self) -> i128 {
        nanos_between(self.acquired(), self.churned().unwrap_or(self.acquired()))
    }
}

/// What customer rows read: the lookups, and the subscriptions with their classes (a
/// customer's first MRR is their earliest subscription's).
pub(crate) struct CustomerCtx {
    pub(crate) lk: Arc<Lookups>,
    pub(crate) subs: Arc<Slab<SubRow>>,
    pub(crate) classes: Arc<SubClasses>,
}

impl CustomerCtx {
    /// The first MRR of customer `c`'s earliest subscription, if they have one.
    pub(crate) fn first_mrr(&self, c: &CustomerRow) -> Option<Decimal> {
        let sub = self.classes.first(c.id)?;
        Some(self.subs.row(sub).mrr_changes[0].1)
    }
}

/// Customers by acquisition (all, and marketing-sourced) and by churn.
pub(crate) struct CustomerIx {
    pub(crate) acquired: EventList<u32>,
    /// Customers (in `acquired` order) by churn time (never: the end of time).
    pub(crate) acquired_by_churn: Blocked,
    /// How many customers (in `acquired` order) have a first MRR, and its sum.
    pub(crate) with_first_mrr: IntSums,
    pub(crate) first_mrr: DecSums,
    pub(crate) marketing: EventList<u32>,
    pub(crate) churned: EventList<u32>,
    /// Churned customers (in `churned` order) by acquisition time.
    pub(crate) churned_by_acquisition: Blocked,
    pub(crate) tenure: IntSums,
}

impl Ix for CustomerIx {
    type Row = CustomerRow;
    type Rows = Slab<CustomerRow>;
    type Ctx = CustomerCtx;

    fn attr(ctx: &CustomerCtx, c: &CustomerRow, d: Dimension) -> Sym {
        match d {
            Dimension::Owner => c.owner,
            Dimension::Source => ctx.lk.source(c.source),
            Dimension::Campaign => c.campaign,
            Dimension::Channel => ctx.lk.channel(c.campaign),
            Dimension::Segment => c.segment,
            Dimension::Stage | Dimension::Agent => NONE,
        }
    }

    fn build(ctx: &CustomerCtx, rows: &Self::Rows, subset: &[u32]) -> Self {
        let first_mrr = |r: u32| ctx.first_mrr(rows.row(r));
        let row = |r: u32| rows.row(r);
        let churned = ev_rows(subset, |r| row(r).churned());
        let acquired = ev_rows(subset, |r| Some(row(r).acquired()));
        CustomerIx {
            acquired_by_churn: Blocked::new(
                acquired.items.len(),
                |i| row(acquired.items[i]).churned().unwrap_or(Timestamp::MAX),
                &[],
            ),
            with_first_mrr: IntSums::new(
                acquired
                    .items
                    .iter()
                    .map(|r| i128::from(first_mrr(*r).is_some())),
            ),
            first_mrr: DecSums::new(
                acquired
                    .items
                    .iter()
                    .map(|r| first_mrr(*r).unwrap_or(Decimal::ZERO)),
            ),
            churned_by_acquisition: Blocked::new(
                churned.items.len(),
                |i| row(churned.items[i]).acquired(),
                &[],
            ),
            acquired,
            marketing: ev_rows(subset, |r| {
                Some(row(r).acquired()).filter(|_| row(r).source == Source::Marketing)
            }),
            tenure: IntSums::new(churned.items.iter().map(|r| row(*r).tenure_nanos())),
            churned,
        }
    }
}

// ---------------------------------------------------------------- spend

/// Money spent.
pub(crate) struct SpendRow {
    pub(crate) at: Timestamp,
    pub(crate) amount: Decimal,
    pub(crate) category: usize,
    pub(crate) campaign: Sym,
    /// Its own channel's symbol, else its campaign's.
    pub(crate) channel: Sym,
}

impl SpendRow {
    /// Its amount if it is of category `c`, else zero.
    pub(crate) fn amount_in(&self, c: usize) -> Decimal {
        if self.category == c {
            self.amount
        } else {
            Decimal::ZERO
        }
    }

    /// Its amount if it was spent on a campaign, else zero.
    pub(crate) fn campaign_amount(&self) -> Decimal {
        if self.campaign != NONE {
            self.amount
        } else {
            Decimal::ZERO
        }
    }
}

/// Spend by time, with sums per category and for campaigns.
pub(crate) struct SpendIx {
    pub(crate) at: EventList<u32>,
    pub(crate) by_category: Vec<DecSums>,
    pub(crate) campaign: DecSums,
}

impl Ix for SpendIx {
    type Row = SpendRow;
    type Rows = Vec<SpendRow>;
    type Ctx = ();

    fn attr((): &(), x: &SpendRow, d: Dimension) -> Sym {
        match d {
            Dimension::Campaign => x.campaign,
            Dimension::Channel => x.channel,
            _ => NONE,
        }
    }

    fn build((): &(), rows: &Self::Rows, subset: &[u32]) -> Self {
        let row = |r: &u32| rows.row(*r);
        let at = ev_rows(subset, |r| Some(rows.row(r).at));
        let by_category = (0..kpi_core::SpendCategories::NAMES.len())
            .map(|c| DecSums::new(at.items.iter().map(|r| row(r).amount_in(c))))
            .collect();
        let campaign = DecSums::new(at.items.iter().map(|r| row(r).campaign_amount()));
        SpendIx {
            at,
            by_category,
            campaign,
        }
    }
}

// ---------------------------------------------------------------- campaigns

/// A campaign.
pub(crate) struct CampaignRow {
    pub(crate) id: Sym,
    /// The symbol of its channel's name.
    pub(crate) channel: Sym,
    pub(crate) started: Timestamp,
    pub(crate) email: bool,
    pub(crate) delivered: u64,
    pub(crate) opens: u64,
    pub(crate) clicks: u64,
}

/// Email campaigns by start, with sums of their counters.
pub(crate) struct CampaignIx {
    pub(crate) email: EventList<u32>,
    pub(crate) delivered: IntSums,
    pub(crate) opens: IntSums,
    pub(crate) clicks: IntSums,
}

impl Ix for CampaignIx {
    type Row = CampaignRow;
    type Rows = Vec<CampaignRow>;
    type Ctx = ();

    fn attr((): &(), c: &CampaignRow, d: Dimension) -> Sym {
        match d {
            Dimension::Campaign => c.id,
            Dimension::Channel => c.channel,
            _ => NONE,
        }
    }

    fn build((): &(), rows: &Self::Rows, subset: &[u32]) -> Self {
        let row = |r: &u32| rows.row(*r);
        let email = ev_rows(subset, |r| {
            Some(rows.row(r).started).filter(|_| rows.row(r).email)
        });
        CampaignIx {
            delivered: IntSums::new(email.items.iter().map(|r| i128::from(row(r).delivered))),
            opens: IntSums::new(email.items.iter().map(|r| i128::from(row(r).opens))),
            clicks: IntSums::new(email.items.iter().map(|r| i128::from(row(r).clicks))),
            email,
        }
    }
}

// ---------------------------------------------------------------- purchases

/// Purchases by time; for each, the previous purchase of the same customer and the one
/// before that (distinct and repeat buyers of a range without a pass over it).
pub(crate) struct PurchaseIx {
    pub(crate) at: EventList<u32>,
    pub(crate) amount: DecSums,
    pub(crate) prev: Vec<u32>,
    pub(crate) prev2: Vec<u32>,
    /// Purchases (in `at` order) by their customer's acquisition, summing amounts
    /// ([`ALL_AMOUNTS`]) and the amounts of marketing-sourced customers
    /// ([`MARKETING_AMOUNTS`]); see [`PurchaseIx::by_acquisition`].
    pub(crate) by_acquisition: ByCustomers<Blocked>,
}

impl PurchaseIx {
    /// The purchases of `at` by their customer's acquisition (for
    /// [`PurchaseIx::by_acquisition`]).
    pub(crate) fn by_acquisition(
        lk: &Lookups,
        rows: &Slab<PurchaseRow>,
        at: &EventList<u32>,
    ) -> Blocked {
        by_acquisition(lk, at.items.len(), |i| {
            let p = rows.row(at.items[i]);
            (p.customer, p.amount)
        })
    }
}

impl Ix for PurchaseIx {
    type Row = PurchaseRow;
    type Rows = Slab<PurchaseRow>;
    type Ctx = Arc<Lookups>;

    fn attr(lk: &Arc<Lookups>, p: &PurchaseRow, d: Dimension) -> Sym {
        lk.customer_attr(p.customer, d)
    }

    fn build(_: &Arc<Lookups>, rows: &Self::Rows, subset: &[u32]) -> Self {
        let at = ev_rows(subset, |r| Some(rows.row(r).at.get()));
        let prev = previous_same(&at, |r| rows.row(r).customer);
        let prev2 = prev
            .iter()
            .map(|p| if *p == NONE { NONE } else { prev[*p as usize] })
            .collect();
        PurchaseIx {
            by_acquisition: ByCustomers::default(),
            amount: DecSums::new(at.items.iter().map(|r| rows.row(*r).amount)),
            at,
            prev,
            prev2,
        }
    }

    fn warm(&self, lk: &Arc<Lookups>, rows: &Self::Rows, _: &[u32]) {
        self.by_acquisition
            .get(lk, || PurchaseIx::by_acquisition(lk, rows, &self.at));
    }
}

// ---------------------------------------------------------------- subscriptions

/// A subscription's MRR history, read per the module doc of `crate::subscription`
/// (worked out from the store's row while the index is built, not kept).
pub(crate) struct SubHistory {
    pub(crate) customer: Sym,
    pub(crate) started: Timestamp,
    pub(crate) first_mrr: Decimal,
    /// Whether its customer had no subscription active when it started.
    pub(crate) new: bool,
    /// Changes after the starting one and before the end: (at, previous MRR, new MRR).
    pub(crate) changes: Vec<(Timestamp, Decimal, Decimal)>,
    /// The end and the MRR in effect just before it.
    pub(crate) end: Option<(Timestamp, Decimal)>,
}

impl SubHistory {
    /// The history of `s`; `new`: whether its customer had no subscription active when
    /// it started.
    pub(crate) fn of(s: &SubRow, new: bool) -> Self {
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
        SubHistory {
            customer: s.customer,
            started: s.started_at.get(),
            first_mrr: s.mrr_changes[0].1,
            new,
            changes,
            end: end.map(|e| (e, prev)),
        }
    }
}

/// What an MRR movement is (every one is also a delta of the MRR).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum MoveKind {
    /// A start when the customer had no subscription active.
    New,
    /// A start beside another active subscription, or a change up.
    Expansion,
    /// A change down.
    Contraction,
    /// A change to the same MRR.
    Unchanged,
    /// The end: the MRR in effect just before it is lost.
    Churn,
}

impl SubHistory {
    /// Its MRR movements in order: when, the signed change of MRR, and what it is.
    pub(crate) fn into_moves(self) -> impl Iterator<Item = (Timestamp, Decimal, MoveKind)> {
        let start = if self.new {
            MoveKind::New
        } else {
            MoveKind::Expansion
        };
        let changes = self.changes.into_iter().map(|(at, prev, next)| {
            let kind = match next.cmp(&prev) {
                std::cmp::Ordering::Greater => MoveKind::Expansion,
                std::cmp::Ordering::Less => MoveKind::Contraction,
                std::cmp::Ordering::Equal => MoveKind::Unchanged,
            };
            (at, next - prev, kind)
        });
        let end = self.end.map(|(at, before)| (at, -before, MoveKind::Churn));
        std::iter::once((self.started, self.first_mrr, start))
            .chain(changes)
            .chain(end)
    }

    /// The intervals `(a, b]` (`b` none: still open) in which its MRR is above 0.
    fn paying(&self) -> Vec<(Timestamp, Option<Timestamp>)> {
        let mut out = Vec::new();
        let mut open: Option<Timestamp> = None;
        let steps = std::iter::once((self.started, self.first_mrr))
            .chain(self.changes.iter().map(|(at, _, next)| (*at, *next)))
            .chain(self.end.map(|(at, _)| (at, Decimal::ZERO)));
        for (at, mrr) in steps {
            match (open, mrr > Decimal::ZERO) {
                (None, true) => open = Some(at),
                (Some(a), false) => {
                    if a < at {
                        out.push((a, Some(at)));
                    }
                    open = None;
                }
                _ => {}
            }
        }
        if let Some(a) = open {
            out.push((a, None));
        }
        out
    }
}

/// What subscriptions are as a whole, which depends on the subscriptions alone (so an
/// index keeps it while they do not change): per subscription slot, whether it is its
/// customer's new MRR (no other subscription of the customer active when it started);
/// per customer id symbol, the slot of their earliest subscription (earliest start, then
/// smallest id; [`NONE`] without one).
pub(crate) struct SubClasses {
    new: Vec<bool>,
    first: Vec<u32>,
}

impl SubClasses {
    /// Whether the subscription at `slot` is its customer's new MRR.
    pub(crate) fn new_mrr(&self, slot: u32) -> bool {
        self.new[slot as usize]
    }

    /// The slot of the earliest subscription of the customer with id symbol `customer`.
    pub(crate) fn first(&self, customer: Sym) -> Option<u32> {
        self.first
            .get(customer as usize)
            .copied()
            .filter(|s| *s != NONE)
    }

    /// The classes of `subs`: one sort by customer and start, then one pass.
    pub(crate) fn of(subs: &Slab<SubRow>) -> Self {
        let mut order: Vec<(Sym, Timestamp, u32)> = subs
            .slots()
            .map(|(slot, s)| (s.customer, s.started_at.get(), slot))
            .collect();
        order.sort_unstable_by(|a, b| {
            (a.0, a.1)
                .cmp(&(b.0, b.1))
                .then_with(|| subs.row(a.2).id.cmp(&subs.row(b.2).id))
        });
        let customers = order.last().map_or(0, |(c, _, _)| *c as usize + 1);
        let mut new = vec![false; subs.slot_count()];
        let mut first = vec![NONE; customers];
        for group in order.chunk_by(|a, b| a.0 == b.0) {
            first[group[0].0 as usize] = group[0].2;
            // The latest end among subscriptions that started earlier (None inside: never).
            let mut latest_end: Option<Option<Timestamp>> = None;
            for same_start in group.chunk_by(|a, b| a.1 == b.1) {
                let start = same_start[0].1;
                let active = match latest_end {
                    None => false,
                    Some(None) => true,
                    Some(Some(e)) => e >= start,
                };
                for (_, _, slot) in same_start {
                    new[*slot as usize] = !active;
                    let end = crate::subscription::end_of(subs.row(*slot));
                    latest_end = Some(match (latest_end, end) {
                        (Some(None), _) | (_, None) => None,
                        (Some(Some(a)), Some(b)) => Some(a.max(b)),
                        (None, Some(b)) => Some(b),
                    });
                }
            }
        }
        SubClasses { new, first }
    }
}

/// What subscription rows read: the lookups, and whether each is its customer's new MRR.
#[derive(Clone)]
pub(crate) struct SubCtx {
    pub(crate) lk: Arc<Lookups>,
    pub(crate) classes: Arc<SubClasses>,
}

/// MRR movements of one kind by time: each one's subscription (row) and amount, and the
/// amounts' prefix sums.
pub(crate) struct Moves {
    pub(crate) ev: EventList<u32>,
    amounts: DecCol,
    pub(crate) sums: DecSums,
}

impl Moves {
    /// The `n` movements `items` (time, (row, amount)), sorted.
    fn new(n: usize, items: impl Iterator<Item = (Timestamp, (u32, Decimal))>) -> Self {
        let ev = EventList::collect(n, items);
        let amounts = ev.items.iter().map(|(_, x)| *x);
        Moves {
            sums: DecSums::new(amounts.clone()),
            amounts: DecCol::new(amounts),
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
pub(crate) struct SubIx {
    /// Every MRR movement, signed; prefix sums are the MRR at a time.
    pub(crate) deltas: Moves,
    pub(crate) new: Moves,
    pub(crate) expansion: Moves,
    pub(crate) contraction: Moves,
    pub(crate) churn: Moves,
    pub(crate) due: EventList<u32>,
    pub(crate) renewed: EventList<u32>,
    /// Per customer, the maximal intervals `(a, b]` in which they have an active
    /// subscription with MRR > 0: keyed by `a`, with a row of the customer and `b`.
    pub(crate) paying_from: EventList<(u32, OptTs)>,
    /// The same intervals keyed by `b`.
    pub(crate) paying_until: EventList<u32>,
}

impl Ix for SubIx {
    type Row = SubRow;
    type Rows = Slab<SubRow>;
    type Ctx = SubCtx;

    fn attr(ctx: &SubCtx, s: &SubRow, d: Dimension) -> Sym {
        ctx.lk.customer_attr(s.customer, d)
    }

    fn build(ctx: &SubCtx, rows: &Self::Rows, subset: &[u32]) -> Self {
        let history = |r: u32| SubHistory::of(rows.row(r), ctx.classes.new_mrr(r));
        // Each kind of movement in two passes over the histories (counted, then
        // collected), one kind at a time: nothing but the list being sorted is held.
        let moves = |keep: fn(MoveKind) -> bool, lost: bool| {
            let items = || {
                subset.iter().flat_map(move |r| {
                    history(*r)
                        .into_moves()
                        .filter(move |(_, _, kind)| keep(*kind))
                        .map(move |(at, d, _)| (at, (*r, if lost { -d } else { d })))
                })
            };
            Moves::new(items().count(), items())
        };
        // Per customer, the maximal intervals in which they pay: each subscription's,
        // sorted by customer and start, merged in place where they overlap.
        let mut intervals: Vec<(Sym, Ts, OptTs, u32)> = Vec::with_capacity(subset.len());
        for r in subset {
            let h = history(*r);
            intervals.extend(
                h.paying()
                    .into_iter()
                    .map(|(a, b)| (h.customer, Ts::new(a), OptTs::new(b), *r)),
            );
        }
        intervals.sort_by_key(|(c, a, _, _)| (*c, a.get()));
        let mut kept: usize = 0;
        for i in 0..intervals.len() {
            let (c, a, b, r) = intervals[i];
            match kept.checked_sub(1).map(|k| &mut intervals[k]) {
                // (a1, b1] and (a2, b2] with a2 ≤ b1 make one interval.
                Some(last) if last.0 == c && last.2.get().is_none_or(|b1| a.get() <= b1) => {
                    last.2 = OptTs::new(match (last.2.get(), b.get()) {
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
        SubIx {
            deltas: moves(|_| true, false),
            new: moves(|k| k == MoveKind::New, false),
            expansion: moves(|k| k == MoveKind::Expansion, false),
            contraction: moves(|k| k == MoveKind::Contraction, true),
            churn: moves(|k| k == MoveKind::Churn, true),
            due: ev_rows(subset, |r| rows.row(r).renewal_due_at.get()),
            renewed: ev_rows(subset, |r| {
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

// ---------------------------------------------------------------- tickets

impl TicketRow {
    /// When it was resolved (`resolved`), else first responded to.
    pub(crate) fn until(&self, resolved: bool) -> Option<Timestamp> {
        if resolved {
            self.resolved_at.get()
        } else {
            self.first_response_at.get()
        }
    }

    /// The time from its opening to [`TicketRow::until`] (zero without it), in
    /// nanoseconds.
    pub(crate) fn wait_nanos(&self, resolved: bool) -> i128 {
        let opened = self.opened_at.get();
        nanos_between(opened, self.until(resolved).unwrap_or(opened))
    }
}

/// Tickets by one of their times (resolution or first response), with the time from
/// opening to it summed.
pub(crate) struct TicketTimes {
    pub(crate) ev: EventList<u32>,
    pub(crate) nanos: IntSums,
}

impl TicketTimes {
    /// The tickets among `subset` by resolution (`resolved`) or first response.
    fn build(rows: &Slab<TicketRow>, subset: &[u32], resolved: bool) -> Self {
        let ev = ev_rows(subset, |r| rows.row(r).until(resolved));
        let nanos = IntSums::new(ev.items.iter().map(|r| rows.row(*r).wait_nanos(resolved)));
        TicketTimes { ev, nanos }
    }

    /// The tickets among `subset` by resolution.
    pub(crate) fn resolved(_: &Arc<Lookups>, rows: &Slab<TicketRow>, subset: &[u32]) -> Self {
        Self::build(rows, subset, true)
    }

    /// The tickets among `subset` by first response.
    pub(crate) fn responded(_: &Arc<Lookups>, rows: &Slab<TicketRow>, subset: &[u32]) -> Self {
        Self::build(rows, subset, false)
    }
}

/// Tickets by resolution and by first response, each built on first use (an agent's
/// partition is read for resolutions only).
pub(crate) struct TicketIx {
    pub(crate) resolved: OnceLock<TicketTimes>,
    pub(crate) responded: OnceLock<TicketTimes>,
}

impl Ix for TicketIx {
    type Row = TicketRow;
    type Rows = Slab<TicketRow>;
    type Ctx = Arc<Lookups>;

    fn attr(lk: &Arc<Lookups>, t: &TicketRow, d: Dimension) -> Sym {
        match d {
            Dimension::Agent => t.agent,
            Dimension::Source | Dimension::Segment => lk.customer_attr(t.customer, d),
            _ => NONE,
        }
    }

    fn build(_: &Arc<Lookups>, _: &Self::Rows, _: &[u32]) -> Self {
        TicketIx {
            resolved: OnceLock::new(),
            responded: OnceLock::new(),
        }
    }

    fn warm(&self, lk: &Arc<Lookups>, rows: &Self::Rows, subset: &[u32]) {
        self.resolved
            .get_or_init(|| TicketTimes::resolved(lk, rows, subset));
        self.responded
            .get_or_init(|| TicketTimes::responded(lk, rows, subset));
    }
}

// ---------------------------------------------------------------- surveys

/// Most (scale, score) groups counted group by group; beyond, responses are counted one
/// by one.
pub(crate) const MAX_SCORE_GROUPS: usize = 64;

/// Responses with one (scale_max, score): their times, sorted.
pub(crate) type ScoreGroup = ((u32, Decimal), Times);

/// The responses of one survey kind.
pub(crate) struct SurveyKindIx {
    pub(crate) at: EventList<u32>,
    pub(crate) score: DecSums,
    /// Response times per (scale_max, score), when there are at most
    /// [`MAX_SCORE_GROUPS`] groups.
    pub(crate) groups: Option<Vec<ScoreGroup>>,
}

/// Survey responses per kind (NPS, CSAT, CES).
pub(crate) struct SurveyIx {
    pub(crate) kinds: [SurveyKindIx; 3],
}

/// Position of a survey kind in [`SurveyIx::kinds`].
pub(crate) fn survey_slot(kind: SurveyKind) -> usize {
    match kind {
        SurveyKind::Nps => 0,
        SurveyKind::Csat => 1,
        SurveyKind::Ces => 2,
    }
}

impl Ix for SurveyIx {
    type Row = SurveyRow;
    type Rows = Slab<SurveyRow>;
    type Ctx = Arc<Lookups>;

    fn attr(lk: &Arc<Lookups>, s: &SurveyRow, d: Dimension) -> Sym {
        match d {
            Dimension::Source | Dimension::Segment => lk.customer_attr(s.customer, d),
            _ => NONE,
        }
    }

    fn build(_: &Arc<Lookups>, rows: &Self::Rows, subset: &[u32]) -> Self {
        let kind = |k: SurveyKind| {
            let at = ev_rows(subset, |r| {
                Some(rows.row(r).at.get()).filter(|_| rows.row(r).kind == k)
            });
            let mut groups: HashMap<(u32, Decimal), Vec<Timestamp>> = HashMap::new();
            let mut too_many = false;
            for (t, r) in at.times.iter().zip(&at.items) {
                let s = &rows.row(*r);
                let key = (s.scale_max, s.score.normalize());
                if !groups.contains_key(&key) && groups.len() == MAX_SCORE_GROUPS {
                    too_many = true;
                    break;
                }
                groups.entry(key).or_default().push(t);
            }
            SurveyKindIx {
                score: DecSums::new(at.items.iter().map(|r| rows.row(*r).score)),
                groups: (!too_many).then(|| {
                    groups
                        .into_iter()
                        .map(|(key, times)| (key, Times::new(times)))
                        .collect()
                }),
                at,
            }
        };
        SurveyIx {
            kinds: [
                kind(SurveyKind::Nps),
                kind(SurveyKind::Csat),
                kind(SurveyKind::Ces),
            ],
        }
    }
}
