//! The query side: one tenant's records, flattened per unit (record kind, or deal stage
//! exits) into event lists sorted by each measure's time, with prefix sums.
//!
//! - A window is two binary searches; counts and sums over it come from prefix sums, so an
//!   unfiltered window measure costs O(log n).
//! - Point-in-time counts (customers active at t, MRR at t, paying customers at t, deals
//!   open at t, deals open at t in a given stage) are prefix counts and sums over sorted
//!   event lists (acquisitions minus churns, MRR movements, paying intervals, creations
//!   minus closes, stage stays begun minus stage stays ended).
//! - Distinct counts (reps, buyers, upsold customers) use, for each event, the position
//!   of the previous event with the same key: a key is new in a range when its previous
//!   event lies before it.
//! - A filter reads the index built (on first use) over the rows having that dimension
//!   value; further filters, and measures that compare two times of a record (leads
//!   converted before the end, customers acquired in W and active at its end), scan the
//!   window's slice.
//!
//! The index is immutable: the store builds a new one on the first read after a write,
//! sharing every part whose record kinds the writes did not change. A part sorts its event
//! lists on first use.

mod blocked;
mod events;
mod kinds;
mod part;
mod sums;
#[cfg(test)]
mod tests;
mod times;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use jiff::Timestamp;
use kpi_core::{Decimal, Dimension, Measure, MetricError, Scope, SpendCategories, Window};

use self::kinds::{
    survey_slot, CampaignIx, CampaignRow, CustomerCtx, CustomerIx, DealIx, DealOther, ExitIx,
    LeadIx, Lookups, Moves, PurchaseIx, QuotaIx, QuotaRow, SpendIx, SpendRow, StageCtx, StageRow,
    StageStayIx, SubClasses, SubCtx, SubIx, SurveyIx, TicketIx, TicketTimes, ALL_AMOUNTS,
    MARKETING_AMOUNTS,
};
use self::part::{Part, Resolved, Warm};
use self::sums::{add, overflow};
use crate::dims::{channel_name, source_name, Unit};
use crate::record::{Channel, RecordKind, Source};
use crate::rows::Rows;
use crate::symbols::{Interner, NONE};
use crate::units::{nanos_between, nanos_to, DAY_NANOS, HOUR_NANOS, YEAR_NANOS};

/// Per record kind, a count of the writes that changed records of that kind.
pub(crate) type KindGens = [u64; RecordKind::ALL.len()];

/// The kinds the deal, stage exit and stage stay parts read.
const DEAL_DEPS: [RecordKind; 3] = [RecordKind::Deal, RecordKind::Customer, RecordKind::Campaign];

/// A tenant's records, ready to answer measures. Each part is shared with the next index
/// when the kinds it reads did not change.
pub(crate) struct Index {
    syms: Interner,
    deals: Arc<Part<DealIx>>,
    /// What the stage parts read.
    stage_ctx: StageCtx,
    /// Stage exits and stays, listed on first use ([`Index::stages`]).
    stages: OnceLock<Arc<StageParts>>,
    quotas: Arc<Part<QuotaIx>>,
    leads: Arc<Part<LeadIx>>,
    customers: Arc<Part<CustomerIx>>,
    spend: Arc<Part<SpendIx>>,
    campaigns: Arc<Part<CampaignIx>>,
    purchases: Arc<Part<PurchaseIx>>,
    subs: Arc<Part<SubIx>>,
    tickets: Arc<Part<TicketIx>>,
    surveys: Arc<Part<SurveyIx>>,
    /// What subscriptions are as a whole (new MRR, each customer's first).
    classes: Arc<SubClasses>,
    /// The write counts of the rows it was built from.
    built_from: KindGens,
}

/// The deals' stage entries, as stage exits and as stage stays (one list of entries, read
/// by both).
struct StageParts {
    exits: Part<ExitIx>,
    stays: Part<StageStayIx>,
}

/// Rows from which building every part's index ahead of the queries, on two background
/// threads, is worth it ([`Index::large`]).
#[cfg(not(test))]
const WARM_ROWS: usize = 50_000;
/// Small under test, so the tests run the two-thread paths.
#[cfg(test)]
const WARM_ROWS: usize = 64;

fn count(n: usize) -> Decimal {
    Decimal::from(n as u64)
}

impl Index {
    /// Builds the index of a tenant's `rows`, whose kinds are at the write counts `kinds`.
    /// Parts of `prev` (an index of earlier rows) whose kinds have not changed since are
    /// shared, not rebuilt: a write of tickets rebuilds the ticket part only.
    pub(crate) fn build(rows: &Rows, kinds: &KindGens, prev: Option<&Index>) -> Self {
        // The dimension values of the rows (with the names of sources and channels).
        let syms = rows.dims.clone();
        let name_sym = |name: &str| {
            syms.get(name)
                .expect("rows intern every source and channel")
        };
        let source_sym = Source::ALL.map(|s| name_sym(source_name(s)));
        let channel_sym = Channel::ALL.map(|c| name_sym(channel_name(c)));
        // `prev` when none of `deps` changed since it was built.
        let reuse = |deps: &[RecordKind]| {
            prev.filter(|p| {
                deps.iter()
                    .all(|k| p.built_from[*k as usize] == kinds[*k as usize])
            })
        };
        // `prev` when, of `deps`, the customers alone changed since it was built: its parts
        // that read customers only through the lookups are refit to new ones
        // ([`Part::refit`]), keeping what does not depend on customers.
        let refit = |deps: &[RecordKind]| {
            prev.filter(|p| {
                deps.iter().all(|k| {
                    *k == RecordKind::Customer || p.built_from[*k as usize] == kinds[*k as usize]
                })
            })
        };
        macro_rules! part {
            ($field:ident, $deps:expr, $build:expr) => {
                match reuse(&$deps) {
                    Some(p) => Arc::clone(&p.$field),
                    None => Arc::new($build),
                }
            };
            // A part whose rows read customers only through `$ctx`'s lookups.
            ($field:ident, $deps:expr, |$p:ident| $ctx:expr, $build:expr) => {
                match (reuse(&$deps), refit(&$deps)) {
                    (Some(p), _) => Arc::clone(&p.$field),
                    (None, Some($p)) => Arc::new($p.$field.refit($ctx)),
                    (None, None) => Arc::new($build),
                }
            };
        }
        // What rows inherit from customers and campaigns, shared by the parts built now.
        let lk = {
            let mut channels = vec![NONE; syms.names().len()];
            for c in rows.campaigns.iter() {
                channels[c.id as usize] = channel_sym[c.channel as usize];
            }
            Arc::new(Lookups::new(
                Arc::clone(&rows.customers),
                rows.customer_ids.len(),
                channels,
                channel_sym[Channel::Email as usize],
                source_sym,
            ))
        };

        // What subscriptions are as a whole, kept while they do not change.
        let classes = match reuse(&[RecordKind::Subscription]) {
            Some(p) => Arc::clone(&p.classes),
            None => Arc::new(SubClasses::of(&rows.subs)),
        };

        // Large tenants convert their rows on two threads: the deal side and the rest.
        let sales = || {
            // The deal part reads the store's deals in place; the stage parts are listed
            // when first read (and kept with the deal part while the deals do not change).
            let (deals, stage_ctx, stages) = match (reuse(&DEAL_DEPS), refit(&DEAL_DEPS)) {
                (Some(p), _) => (
                    Arc::clone(&p.deals),
                    p.stage_ctx.clone(),
                    p.stages
                        .get()
                        .map_or_else(OnceLock::new, |s| OnceLock::from(Arc::clone(s))),
                ),
                (None, Some(p)) => {
                    let ctx = StageCtx {
                        deals: Arc::clone(&p.stage_ctx.deals),
                        lk: Arc::clone(&lk),
                    };
                    let stages = p.stages.get().map_or_else(OnceLock::new, |s| {
                        OnceLock::from(Arc::new(StageParts {
                            exits: s.exits.refit(ctx.clone()),
                            stays: s.stays.refit(ctx.clone()),
                        }))
                    });
                    (Arc::new(p.deals.refit(Arc::clone(&lk))), ctx, stages)
                }
                (None, None) => (
                    Arc::new(Part::new(
                        Unit::Deal,
                        Arc::clone(&rows.deals),
                        Arc::clone(&lk),
                    )),
                    StageCtx {
                        deals: Arc::clone(&rows.deals),
                        lk: Arc::clone(&lk),
                    },
                    OnceLock::new(),
                ),
            };
            let quotas = part!(quotas, [RecordKind::Quota], {
                let rows = rows
                    .quotas
                    .iter()
                    .map(|q| QuotaRow {
                        owner: q.owner,
                        start: q.period_start,
                        end: q.period_end,
                        amount: q.amount,
                    })
                    .collect::<Vec<_>>();
                Part::new(Unit::Quota, rows, ())
            });
            let leads = part!(leads, [RecordKind::Lead, RecordKind::Campaign], {
                Part::new(Unit::Lead, Arc::clone(&rows.leads), Arc::clone(&lk))
            });
            (deals, stage_ctx, stages, quotas, leads)
        };
        let rest = || {
            // Customers are read in place, with the first MRR of each through their
            // earliest subscription.
            let customers = part!(
                customers,
                [
                    RecordKind::Customer,
                    RecordKind::Campaign,
                    RecordKind::Subscription
                ],
                {
                    let ctx = CustomerCtx {
                        lk: Arc::clone(&lk),
                        subs: Arc::clone(&rows.subs),
                        classes: Arc::clone(&classes),
                    };
                    Part::new(Unit::Customer, Arc::clone(&rows.customers), ctx)
                }
            );
            let spend = part!(spend, [RecordKind::Spend, RecordKind::Campaign], {
                let rows = rows
                    .spend
                    .iter()
                    .map(|s| SpendRow {
                        at: s.at.get(),
                        amount: s.amount,
                        category: s.category.index(),
                        campaign: s.campaign,
                        channel: s
                            .channel
                            .map_or_else(|| lk.channel(s.campaign), |c| channel_sym[c as usize]),
                    })
                    .collect::<Vec<_>>();
                Part::new(Unit::Spend, rows, ())
            });
            let campaigns = part!(campaigns, [RecordKind::Campaign], {
                let rows = rows
                    .campaigns
                    .iter()
                    .map(|c| CampaignRow {
                        id: c.id,
                        channel: channel_sym[c.channel as usize],
                        started: c.started_at.get(),
                        email: c.channel == Channel::Email,
                        delivered: c.delivered,
                        opens: c.opens,
                        clicks: c.clicks,
                    })
                    .collect::<Vec<_>>();
                Part::new(Unit::Campaign, rows, ())
            });
            // Purchases, tickets and survey responses are read in place.
            let purchases = part!(
                purchases,
                [RecordKind::Purchase, RecordKind::Customer],
                |p| Arc::clone(&lk),
                Part::new(Unit::Purchase, Arc::clone(&rows.purchases), Arc::clone(&lk))
            );
            let tickets = part!(
                tickets,
                [RecordKind::Ticket, RecordKind::Customer],
                |p| Arc::clone(&lk),
                Part::new(Unit::Ticket, Arc::clone(&rows.tickets), Arc::clone(&lk))
            );
            let surveys = part!(
                surveys,
                [RecordKind::SurveyResponse, RecordKind::Customer],
                |p| Arc::clone(&lk),
                Part::new(Unit::Survey, Arc::clone(&rows.surveys), Arc::clone(&lk))
            );
            // Subscriptions are read in place, with whether each is new MRR.
            let ctx = SubCtx {
                lk: Arc::clone(&lk),
                classes: Arc::clone(&classes),
            };
            let subs = part!(
                subs,
                [RecordKind::Subscription, RecordKind::Customer],
                |p| ctx.clone(),
                Part::new(Unit::Subscription, Arc::clone(&rows.subs), ctx.clone())
            );
            (
                customers, spend, campaigns, purchases, subs, tickets, surveys,
            )
        };
        let (
            (deals, stage_ctx, stages, quotas, leads),
            (customers, spend, campaigns, purchases, subs, tickets, surveys),
        ) = if rows.len() >= WARM_ROWS {
            std::thread::scope(|scope| {
                let sales = scope.spawn(sales);
                let rest = rest();
                let sales = sales
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e));
                (sales, rest)
            })
        } else {
            (sales(), rest())
        };
        Index {
            deals,
            stage_ctx,
            stages,
            quotas,
            leads,
            customers,
            spend,
            campaigns,
            purchases,
            subs,
            tickets,
            surveys,
            syms,
            classes,
            built_from: *kinds,
        }
    }

    /// Whether the index is large enough to be worth [`Index::warm`]ing in the background.
    pub(crate) fn large(&self) -> bool {
        self.deals.len() + self.leads.len() + self.purchases.len() >= WARM_ROWS
    }

    /// The stage exits and stays, their entries listed now if they were not yet (one
    /// entry per stage of each deal's history: `(deal slot, position)`).
    fn stages(&self) -> &StageParts {
        self.stages.get_or_init(|| {
            let deals = &self.stage_ctx.deals;
            let entries: usize = deals.iter().map(|d| d.stages.len()).sum();
            let mut list = Vec::with_capacity(entries);
            for (deal, d) in deals.slots() {
                list.extend((0..d.stages.len() as u32).map(|idx| StageRow { deal, idx }));
            }
            let list = Arc::new(list);
            let ctx = &self.stage_ctx;
            Arc::new(StageParts {
                exits: Part::new(Unit::StageExit, Arc::clone(&list), ctx.clone()),
                stays: Part::new(Unit::StageStay, list, ctx.clone()),
            })
        })
    }

    /// Builds every part's index now, one after the other (each is otherwise built by the
    /// first query that reads it): run on a background thread, it leaves the other core to
    /// the queries, which wait only for the parts they read (a part both reach is built
    /// once). Stops between parts once `wanted` says the index is no longer worth it.
    pub(crate) fn warm(&self, wanted: &dyn Fn() -> bool) {
        // Not the stage exits and stays: they are read through a stage partition (the
        // dashboard's stage groups), and an index over all of them would only add memory.
        let order: [&dyn Warm; 10] = [
            &*self.deals,
            &*self.customers,
            &*self.leads,
            &*self.subs,
            &*self.purchases,
            &*self.tickets,
            &*self.surveys,
            &*self.spend,
            &*self.campaigns,
            &*self.quotas,
        ];
        for p in order {
            if !wanted() {
                return;
            }
            p.warm();
        }
    }

    fn resolve(&self, filters: &BTreeMap<Dimension, String>) -> Resolved {
        filters
            .iter()
            .map(|(d, v)| (*d, self.syms.get(v)))
            .collect()
    }

    /// The value of `measure` over `scope`.
    pub(crate) fn measure(&self, measure: Measure, scope: &Scope) -> Result<Decimal, MetricError> {
        let f = self.resolve(&scope.filters);
        let w = &scope.window;
        let value = match measure {
            // With a stage filter (or group) an open deal is read through its current
            // stage: the stay in the last stage it entered before the end.
            Measure::DealsOpen | Measure::OpenAmount
                if scope.filters.contains_key(&Dimension::Stage) =>
            {
                self.open_in_stage(measure, w.end, &f)?
            }
            Measure::DealsWon
            | Measure::DealsLost
            | Measure::WonAmount
            | Measure::WonCycleDaysTotal
            | Measure::ClosingReps
            | Measure::DealsOpen
            | Measure::OpenAmount
            | Measure::UpsoldCustomers
            | Measure::CampaignAttributedRevenue
            | Measure::EmailAttributedRevenue => self.deal_measure(measure, w, &f)?,
            Measure::StageExits | Measure::StageDaysTotal => {
                let Some(s) = self.stages().exits.select(&f) else {
                    return Ok(Decimal::ZERO);
                };
                let r = s.ix.exits.range(w);
                if measure == Measure::StageExits {
                    count(s.count(&s.ix.exits, r))
                } else {
                    let nanos =
                        s.int_sum(&s.ix.exits, r, &s.ix.nanos, |e| s.ctx.stage_nanos(s.row(e)));
                    nanos_to(nanos, DAY_NANOS)?
                }
            }
            Measure::QuotaProrated => self.quota_prorated(w, &f)?,
            Measure::LeadsCreated | Measure::LeadsConverted => {
                let Some(s) = self.leads.select(&f) else {
                    return Ok(Decimal::ZERO);
                };
                let r = s.ix.created.range(w);
                if measure == Measure::LeadsCreated {
                    count(s.count(&s.ix.created, r))
                } else if s.all() {
                    count(s.ix.created_by_conversion.count(r, None, Some(w.end), |i| {
                        let lead = s.row(&s.ix.created.items[i]);
                        lead.converted_at.get().unwrap_or(Timestamp::MAX)
                    }))
                } else {
                    count(s.count_where(&s.ix.created, r, |e| {
                        s.row(e).converted_at.get().is_some_and(|c| c < w.end)
                    }))
                }
            }
            Measure::CustomersAcquired
            | Measure::CustomersAcquiredFromMarketing
            | Measure::CustomersAtStart
            | Measure::CustomersAtEnd
            | Measure::CustomersChurnedFromStart
            | Measure::CustomersNewRetained
            | Measure::CustomersActiveInWindow
            | Measure::MeanChurnedTenureYears
            | Measure::CustomersChurnedBeforeEnd
            | Measure::NewCustomerMeanFirstMrr => self.customer_measure(measure, w, &f)?,
            Measure::NewCustomerRevenue | Measure::NewCustomerRevenueFromMarketing => {
                let marketing_only = measure == Measure::NewCustomerRevenueFromMarketing;
                let new_customer = |acquired: Option<Timestamp>, marketing: bool| {
                    acquired.is_some_and(|a| w.contains(a)) && (marketing || !marketing_only)
                };
                let mut total = Decimal::ZERO;
                let acquired_in_w = (Some(Some(w.start)), Some(Some(w.end)));
                // The by-acquisition column summed, and an amount's value in it.
                let col = if marketing_only {
                    MARKETING_AMOUNTS
                } else {
                    ALL_AMOUNTS
                };
                let counted = |amount: Decimal, marketing: bool| {
                    if marketing || !marketing_only {
                        amount
                    } else {
                        Decimal::ZERO
                    }
                };
                if let Some(s) = self.deals.select(&f) {
                    let won = &s.ix.won;
                    let fast = s
                        .all()
                        .then(|| {
                            let blocked =
                                s.ix.won_by_acquisition
                                    .get(s.ctx, || DealIx::by_acquisition(s.ctx, s.rows, won));
                            blocked.sum(col, won.range(w), acquired_in_w.0, acquired_in_w.1, |i| {
                                let d = s.row(&won.items[i]);
                                let (acquired, marketing) = d.customer_acquired(s.ctx);
                                (acquired, counted(d.amount, marketing))
                            })
                        })
                        .flatten();
                    let part = match fast {
                        Some(sum) => sum?,
                        None => s.sum_where(
                            won,
                            won.range(w),
                            |e| {
                                let (acquired, marketing) = s.row(e).customer_acquired(s.ctx);
                                new_customer(acquired, marketing)
                            },
                            |e| s.row(e).amount,
                        )?,
                    };
                    total = add(total, part)?;
                }
                if let Some(s) = self.purchases.select(&f) {
                    let at = &s.ix.at;
                    let fast = s
                        .all()
                        .then(|| {
                            let blocked =
                                s.ix.by_acquisition
                                    .get(s.ctx, || PurchaseIx::by_acquisition(s.ctx, s.rows, at));
                            blocked.sum(col, at.range(w), acquired_in_w.0, acquired_in_w.1, |i| {
                                let p = s.row(&at.items[i]);
                                let (acquired, marketing) = s.ctx.acquisition(p.customer);
                                (acquired, counted(p.amount, marketing))
                            })
                        })
                        .flatten();
                    let part = match fast {
                        Some(sum) => sum?,
                        None => s.sum_where(
                            at,
                            at.range(w),
                            |e| {
                                let (acquired, marketing) = s.ctx.acquisition(s.row(e).customer);
                                new_customer(acquired, marketing)
                            },
                            |e| s.row(e).amount,
                        )?,
                    };
                    total = add(total, part)?;
                }
                total
            }
            Measure::Spend(_) | Measure::CampaignSpend => {
                let Some(s) = self.spend.select(&f) else {
                    return Ok(Decimal::ZERO);
                };
                let ix = s.ix;
                let r = ix.at.range(w);
                match measure {
                    Measure::Spend(categories) => self.spend_in(&s, categories, r)?,
                    _ => s.sum(&ix.at, r, &ix.campaign, |e| s.row(e).campaign_amount())?,
                }
            }
            Measure::EmailCampaigns
            | Measure::EmailDelivered
            | Measure::EmailOpens
            | Measure::EmailClicks => {
                let Some(s) = self.campaigns.select(&f) else {
                    return Ok(Decimal::ZERO);
                };
                let ix = s.ix;
                let r = ix.email.range(w);
                let total = match measure {
                    Measure::EmailCampaigns => return Ok(count(s.count(&ix.email, r))),
                    Measure::EmailDelivered => s.int_sum(&ix.email, r, &ix.delivered, |e| {
                        i128::from(s.row(e).delivered)
                    }),
                    Measure::EmailOpens => {
                        s.int_sum(&ix.email, r, &ix.opens, |e| i128::from(s.row(e).opens))
                    }
                    _ => s.int_sum(&ix.email, r, &ix.clicks, |e| i128::from(s.row(e).clicks)),
                };
                Decimal::try_from_i128_with_scale(total, 0).map_err(|_| overflow())?
            }
            Measure::PurchaseRevenue
            | Measure::Purchases
            | Measure::Buyers
            | Measure::RepeatBuyers => self.purchase_measure(measure, w, &f)?,
            Measure::RenewalsDue
            | Measure::Renewed
            | Measure::MrrAtEnd
            | Measure::MrrAtStart
            | Measure::PayingCustomersAtEnd
            | Measure::NewMrr
            | Measure::ExpansionMrr
            | Measure::ContractionMrr
            | Measure::ChurnedMrr => self.subscription_measure(measure, w, &f)?,
            Measure::TicketsResolved
            | Measure::ResolutionHoursTotal
            | Measure::TicketsResponded
            | Measure::FirstResponseHoursTotal => {
                let Some(s) = self.tickets.select(&f) else {
                    return Ok(Decimal::ZERO);
                };
                let ix = s.ix;
                let (times, resolved) = match measure {
                    Measure::TicketsResolved | Measure::ResolutionHoursTotal => {
                        (s.lazy(&ix.resolved, TicketTimes::resolved), true)
                    }
                    _ => (s.lazy(&ix.responded, TicketTimes::responded), false),
                };
                let (ev, sums) = (&times.ev, &times.nanos);
                let r = ev.range(w);
                match measure {
                    Measure::TicketsResolved | Measure::TicketsResponded => count(s.count(ev, r)),
                    _ => {
                        let nanos = s.int_sum(ev, r, sums, |e| s.row(e).wait_nanos(resolved));
                        nanos_to(nanos, HOUR_NANOS)?
                    }
                }
            }
            Measure::SurveyResponses {
                kind,
                scale,
                min,
                max,
            } => {
                let Some(s) = self.surveys.select(&f) else {
                    return Ok(Decimal::ZERO);
                };
                let k = &s.ix.kinds[survey_slot(kind)];
                let (min, max) = (Decimal::from(min), Decimal::from(max));
                let fits = |sc: u32, score: Decimal| {
                    (scale == 0 || sc == scale) && min <= score && score <= max
                };
                match &k.groups {
                    Some(groups) if s.all() => count(
                        groups
                            .iter()
                            .filter(|((sc, score), _)| fits(*sc, *score))
                            .map(|(_, times)| {
                                let lo = times.before(w.start);
                                times.before(w.end).max(lo) - lo
                            })
                            .sum(),
                    ),
                    _ => count(s.count_where(&k.at, k.at.range(w), |e| {
                        let x = s.row(e);
                        fits(x.scale_max, x.score)
                    })),
                }
            }
            Measure::SurveyScoreTotal(kind) => {
                let Some(s) = self.surveys.select(&f) else {
                    return Ok(Decimal::ZERO);
                };
                let k = &s.ix.kinds[survey_slot(kind)];
                s.sum(&k.at, k.at.range(w), &k.score, |e| s.row(e).score)?
            }
        };
        Ok(value.normalize())
    }

    fn deal_measure(
        &self,
        measure: Measure,
        w: &Window,
        f: &Resolved,
    ) -> Result<Decimal, MetricError> {
        let Some(s) = self.deals.select(f) else {
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
            Measure::EmailAttributedRevenue => {
                s.sum(&ix.won, won(), &ix.won_email_amount, |e| {
                    s.row(e).email_amount(s.ctx)
                })?
            }
            _ => unreachable!("deal_measure is called with deal measures only"),
        })
    }

    /// [`Measure::DealsOpen`] or [`Measure::OpenAmount`] at `end` read through stage stays
    /// (the filters name a stage): the stays in effect at `end` began before it and did
    /// not end before it.
    fn open_in_stage(
        &self,
        measure: Measure,
        end: Timestamp,
        f: &Resolved,
    ) -> Result<Decimal, MetricError> {
        let Some(s) = self.stages().stays.select(f) else {
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

    fn quota_prorated(&self, w: &Window, f: &Resolved) -> Result<Decimal, MetricError> {
        let Some(s) = self.quotas.select(f) else {
            return Ok(Decimal::ZERO);
        };
        let ev = &s.ix.by_start;
        let mut total = Decimal::ZERO;
        // Quotas before `first` all end at or before the window's start.
        let first = s.ix.max_end.partition_point(|end| *end <= w.start);
        for e in &ev.items[first..ev.before(w.end).max(first)] {
            let q = s.row(e);
            if q.end <= w.start || !s.ok(*e) {
                continue;
            }
            if w.start <= q.start && q.end <= w.end {
                // Entirely in W: the whole amount.
                total = add(total, q.amount)?;
                continue;
            }
            let from = q.start.max(w.start);
            let to = q.end.min(w.end);
            if to <= from {
                continue;
            }
            let overlap = Decimal::try_from_i128_with_scale(nanos_between(from, to), 0)
                .map_err(|_| overflow())?;
            let period = Decimal::try_from_i128_with_scale(nanos_between(q.start, q.end), 0)
                .map_err(|_| overflow())?;
            let part = q
                .amount
                .checked_mul(overlap)
                .and_then(|x| x.checked_div(period))
                .ok_or_else(|| MetricError::Overflow("a prorated quota".into()))?;
            total = add(total, part)?;
        }
        Ok(total)
    }

    fn customer_measure(
        &self,
        measure: Measure,
        w: &Window,
        f: &Resolved,
    ) -> Result<Decimal, MetricError> {
        let Some(s) = self.customers.select(f) else {
            return Ok(Decimal::ZERO);
        };
        let ix = s.ix;
        // Customers active at t: acquired before t, not churned before t.
        let active_at = |t: Timestamp| {
            if s.all() {
                ix.acquired.before(t) - ix.churned.before(t)
            } else {
                s.count_where(&ix.acquired, 0..ix.acquired.before(t), |e| {
                    s.row(e).churned().is_none_or(|c| c >= t)
                })
            }
        };
        Ok(match measure {
            Measure::CustomersAcquired => count(s.count(&ix.acquired, ix.acquired.range(w))),
            Measure::CustomersAcquiredFromMarketing => {
                count(s.count(&ix.marketing, ix.marketing.range(w)))
            }
            Measure::CustomersAtStart => count(active_at(w.start)),
            Measure::CustomersAtEnd => count(active_at(w.end)),
            Measure::CustomersChurnedFromStart if s.all() => count(
                ix.churned_by_acquisition
                    .count(ix.churned.range(w), None, Some(w.start), |i| {
                        s.row(&ix.churned.items[i]).acquired()
                    }),
            ),
            Measure::CustomersChurnedFromStart => {
                count(s.count_where(&ix.churned, ix.churned.range(w), |e| {
                    s.row(e).acquired() < w.start
                }))
            }
            Measure::CustomersNewRetained if s.all() => {
                count(
                    ix.acquired_by_churn
                        .count(ix.acquired.range(w), Some(w.end), None, |i| {
                            s.row(&ix.acquired.items[i])
                                .churned()
                                .unwrap_or(Timestamp::MAX)
                        }),
                )
            }
            Measure::CustomersNewRetained => {
                count(s.count_where(&ix.acquired, ix.acquired.range(w), |e| {
                    s.row(e).churned().is_none_or(|c| c >= w.end)
                }))
            }
            Measure::CustomersActiveInWindow => {
                if s.all() {
                    // Churned before start implies acquired before end.
                    count(ix.acquired.before(w.end) - ix.churned.before(w.start))
                } else {
                    count(
                        s.count_where(&ix.acquired, 0..ix.acquired.before(w.end), |e| {
                            s.row(e).churned().is_none_or(|c| c >= w.start)
                        }),
                    )
                }
            }
            Measure::MeanChurnedTenureYears | Measure::CustomersChurnedBeforeEnd => {
                let r = 0..ix.churned.before(w.end);
                let n = s.count(&ix.churned, r.clone());
                if measure == Measure::CustomersChurnedBeforeEnd {
                    count(n)
                } else if n == 0 {
                    Decimal::ZERO
                } else {
                    let nanos = s.int_sum(&ix.churned, r, &ix.tenure, |e| s.row(e).tenure_nanos());
                    nanos_to(nanos, YEAR_NANOS * n as i128)?
                }
            }
            Measure::NewCustomerMeanFirstMrr => {
                let r = ix.acquired.range(w);
                let fast = s
                    .all()
                    .then(|| {
                        let first_mrr = |i: usize| s.ctx.first_mrr(s.row(&ix.acquired.items[i]));
                        let total = ix
                            .first_mrr
                            .range(r.clone(), |i| first_mrr(i).unwrap_or(Decimal::ZERO))?;
                        let n = ix
                            .with_first_mrr
                            .range(r.clone(), |i| i128::from(first_mrr(i).is_some()));
                        Some((total, n as u64))
                    })
                    .flatten();
                let (total, n) = match fast {
                    Some(x) => x,
                    None => {
                        let mut total = Decimal::ZERO;
                        let mut n = 0u64;
                        for e in &ix.acquired.items[r] {
                            if let Some(mrr) = s.ctx.first_mrr(s.row(e)) {
                                if s.ok(*e) {
                                    total = add(total, mrr)?;
                                    n += 1;
                                }
                            }
                        }
                        (total, n)
                    }
                };
                if n == 0 {
                    Decimal::ZERO
                } else {
                    total
                        .checked_div(Decimal::from(n))
                        .ok_or_else(|| MetricError::Overflow("a mean first MRR".into()))?
                }
            }
            _ => unreachable!("customer_measure is called with customer measures only"),
        })
    }

    fn spend_in(
        &self,
        s: &part::Sel<'_, SpendIx>,
        categories: SpendCategories,
        r: std::ops::Range<usize>,
    ) -> Result<Decimal, MetricError> {
        if s.all() {
            let mut total = Some(Decimal::ZERO);
            for (c, sums) in s.ix.by_category.iter().enumerate() {
                if categories.contains_index(c) {
                    total = total.and_then(|t| {
                        let x = sums.range(r.clone(), |i| s.row(&s.ix.at.items[i]).amount_in(c))?;
                        t.checked_add(x)
                    });
                }
            }
            if let Some(t) = total {
                return Ok(t);
            }
        }
        s.sum_where(
            &s.ix.at,
            r,
            |e| categories.contains_index(s.row(e).category),
            |e| s.row(e).amount,
        )
    }

    fn purchase_measure(
        &self,
        measure: Measure,
        w: &Window,
        f: &Resolved,
    ) -> Result<Decimal, MetricError> {
        let Some(s) = self.purchases.select(f) else {
            return Ok(Decimal::ZERO);
        };
        let ix = s.ix;
        let r = ix.at.range(w);
        Ok(match measure {
            Measure::PurchaseRevenue => s.sum(&ix.at, r, &ix.amount, |e| s.row(e).amount)?,
            Measure::Purchases => count(s.count(&ix.at, r)),
            Measure::Buyers => count(s.distinct(&ix.at, r, &ix.prev, |e| s.row(e).customer)),
            Measure::RepeatBuyers => {
                if s.all() {
                    // The second purchase in the range of each customer with two or more.
                    let lo = r.start as u32;
                    count(
                        r.filter(|i| {
                            let p = ix.prev[*i];
                            let p2 = ix.prev2[*i];
                            p != NONE && p >= lo && (p2 == NONE || p2 < lo)
                        })
                        .count(),
                    )
                } else {
                    let mut per: HashMap<u32, u32> = HashMap::new();
                    for e in &ix.at.items[r] {
                        if s.ok(*e) {
                            *per.entry(s.row(e).customer).or_default() += 1;
                        }
                    }
                    count(per.values().filter(|n| **n >= 2).count())
                }
            }
            _ => unreachable!("purchase_measure is called with purchase measures only"),
        })
    }

    fn subscription_measure(
        &self,
        measure: Measure,
        w: &Window,
        f: &Resolved,
    ) -> Result<Decimal, MetricError> {
        let Some(s) = self.subs.select(f) else {
            return Ok(Decimal::ZERO);
        };
        let ix = s.ix;
        // The sum of movements `r` that match: from the prefix sums when every one does.
        let total = |m: &Moves, r: std::ops::Range<usize>| -> Result<Decimal, MetricError> {
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
        let mrr_at = |t: Timestamp| total(&ix.deltas, 0..ix.deltas.ev.before(t));
        let moved = |m: &Moves| total(m, m.ev.range(w));
        Ok(match measure {
            Measure::RenewalsDue => count(s.count(&ix.due, ix.due.range(w))),
            Measure::Renewed => count(s.count(&ix.renewed, ix.renewed.range(w))),
            Measure::MrrAtEnd => mrr_at(w.end)?,
            Measure::MrrAtStart => mrr_at(w.start)?,
            Measure::PayingCustomersAtEnd => {
                let from = ix.paying_from.before(w.end);
                if s.all() {
                    count(from - ix.paying_until.before(w.end))
                } else {
                    count(s.count_where(&ix.paying_from, 0..from, |(_, b)| {
                        b.get().is_none_or(|b| b >= w.end)
                    }))
                }
            }
            Measure::NewMrr => moved(&ix.new)?,
            Measure::ExpansionMrr => moved(&ix.expansion)?,
            Measure::ContractionMrr => moved(&ix.contraction)?,
            Measure::ChurnedMrr => moved(&ix.churn)?,
            _ => unreachable!("subscription_measure is called with subscription measures only"),
        })
    }

    /// The sorted distinct values of `dimension` among the records that carry it and
    /// match the scope's filters (the window is ignored).
    pub(crate) fn group_values(
        &self,
        dimension: Dimension,
        scope: &Scope,
    ) -> Result<Vec<String>, MetricError> {
        let f = self.resolve(&scope.filters);
        let mut syms = HashSet::new();
        self.deals.values(dimension, &f, &mut syms);
        if dimension == Dimension::Stage {
            // Only stage exits and stays carry a stage; their other values are their
            // deals' (which the deal part lists, whatever the stage filter).
            self.stages().exits.values(dimension, &f, &mut syms);
            self.stages().stays.values(dimension, &f, &mut syms);
        }
        self.quotas.values(dimension, &f, &mut syms);
        self.leads.values(dimension, &f, &mut syms);
        self.customers.values(dimension, &f, &mut syms);
        self.spend.values(dimension, &f, &mut syms);
        self.campaigns.values(dimension, &f, &mut syms);
        self.purchases.values(dimension, &f, &mut syms);
        self.subs.values(dimension, &f, &mut syms);
        self.tickets.values(dimension, &f, &mut syms);
        self.surveys.values(dimension, &f, &mut syms);
        let mut out: Vec<String> = syms
            .into_iter()
            .map(|s| self.syms.name(s).to_owned())
            .collect();
        out.sort();
        Ok(out)
    }
}
