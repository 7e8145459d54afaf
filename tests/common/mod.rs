//! Shared helpers of the end-to-end tests: spawn the real `kpid` binary on 127.0.0.1
//! port 0 with its own data directory, read its ready line for the address, connect the
//! generated clients, and kill only that child when done.

#![allow(dead_code)] // each test file uses a different subset

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kpi_proto::kpi::v1 as pb;
use kpi_proto::kpi::v1::metrics_service_client::MetricsServiceClient;
use kpi_proto::kpi::v1::records_service_client::RecordsServiceClient;
use kpi_proto::kpi::v1::tenant_service_client::TenantServiceClient;
use pb::record::Record as Kind;
use tonic::transport::Channel;

/// How long the server may take to log its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The `kpid` the servers of these tests run: `KPID_TEST_BINARY` when set (say, a release
/// build: `KPID_TEST_BINARY=target/release/kpid cargo test --test crash`), else the
/// binary cargo built with the tests.
pub(crate) fn server_binary() -> PathBuf {
    std::env::var_os("KPID_TEST_BINARY")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_kpid")), PathBuf::from)
}

/// A running `kpid serve` child process.
pub(crate) struct Kpid {
    child: Child,
    /// The address from its ready line.
    pub(crate) addr: SocketAddr,
    /// Its data directory.
    pub(crate) data_dir: PathBuf,
    logs: Arc<Mutex<Vec<String>>>,
    _temp: Option<tempfile::TempDir>,
    /// The store [`Kpid::start`] made for it, dropped after the server.
    store: Option<TestStore>,
}

/// The variable naming the PostgreSQL server of the tests (`.ci/run` starts one:
/// `scripts/postgres.sh`), e.g. `postgres://kpid@127.0.0.1:5432/kpid`.
pub(crate) const POSTGRES_ENV: &str = "KPID_TEST_POSTGRES";

/// The PostgreSQL server of the tests, or `None` after printing that the PostgreSQL part of
/// `test` is skipped.
pub(crate) fn test_postgres(test: &str) -> Option<String> {
    match std::env::var(POSTGRES_ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!(
                "SKIPPED the PostgreSQL part of {test}: {POSTGRES_ENV} is not set (.ci/run sets it)"
            );
            None
        }
    }
}

/// Whether `Kpid::start` puts its servers on PostgreSQL (`KPID_TEST_STORE=postgres`), each
/// in a fresh database of the server at `KPID_TEST_POSTGRES`; else on sled.
pub(crate) fn on_postgres() -> bool {
    match std::env::var("KPID_TEST_STORE").as_deref() {
        Ok("postgres") => true,
        Ok("sled") | Err(_) => false,
        Ok(other) => panic!("KPID_TEST_STORE={other}: expected sled or postgres"),
    }
}

/// A database of its own on the tests' PostgreSQL server, dropped with this.
pub(crate) struct TestDatabase {
    /// The URL of the server's admin database.
    admin: String,
    name: String,
    /// Its URL, for `kpid serve --store`.
    pub(crate) url: String,
}

impl TestDatabase {
    /// Creates a fresh database on the server at `admin` (a `postgres://…/db` URL).
    pub(crate) fn create(admin: &str) -> TestDatabase {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "kpid_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let base = admin.rsplit_once('/').map_or(admin, |(base, _)| base);
        let url = format!("{base}/{name}");
        let admin = admin.to_owned();
        let statement = format!("CREATE DATABASE {name}");
        // The blocking client runs a runtime of its own: not on a test's async thread.
        let created = {
            let admin = admin.clone();
            std::thread::spawn(move || {
                postgres::Client::connect(&admin, postgres::NoTls)?.batch_execute(&statement)
            })
            .join()
            .expect("create thread")
        };
        if let Err(e) = created {
            panic!("cannot create a test database on {admin}: {e}");
        }
        TestDatabase { admin, name, url }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = std::thread::spawn(move || {
            postgres::Client::connect(&admin, postgres::NoTls)?.batch_execute(&statement)
        })
        .join();
    }
}

/// Where a test's kpid keeps its records across restarts: a temporary data directory
/// (sled), or with `KPID_TEST_STORE=postgres` ([`on_postgres`]) a fresh database of its own
/// on the server at `KPID_TEST_POSTGRES` (kpid is given the data directory too, and leaves
/// it alone). Every [`TestStore::start`] runs a kpid on the same records.
pub(crate) struct TestStore {
    dir: tempfile::TempDir,
    database: Option<TestDatabase>,
}

impl TestStore {
    /// A fresh store on the backend `KPID_TEST_STORE` names.
    pub(crate) fn new() -> TestStore {
        let database = on_postgres().then(|| {
            let admin = std::env::var(POSTGRES_ENV).unwrap_or_else(|_| {
                panic!("KPID_TEST_STORE=postgres needs {POSTGRES_ENV} (scripts/postgres.sh)")
            });
            TestDatabase::create(&admin)
        });
        TestStore {
            dir: tempfile::tempdir().expect("temp dir"),
            database,
        }
    }

    /// The data directory kpid is given (sled's records, or unused on PostgreSQL).
    pub(crate) fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The URL of its PostgreSQL database (`--store`), or `None` on sled.
    pub(crate) fn postgres_url(&self) -> Option<&str> {
        self.database.as_ref().map(|d| d.url.as_str())
    }

    /// Starts a kpid on it: the data directory, and the database when there is one.
    pub(crate) fn start(&self) -> Kpid {
        Kpid::start_with(self.data_dir(), &[], |command| {
            if let Some(url) = self.postgres_url() {
                command.args(["--store", url]);
            }
        })
    }
}

/// Extracts the bound address from a ready line, text (`kpid ready addr=…`) or JSON
/// (`"addr":"…"`).
pub(crate) fn ready_addr(line: &str) -> Option<SocketAddr> {
    if !line.contains("kpid ready") {
        return None;
    }
    if let Some(rest) = line.split("\"addr\":\"").nth(1) {
        return rest.split('"').next()?.parse().ok();
    }
    let rest = line.split("addr=").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

impl Kpid {
    /// Starts a server on a fresh [`TestStore`]: a temporary data directory, or with
    /// `KPID_TEST_STORE=postgres` a fresh PostgreSQL database ([`on_postgres`]).
    pub(crate) fn start() -> Kpid {
        let store = TestStore::new();
        let mut kpid = store.start();
        kpid.store = Some(store);
        kpid
    }

    /// Starts a server over the PostgreSQL database `url` (`--store url`).
    pub(crate) fn start_on_postgres(url: &str) -> Kpid {
        let temp = tempfile::tempdir().expect("temp dir");
        let mut kpid = Self::start_with(temp.path(), &[], |c| {
            c.args(["--store", url]);
        });
        kpid._temp = Some(temp);
        kpid
    }

    /// Starts a server on `data_dir` with extra environment variables.
    pub(crate) fn start_in(data_dir: &Path, env: &[(&str, &str)]) -> Kpid {
        Self::start_with(data_dir, env, |_| {})
    }

    /// Starts a server on `data_dir` with extra environment variables and a last `edit` of
    /// its command.
    pub(crate) fn start_with(
        data_dir: &Path,
        env: &[(&str, &str)],
        edit: impl FnOnce(&mut Command),
    ) -> Kpid {
        let mut command = Command::new(server_binary());
        command
            .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env_remove("KPID_API_KEYS")
            .env_remove("KPID_LOG_FORMAT")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        edit(&mut command);
        let mut child = command.spawn().expect("spawn kpid");
        let stderr = child.stderr.take().expect("stderr piped");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (lines_tx, lines_rx) = mpsc::channel::<String>();
        {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    logs.lock().unwrap().push(line.clone());
                    let _ = lines_tx.send(line);
                }
            });
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines_rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = ready_addr(&line) {
                        break addr;
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "kpid did not log its ready line; logs:\n{}",
                        logs.lock().unwrap().join("\n")
                    );
                }
            }
        };
        Kpid {
            child,
            addr,
            data_dir: data_dir.to_owned(),
            logs,
            _temp: None,
            store: None,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A connected channel.
    pub(crate) async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .unwrap()
            .connect()
            .await
            .expect("connect to kpid")
    }

    /// A MetricsService client.
    pub(crate) async fn metrics(&self) -> MetricsServiceClient<Channel> {
        MetricsServiceClient::new(self.channel().await)
    }

    /// A RecordsService client.
    pub(crate) async fn records(&self) -> RecordsServiceClient<Channel> {
        RecordsServiceClient::new(self.channel().await)
    }

    /// A TenantService client.
    pub(crate) async fn tenant(&self) -> TenantServiceClient<Channel> {
        TenantServiceClient::new(self.channel().await)
    }

    /// The child's process id (for /proc/PID/status).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server logged so far.
    pub(crate) fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// Sends SIGTERM and waits (at most 30 s) for the process to exit.
    pub(crate) fn terminate(&mut self) -> ExitStatus {
        self.send_sigterm();
        self.wait(Duration::from_secs(30))
    }

    /// Sends SIGTERM without waiting.
    pub(crate) fn send_sigterm(&self) {
        self.signal(libc::SIGTERM);
    }

    /// Waits (at most `timeout`) for the process to exit.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        self.wait(timeout)
    }

    /// SIGKILLs the process (no chance to flush) and reaps it.
    pub(crate) fn kill9(&mut self) {
        self.signal(libc::SIGKILL);
        self.wait(Duration::from_secs(30));
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) on our own child's pid; it has not been reaped, so the pid is
        // still ours.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
    }

    fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("kpid did not exit in {timeout:?}; logs:\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Kpid {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // After the server, which held connections to its database.
        self.store.take();
    }
}

/// A timestamp from RFC 3339 text.
pub(crate) fn ts(text: &str) -> Option<prost_types::Timestamp> {
    let t: jiff::Timestamp = text.parse().expect("RFC 3339 timestamp");
    Some(prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: t.subsec_nanosecond(),
    })
}

/// A record of any kind.
pub(crate) fn record(kind: Kind) -> pb::Record {
    pb::Record { record: Some(kind) }
}

/// A deal closed at `closed_at` (open when `status` is open), created 30 days earlier.
pub(crate) fn deal(
    id: &str,
    owner: &str,
    status: pb::DealStatus,
    amount: &str,
    closed_at: &str,
) -> pb::Record {
    let closed: jiff::Timestamp = closed_at.parse().unwrap();
    let created = closed
        .checked_sub(jiff::SignedDuration::from_hours(24 * 30))
        .unwrap();
    record(Kind::Deal(pb::Deal {
        id: id.into(),
        owner: owner.into(),
        amount: amount.into(),
        created_at: ts(&created.to_string()),
        closed_at: if status == pb::DealStatus::Open {
            None
        } else {
            ts(closed_at)
        },
        status: status.into(),
        kind: pb::DealKind::NewBusiness.into(),
        ..Default::default()
    }))
}

/// A customer acquired at `acquired_at` from `source`.
pub(crate) fn customer(id: &str, acquired_at: &str, source: pb::Source) -> pb::Record {
    record(Kind::Customer(pb::Customer {
        id: id.into(),
        acquired_at: ts(acquired_at),
        source: source.into(),
        ..Default::default()
    }))
}

/// A kpid on a fresh data directory holding `records` (every one accepted), and a
/// metrics client.
pub(crate) async fn serving(records: Vec<pb::Record>) -> (Kpid, MetricsServiceClient<Channel>) {
    let kpid = Kpid::start();
    let n = records.len() as u64;
    let put = kpid
        .records()
        .await
        .put_records(pb::PutRecordsRequest { records })
        .await
        .expect("PutRecords")
        .into_inner();
    assert!(put.rejected.is_empty(), "rejected: {:?}", put.rejected);
    assert_eq!(put.accepted, n);
    let metrics = kpid.metrics().await;
    (kpid, metrics)
}

/// The (kind, id) of a wire record.
pub(crate) fn key_of(record: &pb::Record) -> (String, String) {
    let (kind, id) = match record.record.as_ref().expect("kind set") {
        Kind::Customer(r) => ("customer", &r.id),
        Kind::Lead(r) => ("lead", &r.id),
        Kind::Deal(r) => ("deal", &r.id),
        Kind::Subscription(r) => ("subscription", &r.id),
        Kind::Purchase(r) => ("purchase", &r.id),
        Kind::Spend(r) => ("spend", &r.id),
        Kind::Campaign(r) => ("campaign", &r.id),
        Kind::Ticket(r) => ("ticket", &r.id),
        Kind::SurveyResponse(r) => ("survey_response", &r.id),
        Kind::Quota(r) => ("quota", &r.id),
        Kind::Activity(r) => ("activity", &r.id),
        Kind::FxRate(r) => ("fx_rate", &r.id),
    };
    (kind.to_owned(), id.clone())
}

/// Puts `records` in batches of 500, every one accepted; the sequence after the last
/// batch: on PostgreSQL (`postgres`) each batch's is larger than the one before, on sled
/// every one is 0.
pub(crate) async fn put_all_on(kpid: &Kpid, records: &[pb::Record], postgres: bool) -> u64 {
    let mut client = kpid.records().await;
    let mut sequence = 0;
    for batch in records.chunks(500) {
        let put = client
            .put_records(pb::PutRecordsRequest {
                records: batch.to_vec(),
            })
            .await
            .expect("PutRecords")
            .into_inner();
        assert!(put.rejected.is_empty(), "rejected: {:?}", put.rejected);
        if postgres {
            assert!(put.sequence > sequence, "sequences grow with each write");
        } else {
            assert_eq!(put.sequence, 0, "sled answers sequence 0");
        }
        sequence = put.sequence;
    }
    sequence
}

/// Every metric of the catalogue, month by month over 2024, in one BatchCompute read after
/// the replica applied `min_sequence`: the whole answer, for comparison.
pub(crate) async fn every_metric(kpid: &Kpid, min_sequence: u64) -> pb::BatchComputeResponse {
    let mut metrics = kpid.metrics().await;
    let ids: Vec<String> = metrics
        .list_metrics(pb::ListMetricsRequest::default())
        .await
        .expect("ListMetrics")
        .into_inner()
        .metrics
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert!(ids.len() > 30, "the catalogue lists {} metrics", ids.len());
    let answer = metrics
        .batch_compute(pb::BatchComputeRequest {
            start: ts("2024-01-01T00:00:00Z"),
            end: ts("2025-01-01T00:00:00Z"),
            granularity: pb::Granularity::Month.into(),
            metrics: ids
                .into_iter()
                .map(|metric_id| pb::BatchComputeMetric {
                    metric_id,
                    ..Default::default()
                })
                .collect(),
            min_sequence,
            ..Default::default()
        })
        .await
        .expect("BatchCompute")
        .into_inner();
    let answered = answer.results.iter().filter(|r| r.error.is_none()).count();
    assert!(answered > 30, "{answered} metrics answered");
    answer
}

/// Asserts two BatchCompute answers are equal, naming the first metric and row that differ.
/// Values, reasons, groups and buckets must be identical; an unrounded input may differ in
/// its last few of 28 significant digits only: a prorated quota is a sum of rounded
/// fractions, one per quota, added in the order of the process's rows, which differs
/// between replicas and after a restart (the rounded values do not). Totals of durations
/// are whole nanoseconds divided once (`kpi-store` `units::duration_unit`), so they agree
/// to the last digit.
pub(crate) fn assert_same(
    left: &pb::BatchComputeResponse,
    right: &pb::BatchComputeResponse,
    what: &str,
) {
    assert_eq!(left.results.len(), right.results.len(), "{what}");
    for (l, r) in left.results.iter().zip(&right.results) {
        assert_eq!(l.metric_id, r.metric_id, "{what}");
        assert_eq!(l.error, r.error, "{what}: {}", l.metric_id);
        assert_eq!(l.rows.len(), r.rows.len(), "{what}: {} rows", l.metric_id);
        for (lr, rr) in l.rows.iter().zip(&r.rows) {
            let without_inputs = |row: &pb::Row| pb::Row {
                inputs: Default::default(),
                previous_inputs: Default::default(),
                ..row.clone()
            };
            assert_eq!(
                without_inputs(lr),
                without_inputs(rr),
                "{what}: {}",
                l.metric_id
            );
            for (inputs_l, inputs_r) in [
                (&lr.inputs, &rr.inputs),
                (&lr.previous_inputs, &rr.previous_inputs),
            ] {
                let names_l: Vec<&String> = inputs_l.keys().collect();
                let names_r: Vec<&String> = inputs_r.keys().collect();
                assert_eq!(names_l, names_r, "{what}: {}", l.metric_id);
                for (name, a) in inputs_l {
                    let b = &inputs_r[name];
                    assert!(
                        a == b || same_but_the_last_digits(a, b),
                        "{what}: {} input {name}: {a} vs {b} ({lr:?})",
                        l.metric_id
                    );
                }
            }
        }
    }
}

/// Whether two decimals, one of 27 or more significant digits (a rounded one), agree to
/// within one part in 10^24: their last few digits only.
fn same_but_the_last_digits(a: &str, b: &str) -> bool {
    let (Ok(x), Ok(y)) = (
        a.parse::<rust_decimal::Decimal>(),
        b.parse::<rust_decimal::Decimal>(),
    ) else {
        return false;
    };
    let digits = |d: &rust_decimal::Decimal| d.mantissa().unsigned_abs().to_string().len();
    digits(&x).max(digits(&y)) >= 27
        && (x - y).abs() <= x.abs().max(y.abs()) * rust_decimal::Decimal::new(1, 24)
}

/// Every stored record, following next_page_token with pages of `page_size`.
pub(crate) async fn list_all(
    client: &mut RecordsServiceClient<Channel>,
    kind: &str,
    page_size: i32,
) -> (Vec<pb::Record>, usize) {
    let mut records = Vec::new();
    let mut pages = 0;
    let mut token = String::new();
    loop {
        let page = client
            .list_records(pb::ListRecordsRequest {
                kind: kind.into(),
                page_size,
                page_token: token,
                min_sequence: 0,
            })
            .await
            .expect("ListRecords")
            .into_inner();
        pages += 1;
        records.extend(page.records);
        if page.next_page_token.is_empty() {
            return (records, pages);
        }
        token = page.next_page_token;
        assert!(pages < 10_000, "paging does not end");
    }
}

/// A small tmpfs, unmounted when dropped: a disk that really fills. Mounting needs root,
/// which CI has; elsewhere [`Tmpfs::mount`] gives `None` (and a test that needs it fails
/// under CI rather than pass without running).
pub(crate) struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes`, or `None` where this process may not mount.
    pub(crate) fn mount(bytes: u64) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs as root and must run the tests on a full disk"
            );
            eprintln!("skipped: mounting a tmpfs needs root");
        }
        mounted.then_some(Tmpfs { dir })
    }

    /// Where it is mounted.
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills it, leaving `left` bytes free, with the file `filler` (removed to free them).
    pub(crate) fn fill(&self, left: u64) -> PathBuf {
        use std::io::Write as _;
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).expect("create the filler");
        while file.write_all(&[1u8; 64 << 10]).is_ok() {}
        let len = file.metadata().expect("filler size").len();
        file.set_len(len.saturating_sub(left)).expect("free space");
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
