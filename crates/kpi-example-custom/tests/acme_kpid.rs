//! The team's own binary, end to end: `acme-kpid` lists the team's metrics beside the
//! built-in catalogue and computes them from records stored over gRPC — among them two
//! over measures the team declares (meetings held, seats won).

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

use kpi_proto::kpi::v1 as pb;
use kpid as _;
use pb::metrics_service_client::MetricsServiceClient;
use pb::records_service_client::RecordsServiceClient;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(data_dir: &std::path::Path) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_acme-kpid"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env_remove("KPID_API_KEYS")
        .env_remove("KPID_LOG_FORMAT")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn acme-kpid");
    let stderr = child.stderr.take().unwrap();
    let server = Server(child);
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("acme-kpid logs its ready line")
            .unwrap();
        if let Some(rest) = line.split("kpid ready addr=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (server, format!("http://{addr}"))
}

fn ts(s: &str) -> prost_types::Timestamp {
    let t: jiff::Timestamp = s.parse().unwrap();
    prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: 0,
    }
}

fn deal(id: &str, amount: &str, stages: &[(&str, &str)], closed: Option<&str>) -> pb::Record {
    pb::Record {
        record: Some(pb::record::Record::Deal(pb::Deal {
            id: id.into(),
            owner: "ann".into(),
            amount: amount.into(),
            created_at: Some(ts("2024-01-02T00:00:00Z")),
            closed_at: closed.map(ts),
            status: if closed.is_some() {
                pb::DealStatus::Won
            } else {
                pb::DealStatus::Open
            } as i32,
            kind: pb::DealKind::NewBusiness as i32,
            stage_history: stages
                .iter()
                .map(|(stage, at)| pb::StageEntry {
                    stage: (*stage).into(),
                    entered_at: Some(ts(at)),
                })
                .collect(),
            ..Default::default()
        })),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_custom_metric_is_listed_and_computed_from_stored_deals() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, url) = start(dir.path());
    let mut metrics = MetricsServiceClient::connect(url.clone()).await.unwrap();
    let mut records = RecordsServiceClient::connect(url).await.unwrap();

    let listed = metrics
        .list_metrics(pb::ListMetricsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .metrics;
    // Every built-in kpid links, plus acme.weighted_pipeline.
    let built_ins = kpi_core::registry()
        .expect("registry builds")
        .metrics()
        .filter(|m| m.descriptor().family != "acme")
        .count();
    assert!(built_ins >= 41, "kpid's built-ins are linked: {built_ins}");
    assert_eq!(
        listed.len(),
        built_ins + 3,
        "the built-ins, acme.weighted_pipeline, meetings_per_won_deal and seats_per_won_deal"
    );
    let acme = listed
        .iter()
        .find(|m| m.id == "acme.weighted_pipeline")
        .expect("listed");
    assert_eq!(acme.family, "acme");

    // d1: 10 000 in demo at the end of January; d2: 4 000 moved from qualification to
    // negotiation on 20 January; d3: 2 500 still in qualification; d4: won in January, so
    // not open at the end.
    let put = records
        .put_records(pb::PutRecordsRequest {
            records: vec![
                deal(
                    "d1",
                    "10000",
                    &[
                        ("qualification", "2024-01-02T00:00:00Z"),
                        ("demo", "2024-01-10T00:00:00Z"),
                    ],
                    None,
                ),
                deal(
                    "d2",
                    "4000",
                    &[
                        ("qualification", "2024-01-02T00:00:00Z"),
                        ("negotiation", "2024-01-20T00:00:00Z"),
                    ],
                    None,
                ),
                deal(
                    "d3",
                    "2500",
                    &[("qualification", "2024-01-02T00:00:00Z")],
                    None,
                ),
                deal(
                    "d4",
                    "9000",
                    &[("proposal", "2024-01-05T00:00:00Z")],
                    Some("2024-01-25T00:00:00Z"),
                ),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(put.accepted, 4, "{:?}", put.rejected);

    let answer = metrics
        .compute(pb::ComputeRequest {
            metric_id: "acme.weighted_pipeline".into(),
            start: Some(ts("2024-01-01T00:00:00Z")),
            end: Some(ts("2024-02-01T00:00:00Z")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let row = &answer.rows[0];
    // demo 10 000 × 0.3 + negotiation 4 000 × 0.8 + qualification 2 500 × 0.1
    // = 3 000 + 3 200 + 250 = 6 450; open_amount = 16 500 (d4 is closed).
    assert_eq!(row.value, "6450");
    assert_eq!(row.inputs["open_amount"], "16500");
    assert_eq!(row.inputs["open_amount.demo"], "10000");

    // On 15 January d2 was still in qualification: 10 000 × 0.3 + (4 000 + 2 500) × 0.1.
    let mid = metrics
        .compute(pb::ComputeRequest {
            metric_id: "acme.weighted_pipeline".into(),
            start: Some(ts("2024-01-01T00:00:00Z")),
            end: Some(ts("2024-01-15T00:00:00Z")),
            params: [("p_demo".to_owned(), "0.5".to_owned())].into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // With p_demo = 0.5: 5 000 + 650 = 5 650; d4 was open in proposal then: + 9 000 × 0.6.
    assert_eq!(mid.rows[0].value, "11050");
}

fn attributes(
    pairs: &[(&str, pb::attribute_value::Value)],
) -> std::collections::BTreeMap<String, pb::AttributeValue> {
    pairs
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

fn closed_deal(
    id: &str,
    owner: &str,
    status: pb::DealStatus,
    closed: &str,
    attrs: &[(&str, pb::attribute_value::Value)],
) -> pb::Record {
    pb::Record {
        record: Some(pb::record::Record::Deal(pb::Deal {
            id: id.into(),
            owner: owner.into(),
            amount: "1000".into(),
            created_at: Some(ts("2023-12-01T00:00:00Z")),
            closed_at: Some(ts(closed)),
            status: status as i32,
            kind: pb::DealKind::NewBusiness as i32,
            attributes: attributes(attrs),
            ..Default::default()
        })),
    }
}

fn activity(id: &str, kind: &str, owner: &str, at: &str) -> pb::Record {
    pb::Record {
        record: Some(pb::record::Record::Activity(pb::Activity {
            id: id.into(),
            r#type: kind.into(),
            occurred_at: Some(ts(at)),
            owner: Some(owner.into()),
            ..Default::default()
        })),
    }
}

async fn january(
    metrics: &mut MetricsServiceClient<tonic::transport::Channel>,
    metric: &str,
    group_by: &[&str],
    filters: &[(&str, &str)],
) -> Result<Vec<pb::Row>, tonic::Status> {
    let answer = metrics
        .compute(pb::ComputeRequest {
            metric_id: metric.into(),
            start: Some(ts("2024-01-01T00:00:00Z")),
            end: Some(ts("2024-02-01T00:00:00Z")),
            group_by: group_by.iter().map(|g| (*g).to_owned()).collect(),
            filters: filters
                .iter()
                .map(|(d, v)| ((*d).to_owned(), (*v).to_owned()))
                .collect(),
            ..Default::default()
        })
        .await?;
    Ok(answer.into_inner().rows)
}

/// The row of `owner` among rows grouped by owner.
fn of_owner<'a>(rows: &'a [pb::Row], owner: &str) -> &'a pb::Row {
    rows.iter()
        .find(|r| r.group.get("owner").map(String::as_str) == Some(owner))
        .unwrap_or_else(|| panic!("a row for {owner}: {rows:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_over_declared_measures_count_activities_and_sum_a_deal_attribute() {
    use pb::attribute_value::Value::{Decimal as Dec, Text};
    let dir = tempfile::tempdir().unwrap();
    let (_server, url) = start(dir.path());
    let mut metrics = MetricsServiceClient::connect(url.clone()).await.unwrap();
    let mut records = RecordsServiceClient::connect(url).await.unwrap();

    // Deals closed in January 2024: w1 (ann, 10 seats, EMEA), w2 (bob, 5.5 seats, AMER),
    // w3 (ann, no seats) won; l1 (ann, 100 seats) lost; w4 (ann, 7 seats) won in February.
    // Activities: meetings a1, a2 (ann), a4, a6 (bob, the window's last second) in
    // January, a5 (ann) in February; a3 (ann) a call.
    let put = records
        .put_records(pb::PutRecordsRequest {
            records: vec![
                closed_deal(
                    "w1",
                    "ann",
                    pb::DealStatus::Won,
                    "2024-01-10T00:00:00Z",
                    &[("seats", Dec("10".into())), ("region", Text("EMEA".into()))],
                ),
                closed_deal(
                    "w2",
                    "bob",
                    pb::DealStatus::Won,
                    "2024-01-20T00:00:00Z",
                    &[
                        ("seats", Dec("5.5".into())),
                        ("region", Text("AMER".into())),
                    ],
                ),
                closed_deal(
                    "w3",
                    "ann",
                    pb::DealStatus::Won,
                    "2024-01-25T00:00:00Z",
                    &[],
                ),
                closed_deal(
                    "l1",
                    "ann",
                    pb::DealStatus::Lost,
                    "2024-01-12T00:00:00Z",
                    &[("seats", Dec("100".into()))],
                ),
                closed_deal(
                    "w4",
                    "ann",
                    pb::DealStatus::Won,
                    "2024-02-03T00:00:00Z",
                    &[("seats", Dec("7".into()))],
                ),
                activity("a1", "meeting", "ann", "2024-01-05T10:00:00Z"),
                activity("a2", "meeting", "ann", "2024-01-15T10:00:00Z"),
                activity("a3", "call", "ann", "2024-01-16T10:00:00Z"),
                activity("a4", "meeting", "bob", "2024-01-18T10:00:00Z"),
                activity("a5", "meeting", "ann", "2024-02-02T10:00:00Z"),
                activity("a6", "meeting", "bob", "2024-01-31T23:59:59Z"),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(put.accepted, 11, "{:?}", put.rejected);

    // Seats: 10 + 5.5 + 0 (w3 has none) = 15.5 over 3 won deals = 5.1666… → 5.17; the
    // lost deal's and February's seats are not counted.
    let rows = january(&mut metrics, "acme.seats_per_won_deal", &[], &[])
        .await
        .unwrap();
    assert_eq!(rows[0].value, "5.17");
    assert_eq!(rows[0].inputs["seats"], "15.5");
    assert_eq!(rows[0].inputs["won"], "3");
    // By owner: ann 10 / 2 = 5, bob 5.5 / 1 = 5.5.
    let rows = january(&mut metrics, "acme.seats_per_won_deal", &["owner"], &[])
        .await
        .unwrap();
    assert_eq!(of_owner(&rows, "ann").value, "5");
    assert_eq!(of_owner(&rows, "bob").value, "5.5");
    // Filtered by the deal's own attribute: EMEA is w1 alone, 10 / 1.
    let rows = january(
        &mut metrics,
        "acme.seats_per_won_deal",
        &[],
        &[("attr.region", "EMEA")],
    )
    .await
    .unwrap();
    assert_eq!(rows[0].value, "10");
    assert_eq!(rows[0].inputs["seats"], "10");

    // Meetings: a1, a2, a4, a6 = 4 over 3 won deals = 1.333… → 1.33.
    let rows = january(&mut metrics, "acme.meetings_per_won_deal", &[], &[])
        .await
        .unwrap();
    assert_eq!(rows[0].value, "1.33");
    assert_eq!(rows[0].inputs["meetings"], "4");
    assert_eq!(rows[0].inputs["won"], "3");
    // By owner: ann 2 meetings / 2 won = 1, bob 2 / 1 = 2.
    let rows = january(&mut metrics, "acme.meetings_per_won_deal", &["owner"], &[])
        .await
        .unwrap();
    assert_eq!(of_owner(&rows, "ann").value, "1");
    assert_eq!(of_owner(&rows, "bob").value, "2");

    // A deal's attribute is no dimension of activities: refused, naming it.
    let refused = january(
        &mut metrics,
        "acme.meetings_per_won_deal",
        &[],
        &[("attr.region", "EMEA")],
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().contains("attr.region"),
        "{}",
        refused.message()
    );

    // The call a3 becomes a meeting: the kept part of the declared measure is rebuilt.
    let put = records
        .put_records(pb::PutRecordsRequest {
            records: vec![activity("a3", "meeting", "ann", "2024-01-16T10:00:00Z")],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(put.accepted, 1, "{:?}", put.rejected);
    let rows = january(&mut metrics, "acme.meetings_per_won_deal", &["owner"], &[])
        .await
        .unwrap();
    assert_eq!(of_owner(&rows, "ann").value, "1.5");
    assert_eq!(of_owner(&rows, "ann").inputs["meetings"], "3");
}
