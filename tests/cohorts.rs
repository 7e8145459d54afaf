//! Cohorts end to end: a small dataset through `PutRecords` into a real kpid, and cohort
//! tables, a cohort filter and an unsupported use checked against values worked out by
//! hand in the comments — never by calling the code under test.
//!
//! The dataset (UTC, month cohorts by the customer record's `acquired_at`):
//! - `a`, acquired 5 January: subscription 100 from 5 January, ended 10 February; comes
//!   back with a new subscription of 120 on 15 March (stays in the 2024-01 cohort).
//! - `b`, acquired 20 January: subscription 200 from 20 January, 250 from 1 March.
//! - `c`, acquired 10 February: subscription 50 from 10 February, ended 20 March (customer
//!   churned then too): the 2024-02 cohort has no customer left from March.
//!
//! Subscribed at the end of each month (a subscription is active at `t` when it started
//! before `t` and has not ended before `t`):
//! | end of | a   | b   | c  |
//! |--------|-----|-----|----|
//! | Jan    | 100 | 200 | –  |
//! | Feb    | –   | 200 | 50 |
//! | Mar    | 120 | 250 | –  |
//! | Apr    | 120 | 250 | –  |

mod common;

use std::collections::BTreeMap;

use common::{customer, record, serving, ts};
use kpi_proto::kpi::v1 as pb;
use kpi_proto::kpi::v1::metrics_service_client::MetricsServiceClient;
use pb::record::Record as Kind;
use tonic::transport::Channel;
use tonic::Code;

fn subscription(
    id: &str,
    customer: &str,
    changes: &[(&str, &str)],
    ended: Option<&str>,
) -> pb::Record {
    record(Kind::Subscription(pb::Subscription {
        id: id.into(),
        customer_id: customer.into(),
        started_at: ts(changes[0].0),
        ended_at: ended.and_then(ts),
        mrr_changes: changes
            .iter()
            .map(|(at, mrr)| pb::MrrChange {
                at: ts(at),
                mrr: (*mrr).into(),
            })
            .collect(),
        ..Default::default()
    }))
}

fn dataset() -> Vec<pb::Record> {
    let mut c = customer("c", "2024-02-10T00:00:00Z", pb::Source::Sales);
    if let Some(Kind::Customer(c)) = c.record.as_mut() {
        c.churned_at = ts("2024-03-20T00:00:00Z");
    }
    vec![
        customer("a", "2024-01-05T00:00:00Z", pb::Source::Marketing),
        customer("b", "2024-01-20T00:00:00Z", pb::Source::Marketing),
        c,
        subscription(
            "sa",
            "a",
            &[("2024-01-05T00:00:00Z", "100")],
            Some("2024-02-10T00:00:00Z"),
        ),
        subscription("sa2", "a", &[("2024-03-15T00:00:00Z", "120")], None),
        subscription(
            "sb",
            "b",
            &[
                ("2024-01-20T00:00:00Z", "200"),
                ("2024-03-01T00:00:00Z", "250"),
            ],
            None,
        ),
        subscription(
            "sc",
            "c",
            &[("2024-02-10T00:00:00Z", "50")],
            Some("2024-03-20T00:00:00Z"),
        ),
        record(Kind::Spend(pb::Spend {
            id: "s1".into(),
            at: ts("2024-01-10T00:00:00Z"),
            amount: "1000".into(),
            category: pb::SpendCategory::Advertising.into(),
            ..Default::default()
        })),
    ]
}

fn request(metric: &str, start: &str, end: &str, g: pb::Granularity) -> pb::ComputeRequest {
    pb::ComputeRequest {
        metric_id: metric.into(),
        start: ts(start),
        end: ts(end),
        granularity: g.into(),
        ..Default::default()
    }
}

/// (bucket label, cohort, value, cohort_age) of each row.
async fn table(
    client: &mut MetricsServiceClient<Channel>,
    request: pb::ComputeRequest,
) -> Vec<(String, String, String, Option<i32>)> {
    client
        .compute(request)
        .await
        .unwrap_or_else(|s| panic!("Compute: {s:?}"))
        .into_inner()
        .rows
        .into_iter()
        .map(|r| {
            (
                r.bucket_label,
                r.group.get("cohort").cloned().unwrap_or_default(),
                r.value,
                r.cohort_age,
            )
        })
        .collect()
}

fn rows(expected: &[(&str, &str, &str, i32)]) -> Vec<(String, String, String, Option<i32>)> {
    expected
        .iter()
        .map(|(b, c, v, a)| ((*b).into(), (*c).into(), (*v).into(), Some(*a)))
        .collect()
}

#[tokio::test]
async fn cohort_tables_by_month() {
    let (_kpid, mut client) = serving(dataset()).await;
    let window = ("2024-01-01T00:00:00Z", "2024-05-01T00:00:00Z");

    // Customer retention: cohort 2024-01 = {a, b} (2), 2024-02 = {c} (1). The 2024-02
    // cohort has no row in January (that bucket ends before February does).
    // Jan: a, b → 2/2 = 100; Feb: b → 1/2 = 50; Mar, Apr: a is back, b → 100.
    // 2024-02: Feb: c → 100; Mar, Apr: nobody left → 0 (not undefined).
    let got = table(
        &mut client,
        request(
            "success.cohort_retention",
            window.0,
            window.1,
            pb::Granularity::Month,
        ),
    )
    .await;
    assert_eq!(
        got,
        rows(&[
            ("2024-01", "2024-01", "100", 0),
            ("2024-02", "2024-01", "50", 1),
            ("2024-02", "2024-02", "100", 0),
            ("2024-03", "2024-01", "100", 2),
            ("2024-03", "2024-02", "0", 1),
            ("2024-04", "2024-01", "100", 3),
            ("2024-04", "2024-02", "0", 2),
        ])
    );

    // MRR retention: 2024-01 starts at 100 + 200 = 300 (end of January); Feb 200/300 =
    // 66.67; Mar and Apr (120 + 250)/300 = 123.33 (net expansion, with a's return).
    // 2024-02 starts at 50 (end of February); then 0.
    let got = table(
        &mut client,
        request(
            "revenue.cohort_mrr_retention",
            window.0,
            window.1,
            pb::Granularity::Month,
        ),
    )
    .await;
    assert_eq!(
        got,
        rows(&[
            ("2024-01", "2024-01", "100", 0),
            ("2024-02", "2024-01", "66.67", 1),
            ("2024-02", "2024-02", "100", 0),
            ("2024-03", "2024-01", "123.33", 2),
            ("2024-03", "2024-02", "0", 1),
            ("2024-04", "2024-01", "123.33", 3),
            ("2024-04", "2024-02", "0", 2),
        ])
    );
}

#[tokio::test]
async fn quarter_cohorts_filters_and_unsupported_uses() {
    let (_kpid, mut client) = serving(dataset()).await;

    // One 2024 Q1 cohort {a, b, c} (3). End of Q1 (1 April): a (back), b → 2/3 = 66.67,
    // age 0; end of Q2: the same, age 1.
    let mut q = request(
        "success.cohort_retention",
        "2024-01-01T00:00:00Z",
        "2024-07-01T00:00:00Z",
        pb::Granularity::Quarter,
    );
    q.params = BTreeMap::from([("cohort_granularity".into(), "quarter".into())]);
    assert_eq!(
        table(&mut client, q).await,
        rows(&[
            ("2024 Q1", "2024 Q1", "66.67", 0),
            ("2024 Q2", "2024 Q1", "66.67", 1),
        ])
    );

    // A non-cohort metric filtered on a cohort: MRR at the end of March of the customers
    // acquired in January = a 120 + b 250 = 370, two months after January ends.
    let mut mrr = request(
        "revenue.mrr",
        "2024-03-01T00:00:00Z",
        "2024-04-01T00:00:00Z",
        pb::Granularity::Unspecified,
    );
    mrr.filters = BTreeMap::from([("cohort".into(), "2024-01".into())]);
    assert_eq!(
        table(&mut client, mrr.clone()).await,
        vec![(String::new(), String::new(), "370".into(), Some(2))]
    );
    // The February cohort: c ended on 20 March → 0.
    mrr.filters = BTreeMap::from([("cohort".into(), "2024-02".into())]);
    assert_eq!(table(&mut client, mrr.clone()).await[0].2, "0");
    // Quarter cohorts, also written `2024-Q1`: a, b and c → 370 + 0.
    mrr.filters = BTreeMap::from([("cohort".into(), "2024-Q1".into())]);
    mrr.params = BTreeMap::from([("cohort_granularity".into(), "quarter".into())]);
    assert_eq!(table(&mut client, mrr.clone()).await[0].2, "370");

    // Grouped by cohort: revenue.mrr at the end of March per cohort; the 2024-02 cohort's
    // only input is 0 there, and a group whose inputs are all 0 has no row (as for every
    // dimension).
    let mut grouped = request(
        "revenue.mrr",
        "2024-03-01T00:00:00Z",
        "2024-04-01T00:00:00Z",
        pb::Granularity::Unspecified,
    );
    grouped.group_by = vec!["cohort".into()];
    assert_eq!(
        table(&mut client, grouped).await,
        vec![(String::new(), "2024-01".into(), "370".into(), Some(2))]
    );

    // A metric that reads spend (no customer) cannot be cut by cohort.
    let mut cac = request(
        "marketing.cac",
        "2024-01-01T00:00:00Z",
        "2024-02-01T00:00:00Z",
        pb::Granularity::Unspecified,
    );
    cac.group_by = vec!["cohort".into()];
    let status = client.compute(cac).await.expect_err("cohort on cac");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    // A label that names no month.
    mrr.filters = BTreeMap::from([("cohort".into(), "2024-13".into())]);
    mrr.params.clear();
    let status = client.compute(mrr).await.expect_err("bad label");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("cohort"), "{status:?}");
}
