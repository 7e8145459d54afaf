//! Deals: won, lost and upsell deals by close, every deal by close and by creation, and
//! won deals by their customer's acquisition; the measures they answer.

use std::sync::{Arc, OnceLock};

use jiff::Timestamp;
use kpi_core::{Decimal, Dimension, Measure, MetricError, Window};

use super::blocked::Blocked;
use super::count;
use super::events::{previous_same, rows_by_time, EventList};
use super::lookups::{by_acquisition, ByCustomers, Lookups, NewCustomerSales};
use super::parallel::{join, PARALLEL_ROWS};
use super::part::{Ix, Part, Resolved};
use super::sums::{DecSums, IntSums};
use crate::record::{DealKind, DealStatus, RecordKind};
use crate::rows::{DealRow, Slab};
use crate::symbols::{Sym, NONE};
use crate::units::{nanos_between, nanos_to, DAY_NANOS};

/// The kinds the deal part reads: deals, and the customers and campaigns they inherit
/// dimensions and acquisitions from.
pub(crate) const READS: &[RecordKind] =
    &[RecordKind::Deal, RecordKind::Customer, RecordKind::Campaign];

/// Whether the deal part answers `measure` (alone, or with others: new-customer revenue
/// adds the purchases' share; open deals under a stage filter are the stage stays').
pub(crate) fn answers(measure: Measure) -> bool {
    matches!(
        measure,
        Measure::DealsWon
            | Measure::DealsLost
            | Measure::WonAmount
            | Measure::WonCycleDaysTotal
            | Measure::ClosingReps
            | Measure::DealsOpen
            | Measure::OpenAmount
            | Measure::UpsoldCustomers
            | Measure::CampaignAttributedRevenue
            | Measure::EmailAttributedRevenue
            | Measure::NewCustomerRevenue
            | Measure::NewCustomerRevenueFromMarketing
    )
}

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
            || rows_by_time(subset, |r| row(r).closed_at.get()),
            || rows_by_time(subset, |r| Some(row(r).created_at.get())),
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
            let won = rows_by_time(subset, |r| row(r).closed_at.get().filter(|_| row(r).won()));
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
            let lost = rows_by_time(subset, |r| row(r).closed_at.get().filter(|_| row(r).lost()));
            let upsell = rows_by_time(subset, |r| {
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

/// The deals' value of `measure` (one [`answers`]) over `w` and the filters `f`.
pub(crate) fn measure(
    part: &Part<DealIx>,
    measure: Measure,
    w: &Window,
    f: &Resolved,
) -> Result<Decimal, MetricError> {
    if matches!(
        measure,
        Measure::NewCustomerRevenue | Measure::NewCustomerRevenueFromMarketing
    ) {
        return new_customer_revenue(part, NewCustomerSales::of(measure), w, f);
    }
    let Some(s) = part.select(f) else {
        return Ok(Decimal::ZERO);
    };
    let ix = s.ix;
    let won = || ix.won.range(w);
    let other = || s.lazy(&ix.other, DealOther::build);
    Ok(match measure {
        Measure::DealsWon => count(s.count(&ix.won, won())),
        Measure::DealsLost => count(s.count(&ix.lost, ix.lost.range(w))),
        Measure::WonAmount => s.sum(&ix.won, won(), &ix.won_amount, |e| s.row(e).amount)?,
        Measure::WonCycleDaysTotal => {
            let nanos = s.int_sum(&ix.won, won(), &ix.won_cycle, |e| s.row(e).cycle_nanos());
            nanos_to(nanos, DAY_NANOS)?
        }
        Measure::ClosingReps => count(s.distinct(
            &other().closed,
            other().closed.range(w),
            &other().closed_prev_owner,
            |e| s.row(e).owner,
        )),
        // Open at end: created before it and not closed before it. A deal closed
        // before the end was created before it too, so the open ones are the
        // created ones less the closed ones.
        Measure::DealsOpen if s.all() => {
            count(other().created.before(w.end) - other().closed.before(w.end))
        }
        Measure::DealsOpen => count(s.count_where(
            &other().created,
            0..other().created.before(w.end),
            |e| s.row(e).closed_at.get().is_none_or(|c| c >= w.end),
        )),
        Measure::OpenAmount => {
            let fast = s
                .all()
                .then(|| {
                    let (o, amount) = (other(), |e: &u32| s.row(e).amount);
                    let created = o
                        .created_amount
                        .prefix(o.created.before(w.end), |i| amount(&o.created.items[i]))?;
                    let closed = o
                        .closed_amount
                        .prefix(o.closed.before(w.end), |i| amount(&o.closed.items[i]))?;
                    created.checked_sub(closed)
                })
                .flatten();
            match fast {
                Some(sum) => sum,
                None => s.sum_where(
                    &other().created,
                    0..other().created.before(w.end),
                    |e| s.row(e).closed_at.get().is_none_or(|c| c >= w.end),
                    |e| s.row(e).amount,
                )?,
            }
        }
        Measure::UpsoldCustomers => count(s.distinct(
            &ix.upsell,
            ix.upsell.range(w),
            &ix.upsell_prev_customer,
            |e| s.row(e).customer,
        )),
        Measure::CampaignAttributedRevenue => {
            s.sum(&ix.won, won(), &ix.won_campaign_amount, |e| {
                s.row(e).campaign_amount()
            })?
        }
        Measure::EmailAttributedRevenue => s.sum(&ix.won, won(), &ix.won_email_amount, |e| {
            s.row(e).email_amount(s.ctx)
        })?,
        _ => unreachable!("deals::measure is called with the measures deals answer only"),
    })
}

/// The won deals' share of new-customer revenue: won deals closed in `w` whose customer
/// was acquired in `w` (as `sales` says).
fn new_customer_revenue(
    part: &Part<DealIx>,
    sales: NewCustomerSales,
    w: &Window,
    f: &Resolved,
) -> Result<Decimal, MetricError> {
    let Some(s) = part.select(f) else {
        return Ok(Decimal::ZERO);
    };
    let won = &s.ix.won;
    let (from, to) = NewCustomerSales::acquired_in(w);
    let fast = s
        .all()
        .then(|| {
            let blocked =
                s.ix.won_by_acquisition
                    .get(s.ctx, || DealIx::by_acquisition(s.ctx, s.rows, won));
            blocked.sum(sales.column(), won.range(w), from, to, |i| {
                let d = s.row(&won.items[i]);
                let (acquired, marketing) = d.customer_acquired(s.ctx);
                (acquired, sales.counted(d.amount, marketing))
            })
        })
        .flatten();
    match fast {
        Some(sum) => sum,
        None => s.sum_where(
            won,
            won.range(w),
            |e| {
                let (acquired, marketing) = s.row(e).customer_acquired(s.ctx);
                sales.counts(w, acquired, marketing)
            },
            |e| s.row(e).amount,
        ),
    }
}
