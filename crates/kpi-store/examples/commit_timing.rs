//! Times the fsync'd commit point of [`Store::put`] against sled's flush alone (what a put
//! did before: `sync_file_range`, no fsync), for one-record puts, 100-record batches, and
//! four threads putting one record at a time (which share commits).
//!
//! `cargo run -p kpi-store --release --example commit_timing -- 300`

use std::sync::Arc;
use std::time::{Duration, Instant};

use kpi_store::generate::{generate, DemoOptions};
use kpi_store::{Record, Store};

/// sled alone: one batch of the records' JSON (about the size of their stored form) per
/// put, then `flush`.
fn sled_only(dir: &std::path::Path, batches: &[Vec<Record>]) -> Duration {
    let db = sled::Config::new().path(dir).open().expect("sled");
    let tree = db.open_tree("records").expect("tree");
    let started = Instant::now();
    for batch in batches {
        let mut b = sled::Batch::default();
        for r in batch {
            b.insert(
                format!("{}/{}", r.kind().as_str(), r.id()).as_bytes(),
                serde_json::to_vec(r).expect("json"),
            );
        }
        tree.apply_batch(b).expect("apply");
        db.flush().expect("flush");
    }
    started.elapsed()
}

/// `Store::put` (validation, the in-memory records, sled, the fsync'd commit) per batch.
fn store_put(dir: &std::path::Path, batches: &[Vec<Record>]) -> Duration {
    let store = Store::open(dir).expect("store");
    let started = Instant::now();
    for batch in batches {
        store.put("default", batch.clone()).expect("put");
    }
    started.elapsed()
}

/// Four threads, each putting its share of the records one at a time.
fn store_put_concurrent(dir: &std::path::Path, records: &[Record]) -> Duration {
    let store = Store::open(dir).expect("store");
    let records = Arc::new(records.to_vec());
    let started = Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            let records = records.clone();
            std::thread::spawn(move || {
                for r in records.iter().skip(t).step_by(4) {
                    store.put("default", vec![r.clone()]).expect("put");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    started.elapsed()
}

fn per_op(total: Duration, ops: usize) -> String {
    format!("{:>9.1} µs", total.as_secs_f64() * 1e6 / ops.max(1) as f64)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("a put count"))
        .unwrap_or(300);
    let records = generate(&DemoOptions {
        records: n * 100,
        ..DemoOptions::default()
    });
    let singles: Vec<Vec<Record>> = records.iter().take(n).map(|r| vec![r.clone()]).collect();
    let hundreds: Vec<Vec<Record>> = records.chunks(100).take(n).map(<[_]>::to_vec).collect();
    let base = std::env::temp_dir().join(format!("kpid-commit-timing-{}", std::process::id()));
    let dir = |name: &str| base.join(name);

    println!("{n} puts each; mean time per put");
    println!("{:<34} {:>12} {:>12}", "", "sled flush", "put+fsync");
    for (label, batches) in [
        ("1 record per put", &singles),
        ("100 records per put", &hundreds),
    ] {
        let size = batches[0].len();
        let sled = sled_only(&dir(&format!("sled-{size}")), batches);
        let store = store_put(&dir(&format!("store-{size}")), batches);
        println!(
            "{label:<34} {} {}",
            per_op(sled, batches.len()),
            per_op(store, batches.len())
        );
    }
    let concurrent: Vec<Record> = singles.iter().flatten().cloned().collect();
    let took = store_put_concurrent(&dir("concurrent"), &concurrent);
    println!(
        "{:<34} {:>12} {}",
        "4 threads, 1 record per put",
        "",
        per_op(took, concurrent.len())
    );
    let _ = std::fs::remove_dir_all(&base);
}
