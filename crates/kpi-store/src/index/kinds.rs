//! The flattened rows of each unit and the event lists built over them.

use std::collections::HashMap;

use jiff::Timestamp;
use kpi_core::{Decimal, SurveyKind};

use super::part::{previous_same, Blocked, DecSums, Ev, IntSums, Ix, Sym, NONE};
use crate::units::nanos_between;

fn ev_rows(rows_subset: &[u32], time: impl Fn(u32) -> Option<Timestamp>) -> Ev<u32> {
    Ev::new(
        rows_subset
            .iter()
            .filter_map(|r| time(*r).map(|t| (t, *r)))
            .collect(),
    )
}

// ---------------------------------------------------------------- deals

/// A deal, with what it inherits from its customer and campaign.
pub(crate) struct DealRow {
    pub(crate) created: Timestamp,
    pub(crate) closed: Option<Timestamp>,
    pub(crate) won: bool,
    pub(crate) lost: bool,
    pub(crate) upsell: bool,
    pub(crate) amount: Decimal,
    pub(crate) owner: Sym,
    pub(crate) customer: Sym,
    pub(crate) campaign: bool,
    pub(crate) email: bool,
    pub(crate) customer_acquired: Option<Timestamp>,
    pub(crate) customer_marketing: bool,
}

/// Deals by closing time (won, lost, both, won upsells) and by creation time.
pub(crate) struct DealIx {
    pub(crate) won: Ev<u32>,
    pub(crate) won_amount: DecSums,
    pub(crate) won_cycle: IntSums,
    pub(crate) won_campaign_amount: DecSums,
    pub(crate) won_email_amount: DecSums,
    pub(crate) lost: Ev<u32>,
    pub(crate) closed: Ev<u32>,
    pub(crate) closed_prev_owner: Vec<u32>,
    pub(crate) upsell: Ev<u32>,
    pub(crate) upsell_prev_customer: Vec<u32>,
    /// Won deals (in `won` order) by their customer's acquisition, summing amounts.
    pub(crate) won_by_acquisition: Blocked<Option<Timestamp>>,
    /// The same, summing only the amounts of marketing-sourced customers.
    pub(crate) won_by_acquisition_marketing: Blocked<Option<Timestamp>>,
    /// Every deal by creation time, with its amounts summed.
    pub(crate) created: Ev<u32>,
    pub(crate) created_amount: DecSums,
    /// Closed deals' amounts summed in `closed` order.
    pub(crate) closed_amount: DecSums,
}

impl Ix for DealIx {
    type Row = DealRow;

    fn build(rows: &[DealRow], subset: &[u32]) -> Self {
        let row = |r: u32| &rows[r as usize];
        let amount = |r: &u32| row(*r).amount;
        // Won deals on one side, the rest on the other (two threads for large parts).
        let won_side = || {
            let won = ev_rows(subset, |r| row(r).closed.filter(|_| row(r).won));
            let upsell = ev_rows(subset, |r| {
                let d = row(r);
                d.closed.filter(|_| d.won && d.upsell && d.customer != NONE)
            });
            let acquired: Vec<_> = won.v.iter().map(|r| row(*r).customer_acquired).collect();
            let amount_if = |keep: fn(&DealRow) -> bool| {
                move |r: &u32| {
                    if keep(row(*r)) {
                        row(*r).amount
                    } else {
                        Decimal::ZERO
                    }
                }
            };
            WonSide {
                won_by_acquisition: Blocked::new(
                    acquired.clone(),
                    won.v.iter().map(amount).collect(),
                ),
                won_by_acquisition_marketing: Blocked::new(
                    acquired,
                    won.v
                        .iter()
                        .map(amount_if(|d| d.customer_marketing))
                        .collect(),
                ),
                won_amount: DecSums::new(won.v.iter().map(amount)),
                won_cycle: IntSums::new(won.v.iter().map(|r| {
                    let d = row(*r);
                    nanos_between(d.created, d.closed.unwrap_or(d.created))
                })),
                won_campaign_amount: DecSums::new(won.v.iter().map(amount_if(|d| d.campaign))),
                won_email_amount: DecSums::new(won.v.iter().map(amount_if(|d| d.email))),
                upsell_prev_customer: previous_same(&upsell, |r| row(r).customer),
                won,
                upsell,
            }
        };
        let other_side = || {
            let lost = ev_rows(subset, |r| row(r).closed.filter(|_| row(r).lost));
            let closed = ev_rows(subset, |r| row(r).closed);
            let created = ev_rows(subset, |r| Some(row(r).created));
            (
                DecSums::new(created.v.iter().map(amount)),
                DecSums::new(closed.v.iter().map(amount)),
                previous_same(&closed, |r| row(r).owner),
                lost,
                closed,
                created,
            )
        };
        let (w, (created_amount, closed_amount, closed_prev_owner, lost, closed, created)) =
            join(subset.len() >= PARALLEL_ROWS, won_side, other_side);
        DealIx {
            won: w.won,
            won_amount: w.won_amount,
            won_cycle: w.won_cycle,
            won_campaign_amount: w.won_campaign_amount,
            won_email_amount: w.won_email_amount,
            lost,
            closed,
            closed_prev_owner,
            upsell: w.upsell,
            upsell_prev_customer: w.upsell_prev_customer,
            won_by_acquisition: w.won_by_acquisition,
            won_by_acquisition_marketing: w.won_by_acquisition_marketing,
            created,
            created_amount,
            closed_amount,
        }
    }
}

/// The won-deal half of a [`DealIx`].
struct WonSide {
    won: Ev<u32>,
    won_amount: DecSums,
    won_cycle: IntSums,
    won_campaign_amount: DecSums,
    won_email_amount: DecSums,
    upsell: Ev<u32>,
    upsell_prev_customer: Vec<u32>,
    won_by_acquisition: Blocked<Option<Timestamp>>,
    won_by_acquisition_marketing: Blocked<Option<Timestamp>>,
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

// ---------------------------------------------------------------- stage exits

/// A deal leaving a stage.
pub(crate) struct ExitRow {
    pub(crate) entered: Timestamp,
    pub(crate) exit: Timestamp,
}

/// Stage exits by exit time.
pub(crate) struct ExitIx {
    pub(crate) exits: Ev<u32>,
    pub(crate) nanos: IntSums,
}

impl Ix for ExitIx {
    type Row = ExitRow;

    fn build(rows: &[ExitRow], subset: &[u32]) -> Self {
        let exits = ev_rows(subset, |r| Some(rows[r as usize].exit));
        let nanos = IntSums::new(exits.v.iter().map(|r| {
            let e = &rows[*r as usize];
            nanos_between(e.entered, e.exit)
        }));
        ExitIx { exits, nanos }
    }
}

// ---------------------------------------------------------------- stage stays

/// A deal's stay in one stage of its history while it is open: it is in the stage at `t`
/// when `from < t ≤ until`. `from` is the later of the deal's creation and the stage's
/// entry; `until` the earlier of the next stage's entry and the deal's close (`None`:
/// still there). So at `t` the stay counts exactly when the deal was created before `t`,
/// is open at `t` (not closed before it) and the stage is the last one entered before `t`.
pub(crate) struct StageStayRow {
    pub(crate) from: Timestamp,
    pub(crate) until: Option<Timestamp>,
    pub(crate) amount: Decimal,
}

impl StageStayRow {
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
    pub(crate) from: Ev<u32>,
    pub(crate) from_amount: DecSums,
    pub(crate) until: Ev<u32>,
    pub(crate) until_amount: DecSums,
}

impl Ix for StageStayIx {
    type Row = StageStayRow;

    fn build(rows: &[StageStayRow], subset: &[u32]) -> Self {
        let row = |r: u32| &rows[r as usize];
        let from = ev_rows(subset, |r| {
            Some(row(r).from).filter(|_| row(r).covers_some_time())
        });
        let until = ev_rows(subset, |r| {
            row(r).until.filter(|_| row(r).covers_some_time())
        });
        StageStayIx {
            from_amount: DecSums::new(from.v.iter().map(|r| row(*r).amount)),
            until_amount: DecSums::new(until.v.iter().map(|r| row(*r).amount)),
            from,
            until,
        }
    }
}

// ---------------------------------------------------------------- quotas

/// A quota.
pub(crate) struct QuotaRow {
    pub(crate) start: Timestamp,
    pub(crate) end: Timestamp,
    pub(crate) amount: Decimal,
}

/// Quotas by period start.
pub(crate) struct QuotaIx {
    pub(crate) by_start: Ev<u32>,
    /// `max_end[i]`: the latest end among quotas `0..=i` (by start).
    pub(crate) max_end: Vec<Timestamp>,
}

impl Ix for QuotaIx {
    type Row = QuotaRow;

    fn build(rows: &[QuotaRow], subset: &[u32]) -> Self {
        let by_start = ev_rows(subset, |r| Some(rows[r as usize].start));
        let max_end = by_start
            .v
            .iter()
            .scan(None, |latest: &mut Option<Timestamp>, r| {
                let end = rows[*r as usize].end;
                let m = latest.map_or(end, |l| l.max(end));
                *latest = Some(m);
                Some(m)
            })
            .collect();
        QuotaIx { by_start, max_end }
    }
}

// ---------------------------------------------------------------- leads

/// A lead.
pub(crate) struct LeadRow {
    pub(crate) created: Timestamp,
    pub(crate) converted: Option<Timestamp>,
}

/// Leads by creation time.
pub(crate) struct LeadIx {
    pub(crate) created: Ev<u32>,
    /// Leads (in `created` order) by conversion time (never: the end of time).
    pub(crate) created_by_conversion: Blocked<Timestamp>,
}

impl Ix for LeadIx {
    type Row = LeadRow;

    fn build(rows: &[LeadRow], subset: &[u32]) -> Self {
        let created = ev_rows(subset, |r| Some(rows[r as usize].created));
        LeadIx {
            created_by_conversion: Blocked::new(
                created
                    .v
                    .iter()
                    .map(|r| rows[*r as usize].converted.unwrap_or(Timestamp::MAX))
                    .collect(),
                Vec::new(),
            ),
            created,
        }
    }
}

// ---------------------------------------------------------------- customers

/// A customer, with the first MRR of their earliest subscription.
pub(crate) struct CustomerRow {
    pub(crate) acquired: Timestamp,
    pub(crate) churned: Option<Timestamp>,
    pub(crate) marketing: bool,
    pub(crate) first_mrr: Option<Decimal>,
}

/// Customers by acquisition (all, and marketing-sourced) and by churn.
pub(crate) struct CustomerIx {
    pub(crate) acquired: Ev<u32>,
    /// Customers (in `acquired` order) by churn time (never: the end of time).
    pub(crate) acquired_by_churn: Blocked<Timestamp>,
    /// How many customers (in `acquired` order) have a first MRR, and its sum.
    pub(crate) with_first_mrr: IntSums,
    pub(crate) first_mrr: DecSums,
    pub(crate) marketing: Ev<u32>,
    pub(crate) churned: Ev<u32>,
    /// Churned customers (in `churned` order) by acquisition time.
    pub(crate) churned_by_acquisition: Blocked<Timestamp>,
    pub(crate) tenure: IntSums,
}

impl Ix for CustomerIx {
    type Row = CustomerRow;

    fn build(rows: &[CustomerRow], subset: &[u32]) -> Self {
        let row = |r: u32| &rows[r as usize];
        let churned = ev_rows(subset, |r| row(r).churned);
        let acquired = ev_rows(subset, |r| Some(row(r).acquired));
        CustomerIx {
            acquired_by_churn: Blocked::new(
                acquired
                    .v
                    .iter()
                    .map(|r| row(*r).churned.unwrap_or(Timestamp::MAX))
                    .collect(),
                Vec::new(),
            ),
            with_first_mrr: IntSums::new(
                acquired
                    .v
                    .iter()
                    .map(|r| i128::from(row(*r).first_mrr.is_some())),
            ),
            first_mrr: DecSums::new(
                acquired
                    .v
                    .iter()
                    .map(|r| row(*r).first_mrr.unwrap_or(Decimal::ZERO)),
            ),
            churned_by_acquisition: Blocked::new(
                churned.v.iter().map(|r| row(*r).acquired).collect(),
                Vec::new(),
            ),
            acquired,
            marketing: ev_rows(subset, |r| {
                Some(row(r).acquired).filter(|_| row(r).marketing)
            }),
            tenure: IntSums::new(churned.v.iter().map(|r| {
                let c = row(*r);
                nanos_between(c.acquired, c.churned.unwrap_or(c.acquired))
            })),
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
    pub(crate) campaign: bool,
}

/// Spend by time, with sums per category and for campaigns.
pub(crate) struct SpendIx {
    pub(crate) at: Ev<u32>,
    pub(crate) by_category: Vec<DecSums>,
    pub(crate) campaign: DecSums,
}

impl Ix for SpendIx {
    type Row = SpendRow;

    fn build(rows: &[SpendRow], subset: &[u32]) -> Self {
        let row = |r: &u32| &rows[*r as usize];
        let at = ev_rows(subset, |r| Some(rows[r as usize].at));
        let by_category = (0..kpi_core::SpendCategories::NAMES.len())
            .map(|c| {
                DecSums::new(at.v.iter().map(|r| {
                    if row(r).category == c {
                        row(r).amount
                    } else {
                        Decimal::ZERO
                    }
                }))
            })
            .collect();
        let campaign = DecSums::new(at.v.iter().map(|r| {
            if row(r).campaign {
                row(r).amount
            } else {
                Decimal::ZERO
            }
        }));
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
    pub(crate) started: Timestamp,
    pub(crate) email: bool,
    pub(crate) delivered: u64,
    pub(crate) opens: u64,
    pub(crate) clicks: u64,
}

/// Email campaigns by start, with sums of their counters.
pub(crate) struct CampaignIx {
    pub(crate) email: Ev<u32>,
    pub(crate) delivered: IntSums,
    pub(crate) opens: IntSums,
    pub(crate) clicks: IntSums,
}

impl Ix for CampaignIx {
    type Row = CampaignRow;

    fn build(rows: &[CampaignRow], subset: &[u32]) -> Self {
        let row = |r: &u32| &rows[*r as usize];
        let email = ev_rows(subset, |r| {
            Some(rows[r as usize].started).filter(|_| rows[r as usize].email)
        });
        CampaignIx {
            delivered: IntSums::new(email.v.iter().map(|r| i128::from(row(r).delivered))),
            opens: IntSums::new(email.v.iter().map(|r| i128::from(row(r).opens))),
            clicks: IntSums::new(email.v.iter().map(|r| i128::from(row(r).clicks))),
            email,
        }
    }
}

// ---------------------------------------------------------------- purchases

/// A purchase, with what it needs of its customer.
pub(crate) struct PurchaseRow {
    pub(crate) at: Timestamp,
    pub(crate) amount: Decimal,
    pub(crate) customer: Sym,
    pub(crate) customer_acquired: Option<Timestamp>,
    pub(crate) customer_marketing: bool,
}

/// Purchases by time; for each, the previous purchase of the same customer and the one
/// before that (distinct and repeat buyers of a range without a pass over it).
pub(crate) struct PurchaseIx {
    pub(crate) at: Ev<u32>,
    pub(crate) amount: DecSums,
    pub(crate) prev: Vec<u32>,
    pub(crate) prev2: Vec<u32>,
    /// Purchases (in `at` order) by their customer's acquisition, summing amounts.
    pub(crate) by_acquisition: Blocked<Option<Timestamp>>,
    /// The same, summing only the amounts of marketing-sourced customers.
    pub(crate) by_acquisition_marketing: Blocked<Option<Timestamp>>,
}

impl Ix for PurchaseIx {
    type Row = PurchaseRow;

    fn build(rows: &[PurchaseRow], subset: &[u32]) -> Self {
        let at = ev_rows(subset, |r| Some(rows[r as usize].at));
        let prev = previous_same(&at, |r| rows[r as usize].customer);
        let prev2 = prev
            .iter()
            .map(|p| if *p == NONE { NONE } else { prev[*p as usize] })
            .collect();
        let row = |r: &u32| &rows[*r as usize];
        PurchaseIx {
            by_acquisition: Blocked::new(
                at.v.iter().map(|r| row(r).customer_acquired).collect(),
                at.v.iter().map(|r| row(r).amount).collect(),
            ),
            by_acquisition_marketing: Blocked::new(
                at.v.iter().map(|r| row(r).customer_acquired).collect(),
                at.v.iter()
                    .map(|r| {
                        if row(r).customer_marketing {
                            row(r).amount
                        } else {
                            Decimal::ZERO
                        }
                    })
                    .collect(),
            ),
            amount: DecSums::new(at.v.iter().map(|r| rows[*r as usize].amount)),
            at,
            prev,
            prev2,
        }
    }
}

// ---------------------------------------------------------------- subscriptions

/// A subscription's MRR history, read per the module doc of `crate::subscription`.
pub(crate) struct SubRow {
    pub(crate) customer: Sym,
    pub(crate) started: Timestamp,
    pub(crate) first_mrr: Decimal,
    /// Whether its customer had no subscription active when it started.
    pub(crate) new: bool,
    /// Changes after the starting one and before the end: (at, previous MRR, new MRR).
    pub(crate) changes: Vec<(Timestamp, Decimal, Decimal)>,
    /// The end and the MRR in effect just before it.
    pub(crate) end: Option<(Timestamp, Decimal)>,
    pub(crate) renewal_due: Option<Timestamp>,
    pub(crate) renewed: bool,
}

/// MRR movements by time; renewals by due date; paying customers as intervals.
pub(crate) struct SubIx {
    /// Every MRR movement, signed; prefix sums are the MRR at a time.
    pub(crate) deltas: Ev<(u32, Decimal)>,
    pub(crate) mrr: DecSums,
    pub(crate) new: Ev<(u32, Decimal)>,
    pub(crate) new_sums: DecSums,
    pub(crate) expansion: Ev<(u32, Decimal)>,
    pub(crate) expansion_sums: DecSums,
    pub(crate) contraction: Ev<(u32, Decimal)>,
    pub(crate) contraction_sums: DecSums,
    pub(crate) churn: Ev<(u32, Decimal)>,
    pub(crate) churn_sums: DecSums,
    pub(crate) due: Ev<u32>,
    pub(crate) renewed: Ev<u32>,
    /// Per customer, the maximal intervals `(a, b]` in which they have an active
    /// subscription with MRR > 0: keyed by `a`, with a row of the customer and `b`.
    pub(crate) paying_from: Ev<(u32, Option<Timestamp>)>,
    /// The same intervals keyed by `b`.
    pub(crate) paying_until: Ev<u32>,
}

impl Ix for SubIx {
    type Row = SubRow;

    fn build(rows: &[SubRow], subset: &[u32]) -> Self {
        let mut deltas = Vec::new();
        let mut new = Vec::new();
        let mut expansion = Vec::new();
        let mut contraction = Vec::new();
        let mut churn = Vec::new();
        let mut intervals: HashMap<Sym, Vec<(Timestamp, Option<Timestamp>, u32)>> = HashMap::new();
        for r in subset {
            let s = &rows[*r as usize];
            deltas.push((s.started, (*r, s.first_mrr)));
            if s.new {
                new.push((s.started, (*r, s.first_mrr)));
            } else {
                expansion.push((s.started, (*r, s.first_mrr)));
            }
            for (at, prev, next) in &s.changes {
                deltas.push((*at, (*r, *next - *prev)));
                if next > prev {
                    expansion.push((*at, (*r, *next - *prev)));
                } else if next < prev {
                    contraction.push((*at, (*r, *prev - *next)));
                }
            }
            if let Some((at, before)) = s.end {
                deltas.push((at, (*r, -before)));
                churn.push((at, (*r, before)));
            }
            // Intervals (a, b] with MRR > 0: the MRR after each step holds until the next.
            let mut open: Option<Timestamp> = None;
            let mut steps = vec![(s.started, s.first_mrr)];
            steps.extend(s.changes.iter().map(|(at, _, next)| (*at, *next)));
            if let Some((at, _)) = s.end {
                steps.push((at, Decimal::ZERO));
            }
            let list = intervals.entry(s.customer).or_default();
            for (at, mrr) in steps {
                match (open, mrr > Decimal::ZERO) {
                    (None, true) => open = Some(at),
                    (Some(a), false) => {
                        if a < at {
                            list.push((a, Some(at), *r));
                        }
                        open = None;
                    }
                    _ => {}
                }
            }
            if let Some(a) = open {
                list.push((a, None, *r));
            }
        }
        let mut paying_from = Vec::new();
        let mut paying_until = Vec::new();
        for (_, mut list) in intervals {
            list.sort_by_key(|(a, _, _)| *a);
            let mut merged: Vec<(Timestamp, Option<Timestamp>, u32)> = Vec::new();
            for (a, b, r) in list {
                match merged.last_mut() {
                    // (a1, b1] and (a2, b2] with a2 ≤ b1 make one interval.
                    Some(last) if last.1.is_none_or(|b1| a <= b1) => {
                        last.1 = match (last.1, b) {
                            (Some(b1), Some(b2)) => Some(b1.max(b2)),
                            _ => None,
                        };
                    }
                    _ => merged.push((a, b, r)),
                }
            }
            for (a, b, r) in merged {
                paying_from.push((a, (r, b)));
                if let Some(b) = b {
                    paying_until.push((b, r));
                }
            }
        }
        let deltas = Ev::new(deltas);
        let new = Ev::new(new);
        let expansion = Ev::new(expansion);
        let contraction = Ev::new(contraction);
        let churn = Ev::new(churn);
        let sums = |ev: &Ev<(u32, Decimal)>| DecSums::new(ev.v.iter().map(|(_, x)| *x));
        SubIx {
            mrr: sums(&deltas),
            new_sums: sums(&new),
            expansion_sums: sums(&expansion),
            contraction_sums: sums(&contraction),
            churn_sums: sums(&churn),
            deltas,
            new,
            expansion,
            contraction,
            churn,
            due: ev_rows(subset, |r| rows[r as usize].renewal_due),
            renewed: ev_rows(subset, |r| {
                rows[r as usize]
                    .renewal_due
                    .filter(|_| rows[r as usize].renewed)
            }),
            paying_from: Ev::new(paying_from),
            paying_until: Ev::new(paying_until),
        }
    }
}

// ---------------------------------------------------------------- tickets

/// A ticket.
pub(crate) struct TicketRow {
    pub(crate) opened: Timestamp,
    pub(crate) responded: Option<Timestamp>,
    pub(crate) resolved: Option<Timestamp>,
}

/// Tickets by resolution and by first response, with their durations summed.
pub(crate) struct TicketIx {
    pub(crate) resolved: Ev<u32>,
    pub(crate) resolution: IntSums,
    pub(crate) responded: Ev<u32>,
    pub(crate) response: IntSums,
}

impl Ix for TicketIx {
    type Row = TicketRow;

    fn build(rows: &[TicketRow], subset: &[u32]) -> Self {
        let row = |r: &u32| &rows[*r as usize];
        let resolved = ev_rows(subset, |r| rows[r as usize].resolved);
        let responded = ev_rows(subset, |r| rows[r as usize].responded);
        TicketIx {
            resolution: IntSums::new(
                resolved.v.iter().map(|r| {
                    nanos_between(row(r).opened, row(r).resolved.unwrap_or(row(r).opened))
                }),
            ),
            response: IntSums::new(
                responded.v.iter().map(|r| {
                    nanos_between(row(r).opened, row(r).responded.unwrap_or(row(r).opened))
                }),
            ),
            resolved,
            responded,
        }
    }
}

// ---------------------------------------------------------------- surveys

/// A survey response.
pub(crate) struct SurveyRow {
    pub(crate) at: Timestamp,
    pub(crate) kind: SurveyKind,
    pub(crate) scale: u32,
    pub(crate) score: Decimal,
}

/// Most (scale, score) groups counted group by group; beyond, responses are counted one
/// by one.
pub(crate) const MAX_SCORE_GROUPS: usize = 64;

/// Responses with one (scale_max, score): their times, sorted.
pub(crate) type ScoreGroup = ((u32, Decimal), Vec<Timestamp>);

/// The responses of one survey kind.
pub(crate) struct SurveyKindIx {
    pub(crate) at: Ev<u32>,
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

    fn build(rows: &[SurveyRow], subset: &[u32]) -> Self {
        let kind = |k: SurveyKind| {
            let at = ev_rows(subset, |r| {
                Some(rows[r as usize].at).filter(|_| rows[r as usize].kind == k)
            });
            let mut groups: HashMap<(u32, Decimal), Vec<Timestamp>> = HashMap::new();
            let mut too_many = false;
            for (t, r) in at.t.iter().zip(&at.v) {
                let s = &rows[*r as usize];
                let key = (s.scale, s.score.normalize());
                if !groups.contains_key(&key) && groups.len() == MAX_SCORE_GROUPS {
                    too_many = true;
                    break;
                }
                groups.entry(key).or_default().push(t);
            }
            SurveyKindIx {
                score: DecSums::new(at.v.iter().map(|r| rows[*r as usize].score)),
                groups: (!too_many).then(|| groups.into_iter().collect()),
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
