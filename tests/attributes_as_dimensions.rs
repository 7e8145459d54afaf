//! Custom attributes as dimensions, end to end: a small hand-built dataset with attributes
//! goes through `PutRecords` into the real kpid binary, and catalogue metrics are grouped
//! and filtered by `attr.<name>` (the metric's own record) and `customer.<name>` (its
//! customer). Every answer is worked out by hand below.
//!
//! The window is W = [2024-01-01, 2024-04-01) UTC.
//!
//! Customers (acquired; attributes region, plan, vip):
//! - c1 2023-06-01; EMEA, pro, vip true.
//! - c2 2024-01-10; AMER, starter, vip false.
//! - c3 2024-02-01; none at all.
//! - c4 2024-03-01; EMEA, starter.
//!
//! Deals (owner, customer, status, amount, closed; attributes):
//! - d1 olga c1 won 1000 01-15; region EMEA, seats 10.0 (a decimal: the value "10").
//! - d2 olga c2 won 500 02-10; region AMER.
//! - d3 pete c1 lost 800 02-20; region EMEA.
//! - d4 pete c3 lost 200 03-05; none.
//! - d5 pete c2 won 300 03-20; region EMEA, signed 2024-03-18T09:30:00Z (a time).
//! - d6 olga, no customer, lost 100 03-25; region AMER.
//!
//! Tickets (customer, agent, opened → resolved; priority): t1 c1 ann 01-10T00 → 01-10T10
//! (10 h) high; t2 c2 ann 02-01T00 → 02-02T00 (24 h) low; t3 c3 ben 03-01T00 → 03-01T04
//! (4 h) high.
//!
//! NPS responses on 10 (customer, score): v1 c1 10; v2 c2 9; v3 c4 3; v4 c3 7.
//!
//! Subscriptions (customer, started, MRR; term): s1 c1 2023-06-01 100 annual; s2 c2
//! 2024-01-10 50 monthly; s3 c4 2024-03-01 30, no term.
//!
//! Spend (at, amount; region): x1 01-05 1000 EMEA; x2 02-05 600 AMER.
//!
//! Leads (created, converted; form): l1 01-05 → 02-01 webinar; l2 02-10, not converted,
//! webinar; l3 03-01 → 03-10, no form.
//!
//! Activities (type, owner, customer, at; outcome): a1 call olga c1 01-20 booked; a2
//! meeting olga c2 02-20 booked; a3 call pete, no customer, 03-02, none.
//!
//! Quota: q1 quinn, all of W, 1000 (quinn owns no deal).

mod common;

use std::collections::BTreeMap;

use common::{record, serving, ts, Kpid};
use kpi_proto::kpi::v1 as pb;
use kpi_proto::kpi::v1::metrics_service_client::MetricsServiceClient;
use pb::attribute_value::Value;
use pb::record::Record as Kind;
use tonic::transport::Channel;
use tonic_types::StatusExt as _;

fn attrs(items: &[(&str, Value)]) -> BTreeMap<String, pb::AttributeValue> {
    items
        .iter()
        .map(|(name, value)| {
            (
                (*name).to_owned(),
                pb::AttributeValue {
                    value: Some(value.clone()),
                },
            )
        })
        .collect()
}

fn text(t: &str) -> Value {
    Value::Text(t.to_owned())
}

fn at(day: &str) -> Option<prost_types::Timestamp> {
    if day.contains('T') {
        ts(day)
    } else {
        ts(&format!("{day}T00:00:00Z"))
    }
}

fn customer(id: &str, acquired: &str, attributes: &[(&str, Value)]) -> pb::Record {
    record(Kind::Customer(pb::Customer {
        id: id.into(),
        acquired_at: at(acquired),
        source: pb::Source::Sales as i32,
        attributes: attrs(attributes),
        ..Default::default()
    }))
}

fn deal(
    id: &str,
    owner: &str,
    customer: Option<&str>,
    status: pb::DealStatus,
    amount: &str,
    closed: &str,
    attributes: &[(&str, Value)],
) -> pb::Record {
    record(Kind::Deal(pb::Deal {
        id: id.into(),
        owner: owner.into(),
        amount: amount.into(),
        created_at: at("2023-12-01"),
        closed_at: at(closed),
        status: status as i32,
        kind: pb::DealKind::NewBusiness as i32,
        customer_id: customer.map(str::to_owned),
        attributes: attrs(attributes),
        ..Default::default()
    }))
}

fn ticket(
    id: &str,
    customer: &str,
    agent: &str,
    opened: &str,
    resolved: &str,
    priority: &str,
) -> pb::Record {
    record(Kind::Ticket(pb::Ticket {
        id: id.into(),
        customer_id: Some(customer.into()),
        agent: agent.into(),
        opened_at: at(opened),
        first_response_at: at(opened),
        resolved_at: at(resolved),
        attributes: attrs(&[("priority", text(priority))]),
    }))
}

fn nps(id: &str, customer: &str, score: &str, day: &str) -> pb::Record {
    record(Kind::SurveyResponse(pb::SurveyResponse {
        id: id.into(),
        customer_id: Some(customer.into()),
        kind: pb::SurveyKind::Nps as i32,
        score: score.into(),
        scale_max: 10,
        at: at(day),
        ..Default::default()
    }))
}

fn subscription(
    id: &str,
    customer: &str,
    started: &str,
    mrr: &str,
    term: Option<&str>,
) -> pb::Record {
    let term: Vec<(&str, Value)> = term.map(|t| ("term", text(t))).into_iter().collect();
    record(Kind::Subscription(pb::Subscription {
        id: id.into(),
        customer_id: customer.into(),
        started_at: at(started),
        mrr_changes: vec![pb::MrrChange {
            at: at(started),
            mrr: mrr.into(),
        }],
        attributes: attrs(&term),
        ..Default::default()
    }))
}

fn spend(id: &str, day: &str, amount: &str, region: &str) -> pb::Record {
    record(Kind::Spend(pb::Spend {
        id: id.into(),
        at: at(day),
        amount: amount.into(),
        category: pb::SpendCategory::Advertising as i32,
        attributes: attrs(&[("region", text(region))]),
        ..Default::default()
    }))
}

fn lead(id: &str, created: &str, converted: Option<&str>, form: Option<&str>) -> pb::Record {
    let form: Vec<(&str, Value)> = form.map(|f| ("form", text(f))).into_iter().collect();
    record(Kind::Lead(pb::Lead {
        id: id.into(),
        created_at: at(created),
        source: pb::Source::Marketing as i32,
        converted_at: converted.and_then(at),
        attributes: attrs(&form),
        ..Default::default()
    }))
}

fn activity(
    id: &str,
    kind: &str,
    owner: &str,
    customer: Option<&str>,
    day: &str,
    outcome: Option<&str>,
) -> pb::Record {
    let outcome: Vec<(&str, Value)> = outcome.map(|o| ("outcome", text(o))).into_iter().collect();
    record(Kind::Activity(pb::Activity {
        id: id.into(),
        r#type: kind.into(),
        occurred_at: at(day),
        customer_id: customer.map(str::to_owned),
        owner: Some(owner.into()),
        attributes: attrs(&outcome),
        ..Default::default()
    }))
}

fn dataset() -> Vec<pb::Record> {
    use pb::DealStatus::{Lost, Won};
    vec![
        customer(
            "c1",
            "2023-06-01",
            &[
                ("region", text("EMEA")),
                ("plan", text("pro")),
                ("vip", Value::Flag(true)),
            ],
        ),
        customer(
            "c2",
            "2024-01-10",
            &[
                ("region", text("AMER")),
                ("plan", text("starter")),
                ("vip", Value::Flag(false)),
            ],
        ),
        customer("c3", "2024-02-01", &[]),
        customer(
            "c4",
            "2024-03-01",
            &[("region", text("EMEA")), ("plan", text("starter"))],
        ),
        deal(
            "d1",
            "olga",
            Some("c1"),
            Won,
            "1000",
            "2024-01-15",
            &[
                ("region", text("EMEA")),
                ("seats", Value::Decimal("10.0".into())),
            ],
        ),
        deal(
            "d2",
            "olga",
            Some("c2"),
            Won,
            "500",
            "2024-02-10",
            &[("region", text("AMER"))],
        ),
        deal(
            "d3",
            "pete",
            Some("c1"),
            Lost,
            "800",
            "2024-02-20",
            &[("region", text("EMEA"))],
        ),
        deal("d4", "pete", Some("c3"), Lost, "200", "2024-03-05", &[]),
        deal(
            "d5",
            "pete",
            Some("c2"),
            Won,
            "300",
            "2024-03-20",
            &[
                ("region", text("EMEA")),
                ("signed", Value::Time(ts("2024-03-18T09:30:00Z").unwrap())),
            ],
        ),
        deal(
            "d6",
            "olga",
            None,
            Lost,
            "100",
            "2024-03-25",
            &[("region", text("AMER"))],
        ),
        ticket(
            "t1",
            "c1",
            "ann",
            "2024-01-10",
            "2024-01-10T10:00:00Z",
            "high",
        ),
        ticket("t2", "c2", "ann", "2024-02-01", "2024-02-02", "low"),
        ticket(
            "t3",
            "c3",
            "ben",
            "2024-03-01",
            "2024-03-01T04:00:00Z",
            "high",
        ),
        nps("v1", "c1", "10", "2024-01-20"),
        nps("v2", "c2", "9", "2024-02-20"),
        nps("v3", "c4", "3", "2024-03-10"),
        nps("v4", "c3", "7", "2024-03-11"),
        subscription("s1", "c1", "2023-06-01", "100", Some("annual")),
        subscription("s2", "c2", "2024-01-10", "50", Some("monthly")),
        subscription("s3", "c4", "2024-03-01", "30", None),
        spend("x1", "2024-01-05", "1000", "EMEA"),
        spend("x2", "2024-02-05", "600", "AMER"),
        lead("l1", "2024-01-05", Some("2024-02-01"), Some("webinar")),
        lead("l2", "2024-02-10", None, Some("webinar")),
        lead("l3", "2024-03-01", Some("2024-03-10"), None),
        activity(
            "a1",
            "call",
            "olga",
            Some("c1"),
            "2024-01-20",
            Some("booked"),
        ),
        activity(
            "a2",
            "meeting",
            "olga",
            Some("c2"),
            "2024-02-20",
            Some("booked"),
        ),
        activity("a3", "call", "pete", None, "2024-03-02", None),
        record(Kind::Quota(pb::Quota {
            id: "q1".into(),
            owner: "quinn".into(),
            period_start: at("2024-01-01"),
            period_end: at("2024-04-01"),
            amount: "1000".into(),
            ..Default::default()
        })),
    ]
}

/// A request for `metric` over W with these groups and filters.
fn q1(metric: &str, group_by: &[&str], filters: &[(&str, &str)]) -> pb::ComputeRequest {
    pb::ComputeRequest {
        metric_id: metric.into(),
        start: at("2024-01-01"),
        end: at("2024-04-01"),
        group_by: group_by.iter().map(|d| (*d).to_owned()).collect(),
        filters: filters
            .iter()
            .map(|(d, v)| ((*d).to_owned(), (*v).to_owned()))
            .collect(),
        ..Default::default()
    }
}

/// Per row (its group, as `dimension=value` joined by `,`; with its bucket's month first
/// when it has one): its value ("undefined" when undefined).
async fn rows(
    client: &mut MetricsServiceClient<Channel>,
    request: pb::ComputeRequest,
) -> BTreeMap<String, String> {
    let what = format!(
        "{} by {:?} where {:?}",
        request.metric_id, request.group_by, request.filters
    );
    let response = client
        .compute(request)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"))
        .into_inner();
    response
        .rows
        .iter()
        .map(|row| {
            let mut key: Vec<String> = Vec::new();
            if let Some(b) = &row.bucket_start {
                let t = jiff::Timestamp::new(b.seconds, b.nanos).unwrap();
                key.push(t.strftime("%Y-%m").to_string());
            }
            let group: BTreeMap<_, _> = row.group.iter().collect();
            key.extend(group.iter().map(|(d, v)| format!("{d}={v}")));
            let value = if row.value.is_empty() {
                "undefined".to_owned()
            } else {
                row.value.clone()
            };
            (key.join(","), value)
        })
        .collect()
}

/// The sum over the rows of each input.
async fn totals(
    client: &mut MetricsServiceClient<Channel>,
    request: pb::ComputeRequest,
) -> BTreeMap<String, String> {
    let response = client.compute(request).await.unwrap().into_inner();
    let mut sums: BTreeMap<String, rust_decimal::Decimal> = BTreeMap::new();
    for row in &response.rows {
        for (name, value) in &row.inputs {
            *sums.entry(name.clone()).or_default() +=
                value.parse::<rust_decimal::Decimal>().unwrap();
        }
    }
    sums.into_iter()
        .map(|(name, sum)| (name, sum.normalize().to_string()))
        .collect()
}

fn expect(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn loaded() -> (Kpid, MetricsServiceClient<Channel>) {
    serving(dataset()).await
}

#[tokio::test]
async fn deal_metrics_by_their_own_and_their_customers_attributes() {
    let (_kpid, mut client) = loaded().await;
    // Win rate: won d1 d2 d5, lost d3 d4 d6 → 50.00 over all.
    // By the deal's region: EMEA won d1 d5, lost d3 → 2/3 = 66.67; AMER won d2, lost d6 →
    // 50.00; d4 has no region → "" with 0 won, 1 lost → 0.00. The groups add up: won
    // 2+1+0 = 3, lost 1+1+1 = 3.
    assert_eq!(
        rows(&mut client, q1("sales.win_rate", &["attr.region"], &[])).await,
        expect(&[
            ("attr.region=", "0"),
            ("attr.region=AMER", "50"),
            ("attr.region=EMEA", "66.67"),
        ])
    );
    // By the customer's region: c1 (EMEA) d1 won, d3 lost → 50.00; c2 (AMER) d2, d5 won →
    // 100.00; c3 has no region (d4 lost) and d6 has no customer (lost) → "" 0 of 2 → 0.00.
    assert_eq!(
        rows(&mut client, q1("sales.win_rate", &["customer.region"], &[])).await,
        expect(&[
            ("customer.region=", "0"),
            ("customer.region=AMER", "100"),
            ("customer.region=EMEA", "50"),
        ])
    );
    // The groups' inputs add up to the ungrouped ones, by either region.
    for dimension in ["attr.region", "customer.region", "customer.vip"] {
        let grouped = totals(&mut client, q1("sales.win_rate", &[dimension], &[])).await;
        assert_eq!(
            grouped,
            totals(&mut client, q1("sales.win_rate", &[], &[])).await
        );
        assert_eq!(
            grouped,
            expect(&[("lost", "3"), ("won", "3")]),
            "{dimension}"
        );
    }
    // Groups come from the metric's own records: the owners of deals, not quinn, who owns
    // a quota only.
    assert_eq!(
        rows(&mut client, q1("sales.win_rate", &["owner"], &[])).await,
        expect(&[("owner=olga", "66.67"), ("owner=pete", "33.33")])
    );
    // An attribute no record has: one group "", the whole total.
    assert_eq!(
        rows(&mut client, q1("sales.win_rate", &["attr.nothing"], &[])).await,
        expect(&[("attr.nothing=", "50")])
    );
    // Filter on the empty value: the deals without a region, d4 (lost) → 0.00.
    assert_eq!(
        rows(
            &mut client,
            q1("sales.win_rate", &[], &[("attr.region", "")])
        )
        .await,
        expect(&[("", "0")])
    );
    // Deals of EMEA customers (d1 olga won, d3 pete lost) by owner.
    assert_eq!(
        rows(
            &mut client,
            q1("sales.win_rate", &["owner"], &[("customer.region", "EMEA")])
        )
        .await,
        expect(&[("owner=olga", "100"), ("owner=pete", "0")])
    );
    // By month and customer region: January d1 (EMEA won); February d2 (AMER won), d3
    // (EMEA lost); March d4 ("" lost), d5 (AMER won), d6 ("" lost). Groups with no deal
    // closed in a month have no row.
    let mut monthly = q1("sales.win_rate", &["customer.region"], &[]);
    monthly.granularity = pb::Granularity::Month as i32;
    assert_eq!(
        rows(&mut client, monthly).await,
        expect(&[
            ("2024-01,customer.region=EMEA", "100"),
            ("2024-02,customer.region=AMER", "100"),
            ("2024-02,customer.region=EMEA", "0"),
            ("2024-03,customer.region=", "0"),
            ("2024-03,customer.region=AMER", "100"),
        ])
    );
    // Sales revenue by deal region: EMEA d1 + d5 = 1300, AMER d2 = 500 (the lost deals
    // add no revenue: the "" group has none and no row).
    assert_eq!(
        rows(&mut client, q1("sales.revenue", &["attr.region"], &[])).await,
        expect(&[("attr.region=AMER", "500"), ("attr.region=EMEA", "1300")])
    );
    // Average deal size by the customer's plan: pro (c1) d1 1000; starter (c2) d2 500 and
    // d5 300 → 400.
    assert_eq!(
        rows(
            &mut client,
            q1("sales.average_deal_size", &["customer.plan"], &[])
        )
        .await,
        expect(&[
            ("customer.plan=pro", "1000"),
            ("customer.plan=starter", "400")
        ])
    );
    // A decimal attribute groups by its normalized value (10.0 → "10"), a time by RFC
    // 3339, a flag by true/false.
    assert_eq!(
        rows(
            &mut client,
            q1("sales.revenue", &["attr.seats"], &[("owner", "olga")])
        )
        .await,
        expect(&[("attr.seats=", "500"), ("attr.seats=10", "1000")])
    );
    assert_eq!(
        rows(
            &mut client,
            q1(
                "sales.revenue",
                &[],
                &[("attr.signed", "2024-03-18T09:30:00Z")]
            )
        )
        .await,
        expect(&[("", "300")])
    );
    // vip: c1 (true) d1 won, d3 lost; c2 (false) d2, d5 won; the rest "".
    assert_eq!(
        rows(&mut client, q1("sales.win_rate", &["customer.vip"], &[])).await,
        expect(&[
            ("customer.vip=", "0"),
            ("customer.vip=false", "100"),
            ("customer.vip=true", "50"),
        ])
    );
}

#[tokio::test]
async fn success_revenue_marketing_and_activity_metrics_by_attributes() {
    let (_kpid, mut client) = loaded().await;
    // Resolution hours by ticket priority: high t1 10 h and t3 4 h → 7.00; low t2 24 h.
    assert_eq!(
        rows(
            &mut client,
            q1("success.avg_resolution_hours", &["attr.priority"], &[])
        )
        .await,
        expect(&[("attr.priority=high", "7"), ("attr.priority=low", "24")])
    );
    // ... by the customer's plan and agent: pro t1 (ann) 10; starter t2 (ann) 24; c3 has
    // no plan: t3 (ben) 4.
    assert_eq!(
        rows(
            &mut client,
            q1(
                "success.avg_resolution_hours",
                &["customer.plan", "agent"],
                &[]
            )
        )
        .await,
        expect(&[
            ("agent=ann,customer.plan=pro", "10"),
            ("agent=ann,customer.plan=starter", "24"),
            ("agent=ben,customer.plan=", "4"),
        ])
    );
    // NPS by the customer's plan: pro v1 10 (promoter) → 100; starter v2 9 (promoter), v3
    // 3 (detractor) → 0; "" v4 7 (passive) → 0.
    assert_eq!(
        rows(&mut client, q1("success.nps", &["customer.plan"], &[])).await,
        expect(&[
            ("customer.plan=", "0"),
            ("customer.plan=pro", "100"),
            ("customer.plan=starter", "0"),
        ])
    );
    // MRR at W's end by the customer's plan: pro s1 100; starter s2 50 + s3 30 = 80.
    assert_eq!(
        rows(&mut client, q1("revenue.mrr", &["customer.plan"], &[])).await,
        expect(&[
            ("customer.plan=pro", "100"),
            ("customer.plan=starter", "80")
        ])
    );
    // ... by the subscription's own term: annual 100, monthly 50, none ("") 30.
    assert_eq!(
        rows(&mut client, q1("revenue.mrr", &["attr.term"], &[])).await,
        expect(&[
            ("attr.term=", "30"),
            ("attr.term=annual", "100"),
            ("attr.term=monthly", "50"),
        ])
    );
    // New MRR by customer region: c2 (AMER) s2 50, c4 (EMEA) s3 30.
    assert_eq!(
        rows(
            &mut client,
            q1("revenue.new_mrr", &["customer.region"], &[])
        )
        .await,
        expect(&[
            ("customer.region=AMER", "50"),
            ("customer.region=EMEA", "30")
        ])
    );
    // CAC by region: spend and the customers acquired in W each by their own region.
    // EMEA: x1 1000 / c4 → 1000; AMER: x2 600 / c2 → 600; "": no spend / c3 → 0.
    // Ungrouped: 1600 / 3 = 533.33.
    assert_eq!(
        rows(&mut client, q1("marketing.cac", &["attr.region"], &[])).await,
        expect(&[
            ("attr.region=", "0"),
            ("attr.region=AMER", "600"),
            ("attr.region=EMEA", "1000"),
        ])
    );
    assert_eq!(
        rows(&mut client, q1("marketing.cac", &[], &[])).await,
        expect(&[("", "533.33")])
    );
    // Leads by form: webinar l1, l2; "" l3. Conversion: webinar 1 of 2 → 50; "" 1 of 1.
    assert_eq!(
        rows(&mut client, q1("sales.leads_created", &["attr.form"], &[])).await,
        expect(&[("attr.form=", "1"), ("attr.form=webinar", "2")])
    );
    assert_eq!(
        rows(
            &mut client,
            q1("sales.lead_conversion_rate", &["attr.form"], &[])
        )
        .await,
        expect(&[("attr.form=", "100"), ("attr.form=webinar", "50")])
    );
    // Activities by outcome and by the customer's region (a3 has neither), and by owner
    // among the booked ones.
    assert_eq!(
        rows(&mut client, q1("sales.activities", &["attr.outcome"], &[])).await,
        expect(&[("attr.outcome=", "1"), ("attr.outcome=booked", "2")])
    );
    assert_eq!(
        rows(
            &mut client,
            q1("sales.activities", &["customer.region"], &[])
        )
        .await,
        expect(&[
            ("customer.region=", "1"),
            ("customer.region=AMER", "1"),
            ("customer.region=EMEA", "1"),
        ])
    );
    assert_eq!(
        rows(
            &mut client,
            q1(
                "sales.activities",
                &["owner"],
                &[("attr.outcome", "booked")]
            )
        )
        .await,
        expect(&[("owner=olga", "2")])
    );
}

/// The field and description of the one BadRequest violation of an INVALID_ARGUMENT.
async fn refused(
    client: &mut MetricsServiceClient<Channel>,
    request: pb::ComputeRequest,
) -> Vec<(String, String)> {
    let status = client.compute(request).await.expect_err("refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let details = status.get_error_details();
    let bad = details.bad_request().expect("BadRequest details");
    bad.field_violations
        .iter()
        .map(|v| (v.field.clone(), v.description.clone()))
        .collect()
}

#[tokio::test]
async fn bad_and_unsupported_attribute_dimensions_are_invalid_arguments() {
    let (_kpid, mut client) = loaded().await;
    for (group, filter) in [
        ("attr.Region", "attr.a-b"),
        ("customer.", "attr."),
        ("attr.2x", "customer._x"),
    ] {
        let violations = refused(
            &mut client,
            q1("sales.win_rate", &[group], &[(filter, "x")]),
        )
        .await;
        let fields: Vec<&str> = violations.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            ["group_by[0]", &format!("filters[{filter}]")],
            "{violations:?}"
        );
        assert!(violations[0].1.contains("attribute name"), "{violations:?}");
    }
    // Spend has no customer: CAC cannot be grouped or filtered by a customer attribute.
    let violations = refused(
        &mut client,
        q1("marketing.cac", &["owner", "customer.region"], &[]),
    )
    .await;
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert_eq!(violations[1].0, "group_by[1]");
    assert!(
        violations[1].1.contains("customer.region"),
        "{violations:?}"
    );
    let violations = refused(
        &mut client,
        q1("marketing.cac", &[], &[("customer.plan", "pro")]),
    )
    .await;
    assert_eq!(violations[0].0, "filters[customer.plan]", "{violations:?}");
    assert!(violations[0].1.contains("customer.plan"), "{violations:?}");
    // Leads have no customer either.
    let violations = refused(
        &mut client,
        q1("sales.leads_created", &["customer.region"], &[]),
    )
    .await;
    assert_eq!(violations[0].0, "group_by[0]", "{violations:?}");
}

#[tokio::test]
async fn list_metrics_advertises_the_attribute_dimensions() {
    let (_kpid, mut client) = loaded().await;
    let metrics = client
        .list_metrics(pb::ListMetricsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .metrics;
    let dimensions = |id: &str| {
        metrics
            .iter()
            .find(|m| m.id == id)
            .unwrap_or_else(|| panic!("{id} listed"))
            .dimensions
            .clone()
    };
    let win_rate = dimensions("sales.win_rate");
    assert!(
        win_rate.contains(&"attr.*".to_owned()) && win_rate.contains(&"customer.*".to_owned()),
        "{win_rate:?}"
    );
    let cac = dimensions("marketing.cac");
    assert!(
        cac.contains(&"attr.*".to_owned()) && !cac.contains(&"customer.*".to_owned()),
        "{cac:?}"
    );
}
