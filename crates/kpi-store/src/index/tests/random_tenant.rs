//! Random tenants for the index tests: records of every kind with times on a grid of 8
//! days (so ties and window edges are everywhere), random attributes, and the writes that
//! change them.

use super::*;

/// Random records with times on a grid of 8 days.
pub(crate) struct RandomTenant {
    pub(crate) rng: Rng,
    pub(crate) grid: Vec<Timestamp>,
}

impl RandomTenant {
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.range(0, items.len() as i64 - 1) as usize]
    }

    pub(super) fn time(&mut self) -> usize {
        self.rng.range(0, self.grid.len() as i64 - 1) as usize
    }

    fn time_from(&mut self, i: usize) -> usize {
        self.rng.range(i as i64, self.grid.len() as i64 - 1) as usize
    }

    fn opt<T>(&mut self, v: T) -> Option<T> {
        self.rng.chance(60).then_some(v)
    }

    /// Random attributes: a region (text), a tier (decimal), a vip flag, each present
    /// or not.
    fn attributes(&mut self) -> Attributes {
        let mut a = Attributes::new();
        if self.rng.chance(60) {
            let region = self.pick(&["EMEA", "AMER"]).to_string();
            a.insert("region".into(), AttributeValue::Text(region));
        }
        if self.rng.chance(50) {
            let tier = *self.pick(&["1", "2.50", "2.5"]);
            a.insert(
                "tier".into(),
                AttributeValue::Decimal(tier.parse().unwrap()),
            );
        }
        if self.rng.chance(40) {
            a.insert("vip".into(), AttributeValue::Flag(self.rng.chance(50)));
        }
        a
    }

    /// Gives the amounts of `records` random currencies (none, EUR, GBP, USD, now and
    /// then CHF) and adds exchange rates: GBP from the grid's start, changing at random
    /// points (two at one point now and then: the greatest id wins), USD only from a
    /// random point on (earlier USD amounts have no rate), CHF never.
    pub(crate) fn add_currencies(&mut self, records: &mut Vec<Record>) {
        for r in records.iter_mut() {
            let code = ["EUR", "GBP", "USD", "CHF"]
                .get(self.rng.weighted(&[15, 30, 15, 3, 37]))
                .map(|c| (*c).to_owned());
            match r {
                Record::Deal(x) => x.currency = code,
                Record::Subscription(x) => x.currency = code,
                Record::Purchase(x) => x.currency = code,
                Record::Spend(x) => x.currency = code,
                Record::Quota(x) => x.currency = code,
                _ => {}
            }
        }
        let rate = |rng: &mut Rng, id: String, currency: &str, at: Timestamp| {
            Record::FxRate(FxRate {
                id,
                currency: currency.into(),
                effective_at: at,
                rate: Decimal::new(rng.range(5_000, 15_000), 4),
                attributes: Default::default(),
                base: Some("EUR".into()),
            })
        };
        records.push(rate(&mut self.rng, "gbp-0".into(), "GBP", self.grid[0]));
        for k in 1..4 {
            let i = self.time();
            let at = self.grid[i];
            records.push(rate(&mut self.rng, format!("gbp-{k}"), "GBP", at));
        }
        let usd_from = self.time();
        for k in 0..2 {
            let i = self.time_from(usd_from);
            let at = self.grid[i];
            records.push(rate(&mut self.rng, format!("usd-{k}"), "USD", at));
        }
    }

    fn money(&mut self) -> Decimal {
        Decimal::new(self.rng.range(0, 50_000), 2)
    }

    fn id_of(&mut self, prefix: &str, n: i64) -> Option<String> {
        if self.rng.chance(15) {
            return None;
        }
        Some(format!("{prefix}{}", self.rng.range(0, n)))
    }

    pub(crate) fn records(&mut self) -> Vec<Record> {
        let mut out = Vec::new();
        let sources = [
            Source::Marketing,
            Source::Sales,
            Source::Referral,
            Source::Partner,
            Source::Other,
        ];
        let channels = [Channel::Email, Channel::Paid, Channel::Social];
        for i in 0..3 {
            let delivered = self.rng.range(0, 100) as u64;
            let started = self.time();
            let started_at = self.grid[started];
            let channel = *self.pick(&channels);
            out.push(Record::Campaign(Campaign {
                currency: None,
                attributes: self.attributes(),
                id: format!("k{i}"),
                name: format!("campaign {i}"),
                channel,
                started_at,
                delivered,
                opens: delivered / 2,
                clicks: delivered / 3,
                unsubscribes: 0,
            }));
        }
        for i in 0..6 {
            let a = self.time();
            let churned = self.rng.chance(50).then(|| self.time_from(a));
            let source = *self.pick(&sources);
            let campaign_id = self.id_of("k", 3);
            let segment = self.pick(&["smb", "ent"]).to_string();
            let segment = self.opt(segment);
            let owner = self.pick(&["o1", "o2"]).to_string();
            let owner = self.opt(owner);
            out.push(Record::Customer(Customer {
                attributes: self.attributes(),
                id: format!("c{i}"),
                acquired_at: self.grid[a],
                churned_at: churned.map(|j| self.grid[j]),
                source,
                campaign_id,
                segment,
                owner,
            }));
        }
        for i in 0..10 {
            let created = self.time();
            let status = *self.pick(&[DealStatus::Open, DealStatus::Won, DealStatus::Lost]);
            let closed = (status != DealStatus::Open).then(|| self.time_from(created));
            let last = closed.unwrap_or(self.grid.len() - 1);
            let mut stages = Vec::new();
            // Stages are entered after creation, but sometimes (an import from another
            // CRM) before it too.
            let mut at = if self.rng.chance(25) {
                self.rng.range(0, created as i64) as usize
            } else {
                created
            };
            for _ in 0..self.rng.range(0, 3) {
                at = self.rng.range(at as i64, last as i64) as usize;
                stages.push(StageEntry {
                    stage: self.pick(&["a", "b", "c"]).to_string(),
                    entered_at: self.grid[at],
                });
            }
            let kind = *self.pick(&[
                DealKind::NewBusiness,
                DealKind::Upsell,
                DealKind::CrossSell,
                DealKind::Renewal,
            ]);
            let owner = self.pick(&["o1", "o2", "o3"]).to_string();
            let customer_id = self.id_of("c", 6);
            let campaign_id = self.id_of("k", 3);
            let amount = self.money();
            out.push(Record::Deal(Deal {
                currency: None,
                attributes: self.attributes(),
                id: format!("d{i}"),
                owner,
                amount,
                created_at: self.grid[created],
                closed_at: closed.map(|j| self.grid[j]),
                status,
                kind,
                customer_id,
                campaign_id,
                stage_history: stages,
            }));
        }
        for i in 0..7 {
            let started = self.time();
            let mut at = self.time_from(started);
            let mut changes = vec![MrrChange {
                at: self.grid[at],
                mrr: Decimal::new(self.rng.range(0, 300), 0),
            }];
            for _ in 0..self.rng.range(0, 3) {
                at = self.time_from(at);
                let mrr = if self.rng.chance(20) {
                    Decimal::ZERO
                } else {
                    Decimal::new(self.rng.range(1, 300), 1)
                };
                changes.push(MrrChange {
                    at: self.grid[at],
                    mrr,
                });
            }
            let ended = self.rng.chance(40).then(|| self.time_from(started));
            let due = self.rng.chance(60).then(|| self.time());
            let renewed = self.rng.chance(50).then(|| self.rng.chance(50));
            out.push(Record::Subscription(Subscription {
                currency: None,
                attributes: self.attributes(),
                id: format!("s{i}"),
                customer_id: format!("c{}", self.rng.range(0, 6)),
                started_at: self.grid[started],
                ended_at: ended.map(|j| self.grid[j]),
                mrr_changes: changes,
                renewal_due_at: due.map(|j| self.grid[j]),
                renewed,
            }));
        }
        for i in 0..8 {
            let at = self.time();
            let amount = self.money();
            out.push(Record::Purchase(Purchase {
                currency: None,
                attributes: self.attributes(),
                id: format!("p{i}"),
                customer_id: format!("c{}", self.rng.range(0, 6)),
                amount,
                at: self.grid[at],
            }));
        }
        let categories = [
            SpendCategory::Advertising,
            SpendCategory::Salaries,
            SpendCategory::Commissions,
            SpendCategory::Overhead,
            SpendCategory::Tools,
            SpendCategory::Other,
        ];
        for i in 0..6 {
            let at = self.time();
            let amount = self.money();
            let category = *self.pick(&categories);
            let channel = self.rng.chance(40).then(|| *self.pick(&channels));
            let campaign_id = self.id_of("k", 3);
            out.push(Record::Spend(Spend {
                currency: None,
                attributes: self.attributes(),
                id: format!("x{i}"),
                at: self.grid[at],
                amount,
                category,
                channel,
                campaign_id,
            }));
        }
        for i in 0..6 {
            let created = self.time();
            let converted = self.rng.chance(50).then(|| self.time_from(created));
            let source = *self.pick(&sources);
            let campaign_id = self.id_of("k", 3);
            out.push(Record::Lead(Lead {
                attributes: self.attributes(),
                id: format!("l{i}"),
                created_at: self.grid[created],
                source,
                campaign_id,
                converted_at: converted.map(|j| self.grid[j]),
                customer_id: None,
            }));
        }
        for i in 0..3 {
            let a = self.rng.range(0, self.grid.len() as i64 - 2) as usize;
            let b = self.rng.range(a as i64 + 1, self.grid.len() as i64 - 1) as usize;
            let owner = self.pick(&["o1", "o2", "o3"]).to_string();
            let amount = self.money();
            out.push(Record::Quota(Quota {
                currency: None,
                attributes: self.attributes(),
                id: format!("q{i}"),
                owner,
                period_start: self.grid[a],
                period_end: self.grid[b],
                amount,
            }));
        }
        for i in 0..6 {
            let opened = self.time();
            let responded = self.rng.chance(70).then(|| self.time_from(opened));
            let resolved = self.rng.chance(60).then(|| self.time_from(opened));
            let agent = self.pick(&["a1", "a2"]).to_string();
            let customer_id = self.id_of("c", 6);
            out.push(Record::Ticket(Ticket {
                attributes: self.attributes(),
                id: format!("t{i}"),
                customer_id,
                agent,
                opened_at: self.grid[opened],
                first_response_at: responded.map(|j| self.grid[j]),
                resolved_at: resolved.map(|j| self.grid[j]),
            }));
        }
        for i in 0..10 {
            let kind = *self.pick(&[SurveyKind::Nps, SurveyKind::Csat, SurveyKind::Ces]);
            let scale = *self.pick(&[5u32, 7, 10]);
            let score = Decimal::new(self.rng.range(0, i64::from(scale) * 2), 1) * Decimal::from(5);
            let score = score.min(Decimal::from(scale));
            let at = self.time();
            out.push(Record::SurveyResponse(SurveyResponse {
                attributes: self.attributes(),
                id: format!("v{i}"),
                customer_id: self.id_of("c", 6),
                kind,
                score,
                scale_max: scale,
                at: self.grid[at],
            }));
        }
        for i in 0..10 {
            let activity_type = self.pick(&["call", "meeting", "demo"]).to_string();
            let owner = self.pick(&["o1", "o2"]).to_string();
            let owner = self.opt(owner);
            let amount = self.money();
            let amount = self.opt(amount);
            let at = self.time();
            out.push(Record::Activity(Activity {
                attributes: self.attributes(),
                id: format!("x{i}"),
                activity_type,
                occurred_at: self.grid[at],
                customer_id: self.id_of("c", 6),
                lead_id: None,
                deal_id: None,
                owner,
                amount,
            }));
        }
        out
    }
}
