//! A deterministic, realistic CRM dataset for the demo and the benchmarks.
//!
//! Over the two years before `end` a growing business runs campaigns on every channel and
//! spends money in every category; leads arrive (more and more of them), a third convert to
//! customers through deals that move qualification → demo → proposal → negotiation → won,
//! the rest are lost or still open; customers subscribe, expand, contract, come up for
//! renewal and sometimes churn (a few come back later); some buy one-off services (a few repeatedly), open tickets
//! that agents answer and resolve, and answer NPS, CSAT and CES surveys; every rep has a
//! quarterly quota. The same seed gives the same records, and every record passes
//! [`crate::validate`].
//!
//! [`stream`] yields the records lazily (for datasets of millions), [`generate`] collects
//! them.

use std::collections::VecDeque;

use jiff::Timestamp;
use rust_decimal::Decimal;

use crate::record::{
    Activity, AttributeValue, Attributes, Campaign, Channel, Customer, Deal, DealKind, DealStatus,
    FxRate, Lead, MrrChange, Purchase, Quota, Record, Source, Spend, SpendCategory, StageEntry,
    Subscription, SurveyKind, SurveyResponse, Ticket,
};

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoOptions {
    /// The seed: the same seed gives the same records.
    pub seed: u64,
    /// The approximate number of records, over every kind.
    pub records: usize,
    /// The end of the two years the records span (every event is before it).
    pub end: Timestamp,
    /// The open data model too: three custom attributes on every customer (`region`,
    /// `plan`, `seats`) and deal (`region`, `product`, `seats`), and one to four activities
    /// (calls, emails, meetings, demos) for every deal. Off, no record has attributes and
    /// there are no activities.
    pub attributes_and_activities: bool,
    /// Amounts in several currencies: about a quarter of the deals, subscriptions,
    /// purchases, spend and quotas name GBP, USD or EUR, and `fx_rate` records give GBP and
    /// USD a rate every 30 days from a year before the span (so every amount has one).
    /// The tenant's base currency must then be EUR. Off, no record names a currency. The
    /// other records are the same either way.
    pub currencies: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            seed: 42,
            records: 20_000,
            end: Timestamp::from_second(1_735_689_600).expect("2025-01-01T00:00:00Z"),
            attributes_and_activities: false,
            currencies: false,
        }
    }
}

/// The dataset as a vector (fine up to a few million records; use [`stream`] beyond).
pub fn generate(opts: &DemoOptions) -> Vec<Record> {
    stream(opts).collect()
}

/// The dataset, generated lazily: memory stays small whatever `records` is.
pub fn stream(opts: &DemoOptions) -> DemoStream {
    DemoStream::new(opts)
}

const DAY: i64 = 86_400;
const SPAN_DAYS: i64 = 730;
/// 9000-01-01T00:00:00Z: later ends are moved back to it.
const LATEST_END: i64 = 221_845_392_000;
const STAGES: [&str; 4] = ["qualification", "demo", "proposal", "negotiation"];
const SEGMENTS: [&str; 3] = ["smb", "mid_market", "enterprise"];

/// SplitMix64: a small, fast, well-distributed PRNG; enough for synthetic data.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        debug_assert!(lo <= hi);
        let span = (hi - lo) as u64 + 1;
        lo + (self.next_u64() % span) as i64
    }

    /// True with probability `percent` / 100.
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    /// An index drawn with the given weights.
    pub(crate) fn weighted(&mut self, weights: &[u64]) -> usize {
        let total: u64 = weights.iter().sum();
        let mut x = self.next_u64() % total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}

struct CampaignInfo {
    id: String,
    started_at: i64,
}

/// The lazy generator behind [`stream`].
pub struct DemoStream {
    rng: Rng,
    /// First second of the span.
    start: i64,
    /// First second after the span.
    end: i64,
    target: usize,
    emitted: usize,
    buffer: VecDeque<Record>,
    campaigns: Vec<CampaignInfo>,
    reps: usize,
    agents: usize,
    next_lead: u64,
    next_customer: u64,
    next_deal: u64,
    next_sub: u64,
    next_purchase: u64,
    next_ticket: u64,
    next_survey: u64,
    attributes_and_activities: bool,
    next_activity: u64,
    /// With [`DemoOptions::currencies`]: draws each amount's currency (apart from `rng`,
    /// so the records are otherwise the same).
    currency_rng: Option<Rng>,
}

impl std::fmt::Debug for DemoStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoStream")
            .field("target", &self.target)
            .field("emitted", &self.emitted)
            .finish_non_exhaustive()
    }
}

fn ts(second: i64) -> Timestamp {
    Timestamp::from_second(second).expect("generated times lie in the years 1970..=9999")
}

fn money(cents: i64) -> Decimal {
    Decimal::new(cents, 2)
}

impl DemoStream {
    fn new(opts: &DemoOptions) -> Self {
        // Keep the span (and renewals due a year after it) well inside 1970..=9999.
        let end = opts.end.as_second().clamp(SPAN_DAYS * DAY, LATEST_END);
        let start = end - SPAN_DAYS * DAY;
        let mut s = DemoStream {
            rng: Rng(opts.seed ^ 0x6B70_6964_2064_656D),
            start,
            end,
            target: opts.records,
            emitted: 0,
            buffer: VecDeque::new(),
            campaigns: Vec::new(),
            reps: (opts.records / 1500).clamp(3, 500),
            agents: (opts.records / 4000).clamp(2, 200),
            next_lead: 0,
            next_customer: 0,
            next_deal: 0,
            next_sub: 0,
            next_purchase: 0,
            next_ticket: 0,
            next_survey: 0,
            attributes_and_activities: opts.attributes_and_activities,
            next_activity: 0,
            currency_rng: opts
                .currencies
                .then_some(Rng(opts.seed ^ 0x6375_7272_656E_6379)),
        };
        if opts.currencies && opts.records > 0 {
            s.fx_rates();
        }
        if opts.records > 0 {
            s.fixed_records(opts.records);
        }
        s
    }

    fn rep(&mut self) -> String {
        format!("rep-{:03}", self.rng.range(1, self.reps as i64))
    }

    fn agent(&mut self) -> String {
        format!("agent-{:02}", self.rng.range(1, self.agents as i64))
    }

    /// A time in the span, denser towards its end (a growing business).
    fn growing_time(&mut self) -> i64 {
        let span = self.end - self.start;
        // max of two uniforms: density rises linearly over the span.
        let a = self.rng.range(0, span - 1);
        let b = self.rng.range(0, span - 1);
        self.start + a.max(b)
    }

    fn push(&mut self, mut r: Record) {
        if let Some(rng) = &mut self.currency_rng {
            let code = ["GBP", "USD", "EUR"]
                .get(rng.weighted(&[15, 8, 4, 73]))
                .map(|c| (*c).to_owned());
            match &mut r {
                Record::Deal(x) => x.currency = code,
                Record::Subscription(x) => x.currency = code,
                Record::Purchase(x) => x.currency = code,
                Record::Spend(x) => x.currency = code,
                Record::Quota(x) => x.currency = code,
                _ => {}
            }
        }
        self.buffer.push_back(r);
    }

    /// GBP and USD rates (in EUR) every 30 days, from a year before the span to its end.
    fn fx_rates(&mut self) {
        let from = self.start - 365 * DAY;
        for k in 0..=(SPAN_DAYS + 365) / 30 {
            let at = from + k * 30 * DAY;
            for (code, base, step, cycle) in [("GBP", 11500, 125, 7), ("USD", 9000, 100, 5)] {
                self.push(Record::FxRate(FxRate {
                    id: format!("fx-{code}-{k:03}"),
                    currency: code.to_owned(),
                    effective_at: ts(at),
                    rate: Decimal::new(base + (k % cycle) * step, 4),
                    attributes: Default::default(),
                    // The store sets it from the tenant's base when it is written.
                    base: None,
                }));
            }
        }
    }

    /// A region, weighted like a European company's customers.
    fn region(&mut self) -> AttributeValue {
        let region = ["emea", "amer", "apac"][self.rng.weighted(&[55, 30, 15])];
        AttributeValue::Text(region.to_owned())
    }

    /// A customer's attributes (none unless the options ask for them).
    fn customer_attributes(&mut self, segment: usize) -> Attributes {
        if !self.attributes_and_activities {
            return Attributes::new();
        }
        let seats = self.rng.range(1, 20) * [1, 8, 40][segment];
        Attributes::from([
            ("region".to_owned(), self.region()),
            (
                "plan".to_owned(),
                AttributeValue::Text(["starter", "pro", "enterprise"][segment].to_owned()),
            ),
            (
                "seats".to_owned(),
                AttributeValue::Decimal(Decimal::from(seats)),
            ),
        ])
    }

    /// A deal's attributes (none unless the options ask for them).
    fn deal_attributes(&mut self) -> Attributes {
        if !self.attributes_and_activities {
            return Attributes::new();
        }
        let product = ["core", "analytics", "platform"][self.rng.weighted(&[60, 25, 15])];
        let seats = self.rng.range(1, 200);
        Attributes::from([
            ("region".to_owned(), self.region()),
            (
                "product".to_owned(),
                AttributeValue::Text(product.to_owned()),
            ),
            (
                "seats".to_owned(),
                AttributeValue::Decimal(Decimal::from(seats)),
            ),
        ])
    }

    /// One to four activities of a deal between its creation and `last` (none unless the
    /// options ask for them).
    fn deal_activities(
        &mut self,
        deal_id: &str,
        owner: &str,
        customer_id: Option<&String>,
        created: i64,
        last: i64,
    ) {
        if !self.attributes_and_activities {
            return;
        }
        for _ in 0..self.rng.range(1, 4) {
            self.next_activity += 1;
            let activity_type =
                ["call", "email", "meeting", "demo"][self.rng.weighted(&[40, 30, 20, 10])];
            let occurred = self.rng.range(created, last.max(created));
            self.push(Record::Activity(Activity {
                id: format!("act-{:07}", self.next_activity),
                activity_type: activity_type.to_owned(),
                occurred_at: ts(occurred),
                customer_id: customer_id.cloned(),
                lead_id: None,
                deal_id: Some(deal_id.to_owned()),
                owner: Some(owner.to_owned()),
                amount: None,
                attributes: Attributes::new(),
            }));
        }
    }

    /// Campaigns, spend and quotas: the records that do not hang off a lead.
    fn fixed_records(&mut self, records: usize) {
        let n_campaigns = (records / 250).clamp(4, 2000);
        for i in 0..n_campaigns {
            let channel = [
                Channel::Email,
                Channel::Paid,
                Channel::Social,
                Channel::Event,
                Channel::Other,
            ][self.rng.weighted(&[40, 25, 15, 12, 8])];
            let started_at = (self.start
                + (i as i64 * (SPAN_DAYS * DAY)) / n_campaigns as i64
                + self.rng.range(0, DAY - 1))
            .min(self.end - 1);
            let id = format!("camp-{:04}", i + 1);
            let (delivered, opens, clicks, unsubscribes) = if channel == Channel::Email {
                let delivered = self.rng.range(2_000, 50_000) as u64;
                let opens = delivered * self.rng.range(15, 45) as u64 / 100;
                let clicks = opens * self.rng.range(5, 30) as u64 / 100;
                (
                    delivered,
                    opens,
                    clicks,
                    delivered * self.rng.range(0, 2) as u64 / 100,
                )
            } else {
                (0, 0, 0, 0)
            };
            let name = format!(
                "{} {}",
                match channel {
                    Channel::Email => "Newsletter",
                    Channel::Paid => "Search ads",
                    Channel::Social => "Social push",
                    Channel::Event => "Conference",
                    Channel::Other => "Partner webinar",
                },
                i + 1
            );
            self.push(Record::Campaign(Campaign {
                currency: None,
                attributes: Default::default(),
                id: id.clone(),
                name,
                channel,
                started_at: ts(started_at),
                delivered,
                opens,
                clicks,
                unsubscribes,
            }));
            // Advertising spend on the campaign, in one to three payments.
            for k in 0..self.rng.range(1, 3) {
                let at = (started_at + k * 7 * DAY + self.rng.range(0, DAY)).min(self.end - 1);
                let amount = money(self.rng.range(50_000, 1_500_000));
                let own_channel = self.rng.chance(50).then_some(channel);
                self.push(Record::Spend(Spend {
                    currency: None,
                    attributes: Default::default(),
                    id: format!("spend-{id}-{k}"),
                    at: ts(at),
                    amount,
                    category: SpendCategory::Advertising,
                    channel: own_channel,
                    campaign_id: Some(id.clone()),
                }));
            }
            self.campaigns.push(CampaignInfo { id, started_at });
        }
        self.campaigns.sort_by_key(|c| c.started_at);
        // Monthly running costs (30-day months from the span's start).
        let reps = self.reps as i64;
        for month in 0..(SPAN_DAYS / 30) {
            let at = self.start + month * 30 * DAY + self.rng.range(0, 3 * DAY);
            let items = [
                (SpendCategory::Salaries, reps * 600_000, None),
                (
                    SpendCategory::Commissions,
                    reps * self.rng.range(50_000, 150_000),
                    None,
                ),
                (
                    SpendCategory::Overhead,
                    self.rng.range(800_000, 1_200_000),
                    None,
                ),
                (SpendCategory::Tools, self.rng.range(100_000, 300_000), None),
                (SpendCategory::Other, self.rng.range(10_000, 90_000), None),
                (
                    SpendCategory::Advertising,
                    self.rng.range(100_000, 400_000),
                    Some([Channel::Paid, Channel::Social][self.rng.weighted(&[60, 40])]),
                ),
            ];
            for (k, (category, cents, channel)) in items.into_iter().enumerate() {
                self.push(Record::Spend(Spend {
                    currency: None,
                    attributes: Default::default(),
                    id: format!("spend-m{month:02}-{k}"),
                    at: ts(at),
                    amount: money(cents),
                    category,
                    channel,
                    campaign_id: None,
                }));
            }
        }
        // Quarterly quotas (91-day quarters ending at `end`), growing over time.
        for rep in 1..=self.reps {
            for q in 0..8i64 {
                let period_start = self.start + q * 91 * DAY + (SPAN_DAYS - 8 * 91) * DAY;
                self.push(Record::Quota(Quota {
                    currency: None,
                    attributes: Default::default(),
                    id: format!("quota-rep-{rep:03}-q{}", q + 1),
                    owner: format!("rep-{rep:03}"),
                    period_start: ts(period_start),
                    period_end: ts(period_start + 91 * DAY),
                    amount: money(60_000_000 + q * 5_000_000),
                }));
            }
        }
    }

    /// One lead and everything that follows from it.
    fn story(&mut self) {
        self.next_lead += 1;
        let lead_id = format!("lead-{:07}", self.next_lead);
        let created = self.growing_time();
        let source = [
            Source::Marketing,
            Source::Sales,
            Source::Referral,
            Source::Partner,
            Source::Other,
        ][self.rng.weighted(&[45, 20, 15, 12, 8])];
        let campaign = if source == Source::Marketing || self.rng.chance(10) {
            // One of the last few campaigns that started before the lead.
            let started = self.campaigns.partition_point(|c| c.started_at <= created);
            if started == 0 {
                None
            } else {
                let back = self.rng.range(0, (started as i64 - 1).min(8)) as usize;
                Some(started - 1 - back)
            }
        } else {
            None
        };
        let campaign_id = campaign.map(|i| self.campaigns[i].id.clone());
        let converts = self.rng.chance(match source {
            Source::Referral => 50,
            Source::Partner => 40,
            _ => 32,
        });
        let converted = created + self.rng.range(DAY, 60 * DAY);
        let owner = self.rep();
        if converts && converted < self.end {
            self.next_customer += 1;
            let customer_id = format!("cust-{:07}", self.next_customer);
            self.push(Record::Lead(Lead {
                attributes: Default::default(),
                id: lead_id,
                created_at: ts(created),
                source,
                campaign_id: campaign_id.clone(),
                converted_at: Some(ts(converted)),
                customer_id: Some(customer_id.clone()),
            }));
            self.customer_story(customer_id, created, converted, source, campaign_id, owner);
        } else {
            self.push(Record::Lead(Lead {
                attributes: Default::default(),
                id: lead_id,
                created_at: ts(created),
                source,
                campaign_id: campaign_id.clone(),
                converted_at: None,
                customer_id: None,
            }));
            // Half the leads that do not convert get a deal that is lost or still open.
            if self.rng.chance(50) {
                let closes = created + self.rng.range(5 * DAY, 90 * DAY);
                let status = if closes < self.end {
                    DealStatus::Lost
                } else {
                    DealStatus::Open
                };
                let amount = money(self.rng.range(300_000, 3_000_000));
                self.deal(
                    owner,
                    amount,
                    created,
                    closes,
                    status,
                    DealKind::NewBusiness,
                    None,
                    campaign_id,
                );
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn deal(
        &mut self,
        owner: String,
        amount: Decimal,
        created: i64,
        closes: i64,
        status: DealStatus,
        kind: DealKind,
        customer_id: Option<String>,
        campaign_id: Option<String>,
    ) {
        self.next_deal += 1;
        // Stages reached: all four for a won deal, fewer for a lost or open one.
        let reached = match status {
            DealStatus::Won => STAGES.len(),
            _ => self.rng.range(1, STAGES.len() as i64) as usize,
        };
        let last = match status {
            DealStatus::Open => self.end - 1,
            _ => closes,
        };
        let mut times: Vec<i64> = (1..reached)
            .map(|_| self.rng.range(created, last.max(created)))
            .collect();
        times.sort_unstable();
        times.insert(0, created);
        let stage_history = STAGES
            .iter()
            .zip(times)
            .map(|(stage, at)| StageEntry {
                stage: (*stage).to_owned(),
                entered_at: ts(at),
            })
            .collect();
        let id = format!("deal-{:07}", self.next_deal);
        let attributes = self.deal_attributes();
        self.deal_activities(&id, &owner, customer_id.as_ref(), created, last);
        self.push(Record::Deal(Deal {
            currency: None,
            attributes,
            id,
            owner,
            amount,
            created_at: ts(created),
            closed_at: (status != DealStatus::Open).then(|| ts(closes)),
            status,
            kind,
            customer_id,
            campaign_id,
            stage_history,
        }));
    }

    fn customer_story(
        &mut self,
        customer_id: String,
        lead_created: i64,
        acquired: i64,
        source: Source,
        campaign_id: Option<String>,
        owner: String,
    ) {
        let segment_i = self.rng.weighted(&[60, 30, 10]);
        let segment = SEGMENTS[segment_i];
        let size = [1, 4, 15][segment_i];
        // Churn: a monthly hazard of about 2 % for the smallest customers.
        let churned = {
            let months = self.rng.range(1, 48 * size.min(4));
            let at = acquired + months * 30 * DAY + self.rng.range(0, 29 * DAY);
            (at < self.end).then_some(at)
        };
        // Most customers subscribe; some who churn subscribe again months later (a win-back:
        // reactivation MRR in ChartMogul's and Stripe's terms) and are customers again.
        let subscribes = self.rng.chance(80);
        let returns = churned.and_then(|c| {
            let at = c + self.rng.range(30 * DAY, 180 * DAY);
            (subscribes && self.rng.chance(35) && at < self.end).then_some(at)
        });
        let attributes = self.customer_attributes(segment_i);
        self.push(Record::Customer(Customer {
            attributes,
            id: customer_id.clone(),
            acquired_at: ts(acquired),
            churned_at: churned.filter(|_| returns.is_none()).map(ts),
            source,
            campaign_id: campaign_id.clone(),
            segment: Some(segment.to_owned()),
            owner: Some(owner.clone()),
        }));
        // The deal that won them.
        let amount = money(self.rng.range(500_000, 2_000_000) * size);
        self.deal(
            owner.clone(),
            amount,
            lead_created,
            acquired,
            DealStatus::Won,
            DealKind::NewBusiness,
            Some(customer_id.clone()),
            campaign_id,
        );
        let active_until = churned.unwrap_or(self.end);
        if subscribes {
            let mrr = self.rng.range(5_000, 40_000) * size;
            self.subscription(&customer_id, acquired, churned, mrr);
            if let Some(back) = returns {
                let mrr = self.rng.range(5_000, 40_000) * size;
                self.subscription(&customer_id, back, None, mrr);
            }
            // Some add a second product later: cross-sell.
            if self.rng.chance(12) {
                let later = acquired + self.rng.range(30 * DAY, 300 * DAY);
                if later < active_until {
                    let mrr2 = self.rng.range(3_000, 15_000) * size;
                    self.subscription(&customer_id, later, churned, mrr2);
                    let created = later - self.rng.range(5 * DAY, 30 * DAY);
                    self.deal(
                        owner.clone(),
                        money(mrr2 * 12),
                        created.max(acquired),
                        later,
                        DealStatus::Won,
                        DealKind::CrossSell,
                        Some(customer_id.clone()),
                        None,
                    );
                }
            }
        }
        // Upsell attempts.
        if self.rng.chance(20) {
            let created = acquired + self.rng.range(20 * DAY, 200 * DAY);
            let closes = created + self.rng.range(5 * DAY, 45 * DAY);
            if closes < active_until {
                let status = if self.rng.chance(55) {
                    DealStatus::Won
                } else {
                    DealStatus::Lost
                };
                let amount = money(self.rng.range(100_000, 800_000) * size);
                self.deal(
                    owner,
                    amount,
                    created,
                    closes,
                    status,
                    DealKind::Upsell,
                    Some(customer_id.clone()),
                    None,
                );
            }
        }
        // One-off purchases; a few customers buy again and again.
        let purchases = match self.rng.range(0, 9) {
            0..=4 => 0,
            5..=7 => 1,
            8 => 2,
            _ => self.rng.range(3, 6),
        };
        for _ in 0..purchases {
            let at = self.rng.range(acquired, active_until - 1);
            self.next_purchase += 1;
            let amount = money(self.rng.range(5_000, 250_000));
            self.push(Record::Purchase(Purchase {
                currency: None,
                attributes: Default::default(),
                id: format!("purchase-{:07}", self.next_purchase),
                customer_id: customer_id.clone(),
                amount,
                at: ts(at),
            }));
        }
        // Support tickets, each followed by a CSAT survey half the time.
        for _ in 0..self.rng.range(0, 4) {
            let opened = self.rng.range(acquired, active_until - 1);
            let responded = opened + self.rng.range(5 * 60, 30 * 3600);
            let resolved = responded + self.rng.range(10 * 60, 6 * DAY);
            self.next_ticket += 1;
            let agent = self.agent();
            self.push(Record::Ticket(Ticket {
                attributes: Default::default(),
                id: format!("ticket-{:07}", self.next_ticket),
                customer_id: Some(customer_id.clone()),
                agent,
                opened_at: ts(opened),
                first_response_at: (responded < self.end).then(|| ts(responded)),
                resolved_at: (resolved < self.end).then(|| ts(resolved)),
            }));
            if resolved < self.end - DAY && self.rng.chance(50) {
                let at = resolved + self.rng.range(60, DAY);
                let score = [1, 2, 3, 4, 5][self.rng.weighted(&[5, 7, 15, 38, 35])];
                self.survey(&customer_id, SurveyKind::Csat, score, 5, at);
                if self.rng.chance(40) {
                    let ces = [1, 2, 3, 4, 5, 6, 7][self.rng.weighted(&[3, 5, 8, 14, 25, 25, 20])];
                    self.survey(&customer_id, SurveyKind::Ces, ces, 7, at + 60);
                }
            }
        }
        // NPS twice a year for about half the customers.
        if self.rng.chance(50) {
            let mut at = acquired + self.rng.range(30 * DAY, 90 * DAY);
            while at < active_until {
                let score = self.rng.weighted(&[2, 1, 2, 2, 3, 4, 6, 12, 18, 25, 25]);
                self.survey(&customer_id, SurveyKind::Nps, score as i64, 10, at);
                at += 182 * DAY;
            }
        }
    }

    fn subscription(&mut self, customer_id: &str, started: i64, churned: Option<i64>, mrr: i64) {
        self.next_sub += 1;
        let mut changes = vec![MrrChange {
            at: ts(started),
            mrr: money(mrr),
        }];
        let until = churned.unwrap_or(self.end);
        let mut current = mrr;
        let mut at = started + 90 * DAY + self.rng.range(0, 20 * DAY);
        while at < until {
            if self.rng.chance(22) {
                current += current * self.rng.range(10, 50) / 100;
                changes.push(MrrChange {
                    at: ts(at),
                    mrr: money(current),
                });
            } else if self.rng.chance(10) {
                current -= current * self.rng.range(10, 30) / 100;
                changes.push(MrrChange {
                    at: ts(at),
                    mrr: money(current),
                });
            }
            at += 90 * DAY + self.rng.range(0, 20 * DAY);
        }
        // Some exports record the end as a change to 0 as well as ended_at.
        if let Some(c) = churned {
            if self.rng.chance(30) {
                changes.push(MrrChange {
                    at: ts(c),
                    mrr: Decimal::ZERO,
                });
            }
        }
        let due = started + 365 * DAY;
        let (renewal_due_at, renewed) = if due < self.end {
            // Customers still there at the due date mostly renew.
            let renewed = churned.is_none_or(|c| c >= due) && self.rng.chance(92);
            (Some(ts(due)), Some(renewed))
        } else if self.rng.chance(70) {
            (Some(ts(due)), None)
        } else {
            (None, None)
        };
        self.push(Record::Subscription(Subscription {
            currency: None,
            attributes: Default::default(),
            id: format!("sub-{:07}", self.next_sub),
            customer_id: customer_id.to_owned(),
            started_at: ts(started),
            ended_at: churned.map(ts),
            mrr_changes: changes,
            renewal_due_at,
            renewed,
        }));
    }

    fn survey(&mut self, customer_id: &str, kind: SurveyKind, score: i64, scale: u32, at: i64) {
        if at >= self.end {
            return;
        }
        self.next_survey += 1;
        self.push(Record::SurveyResponse(SurveyResponse {
            attributes: Default::default(),
            id: format!("survey-{:07}", self.next_survey),
            customer_id: Some(customer_id.to_owned()),
            kind,
            score: Decimal::from(score),
            scale_max: scale,
            at: ts(at),
        }));
    }
}

impl Iterator for DemoStream {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        loop {
            if let Some(r) = self.buffer.pop_front() {
                self.emitted += 1;
                return Some(r);
            }
            if self.emitted >= self.target {
                return None;
            }
            self.story();
        }
    }
}
