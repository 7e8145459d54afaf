//! Purchases: by time, with each one's previous purchase of the same customer, and by
//! their customer's acquisition; the measures they answer.

use std::collections::HashMap;
use std::sync::Arc;

use kpi_core::{Decimal, Dimension, Measure, MetricError, Window};

use super::blocked::Blocked;
use super::count;
use super::delta::LayeredPart;
use super::dependents::RowKey;
use super::events::{previous_same, rows_by_time, EventList, HasRow};
use super::lookups::{by_acquisition, ByCustomers, Lookups, NewCustomerSales};
use super::part::{KindIndex, Part, ResolvedFilters};
use super::sums::DecimalSums;
use crate::record::RecordKind;
use crate::rows::{PurchaseRow, Slab};
use crate::symbols::{Sym, NONE};

/// The kinds the purchase part reads: purchases, and their customers (through the
/// lookups only).
pub(crate) const READS: &[RecordKind] = &[RecordKind::Purchase, RecordKind::Customer];

/// Whether the purchase part answers `measure` (new-customer revenue with the won deals).
pub(crate) fn answers(measure: Measure) -> bool {
    matches!(
        measure,
        Measure::PurchaseRevenue
            | Measure::Purchases
            | Measure::Buyers
            | Measure::RepeatBuyers
            | Measure::NewCustomerRevenue
            | Measure::NewCustomerRevenueFromMarketing
    )
}

/// Purchases by time; for each, the previous purchase of the same customer and the one
/// before that (distinct and repeat buyers of a range without a pass over it).
pub(crate) struct PurchaseIndex {
    pub(crate) at: EventList<u32>,
    pub(crate) amount: DecimalSums,
    pub(crate) prev: Vec<u32>,
    pub(crate) prev2: Vec<u32>,
    /// Purchases (in `at` order) by their customer's acquisition, summing amounts
    /// ([`ALL_AMOUNTS`]) and the amounts of marketing-sourced customers
    /// ([`MARKETING_AMOUNTS`]); see [`PurchaseIndex::by_acquisition`].
    pub(crate) by_acquisition: ByCustomers<Blocked>,
}

impl PurchaseIndex {
    /// The purchases of `at` by their customer's acquisition (for
    /// [`PurchaseIndex::by_acquisition`]).
    pub(crate) fn by_acquisition(
        lookups: &Lookups,
        rows: &Slab<PurchaseRow>,
        at: &EventList<u32>,
    ) -> Blocked {
        by_acquisition(lookups, at.items.len(), |i| {
            let p = rows.row(at.items[i]);
            (p.customer, p.amount)
        })
    }
}

impl KindIndex for PurchaseIndex {
    type Row = PurchaseRow;
    type Table = Slab<PurchaseRow>;
    type Context = Arc<Lookups>;

    fn record_slot(_: &Self::Table, position: u32) -> u32 {
        position
    }

    fn customer_lookups(lookups: &Arc<Lookups>) -> Option<&Lookups> {
        Some(lookups)
    }

    fn customer(_: &Arc<Lookups>, p: &PurchaseRow) -> Sym {
        p.customer
    }

    fn attr(lookups: &Arc<Lookups>, p: &PurchaseRow, d: Dimension) -> Sym {
        lookups.customer_attr(p.customer, d)
    }

    fn build(_: &Arc<Lookups>, rows: &Self::Table, subset: &[u32]) -> Self {
        let at = rows_by_time(subset, |r| Some(rows.row(r).at.get()));
        let prev = previous_same(&at, |r| rows.row(r).customer);
        let prev2 = prev
            .iter()
            .map(|p| if *p == NONE { NONE } else { prev[*p as usize] })
            .collect();
        PurchaseIndex {
            by_acquisition: ByCustomers::default(),
            amount: DecimalSums::new(at.items.iter().map(|r| rows.row(*r).amount)),
            at,
            prev,
            prev2,
        }
    }

    fn warm(&self, lookups: &Arc<Lookups>, rows: &Self::Table, _: &[u32]) {
        self.by_acquisition.get(lookups, self.at.items.len(), || {
            PurchaseIndex::by_acquisition(lookups, rows, &self.at)
        });
    }
}

/// The purchases' value of `measure` (one [`answers`]) over `w` and the filters `f`.
pub(crate) fn measure(
    part: &Part<PurchaseIndex>,
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
    let r = index.at.range(w);
    Ok(match measure {
        Measure::PurchaseRevenue => s.sum(&index.at, r, &index.amount, |e| s.row(e).amount)?,
        Measure::Purchases => count(s.count(&index.at, r)),
        Measure::Buyers => count(s.distinct(&index.at, r, &index.prev, |e| s.row(e).customer)),
        Measure::RepeatBuyers => {
            if s.all() {
                // The second purchase in the range of each customer with two or more.
                let lo = r.start as u32;
                count(
                    r.filter(|i| {
                        let p = index.prev[*i];
                        let p2 = index.prev2[*i];
                        p != NONE && p >= lo && (p2 == NONE || p2 < lo)
                    })
                    .count(),
                )
            } else {
                let mut per: HashMap<u32, u32> = HashMap::new();
                for e in &index.at.items[r] {
                    if s.ok(*e) {
                        *per.entry(s.row(e).customer).or_default() += 1;
                    }
                }
                count(per.values().filter(|n| **n >= 2).count())
            }
        }
        _ => unreachable!("purchases::measure is called with the measures purchases answer only"),
    })
}

/// The purchases' share of new-customer revenue: purchases in `w` of customers acquired
/// in `w` (as `sales` says).
fn new_customer_revenue(
    part: &Part<PurchaseIndex>,
    sales: NewCustomerSales,
    w: &Window,
    f: &ResolvedFilters,
) -> Result<Decimal, MetricError> {
    let Some(s) = part.select(f)? else {
        return Ok(Decimal::ZERO);
    };
    let at = &s.index.at;
    let (from, to) = NewCustomerSales::acquired_in(w);
    let fast = s
        .all()
        .then(|| {
            let blocked = s.index.by_acquisition.get(s.context, at.items.len(), || {
                PurchaseIndex::by_acquisition(s.context, s.rows, at)
            });
            blocked.sum(sales.column(), at.range(w), from, to, |i| {
                let p = s.row(&at.items[i]);
                let (acquired, marketing) = s.context.acquisition(p.customer);
                (acquired, sales.counted(p.amount, marketing))
            })
        })
        .flatten();
    match fast {
        Some(sum) => sum,
        None => s.sum_where(
            at,
            at.range(w),
            |e| {
                let (acquired, marketing) = s.context.acquisition(s.row(e).customer);
                sales.counts(w, acquired, marketing)
            },
            |e| s.row(e).amount,
        ),
    }
}

/// [`Measure::Buyers`] or [`Measure::RepeatBuyers`] (customers with a purchase, or two, in
/// `w`) over the filters `f`, from the purchases as a base and a delta
/// ([`LayeredPart::distinct`]).
pub(crate) fn buyers(
    part: &LayeredPart<PurchaseIndex>,
    measure: Measure,
    w: &Window,
    f: &ResolvedFilters,
) -> Result<Decimal, MetricError> {
    let at_least = if measure == Measure::RepeatBuyers {
        2
    } else {
        1
    };
    part.distinct(
        |p| self::measure(p, measure, w, f),
        RowKey::Customer,
        at_least,
        // The purchases in `w` matching `f`: of those, the counted.
        |p| {
            let Some(s) = p.select(f)? else {
                return Ok(Vec::new());
            };
            let at = &s.index.at;
            Ok(at.items[at.range(w)].iter().map(HasRow::row).collect())
        },
        |p, i| w.contains(p.rows.row(i).at.get()) && p.matches(i, f),
    )
}

crate::snapshot::snap_fields!(PurchaseIndex { at, amount, prev, prev2 } else { by_acquisition });

super::image::imaged_with_sales_by_acquisition!(PurchaseIndex, by_acquisition);
