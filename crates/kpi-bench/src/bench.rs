//! One benchmark run, phase by phase (see the crate docs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};
use jiff::Timestamp;
use kpi_proto::kpi::v1 as pb;
use kpi_proto::kpi::v1::metrics_service_client::MetricsServiceClient;
use kpi_proto::kpi::v1::records_service_client::RecordsServiceClient;
use kpi_proto::kpi::v1::tenant_service_client::TenantServiceClient;
use kpi_store::generate::{generate, DemoOptions};
use kpi_store::Record;
use serde::Deserialize;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::Channel;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::compare::{compare, DuckRow};
use crate::report::{median, ms, quantile, us, Results};
use crate::server::{disk_bytes, start_bare_tonic, Child, DeployedKpid, Kpid};
use crate::{proto, RunArgs};

/// The dashboard's window: the last year of the generated data, by month.
const WINDOW_START: &str = "2024-01-01T00:00:00Z";
const WINDOW_END: &str = "2025-01-01T00:00:00Z";
/// The single metric the Compute latency is measured on (the same window, by month).
pub(crate) const COMPUTE_METRIC: &str = "sales.win_rate";
/// Largest message the bench's clients send or accept.
const CLIENT_MAX_MESSAGE: usize = 512 * 1024 * 1024;
/// How long a stopping server may take to flush and exit.
const STOP_GRACE: Duration = Duration::from_secs(300);

pub(crate) fn say(text: impl AsRef<str>) {
    eprintln!("kpi-bench: {}", text.as_ref());
}

fn timestamp(text: &str) -> Option<prost_types::Timestamp> {
    let t: Timestamp = text.parse().expect("a valid constant timestamp");
    Some(prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: 0,
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// The tenant the bench's kpid stores the dataset under: its API key's, in the keys file
/// the bench writes (authentication is on, as in production).
const BENCH_TENANT: &str = "bench";

/// The `authorization: Bearer KEY` metadata a client sends on every call (`None`: no
/// key; a request that already carries one keeps it).
#[derive(Clone, Default)]
pub(crate) struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    /// No key: calls carry what each request sets itself.
    pub(crate) const NONE: Bearer = Bearer(None);

    /// `Bearer KEY` on every call.
    pub(crate) fn of_key(key: &str) -> anyhow::Result<Bearer> {
        Ok(Bearer(Some(format!("Bearer {key}").parse()?)))
    }
}

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            let metadata = request.metadata_mut();
            if !metadata.contains_key("authorization") {
                metadata.insert("authorization", value.clone());
            }
        }
        Ok(request)
    }
}

/// A channel whose calls carry a [`Bearer`].
pub(crate) type Authorized = InterceptedService<Channel, Bearer>;

/// The connected clients of one server.
pub(crate) struct Clients {
    pub(crate) metrics: MetricsServiceClient<Authorized>,
    pub(crate) records: RecordsServiceClient<Authorized>,
    pub(crate) tenant: TenantServiceClient<Authorized>,
    pub(crate) health: HealthClient<Authorized>,
}

/// Where the bench's clients call a server: its URL and the key they send.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) url: String,
    pub(crate) bearer: Bearer,
}

/// Clients of `target`, on one new connection.
pub(crate) async fn connect(target: &Target) -> anyhow::Result<Clients> {
    let url = &target.url;
    let channel = Channel::from_shared(url.clone())?
        .connect()
        .await
        .with_context(|| format!("connecting to {url}"))?;
    let channel = InterceptedService::new(channel, target.bearer.clone());
    Ok(Clients {
        metrics: MetricsServiceClient::new(channel.clone())
            .max_decoding_message_size(CLIENT_MAX_MESSAGE)
            .max_encoding_message_size(CLIENT_MAX_MESSAGE),
        records: RecordsServiceClient::new(channel.clone())
            .max_decoding_message_size(CLIENT_MAX_MESSAGE)
            .max_encoding_message_size(CLIENT_MAX_MESSAGE),
        tenant: TenantServiceClient::new(channel.clone()),
        health: HealthClient::new(channel),
    })
}

/// The dashboard: every metric in `ids`, the window by month, compared with the previous
/// month when `compare` is set.
pub(crate) fn dashboard_request(
    ids: &[String],
    compare: pb::Comparison,
) -> pb::BatchComputeRequest {
    pb::BatchComputeRequest {
        start: timestamp(WINDOW_START),
        end: timestamp(WINDOW_END),
        granularity: pb::Granularity::Month.into(),
        time_zone: "UTC".into(),
        metrics: ids
            .iter()
            .map(|id| pb::BatchComputeMetric {
                metric_id: id.clone(),
                ..Default::default()
            })
            .collect(),
        compare: compare.into(),
        ..Default::default()
    }
}

fn compute_request() -> pb::ComputeRequest {
    window_compute(COMPUTE_METRIC)
}

/// `metric` over the dashboard's window by month.
pub(crate) fn window_compute(metric: &str) -> pb::ComputeRequest {
    pb::ComputeRequest {
        metric_id: metric.into(),
        start: timestamp(WINDOW_START),
        end: timestamp(WINDOW_END),
        granularity: pb::Granularity::Month.into(),
        time_zone: "UTC".into(),
        ..Default::default()
    }
}

/// Encodes and inserts every record into a fresh sled tree, one flush at the end: the
/// floor for durable ingest. Records per second.
fn sled_raw(records: &[Record], dir: &Path) -> anyhow::Result<(f64, f64)> {
    let _ = std::fs::remove_dir_all(dir);
    let db = sled::Config::new().path(dir).open()?;
    let tree = db.open_tree("records")?;
    let started = Instant::now();
    let mut value = Vec::with_capacity(1024);
    let mut key = Vec::with_capacity(64);
    for r in records {
        key.clear();
        key.push(r.kind() as u8);
        key.extend_from_slice(r.id().as_bytes());
        value.clear();
        value.push(1);
        rmp_serde::encode::write(&mut value, r)?;
        tree.insert(key.as_slice(), value.as_slice())?;
    }
    db.flush()?;
    let secs = started.elapsed().as_secs_f64();
    drop(tree);
    drop(db);
    std::fs::remove_dir_all(dir)?;
    Ok((records.len() as f64 / secs, secs))
}

/// The benchmark tenant's base currency: the generated amounts name GBP, USD or EUR, and
/// `duckdb_dashboard.py` converts to the same base.
const BASE_CURRENCY: &str = "EUR";

/// Streams every record to kpid's Ingest, `batch` per message, converting each message
/// to protobuf as the stream asks for it (as a client would, and without holding a second
/// copy of the dataset). Records per second.
async fn ingest(
    clients: &mut Clients,
    records: Arc<Vec<Record>>,
    batch: usize,
) -> anyhow::Result<(f64, f64)> {
    let n = records.len();
    let batch = batch.max(1);
    let messages = (0..n.div_ceil(batch)).map(move |i| pb::IngestRequest {
        records: records[i * batch..((i + 1) * batch).min(n)]
            .iter()
            .map(proto::record)
            .collect(),
    });
    let started = Instant::now();
    let answer = clients
        .records
        .ingest(tokio_stream::iter(messages))
        .await
        .context("Ingest")?
        .into_inner();
    let secs = started.elapsed().as_secs_f64();
    ensure!(
        answer.rejected.is_empty() && answer.accepted == n as u64,
        "kpid accepted {} of {n} records; first rejections: {:?}",
        answer.accepted,
        answer.rejected.iter().take(3).collect::<Vec<_>>()
    );
    Ok((n as f64 / secs, secs))
}

/// One dashboard call: its time and answer (every metric must succeed).
pub(crate) async fn dashboard_once(
    clients: &mut Clients,
    request: &pb::BatchComputeRequest,
) -> anyhow::Result<(Duration, pb::BatchComputeResponse)> {
    let started = Instant::now();
    let answer = clients
        .metrics
        .batch_compute(request.clone())
        .await
        .context("BatchCompute")?
        .into_inner();
    let elapsed = started.elapsed();
    for r in &answer.results {
        if let Some(e) = &r.error {
            bail!("{} failed in the dashboard: {}", r.metric_id, e.message);
        }
    }
    Ok((elapsed, answer))
}

/// Timed dashboard runs after one untimed one: (first, samples in ms, last answer).
async fn dashboard(
    clients: &mut Clients,
    ids: &[String],
    compare: pb::Comparison,
    runs: usize,
) -> anyhow::Result<(f64, Vec<f64>, pb::BatchComputeResponse)> {
    let request = dashboard_request(ids, compare);
    let (first, mut answer) = dashboard_once(clients, &request).await?;
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (t, a) = dashboard_once(clients, &request).await?;
        samples.push(ms(t));
        answer = a;
    }
    Ok((ms(first), samples, answer))
}

/// The compared dashboard (`compare = COMPARISON_PREVIOUS_PERIOD`) and the uncompared one,
/// alternating so both meet the same state of the server, after one untimed compared run:
/// (compared samples, uncompared samples, in ms; the last compared answer).
async fn compared_dashboard(
    clients: &mut Clients,
    ids: &[String],
    runs: usize,
) -> anyhow::Result<(Vec<f64>, Vec<f64>, pb::BatchComputeResponse)> {
    let compared = dashboard_request(ids, pb::Comparison::PreviousPeriod);
    let uncompared = dashboard_request(ids, pb::Comparison::Unspecified);
    let (_, mut answer) = dashboard_once(clients, &compared).await?;
    let mut compared_ms = Vec::with_capacity(runs);
    let mut uncompared_ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (t, a) = dashboard_once(clients, &compared).await?;
        compared_ms.push(ms(t));
        answer = a;
        uncompared_ms.push(ms(dashboard_once(clients, &uncompared).await?.0));
    }
    Ok((compared_ms, uncompared_ms, answer))
}

async fn empty_rpc(health: &mut HealthClient<Authorized>) -> anyhow::Result<Duration> {
    let started = Instant::now();
    health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .context("health Check")?;
    Ok(started.elapsed())
}

async fn one_compute(clients: &mut Clients) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let answer = clients
        .metrics
        .compute(compute_request())
        .await
        .context("Compute")?
        .into_inner();
    ensure!(
        answer.rows.len() == 12,
        "Compute answered {} rows",
        answer.rows.len()
    );
    Ok(started.elapsed())
}

/// `sales.win_rate` over the Compute's window grouped by `dimension`: its time.
async fn grouped_compute(clients: &mut Clients, dimension: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let answer = clients
        .metrics
        .compute(pb::ComputeRequest {
            group_by: vec![dimension.to_owned()],
            ..compute_request()
        })
        .await
        .with_context(|| format!("Compute grouped by {dimension}"))?
        .into_inner();
    ensure!(
        answer.rows.len() > 12,
        "grouped by {dimension}: {} rows",
        answer.rows.len()
    );
    Ok(started.elapsed())
}

/// `sales.win_rate` grouped by a customer attribute and by owner, alternating (one untimed
/// pair first: it builds the partitions): the two medians in µs.
async fn win_rate_by_attribute(clients: &mut Clients, calls: usize) -> anyhow::Result<(f64, f64)> {
    grouped_compute(clients, "customer.region").await?;
    grouped_compute(clients, "owner").await?;
    let mut attribute = Vec::with_capacity(calls);
    let mut owner = Vec::with_capacity(calls);
    for _ in 0..calls {
        attribute.push(us(grouped_compute(clients, "customer.region").await?));
        owner.push(us(grouped_compute(clients, "owner").await?));
    }
    Ok((median(&attribute), median(&owner)))
}

/// Samples in µs of the empty RPC on kpid, the Compute, and the empty RPC on a bare tonic
/// server.
struct RpcSamples {
    empty: Vec<f64>,
    compute: Vec<f64>,
    bare: Vec<f64>,
}

/// Empty RPC and Compute on kpid, and the empty RPC on a bare tonic server (`bare`, its
/// own process, started for this), in turn: each triple meets the same moment of this
/// shared machine, so their ratios hold even when its load moves.
async fn rpc_latency(
    clients: &mut Clients,
    bare: &mut HealthClient<Authorized>,
    calls: usize,
) -> anyhow::Result<RpcSamples> {
    for _ in 0..calls.min(100) {
        empty_rpc(&mut clients.health).await?;
        one_compute(clients).await?;
        empty_rpc(bare).await?;
    }
    let mut samples = RpcSamples {
        empty: Vec::with_capacity(calls),
        compute: Vec::with_capacity(calls),
        bare: Vec::with_capacity(calls),
    };
    for _ in 0..calls {
        samples
            .empty
            .push(us(empty_rpc(&mut clients.health).await?));
        samples.compute.push(us(one_compute(clients).await?));
        samples.bare.push(us(empty_rpc(bare).await?));
    }
    Ok(samples)
}

/// Starts kpid over the stored records and waits for its first Compute answer.
async fn restart(kpid: &DeployedKpid, data_dir: &Path) -> anyhow::Result<(f64, Child)> {
    let started = Instant::now();
    let child = kpid.start(data_dir)?;
    let mut clients = connect(&kpid.target(&child)).await?;
    one_compute(&mut clients).await?;
    Ok((started.elapsed().as_secs_f64(), child))
}

/// Starts kpid over the stored records and waits for its first dashboard answer.
async fn restart_dashboard(
    kpid: &DeployedKpid,
    data_dir: &Path,
    ids: &[String],
) -> anyhow::Result<(f64, Child)> {
    let started = Instant::now();
    let child = kpid.start(data_dir)?;
    let mut clients = connect(&kpid.target(&child)).await?;
    dashboard_once(
        &mut clients,
        &dashboard_request(ids, pb::Comparison::Unspecified),
    )
    .await?;
    Ok((started.elapsed().as_secs_f64(), child))
}

/// `kpi-bench restart`: restarts of kpid over `data_dir` (its records under the tenant
/// `default`, as `kpi-store`'s `memory` example writes them; a key acting as it in a keys
/// file beside the directory), timed to the first Compute and (another start) to the
/// first dashboard of every registered metric, `runs` times each.
pub(crate) fn restarts(data_dir: &Path, kpid: Option<PathBuf>, runs: usize) -> anyhow::Result<()> {
    let keys_file = data_dir.with_extension("bench-keys");
    let kpid = DeployedKpid::new(
        kpid.map_or(Kpid::Builtin, Kpid::Binary),
        &keys_file,
        kpi_store::DEFAULT_TENANT,
    )?;
    let ids: Vec<String> = kpi_core::registry()
        .context("the linked metrics")?
        .metrics()
        .map(|m| m.descriptor().id.to_string())
        .collect();
    let rt = runtime()?;
    let timed = (|| {
        for run in 1..=runs {
            let (answer, child) = rt.block_on(restart(&kpid, data_dir))?;
            child.terminate(STOP_GRACE)?;
            let (dashboard, child) = rt.block_on(restart_dashboard(&kpid, data_dir, &ids))?;
            child.terminate(STOP_GRACE)?;
            println!(
                "run {run}: restart to first answer {answer:.2} s, to first dashboard {dashboard:.2} s"
            );
        }
        anyhow::Ok(())
    })();
    let _ = std::fs::remove_file(&keys_file);
    timed
}

/// The mixed phase's plan from the command line.
fn mixed_plan(args: &RunArgs) -> crate::mixed::MixedPlan {
    let (quiet, mixed, rounds) = if args.quick { (2, 4, 3) } else { (20, 60, 30) };
    crate::mixed::MixedPlan {
        quiet: Duration::from_secs(args.quiet_secs.unwrap_or(quiet)),
        mixed: Duration::from_secs(args.mixed_secs.unwrap_or(mixed)),
        rate: args.write_rate.max(1.0),
        rounds: args.read_after_write_rounds.unwrap_or(rounds).max(1),
    }
}

/// DuckDB's answer file.
#[derive(Debug, Deserialize)]
struct DuckAnswer {
    version: String,
    threads: usize,
    load_s: f64,
    median_ms: f64,
    metrics: BTreeMap<String, Vec<DuckRow>>,
}

/// The venv's python, with duckdb installed (created on first use).
fn duckdb_python(out: &Path, python: &str) -> anyhow::Result<PathBuf> {
    let venv = out.join("venv");
    let py = venv.join("bin").join("python");
    if !py.exists() {
        say(format!("creating a venv in {}", venv.display()));
        let ok = Command::new(python)
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .with_context(|| format!("running {python} -m venv"))?;
        ensure!(ok.success(), "{python} -m venv failed");
    }
    let has = Command::new(&py)
        .args(["-c", "import duckdb"])
        .stderr(std::process::Stdio::null())
        .status()?
        .success();
    if !has {
        say("installing duckdb from PyPI into the venv");
        let ok = Command::new(&py)
            .args(["-m", "pip", "install", "--quiet", "duckdb"])
            .status()?;
        ensure!(ok.success(), "pip install duckdb failed");
    }
    Ok(py)
}

/// DuckDB's side: the venv's python and the dashboard script written beside it.
struct Duck {
    python: PathBuf,
    script: PathBuf,
}

impl Duck {
    /// Creates the venv (once) and writes the script.
    fn prepare(args: &RunArgs, out: &Path) -> anyhow::Result<Duck> {
        let python = duckdb_python(out, &args.python)?;
        let script = out.join("duckdb_dashboard.py");
        std::fs::write(&script, include_str!("../duckdb_dashboard.py"))?;
        Ok(Duck { python, script })
    }

    /// The metrics the script has SQL for.
    fn metrics(&self) -> anyhow::Result<Vec<String>> {
        let listed = Command::new(&self.python)
            .arg(&self.script)
            .arg("--list")
            .output()
            .context("running duckdb_dashboard.py --list")?;
        ensure!(listed.status.success(), "duckdb_dashboard.py --list failed");
        Ok(serde_json::from_slice(&listed.stdout)?)
    }

    /// Loads the CSV files and runs the dashboard `runs` times after one untimed run.
    fn run(
        &self,
        args: &RunArgs,
        out: &Path,
        csv: &Path,
        runs: usize,
    ) -> anyhow::Result<DuckAnswer> {
        let answer = out.join("duckdb.json");
        let threads = args
            .duckdb_threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let status = Command::new(&self.python)
            .arg(&self.script)
            .arg("--csv")
            .arg(csv)
            .args(["--start", &WINDOW_START[..10], "--end", &WINDOW_END[..10]])
            .args([
                "--runs",
                &runs.to_string(),
                "--threads",
                &threads.to_string(),
            ])
            .arg("--out")
            .arg(&answer)
            .status()
            .context("running duckdb_dashboard.py")?;
        ensure!(status.success(), "duckdb_dashboard.py failed");
        let text = std::fs::read_to_string(&answer)?;
        Ok(serde_json::from_str(&text)?)
    }
}

/// The restarts over the data directory of the stopped kpid (sled): to its first Compute,
/// then (a second start) to its first dashboard.
/// What a restarted kpid logs of its open: sled's and the snapshot's times (side by side),
/// the index image's read, and why the current-snapshot marker was not used, if it was not.
const RESTART_LOG_FIELDS: &[&str] = &["sled_ms", "snapshot_ms", "image_ms", "reason"];

fn restarts_over_data_dir(
    rt: &tokio::runtime::Runtime,
    deployed: &DeployedKpid,
    data_dir: &Path,
    ids: &[String],
    res: &mut Results,
) -> anyhow::Result<()> {
    say("restarting kpid over the stored records");
    let restarted = rt.block_on(restart(deployed, data_dir))?;
    res.restart_to_first_answer_s = restarted.0;
    res.restart_peak_rss_mb = restarted.1.peak_rss_mb()?;
    res.restart_ready_s = restarted.1.ready_after.as_secs_f64();
    // What kpid's log says of its open so far (sled may still be opening behind a
    // current snapshot), and why it did not use the current-snapshot marker if it did not.
    let logged = restarted.1.logged(RESTART_LOG_FIELDS);
    say(format!(
        "first answer {:.2} s after the restart (ready after {:.2} s; logged so far: {})",
        res.restart_to_first_answer_s, res.restart_ready_s, logged
    ));
    restarted.1.terminate(STOP_GRACE)?;

    say("restarting kpid again, first request a dashboard");
    let restarted = rt.block_on(restart_dashboard(deployed, data_dir, ids))?;
    res.restart_first_dashboard_s = restarted.0;
    res.restart_peak_rss_mb = res.restart_peak_rss_mb.max(restarted.1.peak_rss_mb()?);
    let logged = restarted.1.logged(RESTART_LOG_FIELDS);
    say(format!(
        "first dashboard {:.2} s after the restart (ready after {:.2} s; logged so far: {})",
        res.restart_first_dashboard_s,
        restarted.1.ready_after.as_secs_f64(),
        logged
    ));
    restarted.1.terminate(STOP_GRACE)?;
    Ok(())
}

/// The replica lag phase's plan from the command line.
fn lag_plan(args: &RunArgs) -> crate::postgres::LagPlan {
    crate::postgres::LagPlan {
        writes: args
            .lag_writes
            .unwrap_or(if args.quick { 50 } else { 1000 })
            .max(1),
        records_per_write: 10,
        interval: Duration::from_millis(20),
    }
}

/// The whole run.
pub(crate) fn run(args: &RunArgs) -> anyhow::Result<()> {
    let runs = args.runs.unwrap_or(if args.quick { 3 } else { 10 });
    let calls = args
        .rpc_calls
        .unwrap_or(if args.quick { 200 } else { 2000 });
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let out = args.out.canonicalize()?;
    // Declared before the servers: dropped (the database with it) after they stop.
    let database = args
        .store
        .as_deref()
        .map(crate::postgres::RunDatabase::create)
        .transpose()?;
    let kpid = match &args.kpid {
        Some(path) => Kpid::Binary(path.clone()),
        None => Kpid::Builtin,
    };
    let mut res = Results {
        seed: args.seed,
        quick: args.quick,
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        server: match &kpid {
            Kpid::Builtin => "kpi-bench serve (kpid serve's code)".into(),
            Kpid::Binary(p) => p.display().to_string(),
        },
        window: format!("[{WINDOW_START}, {WINDOW_END}) by month, UTC"),
        edge: format!(
            "kpid serve's defaults, authentication on (--api-keys: one key, tenant \
             `{BENCH_TENANT}`, sent on every call, bare tonic's included), Prometheus on \
             (--metrics-addr), the rpc span logged at info"
        ),
        ingest_batch: args.batch,
        store: if database.is_some() {
            "postgres"
        } else {
            "sled"
        }
        .into(),
        dashboard_runs: runs,
        rpc_calls: calls,
        compute_request: format!("{COMPUTE_METRIC}, the same window by month"),
        ..Results::default()
    };

    say(format!(
        "generating {} records (seed {})",
        args.records, args.seed
    ));
    let t = Instant::now();
    let records = generate(&DemoOptions {
        seed: args.seed,
        records: args.records,
        attributes_and_activities: args.attributes,
        // Some amounts in GBP and USD with their rates: the tenant's base is EUR, and
        // DuckDB converts the same amounts (duckdb_dashboard.py, CONVERSIONS).
        currencies: true,
        ..DemoOptions::default()
    });
    res.records = records.len();
    res.attributes_and_activities = args.attributes;
    say(format!(
        "generated {} records in {:.1?}",
        records.len(),
        t.elapsed()
    ));

    if database.is_some() {
        say("PostgreSQL: no bare sled floor (the ingest is compared with COPY of the same rows)");
    } else {
        say("inserting into a bare sled tree (one flush)");
        (res.sled_raw_records_per_s, res.sled_raw_s) = sled_raw(&records, &out.join("sled-raw"))?;
        say(format!(
            "raw sled: {:.0} records/s",
            res.sled_raw_records_per_s
        ));
    }

    // Exported now, so the dataset is held once and dropped after the ingest.
    let csv = out.join("csv");
    let _ = std::fs::remove_dir_all(&csv);
    let duck = if args.no_duckdb {
        None
    } else {
        say("exporting CSV for DuckDB");
        crate::export::write_csv(&records, &csv)?;
        let duck = Duck::prepare(args, &out)?;
        let metrics = duck.metrics()?;
        Some((duck, metrics))
    };
    let records = Arc::new(records);

    let data_dir = out.join("kpid-data");
    let _ = std::fs::remove_dir_all(&data_dir);
    let rt = runtime()?;
    let mut deployed = DeployedKpid::new(kpid.clone(), &out.join("api-keys"), BENCH_TENANT)?;
    if let Some(database) = &database {
        deployed = deployed.on_postgres(&database.url);
    }
    let mut server = deployed.start(&data_dir)?;
    let target = deployed.target(&server);
    say(format!(
        "kpid (pid {}) listening on {}",
        server.pid(),
        server.addr
    ));
    let (kpid_answer, ids) = rt.block_on(async {
        let mut clients = connect(&target).await?;
        clients
            .tenant
            .update_settings(pb::UpdateSettingsRequest {
                settings: Some(pb::TenantSettings {
                    base_currency: BASE_CURRENCY.into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["base_currency".into()],
                }),
            })
            .await
            .context("UpdateSettings")?;
        say(format!(
            "ingesting through kpid, {} records per message",
            args.batch
        ));
        (res.ingest_records_per_s, res.ingest_s) =
            ingest(&mut clients, records.clone(), args.batch).await?;
        say(format!("ingest: {:.0} records/s", res.ingest_records_per_s));
        res.ingest_peak_rss_mb = server.peak_rss_mb()?;
        if let Some(database) = &database {
            say("PostgreSQL: COPY of the same rows into a table of the shape of `records`");
            let (url, rows) = (database.url.clone(), records.clone());
            let (copy_per_s, copy_s) = tokio::task::spawn_blocking(move || {
                crate::postgres::copy_floor(&url, BENCH_TENANT, &rows)
            })
            .await??;
            res.pg_ingest_per_s = Some(res.ingest_records_per_s);
            res.pg_copy_per_s = Some(copy_per_s);
            res.pg_copy_s = Some(copy_s);
            res.pg_ingest_ratio = Some(res.ingest_records_per_s / copy_per_s);
            say(format!(
                "COPY: {copy_per_s:.0} records/s ({copy_s:.1} s); ingest / COPY {:.2}",
                res.ingest_records_per_s / copy_per_s
            ));
        }

        let ids: Vec<String> = clients
            .metrics
            .list_metrics(pb::ListMetricsRequest::default())
            .await?
            .into_inner()
            .metrics
            .into_iter()
            .map(|m| m.id)
            .collect();
        res.dashboard_metrics = ids.len();
        say(format!(
            "dashboard of {} metrics, {runs} timed runs",
            ids.len()
        ));
        let (first, samples, answer) =
            dashboard(&mut clients, &ids, pb::Comparison::Unspecified, runs).await?;
        res.dashboard_first_ms_kpid = first;
        res.dashboard_ms_kpid = median(&samples);
        res.dashboard_p99_ms_kpid = quantile(&samples, 0.99);
        res.dashboard_rows = answer.results.iter().map(|r| r.rows.len()).sum();
        say(format!(
            "kpid dashboard: {:.1} ms median",
            res.dashboard_ms_kpid
        ));
        if let Some((_, duck_metrics)) = &duck {
            // The same dashboard restricted to the metrics DuckDB has SQL for.
            let same: Vec<String> = ids
                .iter()
                .filter(|id| duck_metrics.contains(id))
                .cloned()
                .collect();
            res.dashboard_same_metrics_ms_kpid = Some(if same.len() == ids.len() {
                res.dashboard_ms_kpid
            } else {
                median(
                    &dashboard(&mut clients, &same, pb::Comparison::Unspecified, runs)
                        .await?
                        .1,
                )
            });
        }

        say("the same dashboard compared with the previous month, alternating with it");
        let (compared_ms, uncompared_ms, compared) =
            compared_dashboard(&mut clients, &ids, runs).await?;
        ensure!(
            compared.results.iter().map(|r| r.rows.len()).sum::<usize>() == res.dashboard_rows,
            "a comparison must add no rows"
        );
        res.dashboard_compare_ms_kpid = median(&compared_ms);
        let uncompared = median(&uncompared_ms);
        if uncompared > 0.0 {
            res.dashboard_compare_ratio = res.dashboard_compare_ms_kpid / uncompared;
        }
        say(format!(
            "kpid compared dashboard: {:.1} ms median ({:.2} × uncompared)",
            res.dashboard_compare_ms_kpid, res.dashboard_compare_ratio
        ));

        say(format!(
            "{calls} empty RPCs and Computes, in turn with empty RPCs on a bare tonic server"
        ));
        let bare = start_bare_tonic()?;
        // The same metadata (the key) as kpid's calls: the same request bytes.
        let mut bare_health = connect(&deployed.target(&bare)).await?.health;
        let RpcSamples {
            empty,
            compute,
            bare: bare_samples,
        } = rpc_latency(&mut clients, &mut bare_health, calls).await?;
        drop(bare_health);
        bare.terminate(STOP_GRACE)?;
        res.bare_tonic_rpc_p50_us = quantile(&bare_samples, 0.5);
        res.empty_rpc_p50_us = quantile(&empty, 0.5);
        res.empty_rpc_p99_us = quantile(&empty, 0.99);
        res.compute_p50_us = quantile(&compute, 0.5);
        res.compute_p99_us = quantile(&compute, 0.99);
        if args.attributes {
            let grouped_calls = (calls / 10).max(10);
            say(format!(
                "{grouped_calls} win_rate Computes by customer.region and by owner"
            ));
            let (attribute, owner) = win_rate_by_attribute(&mut clients, grouped_calls).await?;
            res.win_rate_by_customer_attribute_us = Some(attribute);
            res.win_rate_by_owner_us = Some(owner);
            res.win_rate_attribute_ratio = (owner > 0.0).then(|| attribute / owner);
        }
        // Before the writes of the mixed phase, whose rebuilds the memory target does not
        // cover (reported apart).
        res.peak_rss_mb = server.peak_rss_mb()?;
        res.rss_after_dashboard_mb = server.rss_mb()?;

        if !args.no_mixed {
            let mixed = crate::mixed::run(&target, &ids, &records, mixed_plan(args)).await?;
            res.quiet_compute_p99_us = mixed.quiet_compute_p99_us;
            res.mixed_compute_p99_us = mixed.mixed_compute_p99_us;
            res.mixed_dashboard_p99_ms = mixed.mixed_dashboard_p99_ms;
            res.read_after_write_p99_ms = mixed.read_after_write_p99_ms;
            res.write_p99_ms = mixed.write_p99_ms;
            res.mixed_peak_rss_mb = server.peak_rss_mb()?;
            say(format!(
                "mixed: Compute p99 {:.0} µs during writes, {:.0} µs without; dashboard p99 {:.1} ms; \
                 read after write p99 {:.1} ms; write p99 {:.1} ms",
                mixed.mixed_compute_p99_us,
                mixed.quiet_compute_p99_us,
                mixed.mixed_dashboard_p99_ms,
                mixed.read_after_write_p99_ms,
                mixed.write_p99_ms
            ));
            res.mixed = Some(mixed);
        }
        if database.is_some() {
            let plan = lag_plan(args);
            say(format!(
                "replica lag: a second kpid over the same database; {} writes of {} records \
                 every {:?} on the first, each followed by a read on the second with its sequence",
                plan.writes, plan.records_per_write, plan.interval
            ));
            let replica = deployed.start(&out.join("kpid-data-replica"))?;
            let lags = crate::postgres::replica_lag(
                &target,
                &deployed.target(&replica),
                &records,
                &plan,
            )
            .await?;
            replica.terminate(STOP_GRACE)?;
            let (p50, p99) = crate::postgres::lag_percentiles(&lags);
            res.replica_lag_writes = Some(lags.len());
            res.replica_lag_p50_ms = Some(p50);
            res.replica_lag_p99_ms = Some(p99);
            say(format!("replica lag: p50 {p50:.2} ms, p99 {p99:.2} ms"));
        }
        anyhow::Ok((answer, ids))
    })?;
    res.stop_s = server.stop(STOP_GRACE)?.as_secs_f64();
    let logged = server.logged(&["snapshot_write_ms", "settle_ms", "image_write_ms"]);
    say(format!(
        "kpid stopped in {:.2} s (rows snapshot and index image written: {})",
        res.stop_s, logged
    ));
    res.disk_mb = disk_bytes(&data_dir) as f64 / (1024.0 * 1024.0);

    if database.is_some() {
        say("PostgreSQL: the restarts over a data directory are skipped (a replica restarted loads the database: see the replica lag)");
    } else {
        restarts_over_data_dir(&rt, &deployed, &data_dir, &ids, &mut res)?;
    }
    if !args.keep_data {
        let _ = std::fs::remove_dir_all(&data_dir);
    }

    let tenants = args.tenants.unwrap_or(if args.quick { 20 } else { 1000 });
    if database.is_some() && tenants > 0 {
        say("PostgreSQL: the tenants phase is skipped (it runs on sled: run without --store)");
    } else if tenants > 0 {
        let phase = rt.block_on(crate::tenants::run(
            &kpid,
            &out,
            tenants,
            args.tenant_records,
        ))?;
        res.tenants = phase.tenants;
        res.tenant_bytes = phase.tenant_bytes;
        res.tenant_cold_compute_p99_ms = phase.cold_compute_p99_ms;
        res.tenant_warm_compute_p99_ms = phase.warm_compute_p99_ms;
        say(format!(
            "tenants: {:.1} KiB a tenant beyond its rows; Compute cold p99 {:.2} ms, warm {:.2} ms",
            phase.tenant_bytes / 1024.0,
            phase.cold_compute_p99_ms,
            phase.warm_compute_p99_ms
        ));
        res.tenants_phase = Some(phase);
    }

    if let Some((duck, _)) = duck {
        say("running the dashboard in DuckDB");
        let answer = duck.run(args, &out, &csv, runs)?;
        let c = compare(&kpid_answer.results, &answer.metrics);
        res.dashboard_ms_duckdb = Some(answer.median_ms);
        res.duckdb_version = Some(answer.version);
        res.duckdb_threads = Some(answer.threads);
        res.duckdb_load_s = Some(answer.load_s);
        res.duckdb_metrics_compared = c.metrics;
        res.duckdb_rows_compared = c.rows;
        res.duckdb_values_compared = c.values;
        res.duckdb_mismatches = c.mismatches;
        std::fs::remove_dir_all(&csv)?;
    }

    res.judge();
    let path = out.join("results.json");
    std::fs::write(&path, serde_json::to_string_pretty(&res)? + "\n")?;
    println!("{}", res.table());
    println!("results: {}", path.display());
    if !res.duckdb_mismatches.is_empty() {
        for m in res.duckdb_mismatches.iter().take(20) {
            eprintln!("  mismatch: {m}");
        }
        bail!(
            "DuckDB and kpid disagree on {} inputs or values",
            res.duckdb_mismatches.len()
        );
    }
    Ok(())
}
