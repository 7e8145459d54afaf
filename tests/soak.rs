//! A bounded soak of the real binary on loopback: four clients upsert (PutRecords and
//! Ingest), compute (Compute and BatchCompute) and list for `KPID_SOAK_SECS` seconds
//! (default 5). No call may fail, no acknowledged record may be missing at the end, and the
//! server's resident memory (VmRSS from /proc/PID/status, sampled every 200 ms) must stay
//! flat once warmed up: each client upserts over a fixed set of keys, so after the first
//! pass the data stops growing and so must the process.
//!
//! `KPID_SOAK_SECS=60 cargo test --release --test soak -- --nocapture` prints the figures.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{customer, deal, key_of, list_all, ts, Kpid};
use kpi_proto::kpi::v1 as pb;

/// Concurrent clients.
const CLIENTS: usize = 4;
/// Distinct record ids each client upserts over.
const KEYS_PER_CLIENT: u64 = 1000;
/// Records per PutRecords call, and per Ingest message (two messages a stream).
const BATCH: u64 = 20;
/// RSS sampling interval.
const SAMPLE_EVERY: Duration = Duration::from_millis(200);
/// Growth allowed after warm-up: this fraction of the warmed-up RSS, and at least
/// [`MIN_GROWTH_BYTES`].
const GROWTH_FRACTION: f64 = 0.5;
const MIN_GROWTH_BYTES: u64 = 64 * 1024 * 1024;

/// Latencies of one kind of call, over every client.
#[derive(Default)]
struct Latencies {
    put: Vec<Duration>,
    ingest: Vec<Duration>,
    compute: Vec<Duration>,
    batch: Vec<Duration>,
    list: Vec<Duration>,
}

/// A deal or a customer with id `id`, its values varying with `round` (so every upsert
/// changes the record).
fn soak_record(id: &str, round: u64) -> pb::Record {
    let n = round.wrapping_mul(0x9e37_79b9) ^ id.len() as u64;
    let day = 1 + n % 28;
    let month = 1 + (n / 28) % 12;
    let at = format!("2024-{month:02}-{day:02}T12:00:00Z");
    if id.starts_with('c') {
        return customer(id, &at, pb::Source::Marketing);
    }
    let status = [
        pb::DealStatus::Won,
        pb::DealStatus::Lost,
        pb::DealStatus::Open,
    ][(n % 3) as usize];
    let amount = format!("{}.{:02}", 100 + n % 9_900, n % 100);
    deal(id, &format!("rep{}", n % 7), status, &amount, &at)
}

/// Record id `j` of client `client`: deals and customers alternate.
fn soak_id(client: usize, j: u64) -> String {
    let slot = j % KEYS_PER_CLIENT;
    let kind = if slot.is_multiple_of(2) { 'd' } else { 'c' };
    format!("{kind}{client}-{slot}")
}

fn compute_request() -> pb::ComputeRequest {
    pb::ComputeRequest {
        metric_id: "sales.win_rate".into(),
        start: ts("2024-01-01T00:00:00Z"),
        end: ts("2025-01-01T00:00:00Z"),
        granularity: pb::Granularity::Month.into(),
        group_by: vec!["owner".into()],
        ..Default::default()
    }
}

fn batch_request() -> pb::BatchComputeRequest {
    let metric = |id: &str| pb::BatchComputeMetric {
        metric_id: id.into(),
        ..Default::default()
    };
    pb::BatchComputeRequest {
        start: ts("2024-01-01T00:00:00Z"),
        end: ts("2025-01-01T00:00:00Z"),
        granularity: pb::Granularity::Quarter.into(),
        metrics: vec![
            metric("sales.win_rate"),
            metric("sales.average_deal_size"),
            metric("sales.revenue"),
            metric("success.churn_rate"),
        ],
        ..Default::default()
    }
}

/// One client's loop until `deadline`: put, ingest, compute, batch compute, list. Returns
/// the keys it wrote (every write acknowledged; any failure panics).
async fn client(
    kpid_url: String,
    client: usize,
    deadline: Instant,
    latencies: Arc<Mutex<Latencies>>,
) -> BTreeSet<(String, String)> {
    let channel = tonic::transport::Channel::from_shared(kpid_url)
        .unwrap()
        .connect()
        .await
        .expect("connect");
    let mut records =
        kpi_proto::kpi::v1::records_service_client::RecordsServiceClient::new(channel.clone());
    let mut metrics =
        kpi_proto::kpi::v1::metrics_service_client::MetricsServiceClient::new(channel);
    let mut written = BTreeSet::new();
    let mut mine = Latencies::default();
    let mut j = 0u64;
    let mut round = 0u64;
    let mut next_batch = |written: &mut BTreeSet<(String, String)>| {
        let batch: Vec<pb::Record> = (0..BATCH)
            .map(|_| {
                j += 1;
                round += 1;
                let r = soak_record(&soak_id(client, j), round);
                written.insert(key_of(&r));
                r
            })
            .collect();
        batch
    };
    while Instant::now() < deadline {
        let batch = next_batch(&mut written);
        let started = Instant::now();
        let put = records
            .put_records(pb::PutRecordsRequest { records: batch })
            .await
            .unwrap_or_else(|s| panic!("client {client}: PutRecords: {s}"))
            .into_inner();
        mine.put.push(started.elapsed());
        assert_eq!(put.accepted, BATCH, "{:?}", put.rejected);

        let messages = vec![
            pb::IngestRequest {
                records: next_batch(&mut written),
            },
            pb::IngestRequest {
                records: next_batch(&mut written),
            },
        ];
        let started = Instant::now();
        let ingested = records
            .ingest(tokio_stream::iter(messages))
            .await
            .unwrap_or_else(|s| panic!("client {client}: Ingest: {s}"))
            .into_inner();
        mine.ingest.push(started.elapsed());
        assert_eq!(ingested.accepted, 2 * BATCH, "{:?}", ingested.rejected);

        let started = Instant::now();
        let rows = metrics
            .compute(compute_request())
            .await
            .unwrap_or_else(|s| panic!("client {client}: Compute: {s}"))
            .into_inner()
            .rows;
        mine.compute.push(started.elapsed());
        assert!(!rows.is_empty(), "win rate answers rows");

        let started = Instant::now();
        let results = metrics
            .batch_compute(batch_request())
            .await
            .unwrap_or_else(|s| panic!("client {client}: BatchCompute: {s}"))
            .into_inner()
            .results;
        mine.batch.push(started.elapsed());
        for result in results {
            assert!(
                result.error.is_none(),
                "{}: {:?}",
                result.metric_id,
                result.error
            );
        }

        let started = Instant::now();
        records
            .list_records(pb::ListRecordsRequest {
                kind: "deal".into(),
                page_size: 100,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("client {client}: ListRecords: {s}"));
        mine.list.push(started.elapsed());
    }
    let mut all = latencies.lock().unwrap();
    all.put.extend(mine.put);
    all.ingest.extend(mine.ingest);
    all.compute.extend(mine.compute);
    all.batch.extend(mine.batch);
    all.list.extend(mine.list);
    written
}

/// VmRSS of `pid` in bytes.
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// "n calls, p50 …, p99 …, max …".
fn summary(mut latencies: Vec<Duration>) -> String {
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    format!(
        "{:>6} calls, p50 {:>8.2?}, p99 {:>8.2?}, max {:>8.2?}",
        latencies.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    )
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_four_clients_no_errors_no_loss_flat_memory() {
    let secs: u64 = std::env::var("KPID_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let kpid = tokio::task::block_in_place(Kpid::start);
    let pid = kpid.pid();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    // Warm-up: the first pass over the keys, the caches and the allocator's pools.
    let warm_up = Duration::from_secs(secs)
        .mul_f64(0.4)
        .max(Duration::from_secs(2));

    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if let Some(rss) = rss_bytes(pid) {
                    samples.push((started.elapsed(), rss));
                }
                std::thread::sleep(SAMPLE_EVERY);
            }
            samples
        })
    };

    let latencies = Arc::new(Mutex::new(Latencies::default()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| tokio::spawn(client(kpid.url(), i, deadline, latencies.clone())))
        .collect();
    let mut written = BTreeSet::new();
    for c in clients {
        written.extend(c.await.expect("a client failed"));
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.join().unwrap();

    // No record lost: every acknowledged key is listed, and nothing else.
    let mut reader = kpid.records().await;
    let (stored, pages) = list_all(&mut reader, "", 1000).await;
    let stored: BTreeSet<_> = stored.iter().map(key_of).collect();
    assert_eq!(stored.len(), written.len(), "{pages} pages listed");
    assert_eq!(stored, written);

    // Memory flat after warm-up.
    let warm: Vec<u64> = samples
        .iter()
        .filter(|(t, _)| *t <= warm_up)
        .map(|(_, rss)| *rss)
        .collect();
    let after: Vec<u64> = samples
        .iter()
        .filter(|(t, _)| *t > warm_up)
        .map(|(_, rss)| *rss)
        .collect();
    assert!(
        !warm.is_empty() && !after.is_empty(),
        "RSS samples on both sides of the warm-up ({} samples)",
        samples.len()
    );
    let baseline = *warm.last().unwrap();
    let peak = *after.iter().max().unwrap();
    let end = *after.last().unwrap();
    let allowed = baseline + ((baseline as f64 * GROWTH_FRACTION) as u64).max(MIN_GROWTH_BYTES);
    let l = latencies.lock().unwrap();
    let report = format!(
        "soak: {CLIENTS} clients for {elapsed:.1?}, {} distinct records stored\n\
         RSS: start {}, after warm-up ({warm_up:.1?}) {}, peak after {}, end {}, allowed {}\n\
         PutRecords   {}\nIngest       {}\nCompute      {}\nBatchCompute {}\nListRecords  {}",
        stored.len(),
        mib(samples[0].1),
        mib(baseline),
        mib(peak),
        mib(end),
        mib(allowed),
        summary(l.put.clone()),
        summary(l.ingest.clone()),
        summary(l.compute.clone()),
        summary(l.batch.clone()),
        summary(l.list.clone()),
    );
    eprintln!("{report}");
    assert!(peak <= allowed, "memory grew after warm-up:\n{report}");
    assert!(
        !l.put.is_empty() && !l.compute.is_empty(),
        "the clients made calls"
    );
}
