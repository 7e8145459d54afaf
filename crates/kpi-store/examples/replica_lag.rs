//! Two replicas of a store over one PostgreSQL database, in one process (each with its own
//! connections and change log follower, as two kpid processes have):
//!
//! 1. ingest: the records put through replica A (alone) in batches (of BATCH, 1 000; each a
//!    transaction that also appends the change log), against the floor of `COPY`ing the
//!    same rows (the same stored values) into a table of the same shape, in one
//!    transaction; then the time replica B takes to open (load every record);
//! 2. replica lag under a steady write load: batches of 10 records written on A every
//!    5 ms; for each write, the time from its `put` returning on A to replica B having
//!    applied its sequence (B learns of it by LISTEN/NOTIFY), p50 and p99.
//!
//! Creates a database of its own on the server of `URL` and drops it afterwards.
//!
//! `cargo run -p kpi-store --release --example replica_lag -- postgres://kpid@127.0.0.1:5432/kpid [RECORDS] [WRITES] [BATCH]`

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kpi_store::generate::{generate, DemoOptions};
use kpi_store::{OpenOptions, Record, Store};

const TENANT: &str = "bench";

fn main() {
    let mut args = std::env::args().skip(1);
    let admin = args
        .next()
        .expect("usage: replica_lag URL [RECORDS] [WRITES] [BATCH]");
    let records: usize = args.next().map_or(100_000, |n| n.parse().expect("RECORDS"));
    let writes: usize = args.next().map_or(2_000, |n| n.parse().expect("WRITES"));
    let batch: usize = args.next().map_or(1_000, |n| n.parse().expect("BATCH"));
    let name = format!("kpid_replica_lag_{}", std::process::id());
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(base, _)| base);
    let url = format!("{base}/{name}");
    let mut client = postgres::Client::connect(&admin, postgres::NoTls).expect("connect");
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create database");
    let outcome = std::panic::catch_unwind(|| run(&url, records, writes, batch));
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .expect("drop database");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

fn run(url: &str, records: usize, writes: usize, batch_size: usize) {
    let a = Store::open_postgres(url, OpenOptions::default()).expect("replica A");
    let data = generate(&DemoOptions {
        records,
        ..Default::default()
    });
    let records = data.len();

    // 1. Ingest through A, against COPY of the same rows.
    let started = Instant::now();
    for batch in data.chunks(batch_size) {
        let outcome = a.put(TENANT, batch.to_vec()).expect("put");
        assert!(outcome.rejected.is_empty());
    }
    let ingest = started.elapsed();
    let floor = copy_floor(url, &data);
    println!(
        "ingest: {records} records in batches of {batch_size}: {:.2} s ({:.0} records/s); COPY of the same rows: {:.2} s ({:.0} records/s); ratio {:.2}",
        ingest.as_secs_f64(),
        records as f64 / ingest.as_secs_f64(),
        floor.as_secs_f64(),
        records as f64 / floor.as_secs_f64(),
        floor.as_secs_f64() / ingest.as_secs_f64()
    );
    // B starts after the ingest (on a machine of its own it would not take A's CPU).
    let opening = Instant::now();
    let b = Store::open_postgres(url, OpenOptions::default()).expect("replica B");
    println!(
        "replica B opened (loaded {records} records) in {:.2} s",
        opening.elapsed().as_secs_f64()
    );

    // 2. Lag of B behind A under a steady load.
    let returned: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let observer = {
        let (b, done) = (b.clone(), done.clone());
        std::thread::spawn(move || {
            let mut applied: Vec<(u64, Instant)> = Vec::new();
            let mut last = b.sequence(TENANT);
            while !done.load(Ordering::SeqCst) {
                let now = b.sequence(TENANT);
                if now > last {
                    let at = Instant::now();
                    applied.extend((last + 1..=now).map(|s| (s, at)));
                    last = now;
                }
                std::thread::sleep(Duration::from_micros(100));
            }
            applied
        })
    };
    let load: Vec<Record> = data.iter().take(writes * 10).cloned().collect();
    for batch in load.chunks(10) {
        let tick = Instant::now();
        a.put(TENANT, batch.to_vec()).expect("put");
        let sequence = a.sequence(TENANT);
        returned.lock().unwrap().push((sequence, Instant::now()));
        if let Some(left) = Duration::from_millis(5).checked_sub(tick.elapsed()) {
            std::thread::sleep(left);
        }
    }
    let last = a.sequence(TENANT);
    let waited = Instant::now();
    while !b.has_applied(TENANT, last) {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "B never caught up"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(5));
    done.store(true, Ordering::SeqCst);
    let applied: std::collections::HashMap<u64, Instant> =
        observer.join().expect("observer").into_iter().collect();
    let mut lags: Vec<Duration> = returned
        .lock()
        .unwrap()
        .iter()
        .map(|(sequence, at)| {
            applied
                .get(sequence)
                .map_or(Duration::ZERO, |b_at| b_at.saturating_duration_since(*at))
        })
        .collect();
    lags.sort();
    let percentile = |p: f64| lags[((lags.len() - 1) as f64 * p).round() as usize];
    println!(
        "replica lag, {} writes of 10 records every 5 ms on A: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lags.len(),
        percentile(0.5).as_secs_f64() * 1e3,
        percentile(0.99).as_secs_f64() * 1e3,
        lags.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    drop((a, b));
}

/// `COPY` of the rows the store writes (tenant, kind, id, the stored value: format byte
/// 0x01 and the record's MessagePack) into a table of the shape of `records`, committed.
fn copy_floor(url: &str, data: &[Record]) -> Duration {
    let mut client = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    client
        .batch_execute(
            "CREATE TABLE records_floor (tenant text NOT NULL, kind smallint NOT NULL,
             id text COLLATE \"C\" NOT NULL, value bytea NOT NULL, PRIMARY KEY (tenant, kind, id))",
        )
        .expect("floor table");
    let mut text = Vec::with_capacity(data.len() * 200);
    for record in data {
        let mut value = vec![0x01];
        rmp_serde::encode::write(&mut value, record).expect("MessagePack");
        write!(
            text,
            "{TENANT}\t{}\t{}\t\\\\x",
            record.kind() as i16 + 1,
            record.id()
        )
        .expect("write");
        for byte in value {
            write!(text, "{byte:02x}").expect("write");
        }
        text.push(b'\n');
    }
    let started = Instant::now();
    let mut tx = client.transaction().expect("begin");
    let mut writer = tx
        .copy_in("COPY records_floor (tenant, kind, id, value) FROM STDIN")
        .expect("copy");
    writer.write_all(&text).expect("copy rows");
    writer.finish().expect("copy end");
    tx.commit().expect("commit");
    started.elapsed()
}
