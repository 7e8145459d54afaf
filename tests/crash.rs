//! Crash safety of the real binary. Records stream in through Ingest and PutRecords (and
//! some are deleted) while kpid is SIGKILLed at seeded-random points; every restart on the
//! same data directory must open the store cleanly and hold every acknowledged write,
//! unchanged, and nothing that was never sent. A SIGTERM in the middle of the same traffic
//! must answer what is in flight, keep everything it acknowledged, and exit 0. The rows
//! snapshot a clean stop writes must be read at the next start, and never after a write
//! followed by a crash.
//!
//! Every test runs on sled and, with `KPID_TEST_STORE=postgres` (`.ci/run`), on PostgreSQL:
//! a restart then reconnects to the same database (`common::TestStore`). Those of sled's own
//! machinery (the rows snapshot and its token, a full data directory) say that they skip
//! there, and why; one test runs on PostgreSQL only, a writer killed while a second replica
//! follows it.
//!
//! `KPID_CRASH_RUNS` (default 12) sets the number of kill/restart runs and
//! `KPID_CRASH_SEED` the first seed; a failure names the seed of its run.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    assert_same, customer, deal, every_metric, key_of, list_all, on_postgres, put_all_on, record,
    ts, Kpid, TestStore,
};
use kpi_proto::kpi::v1 as pb;
use kpi_proto::kpi::v1::records_service_client::RecordsServiceClient;
use pb::record::Record as Kind;
use tokio::task::block_in_place;
use tonic::transport::Channel;

/// Kill/restart runs when `KPID_CRASH_RUNS` is unset.
const DEFAULT_RUNS: u64 = 12;
/// The runs stop early (after at least [`MIN_RUNS`]) once this much time has gone, so a
/// loaded machine still finishes well within a minute.
const TIME_BUDGET: Duration = Duration::from_secs(40);
const MIN_RUNS: u64 = 4;
/// The latest a run kills the server, after its writers started.
const MAX_KILL_DELAY_MS: u64 = 400;

/// SplitMix64: a small seeded generator, so a failing run replays from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

type Key = (String, String);

/// What the clients know: every record they sent, which puts and deletes were
/// acknowledged. A key is sent with one value only, so a stored record must equal it.
#[derive(Default)]
struct Model {
    /// Every record ever sent, by key.
    sent: BTreeMap<Key, pb::Record>,
    /// Acknowledged puts not since deleted (nor being deleted): must be present.
    acked: BTreeSet<Key>,
    /// Acknowledged deletes: must be absent.
    deleted: BTreeSet<Key>,
    /// Acknowledged RPCs, for the report.
    acks: u64,
    /// The largest sequence an acknowledged write answered (on sled always 0): a restarted
    /// kpid must have applied it.
    sequence: u64,
}

type Shared = Arc<Mutex<Model>>;

/// How a writer ended: the call that failed, and when (`None`: it reached its deadline).
type Ended = Option<(Instant, tonic::Status)>;

/// A record of a seeded kind (customer, won/lost/open deal, purchase) with id `id`.
fn random_record(rng: &mut Rng, id: &str) -> pb::Record {
    let day = 1 + rng.below(28);
    let month = 1 + rng.below(12);
    let at = format!("2024-{month:02}-{day:02}T{:02}:00:00Z", rng.below(24));
    let cents = rng.below(10_000_000);
    let amount = format!("{}.{:02}", cents / 100, cents % 100);
    match rng.below(5) {
        0 | 1 => customer(id, &at, pb::Source::Sales),
        2 => {
            let status = [
                pb::DealStatus::Won,
                pb::DealStatus::Lost,
                pb::DealStatus::Open,
            ][rng.below(3) as usize];
            let owner = format!("rep{}", rng.below(5));
            deal(id, &owner, status, &amount, &at)
        }
        _ => record(Kind::Purchase(pb::Purchase {
            currency: String::new(),
            attributes: Default::default(),
            id: id.into(),
            customer_id: format!("c{}", rng.below(50)),
            amount,
            at: ts(&at),
        })),
    }
}

/// Streams Ingest calls of 1–4 messages of 1–25 records each, until a call fails (the
/// server was killed) or `deadline`. A call's records are acknowledged by its answer.
async fn ingest_writer(
    mut client: RecordsServiceClient<Channel>,
    model: Shared,
    mut rng: Rng,
    prefix: String,
    deadline: Instant,
) -> Ended {
    let mut n = 0u64;
    while Instant::now() < deadline {
        let mut messages = Vec::new();
        let mut keys = Vec::new();
        for _ in 0..1 + rng.below(4) {
            let mut records = Vec::new();
            for _ in 0..1 + rng.below(25) {
                n += 1;
                let r = random_record(&mut rng, &format!("{prefix}-{n}"));
                keys.push(key_of(&r));
                records.push(r);
            }
            messages.push(pb::IngestRequest { records });
        }
        {
            let mut m = model.lock().unwrap();
            for r in messages.iter().flat_map(|msg| &msg.records) {
                m.sent.insert(key_of(r), r.clone());
            }
        }
        match client.ingest(tokio_stream::iter(messages)).await {
            Ok(answer) => {
                let answer = answer.into_inner();
                assert!(answer.rejected.is_empty(), "{:?}", answer.rejected);
                assert_eq!(answer.accepted, keys.len() as u64);
                let mut m = model.lock().unwrap();
                m.acked.extend(keys);
                m.acks += 1;
                m.sequence = m.sequence.max(answer.sequence);
            }
            Err(status) => return Some((Instant::now(), status)),
        }
    }
    None
}

/// The wire keys of `keys`, for DeleteRecords.
fn record_keys(keys: &[Key]) -> Vec<pb::RecordKey> {
    keys.iter()
        .map(|(kind, id)| pb::RecordKey {
            kind: kind.clone(),
            id: id.clone(),
        })
        .collect()
}

/// PutRecords calls of 1–40 records; every fifth call instead deletes 1–3 of this
/// writer's acknowledged records. Until a call fails or `deadline`.
async fn put_writer(
    mut client: RecordsServiceClient<Channel>,
    model: Shared,
    mut rng: Rng,
    prefix: String,
    deadline: Instant,
) -> Ended {
    let mut n = 0u64;
    let mut mine: Vec<Key> = Vec::new();
    while Instant::now() < deadline {
        if rng.below(5) == 0 && !mine.is_empty() {
            let mut doomed = Vec::new();
            for _ in 0..1 + rng.below(3) {
                if mine.is_empty() {
                    break;
                }
                let i = rng.below(mine.len() as u64) as usize;
                doomed.push(mine.swap_remove(i));
            }
            {
                // In flight: neither must be present nor must be absent.
                let mut m = model.lock().unwrap();
                for k in &doomed {
                    m.acked.remove(k);
                }
            }
            match client
                .delete_records(pb::DeleteRecordsRequest {
                    keys: record_keys(&doomed),
                })
                .await
            {
                Ok(answer) => {
                    let answer = answer.into_inner();
                    assert_eq!(answer.deleted, doomed.len() as u64);
                    let mut m = model.lock().unwrap();
                    m.deleted.extend(doomed);
                    m.acks += 1;
                    m.sequence = m.sequence.max(answer.sequence);
                }
                Err(status) => return Some((Instant::now(), status)),
            }
            continue;
        }
        let mut records = Vec::new();
        for _ in 0..1 + rng.below(40) {
            n += 1;
            records.push(random_record(&mut rng, &format!("{prefix}-{n}")));
        }
        let keys: Vec<Key> = records.iter().map(key_of).collect();
        {
            let mut m = model.lock().unwrap();
            for r in &records {
                m.sent.insert(key_of(r), r.clone());
            }
        }
        match client.put_records(pb::PutRecordsRequest { records }).await {
            Ok(answer) => {
                let answer = answer.into_inner();
                assert!(answer.rejected.is_empty(), "{:?}", answer.rejected);
                assert_eq!(answer.accepted, keys.len() as u64);
                mine.extend(keys.iter().cloned());
                let mut m = model.lock().unwrap();
                m.acked.extend(keys);
                m.acks += 1;
                m.sequence = m.sequence.max(answer.sequence);
            }
            Err(status) => return Some((Instant::now(), status)),
        }
    }
    None
}

/// The `records=N` of the server's "record store open" log line.
fn records_at_open(kpid: &Kpid) -> Option<usize> {
    let logs = kpid.logs();
    let line = logs.lines().find(|l| l.contains("record store open"))?;
    let field = line
        .split_whitespace()
        .find(|w| w.starts_with("records="))?;
    field.trim_start_matches("records=").parse().ok()
}

/// Checks the running server against the model: every acknowledged put present and
/// unchanged, every acknowledged delete absent, nothing stored that was never sent, no key
/// twice, as many records as it loaded at start, and the last acknowledged sequence
/// applied (a read at that `min_sequence` answers at once). Returns how many records are
/// stored.
async fn check(kpid: &Kpid, model: &Shared, label: &str) -> usize {
    let mut client = kpid.records().await;
    let sequence = model.lock().unwrap().sequence;
    // Without a deadline a sequence not reached answers UNAVAILABLE after 10 s.
    let at_sequence = pb::ListRecordsRequest {
        page_size: 1,
        min_sequence: sequence,
        ..Default::default()
    };
    if let Err(status) = client.list_records(at_sequence).await {
        panic!("{label}: the acknowledged sequence {sequence} is not applied: {status:?}");
    }
    let (stored, _) = list_all(&mut client, "", 1000).await;
    let mut present = BTreeMap::new();
    for r in stored {
        let key = key_of(&r);
        assert!(
            present.insert(key.clone(), r).is_none(),
            "{label}: {key:?} listed twice"
        );
    }
    let m = model.lock().unwrap();
    for key in &m.acked {
        let got = present
            .get(key)
            .unwrap_or_else(|| panic!("{label}: the acknowledged record {key:?} was lost"));
        assert_eq!(got, &m.sent[key], "{label}: {key:?} changed");
    }
    for key in &m.deleted {
        assert!(
            !present.contains_key(key),
            "{label}: the acknowledged delete of {key:?} was undone"
        );
    }
    for (key, r) in &present {
        let sent = m
            .sent
            .get(key)
            .unwrap_or_else(|| panic!("{label}: {key:?} is stored but was never sent"));
        assert_eq!(r, sent, "{label}: {key:?} differs from what was sent");
    }
    if let Some(at_open) = records_at_open(kpid) {
        assert_eq!(
            at_open,
            present.len(),
            "{label}: the store loaded {at_open} records at open but lists {}",
            present.len()
        );
    }
    present.len()
}

/// One ingest and one put writer against `kpid`, seeded from `rng`.
async fn start_writers(
    kpid: &Kpid,
    model: &Shared,
    rng: &mut Rng,
    run: u64,
    deadline: Instant,
) -> Vec<tokio::task::JoinHandle<Ended>> {
    vec![
        tokio::spawn(ingest_writer(
            kpid.records().await,
            model.clone(),
            Rng(rng.next()),
            format!("i{run}"),
            deadline,
        )),
        tokio::spawn(put_writer(
            kpid.records().await,
            model.clone(),
            Rng(rng.next()),
            format!("p{run}"),
            deadline,
        )),
    ]
}

/// Waits for the writers; a call may fail only once the server was `signalled`.
async fn join_writers(
    writers: Vec<tokio::task::JoinHandle<Ended>>,
    signalled: Instant,
    label: &str,
) {
    for writer in writers {
        let ended = tokio::time::timeout(Duration::from_secs(20), writer)
            .await
            .unwrap_or_else(|_| panic!("{label}: a writer did not stop"))
            .unwrap_or_else(|e| panic!("{label}: a writer failed: {e}"));
        if let Some((at, status)) = ended {
            assert!(
                at >= signalled,
                "{label}: a call failed before the server was signalled: {status:?}"
            );
        }
    }
}

/// One message of `count` records for the long Ingest stream, noted in `streamed`.
fn stream_message(
    rng: &mut Rng,
    streamed: &mut Vec<pb::Record>,
    count: usize,
) -> pb::IngestRequest {
    let mut records = Vec::new();
    for _ in 0..count {
        let r = random_record(rng, &format!("s-{}", streamed.len() + 1));
        streamed.push(r.clone());
        records.push(r);
    }
    pb::IngestRequest { records }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Starts kpid (again) on `store`: the same data directory, or the same PostgreSQL
/// database (`--store postgres://…`), as every start before.
fn start(store: &TestStore) -> Kpid {
    block_in_place(|| store.start())
}

/// Starts kpid (again) on the sled data directory `dir`.
fn start_on_sled(dir: &Path) -> Kpid {
    block_in_place(|| Kpid::start_in(dir, &[]))
}

/// Whether a test of what only sled has runs: with `KPID_TEST_STORE=postgres` it says that
/// `test` is skipped on PostgreSQL, and `why`.
fn runs_on_sled_only(test: &str, why: &str) -> bool {
    if on_postgres() {
        eprintln!("SKIPPED {test} on PostgreSQL: {why}");
        return false;
    }
    true
}

/// How many records `store` holds, opened in-process while no kpid runs on it: sled's data
/// directory, or a replica over the PostgreSQL database (on a thread of its own: the
/// blocking PostgreSQL client runs a runtime of its own).
fn records_opened_in_process(store: &TestStore) -> u64 {
    let Some(url) = store.postgres_url() else {
        let opened = kpi_store::Store::open(store.data_dir()).expect("the store opens cleanly");
        return opened.stats().records;
    };
    let url = url.to_owned();
    std::thread::spawn(move || {
        kpi_store::Store::open_postgres(&url, kpi_store::OpenOptions::default())
            .expect("the store opens cleanly")
            .stats()
            .records
    })
    .join()
    .expect("the in-process open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_loses_no_acknowledged_write() {
    let runs = env_u64("KPID_CRASH_RUNS", DEFAULT_RUNS);
    let first_seed = env_u64("KPID_CRASH_SEED", 0x6b70_6964);
    let store = TestStore::new();
    let model = Shared::default();
    let started = Instant::now();
    let mut done = 0;
    for run in 0..runs {
        if run >= MIN_RUNS && started.elapsed() > TIME_BUDGET {
            eprintln!("time budget spent after {run} runs");
            break;
        }
        let seed = first_seed + run;
        let label = format!("run {run} (KPID_CRASH_SEED={seed} KPID_CRASH_RUNS=1)");
        let mut rng = Rng(seed);
        let mut kpid = start(&store);
        let before = check(&kpid, &model, &format!("{label}, after restart")).await;

        let deadline = Instant::now() + Duration::from_secs(10);
        let writers = start_writers(&kpid, &model, &mut rng, run, deadline).await;
        // Mostly mid-traffic; now and then right away, before the first write lands.
        let delay = match rng.below(8) {
            0 => 0,
            _ => rng.below(MAX_KILL_DELAY_MS),
        };
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let signalled = Instant::now();
        block_in_place(|| kpid.kill9());
        join_writers(writers, signalled, &label).await;
        let m = model.lock().unwrap();
        eprintln!(
            "{label}: {before} records at start, killed after {delay} ms; {} acknowledged RPCs so far",
            m.acks
        );
        done += 1;
    }

    // The last kill's survivors, then a clean stop, and the store opened in-process.
    let mut kpid = start(&store);
    let stored = check(&kpid, &model, "after the last kill").await;
    let status = block_in_place(|| kpid.terminate());
    assert!(status.success(), "{status:?}; logs:\n{}", kpid.logs());
    assert_eq!(records_opened_in_process(&store), stored as u64);
    let m = model.lock().unwrap();
    assert!(
        m.acks >= done,
        "the runs acknowledged too little to test anything ({} RPCs in {done} runs)",
        m.acks
    );
    eprintln!(
        "{done} kill/restart runs in {:.1?}: {} acknowledged RPCs, {} records kept, {} deleted",
        started.elapsed(),
        m.acks,
        stored,
        m.deleted.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_stream_answers_in_flight_work_keeps_it_and_exits_0() {
    let store = TestStore::new();
    let model = Shared::default();
    let mut rng = Rng(0x7465_726d);
    let mut kpid = start(&store);

    // Background traffic: an ingest and a put writer that stop at their first refusal.
    let deadline = Instant::now() + Duration::from_secs(20);
    let writers = start_writers(&kpid, &model, &mut rng, 0, deadline).await;

    // And one long Ingest stream, fed message by message across the signal.
    let (messages, stream) = tokio::sync::mpsc::channel(4);
    let mut client = kpid.records().await;
    let ingest = tokio::spawn(async move {
        client
            .ingest(tokio_stream::wrappers::ReceiverStream::new(stream))
            .await
    });
    let mut streamed = Vec::new();
    for _ in 0..5 {
        let message = stream_message(&mut rng, &mut streamed, 10);
        messages.send(message).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let the writers get some acknowledgements in.
    let wait = Instant::now();
    while model.lock().unwrap().acks < 6 {
        assert!(wait.elapsed() < Duration::from_secs(10), "no progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let signalled = Instant::now();
    kpid.send_sigterm();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..3 {
        let message = stream_message(&mut rng, &mut streamed, 10);
        messages.send(message).await.unwrap();
    }
    drop(messages);
    let answer = tokio::time::timeout(Duration::from_secs(20), ingest)
        .await
        .expect("the in-flight Ingest is answered in time")
        .unwrap()
        .expect("the in-flight Ingest succeeds")
        .into_inner();
    assert_eq!(answer.accepted, streamed.len() as u64);
    {
        let mut m = model.lock().unwrap();
        for r in &streamed {
            m.sent.insert(key_of(r), r.clone());
            m.acked.insert(key_of(r));
        }
    }
    join_writers(writers, signalled, "sigterm").await;
    let status = block_in_place(|| kpid.wait_exit(Duration::from_secs(30)));
    assert!(status.success(), "{status:?}; logs:\n{}", kpid.logs());
    let logs = kpid.logs();
    assert!(logs.contains("store flushed"), "{logs}");

    let restarted = start(&store);
    let stored = check(&restarted, &model, "after SIGTERM").await;
    assert!(stored >= streamed.len());
    eprintln!(
        "SIGTERM mid-stream: {} records streamed across the signal, {} acknowledged RPCs, {stored} stored",
        streamed.len(),
        model.lock().unwrap().acks
    );
}

/// Puts `count` records with ids `{prefix}-0..` (new values for keys already stored) and
/// notes them in the model.
async fn put_ids(kpid: &Kpid, model: &Shared, rng: &mut Rng, prefix: &str, count: usize) {
    let records: Vec<pb::Record> = (0..count)
        .map(|i| random_record(rng, &format!("{prefix}-{i}")))
        .collect();
    let answer = kpid
        .records()
        .await
        .put_records(pb::PutRecordsRequest {
            records: records.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(answer.rejected.is_empty(), "{:?}", answer.rejected);
    let mut m = model.lock().unwrap();
    for r in records {
        let key = key_of(&r);
        m.deleted.remove(&key);
        m.acked.insert(key.clone());
        m.sent.insert(key, r);
    }
    m.sequence = m.sequence.max(answer.sequence);
}

/// Deletes `count` of the model's acknowledged records in one call and notes it.
async fn delete_acknowledged(kpid: &Kpid, model: &Shared, count: usize) {
    let doomed: Vec<Key> = {
        let m = model.lock().unwrap();
        m.acked.iter().take(count).cloned().collect()
    };
    let answer = kpid
        .records()
        .await
        .delete_records(pb::DeleteRecordsRequest {
            keys: record_keys(&doomed),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.deleted, doomed.len() as u64);
    let mut m = model.lock().unwrap();
    for k in doomed {
        m.acked.remove(&k);
        m.deleted.insert(k);
    }
    m.sequence = m.sequence.max(answer.sequence);
}

/// The dashboard a restart must answer the same: win rate, revenue and purchases by month.
async fn answers(kpid: &Kpid) -> Vec<String> {
    let mut client = kpid.metrics().await;
    let mut out = Vec::new();
    for metric in [
        "sales.win_rate",
        "sales.revenue",
        "success.repeat_customer_rate",
    ] {
        let answer = client
            .compute(pb::ComputeRequest {
                metric_id: metric.into(),
                start: ts("2024-01-01T00:00:00Z"),
                end: ts("2025-01-01T00:00:00Z"),
                granularity: pb::Granularity::Month as i32,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        out.push(format!("{metric}: {:?}", answer.rows));
    }
    out
}

/// Stops kpid with SIGTERM and starts it again, which must read the rows snapshot.
fn stop_and_reopen(mut kpid: Kpid, dir: &Path) -> Kpid {
    let status = block_in_place(|| kpid.terminate());
    assert!(status.success(), "{}", kpid.logs());
    assert!(
        kpid.logs().contains("rows snapshot written"),
        "{}",
        kpid.logs()
    );
    let kpid = start_on_sled(dir);
    assert!(
        kpid.logs().contains("loaded from its snapshot"),
        "{}",
        kpid.logs()
    );
    kpid
}

/// Kills kpid after a write and starts it again, which must not read the (stale) rows
/// snapshot, and must hold the model's records and answer `expected`.
async fn crash_and_reopen(
    mut kpid: Kpid,
    dir: &Path,
    model: &Shared,
    expected: &[String],
    label: &str,
) -> Kpid {
    block_in_place(|| kpid.kill9());
    let kpid = start_on_sled(dir);
    assert!(
        !kpid.logs().contains("loaded from its snapshot"),
        "{label}: a stale snapshot was read:\n{}",
        kpid.logs()
    );
    check(&kpid, model, label).await;
    assert_eq!(answers(&kpid).await, expected, "{label}: answers");
    kpid
}

/// Kills kpid with SIGKILL right after acknowledged writes and starts it again on the same
/// store: every acknowledged write is there and every metric of the catalogue answers as
/// before the kill (BatchCompute, month by month over 2024). Returns the restarted kpid and
/// those answers.
async fn kill_and_restart(
    mut kpid: Kpid,
    store: &TestStore,
    model: &Shared,
    label: &str,
) -> (Kpid, pb::BatchComputeResponse) {
    let sequence = model.lock().unwrap().sequence;
    let before = every_metric(&kpid, sequence).await;
    block_in_place(|| kpid.kill9());
    let kpid = start(store);
    check(&kpid, model, label).await;
    let after = every_metric(&kpid, sequence).await;
    assert_same(
        &after,
        &before,
        &format!("{label}: answers after the restart"),
    );
    (kpid, after)
}

/// On either backend, a SIGKILL right after acknowledged puts (new keys, then new values
/// for old keys) and right after acknowledged deletes loses none of them: the restarted
/// kpid lists every acknowledged write, has applied the sequence the last one answered,
/// and answers every metric as before the kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_acknowledged_puts_and_deletes_keeps_every_write_and_every_answer() {
    let store = TestStore::new();
    let model = Shared::default();
    let mut rng = Rng(0x6163_6b73);
    let kpid = start(&store);
    put_ids(&kpid, &model, &mut rng, "a", 300).await;
    let (kpid, first) = kill_and_restart(kpid, &store, &model, "after new records").await;

    put_ids(&kpid, &model, &mut rng, "a", 120).await;
    put_ids(&kpid, &model, &mut rng, "b", 80).await;
    let (kpid, rewritten) =
        kill_and_restart(kpid, &store, &model, "after new values for old keys").await;
    assert_ne!(rewritten, first, "the new values change the answers");

    delete_acknowledged(&kpid, &model, 60).await;
    let (_kpid, deleted) = kill_and_restart(kpid, &store, &model, "after deletes").await;
    assert_ne!(deleted, rewritten, "the deletes change the answers");
}

/// Kill/restart runs of the PostgreSQL replicas' crash test.
const REPLICA_RUNS: u64 = 4;

/// The default tenant's sequence in the PostgreSQL database at `url`, read once no write
/// is in flight: its `tenant_sequences` row read FOR UPDATE waits for a transaction a
/// killed kpid left open (which holds that row) to commit or roll back.
fn database_sequence(url: &str) -> u64 {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        let mut transaction = client.transaction().expect("begin");
        let row = transaction
            .query_opt(
                "SELECT sequence FROM tenant_sequences WHERE tenant = $1 FOR UPDATE",
                &[&kpi_store::DEFAULT_TENANT],
            )
            .expect("the tenant's sequence");
        row.map_or(0, |row| {
            u64::try_from(row.get::<_, i64>(0)).expect("a sequence is positive")
        })
    })
    .join()
    .expect("the sequence query")
}

/// On PostgreSQL only (`KPID_TEST_STORE=postgres`): a writer SIGKILLed mid-traffic
/// (Ingest streams, PutRecords, deletes) while a second replica follows it, so that some
/// writes may commit unanswered. In each run the database's sequence covers every
/// acknowledged write; the writer, restarted on the same database, lists every acknowledged
/// write and nothing never sent, with as many rows as the database holds; the follower,
/// which kept running, applies every committed write, answered or not; and the restarted
/// writer, the follower and a replica opened after answer every metric alike. At the end a
/// kpid on sled holding what the database lists answers the same: the replicas' rows are
/// the database's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_writer_killed_mid_traffic_restarts_with_the_databases_rows_and_replicas_agree(
) {
    if !on_postgres() {
        eprintln!(
            "SKIPPED on_postgres_a_writer_killed_mid_traffic_restarts_with_the_databases_rows_and_replicas_agree: \
             replicas share a PostgreSQL database (KPID_TEST_STORE=postgres; .ci/run sets it)"
        );
        return;
    }
    let store = TestStore::new();
    let url = store.postgres_url().expect("a PostgreSQL store").to_owned();
    let model = Shared::default();
    let mut rng = Rng(0x7265_706c);
    let mut writer = start(&store);
    let follower = start(&store);
    let (mut committed, mut unanswered_runs) = (0, 0);
    for run in 0..REPLICA_RUNS {
        let label = format!("replica run {run}");
        let acks_before = model.lock().unwrap().acks;
        let deadline = Instant::now() + Duration::from_secs(10);
        let writers = start_writers(&writer, &model, &mut rng, run, deadline).await;
        // Mid-traffic: after two more acknowledgements, then at a random point.
        let wait = Instant::now();
        while model.lock().unwrap().acks < acks_before + 2 {
            assert!(
                wait.elapsed() < Duration::from_secs(10),
                "{label}: no progress"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.below(MAX_KILL_DELAY_MS))).await;
        let signalled = Instant::now();
        block_in_place(|| writer.kill9());
        join_writers(writers, signalled, &label).await;

        committed = block_in_place(|| database_sequence(&url));
        let acknowledged = model.lock().unwrap().sequence;
        assert!(
            committed >= acknowledged,
            "{label}: the database is at sequence {committed}, below the acknowledged {acknowledged}"
        );
        if committed > acknowledged {
            unanswered_runs += 1;
        }
        writer = start(&store);
        check(&writer, &model, &format!("{label}, the writer restarted")).await;
        let opened = start(&store);
        let on_opened = every_metric(&opened, committed).await;
        assert_same(
            &every_metric(&writer, committed).await,
            &on_opened,
            &format!("{label}: the restarted writer and a replica opened after"),
        );
        assert_same(
            &every_metric(&follower, committed).await,
            &on_opened,
            &format!("{label}: the follower and a replica opened after"),
        );
        eprintln!(
            "{label}: database at sequence {committed}, acknowledged through {acknowledged}; \
             {} acknowledged RPCs so far",
            model.lock().unwrap().acks
        );
    }

    // What the database lists, on sled, answers as the replicas do.
    let (listed, _) = list_all(&mut writer.records().await, "", 1000).await;
    assert!(!listed.is_empty());
    let sled_dir = tempfile::tempdir().expect("temp dir");
    let sled = start_on_sled(sled_dir.path());
    put_all_on(&sled, &listed, false).await;
    assert_same(
        &every_metric(&sled, 0).await,
        &every_metric(&follower, committed).await,
        "a kpid on sled holding what the database lists, and the follower",
    );
    eprintln!(
        "{REPLICA_RUNS} writer kills with a follower: {} records in the database at sequence \
         {committed}; {unanswered_runs} runs left writes committed but unanswered",
        listed.len()
    );
}

/// Why the rows snapshot's tests run on sled only.
const NO_ROWS_SNAPSHOT_ON_POSTGRES: &str =
    "kpid on PostgreSQL writes no rows snapshot and keeps no snapshot token (every start \
     loads the rows from the database); its restarts after puts and deletes are \
     sigkill_after_acknowledged_puts_and_deletes_keeps_every_write_and_every_answer";

/// The rows snapshot kpid writes when it stops is read at the next start only while it is
/// current: the first write after it retires it, so a SIGKILL after that write reopens the
/// store by scanning sled, with every acknowledged write and the same answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rows_snapshot_is_read_only_while_it_is_current() {
    if !runs_on_sled_only(
        "a_rows_snapshot_is_read_only_while_it_is_current",
        NO_ROWS_SNAPSHOT_ON_POSTGRES,
    ) {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let model = Shared::default();
    let mut rng = Rng(0x736e_6170);
    let kpid = start_on_sled(data.path());
    put_ids(&kpid, &model, &mut rng, "a", 300).await;
    let before = answers(&kpid).await;
    let kpid = stop_and_reopen(kpid, data.path());
    check(&kpid, &model, "opened from the snapshot").await;
    assert_eq!(
        answers(&kpid).await,
        before,
        "answers after a clean restart"
    );

    // New values for old keys and new keys; then a crash.
    put_ids(&kpid, &model, &mut rng, "a", 120).await;
    put_ids(&kpid, &model, &mut rng, "b", 80).await;
    let changed = answers(&kpid).await;
    assert_ne!(changed, before, "the writes change the answers");
    let kpid = crash_and_reopen(kpid, data.path(), &model, &changed, "after puts").await;

    // The same with deletes.
    let kpid = stop_and_reopen(kpid, data.path());
    delete_acknowledged(&kpid, &model, 60).await;
    let changed = answers(&kpid).await;
    let kpid = crash_and_reopen(kpid, data.path(), &model, &changed, "after deletes").await;

    // A clean stop writes a current snapshot again.
    let kpid = stop_and_reopen(kpid, data.path());
    check(&kpid, &model, "after the second clean stop").await;
    assert_eq!(
        answers(&kpid).await,
        changed,
        "answers after the second restart"
    );
}

/// A damaged rows snapshot is never served: with ten bytes flipped across the
/// `rows.snapshot` a clean stop wrote (the first and the last among them), the next start
/// discards it, saying why, and scans sled: every record is there and Compute answers as
/// before the stop. The clean stop after writes a good snapshot again, which is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_rows_snapshot_is_discarded_and_sled_scanned() {
    if !runs_on_sled_only(
        "a_damaged_rows_snapshot_is_discarded_and_sled_scanned",
        NO_ROWS_SNAPSHOT_ON_POSTGRES,
    ) {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let model = Shared::default();
    let mut rng = Rng(0x666c_6970);
    let mut kpid = start_on_sled(data.path());
    put_ids(&kpid, &model, &mut rng, "a", 300).await;
    let before = answers(&kpid).await;
    let (listed, _) = list_all(&mut kpid.records().await, "", 1000).await;
    let status = block_in_place(|| kpid.terminate());
    assert!(status.success(), "{}", kpid.logs());
    assert!(
        kpid.logs().contains("rows snapshot written"),
        "{}",
        kpid.logs()
    );

    let path = data.path().join("rows.snapshot");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    for i in 0..10 {
        bytes[last * i / 9] ^= 0xFF;
    }
    std::fs::write(&path, &bytes).unwrap();
    let kpid = start_on_sled(data.path());
    let logs = kpid.logs();
    assert!(!logs.contains("loaded from its snapshot"), "{logs}");
    assert!(
        logs.contains("the rows snapshot does not verify"),
        "no warning saying why:\n{logs}"
    );
    assert!(!path.exists(), "the damaged snapshot is removed");
    check(&kpid, &model, "after a damaged snapshot").await;
    assert_eq!(
        answers(&kpid).await,
        before,
        "answers after a damaged snapshot"
    );
    let (relisted, _) = list_all(&mut kpid.records().await, "", 1000).await;
    assert_eq!(relisted, listed, "ListRecords after a damaged snapshot");

    let kpid = stop_and_reopen(kpid, data.path());
    check(&kpid, &model, "after the next clean stop").await;
    assert_eq!(
        answers(&kpid).await,
        before,
        "answers after the next clean stop"
    );
}

/// SIGTERM rounds when `KPID_SIGTERM_ROUNDS` is unset.
const DEFAULT_SIGTERM_ROUNDS: u64 = 20;
/// The SIGTERM rounds stop early (after at least [`MIN_RUNS`]) once this much time has gone.
const SIGTERM_TIME_BUDGET: Duration = Duration::from_secs(25);

/// One write call made across a SIGTERM: the keys it sent and whether it was answered OK.
struct Call {
    keys: Vec<Key>,
    answer: Result<(), tonic::Status>,
}

/// Write calls of 1–10 records with fresh ids `{prefix}-N` (PutRecords, or Ingest streams
/// of two messages when `ingest`), one after another, until one fails or `deadline`.
async fn sigterm_writer(
    mut client: RecordsServiceClient<Channel>,
    mut rng: Rng,
    prefix: String,
    ingest: bool,
    acks: Arc<std::sync::atomic::AtomicU64>,
    deadline: Instant,
) -> Vec<Call> {
    let mut calls = Vec::new();
    let mut n = 0u64;
    while Instant::now() < deadline {
        let mut records = Vec::new();
        for _ in 0..1 + rng.below(10) {
            n += 1;
            records.push(random_record(&mut rng, &format!("{prefix}-{n}")));
        }
        let keys: Vec<Key> = records.iter().map(key_of).collect();
        let answer = if ingest {
            let half = records.len() / 2;
            let second = records.split_off(half);
            let messages = vec![
                pb::IngestRequest { records },
                pb::IngestRequest { records: second },
            ];
            client
                .ingest(tokio_stream::iter(messages))
                .await
                .map(|a| a.into_inner().accepted)
        } else {
            client
                .put_records(pb::PutRecordsRequest { records })
                .await
                .map(|a| a.into_inner().accepted)
        };
        let answer = answer.map(|accepted| assert_eq!(accepted, keys.len() as u64));
        let failed = answer.is_err();
        if !failed {
            acks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        calls.push(Call { keys, answer });
        if failed {
            break;
        }
    }
    calls
}

/// Every call answered OK has all its records stored; a call answered with an error has
/// none of them stored (it never ran: a server that ran it must answer it). Returns the
/// number of calls answered OK and with an error.
async fn check_calls(kpid: &Kpid, calls: &[Call], label: &str) -> (usize, usize) {
    let mut client = kpid.records().await;
    let (stored, _) = list_all(&mut client, "", 1000).await;
    let present: BTreeSet<Key> = stored.iter().map(key_of).collect();
    let (mut ok, mut failed) = (0, 0);
    for call in calls {
        let stored = call.keys.iter().filter(|k| present.contains(*k)).count();
        match &call.answer {
            Ok(()) => {
                ok += 1;
                assert_eq!(
                    stored,
                    call.keys.len(),
                    "{label}: a call answered OK lost records"
                );
            }
            Err(status) => {
                failed += 1;
                assert_eq!(
                    stored,
                    0,
                    "{label}: a call answered {:?} ({}) has {stored} of its {} records stored",
                    status.code(),
                    status.message(),
                    call.keys.len()
                );
            }
        }
    }
    (ok, failed)
}

/// A write that kpid commits is answered OK, also when SIGTERM arrives while it is sent: in
/// each round, two PutRecords and two Ingest writers (each on its own connection) write
/// fresh ids until the server refuses them; after a restart every call answered OK is
/// stored whole and every call answered with an error is absent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_never_answers_a_committed_write_with_an_error() {
    let rounds = env_u64("KPID_SIGTERM_ROUNDS", DEFAULT_SIGTERM_ROUNDS);
    let store = TestStore::new();
    let mut rng = Rng(0x676f_6177);
    let started = Instant::now();
    let mut kpid = start(&store);
    let (mut ok, mut failed, mut done) = (0, 0, 0);
    for round in 0..rounds {
        if round >= MIN_RUNS && started.elapsed() > SIGTERM_TIME_BUDGET {
            break;
        }
        let acks = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut writers = Vec::new();
        for w in 0..4 {
            writers.push(tokio::spawn(sigterm_writer(
                kpid.records().await,
                Rng(rng.next()),
                format!("t{round}-{w}"),
                w % 2 == 1,
                acks.clone(),
                deadline,
            )));
        }
        let wait = Instant::now();
        while acks.load(std::sync::atomic::Ordering::Relaxed) < 4 {
            assert!(wait.elapsed() < Duration::from_secs(10), "no progress");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.below(50))).await;
        kpid.send_sigterm();
        let mut calls = Vec::new();
        for writer in writers {
            let written = tokio::time::timeout(Duration::from_secs(30), writer)
                .await
                .unwrap_or_else(|_| {
                    // What the server did after the signal says where it hung.
                    panic!(
                        "round {round}: a writer did not stop within 30 s of SIGTERM; kpid's logs:\n{}",
                        kpid.logs()
                    )
                })
                .unwrap_or_else(|e| panic!("round {round}: a writer failed: {e}"));
            calls.extend(written);
        }
        let status = block_in_place(|| kpid.wait_exit(Duration::from_secs(30)));
        assert!(status.success(), "{status:?}; logs:\n{}", kpid.logs());
        kpid = start(&store);
        let (o, f) = check_calls(&kpid, &calls, &format!("round {round}")).await;
        ok += o;
        failed += f;
        done += 1;
    }
    block_in_place(|| kpid.terminate());
    eprintln!(
        "{done} SIGTERM rounds in {:.1?}: {ok} writes answered OK, {failed} refused (none of them stored)",
        started.elapsed()
    );
    assert!(done >= MIN_RUNS.min(rounds), "{done} rounds");
    assert!(
        ok as u64 >= done,
        "every round acknowledges writes before its SIGTERM: {ok}"
    );
}

/// A lead created in January 2025 (what the disk-full test writes and counts).
fn january_lead(id: &str) -> pb::Record {
    record(Kind::Lead(pb::Lead {
        id: id.into(),
        created_at: ts("2025-01-15T10:00:00Z"),
        source: pb::Source::Marketing.into(),
        ..Default::default()
    }))
}

/// `sales.leads_created` over January 2025: the leads the query side holds.
async fn leads_counted(kpid: &Kpid) -> String {
    let answer = kpid
        .metrics()
        .await
        .compute(pb::ComputeRequest {
            metric_id: "sales.leads_created".into(),
            start: ts("2025-01-01T00:00:00Z"),
            end: ts("2025-02-01T00:00:00Z"),
            ..Default::default()
        })
        .await
        .expect("Compute answers while the disk is full")
        .into_inner();
    answer.rows[0].value.clone()
}

/// The health of `service` ("" for the server).
async fn health_of(kpid: &Kpid, service: &str) -> i32 {
    use tonic_health::pb::health_client::HealthClient;
    HealthClient::new(kpid.channel().await)
        .check(tonic_health::pb::HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("health answers")
        .into_inner()
        .status
}

/// A full disk, through the real binary: writes answer RESOURCE_EXHAUSTED in plain words
/// and change nothing visible; Compute keeps answering; the records service reports
/// NOT_SERVING; once space is freed, writes resume without a restart, the listing holds
/// exactly what was acknowledged, and so does a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_plainly_and_recovers_without_a_restart() {
    use tonic_health::pb::health_check_response::ServingStatus;
    if !runs_on_sled_only(
        "a_full_disk_refuses_writes_plainly_and_recovers_without_a_restart",
        "the disk filled here is kpid's data directory, where sled writes and recovers \
         (store/recovery.rs); on PostgreSQL the database server writes the records, and a \
         database that stops taking writes is tests/replicas.rs's \
         postgres_stopped_under_load_loses_nothing_acknowledged",
    ) {
        return;
    }
    let Some(disk) = common::Tmpfs::mount(16 << 20) else {
        return;
    };
    let dir = disk.path().join("data");
    let kpid = start_on_sled(&dir);
    let filler = disk.fill(3 << 19);
    let mut client = kpid.records().await;
    let mut acknowledged = 0usize;
    let mut refused = None;
    for call in 0..2000 {
        let records = (0..100)
            .map(|i| january_lead(&format!("lead-{call}-{i}")))
            .collect();
        match client.put_records(pb::PutRecordsRequest { records }).await {
            Ok(_) => acknowledged += 100,
            Err(status) => {
                refused = Some(status);
                break;
            }
        }
    }
    let refused = refused.expect("the disk filled up");
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
    assert!(refused.message().contains("disk"), "{refused:?}");
    assert!(!refused.message().contains("Os {"), "{refused:?}");
    // Nothing of the refused call is counted; the server keeps answering queries.
    assert_eq!(leads_counted(&kpid).await, acknowledged.to_string());
    let deadline = Instant::now() + Duration::from_secs(10);
    while health_of(&kpid, "kpi.v1.RecordsService").await != ServingStatus::NotServing as i32 {
        assert!(
            Instant::now() < deadline,
            "records health never turned NOT_SERVING"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        health_of(&kpid, "kpi.v1.MetricsService").await,
        ServingStatus::Serving as i32
    );
    let again = client
        .put_records(pb::PutRecordsRequest {
            records: vec![january_lead("while-full")],
        })
        .await
        .expect_err("a write while the disk is full");
    assert_eq!(again.code(), tonic::Code::ResourceExhausted, "{again:?}");
    // sled cannot be read after a failed write: listings say so, and why.
    let listing = client
        .list_records(pb::ListRecordsRequest::default())
        .await
        .expect_err("a listing while the disk is full");
    assert_eq!(listing.code(), tonic::Code::Unavailable, "{listing:?}");
    assert!(listing.message().contains("disk is full"), "{listing:?}");

    // Space is freed: writes resume by themselves.
    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    while health_of(&kpid, "kpi.v1.RecordsService").await != ServingStatus::Serving as i32 {
        assert!(
            freed.elapsed() < Duration::from_secs(30),
            "records health never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "disk full after {acknowledged} acknowledged leads; writes resumed {:?} after space was freed",
        freed.elapsed()
    );
    let (listed, _) = list_all(&mut client, "lead", 1000).await;
    assert_eq!(
        listed.len(),
        acknowledged,
        "sled holds what was acknowledged"
    );
    client
        .put_records(pb::PutRecordsRequest {
            records: vec![january_lead("after-space-freed")],
        })
        .await
        .expect("a write after space is freed");
    acknowledged += 1;
    assert_eq!(leads_counted(&kpid).await, acknowledged.to_string());

    // A restart shows the same.
    let kpid = stop_and_reopen(kpid, &dir);
    assert_eq!(leads_counted(&kpid).await, acknowledged.to_string());
    let (listed, _) = list_all(&mut kpid.records().await, "lead", 1000).await;
    assert_eq!(listed.len(), acknowledged);
}
