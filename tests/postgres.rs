//! `kpid serve --store postgres://…` end to end (issue 17), against the PostgreSQL server of
//! `KPID_TEST_POSTGRES` (`.ci/run` starts one with `scripts/postgres.sh`). Without it each
//! test prints that it skipped its PostgreSQL part. The records and stored-metrics suites run
//! on PostgreSQL too, with `KPID_TEST_STORE=postgres` (`.ci/run`).

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{customer, deal, list_all, test_postgres, Kpid, TestDatabase};
use kpi_proto::kpi::v1 as pb;

/// Records, deletes and settings written through one kpid are in PostgreSQL: a second kpid
/// over the same database (after the first stopped) lists and computes the same.
#[tokio::test]
async fn records_deletes_and_settings_outlive_the_server() {
    let Some(admin) = test_postgres("records_deletes_and_settings_outlive_the_server") else {
        return;
    };
    let database = TestDatabase::create(&admin);
    let mut first = Kpid::start_on_postgres(&database.url);
    let mut records = first.records().await;
    let put = records
        .put_records(pb::PutRecordsRequest {
            records: vec![
                deal(
                    "d1",
                    "alice",
                    pb::DealStatus::Won,
                    "100.50",
                    "2024-01-10T00:00:00Z",
                ),
                deal(
                    "d2",
                    "bob",
                    pb::DealStatus::Lost,
                    "7",
                    "2024-01-11T00:00:00Z",
                ),
                deal(
                    "d3",
                    "bob",
                    pb::DealStatus::Won,
                    "20",
                    "2024-01-12T00:00:00Z",
                ),
                // The later of two records with one key wins.
                deal(
                    "d3",
                    "bob",
                    pb::DealStatus::Won,
                    "30",
                    "2024-01-12T00:00:00Z",
                ),
                customer("c1", "2024-01-02T00:00:00Z", pb::Source::Marketing),
            ],
        })
        .await
        .expect("PutRecords")
        .into_inner();
    assert_eq!((put.accepted, put.rejected.len()), (5, 0));
    let deleted = records
        .delete_records(pb::DeleteRecordsRequest {
            keys: vec![
                pb::RecordKey {
                    kind: "deal".into(),
                    id: "d2".into(),
                },
                pb::RecordKey {
                    kind: "deal".into(),
                    id: "missing".into(),
                },
            ],
        })
        .await
        .expect("DeleteRecords")
        .into_inner();
    assert_eq!(deleted.deleted, 1);
    first
        .tenant()
        .await
        .update_settings(pb::UpdateSettingsRequest {
            settings: Some(pb::TenantSettings {
                base_currency: "EUR".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["base_currency".into()],
            }),
        })
        .await
        .expect("UpdateSettings");
    let won_before = won_amount(&first).await;
    assert_eq!(won_before, "130.5");
    first.terminate();

    let second = Kpid::start_on_postgres(&database.url);
    let mut records = second.records().await;
    // Paged one at a time: the PostgreSQL listing pages in key order as sled's does.
    let (deals, pages) = list_all(&mut records, "deal", 1).await;
    let ids: Vec<String> = deals
        .iter()
        .map(|r| match r.record.as_ref() {
            Some(pb::record::Record::Deal(d)) => d.id.clone(),
            other => panic!("not a deal: {other:?}"),
        })
        .collect();
    assert_eq!(ids, ["d1", "d3"]);
    assert_eq!(pages, 2);
    let (all, _) = list_all(&mut records, "", 100).await;
    assert_eq!(all.len(), 3);
    assert_eq!(won_amount(&second).await, "130.5");
    let settings = second
        .tenant()
        .await
        .get_settings(pb::GetSettingsRequest::default())
        .await
        .expect("GetSettings")
        .into_inner()
        .settings
        .expect("settings");
    assert_eq!(settings.base_currency, "EUR");
}

/// `sales.revenue`-style check: the total amount of the deals won in January 2024.
async fn won_amount(kpid: &Kpid) -> String {
    let answer = kpid
        .metrics()
        .await
        .compute(pb::ComputeRequest {
            metric_id: "sales.revenue".into(),
            start: common::ts("2024-01-01T00:00:00Z"),
            end: common::ts("2024-02-01T00:00:00Z"),
            ..Default::default()
        })
        .await
        .expect("Compute")
        .into_inner();
    answer.rows[0].value.clone()
}

/// A database whose schema is newer than this kpid knows is refused at start, with a
/// message that says so; the database is left as it was.
#[test]
fn a_newer_schema_is_refused() {
    let Some(admin) = test_postgres("a_newer_schema_is_refused") else {
        return;
    };
    let database = TestDatabase::create(&admin);
    let url = database.url.clone();
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        client
            .batch_execute(
                "CREATE TABLE kpid_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
                 INSERT INTO kpid_migrations (version) VALUES (999);",
            )
            .expect("newer schema");
    })
    .join()
    .expect("thread");
    let (status, stderr) = refused_start(&database.url);
    assert!(!status.success());
    assert!(
        stderr.contains("schema version 999, newer than this kpid knows"),
        "{stderr}"
    );
}

/// A database of schema version 1 (values carrying a row slot, no change log) migrates to
/// the current version at start (2, then 3): the records answer as before and writes go
/// on. The version 1 database is made from a current one by undoing what the migrations do.
#[tokio::test]
async fn a_version_1_database_migrates() {
    let Some(admin) = test_postgres("a_version_1_database_migrates") else {
        return;
    };
    let database = TestDatabase::create(&admin);
    let mut first = Kpid::start_on_postgres(&database.url);
    let mut records = first.records().await;
    let put = records
        .put_records(pb::PutRecordsRequest {
            records: vec![
                deal(
                    "d1",
                    "alice",
                    pb::DealStatus::Won,
                    "100.50",
                    "2024-01-10T00:00:00Z",
                ),
                deal(
                    "d2",
                    "bob",
                    pb::DealStatus::Won,
                    "30",
                    "2024-01-12T00:00:00Z",
                ),
            ],
        })
        .await
        .expect("PutRecords")
        .into_inner();
    assert_eq!(put.accepted, 2);
    first.terminate();
    let url = database.url.clone();
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        client
            .batch_execute(
                "UPDATE records SET value = '\\x02'::bytea || int4send(7) || substring(value FROM 2);
                 DROP TABLE change_log, tenant_sequences;
                 DELETE FROM kpid_migrations WHERE version >= 2;",
            )
            .expect("back to version 1");
    })
    .join()
    .expect("thread");
    let second = Kpid::start_on_postgres(&database.url);
    assert_eq!(won_amount(&second).await, "130.5");
    let mut records = second.records().await;
    records
        .put_records(pb::PutRecordsRequest {
            records: vec![deal(
                "d3",
                "bob",
                pb::DealStatus::Won,
                "1",
                "2024-01-13T00:00:00Z",
            )],
        })
        .await
        .expect("PutRecords after the migration");
    assert_eq!(won_amount(&second).await, "131.5");
}

/// Starts `kpid serve --store url`, which must exit within a minute: its status and logs.
fn refused_start(url: &str) -> (std::process::ExitStatus, String) {
    let temp = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(common::server_binary())
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(temp.path())
        .args(["--store", url])
        .env_remove("KPID_API_KEYS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kpid");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kpid kept running over {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    (status, stderr)
}

/// While the database cannot be reached at start, kpid listens, answers health NOT_SERVING
/// and logs why, retrying (it does not exit).
#[tokio::test]
async fn health_is_not_serving_while_the_database_is_unreachable() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    // A loopback port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let temp = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(common::server_binary())
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(temp.path())
        .args(["--store", &format!("postgres://kpid@127.0.0.1:{port}/kpid")])
        .env_remove("KPID_API_KEYS")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kpid");
    let stderr = child.stderr.take().expect("stderr");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines_tx.send(line);
        }
    });
    let mut addr = None;
    let mut warned = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while addr.is_none() || !warned {
        let line = lines_rx
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .expect("kpid logs that it listens and that PostgreSQL is unreachable");
        if line.contains("opening the record store") {
            addr = line
                .split("addr=")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_owned);
        }
        warned |= line.contains("PostgreSQL database is unreachable");
    }
    let addr = addr.expect("addr");
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut health = HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health answers")
        .into_inner()
        .status;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, ServingStatus::NotServing as i32);
}
