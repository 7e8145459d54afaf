//! A direct, record-by-record reading of every [`Measure`]'s definition: slow (a pass over
//! the records per call) and obviously faithful. The tests check the fast index against it.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use jiff::Timestamp;
use kpi_core::{
    Aggregate, CustomMeasure, Decimal, Dimension, EventTime, FixedFilter, Measure, MeasuredRecords,
    MetricError, Scope,
};

use crate::attributes::Attributes;

use crate::dims::{DimValues, RecordLookup, Unit};
use crate::index::{deal_kind_name, readers_of, status_name, survey_kind_name};
use crate::record::{
    Channel, Deal, DealKind, DealStatus, Record, RecordKind, Source, Subscription,
};
use crate::store::Canonical;

use crate::units::{nanos_between, nanos_to, DAY_NANOS, HOUR_NANOS, YEAR_NANOS};

/// `records` with every amount converted to their base currency as kpid converts it, read
/// record by record: an amount in currency `C` at time `t` times the rate of the `fx_rate`
/// record of `C` with the greatest `(effective_at, id)` at or before `t`; none, the base
/// or zero as it is. Also, when some amount cannot be converted, the same records with
/// each such amount `x` (kept as sent in the first) made `2x + 1`: a measure reads an
/// unconverted amount when its two answers differ.
pub(crate) fn converted(records: &Canonical) -> (Canonical, Option<Canonical>) {
    let base = records.base_currency.as_str();
    let rates: Vec<&crate::record::FxRate> = records
        .of_kind(RecordKind::FxRate)
        .filter_map(|r| match r {
            Record::FxRate(r) if r.base.as_deref().unwrap_or("") == base => Some(r),
            _ => None,
        })
        .collect();
    let convert = |amount: Decimal, currency: &Option<String>, at: Timestamp| {
        let Some(code) = currency.as_deref() else {
            return Some(amount);
        };
        if code == base || amount.is_zero() {
            return Some(amount);
        }
        if base.is_empty() {
            return None;
        }
        let rate = rates
            .iter()
            .filter(|r| r.currency == code && r.effective_at <= at)
            .max_by(|a, b| (a.effective_at, &a.id).cmp(&(b.effective_at, &b.id)))?;
        amount.checked_mul(rate.rate)
    };
    let mut low = Canonical::default();
    low.base_currency = base.to_owned();
    let mut high = low.clone();
    let mut any = false;
    // Converts one amount in both copies.
    let mut one =
        |low: &mut Decimal, high: &mut Decimal, currency: &Option<String>, at| match convert(
            *low, currency, at,
        ) {
            Some(v) => (*low, *high) = (v, v),
            None => {
                any = true;
                *high = *low * Decimal::TWO + Decimal::ONE;
            }
        };
    for record in records.records() {
        let (mut l, mut h) = (record.clone(), record.clone());
        match (&mut l, &mut h) {
            (Record::Deal(l), Record::Deal(h)) => {
                let at = l.closed_at.unwrap_or(l.created_at);
                one(&mut l.amount, &mut h.amount, &l.currency.clone(), at);
            }
            (Record::Purchase(l), Record::Purchase(h)) => {
                one(&mut l.amount, &mut h.amount, &l.currency.clone(), l.at);
            }
            (Record::Spend(l), Record::Spend(h)) => {
                one(&mut l.amount, &mut h.amount, &l.currency.clone(), l.at);
            }
            (Record::Quota(l), Record::Quota(h)) => {
                let at = l.period_start;
                one(&mut l.amount, &mut h.amount, &l.currency.clone(), at);
            }
            (Record::Subscription(l), Record::Subscription(h)) => {
                let currency = l.currency.clone();
                for (lc, hc) in l.mrr_changes.iter_mut().zip(h.mrr_changes.iter_mut()) {
                    one(&mut lc.mrr, &mut hc.mrr, &currency, lc.at);
                }
            }
            _ => {}
        }
        low.upsert(l);
        high.upsert(h);
    }
    (low, any.then_some(high))
}

/// Answers measures by scanning `records`.
pub(crate) struct Reference<'a> {
    records: &'a Canonical,
    lookup: RecordLookup<'a>,
}

fn add(acc: &mut Decimal, x: Decimal) -> Result<(), MetricError> {
    *acc = acc
        .checked_add(x)
        .ok_or_else(|| MetricError::Overflow("a sum of stored amounts".into()))?;
    Ok(())
}

/// Whether a record of `unit` with `dims` matches `filters`; a filter on a dimension the
/// unit cannot carry is refused (the measure is an error), never ignored.
fn matches(unit: Unit, dims: &DimValues<'_>, filters: &BTreeMap<Dimension, String>) -> bool {
    filters.iter().all(|(d, v)| {
        assert!(unit.carries(*d), "{} records cannot carry {d}", unit.name());
        match d {
            Dimension::Cohort => dims.in_cohort(v),
            d => dims.value(*d).as_deref() == Some(v.as_str()),
        }
    })
}

/// The MRR in effect just before `t` regardless of start and end: the last change after
/// the starting one that is before `t` and before the end, else the starting MRR.
fn mrr_before(s: &Subscription, t: Timestamp) -> Decimal {
    let end = crate::subscription::end(s);
    s.mrr_changes
        .iter()
        .skip(1)
        .rfind(|c| c.at < t && end.is_none_or(|e| c.at < e))
        .map_or(s.mrr_changes[0].mrr, |c| c.mrr)
}

/// Whether a subscription is active at `t`: started before `t`, not ended before `t`.
fn sub_active_at(s: &Subscription, t: Timestamp) -> bool {
    s.started_at < t && crate::subscription::end(s).is_none_or(|e| e >= t)
}

/// Whether a subscription had an MRR above 0 in effect from an instant strictly before
/// `t`: one of its steps (the start, or a change) set an MRR above 0 at a time before `t`
/// and before its end.
fn paid_before(s: &Subscription, t: Timestamp) -> bool {
    let end = crate::subscription::end(s);
    let start = (s.started_at, s.mrr_changes[0].mrr);
    let changes = s.mrr_changes.iter().skip(1).map(|c| (c.at, c.mrr));
    std::iter::once(start)
        .chain(changes)
        .any(|(at, mrr)| mrr > Decimal::ZERO && at < t && end.is_none_or(|e| at < e))
}

/// What a subscription's start is (the module doc of `crate::subscription`).
#[derive(PartialEq, Eq)]
enum Start {
    New,
    Expansion,
    Reactivation,
}

/// The MRR a subscription contributes at `t`.
fn mrr_at(s: &Subscription, t: Timestamp) -> Decimal {
    if sub_active_at(s, t) {
        mrr_before(s, t)
    } else {
        Decimal::ZERO
    }
}

impl<'a> Reference<'a> {
    /// A reader over `records`.
    pub(crate) fn new(records: &'a Canonical) -> Self {
        Self {
            records,
            lookup: RecordLookup::new(records),
        }
    }

    fn all(&self, kind: RecordKind) -> impl Iterator<Item = &'a Record> {
        self.records.of_kind(kind)
    }

    /// The value of `measure` over `scope`.
    pub(crate) fn measure(&self, measure: Measure, scope: &Scope) -> Result<Decimal, MetricError> {
        let w = scope.window;
        let f = &scope.filters;
        let lookup = &self.lookup;
        let count = |n: usize| Ok(Decimal::from(n as u64));
        // The deals matching `filters`.
        let deals_where = |filters: &BTreeMap<Dimension, String>| -> Vec<&'a Deal> {
            self.all(RecordKind::Deal)
                .filter_map(|r| match r {
                    Record::Deal(d) if matches(Unit::Deal, &lookup.deal(d), filters) => Some(d),
                    _ => None,
                })
                .collect()
        };
        let deals = || deals_where(f).into_iter();
        // The open deals' stage filter is read below, on their stage histories.
        let mut unstaged = f.clone();
        unstaged.remove(&Dimension::Stage);
        let won = || {
            deals().filter(move |d| {
                d.status == DealStatus::Won && d.closed_at.is_some_and(|t| w.contains(t))
            })
        };
        let customers = || {
            self.all(RecordKind::Customer).filter_map(move |r| match r {
                Record::Customer(c) if matches(Unit::Customer, &lookup.customer_row(c), f) => {
                    Some(c)
                }
                _ => None,
            })
        };
        let active_at = |c: &crate::record::Customer, t: Timestamp| {
            c.acquired_at < t && c.churned_at.is_none_or(|x| x >= t)
        };
        let purchases = || {
            self.all(RecordKind::Purchase).filter_map(move |r| match r {
                Record::Purchase(p)
                    if w.contains(p.at) && matches(Unit::Purchase, &lookup.purchase(p), f) =>
                {
                    Some(p)
                }
                _ => None,
            })
        };
        let subs = || {
            self.all(RecordKind::Subscription)
                .filter_map(move |r| match r {
                    Record::Subscription(s)
                        if matches(Unit::Subscription, &lookup.subscription(s), f) =>
                    {
                        Some(s)
                    }
                    _ => None,
                })
        };
        let email_campaigns = || {
            self.all(RecordKind::Campaign).filter_map(move |r| match r {
                Record::Campaign(c)
                    if c.channel == Channel::Email
                        && w.contains(c.started_at)
                        && matches(Unit::Campaign, &lookup.campaign(c), f) =>
                {
                    Some(c)
                }
                _ => None,
            })
        };
        let spends = || {
            self.all(RecordKind::Spend).filter_map(move |r| match r {
                Record::Spend(s)
                    if w.contains(s.at) && matches(Unit::Spend, &lookup.spend(s), f) =>
                {
                    Some(s)
                }
                _ => None,
            })
        };
        let tickets = || {
            self.all(RecordKind::Ticket).filter_map(move |r| match r {
                Record::Ticket(t) if matches(Unit::Ticket, &lookup.ticket(t), f) => Some(t),
                _ => None,
            })
        };
        let surveys = || {
            self.all(RecordKind::SurveyResponse)
                .filter_map(move |r| match r {
                    Record::SurveyResponse(s)
                        if w.contains(s.at) && matches(Unit::Survey, &lookup.survey(s), f) =>
                    {
                        Some(s)
                    }
                    _ => None,
                })
        };
        let activities = || {
            self.all(RecordKind::Activity).filter_map(move |r| match r {
                Record::Activity(a)
                    if w.contains(a.occurred_at)
                        && matches(Unit::Activity, &lookup.activity(a), f) =>
                {
                    Some(a)
                }
                _ => None,
            })
        };
        let sum = |it: &mut dyn Iterator<Item = Decimal>| -> Result<Decimal, MetricError> {
            let mut acc = Decimal::ZERO;
            for x in it {
                add(&mut acc, x)?;
            }
            Ok(acc)
        };
        match measure {
            Measure::Custom(declared) => self.custom(declared, scope),
            Measure::Activities => count(activities().count()),
            Measure::ActivityAmount => sum(&mut activities().filter_map(|a| a.amount)),
            Measure::DealsWon => count(won().count()),
            Measure::DealsLost => count(
                deals()
                    .filter(|d| {
                        d.status == DealStatus::Lost && d.closed_at.is_some_and(|t| w.contains(t))
                    })
                    .count(),
            ),
            Measure::WonAmount => sum(&mut won().map(|d| d.amount)),
            Measure::WonCycleDaysTotal => {
                let nanos: i128 = won()
                    .map(|d| nanos_between(d.created_at, d.closed_at.unwrap_or(d.created_at)))
                    .sum();
                nanos_to(nanos, DAY_NANOS)
            }
            Measure::ClosingReps => count(
                deals()
                    .filter(|d| d.status != DealStatus::Open)
                    .filter(|d| d.closed_at.is_some_and(|t| w.contains(t)))
                    .map(|d| d.owner.as_str())
                    .collect::<HashSet<_>>()
                    .len(),
            ),
            Measure::DealsOpen | Measure::OpenAmount => {
                // Created before end and open at end; with a stage filter, in that stage
                // at end: the last one entered before end.
                let stage = f.get(&Dimension::Stage);
                let open: Vec<_> = deals_where(&unstaged)
                    .into_iter()
                    .filter(|d| d.created_at < w.end && d.closed_at.is_none_or(|c| c >= w.end))
                    .filter(|d| {
                        stage.is_none_or(|s| {
                            d.stage_history
                                .iter()
                                .rfind(|e| e.entered_at < w.end)
                                .is_some_and(|e| e.stage == *s)
                        })
                    })
                    .collect();
                if measure == Measure::DealsOpen {
                    count(open.len())
                } else {
                    sum(&mut open.iter().map(|d| d.amount))
                }
            }
            Measure::StageExits | Measure::StageDaysTotal => {
                let mut n = 0u64;
                let mut nanos = 0i128;
                for r in self.all(RecordKind::Deal) {
                    let Record::Deal(d) = r else { continue };
                    for (i, entry) in d.stage_history.iter().enumerate() {
                        let exit = match d.stage_history.get(i + 1) {
                            Some(next) => Some(next.entered_at),
                            None => d.closed_at,
                        };
                        let Some(exit) = exit else { continue };
                        if w.contains(exit)
                            && matches(Unit::StageExit, &lookup.deal_stage(d, &entry.stage), f)
                        {
                            n += 1;
                            nanos += nanos_between(entry.entered_at, exit);
                        }
                    }
                }
                if measure == Measure::StageExits {
                    Ok(Decimal::from(n))
                } else {
                    nanos_to(nanos, DAY_NANOS)
                }
            }
            Measure::UpsoldCustomers => count(
                won()
                    .filter(|d| matches!(d.kind, DealKind::Upsell | DealKind::CrossSell))
                    .filter_map(|d| d.customer_id.as_deref())
                    .collect::<HashSet<_>>()
                    .len(),
            ),
            Measure::CampaignAttributedRevenue => {
                sum(&mut won().filter(|d| d.campaign_id.is_some()).map(|d| d.amount))
            }
            Measure::EmailAttributedRevenue => sum(&mut won()
                .filter(|d| {
                    lookup.campaign_channel(d.campaign_id.as_deref()) == Some(Channel::Email)
                })
                .map(|d| d.amount)),
            Measure::QuotaProrated => {
                let mut acc = Decimal::ZERO;
                for r in self.all(RecordKind::Quota) {
                    let Record::Quota(q) = r else { continue };
                    if !matches(Unit::Quota, &lookup.quota(q), f) {
                        continue;
                    }
                    let from = q.period_start.max(w.start);
                    let to = q.period_end.min(w.end);
                    if to <= from {
                        continue;
                    }
                    if w.start <= q.period_start && q.period_end <= w.end {
                        add(&mut acc, q.amount)?;
                        continue;
                    }
                    let overlap = Decimal::from_i128_with_scale(nanos_between(from, to), 0);
                    let period = Decimal::from_i128_with_scale(
                        nanos_between(q.period_start, q.period_end),
                        0,
                    );
                    let part = q
                        .amount
                        .checked_mul(overlap)
                        .and_then(|x| x.checked_div(period))
                        .ok_or_else(|| MetricError::Overflow("a prorated quota".into()))?;
                    add(&mut acc, part)?;
                }
                Ok(acc)
            }
            Measure::LeadsCreated | Measure::LeadsConverted => {
                let n = self
                    .all(RecordKind::Lead)
                    .filter_map(|r| match r {
                        Record::Lead(l) if matches(Unit::Lead, &lookup.lead(l), f) => Some(l),
                        _ => None,
                    })
                    .filter(|l| w.contains(l.created_at))
                    .filter(|l| {
                        measure == Measure::LeadsCreated
                            || l.converted_at.is_some_and(|c| c < w.end)
                    })
                    .count();
                count(n)
            }
            Measure::CustomersAcquired => {
                count(customers().filter(|c| w.contains(c.acquired_at)).count())
            }
            Measure::CustomersAcquiredFromMarketing => count(
                customers()
                    .filter(|c| w.contains(c.acquired_at) && c.source == Source::Marketing)
                    .count(),
            ),
            Measure::CustomersAtStart => {
                count(customers().filter(|c| active_at(c, w.start)).count())
            }
            Measure::CustomersAtEnd => count(customers().filter(|c| active_at(c, w.end)).count()),
            Measure::CustomersChurnedFromStart => count(
                customers()
                    .filter(|c| {
                        active_at(c, w.start) && c.churned_at.is_some_and(|x| w.contains(x))
                    })
                    .count(),
            ),
            Measure::CustomersNewRetained => count(
                customers()
                    .filter(|c| w.contains(c.acquired_at) && active_at(c, w.end))
                    .count(),
            ),
            Measure::CustomersActiveInWindow => count(
                customers()
                    .filter(|c| c.acquired_at < w.end && c.churned_at.is_none_or(|x| x >= w.start))
                    .count(),
            ),
            Measure::MeanChurnedTenureYears | Measure::CustomersChurnedBeforeEnd => {
                let churned: Vec<_> = customers()
                    .filter_map(|c| c.churned_at.filter(|x| *x < w.end).map(|x| (c, x)))
                    .collect();
                if measure == Measure::CustomersChurnedBeforeEnd {
                    return count(churned.len());
                }
                if churned.is_empty() {
                    return Ok(Decimal::ZERO);
                }
                let total: i128 = churned
                    .iter()
                    .map(|(c, x)| nanos_between(c.acquired_at, *x))
                    .sum();
                nanos_to(total, YEAR_NANOS * churned.len() as i128)
            }
            Measure::NewCustomerRevenue | Measure::NewCustomerRevenueFromMarketing => {
                let new_customer = |id: Option<&str>| {
                    lookup.customer(id).is_some_and(|c| {
                        w.contains(c.acquired_at)
                            && (measure == Measure::NewCustomerRevenue
                                || c.source == Source::Marketing)
                    })
                };
                let mut acc = sum(&mut won()
                    .filter(|d| new_customer(d.customer_id.as_deref()))
                    .map(|d| d.amount))?;
                for p in purchases() {
                    if new_customer(Some(&p.customer_id)) {
                        add(&mut acc, p.amount)?;
                    }
                }
                Ok(acc)
            }
            Measure::NewCustomerMeanFirstMrr => {
                let mut first: BTreeMap<&str, &Subscription> = BTreeMap::new();
                for r in self.all(RecordKind::Subscription) {
                    let Record::Subscription(s) = r else { continue };
                    let e = first.entry(s.customer_id.as_str()).or_insert(s);
                    if (s.started_at, &s.id) < (e.started_at, &e.id) {
                        *e = s;
                    }
                }
                let mut total = Decimal::ZERO;
                let mut n = 0u64;
                for c in customers().filter(|c| w.contains(c.acquired_at)) {
                    if let Some(s) = first.get(c.id.as_str()) {
                        add(&mut total, s.mrr_changes[0].mrr)?;
                        n += 1;
                    }
                }
                if n == 0 {
                    return Ok(Decimal::ZERO);
                }
                total
                    .checked_div(Decimal::from(n))
                    .ok_or_else(|| MetricError::Overflow("a mean".into()))
            }
            Measure::Spend(categories) => sum(&mut spends()
                .filter(|s| categories.contains_index(s.category.index()))
                .map(|s| s.amount)),
            Measure::CampaignSpend => sum(&mut spends()
                .filter(|s| s.campaign_id.is_some())
                .map(|s| s.amount)),
            Measure::EmailCampaigns => count(email_campaigns().count()),
            Measure::EmailDelivered => {
                sum(&mut email_campaigns().map(|c| Decimal::from(c.delivered)))
            }
            Measure::EmailOpens => sum(&mut email_campaigns().map(|c| Decimal::from(c.opens))),
            Measure::EmailClicks => sum(&mut email_campaigns().map(|c| Decimal::from(c.clicks))),
            Measure::PurchaseRevenue => sum(&mut purchases().map(|p| p.amount)),
            Measure::Purchases => count(purchases().count()),
            Measure::Buyers | Measure::RepeatBuyers => {
                let mut per: BTreeMap<&str, u32> = BTreeMap::new();
                for p in purchases() {
                    *per.entry(p.customer_id.as_str()).or_default() += 1;
                }
                let min = if measure == Measure::Buyers { 1 } else { 2 };
                count(per.values().filter(|n| **n >= min).count())
            }
            Measure::RenewalsDue => count(
                subs()
                    .filter(|s| s.renewal_due_at.is_some_and(|t| w.contains(t)))
                    .count(),
            ),
            Measure::Renewed => count(
                subs()
                    .filter(|s| s.renewal_due_at.is_some_and(|t| w.contains(t)))
                    .filter(|s| s.renewed == Some(true))
                    .count(),
            ),
            Measure::MrrAtEnd => sum(&mut subs().map(|s| mrr_at(s, w.end))),
            Measure::MrrAtStart => sum(&mut subs().map(|s| mrr_at(s, w.start))),
            Measure::PayingCustomersAtEnd => count(
                subs()
                    .filter(|s| mrr_at(s, w.end) > Decimal::ZERO)
                    .map(|s| s.customer_id.as_str())
                    .collect::<HashSet<_>>()
                    .len(),
            ),
            Measure::NewMrr | Measure::ExpansionMrr | Measure::ReactivationMrr => {
                let counted = match measure {
                    Measure::NewMrr => Start::New,
                    Measure::ExpansionMrr => Start::Expansion,
                    _ => Start::Reactivation,
                };
                let mut acc = Decimal::ZERO;
                for s in subs() {
                    if w.contains(s.started_at) && self.start_of(s) == counted {
                        add(&mut acc, s.mrr_changes[0].mrr)?;
                    }
                    if measure == Measure::ExpansionMrr {
                        for (prev, next) in self.changes_before_end(s) {
                            if w.contains(next.0) && next.1 > prev {
                                add(&mut acc, next.1 - prev)?;
                            }
                        }
                    }
                }
                Ok(acc)
            }
            Measure::ContractionMrr => {
                let mut acc = Decimal::ZERO;
                for s in subs() {
                    for (prev, next) in self.changes_before_end(s) {
                        if w.contains(next.0) && next.1 < prev {
                            add(&mut acc, prev - next.1)?;
                        }
                    }
                }
                Ok(acc)
            }
            Measure::ChurnedMrr => sum(&mut subs()
                .filter_map(|s| {
                    crate::subscription::end(s)
                        .filter(|e| w.contains(*e))
                        .map(|e| (s, e))
                })
                .map(|(s, e)| mrr_before(s, e))),
            Measure::TicketsResolved | Measure::ResolutionHoursTotal => {
                let resolved: Vec<_> = tickets()
                    .filter_map(|t| t.resolved_at.filter(|x| w.contains(*x)).map(|x| (t, x)))
                    .collect();
                if measure == Measure::TicketsResolved {
                    return count(resolved.len());
                }
                nanos_to(
                    resolved
                        .iter()
                        .map(|(t, x)| nanos_between(t.opened_at, *x))
                        .sum(),
                    HOUR_NANOS,
                )
            }
            Measure::TicketsResponded | Measure::FirstResponseHoursTotal => {
                let responded: Vec<_> = tickets()
                    .filter_map(|t| {
                        t.first_response_at
                            .filter(|x| w.contains(*x))
                            .map(|x| (t, x))
                    })
                    .collect();
                if measure == Measure::TicketsResponded {
                    return count(responded.len());
                }
                nanos_to(
                    responded
                        .iter()
                        .map(|(t, x)| nanos_between(t.opened_at, *x))
                        .sum(),
                    HOUR_NANOS,
                )
            }
            Measure::SurveyResponses {
                kind,
                scale,
                min,
                max,
            } => count(
                surveys()
                    .filter(|s| s.kind == kind && (scale == 0 || s.scale_max == scale))
                    .filter(|s| Decimal::from(min) <= s.score && s.score <= Decimal::from(max))
                    .count(),
            ),
            Measure::SurveyScoreTotal(kind) => {
                sum(&mut surveys().filter(|s| s.kind == kind).map(|s| s.score))
            }
        }
    }

    /// A custom measure, read from its definition: the records of its kind matching the
    /// scope's filters and its fixed filters whose time is in the window, aggregated.
    fn custom(&self, declared: &CustomMeasure, scope: &Scope) -> Result<Decimal, MetricError> {
        struct Read<'r> {
            time: Option<Timestamp>,
            amount: Decimal,
            status: Option<&'static str>,
            kind: &'r str,
            customer: Option<&'r str>,
            attributes: &'r Attributes,
        }
        let lookup = &self.lookup;
        let read: Vec<Read<'_>> = match declared.records {
            MeasuredRecords::Deals => self
                .all(RecordKind::Deal)
                .filter_map(|r| match r {
                    Record::Deal(d) if matches(Unit::Deal, &lookup.deal(d), &scope.filters) => {
                        Some(Read {
                            time: match declared.time {
                                EventTime::Created => Some(d.created_at),
                                EventTime::Closed => d.closed_at,
                                _ => None,
                            },
                            amount: d.amount,
                            status: Some(status_name(d.status)),
                            kind: deal_kind_name(d.kind),
                            customer: d.customer_id.as_deref(),
                            attributes: &d.attributes,
                        })
                    }
                    _ => None,
                })
                .collect(),
            MeasuredRecords::Activities => self
                .all(RecordKind::Activity)
                .filter_map(|r| match r {
                    Record::Activity(a)
                        if matches(Unit::Activity, &lookup.activity(a), &scope.filters) =>
                    {
                        Some(Read {
                            time: (declared.time == EventTime::Occurred).then_some(a.occurred_at),
                            amount: a.amount.unwrap_or(Decimal::ZERO),
                            status: None,
                            kind: &a.activity_type,
                            customer: a.customer_id.as_deref(),
                            attributes: &a.attributes,
                        })
                    }
                    _ => None,
                })
                .collect(),
            MeasuredRecords::Leads => self
                .all(RecordKind::Lead)
                .filter_map(|r| match r {
                    Record::Lead(l) if matches(Unit::Lead, &lookup.lead(l), &scope.filters) => {
                        Some(Read {
                            time: match declared.time {
                                EventTime::Created => Some(l.created_at),
                                EventTime::Converted => l.converted_at,
                                _ => None,
                            },
                            amount: Decimal::ZERO,
                            status: None,
                            kind: "",
                            customer: None,
                            attributes: &l.attributes,
                        })
                    }
                    _ => None,
                })
                .collect(),
            MeasuredRecords::Purchases => self
                .all(RecordKind::Purchase)
                .filter_map(|r| match r {
                    Record::Purchase(p)
                        if matches(Unit::Purchase, &lookup.purchase(p), &scope.filters) =>
                    {
                        Some(Read {
                            time: (declared.time == EventTime::At).then_some(p.at),
                            amount: p.amount,
                            status: None,
                            kind: "",
                            customer: Some(p.customer_id.as_str()),
                            attributes: &p.attributes,
                        })
                    }
                    _ => None,
                })
                .collect(),
            MeasuredRecords::Tickets => self
                .all(RecordKind::Ticket)
                .filter_map(|r| match r {
                    Record::Ticket(t)
                        if matches(Unit::Ticket, &lookup.ticket(t), &scope.filters) =>
                    {
                        Some(Read {
                            time: match declared.time {
                                EventTime::Opened => Some(t.opened_at),
                                EventTime::FirstResponse => t.first_response_at,
                                EventTime::Resolved => t.resolved_at,
                                _ => None,
                            },
                            amount: Decimal::ZERO,
                            status: None,
                            kind: "",
                            customer: t.customer_id.as_deref(),
                            attributes: &t.attributes,
                        })
                    }
                    _ => None,
                })
                .collect(),
            MeasuredRecords::SurveyResponses => self
                .all(RecordKind::SurveyResponse)
                .filter_map(|r| match r {
                    Record::SurveyResponse(s)
                        if matches(Unit::Survey, &lookup.survey(s), &scope.filters) =>
                    {
                        Some(Read {
                            time: (declared.time == EventTime::At).then_some(s.at),
                            amount: Decimal::ZERO,
                            status: None,
                            kind: survey_kind_name(s.kind),
                            customer: s.customer_id.as_deref(),
                            attributes: &s.attributes,
                        })
                    }
                    _ => None,
                })
                .collect(),
        };
        let attribute =
            |r: &Read<'_>, name: &str| r.attributes.get(name).map(|v| v.dimension_value());
        let counted = read.iter().filter(|r| {
            r.time.is_some_and(|t| scope.window.contains(t))
                && declared.filters.iter().all(|f| match *f {
                    FixedFilter::Status(s) => r.status == Some(s),
                    FixedFilter::Type(t) => r.kind == t,
                    FixedFilter::Attribute(name, value) => {
                        attribute(r, name).as_deref() == Some(value)
                    }
                })
        });
        let mut total = Decimal::ZERO;
        match declared.aggregate {
            Aggregate::Count => return Ok(Decimal::from(counted.count() as u64)),
            Aggregate::DistinctCustomers => {
                let customers: HashSet<&str> = counted.filter_map(|r| r.customer).collect();
                return Ok(Decimal::from(customers.len() as u64));
            }
            Aggregate::SumAmount => {
                for r in counted {
                    add(&mut total, r.amount)?;
                }
            }
            Aggregate::SumAttribute(name) => {
                for r in counted {
                    if let Some(x) = attribute(r, name).and_then(|v| v.parse::<Decimal>().ok()) {
                        add(&mut total, x)?;
                    }
                }
            }
        }
        Ok(total)
    }

    /// The (previous MRR, (at, new MRR)) pairs of a subscription's changes after the
    /// starting one, before its end.
    /// What the start of `s` is: expansion when another subscription of its customer is
    /// active when it starts; else reactivation when another one had paid MRR before it
    /// starts; else new.
    fn start_of(&self, s: &Subscription) -> Start {
        let others = || {
            self.all(RecordKind::Subscription)
                .filter_map(|r| match r {
                    Record::Subscription(o) => Some(o),
                    _ => None,
                })
                .filter(|o| o.id != s.id && o.customer_id == s.customer_id)
        };
        if others().any(|o| sub_active_at(o, s.started_at)) {
            Start::Expansion
        } else if others().any(|o| paid_before(o, s.started_at)) {
            Start::Reactivation
        } else {
            Start::New
        }
    }

    fn changes_before_end(&self, s: &Subscription) -> Vec<(Decimal, (Timestamp, Decimal))> {
        let end = crate::subscription::end(s);
        let mut out = Vec::new();
        let mut prev = s.mrr_changes[0].mrr;
        for c in s.mrr_changes.iter().skip(1) {
            if end.is_some_and(|e| c.at >= e) {
                break;
            }
            out.push((prev, (c.at, c.mrr)));
            prev = c.mrr;
        }
        out
    }

    /// The sorted distinct values of `dimension` among the records of the units that
    /// answer `measures` and match the scope's filters (the window is ignored).
    pub(crate) fn group_values(
        &self,
        dimension: Dimension,
        scope: &Scope,
        measures: &[Measure],
    ) -> Vec<String> {
        let f = &scope.filters;
        let lookup = &self.lookup;
        let staged = dimension == Dimension::Stage || f.contains_key(&Dimension::Stage);
        let units = readers_of(measures, staged);
        let mut out: BTreeSet<String> = BTreeSet::new();
        let mut take = |unit: Unit, dims: DimValues<'a>| {
            if units.contains(&unit) && matches(unit, &dims, f) {
                if let Some(v) = dims.value(dimension) {
                    out.insert(v);
                }
            }
        };
        for kind in RecordKind::ALL {
            for r in self.all(kind) {
                match r {
                    Record::Customer(c) => take(Unit::Customer, lookup.customer_row(c)),
                    Record::Lead(l) => take(Unit::Lead, lookup.lead(l)),
                    Record::Deal(d) => {
                        take(Unit::Deal, lookup.deal(d));
                        for entry in &d.stage_history {
                            // Every stage a deal was ever in: the stage parts' rows are
                            // every stage entry (an exit's index keeps those exited).
                            take(Unit::StageStay, lookup.deal_stage(d, &entry.stage));
                            take(Unit::StageExit, lookup.deal_stage(d, &entry.stage));
                        }
                    }
                    Record::Subscription(s) => take(Unit::Subscription, lookup.subscription(s)),
                    Record::Purchase(p) => take(Unit::Purchase, lookup.purchase(p)),
                    Record::Spend(s) => take(Unit::Spend, lookup.spend(s)),
                    Record::Campaign(c) => take(Unit::Campaign, lookup.campaign(c)),
                    Record::Ticket(t) => take(Unit::Ticket, lookup.ticket(t)),
                    Record::SurveyResponse(s) => take(Unit::Survey, lookup.survey(s)),
                    Record::Quota(q) => take(Unit::Quota, lookup.quota(q)),
                    Record::Activity(a) => take(Unit::Activity, lookup.activity(a)),
                    // Rates are no unit's rows: they only convert amounts.
                    Record::FxRate(_) => {}
                }
            }
        }
        out.into_iter().collect()
    }
}
