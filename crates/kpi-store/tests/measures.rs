//! Every measure over a small dataset whose answers are worked out by hand below.
//!
//! The window is W = [2024-01-01, 2024-04-01): the first quarter of 2024, 91 days
//! (31 + 29 + 31). Records sit exactly on both edges: events at 2024-01-01T00:00Z are in
//! W, events at 2024-04-01T00:00Z are not.

use std::collections::BTreeMap;
use std::str::FromStr;

use jiff::Timestamp;
use kpi_core::{
    Aggregate, CustomMeasure, DataSource, Decimal, Dimension, EventTime, FixedFilter, Measure,
    MeasuredRecords, MetricError, Scope, SpendCategories, SurveyKind, Window,
};
use kpi_store::{
    Activity, Campaign, Channel, Customer, Deal, DealKind, DealStatus, Lead, MrrChange, Purchase,
    Quota, Record, Source, Spend, SpendCategory, StageEntry, Store, Subscription, SurveyResponse,
    Ticket,
};

fn t(s: &str) -> Timestamp {
    if s.len() == 10 {
        format!("{s}T00:00:00Z").parse().unwrap()
    } else {
        s.parse().unwrap()
    }
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn window() -> Window {
    Window::new(t("2024-01-01"), t("2024-04-01")).unwrap()
}

fn customer(
    id: &str,
    acquired: &str,
    churned: Option<&str>,
    source: Source,
    campaign: Option<&str>,
    segment: Option<&str>,
    owner: Option<&str>,
) -> Record {
    Record::Customer(Customer {
        attributes: Default::default(),
        id: id.into(),
        acquired_at: t(acquired),
        churned_at: churned.map(t),
        source,
        campaign_id: campaign.map(Into::into),
        segment: segment.map(Into::into),
        owner: owner.map(Into::into),
    })
}

#[allow(clippy::too_many_arguments)]
fn deal(
    id: &str,
    owner: &str,
    customer: Option<&str>,
    campaign: Option<&str>,
    status: DealStatus,
    kind: DealKind,
    amount: &str,
    created: &str,
    closed: Option<&str>,
    stages: &[(&str, &str)],
) -> Record {
    Record::Deal(Deal {
        currency: None,
        attributes: Default::default(),
        id: id.into(),
        owner: owner.into(),
        amount: d(amount),
        created_at: t(created),
        closed_at: closed.map(t),
        status,
        kind,
        customer_id: customer.map(Into::into),
        campaign_id: campaign.map(Into::into),
        stage_history: stages
            .iter()
            .map(|(stage, at)| StageEntry {
                stage: (*stage).into(),
                entered_at: t(at),
            })
            .collect(),
    })
}

fn campaign(
    id: &str,
    channel: Channel,
    started: &str,
    delivered: u64,
    opens: u64,
    clicks: u64,
) -> Record {
    Record::Campaign(Campaign {
        currency: None,
        attributes: Default::default(),
        id: id.into(),
        name: format!("campaign {id}"),
        channel,
        started_at: t(started),
        delivered,
        opens,
        clicks,
        unsubscribes: 0,
    })
}

fn lead(
    id: &str,
    created: &str,
    source: Source,
    campaign: Option<&str>,
    converted: Option<&str>,
) -> Record {
    Record::Lead(Lead {
        attributes: Default::default(),
        id: id.into(),
        created_at: t(created),
        source,
        campaign_id: campaign.map(Into::into),
        converted_at: converted.map(t),
        customer_id: None,
    })
}

fn quota(id: &str, owner: &str, start: &str, end: &str, amount: &str) -> Record {
    Record::Quota(Quota {
        currency: None,
        attributes: Default::default(),
        id: id.into(),
        owner: owner.into(),
        period_start: t(start),
        period_end: t(end),
        amount: d(amount),
    })
}

fn spend(
    id: &str,
    at: &str,
    amount: &str,
    category: SpendCategory,
    channel: Option<Channel>,
    campaign: Option<&str>,
) -> Record {
    Record::Spend(Spend {
        currency: None,
        attributes: Default::default(),
        id: id.into(),
        at: t(at),
        amount: d(amount),
        category,
        channel,
        campaign_id: campaign.map(Into::into),
    })
}

fn purchase(id: &str, customer: &str, at: &str, amount: &str) -> Record {
    Record::Purchase(Purchase {
        currency: None,
        attributes: Default::default(),
        id: id.into(),
        customer_id: customer.into(),
        amount: d(amount),
        at: t(at),
    })
}

fn subscription(
    id: &str,
    customer: &str,
    started: &str,
    changes: &[(&str, &str)],
    ended: Option<&str>,
    renewal: Option<(&str, Option<bool>)>,
) -> Record {
    Record::Subscription(Subscription {
        currency: None,
        attributes: Default::default(),
        id: id.into(),
        customer_id: customer.into(),
        started_at: t(started),
        ended_at: ended.map(t),
        mrr_changes: changes
            .iter()
            .map(|(at, mrr)| MrrChange {
                at: t(at),
                mrr: d(mrr),
            })
            .collect(),
        renewal_due_at: renewal.map(|(at, _)| t(at)),
        renewed: renewal.and_then(|(_, r)| r),
    })
}

fn ticket(
    id: &str,
    customer: Option<&str>,
    agent: &str,
    opened: &str,
    responded: Option<&str>,
    resolved: Option<&str>,
) -> Record {
    Record::Ticket(Ticket {
        attributes: Default::default(),
        id: id.into(),
        customer_id: customer.map(Into::into),
        agent: agent.into(),
        opened_at: t(opened),
        first_response_at: responded.map(t),
        resolved_at: resolved.map(t),
    })
}

fn survey(
    id: &str,
    customer: Option<&str>,
    kind: SurveyKind,
    score: &str,
    scale: u32,
    at: &str,
) -> Record {
    Record::SurveyResponse(SurveyResponse {
        attributes: Default::default(),
        id: id.into(),
        customer_id: customer.map(Into::into),
        kind,
        score: d(score),
        scale_max: scale,
        at: t(at),
    })
}

fn activity(
    id: &str,
    customer: Option<&str>,
    activity_type: &str,
    owner: Option<&str>,
    at: &str,
    amount: Option<&str>,
) -> Record {
    Record::Activity(Activity {
        attributes: Default::default(),
        id: id.into(),
        activity_type: activity_type.into(),
        occurred_at: t(at),
        customer_id: customer.map(Into::into),
        lead_id: None,
        deal_id: None,
        owner: owner.map(Into::into),
        amount: amount.map(d),
    })
}

/// The dataset. Marketing-sourced customers are c1, c3, c5 and c7.
fn records() -> Vec<Record> {
    use DealKind::*;
    use DealStatus::*;
    use Source::*;
    use SurveyKind::*;
    vec![
        // ---- campaigns: camp-e (email, in W), camp-p (paid, in W), camp-old (email,
        // before W), camp-edge (email, starts exactly at W's end: out).
        campaign("camp-e", Channel::Email, "2024-01-10", 1000, 300, 50),
        campaign("camp-p", Channel::Paid, "2024-02-01", 0, 0, 0),
        campaign("camp-old", Channel::Email, "2023-12-01", 500, 100, 10),
        campaign("camp-edge", Channel::Email, "2024-04-01", 200, 20, 2),
        // ---- customers
        // c1: active throughout.
        customer(
            "c1",
            "2023-06-01",
            None,
            Marketing,
            Some("camp-old"),
            Some("smb"),
            Some("alice"),
        ),
        // c2: active at start, churns in W after 167 days (30+31+30+31+31+14).
        customer(
            "c2",
            "2023-09-01",
            Some("2024-02-15"),
            Sales,
            None,
            Some("enterprise"),
            Some("bob"),
        ),
        // c3: acquired exactly at start: "acquired in W", not "active at start".
        customer(
            "c3",
            "2024-01-01",
            None,
            Marketing,
            Some("camp-e"),
            Some("smb"),
            Some("alice"),
        ),
        // c4: acquired and churned in W, after 39 days (20 in Feb + 19 in Mar).
        customer(
            "c4",
            "2024-02-10",
            Some("2024-03-20"),
            Referral,
            None,
            Some("smb"),
            Some("bob"),
        ),
        // c5: churned long before W, after exactly 365 days.
        customer(
            "c5",
            "2022-01-01",
            Some("2023-01-01"),
            Marketing,
            None,
            Some("enterprise"),
            Some("alice"),
        ),
        // c6: churned exactly at start: still active at start, churned in W; 306 days.
        customer(
            "c6",
            "2023-03-01",
            Some("2024-01-01"),
            Sales,
            None,
            None,
            None,
        ),
        // c7: acquired exactly at end: neither acquired in W nor active at end.
        customer(
            "c7",
            "2024-04-01",
            None,
            Marketing,
            None,
            None,
            Some("alice"),
        ),
        // ---- deals
        // d1: won exactly at start (in W), 30-day cycle; its proposal stage exits at close
        // (10 days); its earlier stages exited in December (out).
        deal(
            "d1",
            "alice",
            Some("c3"),
            Some("camp-e"),
            Won,
            NewBusiness,
            "1000",
            "2023-12-02",
            Some("2024-01-01"),
            &[
                ("qualification", "2023-12-02"),
                ("demo", "2023-12-12"),
                ("proposal", "2023-12-22"),
            ],
        ),
        // d2: won in W, 21-day cycle; exits qualification after 12 days, negotiation
        // after 9.
        deal(
            "d2",
            "bob",
            Some("c4"),
            None,
            Won,
            NewBusiness,
            "2500",
            "2024-01-20",
            Some("2024-02-10"),
            &[
                ("qualification", "2024-01-20"),
                ("negotiation", "2024-02-01"),
            ],
        ),
        // d3: won upsell in W, 29-day cycle (February 2024), paid campaign, no stages.
        deal(
            "d3",
            "alice",
            Some("c1"),
            Some("camp-p"),
            Won,
            Upsell,
            "500",
            "2024-02-01",
            Some("2024-03-01"),
            &[],
        ),
        // d4: lost in W; exits qualification at close after 20 days.
        deal(
            "d4",
            "bob",
            Some("c2"),
            None,
            Lost,
            NewBusiness,
            "800",
            "2024-01-05",
            Some("2024-01-25"),
            &[("qualification", "2024-01-05")],
        ),
        // d5: open, created in W, no customer; its stage has no exit.
        deal(
            "d5",
            "carol",
            None,
            None,
            Open,
            NewBusiness,
            "300",
            "2024-03-15",
            None,
            &[("qualification", "2024-03-15")],
        ),
        // d6: created in W, won exactly at end: not closed in W, so open at end.
        deal(
            "d6",
            "alice",
            Some("c1"),
            None,
            Won,
            CrossSell,
            "700",
            "2024-03-10",
            Some("2024-04-01"),
            &[],
        ),
        // d7: won before W.
        deal(
            "d7",
            "carol",
            Some("c2"),
            None,
            Won,
            Upsell,
            "400",
            "2023-10-01",
            Some("2023-12-15"),
            &[],
        ),
        // d8: won upsell in W for c1 again, 4-day cycle.
        deal(
            "d8",
            "bob",
            Some("c1"),
            None,
            Won,
            Upsell,
            "100",
            "2024-03-01",
            Some("2024-03-05"),
            &[],
        ),
        // d10: open since before W, no customer; it enters demo exactly at W's end, so at
        // the end it is still in qualification (its qualification exit is not in W).
        deal(
            "d10",
            "carol",
            None,
            None,
            Open,
            NewBusiness,
            "50",
            "2023-11-01",
            None,
            &[("qualification", "2023-11-01"), ("demo", "2024-04-01")],
        ),
        // ---- quotas
        // q1: exactly W: 9100 in full.
        quota("q1", "alice", "2024-01-01", "2024-04-01", "9100"),
        // q2: 61 days (Dec 1 – Jan 31), 30 of them in W: 6100 × 30 / 61 = 3000.
        quota("q2", "bob", "2023-12-01", "2024-01-31", "6100"),
        // q3: 60 days (Mar 2 – May 1), 30 in W: 1200 × 30 / 60 = 600.
        quota("q3", "carol", "2024-03-02", "2024-05-01", "1200"),
        // q4: starts at W's end: nothing.
        quota("q4", "alice", "2024-04-01", "2024-07-01", "5000"),
        // ---- leads
        // l1: created at start, converted at start (< end): created and converted.
        lead(
            "l1",
            "2024-01-01",
            Marketing,
            Some("camp-e"),
            Some("2024-01-01"),
        ),
        // l2: converted exactly at end: created, not converted.
        lead("l2", "2024-02-01", Sales, None, Some("2024-04-01")),
        // l3: created in W, not converted.
        lead("l3", "2024-03-31", Marketing, Some("camp-p"), None),
        // l4: created before W: neither.
        lead("l4", "2023-12-20", Referral, None, Some("2024-02-10")),
        // ---- spend
        spend(
            "s1",
            "2024-01-15",
            "1000",
            SpendCategory::Advertising,
            Some(Channel::Paid),
            Some("camp-p"),
        ),
        spend(
            "s2",
            "2024-02-01",
            "5000",
            SpendCategory::Salaries,
            None,
            None,
        ),
        spend(
            "s3",
            "2024-03-31T23:59:59Z",
            "300",
            SpendCategory::Tools,
            None,
            None,
        ),
        spend(
            "s4",
            "2024-04-01",
            "999",
            SpendCategory::Advertising,
            Some(Channel::Paid),
            None,
        ),
        // s5: at start; no channel of its own, so camp-e's (email).
        spend(
            "s5",
            "2024-01-01",
            "200",
            SpendCategory::Advertising,
            None,
            Some("camp-e"),
        ),
        spend("s6", "2023-12-31", "50", SpendCategory::Other, None, None),
        // ---- purchases
        purchase("p1", "c3", "2024-01-05", "100"),
        purchase("p2", "c3", "2024-02-05", "150"),
        purchase("p3", "c1", "2024-03-01", "80"),
        purchase("p4", "c4", "2024-04-01", "999"),
        purchase("p5", "c1", "2023-12-31", "60"),
        purchase("p6", "c4", "2024-02-20", "40"),
        // ---- subscriptions
        // sub1 (c1): 100 at start, +50 on Feb 1 → 150 at end; renewal due at start, renewed.
        subscription(
            "sub1",
            "c1",
            "2023-06-01",
            &[("2023-06-01", "100"), ("2024-02-01", "150")],
            None,
            Some(("2024-01-01", Some(true))),
        ),
        // sub2 (c2): 200 at start, −80 on Jan 10, ends Feb 15 losing 120; renewal due
        // Mar 1, not renewed.
        subscription(
            "sub2",
            "c2",
            "2023-09-01",
            &[("2023-09-01", "200"), ("2024-01-10", "120")],
            Some("2024-02-15"),
            Some(("2024-03-01", Some(false))),
        ),
        // sub3 (c3): starts exactly at start (not active at start): new MRR 50.
        subscription(
            "sub3",
            "c3",
            "2024-01-01",
            &[("2024-01-01", "50")],
            None,
            None,
        ),
        // sub4 (c1): c1 already has sub1 active: expansion 30.
        subscription(
            "sub4",
            "c1",
            "2024-03-01",
            &[("2024-03-01", "30")],
            None,
            Some(("2024-06-01", None)),
        ),
        // sub5 (c4): new MRR 60, ends by a change to 0 on Mar 20: churned 60.
        subscription(
            "sub5",
            "c4",
            "2024-02-10",
            &[("2024-02-10", "60"), ("2024-03-20", "0")],
            None,
            None,
        ),
        // sub6 (c6): ends exactly at start: active at start (70), churned 70 in W.
        subscription(
            "sub6",
            "c6",
            "2023-03-01",
            &[("2023-03-01", "70")],
            Some("2024-01-01"),
            None,
        ),
        // sub7 (c5): over before W.
        subscription(
            "sub7",
            "c5",
            "2022-01-01",
            &[("2022-01-01", "40")],
            Some("2023-01-01"),
            None,
        ),
        // sub8 (c6): c6's sub6 ended at start; c6 returns on Mar 10 with no subscription
        // active but having paid before (sub6, 70 from 2023-03-01): reactivation 90.
        subscription(
            "sub8",
            "c6",
            "2024-03-10",
            &[("2024-03-10", "90")],
            None,
            None,
        ),
        // sub9 (c7): a free subscription (MRR 0) Jan 15 to Jan 31: new MRR 0, churned 0.
        subscription(
            "sub9",
            "c7",
            "2024-01-15",
            &[("2024-01-15", "0")],
            Some("2024-01-31"),
            None,
        ),
        // sub10 (c7): c7 never paid (sub9 was free): new MRR 25, not reactivation.
        subscription(
            "sub10",
            "c7",
            "2024-03-15",
            &[("2024-03-15", "25")],
            None,
            None,
        ),
        // ---- tickets
        // t1: answered after 2 h, resolved after 24 h, both in W.
        ticket(
            "t1",
            Some("c1"),
            "ann",
            "2024-01-02T00:00:00Z",
            Some("2024-01-02T02:00:00Z"),
            Some("2024-01-03T00:00:00Z"),
        ),
        // t2: opened before W; answered exactly at start after 4 h; resolved after 16 h.
        ticket(
            "t2",
            Some("c3"),
            "ben",
            "2023-12-31T20:00:00Z",
            Some("2024-01-01T00:00:00Z"),
            Some("2024-01-01T12:00:00Z"),
        ),
        // t3: answered after 1.5 h in W; resolved exactly at end (out).
        ticket(
            "t3",
            None,
            "ann",
            "2024-03-31T22:00:00Z",
            Some("2024-03-31T23:30:00Z"),
            Some("2024-04-01T00:00:00Z"),
        ),
        // t4: never answered.
        ticket("t4", Some("c2"), "ben", "2024-02-01", None, None),
        // ---- surveys
        survey("v1", Some("c1"), Nps, "10", 10, "2024-01-15"),
        survey("v2", Some("c3"), Nps, "9", 10, "2024-02-01"),
        survey("v3", Some("c2"), Nps, "7", 10, "2024-02-02"),
        survey("v4", Some("c4"), Nps, "3", 10, "2024-03-01"),
        survey("v5", None, Nps, "0", 10, "2024-03-05"),
        survey("v6", Some("c1"), Nps, "10", 10, "2024-04-01"),
        survey("v7", Some("c1"), Nps, "5", 5, "2024-01-20"),
        survey("v8", Some("c3"), Csat, "4", 5, "2024-01-10"),
        survey("v9", Some("c1"), Csat, "2.5", 5, "2024-02-10"),
        survey("v10", Some("c4"), Csat, "8", 10, "2024-03-10"),
        survey("v11", Some("c1"), Ces, "6", 7, "2024-01-11"),
        survey("v12", Some("c2"), Ces, "3", 7, "2024-03-11"),
        // ---- activities: a1 at start (in), a4 at end and a5 before start (out).
        activity(
            "a1",
            Some("c1"),
            "meeting",
            Some("alice"),
            "2024-01-01",
            Some("100"),
        ),
        activity("a2", Some("c2"), "call", Some("bob"), "2024-02-15", None),
        activity(
            "a3",
            None,
            "demo",
            Some("alice"),
            "2024-03-31T23:59:59Z",
            Some("50.5"),
        ),
        activity("a4", Some("c3"), "call", None, "2024-04-01", Some("999")),
        activity(
            "a5",
            Some("c5"),
            "email",
            Some("bob"),
            "2023-12-31T23:59:59Z",
            Some("7"),
        ),
    ]
}

fn store() -> Store {
    let store = Store::temporary().unwrap();
    let outcome = store.put("default", records()).unwrap();
    assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
    store
}

fn nps(scale: u32, min: u32, max: u32) -> Measure {
    Measure::SurveyResponses {
        kind: SurveyKind::Nps,
        scale,
        min,
        max,
    }
}

fn csat(scale: u32, min: u32, max: u32) -> Measure {
    Measure::SurveyResponses {
        kind: SurveyKind::Csat,
        scale,
        min,
        max,
    }
}

/// (measure, expected without filter, expected with source = marketing).
fn expectations() -> Vec<(Measure, Decimal, Decimal)> {
    use Measure::*;
    let ad = SpendCategories::from_names(&["advertising"]);
    let salaries_tools = SpendCategories::from_names(&["salaries", "tools"]);
    // Mean tenure of customers churned before end: c2 167, c4 39, c5 365, c6 306 days =
    // 877 days over 4 customers = 877 / 1460 years. With source = marketing only c5: 1.
    let tenure = d("877") / d("1460");
    vec![
        // Won in W: d1 (at start), d2, d3, d8; d6 closes at end. Marketing customers'
        // deals: d1 (c3), d3, d8 (c1).
        (DealsWon, d("4"), d("3")),
        (DealsLost, d("1"), d("0")),
        (WonAmount, d("4100"), d("1600")),
        // 30 + 21 + 29 + 4; marketing 30 + 29 + 4.
        (WonCycleDaysTotal, d("84"), d("63")),
        // alice (d1, d3), bob (d2, d4, d8); marketing: alice (d1, d3), bob (d8).
        (ClosingReps, d("2"), d("2")),
        // Created before end and open at end: d10 (open since 2023), d5 (open) and d6
        // (closes exactly at end); d5 and d10 have no customer, so no source.
        (DealsOpen, d("3"), d("1")),
        (OpenAmount, d("1050"), d("700")),
        // d1 proposal (exit at start), d2 qualification and negotiation, d4
        // qualification; marketing: d1 proposal.
        (StageExits, d("4"), d("1")),
        (StageDaysTotal, d("51"), d("10")),
        // d3 and d8, both c1.
        (UpsoldCustomers, d("1"), d("1")),
        // d1 (camp-e) + d3 (camp-p).
        (CampaignAttributedRevenue, d("1500"), d("1500")),
        (EmailAttributedRevenue, d("1000"), d("1000")),
        // 9100 + 3000 + 600; quotas carry no source.
        (QuotaProrated, d("12700"), d("12700")),
        // l1, l2, l3; marketing l1, l3. Converted before end: l1.
        (LeadsCreated, d("3"), d("2")),
        (LeadsConverted, d("1"), d("1")),
        // c3 (at start), c4; marketing c3.
        (CustomersAcquired, d("2"), d("1")),
        (CustomersAcquiredFromMarketing, d("1"), d("1")),
        // c1, c2, c6; marketing c1.
        (CustomersAtStart, d("3"), d("1")),
        // c1, c3; = 3 − 2 churned + 2 acquired − 1 (c4, acquired and churned in W).
        (CustomersAtEnd, d("2"), d("2")),
        // c2, c6.
        (CustomersChurnedFromStart, d("2"), d("0")),
        // c3.
        (CustomersNewRetained, d("1"), d("1")),
        // c1, c2, c3, c4, c6; marketing c1, c3.
        (CustomersActiveInWindow, d("5"), d("2")),
        (MeanChurnedTenureYears, tenure, d("1")),
        // c2, c4, c5, c6; marketing c5.
        (CustomersChurnedBeforeEnd, d("4"), d("1")),
        // New customers c3, c4: d1 1000 + d2 2500 + p1 100 + p2 150 + p6 40; marketing:
        // c3 only.
        (NewCustomerRevenue, d("3790"), d("1250")),
        (NewCustomerRevenueFromMarketing, d("1250"), d("1250")),
        // c3's sub3 50, c4's sub5 60 → 55; marketing c3 → 50.
        (NewCustomerMeanFirstMrr, d("55"), d("50")),
        // s1 + s2 + s3 + s5 (s4 at end, s6 before); spend carries no source.
        (Spend(SpendCategories::ALL), d("6500"), d("6500")),
        (Spend(ad), d("1200"), d("1200")),
        (Spend(salaries_tools), d("5300"), d("5300")),
        (CampaignSpend, d("1200"), d("1200")),
        // camp-e only; campaigns carry no source.
        (EmailCampaigns, d("1"), d("1")),
        (EmailDelivered, d("1000"), d("1000")),
        (EmailOpens, d("300"), d("300")),
        (EmailClicks, d("50"), d("50")),
        // p1, p2, p3, p6; marketing p1, p2, p3.
        (PurchaseRevenue, d("370"), d("330")),
        (Purchases, d("4"), d("3")),
        (Buyers, d("3"), d("2")),
        (RepeatBuyers, d("1"), d("1")),
        // sub1 (renewed), sub2; marketing sub1.
        (RenewalsDue, d("2"), d("1")),
        (Renewed, d("1"), d("1")),
        // sub1 150 + sub3 50 + sub4 30 + sub8 90 + sub10 25; marketing all but sub8 (c6 is
        // sales).
        (MrrAtEnd, d("345"), d("255")),
        // sub1 100 + sub2 200 + sub6 70; marketing sub1.
        (MrrAtStart, d("370"), d("100")),
        // c1, c3, c6, c7; marketing c1, c3, c7.
        (PayingCustomersAtEnd, d("4"), d("3")),
        // sub3 50 + sub5 60 + sub9 0 + sub10 25; marketing sub3, sub9, sub10.
        (NewMrr, d("135"), d("75")),
        // sub1 +50, sub4 30.
        (ExpansionMrr, d("80"), d("80")),
        // sub2 −80.
        (ContractionMrr, d("80"), d("0")),
        // sub8 (c6 returns; sales).
        (ReactivationMrr, d("90"), d("0")),
        // sub2 120 + sub5 60 + sub6 70 + sub9 0. Check: 370 + 135 + 80 + 90 − 80 − 250
        // = 345; marketing 100 + 75 + 80 + 0 − 0 − 0 = 255.
        (ChurnedMrr, d("250"), d("0")),
        // t1 24 h, t2 16 h; t3 resolves at end. Marketing: t1 (c1), t2 (c3).
        (TicketsResolved, d("2"), d("2")),
        (ResolutionHoursTotal, d("40"), d("40")),
        // t1 2 h, t2 4 h (at start), t3 1.5 h (no customer, so no source).
        (TicketsResponded, d("3"), d("2")),
        (FirstResponseHoursTotal, d("7.5"), d("6")),
        // NPS on scale 10 in W: v1 10, v2 9, v3 7, v4 3, v5 0 (v6 at end); v7 5 on
        // scale 5. Marketing: v1, v2, v7.
        (nps(10, 9, 10), d("2"), d("2")),
        (nps(10, 0, 6), d("2"), d("0")),
        (nps(0, 0, u32::MAX), d("6"), d("3")),
        (nps(5, 4, 5), d("1"), d("1")),
        // CSAT: v8 4/5, v9 2.5/5, v10 8/10; marketing v8, v9.
        (csat(5, 4, u32::MAX), d("1"), d("1")),
        (csat(5, 0, u32::MAX), d("2"), d("2")),
        (csat(5, 2, 3), d("1"), d("1")),
        (SurveyScoreTotal(SurveyKind::Nps), d("34"), d("24")),
        (SurveyScoreTotal(SurveyKind::Csat), d("14.5"), d("6.5")),
        (SurveyScoreTotal(SurveyKind::Ces), d("9"), d("6")),
        // In W: a1 (c1, marketing), a2 (c2), a3 (no customer, so no source).
        (Activities, d("3"), d("1")),
        // a1 100 + a3 50.5 (a2 has no amount); marketing a1.
        (ActivityAmount, d("150.5"), d("100")),
        // Declared measures, as a KPI crate would: meetings in W are a1 alone (c1,
        // marketing); won deals counted and summed as the built-ins above; the distinct
        // customers of the activities in W are c1 and c2 (a3 has none), marketing c1.
        (Custom(&MEETINGS), d("1"), d("1")),
        (Custom(&WON_BY_CLOSE), d("4"), d("3")),
        (Custom(&WON_AMOUNT_BY_CLOSE), d("4100"), d("1600")),
        (Custom(&ACTIVITY_CUSTOMERS), d("2"), d("1")),
    ]
}

static MEETINGS: CustomMeasure = CustomMeasure {
    name: "test.meetings",
    description: "meetings by occurrence",
    records: MeasuredRecords::Activities,
    time: EventTime::Occurred,
    aggregate: Aggregate::Count,
    filters: &[FixedFilter::Type("meeting")],
};

static ACTIVITY_CUSTOMERS: CustomMeasure = CustomMeasure {
    name: "test.activity_customers",
    aggregate: Aggregate::DistinctCustomers,
    filters: &[],
    ..MEETINGS
};

static WON_BY_CLOSE: CustomMeasure = CustomMeasure {
    name: "test.won_by_close",
    description: "won deals by close",
    records: MeasuredRecords::Deals,
    time: EventTime::Closed,
    aggregate: Aggregate::Count,
    filters: &[FixedFilter::Status("won")],
};

static WON_AMOUNT_BY_CLOSE: CustomMeasure = CustomMeasure {
    name: "test.won_amount_by_close",
    aggregate: Aggregate::SumAmount,
    ..WON_BY_CLOSE
};

/// Every variant of [`Measure`] appears in [`expectations`]: adding a variant without
/// working out its answer here fails to compile.
fn covered(m: Measure) -> bool {
    use Measure::*;
    match m {
        DealsWon
        | DealsLost
        | WonAmount
        | WonCycleDaysTotal
        | ClosingReps
        | DealsOpen
        | OpenAmount
        | StageExits
        | StageDaysTotal
        | UpsoldCustomers
        | CampaignAttributedRevenue
        | EmailAttributedRevenue
        | QuotaProrated
        | LeadsCreated
        | LeadsConverted
        | CustomersAcquired
        | CustomersAcquiredFromMarketing
        | CustomersAtStart
        | CustomersAtEnd
        | CustomersChurnedFromStart
        | CustomersNewRetained
        | CustomersActiveInWindow
        | MeanChurnedTenureYears
        | CustomersChurnedBeforeEnd
        | NewCustomerRevenue
        | NewCustomerRevenueFromMarketing
        | NewCustomerMeanFirstMrr
        | Spend(_)
        | CampaignSpend
        | EmailCampaigns
        | EmailDelivered
        | EmailOpens
        | EmailClicks
        | PurchaseRevenue
        | Purchases
        | Buyers
        | RepeatBuyers
        | RenewalsDue
        | Renewed
        | MrrAtEnd
        | MrrAtStart
        | PayingCustomersAtEnd
        | NewMrr
        | ExpansionMrr
        | ReactivationMrr
        | ContractionMrr
        | ChurnedMrr
        | TicketsResolved
        | ResolutionHoursTotal
        | TicketsResponded
        | FirstResponseHoursTotal
        | SurveyResponses { .. }
        | SurveyScoreTotal(_)
        | Activities
        | ActivityAmount
        | Custom(_) => true,
    }
}

#[test]
fn every_measure_over_the_hand_built_window() {
    let store = store();
    let source = store.source("default");
    let expectations = expectations();
    assert_eq!(
        expectations.iter().filter(|(m, _, _)| covered(*m)).count(),
        expectations.len()
    );
    let plain = Scope::new(window());
    let mut marketing = Scope::new(window());
    marketing
        .filters
        .insert(Dimension::Source, "marketing".into());
    let mut failures = Vec::new();
    for (m, all, filtered) in expectations {
        let got = source.measure(m, &plain).unwrap();
        if got != all {
            failures.push(format!("{m:?}: expected {all}, got {got}"));
        }
        // A measure of records without a source refuses the filter (`filtered` is then
        // its unfiltered answer, unused).
        let Ok(got) = source.measure(m, &marketing) else {
            if kpi_store::filtering_dimensions(m).contains(&Dimension::Source) {
                failures.push(format!("{m:?} refused source = marketing"));
            }
            continue;
        };
        if got != filtered {
            failures.push(format!(
                "{m:?} (source = marketing): expected {filtered}, got {got}"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn stage_filters_apply_to_stage_exits_and_open_deals() {
    let store = store();
    let source = store.source("default");
    let in_stage = |window: Window, stage: &str| {
        let mut scope = Scope::new(window);
        scope.filters.insert(Dimension::Stage, stage.into());
        scope
    };
    let scope = in_stage(window(), "qualification");
    // d2 and d4 leave qualification in W, after 12 and 20 days.
    assert_eq!(source.measure(Measure::StageExits, &scope).unwrap(), d("2"));
    assert_eq!(
        source.measure(Measure::StageDaysTotal, &scope).unwrap(),
        d("32")
    );
    // Open deals are read through their current stage at the end, the last one entered
    // before it: d5 (qualification since 03-15) and d10 (it enters demo exactly at the
    // end, so it is still in qualification); d6 has no stage and matches no stage.
    assert_eq!(source.measure(Measure::DealsOpen, &scope).unwrap(), d("2"));
    assert_eq!(
        source.measure(Measure::OpenAmount, &scope).unwrap(),
        d("350")
    );
    let demo = in_stage(window(), "demo");
    assert_eq!(source.measure(Measure::DealsOpen, &demo).unwrap(), d("0"));
    // A minute later d10 is in demo, and d6 (closed at 04-01) is no longer open.
    let later = Window::new(t("2024-01-01"), t("2024-04-01T00:01:00Z")).unwrap();
    assert_eq!(
        source
            .measure(Measure::DealsOpen, &in_stage(later, "demo"))
            .unwrap(),
        d("1")
    );
    assert_eq!(
        source
            .measure(Measure::OpenAmount, &in_stage(later, "demo"))
            .unwrap(),
        d("50")
    );
    // At 03-01: open are d10 (qualification) and d3 (created 02-01, closes exactly at
    // 03-01, no stages); d2 closed 02-10, d5 and d6 are not created yet, d8 is created
    // exactly at 03-01.
    let february = Window::new(t("2024-02-01"), t("2024-03-01")).unwrap();
    let all = Scope::new(february);
    assert_eq!(source.measure(Measure::DealsOpen, &all).unwrap(), d("2"));
    assert_eq!(source.measure(Measure::OpenAmount, &all).unwrap(), d("550"));
    let qualification = in_stage(february, "qualification");
    assert_eq!(
        source.measure(Measure::DealsOpen, &qualification).unwrap(),
        d("1")
    );
    // With another filter too: carol's open deals in qualification (d10; d5 is created
    // later).
    let mut carol = qualification.clone();
    carol.filters.insert(Dimension::Owner, "carol".into());
    assert_eq!(
        source.measure(Measure::OpenAmount, &carol).unwrap(),
        d("50")
    );
    // Deals themselves carry no stage: the filter is refused for won deals.
    assert!(matches!(
        source.measure(Measure::DealsWon, &scope),
        Err(MetricError::UnsupportedDimension { .. })
    ));
}

#[test]
fn two_filters_and_unknown_values() {
    let store = store();
    let source = store.source("default");
    let mut scope = Scope::new(window());
    scope.filters.insert(Dimension::Owner, "bob".into());
    scope.filters.insert(Dimension::Segment, "smb".into());
    // bob's deals won in W for smb customers: d2 (c4), d8 (c1).
    assert_eq!(source.measure(Measure::DealsWon, &scope).unwrap(), d("2"));
    assert_eq!(
        source.measure(Measure::WonAmount, &scope).unwrap(),
        d("2600")
    );
    // bob's smb customers: c4, acquired in W.
    assert_eq!(
        source.measure(Measure::CustomersAcquired, &scope).unwrap(),
        d("1")
    );
    // Quotas carry no segment: a filter on it is refused, never ignored.
    assert!(matches!(
        source.measure(Measure::QuotaProrated, &scope),
        Err(MetricError::UnsupportedDimension { .. })
    ));
    // A value no record has matches nothing on the kinds that carry the dimension.
    let mut nobody = Scope::new(window());
    nobody.filters.insert(Dimension::Owner, "zed".into());
    assert_eq!(source.measure(Measure::DealsWon, &nobody).unwrap(), d("0"));
    assert_eq!(
        source.measure(Measure::MrrAtStart, &nobody).unwrap(),
        d("0")
    );
    // ... and is refused by the kinds that do not carry it.
    assert!(source.measure(Measure::CampaignSpend, &nobody).is_err());
}

#[test]
fn group_values_per_dimension() {
    let store = store();
    let source = store.source("default");
    let all = Scope::new(window());
    let values = |dim: Dimension, filters: &[(Dimension, &str)]| {
        let mut scope = all.clone();
        for (d, v) in filters {
            scope.filters.insert(*d, (*v).to_owned());
        }
        source.group_values(dim, &scope, &[]).unwrap()
    };
    // Deal and quota owners, customer owners, and (via customers) purchase and
    // subscription owners.
    assert_eq!(values(Dimension::Owner, &[]), ["alice", "bob", "carol"]);
    assert_eq!(values(Dimension::Agent, &[]), ["ann", "ben"]);
    // Every stage some deal was in (d10's demo has no exit, but d1's does).
    assert_eq!(
        values(Dimension::Stage, &[]),
        ["demo", "negotiation", "proposal", "qualification"]
    );
    assert_eq!(values(Dimension::Channel, &[]), ["email", "paid"]);
    // Campaign ids among records on the email channel: d1, l1, c3, s5 (camp-e), c1
    // (camp-old), and the email campaigns themselves (camp-edge too: the window is
    // ignored).
    assert_eq!(
        values(Dimension::Campaign, &[(Dimension::Channel, "email")]),
        ["camp-e", "camp-edge", "camp-old"]
    );
    // Referral records: c4 (smb) and what hangs off it.
    assert_eq!(
        values(Dimension::Segment, &[(Dimension::Source, "referral")]),
        ["smb"]
    );
    // Tickets of sales-sourced customers: t4 (c2, ben).
    assert_eq!(
        values(Dimension::Agent, &[(Dimension::Source, "sales")]),
        ["ben"]
    );
    assert!(values(Dimension::Owner, &[(Dimension::Owner, "zed")]).is_empty());
}

fn scope(filters: BTreeMap<Dimension, String>) -> Scope {
    Scope {
        window: window(),
        filters,
    }
}

#[test]
fn upsert_and_delete_change_measures_exactly() {
    let store = store();
    let won = |store: &Store| {
        let s = store.source("default");
        let sc = scope(BTreeMap::new());
        (
            s.measure(Measure::DealsWon, &sc).unwrap(),
            s.measure(Measure::DealsLost, &sc).unwrap(),
            s.measure(Measure::WonAmount, &sc).unwrap(),
            s.measure(Measure::ClosingReps, &sc).unwrap(),
        )
    };
    assert_eq!(won(&store), (d("4"), d("1"), d("4100"), d("2")));
    // A new won deal for dave.
    let mut extra = deal(
        "d9",
        "dave",
        None,
        None,
        DealStatus::Won,
        DealKind::NewBusiness,
        "0.25",
        "2024-02-01",
        Some("2024-02-02"),
        &[],
    );
    store.put("default", vec![extra.clone()]).unwrap();
    assert_eq!(won(&store), (d("5"), d("1"), d("4100.25"), d("3")));
    // The same id again, now lost: the won version's contribution is gone.
    if let Record::Deal(x) = &mut extra {
        x.status = DealStatus::Lost;
    }
    store.put("default", vec![extra]).unwrap();
    assert_eq!(won(&store), (d("4"), d("2"), d("4100"), d("3")));
    // Upsert d2 with a new amount: 2500 → 2600.
    let mut d2 = records().into_iter().find(|r| r.id() == "d2").unwrap();
    if let Record::Deal(x) = &mut d2 {
        x.amount = d("2600");
    }
    store.put("default", vec![d2]).unwrap();
    assert_eq!(won(&store), (d("4"), d("2"), d("4200"), d("3")));
    // Delete d9 and d2 (and one that does not exist).
    let removed = store
        .delete(
            "default",
            &[
                kpi_store::RecordKey {
                    kind: kpi_store::RecordKind::Deal,
                    id: "d9".into(),
                },
                kpi_store::RecordKey {
                    kind: kpi_store::RecordKind::Deal,
                    id: "d2".into(),
                },
                kpi_store::RecordKey {
                    kind: kpi_store::RecordKind::Deal,
                    id: "nope".into(),
                },
            ],
        )
        .unwrap();
    assert_eq!(removed, 2);
    assert_eq!(won(&store), (d("3"), d("1"), d("1600"), d("2")));
    // Deleting a customer changes what its deals inherit: d1 loses its source.
    store
        .delete(
            "default",
            &[kpi_store::RecordKey {
                kind: kpi_store::RecordKind::Customer,
                id: "c3".into(),
            }],
        )
        .unwrap();
    let mut marketing = BTreeMap::new();
    marketing.insert(Dimension::Source, "marketing".to_owned());
    let s = store.source("default");
    // Marketing deals won in W: d3, d8 (d1's customer is gone).
    assert_eq!(
        s.measure(Measure::DealsWon, &scope(marketing)).unwrap(),
        d("2")
    );
}

#[test]
fn group_values_come_from_the_records_the_measures_read() {
    let store = store();
    store
        .put(
            "groups",
            vec![
                deal(
                    "d1",
                    "olga",
                    None,
                    None,
                    DealStatus::Won,
                    DealKind::NewBusiness,
                    "5",
                    "2024-01-02",
                    Some("2024-01-03"),
                    &[],
                ),
                quota("q1", "quinn", "2024-01-01", "2024-04-01", "100"),
            ],
        )
        .unwrap();
    let source = store.source("groups");
    let sc = Scope::new(window());
    let owners = |measures: &[Measure]| source.group_values(Dimension::Owner, &sc, measures);
    assert_eq!(owners(&[Measure::DealsWon]).unwrap(), ["olga"]);
    assert_eq!(owners(&[Measure::QuotaProrated]).unwrap(), ["quinn"]);
    assert_eq!(
        owners(&[Measure::DealsWon, Measure::QuotaProrated]).unwrap(),
        ["olga", "quinn"]
    );
    // Deals carry no agent: refused, not an empty list.
    assert!(matches!(
        source.group_values(Dimension::Agent, &sc, &[Measure::DealsWon]),
        Err(MetricError::UnsupportedDimension { .. })
    ));
}

#[test]
fn tenants_never_mix() {
    let store = store();
    let other = store.source("other");
    let sc = Scope::new(window());
    assert_eq!(other.measure(Measure::DealsWon, &sc).unwrap(), d("0"));
    assert!(other
        .group_values(Dimension::Owner, &sc, &[])
        .unwrap()
        .is_empty());
    store
        .put(
            "other",
            vec![deal(
                "d1",
                "zoe",
                None,
                None,
                DealStatus::Won,
                DealKind::NewBusiness,
                "5",
                "2024-01-02",
                Some("2024-01-03"),
                &[],
            )],
        )
        .unwrap();
    let other = store.source("other");
    assert_eq!(other.measure(Measure::WonAmount, &sc).unwrap(), d("5"));
    assert_eq!(
        other.group_values(Dimension::Owner, &sc, &[]).unwrap(),
        ["zoe"]
    );
    // The default tenant's d1 is untouched.
    let default = store.source("default");
    assert_eq!(default.measure(Measure::WonAmount, &sc).unwrap(), d("4100"));
}

#[test]
fn a_source_reads_one_snapshot() {
    let store = store();
    let sc = Scope::new(window());
    let before = store.source("default");
    assert_eq!(before.measure(Measure::DealsWon, &sc).unwrap(), d("4"));
    store
        .delete(
            "default",
            &[kpi_store::RecordKey {
                kind: kpi_store::RecordKind::Deal,
                id: "d1".into(),
            }],
        )
        .unwrap();
    // The source taken before the delete keeps answering from its snapshot.
    assert_eq!(before.measure(Measure::WonAmount, &sc).unwrap(), d("4100"));
    assert_eq!(
        store
            .source("default")
            .measure(Measure::WonAmount, &sc)
            .unwrap(),
        d("3100")
    );
}
