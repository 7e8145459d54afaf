//! Every catalogue metric computed end to end from stored records: a hand-built CRM dataset
//! goes through `PutRecords` into the real kpid binary, and every answer (value AND the
//! inputs it was computed from) is worked out by hand in the comments below — never by
//! calling the code under test.
//!
//! The main window is W = [2024-01-01, 2024-04-01) UTC: the first quarter of 2024, 91 days
//! (31 + 29 + 31), months(W) = 3, years(W) = 0.25. Many records sit exactly on its edges:
//! events at 2024-01-01T00:00Z are in W, events at 2024-04-01T00:00Z are not.
//!
//! # The dataset
//!
//! Customers (source, campaign, segment, owner):
//! - c1 acquired 2023-01-01, never churns; marketing, -, smb, olga.
//! - c2 acquired 2023-03-26, churns 2024-02-15 (tenure 326 days); sales, -, enterprise, pete.
//! - c3 acquired 2024-01-01T00:00Z, exactly at W's start: acquired in W, not active at
//!   start; marketing, camp-mail, smb, olga.
//! - c4 acquired 2024-02-10, churns 2024-03-20 (39 days); referral, -, smb, pete.
//! - c5 acquired 2021-01-01, churns 2023-01-01 (730 days); marketing, -, enterprise, olga.
//! - c6 acquired 2023-01-01, churns 2024-01-01T00:00Z (365 days): active at start and
//!   churned in W; sales, no segment, no owner.
//! - c7 acquired 2024-04-01T00:00Z, exactly at W's end: neither acquired in W nor active
//!   at its end; marketing, -, -, olga.
//! - c8 acquired 2024-03-05; marketing, camp-news, enterprise, pete.
//!
//! Campaigns: camp-mail (email, 2024-01-10, delivered 1000, opens 250, clicks 40),
//! camp-ads (paid, 2024-02-01, 0/0/0), camp-news (email, 2024-03-01, 500/150/35),
//! camp-late (email, 2024-04-01: at W's end, out; 300/30/3).
//!
//! Deals (owner, customer, campaign, status, kind, amount, created → closed, stages):
//! - d1 olga, c3, camp-mail, won new business 1000, 2023-12-02 → 2024-01-01T00:00Z (closed
//!   exactly at start: in W; cycle 30 days); qualification 12-02, demo 12-12, proposal
//!   12-22 (only the proposal exit, at close, is in W: 10 days).
//! - d2 pete, c4, -, won new business 2500, 2024-01-20 → 02-10 (21 days); qualification
//!   01-20, negotiation 02-01 (exits: qualification 12 days, negotiation 9 days).
//! - d3 olga, c1, camp-ads, won upsell 500, 2024-02-01 → 03-01 (29 days); no stages.
//! - d4 pete, c2, -, lost new business 800, 2024-01-05 → 01-25; qualification 01-05 (exit
//!   at close, 20 days).
//! - d5 quinn, no customer, -, open 300, created 2024-03-15; qualification 03-15.
//! - d6 olga, c1, -, won cross-sell 700, 2024-03-10 → 2024-04-01T00:00Z (at W's end: out).
//! - d7 quinn, c2, -, won upsell 400, 2023-10-01 → 2023-12-15 (before W).
//! - d8 pete, c1, camp-news, won upsell 100, 2024-03-01 → 03-05 (4 days).
//!
//! Quotas: q1 olga [2024-01-01, 2024-04-01) 3000 (all in W); q2 pete [2024-01-01,
//! 2024-07-01) 10400 (182 days, 91 in W: 5200); q3 quinn [2024-02-01, 2024-03-01) 2050;
//! q4 quinn [2023-12-01, 2024-01-01) 500 (ends at start: nothing in W).
//!
//! Leads (created, source, campaign, converted): l1 2024-01-05 marketing camp-mail 02-01;
//! l2 02-10 sales - 2024-04-01 (at end: not before it); l3 03-01 marketing camp-news -;
//! l4 2024-03-31T23:00Z referral - 2024-03-31T23:30Z; l5 2023-12-20 marketing - 2024-01-10
//! (created before W); l6 2024-04-01 sales (out); l7 2024-02-12T00:00Z (a Monday) partner.
//!
//! Subscriptions (customer, started, MRR changes, end, renewal due / renewed):
//! - s1 c1 2023-06-01: 100, 150 from 2024-02-01; due 2024-03-01, renewed.
//! - s2 c2 2023-07-01: 200, 120 from 2024-01-15; ended 2024-02-15; due 02-01, not renewed.
//! - s3 c3 2024-01-01: 50; due 2024-03-31, renewed.
//! - s4 c1 2024-03-01: 30 (c1 already pays through s1: expansion).
//! - s5 c4 2024-02-10: 50, 0 from 2024-03-20 (the change to 0 ends it).
//! - s6 c6 2023-03-01: 100; ended 2024-01-01T00:00Z; due 2024-01-01, renewed unknown.
//! - s7 c8 2024-03-05: 80; due 2024-04-01 (out), renewed.
//! - s8 c5 2022-01-01: 90; ended 2023-01-01.
//!
//! Purchases: p1 c3 2024-01-01T00:00Z 100; p2 c3 02-15 170 (c3 buys twice); p3 c1 03-10
//! 80; p4 c4 03-01 40; p5 c1 2024-04-01 999 (out); p6 c2 2023-12-31 500 (before). And
//! p7–p14, c1's purchases around the 2023 daylight-saving changes (see the DST test).
//!
//! Spend (category, channel, campaign): x1 2024-01-15 3000 advertising paid camp-ads; x2
//! 02-01 1500 salaries; x3 03-01 500 advertising email camp-mail; x4 03-15 400 tools; x5
//! 2024-04-01 10000 advertising (out); x6 2023-12-31 777 advertising (before).
//!
//! Tickets (customer, agent, opened → first response → resolved):
//! - t1 c1 ann 2024-01-10T00:00 → 01-10T02:00 (2 h) → 01-11T00:00 (24 h).
//! - t2 c3 ann 2023-12-31T20:00 → 2024-01-01T00:00 (4 h, at start) → 01-01T12:00 (16 h).
//! - t3 - ben 2024-03-31T22:00 → 03-31T23:30 (1.5 h) → 2024-04-01T00:00 (at end: out).
//! - t4 c2 ben 2024-02-01T00:00 → 02-01T03:00 (3 h) → 02-03T00:00 (48 h).
//!
//! Surveys (customer, score/scale, at):
//! - NPS on 10: v1 c1 10 01-05; v2 c3 9 01-20; v3 c2 8 02-01; v4 c4 6 02-20; v5 - 0
//!   03-01; v10 c8 10 03-20; v11 c1 9 03-25; v12 c2 6.5 03-26; v6 c1 10 04-01 (out).
//! - NPS on 5: v7 c8 5 03-10; v8 c3 2 03-11; v9 c1 3 03-12; v13 c2 1 03-13.
//! - CSAT on 5: w1 c1 5 01-15; w2 c3 4 02-15; w3 c4 3 03-01; w4 c2 2.5 03-02; w5 - 1
//!   03-03; w10 c1 5 04-01 (out). CSAT on 10: w6 c8 8 03-10; w7 c1 6 03-11; w8 c2 5.5
//!   03-12; w9 c3 10 03-13.
//! - CES on 7: e1 c1 6 01-11; e2 c2 3 03-11; e3 c3 4.5 02-02; e4 c1 7 2023-12-31 (out).

mod common;

use std::collections::BTreeMap;
use std::str::FromStr as _;

use common::{record, serving, ts, Kpid};
use kpi_proto::kpi::v1 as pb;
use kpi_proto::kpi::v1::metrics_service_client::MetricsServiceClient;
use pb::record::Record as Kind;
use rust_decimal::Decimal;
use tonic::transport::Channel;
use tonic::Code;
use tonic_types::StatusExt as _;

// ------------------------------------------------------------------ record builders

/// `2024-01-01` as midnight UTC, or a full RFC 3339 time as given.
fn full(text: &str) -> String {
    if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text.to_owned()
    }
}

fn t(text: &str) -> Option<prost_types::Timestamp> {
    ts(&full(text))
}

fn opt(text: Option<&str>) -> Option<String> {
    text.map(str::to_owned)
}

fn customer(
    id: &str,
    acquired: &str,
    churned: Option<&str>,
    source: pb::Source,
    campaign: Option<&str>,
    segment: Option<&str>,
    owner: Option<&str>,
) -> pb::Record {
    record(Kind::Customer(pb::Customer {
        attributes: Default::default(),
        id: id.into(),
        acquired_at: t(acquired),
        churned_at: churned.and_then(t),
        source: source.into(),
        campaign_id: opt(campaign),
        segment: opt(segment),
        owner: opt(owner),
    }))
}

/// The parts of a deal (kept in a struct: a deal has many fields).
struct D<'a> {
    id: &'a str,
    owner: &'a str,
    customer: Option<&'a str>,
    campaign: Option<&'a str>,
    status: pb::DealStatus,
    kind: pb::DealKind,
    amount: &'a str,
    created: &'a str,
    closed: Option<&'a str>,
    stages: &'a [(&'a str, &'a str)],
}

fn deal(d: D<'_>) -> pb::Record {
    record(Kind::Deal(pb::Deal {
        currency: String::new(),
        attributes: Default::default(),
        id: d.id.into(),
        owner: d.owner.into(),
        amount: d.amount.into(),
        created_at: t(d.created),
        closed_at: d.closed.and_then(t),
        status: d.status.into(),
        kind: d.kind.into(),
        customer_id: opt(d.customer),
        campaign_id: opt(d.campaign),
        stage_history: d
            .stages
            .iter()
            .map(|(stage, at)| pb::StageEntry {
                stage: (*stage).into(),
                entered_at: t(at),
            })
            .collect(),
    }))
}

fn lead(
    id: &str,
    created: &str,
    source: pb::Source,
    campaign: Option<&str>,
    converted: Option<&str>,
) -> pb::Record {
    record(Kind::Lead(pb::Lead {
        attributes: Default::default(),
        id: id.into(),
        created_at: t(created),
        source: source.into(),
        campaign_id: opt(campaign),
        converted_at: converted.and_then(t),
        customer_id: None,
    }))
}

fn subscription(
    id: &str,
    customer: &str,
    started: &str,
    ended: Option<&str>,
    mrr: &[(&str, &str)],
    due: Option<&str>,
    renewed: Option<bool>,
) -> pb::Record {
    record(Kind::Subscription(pb::Subscription {
        currency: String::new(),
        attributes: Default::default(),
        id: id.into(),
        customer_id: customer.into(),
        started_at: t(started),
        ended_at: ended.and_then(t),
        mrr_changes: mrr
            .iter()
            .map(|(at, mrr)| pb::MrrChange {
                at: t(at),
                mrr: (*mrr).into(),
            })
            .collect(),
        renewal_due_at: due.and_then(t),
        renewed,
    }))
}

fn purchase(id: &str, customer: &str, at: &str, amount: &str) -> pb::Record {
    record(Kind::Purchase(pb::Purchase {
        currency: String::new(),
        attributes: Default::default(),
        id: id.into(),
        customer_id: customer.into(),
        amount: amount.into(),
        at: t(at),
    }))
}

fn spend(
    id: &str,
    at: &str,
    amount: &str,
    category: pb::SpendCategory,
    channel: pb::Channel,
    campaign: Option<&str>,
) -> pb::Record {
    record(Kind::Spend(pb::Spend {
        currency: String::new(),
        attributes: Default::default(),
        id: id.into(),
        at: t(at),
        amount: amount.into(),
        category: category.into(),
        channel: channel.into(),
        campaign_id: opt(campaign),
    }))
}

fn campaign(
    id: &str,
    channel: pb::Channel,
    started: &str,
    delivered: u64,
    opens: u64,
    clicks: u64,
) -> pb::Record {
    record(Kind::Campaign(pb::Campaign {
        currency: String::new(),
        attributes: Default::default(),
        id: id.into(),
        name: format!("campaign {id}"),
        channel: channel.into(),
        started_at: t(started),
        delivered,
        opens,
        clicks,
        unsubscribes: 0,
    }))
}

fn ticket(
    id: &str,
    customer: Option<&str>,
    agent: &str,
    opened: &str,
    responded: Option<&str>,
    resolved: Option<&str>,
) -> pb::Record {
    record(Kind::Ticket(pb::Ticket {
        attributes: Default::default(),
        id: id.into(),
        customer_id: opt(customer),
        agent: agent.into(),
        opened_at: t(opened),
        first_response_at: responded.and_then(t),
        resolved_at: resolved.and_then(t),
    }))
}

fn survey(
    id: &str,
    customer: Option<&str>,
    kind: pb::SurveyKind,
    score: &str,
    scale_max: u32,
    at: &str,
) -> pb::Record {
    record(Kind::SurveyResponse(pb::SurveyResponse {
        attributes: Default::default(),
        id: id.into(),
        customer_id: opt(customer),
        kind: kind.into(),
        score: score.into(),
        scale_max,
        at: t(at),
    }))
}

fn quota(id: &str, owner: &str, start: &str, end: &str, amount: &str) -> pb::Record {
    record(Kind::Quota(pb::Quota {
        currency: String::new(),
        attributes: Default::default(),
        id: id.into(),
        owner: owner.into(),
        period_start: t(start),
        period_end: t(end),
        amount: amount.into(),
    }))
}

/// The dataset described in the module documentation.
fn dataset() -> Vec<pb::Record> {
    use pb::Channel::{Email, Paid, Unspecified as NoChannel};
    use pb::DealKind::{CrossSell, NewBusiness, Upsell};
    use pb::DealStatus::{Lost, Open, Won};
    use pb::Source::{Marketing, Partner, Referral, Sales};
    use pb::SpendCategory::{Advertising, Salaries, Tools};
    use pb::SurveyKind::{Ces, Csat, Nps};
    let mut v = vec![
        campaign("camp-mail", Email, "2024-01-10", 1000, 250, 40),
        campaign("camp-ads", Paid, "2024-02-01", 0, 0, 0),
        campaign("camp-news", Email, "2024-03-01", 500, 150, 35),
        campaign("camp-late", Email, "2024-04-01", 300, 30, 3),
        customer(
            "c1",
            "2023-01-01",
            None,
            Marketing,
            None,
            Some("smb"),
            Some("olga"),
        ),
        customer(
            "c2",
            "2023-03-26",
            Some("2024-02-15"),
            Sales,
            None,
            Some("enterprise"),
            Some("pete"),
        ),
        customer(
            "c3",
            "2024-01-01",
            None,
            Marketing,
            Some("camp-mail"),
            Some("smb"),
            Some("olga"),
        ),
        customer(
            "c4",
            "2024-02-10",
            Some("2024-03-20"),
            Referral,
            None,
            Some("smb"),
            Some("pete"),
        ),
        customer(
            "c5",
            "2021-01-01",
            Some("2023-01-01"),
            Marketing,
            None,
            Some("enterprise"),
            Some("olga"),
        ),
        customer(
            "c6",
            "2023-01-01",
            Some("2024-01-01"),
            Sales,
            None,
            None,
            None,
        ),
        customer(
            "c7",
            "2024-04-01",
            None,
            Marketing,
            None,
            None,
            Some("olga"),
        ),
        customer(
            "c8",
            "2024-03-05",
            None,
            Marketing,
            Some("camp-news"),
            Some("enterprise"),
            Some("pete"),
        ),
        deal(D {
            id: "d1",
            owner: "olga",
            customer: Some("c3"),
            campaign: Some("camp-mail"),
            status: Won,
            kind: NewBusiness,
            amount: "1000",
            created: "2023-12-02",
            closed: Some("2024-01-01"),
            stages: &[
                ("qualification", "2023-12-02"),
                ("demo", "2023-12-12"),
                ("proposal", "2023-12-22"),
            ],
        }),
        deal(D {
            id: "d2",
            owner: "pete",
            customer: Some("c4"),
            campaign: None,
            status: Won,
            kind: NewBusiness,
            amount: "2500",
            created: "2024-01-20",
            closed: Some("2024-02-10"),
            stages: &[
                ("qualification", "2024-01-20"),
                ("negotiation", "2024-02-01"),
            ],
        }),
        deal(D {
            id: "d3",
            owner: "olga",
            customer: Some("c1"),
            campaign: Some("camp-ads"),
            status: Won,
            kind: Upsell,
            amount: "500",
            created: "2024-02-01",
            closed: Some("2024-03-01"),
            stages: &[],
        }),
        deal(D {
            id: "d4",
            owner: "pete",
            customer: Some("c2"),
            campaign: None,
            status: Lost,
            kind: NewBusiness,
            amount: "800",
            created: "2024-01-05",
            closed: Some("2024-01-25"),
            stages: &[("qualification", "2024-01-05")],
        }),
        deal(D {
            id: "d5",
            owner: "quinn",
            customer: None,
            campaign: None,
            status: Open,
            kind: NewBusiness,
            amount: "300",
            created: "2024-03-15",
            closed: None,
            stages: &[("qualification", "2024-03-15")],
        }),
        deal(D {
            id: "d6",
            owner: "olga",
            customer: Some("c1"),
            campaign: None,
            status: Won,
            kind: CrossSell,
            amount: "700",
            created: "2024-03-10",
            closed: Some("2024-04-01"),
            stages: &[],
        }),
        deal(D {
            id: "d7",
            owner: "quinn",
            customer: Some("c2"),
            campaign: None,
            status: Won,
            kind: Upsell,
            amount: "400",
            created: "2023-10-01",
            closed: Some("2023-12-15"),
            stages: &[],
        }),
        deal(D {
            id: "d8",
            owner: "pete",
            customer: Some("c1"),
            campaign: Some("camp-news"),
            status: Won,
            kind: Upsell,
            amount: "100",
            created: "2024-03-01",
            closed: Some("2024-03-05"),
            stages: &[],
        }),
        quota("q1", "olga", "2024-01-01", "2024-04-01", "3000"),
        quota("q2", "pete", "2024-01-01", "2024-07-01", "10400"),
        quota("q3", "quinn", "2024-02-01", "2024-03-01", "2050"),
        quota("q4", "quinn", "2023-12-01", "2024-01-01", "500"),
        lead(
            "l1",
            "2024-01-05",
            Marketing,
            Some("camp-mail"),
            Some("2024-02-01"),
        ),
        lead("l2", "2024-02-10", Sales, None, Some("2024-04-01")),
        lead("l3", "2024-03-01", Marketing, Some("camp-news"), None),
        lead(
            "l4",
            "2024-03-31T23:00:00Z",
            Referral,
            None,
            Some("2024-03-31T23:30:00Z"),
        ),
        lead("l5", "2023-12-20", Marketing, None, Some("2024-01-10")),
        lead("l6", "2024-04-01", Sales, None, None),
        lead("l7", "2024-02-12", Partner, None, None),
        subscription(
            "s1",
            "c1",
            "2023-06-01",
            None,
            &[("2023-06-01", "100"), ("2024-02-01", "150")],
            Some("2024-03-01"),
            Some(true),
        ),
        subscription(
            "s2",
            "c2",
            "2023-07-01",
            Some("2024-02-15"),
            &[("2023-07-01", "200"), ("2024-01-15", "120")],
            Some("2024-02-01"),
            Some(false),
        ),
        subscription(
            "s3",
            "c3",
            "2024-01-01",
            None,
            &[("2024-01-01", "50")],
            Some("2024-03-31"),
            Some(true),
        ),
        subscription(
            "s4",
            "c1",
            "2024-03-01",
            None,
            &[("2024-03-01", "30")],
            None,
            None,
        ),
        subscription(
            "s5",
            "c4",
            "2024-02-10",
            None,
            &[("2024-02-10", "50"), ("2024-03-20", "0")],
            None,
            None,
        ),
        subscription(
            "s6",
            "c6",
            "2023-03-01",
            Some("2024-01-01"),
            &[("2023-03-01", "100")],
            Some("2024-01-01"),
            None,
        ),
        subscription(
            "s7",
            "c8",
            "2024-03-05",
            None,
            &[("2024-03-05", "80")],
            Some("2024-04-01"),
            Some(true),
        ),
        subscription(
            "s8",
            "c5",
            "2022-01-01",
            Some("2023-01-01"),
            &[("2022-01-01", "90")],
            None,
            None,
        ),
        purchase("p1", "c3", "2024-01-01", "100"),
        purchase("p2", "c3", "2024-02-15", "170"),
        purchase("p3", "c1", "2024-03-10", "80"),
        purchase("p4", "c4", "2024-03-01", "40"),
        purchase("p5", "c1", "2024-04-01", "999"),
        purchase("p6", "c2", "2023-12-31", "500"),
        // Around Paris's 2023 daylight-saving changes (see the DST test).
        purchase("p7", "c1", "2023-03-25T23:30:00Z", "10"),
        purchase("p8", "c1", "2023-03-26T21:30:00Z", "13"),
        purchase("p9", "c1", "2023-03-26T22:00:00Z", "24"),
        purchase("p10", "c1", "2023-03-27T22:00:00Z", "500"),
        purchase("p11", "c1", "2023-10-28T22:00:00Z", "15"),
        purchase("p12", "c1", "2023-10-29T22:59:59Z", "10"),
        purchase("p13", "c1", "2023-10-29T23:00:00Z", "24"),
        purchase("p14", "c1", "2023-10-30T23:00:00Z", "1000"),
        spend(
            "x1",
            "2024-01-15",
            "3000",
            Advertising,
            Paid,
            Some("camp-ads"),
        ),
        spend("x2", "2024-02-01", "1500", Salaries, NoChannel, None),
        spend(
            "x3",
            "2024-03-01",
            "500",
            Advertising,
            Email,
            Some("camp-mail"),
        ),
        spend("x4", "2024-03-15", "400", Tools, NoChannel, None),
        spend("x5", "2024-04-01", "10000", Advertising, NoChannel, None),
        spend("x6", "2023-12-31", "777", Advertising, NoChannel, None),
        ticket(
            "t1",
            Some("c1"),
            "ann",
            "2024-01-10T00:00:00Z",
            Some("2024-01-10T02:00:00Z"),
            Some("2024-01-11T00:00:00Z"),
        ),
        ticket(
            "t2",
            Some("c3"),
            "ann",
            "2023-12-31T20:00:00Z",
            Some("2024-01-01T00:00:00Z"),
            Some("2024-01-01T12:00:00Z"),
        ),
        ticket(
            "t3",
            None,
            "ben",
            "2024-03-31T22:00:00Z",
            Some("2024-03-31T23:30:00Z"),
            Some("2024-04-01T00:00:00Z"),
        ),
        ticket(
            "t4",
            Some("c2"),
            "ben",
            "2024-02-01T00:00:00Z",
            Some("2024-02-01T03:00:00Z"),
            Some("2024-02-03T00:00:00Z"),
        ),
    ];
    for (id, customer, score, at) in [
        ("v1", Some("c1"), "10", "2024-01-05"),
        ("v2", Some("c3"), "9", "2024-01-20"),
        ("v3", Some("c2"), "8", "2024-02-01"),
        ("v4", Some("c4"), "6", "2024-02-20"),
        ("v5", None, "0", "2024-03-01"),
        ("v10", Some("c8"), "10", "2024-03-20"),
        ("v11", Some("c1"), "9", "2024-03-25"),
        ("v12", Some("c2"), "6.5", "2024-03-26"),
        ("v6", Some("c1"), "10", "2024-04-01"),
    ] {
        v.push(survey(id, customer, Nps, score, 10, at));
    }
    for (id, customer, score, at) in [
        ("v7", "c8", "5", "2024-03-10"),
        ("v8", "c3", "2", "2024-03-11"),
        ("v9", "c1", "3", "2024-03-12"),
        ("v13", "c2", "1", "2024-03-13"),
    ] {
        v.push(survey(id, Some(customer), Nps, score, 5, at));
    }
    for (id, customer, score, scale, at) in [
        ("w1", Some("c1"), "5", 5, "2024-01-15"),
        ("w2", Some("c3"), "4", 5, "2024-02-15"),
        ("w3", Some("c4"), "3", 5, "2024-03-01"),
        ("w4", Some("c2"), "2.5", 5, "2024-03-02"),
        ("w5", None, "1", 5, "2024-03-03"),
        ("w10", Some("c1"), "5", 5, "2024-04-01"),
        ("w6", Some("c8"), "8", 10, "2024-03-10"),
        ("w7", Some("c1"), "6", 10, "2024-03-11"),
        ("w8", Some("c2"), "5.5", 10, "2024-03-12"),
        ("w9", Some("c3"), "10", 10, "2024-03-13"),
    ] {
        v.push(survey(id, customer, Csat, score, scale, at));
    }
    for (id, customer, score, at) in [
        ("e1", "c1", "6", "2024-01-11"),
        ("e2", "c2", "3", "2024-03-11"),
        ("e3", "c3", "4.5", "2024-02-02"),
        ("e4", "c1", "7", "2023-12-31"),
    ] {
        v.push(survey(id, Some(customer), Ces, score, 7, at));
    }
    for (id, activity_type, owner, at, customer) in [
        ("x1", "meeting", Some("ann"), "2024-01-10", Some("c1")),
        ("x2", "call", Some("ann"), "2024-02-01", Some("c2")),
        ("x3", "call", Some("bob"), "2024-03-31T23:00:00Z", None),
        ("x4", "demo", Some("bob"), "2024-04-01", None),
        (
            "x5",
            "meeting",
            Some("bob"),
            "2023-12-31T23:59:59Z",
            Some("c1"),
        ),
        ("x6", "call", None, "2024-02-20", Some("c3")),
    ] {
        v.push(record(Kind::Activity(pb::Activity {
            id: id.into(),
            r#type: activity_type.into(),
            occurred_at: t(at),
            customer_id: opt(customer),
            owner: opt(owner),
            ..Default::default()
        })));
    }
    v
}

// ------------------------------------------------------------------ the server side

/// A kpid with the dataset loaded, and a metrics client.
async fn loaded() -> (Kpid, MetricsServiceClient<Channel>) {
    serving(dataset()).await
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A request for `metric` over [start, end).
fn over(metric: &str, start: &str, end: &str) -> pb::ComputeRequest {
    pb::ComputeRequest {
        metric_id: metric.into(),
        start: t(start),
        end: t(end),
        ..Default::default()
    }
}

/// A request for `metric` over W, the first quarter of 2024.
fn q1(metric: &str) -> pb::ComputeRequest {
    over(metric, "2024-01-01", "2024-04-01")
}

/// Adds params.
fn params(mut r: pb::ComputeRequest, p: &[(&str, &str)]) -> pb::ComputeRequest {
    r.params.extend(pairs(p));
    r
}

/// Adds explicit inputs.
fn inputs(mut r: pb::ComputeRequest, p: &[(&str, &str)]) -> pb::ComputeRequest {
    r.inputs.extend(pairs(p));
    r
}

/// Adds filters.
fn filters(mut r: pb::ComputeRequest, p: &[(&str, &str)]) -> pb::ComputeRequest {
    r.filters.extend(pairs(p));
    r
}

/// Sets group_by.
fn group_by(mut r: pb::ComputeRequest, dims: &[&str]) -> pb::ComputeRequest {
    r.group_by = dims.iter().map(|d| (*d).to_owned()).collect();
    r
}

/// Sets granularity (and a time zone, "" for UTC).
fn series(mut r: pb::ComputeRequest, g: pb::Granularity, zone: &str) -> pb::ComputeRequest {
    r.granularity = g.into();
    r.time_zone = zone.into();
    r
}

async fn compute(
    client: &mut MetricsServiceClient<Channel>,
    r: pb::ComputeRequest,
) -> Vec<pb::Row> {
    let what = format!("{r:?}");
    client
        .compute(r)
        .await
        .unwrap_or_else(|s| panic!("Compute {what}: {s:?}"))
        .into_inner()
        .rows
}

// ------------------------------------------------------------------ expectations

/// A value, or undefined with (part of) its reason.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Is(&'static str),
    Undefined(&'static str),
}

/// One expected row.
#[derive(Debug, Clone)]
struct Want {
    bucket: Option<&'static str>,
    group: Vec<(&'static str, &'static str)>,
    answer: Answer,
    inputs: Vec<(&'static str, &'static str)>,
}

/// A row with `value` computed from `inputs`.
fn is(value: &'static str, inputs: &[(&'static str, &'static str)]) -> Want {
    Want {
        bucket: None,
        group: Vec::new(),
        answer: Answer::Is(value),
        inputs: inputs.to_vec(),
    }
}

/// An undefined row (its reason contains `reason`) with `inputs`.
fn undefined(reason: &'static str, inputs: &[(&'static str, &'static str)]) -> Want {
    Want {
        answer: Answer::Undefined(reason),
        ..is("", inputs)
    }
}

impl Want {
    /// The row of group `dimension = value`.
    fn group(mut self, dimension: &'static str, value: &'static str) -> Self {
        self.group.push((dimension, value));
        self
    }

    /// The row of the bucket starting at `start`.
    fn bucket(mut self, start: &'static str) -> Self {
        self.bucket = Some(start);
        self
    }
}

fn bucket_text(b: &Option<prost_types::Timestamp>) -> Option<String> {
    b.as_ref().map(|b| {
        jiff::Timestamp::new(b.seconds, b.nanos)
            .expect("valid bucket start")
            .to_string()
    })
}

/// Checks `rows` against `want`, row by row, in order.
fn check(what: &str, rows: &[pb::Row], want: &[Want]) {
    let shown = |rows: &[pb::Row]| {
        rows.iter()
            .map(|r| {
                format!(
                    "  bucket {:?} group {:?} value {:?} reason {:?} inputs {:?}",
                    bucket_text(&r.bucket_start),
                    r.group,
                    r.value,
                    r.undefined_reason,
                    r.inputs.iter().collect::<BTreeMap<_, _>>()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        rows.len(),
        want.len(),
        "{what}: {} rows, expected {}:\n{}",
        rows.len(),
        want.len(),
        shown(rows)
    );
    for (i, (row, w)) in rows.iter().zip(want).enumerate() {
        let ctx = || format!("{what}, row {i}:\n{}", shown(std::slice::from_ref(row)));
        assert_eq!(
            bucket_text(&row.bucket_start),
            w.bucket.map(full),
            "{}",
            ctx()
        );
        let group: BTreeMap<String, String> = row.group.clone().into_iter().collect();
        let want_group: BTreeMap<String, String> = pairs(&w.group).into_iter().collect();
        assert_eq!(group, want_group, "{}", ctx());
        match w.answer {
            Answer::Is(v) => {
                assert_eq!(row.value, v, "{}", ctx());
                assert_eq!(row.undefined_reason, "", "{}", ctx());
            }
            Answer::Undefined(reason) => {
                assert_eq!(row.value, "", "{}", ctx());
                assert!(row.undefined_reason.contains(reason), "{}", ctx());
            }
        }
        let got: BTreeMap<String, String> = row.inputs.clone().into_iter().collect();
        let want_inputs: BTreeMap<String, String> = pairs(&w.inputs).into_iter().collect();
        assert_eq!(got, want_inputs, "{}", ctx());
    }
}

async fn expect(client: &mut MetricsServiceClient<Channel>, r: pb::ComputeRequest, want: &[Want]) {
    let what = format!(
        "{} over {:?}..{:?} group_by {:?} filters {:?} params {:?} inputs {:?}",
        r.metric_id, r.start, r.end, r.group_by, r.filters, r.params, r.inputs
    );
    let rows = compute(client, r).await;
    check(&what, &rows, want);
}

/// Every catalogue metric over W (default groups, default params), worked out by hand.
fn first_quarter() -> Vec<(&'static str, Vec<Want>)> {
    vec![
        // ---------------------------------------------------------------- sales
        // Won in W: d1 (closed exactly at start) 1000, d2 2500, d3 500, d8 100; d6 closes
        // exactly at end (out), d7 before. Lost in W: d4. 4 / (4 + 1) = 80 %.
        (
            "sales.win_rate",
            vec![is("80", &[("won", "4"), ("lost", "1")])],
        ),
        // 4100 / 4.
        (
            "sales.average_deal_size",
            vec![is("1025", &[("won_amount", "4100"), ("won", "4")])],
        ),
        // Cycles 30 (d1) + 21 (d2) + 29 (d3, leap February) + 4 (d8) = 84 days / 4.
        (
            "sales.sales_cycle_days",
            vec![is("21", &[("cycle_days_total", "84"), ("won", "4")])],
        ),
        // Grouped by stage (its default). Exits in W: d1 proposal 10 days (at its close,
        // exactly at start), d2 qualification 12 and negotiation 9, d4 qualification 20.
        // demo's only exit (d1, 2023-12-22) is before W: all inputs 0, no row. d5's
        // qualification has no exit.
        (
            "sales.stage_duration_days",
            vec![
                is("9", &[("stage_days_total", "9"), ("stage_exits", "1")])
                    .group("stage", "negotiation"),
                is("10", &[("stage_days_total", "10"), ("stage_exits", "1")])
                    .group("stage", "proposal"),
                is("16", &[("stage_days_total", "32"), ("stage_exits", "2")])
                    .group("stage", "qualification"),
            ],
        ),
        // Quota: q1 3000 + q2 10400 × 91/182 = 5200 + q3 2050 + q4 0 = 10250.
        // 4100 / 10250 × 100 = 40.
        (
            "sales.quota_attainment",
            vec![is("40", &[("won_amount", "4100"), ("quota", "10250")])],
        ),
        ("sales.revenue", vec![is("4100", &[("won_amount", "4100")])]),
        // Reps who closed (won or lost) in W: olga (d1, d3), pete (d2, d4, d8).
        (
            "sales.revenue_per_rep",
            vec![is("2050", &[("won_amount", "4100"), ("reps", "2")])],
        ),
        // Leads created in W: l1, l2, l3, l4, l7 (l5 before, l6 at end).
        ("sales.leads_created", vec![is("5", &[("leads", "5")])]),
        // Activities in W: x1, x2, x3, x6 (x4 at end, x5 before).
        ("sales.activities", vec![is("4", &[("activities", "4")])]),
        // Converted before end: l1, l4 (l2 converts exactly at end). 2 / 5.
        (
            "sales.lead_conversion_rate",
            vec![is("40", &[("converted", "2"), ("leads", "5")])],
        ),
        // Upsold: d3 and d8 are c1's (d6 closes at end): 1 customer. Active at any time
        // in W: c1, c2, c3, c4, c6 (churned exactly at start), c8; not c5 (churned
        // 2023), c7 (acquired at end). 1 / 6 = 16.666… %.
        (
            "sales.upsell_rate",
            vec![is("16.67", &[("upsold", "1"), ("customers", "6")])],
        ),
        // ---------------------------------------------------------------- marketing
        // Spend in W: x1 3000 + x2 1500 + x3 500 + x4 400 = 5400 (x5 at end, x6 before).
        // Acquired in W: c3 (exactly at start), c4, c8 (c7 at end). 5400 / 3.
        (
            "marketing.cac",
            vec![is("1800", &[("spend", "5400"), ("new_customers", "3")])],
        ),
        // First MRR of the new customers' earliest subscriptions: c3 s3 50, c4 s5 50,
        // c8 s7 80: mean 60. 1800 / (60 × 1).
        (
            "marketing.cac_payback_months",
            vec![is("30", &[("cac", "1800"), ("new_customer_mrr", "60")])],
        ),
        // New customers c3, c8 (marketing) and c4 (referral): 2 / 3.
        (
            "marketing.marketing_sourced_pct",
            vec![is(
                "66.67",
                &[("from_marketing", "2"), ("new_customers", "3")],
            )],
        ),
        // Purchases in W: p1 100 (at start) + p2 170 + p3 80 + p4 40 = 390, 4 purchases,
        // 3 buyers (c3, c1, c4). Churned before end: c2 326 + c4 39 + c5 730 + c6 365 =
        // 1460 days over 4 customers = 1 year. 390 × 1 / (3 × 0.25) = 520.
        (
            "marketing.clv",
            vec![is(
                "520",
                &[
                    ("revenue", "390"),
                    ("purchases", "4"),
                    ("customers", "3"),
                    ("years", "0.25"),
                    ("lifespan_years", "1"),
                ],
            )],
        ),
        // 390 × 1 (margin) / (6 active customers × 0.25 years) = 260 a year; × 1 year
        // − CAC 1800 = −1540.
        (
            "marketing.clv_net",
            vec![is(
                "-1540",
                &[
                    ("annual_profit_per_customer", "260"),
                    ("retention_years", "1"),
                    ("cac", "1800"),
                ],
            )],
        ),
        // 520 / 1800 = 0.2888… → 0.29.
        (
            "marketing.clv_cac_ratio",
            vec![is("0.29", &[("clv", "520"), ("cac", "1800")])],
        ),
        // Grouped by campaign (its default). camp-ads: d3 500 against x1 3000 →
        // −2500 / 3000 = −83.33 %. camp-late: nothing in W, no row. camp-mail: d1 1000
        // against x3 500 → 100 %. camp-news: d8 100, no spend → undefined.
        (
            "marketing.campaign_roi",
            vec![
                is(
                    "-83.33",
                    &[("attributed_revenue", "500"), ("campaign_spend", "3000")],
                )
                .group("campaign", "camp-ads"),
                is(
                    "100",
                    &[("attributed_revenue", "1000"), ("campaign_spend", "500")],
                )
                .group("campaign", "camp-mail"),
                undefined(
                    "campaign_spend = 0",
                    &[("attributed_revenue", "100"), ("campaign_spend", "0")],
                )
                .group("campaign", "camp-news"),
            ],
        ),
        // Won in W through email campaigns: d1 (camp-mail) 1000 + d8 (camp-news) 100.
        (
            "marketing.email_revenue",
            vec![is("1100", &[("attributed_revenue", "1100")])],
        ),
        // Email campaigns started in W: camp-mail, camp-news (camp-late at end).
        // 400 / 1500 = 26.666… %.
        (
            "marketing.email_open_rate",
            vec![is("26.67", &[("opens", "400"), ("delivered", "1500")])],
        ),
        (
            "marketing.email_click_rate",
            vec![is("5", &[("clicks", "75"), ("delivered", "1500")])],
        ),
        // ---------------------------------------------------------------- success
        // Active at start: c1, c2, c6 (churned exactly at start: still active at it);
        // not c3 (acquired exactly at start). Lost: c2, c6. 2 / 3.
        (
            "success.churn_rate",
            vec![is("66.67", &[("lost", "2"), ("at_start", "3")])],
        ),
        // At end: c1, c3, c8 (c7 acquired exactly at end is not). New and kept: c3, c8.
        // (3 − 2) / 3.
        (
            "success.retention_rate",
            vec![is(
                "33.33",
                &[("at_end", "3"), ("new_retained", "2"), ("at_start", "3")],
            )],
        ),
        // Due in W: s6 (exactly at start), s2, s1, s3; s7 at end. Renewed: s1, s3.
        (
            "success.renewal_rate",
            vec![is("50", &[("renewed", "2"), ("due", "4")])],
        ),
        // NPS on scale 10 in W: promoters v1, v2, v10, v11; detractors v4 (6), v5 (0);
        // passives v3 (8), v12 (6.5). (4 − 2) / 8 = 25.
        (
            "success.nps",
            vec![is(
                "25",
                &[("promoters", "4"), ("detractors", "2"), ("responses", "8")],
            )],
        ),
        // CSAT on scale 5 in W: w1 5, w2 4, w3 3, w4 2.5, w5 1; positive (≥ 4): 2 of 5.
        (
            "success.csat",
            vec![is("40", &[("positive", "2"), ("responses", "5")])],
        ),
        // CES in W: e1 6 + e2 3 + e3 4.5 = 13.5 over 3.
        (
            "success.ces",
            vec![is("4.5", &[("score_total", "13.5"), ("responses", "3")])],
        ),
        // Grouped by agent (its default). Resolved in W: ann t1 24 h + t2 16 h; ben t4
        // 48 h (t3 resolves exactly at end).
        (
            "success.avg_resolution_hours",
            vec![
                is("20", &[("resolution_hours_total", "40"), ("resolved", "2")])
                    .group("agent", "ann"),
                is("48", &[("resolution_hours_total", "48"), ("resolved", "1")])
                    .group("agent", "ben"),
            ],
        ),
        // First responses in W: t1 2 h, t2 4 h (exactly at start), t3 1.5 h, t4 3 h:
        // 10.5 / 4 = 2.625 → 2.63 (half away from zero).
        (
            "success.first_response_hours",
            vec![is(
                "2.63",
                &[("response_hours_total", "10.5"), ("responded", "4")],
            )],
        ),
        // Buyers c3 (p1, p2), c1 (p3), c4 (p4); repeat: c3.
        (
            "success.repeat_customer_rate",
            vec![is("33.33", &[("repeat", "1"), ("buyers", "3")])],
        ),
        // Grouped by cohort (its default), monthly cohorts (the default cohort_granularity)
        // of the customers the metric reads (subscriptions' and customers'): every one.
        // retained = the cohort's customers with a subscription active at W's end;
        // cohort_size = its customers acquired in its month.
        // 2021-01: c5 (s8 ended 2023): 0 / 1. 2023-01: c1 (s1 150, s4 30), c6 (s6 ended
        // exactly at start): 1 / 2 = 50. 2023-03: c2 (s2 ended 02-15): 0 / 1. 2024-01: c3
        // (acquired exactly at start; s3): 1 / 1. 2024-02: c4 (s5 changed to 0 on 03-20):
        // 0 / 1. 2024-03: c8 (s7): 1 / 1; its month ends with W (cohort_age 0). 2024-04:
        // c7 (acquired exactly at end), a month ending after W: no row.
        (
            "success.cohort_retention",
            vec![
                is("0", &[("retained", "0"), ("cohort_size", "1")]).group("cohort", "2021-01"),
                is("50", &[("retained", "1"), ("cohort_size", "2")]).group("cohort", "2023-01"),
                is("0", &[("retained", "0"), ("cohort_size", "1")]).group("cohort", "2023-03"),
                is("100", &[("retained", "1"), ("cohort_size", "1")]).group("cohort", "2024-01"),
                is("0", &[("retained", "0"), ("cohort_size", "1")]).group("cohort", "2024-02"),
                is("100", &[("retained", "1"), ("cohort_size", "1")]).group("cohort", "2024-03"),
            ],
        ),
        // ---------------------------------------------------------------- revenue
        // MRR at end: s1 150 + s3 50 + s4 30 + s7 80 (s2 ended, s5 changed to 0).
        ("revenue.mrr", vec![is("310", &[("mrr", "310")])]),
        // Paying at end: c1 (s1, s4), c3, c8. 310 / 3.
        (
            "revenue.arpa",
            vec![is("103.33", &[("mrr", "310"), ("paying_customers", "3")])],
        ),
        // s3 50 + s5 50 + s7 80 (s4 is c1's second subscription: expansion).
        ("revenue.new_mrr", vec![is("180", &[("new_mrr", "180")])]),
        // s1 100 → 150 and s4's 30.
        (
            "revenue.expansion_mrr",
            vec![is("80", &[("expansion_mrr", "80")])],
        ),
        // No customer comes back in W: c5 and c6 churned and did not return (see
        // a_returning_customer_is_reactivation_not_new_mrr).
        (
            "revenue.reactivation_mrr",
            vec![is("0", &[("reactivation_mrr", "0")])],
        ),
        // s2 200 → 120.
        (
            "revenue.contraction_mrr",
            vec![is("80", &[("contraction_mrr", "80")])],
        ),
        // s6 100 (ends exactly at start), s2 120 (ended_at), s5 50 (change to 0).
        (
            "revenue.churned_mrr",
            vec![is("270", &[("churned_mrr", "270")])],
        ),
        // 180 + 80 + 0 − 80 − 270 = −90; MRR at start 400 (s1 100, s2 200, s6 100) − 90
        // = 310, the MRR at end.
        (
            "revenue.net_new_mrr",
            vec![is(
                "-90",
                &[
                    ("new_mrr", "180"),
                    ("expansion_mrr", "80"),
                    ("reactivation_mrr", "0"),
                    ("contraction_mrr", "80"),
                    ("churned_mrr", "270"),
                ],
            )],
        ),
        // (270 + 80) / 400 = 87.5 %.
        (
            "revenue.mrr_churn_rate",
            vec![is(
                "87.5",
                &[
                    ("churned_mrr", "270"),
                    ("contraction_mrr", "80"),
                    ("mrr_at_start", "400"),
                ],
            )],
        ),
        // 310 + 390 / 3 months.
        (
            "revenue.total_monthly_revenue",
            vec![is(
                "440",
                &[("mrr", "310"), ("non_recurring", "390"), ("months", "3")],
            )],
        ),
        // Customers acquired in W: c3 (d1 1000, p1 100, p2 170), c4 (d2 2500, p4 40).
        (
            "revenue.new_customer_revenue",
            vec![is("3810", &[("new_customer_revenue", "3810")])],
        ),
        // Grouped by cohort (its default), monthly cohorts of the subscriptions' customers
        // (c7 has none). mrr = the cohort's MRR at W's end; starting_mrr = its MRR at the
        // end of its month.
        // 2021-01: c5, s8 starts 2022 and ends 2023: 0 and 0, no row. 2023-01: c1, c6 at
        // 2023-02-01: nothing yet (s6 starts 03-01, s1 06-01): starting 0, undefined; at
        // end s1 150 + s4 30 = 180 (s6 ended). 2023-03: c2 at 2023-04-01: nothing yet (s2
        // starts 07-01), at end s2 has ended: 0 and 0, no row. 2024-01: c3, s3 50 at
        // 02-01 and at end: 100. 2024-02: c4, s5 50 at 03-01, 0 at end: 0. 2024-03: c8,
        // s7 80 at 04-01, the end of both its month and W: 100.
        (
            "revenue.cohort_mrr_retention",
            vec![
                undefined("starting_mrr = 0", &[("mrr", "180"), ("starting_mrr", "0")])
                    .group("cohort", "2023-01"),
                is("100", &[("mrr", "50"), ("starting_mrr", "50")]).group("cohort", "2024-01"),
                is("0", &[("mrr", "0"), ("starting_mrr", "50")]).group("cohort", "2024-02"),
                is("100", &[("mrr", "80"), ("starting_mrr", "80")]).group("cohort", "2024-03"),
            ],
        ),
    ]
}

// ------------------------------------------------------------------ tests

#[tokio::test]
async fn every_catalogue_metric_from_stored_records() {
    let (_kpid, mut client) = loaded().await;
    let table = first_quarter();
    // The table covers exactly the metrics the server lists.
    let listed = client
        .list_metrics(pb::ListMetricsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut ids: Vec<&str> = table.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    let listed: Vec<&str> = listed.metrics.iter().map(|m| m.id.as_str()).collect();
    // (so the count follows the registry: no number to retype when a metric is added)
    assert_eq!(ids, listed);
    for (id, want) in table {
        expect(&mut client, q1(id), &want).await;
    }
}

/// A customer who churns and comes back is reactivation MRR, not new MRR; a customer whose
/// only earlier subscription was free (MRR 0) is new MRR; a customer whose old subscription
/// ends at the very instant the next one starts still has one active then (expansion).
///
/// Over W = Q1 2024, by month:
/// - r1: a1 100 from 2023-06-01, ended 2024-01-20 (churned 100 in January); a2 120 from
///   02-10 (r1 had paid before and has none active: reactivation 120); a3 40 from 03-05
///   beside a2 (expansion 40).
/// - r2: b1 free (0) 01-05 to 01-19 (new 0, churned 0); b2 60 from 02-01 (r2 never paid:
///   new 60).
/// - r3: c1 70 from 03-01 (new 70), 50 from 03-20 (contraction 20).
/// - r4: d1 30 from 2023-10-01, ended 03-01 (churned 30); d2 45 from 03-01, when d1 is still
///   active (its end is not before 03-01): expansion 45.
///
/// MRR at start: a1 100 + d1 30 = 130. January: new 0, churned 100 → 30. February: new 60,
/// reactivation 120 → 210. March: new 70, expansion 85, contraction 20, churned 30 → 315.
/// Over W: 130 + new 130 + expansion 85 + reactivation 120 − contraction 20 − churned 130
/// = 315 = a2 120 + a3 40 + b2 60 + c1 50 + d2 45, the MRR at end.
#[tokio::test]
async fn a_returning_customer_is_reactivation_not_new_mrr() {
    let kpid = Kpid::start();
    let mut records: Vec<pb::Record> = ["r1", "r2", "r3", "r4"]
        .iter()
        .map(|id| customer(id, "2023-01-01", None, pb::Source::Sales, None, None, None))
        .collect();
    records.extend([
        subscription(
            "a1",
            "r1",
            "2023-06-01",
            Some("2024-01-20"),
            &[("2023-06-01", "100")],
            None,
            None,
        ),
        subscription(
            "a2",
            "r1",
            "2024-02-10",
            None,
            &[("2024-02-10", "120")],
            None,
            None,
        ),
        subscription(
            "a3",
            "r1",
            "2024-03-05",
            None,
            &[("2024-03-05", "40")],
            None,
            None,
        ),
        subscription(
            "b1",
            "r2",
            "2024-01-05",
            Some("2024-01-19"),
            &[("2024-01-05", "0")],
            None,
            None,
        ),
        subscription(
            "b2",
            "r2",
            "2024-02-01",
            None,
            &[("2024-02-01", "60")],
            None,
            None,
        ),
        subscription(
            "c1",
            "r3",
            "2024-03-01",
            None,
            &[("2024-03-01", "70"), ("2024-03-20", "50")],
            None,
            None,
        ),
        subscription(
            "d1",
            "r4",
            "2023-10-01",
            Some("2024-03-01"),
            &[("2023-10-01", "30")],
            None,
            None,
        ),
        subscription(
            "d2",
            "r4",
            "2024-03-01",
            None,
            &[("2024-03-01", "45")],
            None,
            None,
        ),
    ]);
    let put = kpid
        .records()
        .await
        .put_records(pb::PutRecordsRequest { records })
        .await
        .expect("PutRecords")
        .into_inner();
    assert!(put.rejected.is_empty(), "rejected: {:?}", put.rejected);
    let mut c = kpid.metrics().await;
    let month = |metric: &str| series(q1(metric), pb::Granularity::Month, "");

    expect(
        &mut c,
        q1("revenue.reactivation_mrr"),
        &[is("120", &[("reactivation_mrr", "120")])],
    )
    .await;
    // b1 0 + b2 60 + c1 70: a2 is not new MRR.
    expect(
        &mut c,
        q1("revenue.new_mrr"),
        &[is("130", &[("new_mrr", "130")])],
    )
    .await;
    expect(
        &mut c,
        q1("revenue.expansion_mrr"),
        &[is("85", &[("expansion_mrr", "85")])],
    )
    .await;
    // 130 + 85 + 120 − 20 − 130 = 185 = 315 − 130.
    expect(
        &mut c,
        q1("revenue.net_new_mrr"),
        &[is(
            "185",
            &[
                ("new_mrr", "130"),
                ("expansion_mrr", "85"),
                ("reactivation_mrr", "120"),
                ("contraction_mrr", "20"),
                ("churned_mrr", "130"),
            ],
        )],
    )
    .await;
    expect(&mut c, q1("revenue.mrr"), &[is("315", &[("mrr", "315")])]).await;
    expect(
        &mut c,
        month("revenue.reactivation_mrr"),
        &[
            is("0", &[("reactivation_mrr", "0")]).bucket("2024-01-01"),
            is("120", &[("reactivation_mrr", "120")]).bucket("2024-02-01"),
            is("0", &[("reactivation_mrr", "0")]).bucket("2024-03-01"),
        ],
    )
    .await;
    // January 30 − 130 = −100; February 210 − 30 = 180; March 315 − 210 = 105.
    expect(
        &mut c,
        month("revenue.net_new_mrr"),
        &[
            is(
                "-100",
                &[
                    ("new_mrr", "0"),
                    ("expansion_mrr", "0"),
                    ("reactivation_mrr", "0"),
                    ("contraction_mrr", "0"),
                    ("churned_mrr", "100"),
                ],
            )
            .bucket("2024-01-01"),
            is(
                "180",
                &[
                    ("new_mrr", "60"),
                    ("expansion_mrr", "0"),
                    ("reactivation_mrr", "120"),
                    ("contraction_mrr", "0"),
                    ("churned_mrr", "0"),
                ],
            )
            .bucket("2024-02-01"),
            is(
                "105",
                &[
                    ("new_mrr", "70"),
                    ("expansion_mrr", "85"),
                    ("reactivation_mrr", "0"),
                    ("contraction_mrr", "20"),
                    ("churned_mrr", "30"),
                ],
            )
            .bucket("2024-03-01"),
        ],
    )
    .await;
}

#[tokio::test]
async fn groups_filters_and_ungrouped_answers() {
    let (_kpid, mut c) = loaded().await;

    // group_by owner. olga: d1, d3 won; pete: d2, d8 won, d4 lost → 66.666…; quinn
    // closed nothing in W (inputs all 0: no row).
    expect(
        &mut c,
        group_by(q1("sales.win_rate"), &["owner"]),
        &[
            is("100", &[("won", "2"), ("lost", "0")]).group("owner", "olga"),
            is("66.67", &[("won", "2"), ("lost", "1")]).group("owner", "pete"),
        ],
    )
    .await;
    // Quotas by owner: olga 1500 of 3000; pete 2600 of 5200 (half of q2); quinn 0 of
    // 2050 (a quota but no sale: a row of 0).
    expect(
        &mut c,
        group_by(q1("sales.quota_attainment"), &["owner"]),
        &[
            is("50", &[("won_amount", "1500"), ("quota", "3000")]).group("owner", "olga"),
            is("50", &[("won_amount", "2600"), ("quota", "5200")]).group("owner", "pete"),
            is("0", &[("won_amount", "0"), ("quota", "2050")]).group("owner", "quinn"),
        ],
    )
    .await;
    // group_by source. Leads in W: marketing l1 (converted), l3; partner l7; referral
    // l4 (converted); sales l2 (converts at end: not before it).
    expect(
        &mut c,
        group_by(q1("sales.lead_conversion_rate"), &["source"]),
        &[
            is("50", &[("converted", "1"), ("leads", "2")]).group("source", "marketing"),
            is("0", &[("converted", "0"), ("leads", "1")]).group("source", "partner"),
            is("100", &[("converted", "1"), ("leads", "1")]).group("source", "referral"),
            is("0", &[("converted", "0"), ("leads", "1")]).group("source", "sales"),
        ],
    )
    .await;
    // Churn by source: marketing at start c1 (kept); sales c2, c6 (both lost);
    // referral (c4) and partner have nobody at start: no rows.
    expect(
        &mut c,
        group_by(q1("success.churn_rate"), &["source"]),
        &[
            is("0", &[("lost", "0"), ("at_start", "1")]).group("source", "marketing"),
            is("100", &[("lost", "2"), ("at_start", "2")]).group("source", "sales"),
        ],
    )
    .await;
    // NPS (scale 10) by the responding customer's source: marketing v1, v2, v10, v11
    // (all promoters); referral v4 (6: detractor); sales v3 8, v12 6.5 (passives).
    // v5 has no customer, so no source.
    expect(
        &mut c,
        group_by(q1("success.nps"), &["source"]),
        &[
            is(
                "100",
                &[("promoters", "4"), ("detractors", "0"), ("responses", "4")],
            )
            .group("source", "marketing"),
            is(
                "-100",
                &[("promoters", "0"), ("detractors", "1"), ("responses", "1")],
            )
            .group("source", "referral"),
            is(
                "0",
                &[("promoters", "0"), ("detractors", "0"), ("responses", "2")],
            )
            .group("source", "sales"),
        ],
    )
    .await;
    // group_by segment: MRR at end of smb customers c1 (150 + 30) and c3 (50); of
    // enterprise c8 (80).
    expect(
        &mut c,
        group_by(q1("revenue.mrr"), &["segment"]),
        &[
            is("80", &[("mrr", "80")]).group("segment", "enterprise"),
            is("230", &[("mrr", "230")]).group("segment", "smb"),
        ],
    )
    .await;
    // group_by channel: email spend x3 500 for c3 (camp-mail) and c8 (camp-news); paid
    // spend x1 3000 acquired nobody.
    expect(
        &mut c,
        group_by(q1("marketing.cac"), &["channel"]),
        &[
            is("250", &[("spend", "500"), ("new_customers", "2")]).group("channel", "email"),
            undefined(
                "new_customers = 0",
                &[("spend", "3000"), ("new_customers", "0")],
            )
            .group("channel", "paid"),
        ],
    )
    .await;
    // Explicit group_by stage and campaign give the default groups of the catalogue test.
    for (metric, dimension) in [
        ("sales.stage_duration_days", "stage"),
        ("marketing.campaign_roi", "campaign"),
    ] {
        let default = compute(&mut c, q1(metric)).await;
        let explicit = compute(&mut c, group_by(q1(metric), &[dimension])).await;
        assert_eq!(explicit, default, "{metric} by {dimension}");
        assert!(explicit.iter().all(|r| r.group.contains_key(dimension)));
    }
    // group_by ["none"] turns the default groups off: one row over everything.
    // Stage exits 9 + 10 + 12 + 20 = 51 days over 4.
    expect(
        &mut c,
        group_by(q1("sales.stage_duration_days"), &["none"]),
        &[is(
            "12.75",
            &[("stage_days_total", "51"), ("stage_exits", "4")],
        )],
    )
    .await;
    // Tickets resolved in W: 24 + 16 + 48 = 88 h over 3 = 29.333….
    expect(
        &mut c,
        group_by(q1("success.avg_resolution_hours"), &["none"]),
        &[is(
            "29.33",
            &[("resolution_hours_total", "88"), ("resolved", "3")],
        )],
    )
    .await;
    // Campaign revenue 1000 + 500 + 100 = 1600 against campaign spend 3000 + 500 = 3500:
    // −1900 / 3500 = −54.2857… %.
    expect(
        &mut c,
        group_by(q1("marketing.campaign_roi"), &["none"]),
        &[is(
            "-54.29",
            &[("attributed_revenue", "1600"), ("campaign_spend", "3500")],
        )],
    )
    .await;
    expect(
        &mut c,
        group_by(q1("success.avg_resolution_hours"), &["agent"]),
        &[
            is("20", &[("resolution_hours_total", "40"), ("resolved", "2")]).group("agent", "ann"),
            is("48", &[("resolution_hours_total", "48"), ("resolved", "1")]).group("agent", "ben"),
        ],
    )
    .await;

    // Filters. olga's deals: d3 upsold c1; olga's customers active in W: c1, c3.
    expect(
        &mut c,
        filters(q1("sales.upsell_rate"), &[("owner", "olga")]),
        &[is("50", &[("upsold", "1"), ("customers", "2")])],
    )
    .await;
    // ben's tickets first answered in W: t3 1.5 h, t4 3 h.
    expect(
        &mut c,
        filters(q1("success.first_response_hours"), &[("agent", "ben")]),
        &[is(
            "2.25",
            &[("response_hours_total", "4.5"), ("responded", "2")],
        )],
    )
    .await;
    // camp-news: d8 only.
    expect(
        &mut c,
        filters(q1("marketing.email_revenue"), &[("campaign", "camp-news")]),
        &[is("100", &[("attributed_revenue", "100")])],
    )
    .await;
    // camp-mail's leads in W: l1, converted.
    expect(
        &mut c,
        filters(
            q1("sales.lead_conversion_rate"),
            &[("campaign", "camp-mail")],
        ),
        &[is("100", &[("converted", "1"), ("leads", "1")])],
    )
    .await;
    // olga's customers (c1, c3, c5, c7): new MRR s3 50 (s4 is expansion).
    expect(
        &mut c,
        filters(q1("revenue.new_mrr"), &[("owner", "olga")]),
        &[is("50", &[("new_mrr", "50")])],
    )
    .await;
    // A filter and the default stage groups together: pete's exits are d2's
    // negotiation (9) and qualification (12), d4's qualification (20); no proposal.
    expect(
        &mut c,
        filters(q1("sales.stage_duration_days"), &[("owner", "pete")]),
        &[
            is("9", &[("stage_days_total", "9"), ("stage_exits", "1")])
                .group("stage", "negotiation"),
            is("16", &[("stage_days_total", "32"), ("stage_exits", "2")])
                .group("stage", "qualification"),
        ],
    )
    .await;
    // A filter value no record has: every input 0, win rate undefined.
    expect(
        &mut c,
        filters(q1("sales.win_rate"), &[("owner", "nobody")]),
        &[undefined("won + lost = 0", &[("won", "0"), ("lost", "0")])],
    )
    .await;
}

#[tokio::test]
async fn params_change_answers() {
    let (_kpid, mut c) = loaded().await;
    // NPS on scale 5: promoters v7 (5); detractors v8 (2), v13 (1); passive v9 (3).
    // (1 − 2) / 4 = −25.
    expect(
        &mut c,
        params(q1("success.nps"), &[("scale", "5")]),
        &[is(
            "-25",
            &[("promoters", "1"), ("detractors", "2"), ("responses", "4")],
        )],
    )
    .await;
    // CSAT on scale 10, threshold 6: w6 8, w7 6, w9 10 of w6..w9.
    expect(
        &mut c,
        params(q1("success.csat"), &[("scale", "10"), ("threshold", "6")]),
        &[is("75", &[("positive", "3"), ("responses", "4")])],
    )
    .await;
    // Threshold 8 on scale 10: w6, w9.
    expect(
        &mut c,
        params(q1("success.csat"), &[("scale", "10"), ("threshold", "8")]),
        &[is("50", &[("positive", "2"), ("responses", "4")])],
    )
    .await;
    // Scale 5, threshold 3: w1, w2, w3 of 5.
    expect(
        &mut c,
        params(q1("success.csat"), &[("threshold", "3")]),
        &[is("60", &[("positive", "3"), ("responses", "5")])],
    )
    .await;
    // gross_margin 0.5: 1800 / (60 × 0.5).
    expect(
        &mut c,
        params(
            q1("marketing.cac_payback_months"),
            &[("gross_margin", "0.5")],
        ),
        &[is("60", &[("cac", "1800"), ("new_customer_mrr", "60")])],
    )
    .await;
    // lifespan_years 3: 390 × 3 / (3 × 0.25).
    expect(
        &mut c,
        params(q1("marketing.clv"), &[("lifespan_years", "3")]),
        &[is(
            "1560",
            &[
                ("revenue", "390"),
                ("purchases", "4"),
                ("customers", "3"),
                ("years", "0.25"),
                ("lifespan_years", "3"),
            ],
        )],
    )
    .await;
    // gross_margin 0.5, retention_years 10: 390 × 0.5 / 1.5 = 130 a year; × 10 − 1800.
    expect(
        &mut c,
        params(
            q1("marketing.clv_net"),
            &[("gross_margin", "0.5"), ("retention_years", "10")],
        ),
        &[is(
            "-500",
            &[
                ("annual_profit_per_customer", "130"),
                ("retention_years", "10"),
                ("cac", "1800"),
            ],
        )],
    )
    .await;
    // Categories advertising and tools: x1 3000 + x3 500 + x4 400 = 3900 / 3.
    expect(
        &mut c,
        params(q1("marketing.cac"), &[("categories", "advertising,tools")]),
        &[is("1300", &[("spend", "3900"), ("new_customers", "3")])],
    )
    .await;
    // Basis revenue: new customers' revenue 3810, of which marketing-sourced (c3)
    // 1000 + 100 + 170 = 1270: exactly a third.
    expect(
        &mut c,
        params(
            q1("marketing.marketing_sourced_pct"),
            &[("basis", "revenue")],
        ),
        &[is(
            "33.33",
            &[("from_marketing", "1270"), ("new_customers", "3810")],
        )],
    )
    .await;
    // clv = clv_net: −1540 / 1800 = −0.8555… → −0.86.
    expect(
        &mut c,
        params(q1("marketing.clv_cac_ratio"), &[("clv", "clv_net")]),
        &[is("-0.86", &[("clv", "-1540"), ("cac", "1800")])],
    )
    .await;
    // Precision: 2 / 3 × 100 = 66.666….
    expect(
        &mut c,
        params(q1("success.churn_rate"), &[("precision", "4")]),
        &[is("66.6667", &[("lost", "2"), ("at_start", "3")])],
    )
    .await;
    expect(
        &mut c,
        params(q1("success.churn_rate"), &[("precision", "0")]),
        &[is("67", &[("lost", "2"), ("at_start", "3")])],
    )
    .await;
    // A CSAT threshold above the scale is a bad parameter.
    let status = c
        .compute(params(
            q1("success.csat"),
            &[("scale", "5"), ("threshold", "6")],
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let bad = status.get_details_bad_request().expect("BadRequest");
    assert_eq!(bad.field_violations[0].field, "params[threshold]");
}

#[tokio::test]
async fn time_series_by_month_and_week() {
    let (_kpid, mut c) = loaded().await;
    let month = |metric: &str| series(q1(metric), pb::Granularity::Month, "");
    // Leads by month: January l1; February l2, l7; March l3, l4.
    expect(
        &mut c,
        month("sales.leads_created"),
        &[
            is("1", &[("leads", "1")]).bucket("2024-01-01"),
            is("2", &[("leads", "2")]).bucket("2024-02-01"),
            is("2", &[("leads", "2")]).bucket("2024-03-01"),
        ],
    )
    .await;
    // MRR at each month's end. 02-01: s1 100 (its change is at 02-01, not before it),
    // s2 120, s3 50. 03-01: s1 150, s3 50, s5 50 (s4 starts at 03-01, not before it).
    // 04-01: 310.
    expect(
        &mut c,
        month("revenue.mrr"),
        &[
            is("270", &[("mrr", "270")]).bucket("2024-01-01"),
            is("250", &[("mrr", "250")]).bucket("2024-02-01"),
            is("310", &[("mrr", "310")]).bucket("2024-03-01"),
        ],
    )
    .await;
    // Movements by month. January: new s3 50, contraction s2 80, churned s6 100 (400 →
    // 270). February: new s5 50, expansion s1 50, churned s2 120 (270 → 250). March: new
    // s7 80, expansion s4 30, churned s5 50 (250 → 310).
    expect(
        &mut c,
        month("revenue.net_new_mrr"),
        &[
            is(
                "-130",
                &[
                    ("new_mrr", "50"),
                    ("expansion_mrr", "0"),
                    ("reactivation_mrr", "0"),
                    ("contraction_mrr", "80"),
                    ("churned_mrr", "100"),
                ],
            )
            .bucket("2024-01-01"),
            is(
                "-20",
                &[
                    ("new_mrr", "50"),
                    ("expansion_mrr", "50"),
                    ("reactivation_mrr", "0"),
                    ("contraction_mrr", "0"),
                    ("churned_mrr", "120"),
                ],
            )
            .bucket("2024-02-01"),
            is(
                "60",
                &[
                    ("new_mrr", "80"),
                    ("expansion_mrr", "30"),
                    ("reactivation_mrr", "0"),
                    ("contraction_mrr", "0"),
                    ("churned_mrr", "50"),
                ],
            )
            .bucket("2024-03-01"),
        ],
    )
    .await;
    // Email campaigns by month: camp-mail in January (25 %), none in February
    // (undefined), camp-news in March (30 %).
    expect(
        &mut c,
        month("marketing.email_open_rate"),
        &[
            is("25", &[("opens", "250"), ("delivered", "1000")]).bucket("2024-01-01"),
            undefined("delivered = 0", &[("opens", "0"), ("delivered", "0")]).bucket("2024-02-01"),
            is("30", &[("opens", "150"), ("delivered", "500")]).bucket("2024-03-01"),
        ],
    )
    .await;
    // Each bucket is one calendar month: MRR at its end + its purchases / 1.
    expect(
        &mut c,
        month("revenue.total_monthly_revenue"),
        &[
            is(
                "370",
                &[("mrr", "270"), ("non_recurring", "100"), ("months", "1")],
            )
            .bucket("2024-01-01"),
            is(
                "420",
                &[("mrr", "250"), ("non_recurring", "170"), ("months", "1")],
            )
            .bucket("2024-02-01"),
            is(
                "430",
                &[("mrr", "310"), ("non_recurring", "120"), ("months", "1")],
            )
            .bucket("2024-03-01"),
        ],
    )
    .await;
    // CES by month: e1 6; e3 4.5; e2 3.
    expect(
        &mut c,
        month("success.ces"),
        &[
            is("6", &[("score_total", "6"), ("responses", "1")]).bucket("2024-01-01"),
            is("4.5", &[("score_total", "4.5"), ("responses", "1")]).bucket("2024-02-01"),
            is("3", &[("score_total", "3"), ("responses", "1")]).bucket("2024-03-01"),
        ],
    )
    .await;
    // Buckets × default groups (agent): January ann (t1, t2); February ben (t4); March
    // nothing resolved (t3 resolves at the window's end). Empty cells have no row.
    expect(
        &mut c,
        month("success.avg_resolution_hours"),
        &[
            is("20", &[("resolution_hours_total", "40"), ("resolved", "2")])
                .bucket("2024-01-01")
                .group("agent", "ann"),
            is("48", &[("resolution_hours_total", "48"), ("resolved", "1")])
                .bucket("2024-02-01")
                .group("agent", "ben"),
        ],
    )
    .await;
    // Weeks start on Monday. The window runs Wednesday 2024-02-07 to Wednesday
    // 2024-03-06: the first and last weeks are clipped. l2 (Saturday 02-10) is in the
    // first; l7 (exactly Monday 02-12 00:00) starts the second; l3 (Friday 03-01) is in
    // the fourth.
    expect(
        &mut c,
        series(
            over("sales.leads_created", "2024-02-07", "2024-03-06"),
            pb::Granularity::Week,
            "",
        ),
        &[
            is("1", &[("leads", "1")]).bucket("2024-02-07"),
            is("1", &[("leads", "1")]).bucket("2024-02-12"),
            is("0", &[("leads", "0")]).bucket("2024-02-19"),
            is("1", &[("leads", "1")]).bucket("2024-02-26"),
            is("0", &[("leads", "0")]).bucket("2024-03-04"),
        ],
    )
    .await;
}

/// months of a day of `hours` hours: hours / 24 × 12 / 365, compared to 20 places (the
/// server divides in 28 significant digits).
fn assert_months(row: &pb::Row, hours: i64) {
    let months = Decimal::from_str(&row.inputs["months"]).unwrap();
    let want = Decimal::from(hours) / Decimal::from(730);
    assert_eq!(
        months.round_dp(20),
        want.round_dp(20),
        "a {hours}-hour day: {row:?}"
    );
}

#[tokio::test]
async fn day_buckets_follow_daylight_saving_time() {
    let (_kpid, mut c) = loaded().await;
    // Europe/Paris moves to summer time on Sunday 2023-03-26 at 01:00 UTC: that day
    // lasts 23 hours, from 2023-03-25T23:00Z (midnight CET) to 2023-03-26T22:00Z
    // (midnight CEST). The window is Paris's 26 and 27 March.
    let spring = series(
        over(
            "revenue.total_monthly_revenue",
            "2023-03-25T23:00:00Z",
            "2023-03-27T22:00:00Z",
        ),
        pb::Granularity::Day,
        "Europe/Paris",
    );
    let rows = compute(&mut c, spring).await;
    // Day 1 (23 h): p7 10 (00:30 local, 23:30 UTC the day before) + p8 13 (23:30
    // local) = 23; months = 23/24 × 12/365 = 23/730, so 23 / months = 730. MRR at its
    // end: s6 100. 100 + 730 = 830.
    // Day 2 (24 h): p9 24 (exactly local midnight); months = 12/365; 24 / months = 730.
    // p10 sits exactly at the window's end: out.
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        bucket_text(&rows[0].bucket_start).as_deref(),
        Some("2023-03-25T23:00:00Z")
    );
    assert_eq!(
        bucket_text(&rows[1].bucket_start).as_deref(),
        Some("2023-03-26T22:00:00Z")
    );
    for (row, hours, purchases) in [(&rows[0], 23, "23"), (&rows[1], 24, "24")] {
        assert_eq!(row.value, "830", "{row:?}");
        assert_eq!(row.inputs["mrr"], "100");
        assert_eq!(row.inputs["non_recurring"], purchases);
        assert_months(row, hours);
    }
    // Paris returns to winter time on Sunday 2023-10-29 at 01:00 UTC: that day lasts 25
    // hours, from 2023-10-28T22:00Z to 2023-10-29T23:00Z.
    let autumn = series(
        over(
            "revenue.total_monthly_revenue",
            "2023-10-28T22:00:00Z",
            "2023-10-30T23:00:00Z",
        ),
        pb::Granularity::Day,
        "Europe/Paris",
    );
    let rows = compute(&mut c, autumn).await;
    // Day 1 (25 h): p11 15 (exactly at its start) + p12 10 (23:59:59 local) = 25;
    // 25 / (25/730) = 730. MRR: s1 100 + s2 200 + s6 100 = 400. Day 2 (24 h): p13 24
    // (exactly local midnight) → 730. p14 at the window's end is out.
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        bucket_text(&rows[0].bucket_start).as_deref(),
        Some("2023-10-28T22:00:00Z")
    );
    assert_eq!(
        bucket_text(&rows[1].bucket_start).as_deref(),
        Some("2023-10-29T23:00:00Z")
    );
    for (row, hours, purchases) in [(&rows[0], 25, "25"), (&rows[1], 24, "24")] {
        assert_eq!(row.value, "1130", "{row:?}");
        assert_eq!(row.inputs["mrr"], "400");
        assert_eq!(row.inputs["non_recurring"], purchases);
        assert_months(row, hours);
    }
    // The same spring window cut in UTC: a 1-hour day (p7), the whole of 26 March UTC
    // (p8 + p9 = 37) and 22 hours of the 27th (nothing).
    let rows = compute(
        &mut c,
        series(
            over(
                "revenue.total_monthly_revenue",
                "2023-03-25T23:00:00Z",
                "2023-03-27T22:00:00Z",
            ),
            pb::Granularity::Day,
            "UTC",
        ),
    )
    .await;
    let starts: Vec<Option<String>> = rows.iter().map(|r| bucket_text(&r.bucket_start)).collect();
    assert_eq!(
        starts,
        [
            Some("2023-03-25T23:00:00Z".to_owned()),
            Some("2023-03-26T00:00:00Z".to_owned()),
            Some("2023-03-27T00:00:00Z".to_owned()),
        ]
    );
    let non_recurring: Vec<&str> = rows
        .iter()
        .map(|r| r.inputs["non_recurring"].as_str())
        .collect();
    assert_eq!(non_recurring, ["10", "37", "0"]);
    // 1 hour: months 1/730, 10 × 730 = 7300 + 100.
    assert_eq!(rows[0].value, "7400");
    assert_months(&rows[0], 1);
}

#[tokio::test]
async fn window_edges_empty_windows_and_zero_denominators() {
    let (_kpid, mut c) = loaded().await;
    // Start-inclusive, end-exclusive: d6 closes exactly at 2024-04-01, so it is in the
    // second quarter, not the first (whose 4100 includes d1, closed exactly at its
    // start); d1 is not in December's window, which ends where it closes (d7 is).
    expect(
        &mut c,
        over("sales.revenue", "2024-04-01", "2024-07-01"),
        &[is("700", &[("won_amount", "700")])],
    )
    .await;
    expect(
        &mut c,
        over("sales.revenue", "2023-12-01", "2024-01-01"),
        &[is("400", &[("won_amount", "400")])],
    )
    .await;
    // A customer acquired exactly at the start is acquired in the window, not active at
    // its start. January: at start c1, c2, c6 (not c3); lost c6 (churned exactly at
    // start). At 02-01: c1, c2 (churns 02-15), c3; new and kept: c3.
    expect(
        &mut c,
        over("success.churn_rate", "2024-01-01", "2024-02-01"),
        &[is("33.33", &[("lost", "1"), ("at_start", "3")])],
    )
    .await;
    expect(
        &mut c,
        over("success.retention_rate", "2024-01-01", "2024-02-01"),
        &[is(
            "66.67",
            &[("at_end", "3"), ("new_retained", "1"), ("at_start", "3")],
        )],
    )
    .await;
    // January's CAC: x1 3000 for c3.
    expect(
        &mut c,
        over("marketing.cac", "2024-01-01", "2024-02-01"),
        &[is("3000", &[("spend", "3000"), ("new_customers", "1")])],
    )
    .await;

    // Empty window [02-01, 02-01): nothing is in it.
    let empty = |metric: &str| over(metric, "2024-02-01", "2024-02-01");
    expect(
        &mut c,
        empty("sales.revenue"),
        &[is("0", &[("won_amount", "0")])],
    )
    .await;
    expect(
        &mut c,
        empty("sales.win_rate"),
        &[undefined(
            "no deals were closed (won + lost = 0)",
            &[("won", "0"), ("lost", "0")],
        )],
    )
    .await;
    // MRR at 02-01 is 270; an empty window lasts 0 months.
    expect(
        &mut c,
        empty("revenue.total_monthly_revenue"),
        &[undefined(
            "months = 0",
            &[("mrr", "270"), ("non_recurring", "0"), ("months", "0")],
        )],
    )
    .await;
    // CLV cannot spread revenue over 0 years: the input is undefined, the row carries
    // no inputs (none was given explicitly).
    expect(
        &mut c,
        empty("marketing.clv"),
        &[undefined("years is undefined: the window is empty", &[])],
    )
    .await;
    // An empty window has no buckets.
    let rows = compute(
        &mut c,
        series(empty("sales.revenue"), pb::Granularity::Month, ""),
    )
    .await;
    assert!(rows.is_empty(), "{rows:?}");

    // Zero denominators are undefined with a reason, never 0 and never an error.
    expect(
        &mut c,
        over("sales.win_rate", "2025-01-01", "2025-02-01"),
        &[undefined("won + lost = 0", &[("won", "0"), ("lost", "0")])],
    )
    .await;
    expect(
        &mut c,
        over("revenue.arpa", "2020-01-01", "2020-02-01"),
        &[undefined(
            "paying_customers = 0",
            &[("mrr", "0"), ("paying_customers", "0")],
        )],
    )
    .await;
    // Before anyone churned (c5 churns 2023-01-01) there is no tenure to average.
    expect(
        &mut c,
        over("marketing.clv", "2022-06-01", "2022-12-01"),
        &[undefined(
            "lifespan_years is undefined: no customer has churned before the window's end",
            &[],
        )],
    )
    .await;
}

#[tokio::test]
async fn explicit_inputs_replace_stored_ones() {
    let (_kpid, mut c) = loaded().await;
    // won comes from the store (4), lost is given (16): 4 / 20.
    expect(
        &mut c,
        inputs(q1("sales.win_rate"), &[("lost", "16")]),
        &[is("20", &[("won", "4"), ("lost", "16")])],
    )
    .await;
    // 9000 given / 3 stored.
    expect(
        &mut c,
        inputs(q1("marketing.cac"), &[("spend", "9000")]),
        &[is("3000", &[("spend", "9000"), ("new_customers", "3")])],
    )
    .await;
    // A derived metric: clv read through marketing.clv (520), cac given: 520 / 260.
    expect(
        &mut c,
        inputs(q1("marketing.clv_cac_ratio"), &[("cac", "260")]),
        &[is("2", &[("clv", "520"), ("cac", "260")])],
    )
    .await;
    // months given: 310 + 390 / 1.
    expect(
        &mut c,
        inputs(q1("revenue.total_monthly_revenue"), &[("months", "1")]),
        &[is(
            "700",
            &[("mrr", "310"), ("non_recurring", "390"), ("months", "1")],
        )],
    )
    .await;
    // Explicit inputs apply to every group: each agent's resolved count is 4.
    expect(
        &mut c,
        inputs(q1("success.avg_resolution_hours"), &[("resolved", "4")]),
        &[
            is("10", &[("resolution_hours_total", "40"), ("resolved", "4")]).group("agent", "ann"),
            is("12", &[("resolution_hours_total", "48"), ("resolved", "4")]).group("agent", "ben"),
        ],
    )
    .await;
}

#[tokio::test]
async fn upserts_and_deletes_change_answers() {
    let (kpid, mut c) = loaded().await;
    let mut records = kpid.records().await;
    expect(
        &mut c,
        q1("sales.win_rate"),
        &[is("80", &[("won", "4"), ("lost", "1")])],
    )
    .await;
    // d5 is won on 2024-03-20 (same id: the open version is replaced). 5 / 6.
    let put = records
        .put_records(pb::PutRecordsRequest {
            records: vec![deal(D {
                id: "d5",
                owner: "quinn",
                customer: None,
                campaign: None,
                status: pb::DealStatus::Won,
                kind: pb::DealKind::NewBusiness,
                amount: "300",
                created: "2024-03-15",
                closed: Some("2024-03-20"),
                stages: &[("qualification", "2024-03-15")],
            })],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(put.accepted, 1);
    expect(
        &mut c,
        q1("sales.win_rate"),
        &[is("83.33", &[("won", "5"), ("lost", "1")])],
    )
    .await;
    expect(
        &mut c,
        q1("sales.revenue"),
        &[is("4400", &[("won_amount", "4400")])],
    )
    .await;
    // Reps: olga, pete and now quinn. 4400 / 3 = 1466.666….
    expect(
        &mut c,
        q1("sales.revenue_per_rep"),
        &[is("1466.67", &[("won_amount", "4400"), ("reps", "3")])],
    )
    .await;
    // Deleting d4, the only lost deal: 5 / 5.
    let deleted = records
        .delete_records(pb::DeleteRecordsRequest {
            keys: vec![pb::RecordKey {
                kind: "deal".into(),
                id: "d4".into(),
            }],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.deleted, 1);
    expect(
        &mut c,
        q1("sales.win_rate"),
        &[is("100", &[("won", "5"), ("lost", "0")])],
    )
    .await;
    // c4 becomes marketing-sourced: all three new customers are.
    records
        .put_records(pb::PutRecordsRequest {
            records: vec![customer(
                "c4",
                "2024-02-10",
                Some("2024-03-20"),
                pb::Source::Marketing,
                None,
                Some("smb"),
                Some("pete"),
            )],
        })
        .await
        .unwrap();
    expect(
        &mut c,
        q1("marketing.marketing_sourced_pct"),
        &[is(
            "100",
            &[("from_marketing", "3"), ("new_customers", "3")],
        )],
    )
    .await;
    // Deleting p2 leaves c3 with one purchase: no repeat buyer. Revenue 390 − 170.
    records
        .delete_records(pb::DeleteRecordsRequest {
            keys: vec![pb::RecordKey {
                kind: "purchase".into(),
                id: "p2".into(),
            }],
        })
        .await
        .unwrap();
    expect(
        &mut c,
        q1("success.repeat_customer_rate"),
        &[is("0", &[("repeat", "0"), ("buyers", "3")])],
    )
    .await;
    // 310 + 220 / 3 = 383.333….
    expect(
        &mut c,
        q1("revenue.total_monthly_revenue"),
        &[is(
            "383.33",
            &[("mrr", "310"), ("non_recurring", "220"), ("months", "3")],
        )],
    )
    .await;
}

#[tokio::test]
async fn batch_compute_equals_single_computes() {
    let (_kpid, mut c) = loaded().await;
    let table = first_quarter();
    let batch = c
        .batch_compute(pb::BatchComputeRequest {
            start: t("2024-01-01"),
            end: t("2024-04-01"),
            metrics: table
                .iter()
                .map(|(id, _)| pb::BatchComputeMetric {
                    metric_id: (*id).into(),
                    ..Default::default()
                })
                .chain(std::iter::once(pb::BatchComputeMetric {
                    metric_id: "success.nps".into(),
                    params: pairs(&[("scale", "5")]).into_iter().collect(),
                    ..Default::default()
                }))
                .collect(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(batch.results.len(), table.len() + 1);
    for (result, (id, want)) in batch.results.iter().zip(&table) {
        assert_eq!(result.metric_id, *id);
        assert!(result.error.is_none(), "{id}: {:?}", result.error);
        let single = compute(&mut c, q1(id)).await;
        assert_eq!(result.rows, single, "{id}: batch and single answers differ");
        check(&format!("{id} (batch)"), &result.rows, want);
    }
    // The same metric twice with different params: each answer is its own.
    let nps5 = &batch.results[table.len()];
    assert_eq!(nps5.metric_id, "success.nps");
    check(
        "success.nps scale 5 (batch)",
        &nps5.rows,
        &[is(
            "-25",
            &[("promoters", "1"), ("detractors", "2"), ("responses", "4")],
        )],
    );
}

#[tokio::test]
async fn bad_time_zone_and_unsupported_dimension_are_invalid_argument() {
    let (_kpid, mut c) = loaded().await;
    let violation = |status: tonic::Status| {
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        let bad = status.get_details_bad_request().expect("BadRequest");
        bad.field_violations
            .iter()
            .map(|v| v.field.clone())
            .collect::<Vec<_>>()
    };
    let mut r = series(
        q1("sales.win_rate"),
        pb::Granularity::Day,
        "Mars/Olympus_Mons",
    );
    let status = c.compute(r.clone()).await.unwrap_err();
    assert_eq!(violation(status), ["time_zone"]);
    r.time_zone = "Europe/Paris".into();
    compute(&mut c, r).await;
    // Win rate reads deals: tickets' agent is not one of its dimensions.
    let status = c
        .compute(group_by(q1("sales.win_rate"), &["agent"]))
        .await
        .unwrap_err();
    assert_eq!(violation(status), ["group_by[0]"]);
    // Revenue metrics cannot be filtered by stage.
    let status = c
        .compute(filters(q1("revenue.mrr"), &[("stage", "demo")]))
        .await
        .unwrap_err();
    assert_eq!(violation(status), ["filters[stage]"]);
    // A dimension kpid does not know at all.
    let status = c
        .compute(group_by(q1("sales.win_rate"), &["planet"]))
        .await
        .unwrap_err();
    assert_eq!(violation(status), ["group_by[0]"]);
    // The same in a batch: the shared shape fails the whole call.
    let status = c
        .batch_compute(pb::BatchComputeRequest {
            start: t("2024-01-01"),
            end: t("2024-04-01"),
            time_zone: "Nowhere/Atlantis".into(),
            metrics: vec![pb::BatchComputeMetric {
                metric_id: "sales.revenue".into(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violation(status), ["time_zone"]);
}

/// Activities per rep and by type, filtered to one type, and the dimensions activities do
/// not carry.
#[tokio::test]
async fn activities_by_owner_by_type_and_filtered() {
    let (_kpid, mut c) = loaded().await;
    // x6 has no owner: in no owner's row.
    expect(
        &mut c,
        group_by(q1("sales.activities"), &["owner"]),
        &[
            is("2", &[("activities", "2")]).group("owner", "ann"),
            is("1", &[("activities", "1")]).group("owner", "bob"),
        ],
    )
    .await;
    expect(
        &mut c,
        group_by(q1("sales.activities"), &["activity_type"]),
        &[
            is("3", &[("activities", "3")]).group("activity_type", "call"),
            is("1", &[("activities", "1")]).group("activity_type", "meeting"),
        ],
    )
    .await;
    // Meetings booked per rep: x1 (ann).
    expect(
        &mut c,
        group_by(
            filters(q1("sales.activities"), &[("activity_type", "meeting")]),
            &["owner"],
        ),
        &[is("1", &[("activities", "1")]).group("owner", "ann")],
    )
    .await;
    // Calls over February by month: x2 and x6.
    expect(
        &mut c,
        filters(
            over("sales.activities", "2024-02-01", "2024-03-01"),
            &[("activity_type", "call")],
        ),
        &[is("2", &[("activities", "2")])],
    )
    .await;
    // Activities carry no agent; deals carry no activity type.
    for (request, field) in [
        (group_by(q1("sales.activities"), &["agent"]), "group_by[0]"),
        (
            filters(q1("sales.win_rate"), &[("activity_type", "call")]),
            "filters[activity_type]",
        ),
    ] {
        let status = c.compute(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        let bad = status.get_details_bad_request().expect("BadRequest");
        assert_eq!(bad.field_violations[0].field, field, "{status:?}");
    }
}
