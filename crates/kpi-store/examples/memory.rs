//! Where a store's resident memory goes, and how long each step takes: ingest, reopening
//! (from the rows snapshot when the last run wrote one, else by scanning sled), the first
//! read (it builds the index), one write of a deal, a ticket and a customer after it (each
//! copies the chunk of rows it changes, which the index shares) and the read after each,
//! writing the snapshot.
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
    // A write of one record while the index shares the rows: the store copies the one
    // chunk of rows it changes (copy on write); the next read rebuilds the parts that read
    // the written kind (a customer is read by most parts: deals, purchases, tickets, ...).
    drop(source);
    for kind in [
        kpi_store::RecordKind::Deal,
        kpi_store::RecordKind::Ticket,
        kpi_store::RecordKind::Customer,
    ] {
        let mut record = stream(&DemoOptions {
            records: 1000,
            ..DemoOptions::default()
        })
        .find(|r| r.kind() == kind)
        .expect("the demo has every kind");
        let id = format!("{kind:?}-memory-example");
        match &mut record {
            kpi_store::Record::Deal(d) => d.id = id,
            kpi_store::Record::Ticket(x) => x.id = id,
            kpi_store::Record::Customer(c) => c.id = id,
            _ => unreachable!("the kinds above"),
        }
        let t = Instant::now();
        store.put("default", vec![record]).expect("put");
        report(&format!("one {kind:?} written after a read"), t);
        let t = Instant::now();
        store
            .source("default")
            .measure(Measure::DealsWon, &Scope::new(window))
            .unwrap();
        report("  the next read of won deals", t);
    }
    println!(
        "records {} disk {} MiB",
        store.stats().records,
        store.stats().disk_bytes >> 20
    );
    let t = Instant::now();
    store.save_snapshot().expect("snapshot");
    report("snapshot written", t);
}
