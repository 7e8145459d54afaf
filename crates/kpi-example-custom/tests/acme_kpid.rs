//! The team's own binary, end to end: `acme-kpid` lists `acme.weighted_pipeline` beside the
//! built-in catalogue and computes it from deals stored over gRPC.

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
        built_ins + 1,
        "the built-ins and acme.weighted_pipeline"
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
