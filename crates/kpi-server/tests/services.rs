//! The handlers in-process over a temporary store, with one test metric linked
//! (`testkit.win_share` = won / (won + lost) × 100 over stored deals), and `serve` on a
//! loopback port.

use std::time::Duration;

use kpi_core::{
    percent, Dimension, Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor,
    MetricError, Params, Unit, Value,
};
use kpi_proto::kpi::v1 as pb;
use kpi_proto::kpi::v1::metrics_service_server::MetricsService as _;
use kpi_proto::kpi::v1::records_service_server::RecordsService as _;
use kpi_server::{Limits, MetricsApi, RecordsApi, ServerConfig};
use kpi_store::Store;
use pb::record::Record as Kind;
use tonic::{Code, Request};
use tonic_types::StatusExt as _;

struct WinShare;

static WIN_SHARE: MetricDescriptor = MetricDescriptor {
    id: "testkit.win_share",
    name: "Win share",
    family: "testkit",
    description: "Share of closed deals that were won (test metric).",
    formula: "won / (won + lost) × 100",
    unit: Unit::Percent,
    direction: Direction::HigherIsBetter,
    inputs: &[
        InputSpec::stored("won", "deals won", InputKind::Count, Measure::DealsWon),
        InputSpec::stored("lost", "deals lost", InputKind::Count, Measure::DealsLost),
    ],
    params: &[],
    dimensions: &[Dimension::Owner],
    default_group_by: &[],
};

impl Metric for WinShare {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &WIN_SHARE
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        let won = inputs.get("won")?;
        let lost = inputs.get("lost")?;
        percent(won, won + lost, "no deals were closed")
    }
}

kpi_core::register_metric!(WinShare);

fn ts(text: &str) -> Option<prost_types::Timestamp> {
    let t: jiff::Timestamp = text.parse().unwrap();
    Some(prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: t.subsec_nanosecond(),
    })
}

fn deal(id: &str, owner: &str, status: pb::DealStatus, closed_at: &str) -> pb::Record {
    pb::Record {
        record: Some(Kind::Deal(pb::Deal {
            id: id.into(),
            owner: owner.into(),
            amount: "100".into(),
            created_at: ts("2024-01-01T00:00:00Z"),
            closed_at: ts(closed_at),
            status: status.into(),
            kind: pb::DealKind::NewBusiness.into(),
            ..Default::default()
        })),
    }
}

fn apis() -> (MetricsApi, RecordsApi) {
    let store = Store::temporary().unwrap();
    let registry = kpi_core::registry().unwrap();
    (
        MetricsApi::new(registry, store.clone(), Limits::default()),
        RecordsApi::new(store),
    )
}

#[tokio::test]
async fn list_metrics_filters_by_family() {
    let (metrics, _) = apis();
    let all = metrics
        .list_metrics(Request::new(pb::ListMetricsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.metrics.len(), 1);
    let d = &all.metrics[0];
    assert_eq!(d.id, "testkit.win_share");
    assert_eq!(d.unit(), pb::Unit::Percent);
    assert_eq!(d.direction(), pb::Direction::HigherIsBetter);
    assert_eq!(d.inputs[0].name, "won");
    assert_eq!(d.inputs[0].kind(), pb::InputKind::Count);
    assert_eq!(d.params[0].name, "precision");
    assert_eq!(d.params[0].default_value, "2");
    assert_eq!(d.params[0].kind(), pb::ParamKind::Integer);
    assert_eq!(d.dimensions, ["owner"]);

    let none = metrics
        .list_metrics(Request::new(pb::ListMetricsRequest {
            family: "sales".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(none.metrics.is_empty());
}

#[tokio::test]
async fn calculator_mode_answers_from_inputs() {
    let (metrics, _) = apis();
    let answer = metrics
        .compute(Request::new(pb::ComputeRequest {
            metric_id: "testkit.win_share".into(),
            inputs: [("won".into(), "1".into()), ("lost".into(), "2".into())].into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.rows.len(), 1);
    assert_eq!(answer.rows[0].value, "33.33");
    assert_eq!(answer.rows[0].inputs["won"], "1");
}

#[tokio::test]
async fn stored_deals_answer_by_month_and_owner() {
    let (metrics, records) = apis();
    let put = records
        .put_records(Request::new(pb::PutRecordsRequest {
            records: vec![
                deal("d1", "alice", pb::DealStatus::Won, "2024-01-10T00:00:00Z"),
                deal("d2", "alice", pb::DealStatus::Lost, "2024-01-20T00:00:00Z"),
                deal("d3", "bob", pb::DealStatus::Won, "2024-02-05T00:00:00Z"),
            ],
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(put.accepted, 3, "{:?}", put.rejected);

    let answer = metrics
        .compute(Request::new(pb::ComputeRequest {
            metric_id: "testkit.win_share".into(),
            start: ts("2024-01-01T00:00:00Z"),
            end: ts("2024-03-01T00:00:00Z"),
            granularity: pb::Granularity::Month.into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let values: Vec<_> = answer
        .rows
        .iter()
        .map(|r| (r.bucket_start.unwrap().seconds, r.value.as_str()))
        .collect();
    assert_eq!(values, [(1_704_067_200, "50"), (1_706_745_600, "100")]);

    let answer = metrics
        .compute(Request::new(pb::ComputeRequest {
            metric_id: "testkit.win_share".into(),
            start: ts("2024-01-01T00:00:00Z"),
            end: ts("2024-03-01T00:00:00Z"),
            group_by: vec!["owner".into()],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let values: Vec<_> = answer
        .rows
        .iter()
        .map(|r| (r.group["owner"].as_str(), r.value.as_str()))
        .collect();
    assert_eq!(values, [("alice", "50"), ("bob", "100")]);
}

#[tokio::test]
async fn errors_map_to_grpc_codes() {
    let (metrics, _) = apis();
    let status = metrics
        .compute(Request::new(pb::ComputeRequest {
            metric_id: "testkit.nope".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    let status = metrics
        .compute(Request::new(pb::ComputeRequest {
            metric_id: "testkit.win_share".into(),
            inputs: [("won".into(), "12,5".into()), ("lost".into(), "1".into())].into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let bad = status.get_details_bad_request().unwrap();
    assert_eq!(bad.field_violations[0].field, "inputs[won]");

    let status = metrics
        .compute(Request::new(pb::ComputeRequest {
            metric_id: "testkit.win_share".into(),
            start: ts("1800-01-01T00:00:00Z"),
            end: ts("2100-01-01T00:00:00Z"),
            granularity: pb::Granularity::Day.into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
}

#[tokio::test]
async fn batch_results_keep_order_and_per_metric_errors() {
    let (metrics, _) = apis();
    let answer = metrics
        .batch_compute(Request::new(pb::BatchComputeRequest {
            metrics: vec![
                pb::BatchComputeMetric {
                    metric_id: "testkit.win_share".into(),
                    inputs: [("won".into(), "3".into()), ("lost".into(), "1".into())].into(),
                    ..Default::default()
                },
                pb::BatchComputeMetric {
                    metric_id: "testkit.nope".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.results.len(), 2);
    assert_eq!(answer.results[0].rows[0].value, "75");
    assert!(answer.results[0].error.is_none());
    assert_eq!(answer.results[1].metric_id, "testkit.nope");
    assert_eq!(
        answer.results[1].error.as_ref().unwrap().code,
        Code::NotFound as i32
    );
}

#[tokio::test]
async fn put_rejects_by_index_and_keeps_valid_records() {
    let (_, records) = apis();
    let mut bad_amount = deal("d2", "alice", pb::DealStatus::Won, "2024-01-10T00:00:00Z");
    if let Some(Kind::Deal(d)) = bad_amount.record.as_mut() {
        d.amount = "12,5".into();
    }
    let open_with_close = deal("d3", "bob", pb::DealStatus::Open, "2024-01-10T00:00:00Z");
    let put = records
        .put_records(Request::new(pb::PutRecordsRequest {
            records: vec![
                deal("d1", "alice", pb::DealStatus::Won, "2024-01-10T00:00:00Z"),
                bad_amount,
                pb::Record { record: None },
                open_with_close,
                deal("d4", "bob", pb::DealStatus::Lost, "2024-01-10T00:00:00Z"),
            ],
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(put.accepted, 2);
    let rejected: Vec<_> = put.rejected.iter().map(|r| r.index).collect();
    assert_eq!(rejected, [1, 2, 3]);
    assert!(put.rejected[0]
        .reason
        .starts_with("deal.amount: `12,5` is not a decimal number"));
    assert!(put.rejected[1].reason.starts_with("record: no kind set"));
    assert!(
        put.rejected[2].reason.starts_with("deal: closed_at"),
        "{}",
        put.rejected[2].reason
    );

    let listed = records
        .list_records(Request::new(pb::ListRecordsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<_> = listed
        .records
        .iter()
        .map(|r| match r.record.as_ref().unwrap() {
            Kind::Deal(d) => d.id.as_str(),
            other => panic!("not a deal: {other:?}"),
        })
        .collect();
    assert_eq!(ids, ["d1", "d4"]);
    assert!(listed.next_page_token.is_empty());
}

#[tokio::test]
async fn list_and_delete_validate_their_arguments() {
    let (_, records) = apis();
    for (request, field) in [
        (
            pb::ListRecordsRequest {
                kind: "deals".into(),
                ..Default::default()
            },
            "kind",
        ),
        (
            pb::ListRecordsRequest {
                page_size: -1,
                ..Default::default()
            },
            "page_size",
        ),
        (
            pb::ListRecordsRequest {
                page_token: "not a token".into(),
                ..Default::default()
            },
            "page_token",
        ),
    ] {
        let status = records
            .list_records(Request::new(request))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        let bad = status.get_details_bad_request().unwrap();
        assert_eq!(bad.field_violations[0].field, field);
    }

    let status = records
        .delete_records(Request::new(pb::DeleteRecordsRequest {
            keys: vec![pb::RecordKey {
                kind: "dael".into(),
                id: String::new(),
            }],
        }))
        .await
        .unwrap_err();
    let bad = status.get_details_bad_request().unwrap();
    let fields: Vec<_> = bad
        .field_violations
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    assert_eq!(fields, ["keys[0].kind", "keys[0].id"]);
}

#[tokio::test]
async fn serve_answers_health_and_stops_on_signal() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let config = ServerConfig {
        shutdown_grace: Duration::from_secs(5),
        ..ServerConfig::default()
    };
    let server = tokio::spawn(kpi_server::serve(
        Store::temporary().unwrap(),
        config,
        listener,
        async {
            let _ = stop_rx.await;
        },
    ));

    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    for service in ["", "kpi.v1.MetricsService", "kpi.v1.RecordsService"] {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status();
        assert_eq!(
            status,
            tonic_health::pb::health_check_response::ServingStatus::Serving,
            "{service:?}"
        );
    }
    drop(health);
    drop(channel);

    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("serve stops after the signal")
        .unwrap()
        .unwrap();
}
