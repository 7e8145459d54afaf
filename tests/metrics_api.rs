//! kpi.v1.MetricsService end to end: the real kpid binary over gRPC on 127.0.0.1.

mod common;

use std::str::FromStr as _;

use common::{deal, ts, Kpid};
use kpi_proto::kpi::v1 as pb;
use rust_decimal::Decimal;
use tonic::Code;
use tonic_types::StatusExt as _;

use kpi_marketing as _;
use kpi_revenue as _;
use kpi_sales as _;
use kpi_success as _;

/// The metric families, one crate each.
const FAMILIES: [&str; 4] = ["sales", "marketing", "success", "revenue"];

/// The ids the family crates register (the binary links the same crates), sorted; only
/// `family`'s when given.
fn registered(family: Option<&str>) -> Vec<&'static str> {
    let registry = kpi_core::registry().expect("registry builds");
    let mut ids: Vec<&str> = registry
        .metrics()
        .map(|m| m.descriptor())
        .filter(|d| family.is_none_or(|f| d.family == f))
        .map(|d| d.id)
        .collect();
    ids.sort_unstable();
    ids
}

#[tokio::test]
async fn list_metrics_lists_every_catalogue_metric_and_filters_by_family() {
    let kpid = Kpid::start();
    let mut client = kpid.metrics().await;

    let all = client
        .list_metrics(pb::ListMetricsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = all.metrics.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, registered(None), "sorted by id, every metric once");

    for family in FAMILIES {
        let expected = registered(Some(family));
        assert!(!expected.is_empty(), "no {family} metric is linked");
        let listed = client
            .list_metrics(pb::ListMetricsRequest {
                family: family.into(),
            })
            .await
            .unwrap()
            .into_inner();
        let ids: Vec<&str> = listed.metrics.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, expected, "family {family}");
        assert!(listed.metrics.iter().all(|m| m.family == family));
    }
    let none = client
        .list_metrics(pb::ListMetricsRequest {
            family: "astrology".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(none.metrics.is_empty());

    let win_rate = all
        .metrics
        .iter()
        .find(|m| m.id == "sales.win_rate")
        .unwrap();
    assert_eq!(win_rate.name, "Win rate");
    assert_eq!(win_rate.unit(), pb::Unit::Percent);
    assert_eq!(win_rate.direction(), pb::Direction::HigherIsBetter);
    let inputs: Vec<&str> = win_rate.inputs.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(inputs, ["won", "lost"]);
    let precision = win_rate
        .params
        .iter()
        .find(|p| p.name == "precision")
        .expect("every metric takes precision");
    assert_eq!(precision.default_value, "2");
    assert!(win_rate.dimensions.iter().any(|d| d == "owner"));
    for m in &all.metrics {
        assert!(!m.formula.is_empty(), "{} has a formula", m.id);
        assert!(!m.description.is_empty(), "{} has a description", m.id);
        assert_ne!(m.unit(), pb::Unit::Unspecified, "{}", m.id);
        assert_ne!(m.direction(), pb::Direction::Unspecified, "{}", m.id);
    }
}

/// A worked example of METRICS.md: given values (inputs, or params where the metric
/// takes that name as a parameter) and the expected answer.
struct Example {
    metric_id: &'static str,
    given: &'static [(&'static str, &'static str)],
    value: &'static str,
}

const WORKED_EXAMPLES: &[Example] = &[
    Example {
        metric_id: "sales.win_rate",
        given: &[("won", "30"), ("lost", "70")],
        value: "30",
    },
    Example {
        metric_id: "sales.average_deal_size",
        given: &[("won_amount", "900"), ("won", "3")],
        value: "300",
    },
    Example {
        metric_id: "sales.sales_cycle_days",
        given: &[("cycle_days_total", "30"), ("won", "2")],
        value: "15",
    },
    Example {
        metric_id: "sales.quota_attainment",
        given: &[("won_amount", "90000"), ("quota", "100000")],
        value: "90",
    },
    Example {
        metric_id: "sales.lead_conversion_rate",
        given: &[("converted", "30"), ("leads", "100")],
        value: "30",
    },
    Example {
        metric_id: "sales.upsell_rate",
        given: &[("upsold", "20"), ("customers", "200")],
        value: "10",
    },
    Example {
        metric_id: "marketing.cac",
        given: &[("spend", "10000"), ("new_customers", "10")],
        value: "1000",
    },
    Example {
        metric_id: "marketing.cac_payback_months",
        given: &[
            ("cac", "1000"),
            ("new_customer_mrr", "100"),
            ("gross_margin", "0.8"),
        ],
        value: "12.5",
    },
    Example {
        metric_id: "marketing.clv",
        given: &[
            ("revenue", "100000"),
            ("purchases", "2500"),
            ("customers", "500"),
            ("years", "1"),
            ("lifespan_years", "4"),
        ],
        value: "800",
    },
    Example {
        metric_id: "marketing.clv",
        given: &[
            ("revenue", "87500"),
            ("purchases", "2500"),
            ("customers", "500"),
            ("years", "1"),
            ("lifespan_years", "6"),
        ],
        value: "1050",
    },
    Example {
        metric_id: "marketing.clv_net",
        given: &[
            ("annual_profit_per_customer", "3000"),
            ("retention_years", "2"),
            ("cac", "1000"),
        ],
        value: "5000",
    },
    Example {
        metric_id: "marketing.clv_cac_ratio",
        given: &[("clv", "3000"), ("cac", "1000")],
        value: "3",
    },
    Example {
        metric_id: "marketing.campaign_roi",
        given: &[("attributed_revenue", "15000"), ("campaign_spend", "5000")],
        value: "200",
    },
    Example {
        metric_id: "success.churn_rate",
        given: &[("lost", "2"), ("at_start", "100")],
        value: "2",
    },
    Example {
        metric_id: "success.retention_rate",
        given: &[
            ("at_end", "103"),
            ("new_retained", "5"),
            ("at_start", "100"),
        ],
        value: "98",
    },
    Example {
        metric_id: "success.renewal_rate",
        given: &[("renewed", "900"), ("due", "1000")],
        value: "90",
    },
    Example {
        metric_id: "success.renewal_rate",
        given: &[("renewed", "600"), ("due", "1000")],
        value: "60",
    },
    Example {
        metric_id: "success.nps",
        given: &[("promoters", "5"), ("detractors", "2"), ("responses", "10")],
        value: "30",
    },
    Example {
        metric_id: "success.csat",
        given: &[
            ("positive", "80"),
            ("responses", "100"),
            ("scale", "10"),
            ("threshold", "6"),
        ],
        value: "80",
    },
    Example {
        metric_id: "revenue.mrr",
        given: &[("mrr", "10000")],
        value: "10000",
    },
    Example {
        metric_id: "revenue.total_monthly_revenue",
        given: &[("mrr", "10000"), ("non_recurring", "6000"), ("months", "3")],
        value: "12000",
    },
];

fn decimal(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap_or_else(|_| panic!("`{text}` is not a decimal"))
}

#[tokio::test]
async fn every_worked_example_computes_in_calculator_mode() {
    let kpid = Kpid::start();
    let mut client = kpid.metrics().await;
    let catalogue = client
        .list_metrics(pb::ListMetricsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .metrics;

    let mut failures = Vec::new();
    for example in WORKED_EXAMPLES {
        let Some(descriptor) = catalogue.iter().find(|m| m.id == example.metric_id) else {
            failures.push(format!("{}: not listed", example.metric_id));
            continue;
        };
        let mut request = pb::ComputeRequest {
            metric_id: example.metric_id.into(),
            ..Default::default()
        };
        for (name, value) in example.given {
            if descriptor.inputs.iter().any(|i| i.name == *name) {
                request.inputs.insert((*name).into(), (*value).into());
            } else if descriptor.params.iter().any(|p| p.name == *name) {
                request.params.insert((*name).into(), (*value).into());
            } else {
                failures.push(format!(
                    "{}: `{name}` is neither an input nor a param",
                    example.metric_id
                ));
            }
        }
        let answer = match client.compute(request.clone()).await {
            Ok(answer) => answer.into_inner(),
            Err(status) => {
                failures.push(format!(
                    "{}: {:?} {}",
                    example.metric_id,
                    status.code(),
                    status.message()
                ));
                continue;
            }
        };
        if answer.rows.len() != 1 {
            failures.push(format!("{}: {} rows", example.metric_id, answer.rows.len()));
            continue;
        }
        let row = &answer.rows[0];
        if row.value != example.value || !row.undefined_reason.is_empty() {
            failures.push(format!(
                "{} {:?}: value {:?} (undefined: {:?}), expected {}",
                example.metric_id, example.given, row.value, row.undefined_reason, example.value
            ));
        }
        for (name, given) in &request.inputs {
            match row.inputs.get(name) {
                Some(reported) if decimal(reported) == decimal(given) => {}
                other => failures.push(format!(
                    "{}: input {name} reported as {other:?}, given {given}",
                    example.metric_id
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "worked examples failed:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn errors_carry_grpc_codes_and_field_violations() {
    let kpid = Kpid::start();
    let mut client = kpid.metrics().await;

    let status = client
        .compute(pb::ComputeRequest {
            metric_id: "sales.nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(
        status.message().contains("sales.nope"),
        "{}",
        status.message()
    );

    let status = client
        .compute(pb::ComputeRequest {
            metric_id: "sales.win_rate".into(),
            inputs: [("won".into(), "12,5".into()), ("lost".into(), "70".into())].into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let bad = status
        .get_details_bad_request()
        .expect("google.rpc.BadRequest");
    assert_eq!(bad.field_violations.len(), 1);
    assert_eq!(bad.field_violations[0].field, "inputs[won]");
    assert!(
        bad.field_violations[0]
            .description
            .contains("`12,5` is not a decimal number"),
        "{:?}",
        bad.field_violations[0]
    );

    let window = |start: &str, end: &str| pb::ComputeRequest {
        metric_id: "sales.win_rate".into(),
        start: ts(start),
        end: ts(end),
        ..Default::default()
    };
    let cases = [
        (
            window("2024-02-01T00:00:00Z", "2024-01-01T00:00:00Z"),
            "end",
        ),
        (
            pb::ComputeRequest {
                end: None,
                ..window("2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z")
            },
            "end",
        ),
        (
            pb::ComputeRequest {
                time_zone: "Atlantis/Capital".into(),
                ..window("2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z")
            },
            "time_zone",
        ),
        (
            pb::ComputeRequest {
                group_by: vec!["colour".into()],
                ..window("2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z")
            },
            "group_by[0]",
        ),
        (
            pb::ComputeRequest {
                group_by: vec!["agent".into()],
                ..window("2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z")
            },
            "group_by[0]",
        ),
        (
            pb::ComputeRequest {
                params: [("bogus".into(), "1".into())].into(),
                ..window("2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z")
            },
            "params[bogus]",
        ),
        (
            pb::ComputeRequest {
                metric_id: "sales.win_rate".into(),
                inputs: [("won".into(), "30".into())].into(),
                ..Default::default()
            },
            "inputs[lost]",
        ),
    ];
    for (request, field) in cases {
        let status = client.compute(request.clone()).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{request:?}: {status:?}"
        );
        let bad = status
            .get_details_bad_request()
            .expect("google.rpc.BadRequest");
        let fields: Vec<&str> = bad
            .field_violations
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(fields, [field], "{request:?}");
    }

    let status = client
        .compute(pb::ComputeRequest {
            granularity: pb::Granularity::Day.into(),
            ..window("1800-01-01T00:00:00Z", "2100-01-01T00:00:00Z")
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
}

#[tokio::test]
async fn stored_deals_answer_windows_series_groups_and_batches() {
    let kpid = Kpid::start();
    let mut records = kpid.records().await;
    let put = records
        .put_records(pb::PutRecordsRequest {
            records: vec![
                deal(
                    "d1",
                    "alice",
                    pb::DealStatus::Won,
                    "100",
                    "2024-01-15T10:00:00Z",
                ),
                deal(
                    "d2",
                    "alice",
                    pb::DealStatus::Lost,
                    "50",
                    "2024-01-20T10:00:00Z",
                ),
                deal(
                    "d3",
                    "bob",
                    pb::DealStatus::Won,
                    "300",
                    "2024-02-10T10:00:00Z",
                ),
                deal(
                    "d4",
                    "bob",
                    pb::DealStatus::Won,
                    "200",
                    "2024-02-11T10:00:00Z",
                ),
                deal(
                    "d5",
                    "carol",
                    pb::DealStatus::Lost,
                    "80",
                    "2024-03-05T10:00:00Z",
                ),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(put.accepted, 5, "{:?}", put.rejected);

    let mut client = kpid.metrics().await;
    let q1 = |metric_id: &str| pb::ComputeRequest {
        metric_id: metric_id.into(),
        start: ts("2024-01-01T00:00:00Z"),
        end: ts("2024-04-01T00:00:00Z"),
        ..Default::default()
    };

    let whole = client
        .compute(q1("sales.win_rate"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(whole.rows.len(), 1);
    assert_eq!(whole.rows[0].value, "60");
    assert_eq!(whole.rows[0].inputs["won"], "3");
    assert_eq!(whole.rows[0].inputs["lost"], "2");
    assert_eq!(whole.rows[0].bucket_start, None);

    let monthly = client
        .compute(pb::ComputeRequest {
            granularity: pb::Granularity::Month.into(),
            ..q1("sales.win_rate")
        })
        .await
        .unwrap()
        .into_inner();
    let series: Vec<_> = monthly
        .rows
        .iter()
        .map(|r| (r.bucket_start.unwrap(), r.value.as_str()))
        .collect();
    assert_eq!(
        series,
        [
            (ts("2024-01-01T00:00:00Z").unwrap(), "50"),
            (ts("2024-02-01T00:00:00Z").unwrap(), "100"),
            (ts("2024-03-01T00:00:00Z").unwrap(), "0"),
        ]
    );

    let by_owner = client
        .compute(pb::ComputeRequest {
            group_by: vec!["owner".into()],
            ..q1("sales.win_rate")
        })
        .await
        .unwrap()
        .into_inner();
    let groups: Vec<_> = by_owner
        .rows
        .iter()
        .map(|r| (r.group["owner"].as_str(), r.value.as_str()))
        .collect();
    assert_eq!(groups, [("alice", "50"), ("bob", "100"), ("carol", "0")]);

    let bob = client
        .compute(pb::ComputeRequest {
            filters: [("owner".into(), "bob".into())].into(),
            ..q1("sales.win_rate")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bob.rows[0].value, "100");

    let empty = client
        .compute(pb::ComputeRequest {
            start: ts("2023-01-01T00:00:00Z"),
            end: ts("2023-02-01T00:00:00Z"),
            ..q1("sales.win_rate")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(empty.rows[0].value, "");
    assert!(!empty.rows[0].undefined_reason.is_empty());

    let batch = client
        .batch_compute(pb::BatchComputeRequest {
            start: ts("2024-01-01T00:00:00Z"),
            end: ts("2024-04-01T00:00:00Z"),
            metrics: vec![
                pb::BatchComputeMetric {
                    metric_id: "sales.win_rate".into(),
                    ..Default::default()
                },
                pb::BatchComputeMetric {
                    metric_id: "sales.revenue".into(),
                    ..Default::default()
                },
                pb::BatchComputeMetric {
                    metric_id: "sales.nope".into(),
                    ..Default::default()
                },
                pb::BatchComputeMetric {
                    metric_id: "sales.win_rate".into(),
                    params: [("precision".into(), "many".into())].into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = batch.results.iter().map(|r| r.metric_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "sales.win_rate",
            "sales.revenue",
            "sales.nope",
            "sales.win_rate"
        ]
    );
    assert_eq!(batch.results[0].rows[0].value, "60");
    assert_eq!(batch.results[1].rows[0].value, "600");
    let not_found = batch.results[2]
        .error
        .as_ref()
        .expect("unknown metric fails alone");
    assert_eq!(not_found.code, Code::NotFound as i32);
    let invalid = batch.results[3]
        .error
        .as_ref()
        .expect("bad param fails alone");
    assert_eq!(invalid.code, Code::InvalidArgument as i32);
    assert_eq!(invalid.field_violations[0].field, "params[precision]");

    // Explicit inputs replace stored ones for the inputs given.
    let mixed = client
        .compute(pb::ComputeRequest {
            inputs: [("lost".into(), "0".into())].into(),
            ..q1("sales.win_rate")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mixed.rows[0].value, "100");
    assert_eq!(mixed.rows[0].inputs["won"], "3");
}
