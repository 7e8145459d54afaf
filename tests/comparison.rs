//! Comparisons end to end: each test puts a small dataset through `PutRecords` into its own
//! real kpid and checks compared rows against values worked out by hand in its comments —
//! never by calling the code under test.
//!
//! The rules checked (proto `Comparison`): a bucket compares with the bucket one period
//! earlier in the request's zone; a window of whole months with as many months before it,
//! of whole local days with as many days before it, any other with the same duration
//! before it; a year earlier keeps the dates (29 February → 28 February). `change =
//! value − previous_value` as answered (both rounded to `precision`, default 2);
//! `change_pct = change / |previous_value| × 100`, rounded once, half away from zero.
//!
//! Deals come from `common::deal` (new business, created 30 days before they close); the
//! win rate is won / (won + lost) × 100 over deals closed in the window, revenue the sum of
//! the won amounts.

mod common;

use std::process::Command;

use common::{customer, deal, record, serving, ts};
use kpi_proto::kpi::v1 as pb;
use kpi_proto::kpi::v1::metrics_service_client::MetricsServiceClient;
use pb::record::Record as Kind;
use pb::DealStatus::{Lost, Won};
use tonic::transport::Channel;
use tonic::Code;
use tonic_types::StatusExt as _;

/// A lead created at `at`.
fn lead(id: &str, at: &str) -> pb::Record {
    record(Kind::Lead(pb::Lead {
        id: id.into(),
        created_at: ts(at),
        source: pb::Source::Marketing.into(),
        ..Default::default()
    }))
}

/// Advertising spend of `amount` at `at`.
fn spend(id: &str, amount: &str, at: &str) -> pb::Record {
    record(Kind::Spend(pb::Spend {
        id: id.into(),
        at: ts(at),
        amount: amount.into(),
        category: pb::SpendCategory::Advertising.into(),
        ..Default::default()
    }))
}

/// A Compute request for `metric` over `[start, end)`, compared with `compare`.
fn compared(
    metric: &str,
    start: &str,
    end: &str,
    granularity: pb::Granularity,
    compare: pb::Comparison,
) -> pb::ComputeRequest {
    pb::ComputeRequest {
        metric_id: metric.into(),
        start: ts(start),
        end: ts(end),
        granularity: granularity.into(),
        compare: compare.into(),
        ..Default::default()
    }
}

async fn rows(
    client: &mut MetricsServiceClient<Channel>,
    request: pb::ComputeRequest,
) -> Vec<pb::Row> {
    client
        .compute(request)
        .await
        .unwrap_or_else(|s| panic!("Compute: {s:?}"))
        .into_inner()
        .rows
}

/// What a compared row must say, as the strings the wire carries (`""` = empty).
struct Expected<'a> {
    value: &'a str,
    previous: &'a str,
    change: &'a str,
    change_pct: &'a str,
    trend: pb::Trend,
}

#[track_caller]
fn check(row: &pb::Row, e: Expected<'_>) {
    let got = (
        row.value.as_str(),
        row.previous_value.as_str(),
        row.change.as_str(),
        row.change_pct.as_str(),
        row.trend,
    );
    let want = (e.value, e.previous, e.change, e.change_pct, e.trend as i32);
    assert_eq!(got, want, "row: {row:?}");
}

fn bucket(row: &pb::Row) -> String {
    let b = row.bucket_start.as_ref().expect("a bucket start");
    jiff::Timestamp::new(b.seconds, b.nanos)
        .unwrap()
        .to_string()
}

/// Win rate and revenue by month, February and March 2024 (UTC), each compared with the
/// month before:
///
/// | month | deals (owner ann unless said) | win rate | revenue |
/// |---|---|---|---|
/// | Jan | won 100 (01-10), lost 50 (01-20) | 1/2 = 50 | 100 |
/// | Feb | won 200 (02-01T00:00, its first instant), won 300, lost 70 | 2/3 = 66.67 | 500 |
/// | Mar | won 400, won 100, lost 90, bob won 250 | 3/4 = 75 | 750 |
///
/// February vs January: 66.67 − 50 = 16.67 points; 16.67 / 50 × 100 = 33.34 %.
/// March vs February: 75 − 66.67 = 8.33 points; 8.33 / 66.67 × 100 = 12.4943… → 12.49 %
/// (from the values as answered; 3/4 vs 2/3 unrounded would say 12.5).
/// Revenue: 500 − 100 = 400, 400 %; 750 − 500 = 250, 50 %.
#[tokio::test]
async fn month_buckets_compare_with_the_previous_calendar_month() {
    let (_kpid, mut client) = serving(vec![
        deal("j1", "ann", Won, "100", "2024-01-10T10:00:00Z"),
        deal("j2", "ann", Lost, "50", "2024-01-20T10:00:00Z"),
        deal("f1", "ann", Won, "200", "2024-02-01T00:00:00Z"),
        deal("f2", "ann", Won, "300", "2024-02-15T10:00:00Z"),
        deal("f3", "ann", Lost, "70", "2024-02-20T10:00:00Z"),
        deal("m1", "ann", Won, "400", "2024-03-05T10:00:00Z"),
        deal("m2", "ann", Won, "100", "2024-03-12T10:00:00Z"),
        deal("m3", "ann", Lost, "90", "2024-03-13T10:00:00Z"),
        deal("m4", "bob", Won, "250", "2024-03-14T10:00:00Z"),
    ])
    .await;
    let win_rate = rows(
        &mut client,
        compared(
            "sales.win_rate",
            "2024-02-01T00:00:00Z",
            "2024-04-01T00:00:00Z",
            pb::Granularity::Month,
            pb::Comparison::PreviousPeriod,
        ),
    )
    .await;
    assert_eq!(win_rate.len(), 2, "a comparison adds no rows");
    assert_eq!(bucket(&win_rate[0]), "2024-02-01T00:00:00Z");
    check(
        &win_rate[0],
        Expected {
            value: "66.67",
            previous: "50",
            change: "16.67",
            change_pct: "33.34",
            trend: pb::Trend::Improved,
        },
    );
    assert_eq!(win_rate[0].previous_inputs["won"], "1");
    assert_eq!(win_rate[0].previous_inputs["lost"], "1");
    check(
        &win_rate[1],
        Expected {
            value: "75",
            previous: "66.67",
            change: "8.33",
            change_pct: "12.49",
            trend: pb::Trend::Improved,
        },
    );
    assert_eq!(win_rate[1].previous_inputs["won"], "2");
    assert_eq!(win_rate[1].previous_inputs["lost"], "1");
    assert_eq!(win_rate[1].inputs["won"], "3");

    let revenue = rows(
        &mut client,
        compared(
            "sales.revenue",
            "2024-02-01T00:00:00Z",
            "2024-04-01T00:00:00Z",
            pb::Granularity::Month,
            pb::Comparison::PreviousPeriod,
        ),
    )
    .await;
    check(
        &revenue[0],
        Expected {
            value: "500",
            previous: "100",
            change: "400",
            change_pct: "400",
            trend: pb::Trend::Improved,
        },
    );
    check(
        &revenue[1],
        Expected {
            value: "750",
            previous: "500",
            change: "250",
            change_pct: "50",
            trend: pb::Trend::Improved,
        },
    );

    // Without compare, the comparison fields stay empty.
    let plain = rows(
        &mut client,
        compared(
            "sales.revenue",
            "2024-02-01T00:00:00Z",
            "2024-04-01T00:00:00Z",
            pb::Granularity::Month,
            pb::Comparison::Unspecified,
        ),
    )
    .await;
    assert_eq!(plain[1].value, "750");
    assert!(plain.iter().all(|r| r.previous_value.is_empty()
        && r.previous_undefined_reason.is_empty()
        && r.previous_inputs.is_empty()
        && r.change.is_empty()
        && r.change_pct_undefined_reason.is_empty()
        && r.trend == pb::Trend::Unspecified as i32));
}

/// Revenue by quarter, Q2 2024 (UTC):
/// - Q2: won 50 at 2024-04-01T00:00 (its first instant) and 1000 on 05-15 → 1050;
/// - Q1: won 100 (01-01T00:00), 200 (02-10), 400 (03-31T23:59:59) → 700; a deal won at
///   2023-12-31T23:59:59 (5000) is not in it.
///
/// 1050 − 700 = 350; 350 / 700 × 100 = 50 %. A year earlier, Q2 2023 holds one deal of 2100:
/// 1050 − 2100 = −1050, −50 %, worsened.
#[tokio::test]
async fn a_quarter_compares_with_the_previous_quarter_and_a_year_earlier() {
    let (_kpid, mut client) = serving(vec![
        deal("a", "ann", Won, "5000", "2023-12-31T23:59:59Z"),
        deal("b", "ann", Won, "100", "2024-01-01T00:00:00Z"),
        deal("c", "ann", Won, "200", "2024-02-10T10:00:00Z"),
        deal("d", "ann", Won, "400", "2024-03-31T23:59:59Z"),
        deal("e", "ann", Won, "50", "2024-04-01T00:00:00Z"),
        deal("f", "ann", Won, "1000", "2024-05-15T10:00:00Z"),
        deal("g", "ann", Won, "2100", "2023-06-30T10:00:00Z"),
    ])
    .await;
    let q2 = |compare| {
        compared(
            "sales.revenue",
            "2024-04-01T00:00:00Z",
            "2024-07-01T00:00:00Z",
            pb::Granularity::Quarter,
            compare,
        )
    };
    let previous = rows(&mut client, q2(pb::Comparison::PreviousPeriod)).await;
    assert_eq!(previous.len(), 1);
    check(
        &previous[0],
        Expected {
            value: "1050",
            previous: "700",
            change: "350",
            change_pct: "50",
            trend: pb::Trend::Improved,
        },
    );
    assert_eq!(previous[0].previous_inputs["won_amount"], "700");
    let year = rows(&mut client, q2(pb::Comparison::PreviousYear)).await;
    check(
        &year[0],
        Expected {
            value: "1050",
            previous: "2100",
            change: "-1050",
            change_pct: "-50",
            trend: pb::Trend::Worsened,
        },
    );
}

/// Win rate by week (Monday to Sunday, UTC) for the weeks of Monday 11 and 18 March 2024:
/// - week of 4 March: won 03-05, lost Sunday 03-10T23:59:59 → 1/2 = 50 (a deal lost on
///   Sunday 3 March belongs to the week before and is not in it);
/// - week of 11 March: won 03-11T00:00 (its first instant), won 03-13, lost 03-14 →
///   2/3 = 66.67;
/// - week of 18 March: won 03-20 → 1/1 = 100.
///
/// 66.67 − 50 = 16.67, 33.34 %; 100 − 66.67 = 33.33, 33.33 / 66.67 × 100 = 49.9925… →
/// 49.99 %.
#[tokio::test]
async fn a_week_compares_with_the_previous_monday_to_sunday_week() {
    let (_kpid, mut client) = serving(vec![
        deal("a", "ann", Lost, "1", "2024-03-03T12:00:00Z"),
        deal("b", "ann", Won, "1", "2024-03-05T10:00:00Z"),
        deal("c", "ann", Lost, "1", "2024-03-10T23:59:59Z"),
        deal("d", "ann", Won, "1", "2024-03-11T00:00:00Z"),
        deal("e", "ann", Won, "1", "2024-03-13T10:00:00Z"),
        deal("f", "ann", Lost, "1", "2024-03-14T10:00:00Z"),
        deal("g", "ann", Won, "1", "2024-03-20T10:00:00Z"),
    ])
    .await;
    let weeks = rows(
        &mut client,
        compared(
            "sales.win_rate",
            "2024-03-11T00:00:00Z",
            "2024-03-25T00:00:00Z",
            pb::Granularity::Week,
            pb::Comparison::PreviousPeriod,
        ),
    )
    .await;
    assert_eq!(weeks.len(), 2);
    check(
        &weeks[0],
        Expected {
            value: "66.67",
            previous: "50",
            change: "16.67",
            change_pct: "33.34",
            trend: pb::Trend::Improved,
        },
    );
    check(
        &weeks[1],
        Expected {
            value: "100",
            previous: "66.67",
            change: "33.33",
            change_pct: "49.99",
            trend: pb::Trend::Improved,
        },
    );
}

/// Windows without a granularity (UTC), revenue:
///
/// - an odd window, 10 days from noon, [2024-03-10T12:00, 03-20T12:00), compares with the
///   240 hours before it, [02-29T12:00, 03-10T12:00): won 40 at 03-10T12:00 and 80 at
///   03-20T11:00 make 120 (160 at 03-20T12:00 is out); won 10 at 02-29T12:00 and 20 at
///   03-10T11:59:59 make 30 (1 at 02-29T11:59:59 is out). 120 − 30 = 90, 300 %.
/// - February and March 2024 (two whole months, 60 days) compare with December 2023 and
///   January 2024 (62 days): won 5 at 2023-12-01T00:00, 2 at 12-02T12:00 (60 days before
///   February would start at 12-03) and 3 at 2024-01-31T23:00 → 10 (7 at
///   2023-11-30T23:59:59 is out). February and March hold 1 + 10 + 20 + 40 + 80 + 160 =
///   311: 311 − 10 = 301, 3010 %.
#[tokio::test]
async fn odd_windows_and_whole_month_windows() {
    let (_kpid, mut client) = serving(vec![
        deal("a", "ann", Won, "1", "2024-02-29T11:59:59Z"),
        deal("b", "ann", Won, "10", "2024-02-29T12:00:00Z"),
        deal("c", "ann", Won, "20", "2024-03-10T11:59:59Z"),
        deal("d", "ann", Won, "40", "2024-03-10T12:00:00Z"),
        deal("e", "ann", Won, "80", "2024-03-20T11:00:00Z"),
        deal("f", "ann", Won, "160", "2024-03-20T12:00:00Z"),
        deal("g", "ann", Won, "7", "2023-11-30T23:59:59Z"),
        deal("h", "ann", Won, "5", "2023-12-01T00:00:00Z"),
        deal("i", "ann", Won, "2", "2023-12-02T12:00:00Z"),
        deal("j", "ann", Won, "3", "2024-01-31T23:00:00Z"),
    ])
    .await;
    let odd = rows(
        &mut client,
        compared(
            "sales.revenue",
            "2024-03-10T12:00:00Z",
            "2024-03-20T12:00:00Z",
            pb::Granularity::Unspecified,
            pb::Comparison::PreviousPeriod,
        ),
    )
    .await;
    assert_eq!(odd.len(), 1);
    assert_eq!(odd[0].bucket_start, None);
    check(
        &odd[0],
        Expected {
            value: "120",
            previous: "30",
            change: "90",
            change_pct: "300",
            trend: pb::Trend::Improved,
        },
    );
    let months = rows(
        &mut client,
        compared(
            "sales.revenue",
            "2024-02-01T00:00:00Z",
            "2024-04-01T00:00:00Z",
            pb::Granularity::Unspecified,
            pb::Comparison::PreviousPeriod,
        ),
    )
    .await;
    check(
        &months[0],
        Expected {
            value: "311",
            previous: "10",
            change: "301",
            change_pct: "3010",
            trend: pb::Trend::Improved,
        },
    );
}

/// Leads created by month in Europe/Paris, April 2024 against March, the month of the change
/// to summer time (31 March 02:00 CET → 03:00 CEST). Paris March is [2024-02-29T23:00Z,
/// 2024-03-31T22:00Z) (743 hours), April [2024-03-31T22:00Z, 2024-04-30T22:00Z).
///
/// | lead | UTC | Paris | month in Paris |
/// |---|---|---|---|
/// | l1 | 02-29T22:30 | 29 Feb 23:30 CET | February |
/// | l2 | 02-29T23:00 | 1 Mar 00:00 CET | March |
/// | l3 | 03-17T23:00 | Mon 18 Mar 00:00 CET | March |
/// | l4 | 03-31T01:30 | 31 Mar 03:30 CEST | March |
/// | l5 | 03-31T21:59:59 | 31 Mar 23:59:59 CEST | March |
/// | l6 | 03-31T22:00 | 1 Apr 00:00 CEST | April |
/// | l7 | 03-31T22:30 | 1 Apr 00:30 CEST | April |
/// | l8, l9 | 04-15T12:00, 04-20T12:00 | | April |
/// | l10 | 04-30T21:59 | 30 Apr 23:59 CEST | April |
/// | l11 | 04-30T22:00 | 1 May 00:00 CEST | May |
///
/// April: l6–l10 = 5; March: l2–l5 = 4 → +1, 25 %. (March in UTC would count l3–l7 = 5;
/// the 720 hours before April, from 03-01T22:00Z, would count l3–l5 = 3.)
///
/// The week from Monday 25 March to Monday 1 April (local midnights, 167 hours) without a
/// granularity compares with the 7 days before it, from Monday 18 March 00:00 CET
/// (03-17T23:00Z): l4, l5 = 2 against l3 = 1 → +1, 100 %. (167 hours before would start
/// at 03-18T00:00Z, after l3.)
#[tokio::test]
async fn a_dst_month_and_week_in_paris() {
    let (_kpid, mut client) = serving(vec![
        lead("l1", "2024-02-29T22:30:00Z"),
        lead("l2", "2024-02-29T23:00:00Z"),
        lead("l3", "2024-03-17T23:00:00Z"),
        lead("l4", "2024-03-31T01:30:00Z"),
        lead("l5", "2024-03-31T21:59:59Z"),
        lead("l6", "2024-03-31T22:00:00Z"),
        lead("l7", "2024-03-31T22:30:00Z"),
        lead("l8", "2024-04-15T12:00:00Z"),
        lead("l9", "2024-04-20T12:00:00Z"),
        lead("l10", "2024-04-30T21:59:00Z"),
        lead("l11", "2024-04-30T22:00:00Z"),
    ])
    .await;
    let paris = |start: &str, end: &str, granularity| pb::ComputeRequest {
        time_zone: "Europe/Paris".into(),
        ..compared(
            "sales.leads_created",
            start,
            end,
            granularity,
            pb::Comparison::PreviousPeriod,
        )
    };
    let april = rows(
        &mut client,
        paris(
            "2024-03-31T22:00:00Z",
            "2024-04-30T22:00:00Z",
            pb::Granularity::Month,
        ),
    )
    .await;
    assert_eq!(april.len(), 1);
    check(
        &april[0],
        Expected {
            value: "5",
            previous: "4",
            change: "1",
            change_pct: "25",
            trend: pb::Trend::Improved,
        },
    );
    let week = rows(
        &mut client,
        paris(
            "2024-03-24T23:00:00Z",
            "2024-03-31T22:00:00Z",
            pb::Granularity::Unspecified,
        ),
    )
    .await;
    check(
        &week[0],
        Expected {
            value: "2",
            previous: "1",
            change: "1",
            change_pct: "100",
            trend: pb::Trend::Improved,
        },
    );
}

/// Win rate and revenue by owner, March 2024 against February (UTC):
/// - ann: February won 200 and 300, lost 70 (2/3 = 66.67, revenue 500); March won 400 and
///   100, lost 90 (66.67, 500): unchanged, change 0, 0 %.
/// - bob: nothing in February, won 250 in March (100 %, 250). His February win rate is
///   undefined (no deals were closed): no change, no trend; his February revenue is 0: a
///   change of 250, no percentage, improved.
#[tokio::test]
async fn groups_compare_group_by_group_and_undefined_previous_values() {
    let (_kpid, mut client) = serving(vec![
        deal("f1", "ann", Won, "200", "2024-02-05T10:00:00Z"),
        deal("f2", "ann", Won, "300", "2024-02-15T10:00:00Z"),
        deal("f3", "ann", Lost, "70", "2024-02-20T10:00:00Z"),
        deal("m1", "ann", Won, "400", "2024-03-05T10:00:00Z"),
        deal("m2", "ann", Won, "100", "2024-03-12T10:00:00Z"),
        deal("m3", "ann", Lost, "90", "2024-03-13T10:00:00Z"),
        deal("m4", "bob", Won, "250", "2024-03-14T10:00:00Z"),
    ])
    .await;
    let by_owner = |metric: &str| pb::ComputeRequest {
        group_by: vec!["owner".into()],
        ..compared(
            metric,
            "2024-03-01T00:00:00Z",
            "2024-04-01T00:00:00Z",
            pb::Granularity::Unspecified,
            pb::Comparison::PreviousPeriod,
        )
    };
    let win_rate = rows(&mut client, by_owner("sales.win_rate")).await;
    assert_eq!(win_rate.len(), 2);
    assert_eq!(win_rate[0].group["owner"], "ann");
    check(
        &win_rate[0],
        Expected {
            value: "66.67",
            previous: "66.67",
            change: "0",
            change_pct: "0",
            trend: pb::Trend::Unchanged,
        },
    );
    let bob = &win_rate[1];
    assert_eq!(bob.group["owner"], "bob");
    check(
        bob,
        Expected {
            value: "100",
            previous: "",
            change: "",
            change_pct: "",
            trend: pb::Trend::Unspecified,
        },
    );
    assert_eq!(
        bob.previous_undefined_reason,
        "no deals were closed (won + lost = 0)"
    );
    assert_eq!(bob.previous_inputs["won"], "0");
    assert_eq!(bob.previous_inputs["lost"], "0");
    assert_eq!(
        bob.change_pct_undefined_reason,
        "the previous value is undefined (no deals were closed (won + lost = 0))"
    );

    let revenue = rows(&mut client, by_owner("sales.revenue")).await;
    check(
        &revenue[0],
        Expected {
            value: "500",
            previous: "500",
            change: "0",
            change_pct: "0",
            trend: pb::Trend::Unchanged,
        },
    );
    check(
        &revenue[1],
        Expected {
            value: "250",
            previous: "0",
            change: "250",
            change_pct: "",
            trend: pb::Trend::Improved,
        },
    );
    assert_eq!(
        revenue[1].change_pct_undefined_reason,
        "the previous value is 0"
    );
    assert_eq!(revenue[1].previous_undefined_reason, "");
}

/// Revenue a year earlier (UTC):
/// - February 2024 by month: won 500 (02-10) and 60 (02-29T08:00) → 560; February 2023:
///   600 (02-10) and 40 (02-28T10:00) → 640; 1000 at 2023-03-01T00:00 is March's.
///   560 − 640 = −80; −80 / 640 × 100 = −12.5 %, worsened.
/// - The leap day [2024-02-29, 2024-03-01) compares with [2023-02-28, 2023-03-01): 60
///   against 40 → +20, +50 %.
#[tokio::test]
async fn a_year_earlier_maps_the_leap_day_to_28_february() {
    let (_kpid, mut client) = serving(vec![
        deal("a", "ann", Won, "500", "2024-02-10T10:00:00Z"),
        deal("b", "ann", Won, "60", "2024-02-29T08:00:00Z"),
        deal("c", "ann", Won, "600", "2023-02-10T10:00:00Z"),
        deal("d", "ann", Won, "40", "2023-02-28T10:00:00Z"),
        deal("e", "ann", Won, "1000", "2023-03-01T00:00:00Z"),
    ])
    .await;
    let february = rows(
        &mut client,
        compared(
            "sales.revenue",
            "2024-02-01T00:00:00Z",
            "2024-03-01T00:00:00Z",
            pb::Granularity::Month,
            pb::Comparison::PreviousYear,
        ),
    )
    .await;
    check(
        &february[0],
        Expected {
            value: "560",
            previous: "640",
            change: "-80",
            change_pct: "-12.5",
            trend: pb::Trend::Worsened,
        },
    );
    let leap_day = rows(
        &mut client,
        compared(
            "sales.revenue",
            "2024-02-29T00:00:00Z",
            "2024-03-01T00:00:00Z",
            pb::Granularity::Unspecified,
            pb::Comparison::PreviousYear,
        ),
    )
    .await;
    check(
        &leap_day[0],
        Expected {
            value: "60",
            previous: "40",
            change: "20",
            change_pct: "50",
            trend: pb::Trend::Improved,
        },
    );
}

/// A compared dashboard, February 2024 by month against January (UTC):
/// - win rate: January won 1, lost 1 (50); February won 1 (100) → +50, +100 %;
/// - CAC (lower is better): January 1000 spent, 2 customers acquired (500); February 1200,
///   3 customers (400) → −100, −20 %, improved.
///
/// And the errors: a comparison in calculator mode, or an unknown Comparison value, is
/// INVALID_ARGUMENT on `compare`.
#[tokio::test]
async fn batch_compute_compares_every_metric_and_calculator_mode_refuses() {
    let (_kpid, mut client) = serving(vec![
        deal("d1", "ann", Won, "100", "2024-01-10T10:00:00Z"),
        deal("d2", "ann", Lost, "100", "2024-01-11T10:00:00Z"),
        deal("d3", "ann", Won, "100", "2024-02-10T10:00:00Z"),
        spend("s1", "1000", "2024-01-15T00:00:00Z"),
        spend("s2", "1200", "2024-02-15T00:00:00Z"),
        customer("c1", "2024-01-05T00:00:00Z", pb::Source::Marketing),
        customer("c2", "2024-01-25T00:00:00Z", pb::Source::Sales),
        customer("c3", "2024-02-02T00:00:00Z", pb::Source::Marketing),
        customer("c4", "2024-02-12T00:00:00Z", pb::Source::Marketing),
        customer("c5", "2024-02-29T23:59:59Z", pb::Source::Referral),
    ])
    .await;
    let batch = client
        .batch_compute(pb::BatchComputeRequest {
            start: ts("2024-02-01T00:00:00Z"),
            end: ts("2024-03-01T00:00:00Z"),
            granularity: pb::Granularity::Month.into(),
            compare: pb::Comparison::PreviousPeriod.into(),
            metrics: ["sales.win_rate", "marketing.cac"]
                .iter()
                .map(|id| pb::BatchComputeMetric {
                    metric_id: (*id).into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .await
        .expect("BatchCompute")
        .into_inner();
    assert!(batch.results.iter().all(|r| r.error.is_none()));
    check(
        &batch.results[0].rows[0],
        Expected {
            value: "100",
            previous: "50",
            change: "50",
            change_pct: "100",
            trend: pb::Trend::Improved,
        },
    );
    let cac = &batch.results[1].rows[0];
    check(
        cac,
        Expected {
            value: "400",
            previous: "500",
            change: "-100",
            change_pct: "-20",
            trend: pb::Trend::Improved,
        },
    );
    assert_eq!(cac.previous_inputs["spend"], "1000");
    assert_eq!(cac.previous_inputs["new_customers"], "2");

    let calculator = pb::ComputeRequest {
        metric_id: "marketing.cac".into(),
        inputs: [
            ("spend".to_owned(), "10000".to_owned()),
            ("new_customers".to_owned(), "10".to_owned()),
        ]
        .into(),
        compare: pb::Comparison::PreviousPeriod.into(),
        ..Default::default()
    };
    let status = client.compute(calculator).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let violations = status
        .get_details_bad_request()
        .expect("BadRequest")
        .field_violations;
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].field, "compare");
    assert!(violations[0].description.contains("needs a window"));

    let mut unknown = compared(
        "sales.win_rate",
        "2024-02-01T00:00:00Z",
        "2024-03-01T00:00:00Z",
        pb::Granularity::Month,
        pb::Comparison::PreviousPeriod,
    );
    unknown.compare = 9;
    let status = client.compute(unknown).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let violations = status
        .get_details_bad_request()
        .expect("BadRequest")
        .field_violations;
    assert_eq!(violations[0].field, "compare");
}

/// `kpid compute --compare previous-period` prints the change columns (the month data of
/// the first test, March against February: 750 after 500).
#[tokio::test]
async fn the_cli_shows_the_change_columns() {
    let (kpid, _client) = serving(vec![
        deal("f1", "ann", Won, "500", "2024-02-05T10:00:00Z"),
        deal("m1", "ann", Won, "750", "2024-03-05T10:00:00Z"),
    ])
    .await;
    let output = Command::new(env!("CARGO_BIN_EXE_kpid"))
        .args([
            "compute",
            "sales.revenue",
            "--addr",
            &kpid.addr.to_string(),
            "--from",
            "2024-03-01",
            "--to",
            "2024-04-01",
            "--by",
            "month",
            "--compare",
            "previous-period",
        ])
        .env_remove("KPID_API_KEY")
        .output()
        .expect("run kpid compute");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout,
        "BUCKET   VALUE  PREVIOUS  CHANGE  CHANGE %  TREND     INPUTS\n\
         2024-03  750    500       +250    +50%      improved  won_amount=750\n"
    );
}
