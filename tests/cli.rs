//! `kpid metrics`, `kpid compute` and `kpid demo` end to end: the real binary against a
//! real server.

mod common;

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{deal, ready_addr, ts, Kpid};
use kpi_proto::kpi::v1 as pb;
use kpi_proto::kpi::v1::metrics_service_client::MetricsServiceClient;
use kpi_proto::kpi::v1::records_service_client::RecordsServiceClient;
use kpi_sales as _;
use serde_json::Value;

/// The ids of the sales family, sorted: what the registry linked into kpid holds.
fn sales_ids() -> Vec<&'static str> {
    let mut ids: Vec<&'static str> = kpi_core::registry()
        .expect("the registry builds")
        .metrics()
        .map(|m| m.descriptor().id)
        .filter(|id| id.starts_with("sales."))
        .collect();
    ids.sort_unstable();
    ids
}

/// What a finished `kpid` client run printed and how it exited.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn kpid(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_kpid"))
        .args(args)
        .output()
        .expect("run kpid");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("UTF-8 stderr"),
    }
}

#[test]
fn metrics_lists_a_family_as_a_table_json_and_csv() {
    let server = Kpid::start();
    let addr = server.addr.to_string();

    let run = kpid(&["metrics", "--addr", &addr, "--family", "sales"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let mut lines = run.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["ID", "UNIT", "DIRECTION", "FORMULA"]);
    let ids: Vec<&str> = lines
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(ids, sales_ids());
    let win_rate = run
        .stdout
        .lines()
        .find(|l| l.starts_with("sales.win_rate "))
        .unwrap();
    assert!(win_rate.contains("percent"), "{win_rate}");
    assert!(win_rate.contains("higher is better"), "{win_rate}");
    assert!(win_rate.ends_with("won / (won + lost) × 100"), "{win_rate}");
    // Aligned: every line starts its UNIT column at the same place.
    let unit_column = run.stdout.lines().next().unwrap().find("UNIT").unwrap();
    for line in run.stdout.lines().skip(1) {
        assert_eq!(line.as_bytes()[unit_column - 1], b' ', "{line}");
        assert_ne!(line.as_bytes()[unit_column], b' ', "{line}");
    }

    let run = kpid(&["metrics", "--addr", &addr, "--format", "json"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let json: Value = serde_json::from_str(&run.stdout).expect("metrics --format json parses");
    let metrics = json["metrics"].as_array().unwrap();
    assert!(metrics.len() >= 39, "{}", metrics.len());
    let cac = metrics.iter().find(|m| m["id"] == "marketing.cac").unwrap();
    assert_eq!(cac["unit"], "UNIT_CURRENCY");
    assert_eq!(cac["direction"], "DIRECTION_LOWER_IS_BETTER");
    let inputs: Vec<&str> = cac["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(
        inputs.contains(&"spend") && inputs.contains(&"new_customers"),
        "{inputs:?}"
    );

    let run = kpid(&[
        "metrics", "--addr", &addr, "--family", "sales", "--format", "csv",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let mut lines = run.stdout.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("id,name,family,unit,direction,formula,"));
    assert_eq!(lines.count(), sales_ids().len());
}

#[test]
fn compute_in_calculator_mode_prints_the_value() {
    let server = Kpid::start();
    let addr = server.addr.to_string();
    let cac = [
        "compute",
        "marketing.cac",
        "--addr",
        &addr,
        "--input",
        "spend=10000",
        "--input",
        "new_customers=10",
    ];

    let run = kpid(&cac);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let lines: Vec<Vec<&str>> = run
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["VALUE", "INPUTS"]);
    assert_eq!(lines[1][0], "1000");
    assert!(run.stdout.contains("new_customers=10"), "{}", run.stdout);
    assert!(run.stdout.contains("spend=10000"), "{}", run.stdout);
    assert_eq!(lines.len(), 2, "{}", run.stdout);

    let run = kpid(&[&cac[..], &["--format", "json"]].concat());
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let json: Value = serde_json::from_str(&run.stdout).expect("compute --format json parses");
    assert_eq!(json["rows"][0]["value"], "1000");
    assert_eq!(json["rows"][0]["inputs"]["spend"], "10000");
    assert_eq!(json["rows"][0]["undefinedReason"], "");

    let run = kpid(&[&cac[..], &["--format", "csv"]].concat());
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "bucket_start,value,undefined_reason,new_customers,spend"
    );
    assert_eq!(lines[1], ",1000,,10,10000");

    // Undefined values say why.
    let run = kpid(&[
        "compute",
        "sales.win_rate",
        "--addr",
        &addr,
        "--input",
        "won=0",
        "--input",
        "lost=0",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("undefined ("), "{}", run.stdout);
}

#[test]
fn compute_errors_print_the_status_and_field_violations() {
    let server = Kpid::start();
    let addr = server.addr.to_string();

    let run = kpid(&[
        "compute",
        "marketing.cac",
        "--addr",
        &addr,
        "--input",
        "spend=12,5",
        "--input",
        "new_customers=10",
    ]);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr.starts_with("error: compute marketing.cac: "),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("(INVALID_ARGUMENT)"), "{}", run.stderr);
    assert!(
        run.stderr
            .lines()
            .any(|l| l.starts_with("  inputs[spend]: ")),
        "{}",
        run.stderr
    );

    let run = kpid(&["compute", "sales.nope", "--addr", &addr]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("(NOT_FOUND)"), "{}", run.stderr);

    let run = kpid(&[
        "compute",
        "sales.win_rate",
        "--addr",
        &addr,
        "--from",
        "2024-02-01",
        "--to",
        "2024-01-01",
    ]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("(INVALID_ARGUMENT)"), "{}", run.stderr);
    assert!(
        run.stderr.lines().any(|l| l.starts_with("  end: ")),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn compute_over_stored_records_prints_buckets_and_groups() {
    let server = Kpid::start();
    let addr = server.addr.to_string();
    let mut records = server.records().await;
    let answer = records
        .put_records(pb::PutRecordsRequest {
            records: vec![
                deal(
                    "d1",
                    "ann",
                    pb::DealStatus::Won,
                    "100",
                    "2024-01-10T00:00:00Z",
                ),
                deal(
                    "d2",
                    "ann",
                    pb::DealStatus::Lost,
                    "100",
                    "2024-01-20T00:00:00Z",
                ),
                deal(
                    "d3",
                    "ann",
                    pb::DealStatus::Won,
                    "100",
                    "2024-02-10T00:00:00Z",
                ),
                deal(
                    "d4",
                    "bob",
                    pb::DealStatus::Won,
                    "100",
                    "2024-02-11T00:00:00Z",
                ),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.accepted, 4, "{answer:?}");

    let run = kpid(&[
        "compute",
        "sales.win_rate",
        "--addr",
        &addr,
        "--from",
        "2024-01-01",
        "--to",
        "2024-03-01",
        "--by",
        "month",
        "--group",
        "owner",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let rows: Vec<Vec<&str>> = run
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["BUCKET", "GROUP", "VALUE", "INPUTS"]);
    assert!(
        rows.contains(&vec!["2024-01", "owner=ann", "50", "lost=1,", "won=1"]),
        "{}",
        run.stdout
    );
    assert!(
        rows.contains(&vec!["2024-02", "owner=ann", "100", "lost=0,", "won=1"]),
        "{}",
        run.stdout
    );
    assert!(
        rows.contains(&vec!["2024-02", "owner=bob", "100", "lost=0,", "won=1"]),
        "{}",
        run.stdout
    );

    let run = kpid(&[
        "compute",
        "sales.win_rate",
        "--addr",
        &addr,
        "--from",
        "2024-01-01T00:00:00Z",
        "--to",
        "2024-03-01T00:00:00Z",
        "--filter",
        "owner=ann",
        "--param",
        "precision=1",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["rows"][0]["value"], "66.7", "{}", run.stdout);
    assert_eq!(json["rows"][0]["inputs"]["won"], "2");
}

/// A `kpid demo`/`serve --demo` child, killed on drop.
struct Demo {
    child: Child,
    addr: std::net::SocketAddr,
    logs: Vec<String>,
}

impl Demo {
    fn start(args: &[&str]) -> Demo {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kpid"))
            .args(args)
            .env_remove("KPID_DATA_DIR")
            .env_remove("KPID_API_KEYS")
            .env_remove("KPID_LOG_FORMAT")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kpid");
        let stderr = child.stderr.take().unwrap();
        let (lines_tx, lines_rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Drains stderr for the child's whole life: a closed pipe would fail its logging.
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = lines_tx.send(line);
            }
        });
        let mut logs = Vec::new();
        loop {
            match lines_rx.recv_timeout(Duration::from_secs(120)) {
                Ok(line) => {
                    let addr = ready_addr(&line);
                    logs.push(line);
                    if let Some(addr) = addr {
                        return Demo { child, addr, logs };
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("no ready line; logs:\n{}", logs.join("\n"));
                }
            }
        }
    }

    fn log(&self, needle: &str) -> &str {
        self.logs
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in the logs:\n{}", self.logs.join("\n")))
    }

    /// SIGTERM, then the exit code.
    fn terminate(mut self) -> Option<i32> {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child, not yet reaped.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        for _ in 0..1500 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("kpid did not exit after SIGTERM");
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn field(line: &str, name: &str) -> String {
    let rest = line
        .split(&format!("{name}="))
        .nth(1)
        .unwrap_or_else(|| panic!("no {name} in {line}"));
    rest.split_whitespace().next().unwrap().to_owned()
}

// Multi-threaded: the client connection must go on answering (the server's GOAWAY) while
// the test thread waits for the process to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_the_generated_dataset() {
    let demo = Demo::start(&["demo", "--addr", "127.0.0.1:0"]);
    let loaded = demo.log("demo dataset loaded");
    let records: u64 = field(loaded, "records").parse().unwrap();
    assert!((19_000..=21_000).contains(&records), "{loaded}");
    assert_eq!(field(loaded, "rejected"), "0");
    let grpcurl = demo.log("grpcurl -plaintext");
    assert!(grpcurl.contains(&demo.addr.to_string()), "{grpcurl}");
    assert!(
        grpcurl.contains("kpi.v1.MetricsService/Compute"),
        "{grpcurl}"
    );
    let data_dir = PathBuf::from(field(
        demo.log("demo store in a fresh temporary directory"),
        "data_dir",
    ));
    assert!(data_dir.is_dir(), "{data_dir:?}");

    let url = format!("http://{}", demo.addr);
    let mut metrics = MetricsServiceClient::connect(url).await.unwrap();
    let answer = metrics
        .compute(pb::ComputeRequest {
            metric_id: "sales.win_rate".into(),
            start: ts(&field(loaded, "start")),
            end: ts(&field(loaded, "end")),
            group_by: vec!["none".into()],
            ..Default::default()
        })
        .await
        .expect("Compute over the demo window")
        .into_inner();
    assert_eq!(answer.rows.len(), 1, "{answer:?}");
    let row = &answer.rows[0];
    assert!(!row.value.is_empty(), "undefined: {}", row.undefined_reason);
    let value: rust_decimal::Decimal = row.value.parse().unwrap();
    assert!(
        value > rust_decimal::Decimal::ZERO && value < rust_decimal::Decimal::ONE_HUNDRED,
        "{value}"
    );

    drop(metrics);
    assert_eq!(demo.terminate(), Some(0));
    assert!(
        !data_dir.exists(),
        "the temporary data dir is removed on exit"
    );
}

// Multi-threaded: the client connection must go on answering (the server's GOAWAY) while
// the test thread waits for the process to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_demo_loads_the_dataset_into_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("store");
    let demo = Demo::start(&[
        "serve",
        "--demo",
        "--records",
        "600",
        "--seed",
        "7",
        "--addr",
        "127.0.0.1:0",
        "--data-dir",
        data_dir.to_str().unwrap(),
    ]);
    let loaded = field(demo.log("demo dataset loaded"), "records");
    let mut client = RecordsServiceClient::connect(format!("http://{}", demo.addr))
        .await
        .unwrap();
    let (stored, _) = common::list_all(&mut client, "", 1000).await;
    assert_eq!(stored.len().to_string(), loaded);
    drop(client);
    assert_eq!(demo.terminate(), Some(0));
    assert!(data_dir.is_dir(), "a given data dir is kept");
}

#[test]
fn clients_send_the_api_key() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let keys_arg = keys.to_str().unwrap();
    let added = kpid(&["keys", "add", "--file", keys_arg, "--tenant", "acme"]);
    assert_eq!(added.code, Some(0), "{}", added.stderr);
    let key = added.stdout.trim().to_owned();
    let data_dir = dir.path().join("store");
    std::fs::create_dir(&data_dir).unwrap();
    let server = Kpid::start_in(&data_dir, &[("KPID_API_KEYS", keys_arg)]);
    let addr = server.addr.to_string();

    let run = kpid(&["metrics", "--addr", &addr, "--family", "sales"]);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert!(run.stderr.contains("(UNAUTHENTICATED)"), "{}", run.stderr);

    let run = kpid(&[
        "metrics",
        "--addr",
        &addr,
        "--family",
        "sales",
        "--api-key",
        &key,
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.stdout.lines().count(),
        1 + sales_ids().len(),
        "{}",
        run.stdout
    );

    let quotas = dir.path().join("quotas.csv");
    std::fs::write(
        &quotas,
        "id,owner,period_start,period_end,amount\nq1,ann,2024-01-01T00:00:00Z,2024-04-01T00:00:00Z,500\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_kpid"))
        .args(["import", "--addr", &addr])
        .arg(&quotas)
        .env("KPID_API_KEY", &key)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("total: 1 accepted, 0 rejected"), "{stdout}");
}
