//! Deals: won, lost and upsell deals by close, every deal by close and by creation, and
//! won deals by their customer's acquisition; the measures they answer.

use std::sync::{Arc, OnceLock};

use jiff::Timestamp;
use kpi_core::{Decimal, Dimension, Measure, MetricError, Window};

use super::blocked::Blocked;
use super::count;
use super::delta::LayeredPart;
use super::dependents::RowKey;
use super::events::{previous_same, rows_by_time, EventList, HasRow};
use super::lookups::{by_acquisition, ByCustomers, Lookups, NewCustomerSales};
use super::parallel::{join, PARALLEL_ROWS};
use super::part::{KindIndex, Part, ResolvedFilters};
use super::sums::{DecimalSums, IntegerSums};
use crate::record::{DealKind, DealStatus, RecordKind};
use crate::rows::{DealRow, Slab};
use crate::symbols::{Sym, NONE};
use crate::units::{nanos_between, nanos_decimal};

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
    pub(crate) fn email_amount(&self, lookups: &Lookups) -> Decimal {
        if lookups.is_email(self.campaign) {
            self.amount
        } else {
            Decimal::ZERO
        }
    }

    /// When its customer was acquired, and whether the customer is marketing-sourced.
    pub(crate) fn customer_acquired(&self, lookups: &Lookups) -> (Option<Timestamp>, bool) {
        lookups.acquisition(self.customer)
    }
}

/// Deals by closing time (won, lost, both, won upsells) and by creation time. What a
/// campaign's or a rep's dashboard rarely reads (every deal by creation and by close, won
/// deals by their customer's acquisition) is built on first use ([`Selection::lazy`]), so the
/// partitions grouped queries build stay small.
pub(crate) struct DealIndex {
    pub(crate) won: EventList<u32>,
    pub(crate) won_amount: DecimalSums,
    pub(crate) won_cycle: IntegerSums,
    pub(crate) won_campaign_amount: DecimalSums,
    pub(crate) won_email_amount: DecimalSums,
    pub(crate) lost: EventList<u32>,
    pub(crate) upsell: EventList<u32>,
    pub(crate) upsell_prev_customer: Vec<u32>,
    /// Won deals (in `won` order) by their customer's acquisition, summing amounts
    /// ([`ALL_AMOUNTS`]) and the amounts of marketing-sourced customers
    /// ([`MARKETING_AMOUNTS`]); see [`DealIndex::by_acquisition`].
    pub(crate) won_by_acquisition: ByCustomers<Blocked>,
    /// Closed and created deals; see [`DealsClosedAndCreated::build`].
    pub(crate) other: OnceLock<DealsClosedAndCreated>,
}

/// Every deal by close and by creation, with amounts summed.
pub(crate) struct DealsClosedAndCreated {
    pub(crate) closed: EventList<u32>,
    pub(crate) closed_prev_owner: Vec<u32>,
    /// Closed deals' amounts summed in `closed` order.
    pub(crate) closed_amount: DecimalSums,
    pub(crate) created: EventList<u32>,
    pub(crate) created_amount: DecimalSums,
}

impl DealsClosedAndCreated {
    /// The closed and created deals among `subset`.
    pub(crate) fn build(_: &Arc<Lookups>, rows: &Slab<DealRow>, subset: &[u32]) -> Self {
        let row = |r: u32| rows.row(r);
        let amount = |r: &u32| row(*r).amount;
        let (closed, created) = join(
            subset.len() >= PARALLEL_ROWS,
            || rows_by_time(subset, |r| row(r).closed_at.get()),
            || rows_by_time(subset, |r| Some(row(r).created_at.get())),
        );
        DealsClosedAndCreated {
            closed_amount: DecimalSums::new(closed.items.iter().map(amount)),
            closed_prev_owner: previous_same(&closed, |r| row(r).owner),
            created_amount: DecimalSums::new(created.items.iter().map(amount)),
            closed,
            created,
        }
    }
}

impl DealIndex {
    /// The won deals of `won` by their customer's acquisition (for
    /// [`DealIndex::won_by_acquisition`]).
    pub(crate) fn by_acquisition(
        lookups: &Lookups,
        rows: &Slab<DealRow>,
        won: &EventList<u32>,
    ) -> Blocked {
        by_acquisition(lookups, won.items.len(), |i| {
            let d = rows.row(won.items[i]);
            (d.customer, d.amount)
        })
    }
}

impl KindIndex for DealIndex {
    type Row = DealRow;
    type Table = Slab<DealRow>;
    type Context = Arc<Lookups>;

    fn record_slot(_: &Self::Table, position: u32) -> u32 {
        position
    }

    fn customer_lookups(lookups: &Arc<Lookups>) -> Option<&Lookups> {
        Some(lookups)
    }

    fn customer(_: &Arc<Lookups>, d: &DealRow) -> Sym {
        d.customer
    }

    fn campaign(_: &Arc<Lookups>, d: &DealRow) -> Sym {
        d.campaign
    }

    fn attr(lookups: &Arc<Lookups>, d: &DealRow, dim: Dimension) -> Sym {
        match dim {
            Dimension::Owner => d.owner,
            Dimension::Campaign => d.campaign,
            Dimension::Channel => lookups.channel(d.campaign),
            Dimension::Source | Dimension::Segment => lookups.customer_attr(d.customer, dim),
            _ => NONE,
        }
    }

    fn build(lookups: &Arc<Lookups>, rows: &Self::Table, subset: &[u32]) -> Self {
        let row = |r: u32| rows.row(r);
        let amount = |r: &u32| row(*r).amount;
        // Won deals on one side, lost deals and upsells on the other (two threads for
        // large parts).
        let won_side = || {
            let won = rows_by_time(subset, |r| row(r).closed_at.get().filter(|_| row(r).won()));
            let won_rows = || won.items.iter().map(|r| row(*r));
            let sums = (
                DecimalSums::new(won.items.iter().map(amount)),
                IntegerSums::new(won_rows().map(DealRow::cycle_nanos)),
                DecimalSums::new(won_rows().map(DealRow::campaign_amount)),
                DecimalSums::new(won_rows().map(|d| d.email_amount(lookups))),
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
        DealIndex {
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

    fn warm(&self, lookups: &Arc<Lookups>, rows: &Self::Table, subset: &[u32]) {
        join(
            subset.len() >= PARALLEL_ROWS,
            || {
                self.other
                    .get_or_init(|| DealsClosedAndCreated::build(lookups, rows, subset))
            },
            || {
                self.won_by_acquisition
                    .get(lookups, self.won.items.len(), || {
                        DealIndex::by_acquisition(lookups, rows, &self.won)
                    })
            },
        );
    }
}

/// The deals' value of `measure` (one [`answers`]) over `w` and the filters `f`.
pub(crate) fn measure(
    part: &Part<DealIndex>,
    measure: Measure,
    w: &Window,
    f: &ResolvedFilters,
) -> Result<Decimal, MetricError> {
    if matches!(
        measure,
        Measure::NewCustomerRevenue | Measure::NewCustomerRevenueFromMarketing
    ) {
        return new_customer_revenue(part, NewCustomerSales::of(measure), w, f);
    }
    let Some(s) = part.select(f)? else {
        return Ok(Decimal::ZERO);
    };
    let index = s.index;
    let won = || index.won.range(w);
    let other = || s.lazy(&index.other, DealsClosedAndCreated::build);
    Ok(match measure {
        Measure::DealsWon => count(s.count(&index.won, won())),
        Measure::DealsLost => count(s.count(&index.lost, index.lost.range(w))),
        Measure::WonAmount => s.sum(&index.won, won(), &index.won_amount, |e| s.row(e).amount)?,
        Measure::WonCycleDaysTotal => {
            let nanos = s.int_sum(&index.won, won(), &index.won_cycle, |e| {
                s.row(e).cycle_nanos()
            });
            nanos_decimal(nanos)?
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
            &index.upsell,
            index.upsell.range(w),
            &index.upsell_prev_customer,
            |e| s.row(e).customer,
        )),
        Measure::CampaignAttributedRevenue => {
            s.sum(&index.won, won(), &index.won_campaign_amount, |e| {
                s.row(e).campaign_amount()
            })?
        }
        Measure::EmailAttributedRevenue => {
            s.sum(&index.won, won(), &index.won_email_amount, |e| {
                s.row(e).email_amount(s.context)
            })?
        }
        _ => unreachable!("deals::measure is called with the measures deals answer only"),
    })
}

/// The won deals' share of new-customer revenue: won deals closed in `w` whose customer
/// was acquired in `w` (as `sales` says).
fn new_customer_revenue(
    part: &Part<DealIndex>,
    sales: NewCustomerSales,
    w: &Window,
    f: &ResolvedFilters,
) -> Result<Decimal, MetricError> {
    let Some(s) = part.select(f)? else {
        return Ok(Decimal::ZERO);
    };
    let won = &s.index.won;
    let (from, to) = NewCustomerSales::acquired_in(w);
    let fast = s
        .all()
        .then(|| {
            let blocked = s
                .index
                .won_by_acquisition
                .get(s.context, won.items.len(), || {
                    DealIndex::by_acquisition(s.context, s.rows, won)
                });
            blocked.sum(sales.column(), won.range(w), from, to, |i| {
                let d = s.row(&won.items[i]);
                let (acquired, marketing) = d.customer_acquired(s.context);
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
                let (acquired, marketing) = s.row(e).customer_acquired(s.context);
                sales.counts(w, acquired, marketing)
            },
            |e| s.row(e).amount,
        ),
    }
}

/// [`Measure::ClosingReps`] (owners of deals closed in `w`) or
/// [`Measure::UpsoldCustomers`] (customers of upsells won in `w`) over the filters `f`,
/// from the deals as a base and a delta ([`LayeredPart::distinct`]).
pub(crate) fn distinct(
    part: &LayeredPart<DealIndex>,
    measure: Measure,
    w: &Window,
    f: &ResolvedFilters,
) -> Result<Decimal, MetricError> {
    let closed_in = |d: &DealRow| d.closed_at.get().is_some_and(|t| w.contains(t));
    let read = |p: &Part<DealIndex>| self::measure(p, measure, w, f);
    // The deals closed in `w` (upsells won in `w`) matching `f`: of those, the counted.
    let candidates = |p: &Part<DealIndex>| {
        let Some(s) = p.select(f)? else {
            return Ok(Vec::new());
        };
        let events = match measure {
            Measure::ClosingReps => &s.lazy(&s.index.other, DealsClosedAndCreated::build).closed,
            _ => &s.index.upsell,
        };
        Ok(events.items[events.range(w)]
            .iter()
            .map(HasRow::row)
            .collect())
    };
    if measure == Measure::ClosingReps {
        part.distinct(read, RowKey::Owner, 1, candidates, |p, i| {
            closed_in(p.rows.row(i)) && p.matches(i, f)
        })
    } else {
        part.distinct(read, RowKey::Customer, 1, candidates, |p, i| {
            let d = p.rows.row(i);
            d.won() && d.upsell() && d.customer != NONE && closed_in(d) && p.matches(i, f)
        })
    }
}

crate::snapshot::snap_fields!(DealIndex {
    won,
    won_amount,
    won_cycle,
    won_campaign_amount,
    won_email_amount,
    lost,
    upsell,
    upsell_prev_customer,
    other,
} else { won_by_acquisition });

crate::snapshot::snap_fields!(DealsClosedAndCreated {
    closed,
    closed_prev_owner,
    closed_amount,
    created,
    created_amount,
});

super::image::imaged_with_sales_by_acquisition!(DealIndex, won_by_acquisition);
