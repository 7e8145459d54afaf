//! The kpid process end to end: health checking, reflection, durability across kill -9,
//! graceful SIGTERM, JSON logs, a restart that reads the index image.

mod common;

use std::time::{Duration, Instant};

use common::{assert_same, customer, every_metric, key_of, list_all, ready_addr, Kpid};
use kpi_proto::kpi::v1 as pb;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

#[tokio::test]
async fn health_reports_serving_for_the_server_and_every_service() {
    let kpid = Kpid::start();
    let mut health = HealthClient::new(kpid.channel().await);
    for service in [
        "",
        "kpi.v1.MetricsService",
        "kpi.v1.RecordsService",
        "kpi.v1.TenantService",
    ] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "service {service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "kpi.v1.NoSuchService".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_the_services() {
    let kpid = Kpid::start();

    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let mut v1 = ServerReflectionClient::new(kpid.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = v1
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().expect("one response");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("not a service list: {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "kpi.v1.MetricsService",
        "kpi.v1.RecordsService",
        "kpi.v1.TenantService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }

    // The descriptor of a service comes with its dependencies (timestamp.proto).
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(
            "kpi.v1.MetricsService".into(),
        )),
    };
    let mut responses = v1
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().expect("one response");
    let Some(MessageResponse::FileDescriptorResponse(files)) = response.message_response else {
        panic!("not a file descriptor response: {response:?}");
    };
    assert!(!files.file_descriptor_proto.is_empty());

    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as AlphaClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as AlphaRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse as AlphaResponse;
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest as AlphaReflectionRequest;
    let mut alpha = AlphaClient::new(kpid.channel().await);
    let request = AlphaReflectionRequest {
        host: String::new(),
        message_request: Some(AlphaRequest::ListServices(String::new())),
    };
    let mut responses = alpha
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().expect("one response");
    let Some(AlphaResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("not a service list: {response:?}");
    };
    assert!(list
        .service
        .iter()
        .any(|s| s.name == "kpi.v1.RecordsService"));
}

#[tokio::test]
async fn acknowledged_records_survive_kill_9() {
    let data = tempfile::tempdir().unwrap();
    let mut first = Kpid::start_in(data.path(), &[]);
    let mut client = first.records().await;
    let records: Vec<pb::Record> = (0..50)
        .map(|i| {
            customer(
                &format!("c{i:02}"),
                "2024-01-01T00:00:00Z",
                pb::Source::Sales,
            )
        })
        .collect();
    let put = client
        .put_records(pb::PutRecordsRequest { records })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(put.accepted, 50);
    let deleted = client
        .delete_records(pb::DeleteRecordsRequest {
            keys: vec![pb::RecordKey {
                kind: "customer".into(),
                id: "c07".into(),
            }],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.deleted, 1);
    drop(client);
    first.kill9();

    let second = Kpid::start_in(data.path(), &[]);
    let mut client = second.records().await;
    let (stored, _) = list_all(&mut client, "customer", 0).await;
    let ids: Vec<String> = stored.iter().map(|r| key_of(r).1).collect();
    let expected: Vec<String> = (0..50)
        .filter(|i| *i != 7)
        .map(|i| format!("c{i:02}"))
        .collect();
    assert_eq!(
        ids, expected,
        "every acknowledged put and delete survived kill -9"
    );
}

// Multi-threaded, so the client's connection keeps running (and answers the server's
// GOAWAY) while the test thread blocks on the child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_then_exits_0() {
    let data = tempfile::tempdir().unwrap();
    let mut kpid = Kpid::start_in(data.path(), &[]);
    let mut metrics = kpid.metrics().await;
    metrics
        .list_metrics(pb::ListMetricsRequest::default())
        .await
        .unwrap();

    // An Ingest stream is in flight when SIGTERM arrives; it must still be answered.
    let (messages, stream) = tokio::sync::mpsc::channel(4);
    let mut records = kpid.records().await;
    let ingest = tokio::spawn(async move {
        records
            .ingest(tokio_stream::wrappers::ReceiverStream::new(stream))
            .await
    });
    messages
        .send(pb::IngestRequest {
            records: vec![customer("c1", "2024-01-01T00:00:00Z", pb::Source::Sales)],
        })
        .await
        .unwrap();
    let mut reader = kpid.records().await;
    let started = Instant::now();
    while list_all(&mut reader, "customer", 0).await.0.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "first message stored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let signalled = Instant::now();
    kpid.send_sigterm();
    tokio::time::sleep(Duration::from_millis(300)).await;
    messages
        .send(pb::IngestRequest {
            records: vec![customer("c2", "2024-01-02T00:00:00Z", pb::Source::Sales)],
        })
        .await
        .unwrap();
    drop(messages);
    let answer = ingest
        .await
        .unwrap()
        .expect("the in-flight Ingest is answered")
        .into_inner();
    assert_eq!(answer.accepted, 2);

    let status = tokio::task::block_in_place(|| kpid.wait_exit(Duration::from_secs(30)));
    assert!(
        status.success(),
        "exit status {status:?}; logs:\n{}",
        kpid.logs()
    );
    assert!(
        signalled.elapsed() < Duration::from_secs(10),
        "idle connections do not hold up shutdown ({:?}); logs:\n{}",
        signalled.elapsed(),
        kpid.logs()
    );
    let logs = kpid.logs();
    assert!(logs.contains("shutdown requested"), "{logs}");
    assert!(logs.contains("store flushed"), "{logs}");
    drop((metrics, reader));

    let restarted = Kpid::start_in(data.path(), &[]);
    let mut client = restarted.records().await;
    let (stored, _) = list_all(&mut client, "customer", 0).await;
    let ids: Vec<String> = stored.iter().map(|r| key_of(r).1).collect();
    assert_eq!(ids, ["c1", "c2"]);
}

#[tokio::test]
async fn json_logs_carry_the_ready_address() {
    let data = tempfile::tempdir().unwrap();
    let kpid = Kpid::start_in(data.path(), &[("KPID_LOG_FORMAT", "json")]);
    let logs = kpid.logs();
    let ready = logs
        .lines()
        .find(|l| l.contains("kpid ready"))
        .expect("ready line");
    let line: serde_json::Value = serde_json::from_str(ready).expect("a JSON log line");
    assert_eq!(line["message"], "kpid ready");
    assert_eq!(line["addr"], kpid.addr.to_string());
    assert_eq!(ready_addr(ready), Some(kpid.addr));
    assert!(
        logs.contains("authentication is off"),
        "a missing --api-keys is logged: {logs}"
    );
}

#[test]
fn ready_lines_parse_in_both_formats() {
    let text = "2025-01-01T00:00:00.000000Z  INFO kpi_server::server: kpid ready addr=127.0.0.1:43121 metrics=39";
    assert_eq!(ready_addr(text), Some("127.0.0.1:43121".parse().unwrap()));
    let json = r#"{"timestamp":"x","level":"INFO","message":"kpid ready","addr":"127.0.0.1:5","metrics":39}"#;
    assert_eq!(ready_addr(json), Some("127.0.0.1:5".parse().unwrap()));
    assert_eq!(ready_addr("kpid starting addr=127.0.0.1:1"), None);
}

/// kpid keeps serving when whoever started it closes its stderr: a log line it cannot write
/// is dropped, not a panic (tracing-subscriber would report the failed write to stderr).
// Multi-threaded so the client's connection task answers the server's GOAWAY while this
// thread blocks in `wait` (otherwise shutdown waits out its grace period).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stderr_does_not_take_the_server_down() {
    use std::io::{BufRead as _, BufReader};
    use std::process::{Command, Stdio};

    let temp = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kpid"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(temp.path())
        .env_remove("KPID_API_KEYS")
        .env_remove("KPID_LOG_FORMAT")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("kpid logs its ready line").unwrap();
        if let Some(addr) = common::ready_addr(&line) {
            break addr;
        }
    };
    drop(lines); // closes the read end of kpid's stderr

    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut metrics =
        kpi_proto::kpi::v1::metrics_service_client::MetricsServiceClient::new(channel);
    for _ in 0..3 {
        // A rejected RPC logs at info level: a write to the closed pipe.
        let err = metrics
            .compute(kpi_proto::kpi::v1::ComputeRequest {
                metric_id: "no.such_metric".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::NotFound);
    }
    let listed = metrics
        .list_metrics(kpi_proto::kpi::v1::ListMetricsRequest::default())
        .await
        .unwrap();
    assert!(!listed.into_inner().metrics.is_empty());
    drop(metrics); // an open connection would hold graceful shutdown for its grace period

    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: signalling the child this test spawned, by its PID.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "kpid exited with {status:?}");
}

/// A stop writes the index image of a large tenant (50 000 rows or more) beside the rows
/// snapshot; the next start reads it into the tenant's first index, and the dashboard of
/// every metric answers exactly as before the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_reads_the_index_image_and_answers_as_before() {
    let data = tempfile::tempdir().unwrap();
    let mut first = Kpid::start_with(data.path(), &[], |c| {
        c.args(["--demo", "--records", "70000"]);
    });
    let before = every_metric(&first, 0).await;
    assert!(first.terminate().success(), "{}", first.logs());
    assert!(
        first.logs().contains("index image written"),
        "{}",
        first.logs()
    );
    assert!(data.path().join("index.image").exists());

    let second = Kpid::start_in(data.path(), &[]);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !second
        .logs()
        .contains("a tenant's index read from the index image")
    {
        assert!(Instant::now() < deadline, "{}", second.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = every_metric(&second, 0).await;
    assert_same(&before, &after, "after a restart from the index image");
}
