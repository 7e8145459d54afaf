//! Customers: by acquisition (all, and marketing-sourced) and by churn, with tenures and
//! first MRRs summed; the measures they answer.

use std::sync::Arc;

use jiff::Timestamp;
use kpi_core::{Decimal, Dimension, Measure, MetricError, Window};

use super::blocked::Blocked;
use super::count;
use super::delta::LayeredPart;
use super::dependents::RowKey;
use super::events::{rows_by_time, EventList};
use super::lookups::Lookups;
use super::part::{KindIndex, Part, ResolvedFilters};
use super::subscriptions::SubscriptionClasses;
use super::sums::{add, overflow, DecimalSums, IntegerSums};
use crate::record::{RecordKind, Source};
use crate::rows::{CustomerRow, Slab, SubscriptionRow};
use crate::symbols::{Sym, NONE};
use crate::units::{nanos_between, nanos_to, YEAR_NANOS};

/// The kinds the customer part reads: customers, the campaigns whose channel they inherit,
/// and the subscriptions their first MRR is read from.
pub(crate) const READS: &[RecordKind] = &[
    RecordKind::Customer,
    RecordKind::Campaign,
    RecordKind::Subscription,
];

/// Whether the customer part answers `measure`.
pub(crate) fn answers(measure: Measure) -> bool {
    matches!(
        measure,
        Measure::CustomersAcquired
            | Measure::CustomersAcquiredFromMarketing
            | Measure::CustomersAtStart
            | Measure::CustomersAtEnd
            | Measure::CustomersChurnedFromStart
            | Measure::CustomersNewRetained
            | Measure::CustomersActiveInWindow
            | Measure::MeanChurnedTenureYears
            | Measure::CustomersChurnedBeforeEnd
            | Measure::NewCustomerMeanFirstMrr
    )
}

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
#[derive(Clone)]
pub(crate) struct CustomerContext {
    pub(crate) lookups: Arc<Lookups>,
    pub(crate) subscriptions: Arc<Slab<SubscriptionRow>>,
    pub(crate) classes: Arc<SubscriptionClasses>,
}

impl CustomerContext {
    /// The first MRR of customer `c`'s earliest subscription, if they have one.
    pub(crate) fn first_mrr(&self, c: &CustomerRow) -> Option<Decimal> {
        let sub = self.classes.first(c.id)?;
        Some(self.subscriptions.row(sub).mrr_changes[0].1)
    }
}

/// The slots of `base`'s customers that read differently through `now` than through
/// `then` (an earlier context): those whose campaign's channel changed since, or whose
/// first MRR may have (their earliest subscription, or its row, changed).
pub(crate) fn changed_through_context(
    base: &Part<CustomerIndex>,
    then: &CustomerContext,
    now: &CustomerContext,
) -> Vec<u32> {
    let campaigns = now.lookups.channels_changed_since(&then.lookups);
    let mut slots = if campaigns.is_empty() {
        Vec::new()
    } else {
        base.record_slots_of(RowKey::Campaign, &campaigns)
    };
    for id in now.classes.firsts_changed_since(&then.classes) {
        slots.extend(then.lookups.customer_slot(id));
        slots.extend(now.lookups.customer_slot(id));
    }
    slots
}

/// Customers by acquisition (all, and marketing-sourced) and by churn.
pub(crate) struct CustomerIndex {
    pub(crate) acquired: EventList<u32>,
    /// Customers (in `acquired` order) by churn time (never: the end of time).
    pub(crate) acquired_by_churn: Blocked,
    /// How many customers (in `acquired` order) have a first MRR, and its sum.
    pub(crate) with_first_mrr: IntegerSums,
    pub(crate) first_mrr: DecimalSums,
    pub(crate) marketing: EventList<u32>,
    pub(crate) churned: EventList<u32>,
    /// Churned customers (in `churned` order) by acquisition time.
    pub(crate) churned_by_acquisition: Blocked,
    pub(crate) tenure: IntegerSums,
}

impl KindIndex for CustomerIndex {
    type Row = CustomerRow;
    type Table = Slab<CustomerRow>;
    type Context = CustomerContext;

    fn record_slot(_: &Self::Table, position: u32) -> u32 {
        position
    }

    fn customer_lookups(context: &CustomerContext) -> Option<&Lookups> {
        Some(&context.lookups)
    }

    fn customer(_: &CustomerContext, c: &CustomerRow) -> Sym {
        c.id
    }

    fn campaign(_: &CustomerContext, c: &CustomerRow) -> Sym {
        c.campaign
    }

    fn attr(context: &CustomerContext, c: &CustomerRow, d: Dimension) -> Sym {
        match d {
            Dimension::Owner => c.owner,
            Dimension::Source => context.lookups.source(c.source),
            Dimension::Campaign => c.campaign,
            Dimension::Channel => context.lookups.channel(c.campaign),
            Dimension::Segment => c.segment,
            _ => NONE,
        }
    }

    fn build(context: &CustomerContext, rows: &Self::Table, subset: &[u32]) -> Self {
        let first_mrr = |r: u32| context.first_mrr(rows.row(r));
        let row = |r: u32| rows.row(r);
        let churned = rows_by_time(subset, |r| row(r).churned());
        let acquired = rows_by_time(subset, |r| Some(row(r).acquired()));
        CustomerIndex {
            acquired_by_churn: Blocked::new(
                acquired.items.len(),
                |i| row(acquired.items[i]).churned().unwrap_or(Timestamp::MAX),
                &[],
            ),
            with_first_mrr: IntegerSums::new(
                acquired
                    .items
                    .iter()
                    .map(|r| i128::from(first_mrr(*r).is_some())),
            ),
            first_mrr: DecimalSums::new(
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
            marketing: rows_by_time(subset, |r| {
                Some(row(r).acquired()).filter(|_| row(r).source == Source::Marketing)
            }),
            tenure: IntegerSums::new(churned.items.iter().map(|r| row(*r).tenure_nanos())),
            churned,
        }
    }
}

/// The customers' value of `measure` (one [`answers`]) over `w` and the filters `f`.
pub(crate) fn measure(
    part: &Part<CustomerIndex>,
    measure: Measure,
    w: &Window,
    f: &ResolvedFilters,
) -> Result<Decimal, MetricError> {
    let Some(s) = part.select(f)? else {
        return Ok(Decimal::ZERO);
    };
    let index = s.index;
    // Customers active at t: acquired before t, not churned before t.
    let active_at = |t: Timestamp| {
        if s.all() {
            index.acquired.before(t) - index.churned.before(t)
        } else {
            s.count_where(&index.acquired, 0..index.acquired.before(t), |e| {
                s.row(e).churned().is_none_or(|c| c >= t)
            })
        }
    };
    Ok(match measure {
        Measure::CustomersAcquired => count(s.count(&index.acquired, index.acquired.range(w))),
        Measure::CustomersAcquiredFromMarketing => {
            count(s.count(&index.marketing, index.marketing.range(w)))
        }
        Measure::CustomersAtStart => count(active_at(w.start)),
        Measure::CustomersAtEnd => count(active_at(w.end)),
        Measure::CustomersChurnedFromStart if s.all() => count(index.churned_by_acquisition.count(
            index.churned.range(w),
            None,
            Some(w.start),
            |i| s.row(&index.churned.items[i]).acquired(),
        )),
        Measure::CustomersChurnedFromStart => {
            count(s.count_where(&index.churned, index.churned.range(w), |e| {
                s.row(e).acquired() < w.start
            }))
        }
        Measure::CustomersNewRetained if s.all() => count(index.acquired_by_churn.count(
            index.acquired.range(w),
            Some(w.end),
            None,
            |i| {
                s.row(&index.acquired.items[i])
                    .churned()
                    .unwrap_or(Timestamp::MAX)
            },
        )),
        Measure::CustomersNewRetained => count(s.count_where(
            &index.acquired,
            index.acquired.range(w),
            |e| s.row(e).churned().is_none_or(|c| c >= w.end),
        )),
        Measure::CustomersActiveInWindow => {
            if s.all() {
                // Churned before start implies acquired before end.
                count(index.acquired.before(w.end) - index.churned.before(w.start))
            } else {
                count(
                    s.count_where(&index.acquired, 0..index.acquired.before(w.end), |e| {
                        s.row(e).churned().is_none_or(|c| c >= w.start)
                    }),
                )
            }
        }
        Measure::CustomersChurnedBeforeEnd => {
            count(s.count(&index.churned, 0..index.churned.before(w.end)))
        }
        Measure::MeanChurnedTenureYears | Measure::NewCustomerMeanFirstMrr => {
            mean_of(measure, mean_parts(part, measure, w, f)?)?
        }
        _ => unreachable!("customers::measure is called with the measures customers answer only"),
    })
}

/// The sum and the count a mean (one of [`Measure::MeanChurnedTenureYears`]: tenures in
/// nanoseconds of the customers churned before the end; [`Measure::NewCustomerMeanFirstMrr`]:
/// first MRRs of the customers acquired in `w` who have one) is made of: each additive over
/// rows.
fn mean_parts(
    part: &Part<CustomerIndex>,
    measure: Measure,
    w: &Window,
    f: &ResolvedFilters,
) -> Result<[Decimal; 2], MetricError> {
    let Some(s) = part.select(f)? else {
        return Ok([Decimal::ZERO; 2]);
    };
    let index = s.index;
    if measure == Measure::MeanChurnedTenureYears {
        let r = 0..index.churned.before(w.end);
        let n = s.count(&index.churned, r.clone());
        let nanos = s.int_sum(&index.churned, r, &index.tenure, |e| {
            s.row(e).tenure_nanos()
        });
        let nanos = Decimal::try_from_i128_with_scale(nanos, 0).map_err(|_| overflow())?;
        return Ok([nanos, count(n)]);
    }
    let r = index.acquired.range(w);
    let fast = s
        .all()
        .then(|| {
            let first_mrr = |i: usize| s.context.first_mrr(s.row(&index.acquired.items[i]));
            let total = index
                .first_mrr
                .range(r.clone(), |i| first_mrr(i).unwrap_or(Decimal::ZERO))?;
            let n = index
                .with_first_mrr
                .range(r.clone(), |i| i128::from(first_mrr(i).is_some()));
            Some([total, Decimal::from(n as u64)])
        })
        .flatten();
    if let Some(parts) = fast {
        return Ok(parts);
    }
    let mut total = Decimal::ZERO;
    let mut n = 0u64;
    for e in &index.acquired.items[r] {
        if let Some(mrr) = s.context.first_mrr(s.row(e)) {
            if s.ok(*e) {
                total = add(total, mrr)?;
                n += 1;
            }
        }
    }
    Ok([total, Decimal::from(n)])
}

/// The mean `measure` of its sum and count ([`mean_parts`]); zero with no customer.
fn mean_of(measure: Measure, [total, n]: [Decimal; 2]) -> Result<Decimal, MetricError> {
    if n.is_zero() {
        return Ok(Decimal::ZERO);
    }
    if measure == Measure::MeanChurnedTenureYears {
        let years = Decimal::try_from_i128_with_scale(YEAR_NANOS, 0).map_err(|_| overflow())?;
        let per = years.checked_mul(n).ok_or_else(overflow)?;
        let per = per.trunc().mantissa();
        return nanos_to(total.trunc().mantissa(), per);
    }
    total
        .checked_div(n)
        .ok_or_else(|| MetricError::Overflow("a mean first MRR".into()))
}

/// A mean of the customers (one of [`mean_parts`]'s) over `w` and the filters `f`, from the
/// customers as a base and a delta: its sum and count each `base − removed + added`.
pub(crate) fn mean(
    part: &LayeredPart<CustomerIndex>,
    measure: Measure,
    w: &Window,
    f: &ResolvedFilters,
) -> Result<Decimal, MetricError> {
    mean_of(measure, part.sums(|p| mean_parts(p, measure, w, f))?)
}

crate::snapshot::snap_fields!(CustomerIndex {
    acquired,
    acquired_by_churn,
    with_first_mrr,
    first_mrr,
    marketing,
    churned,
    churned_by_acquisition,
    tenure,
});
super::image::imaged_as_written!(CustomerIndex);

#[cfg(test)]
mod tests {
    use crate::index::tests::after_one_write;
    use crate::record::{Record, RecordKind};

    /// A customer of some deal moved to another segment and owner: the customer part and
    /// the deal part are their bases plus a delta (the deal's rows read the customer
    /// anew), the stage parts follow, and every answer equals the reference's.
    #[test]
    fn a_customer_write_is_a_delta_of_the_customers_and_of_the_rows_reading_them() {
        let (before, after) = after_one_write(RecordKind::Customer, |all, r| {
            let Record::Customer(c) = r else { return false };
            let has_deal = all.of_kind(RecordKind::Deal).any(
                |d| matches!(d, Record::Deal(d) if d.customer_id.as_deref() == Some(c.id.as_str())),
            );
            c.segment = Some("moved".into());
            c.owner = Some("another owner".into());
            has_deal
        });
        assert!(after.customers.layered_on(&before.customers));
        assert!(after.deals.layered_on(&before.deals));
        // Nothing about campaigns changed: the campaign part is shared.
        assert!(std::sync::Arc::ptr_eq(&after.campaigns, &before.campaigns));
    }
}
