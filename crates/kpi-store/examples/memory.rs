//! Where a store's resident memory goes, and how long each step takes: ingest, reopening
//! (from the rows snapshot when the last run wrote one, else by scanning sled), the first
//! read (it builds the index), one write after it (it copies the written kind's rows, which
//! the index shares) and the read after that, writing the snapshot.
//!
//! `cargo run -p kpi-store --release --example memory -- 1000000 [DIR]`

use std::time::Instant;

use kpi_core::{DataSource, Measure, Scope, Window};
use kpi_store::generate::{stream, DemoOptions};
use kpi_store::Store;

fn rss_mib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            / 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn report(what: &str, t: Instant) {
    let (rss, hwm) = rss_mib();
    println!(
        "{what:<40} {:>8.2?}  rss {rss:>6} MiB  peak {hwm:>6} MiB",
        t.elapsed()
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let records: usize = args
        .next()
        .map(|s| s.parse().expect("a record count"))
        .unwrap_or(1_000_000);
    let dir = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("kpid-memory-{}", std::process::id()))
        });
    let fresh = !dir.exists();
    if fresh {
        let opts = DemoOptions {
            records,
            ..DemoOptions::default()
        };
        let store = Store::open(&dir).expect("a store");
        let t = Instant::now();
        let mut batch = Vec::with_capacity(10_000);
        for r in stream(&opts) {
            batch.push(r);
            if batch.len() == 10_000 {
                store
                    .put("default", std::mem::take(&mut batch))
                    .expect("put");
            }
        }
        store.put("default", batch).expect("put");
        report("stored", t);
        // As kpid does when it stops.
        let t = Instant::now();
        store.save_snapshot().expect("snapshot");
        report("snapshot written", t);
    }
    let t = Instant::now();
    let store = Store::open(&dir).expect("reopen");
    report("reopened", t);
    let window = Window::new(
        "2024-01-01T00:00:00Z".parse().unwrap(),
        "2025-01-01T00:00:00Z".parse().unwrap(),
    )
    .unwrap();
    let t = Instant::now();
    let source = store.source("default");
    source
        .measure(Measure::DealsWon, &Scope::new(window))
        .unwrap();
    report("first read (index built)", t);
    // A write of one deal while the index shares the deals: the store copies the deals'
    // rows first (copy on write); the next read rebuilds the parts that read deals.
    let mut deal = stream(&DemoOptions {
        records: 1000,
        ..DemoOptions::default()
    })
    .find(|r| r.kind() == kpi_store::RecordKind::Deal)
    .expect("the demo has deals");
    if let kpi_store::Record::Deal(d) = &mut deal {
        d.id = "deal-memory-example".into();
    }
    let t = Instant::now();
    store.put("default", vec![deal]).expect("put");
    report("one deal written after a read", t);
    drop(source);
    let t = Instant::now();
    store
        .source("default")
        .measure(Measure::DealsWon, &Scope::new(window))
        .unwrap();
    report("read after it (deal parts rebuilt)", t);
    println!(
        "records {} disk {} MiB",
        store.stats().records,
        store.stats().disk_bytes >> 20
    );
    let t = Instant::now();
    store.save_snapshot().expect("snapshot");
    report("snapshot written", t);
}
