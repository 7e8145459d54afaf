//! `kpid serve --memory-budget` end to end: with a budget smaller than any tenant's query
//! state, reading one tenant releases the others' (the Prometheus gauges count it), and a
//! released tenant answers exactly as before. No timing is asserted.

mod common;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;

use common::{deal, Kpid};
use kpi_proto::kpi::v1 as pb;

/// `request` with `authorization: Bearer key`.
fn with_key<T>(request: T, key: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(request);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}

/// The win rate over 2024 as `key`'s tenant.
async fn win_rate(kpid: &Kpid, key: &str) -> String {
    let answer = kpid
        .metrics()
        .await
        .compute(with_key(
            pb::ComputeRequest {
                metric_id: "sales.win_rate".into(),
                start: common::ts("2024-01-01T00:00:00Z"),
                end: common::ts("2025-01-01T00:00:00Z"),
                ..Default::default()
            },
            key,
        ))
        .await
        .expect("Compute")
        .into_inner();
    assert_eq!(answer.rows.len(), 1, "{answer:?}");
    answer.rows[0].value.clone()
}

/// The value of an unlabelled gauge in the Prometheus exposition on `addr`.
fn gauge(addr: SocketAddr, name: &str) -> u64 {
    let mut stream = TcpStream::connect(addr).expect("connect to the metrics endpoint");
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let line = text
        .lines()
        .find(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' '))
        })
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"));
    line[name.len()..].trim().parse().unwrap()
}

/// The metrics endpoint's address from its log line.
fn metrics_addr(kpid: &Kpid) -> SocketAddr {
    let logs = kpid.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("metrics endpoint listening"))
        .unwrap_or_else(|| panic!("no metrics endpoint line in:\n{logs}"));
    let rest = line.split("addr=").nth(1).expect("addr field");
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn released_tenants_answer_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("api-keys");
    let key = |tenant: &str| -> String {
        let output = Command::new(common::server_binary())
            .args(["keys", "add", "--file"])
            .arg(&file)
            .args(["--tenant", tenant])
            .env_remove("KPID_API_KEYS")
            .output()
            .expect("kpid keys add");
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    let keys: Vec<String> = ["acme", "globex", "initech"].map(key).to_vec();
    // One byte: every tenant's query state is over it, so reading one tenant releases
    // every other (never the one being read).
    let kpid = Kpid::start_in(
        &dir.path().join("data"),
        &[
            ("KPID_API_KEYS", file.to_str().unwrap()),
            ("KPID_MEMORY_BUDGET", "1B"),
            ("KPID_METRICS_ADDR", "127.0.0.1:0"),
        ],
    );
    let endpoint = metrics_addr(&kpid);
    assert_eq!(gauge(endpoint, "kpid_query_state_budget_bytes"), 1);

    // Tenant i has i + 1 won deals and one lost: win rates 50, 66.67 and 75 %.
    let mut records = kpid.records().await;
    for (i, key) in keys.iter().enumerate() {
        let mut deals: Vec<pb::Record> = (0..=i)
            .map(|d| {
                deal(
                    &format!("won{d}"),
                    "ann",
                    pb::DealStatus::Won,
                    "100",
                    "2024-03-15T00:00:00Z",
                )
            })
            .collect();
        deals.push(deal(
            "lost",
            "bob",
            pb::DealStatus::Lost,
            "100",
            "2024-04-15T00:00:00Z",
        ));
        let put = records
            .put_records(with_key(pb::PutRecordsRequest { records: deals }, key))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(put.accepted, i as u64 + 2);
    }

    let expected = ["50", "66.67", "75"];
    for (key, want) in keys.iter().zip(expected) {
        assert_eq!(win_rate(&kpid, key).await, want);
    }
    // Reading globex released acme's state, reading initech globex's.
    assert_eq!(gauge(endpoint, "kpid_query_states_released"), 2);
    assert!(gauge(endpoint, "kpid_query_state_bytes") > 0);

    // Each released tenant answers as before (built again), releasing the one read before.
    for (key, want) in keys.iter().zip(expected) {
        assert_eq!(win_rate(&kpid, key).await, want);
    }
    assert_eq!(gauge(endpoint, "kpid_query_states_released"), 5);

    // A bad budget is refused at startup.
    let refused = Command::new(common::server_binary())
        .args(["serve", "--addr", "127.0.0.1:0", "--memory-budget", "lots"])
        .arg("--data-dir")
        .arg(dir.path().join("other"))
        .output()
        .expect("kpid serve");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--memory-budget"), "{stderr}");
}
