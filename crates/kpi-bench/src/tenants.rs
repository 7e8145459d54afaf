//! The tenants phase (issue 16): many tenants on one kpid, each with its API key.
//!
//! 1. writes a keys file with one generated key per tenant (`kpid keys add`'s format) and
//!    starts kpid with `--api-keys` over a fresh data directory;
//! 2. stores each tenant's records (`kpi_store::generate`, seeded by the tenant's number)
//!    with one `PutRecords` per tenant, several tenants in flight;
//! 3. reads kpid's resident memory (the rows and sled's state), then computes the bench's
//!    single metric once for every tenant in turn — the first read of each since kpid
//!    started (cold: it builds that tenant's index) — and reads the memory again: the
//!    difference per tenant is what a tenant holds beyond its rows once read;
//! 4. computes it again for every tenant (warm);
//! 5. restarts kpid over the same records with `--memory-budget` set to a quarter of
//!    the tenants' query state, reads every tenant once, then reads the first ones again
//!    (released by then) and checks that every answer equals the one without a budget,
//!    reporting the memory it held to.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _};
use kpi_proto::kpi::v1 as pb;
use kpi_store::generate::{generate, DemoOptions};
use serde::Serialize;
use tonic::metadata::MetadataValue;

use crate::bench::{connect, say, window_compute, Bearer, Clients, Target, COMPUTE_METRIC};
use crate::proto;
use crate::report::{ms, quantile};
use crate::server::{Child, Kpid};

/// Tenants whose records are being stored at once.
const IN_FLIGHT: usize = 4;
/// Tenants whose answers are kept to compare after their release.
const COMPARED: usize = 200;
/// How long kpid is left to return freed pages before its memory is read (jemalloc
/// returns them after 100 ms).
const SETTLE: Duration = Duration::from_millis(1500);
/// How long a stopping server may take to flush and exit.
const STOP_GRACE: Duration = Duration::from_secs(300);

/// What the tenants phase measured.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct TenantsResults {
    /// Tenants, each with its API key.
    pub(crate) tenants: usize,
    /// Records asked per tenant, and stored over all of them.
    pub(crate) records_per_tenant: usize,
    pub(crate) records: usize,
    /// Seconds storing every tenant's records took.
    pub(crate) store_s: f64,
    /// kpid's resident memory once every tenant's records were stored, in MiB.
    pub(crate) rss_after_writes_mb: f64,
    /// …and once every tenant was read once, in MiB.
    pub(crate) rss_after_reads_mb: f64,
    /// Bytes a tenant holds beyond its rows once read (the difference of the two, per
    /// tenant).
    pub(crate) tenant_bytes: f64,
    /// Bytes a tenant's rows and sled's state take (resident memory after the writes
    /// over the tenants; includes the process's fixed memory).
    pub(crate) rows_bytes_per_tenant: f64,
    /// The first Compute on each tenant since kpid started: p50 and p99, in ms.
    pub(crate) cold_compute_p50_ms: f64,
    pub(crate) cold_compute_p99_ms: f64,
    /// A Compute on a tenant read before: p50 and p99, in ms.
    pub(crate) warm_compute_p50_ms: f64,
    pub(crate) warm_compute_p99_ms: f64,
    /// kpid's peak resident memory without a budget, in MiB.
    pub(crate) peak_rss_mb: f64,
    /// The memory budget of the second start, in bytes (a quarter of the tenants' query
    /// state as kpid counts it).
    pub(crate) budget_bytes: u64,
    /// With the budget: resident memory after the restart (rows loaded), in MiB.
    pub(crate) budget_rss_after_start_mb: f64,
    /// …after every tenant was read once, in MiB.
    pub(crate) budget_rss_after_reads_mb: f64,
    /// …peak, in MiB.
    pub(crate) budget_peak_rss_mb: f64,
    /// With the budget: the first Compute on each tenant, p99 in ms.
    pub(crate) budget_cold_compute_p99_ms: f64,
    /// With the budget: a Compute on a tenant released since its last read, p99 in ms.
    pub(crate) budget_released_compute_p99_ms: f64,
    /// Answers compared between the start without a budget and after a release (all
    /// equal, or the run fails).
    pub(crate) answers_compared: usize,
}

impl TenantsResults {
    /// Its rows of the printed table.
    pub(crate) fn table(&self) -> String {
        let mut out = String::new();
        let mut row = |k: &str, v: String| out.push_str(&format!("  {k:<44} {v}\n"));
        row(
            "tenants",
            format!(
                "{} × {} records ({} stored in {:.1} s)",
                self.tenants, self.records_per_tenant, self.records, self.store_s
            ),
        );
        row(
            "a tenant beyond its rows, once read",
            format!(
                "{:.1} KiB (RSS {:.0} → {:.0} MiB over the first reads)",
                self.tenant_bytes / 1024.0,
                self.rss_after_writes_mb,
                self.rss_after_reads_mb
            ),
        );
        row(
            "tenant Compute cold p50 / p99",
            format!(
                "{:.2} ms / {:.2} ms",
                self.cold_compute_p50_ms, self.cold_compute_p99_ms
            ),
        );
        row(
            "tenant Compute warm p50 / p99",
            format!(
                "{:.2} ms / {:.2} ms",
                self.warm_compute_p50_ms, self.warm_compute_p99_ms
            ),
        );
        row(
            "tenants RSS without / with a budget",
            format!(
                "after reads {:.0} / {:.0} MiB, peak {:.0} / {:.0} MiB (budget {:.1} MiB)",
                self.rss_after_reads_mb,
                self.budget_rss_after_reads_mb,
                self.peak_rss_mb,
                self.budget_peak_rss_mb,
                self.budget_bytes as f64 / (1024.0 * 1024.0)
            ),
        );
        row(
            "tenant Compute after a release p99",
            format!(
                "{:.2} ms ({} answers equal to those before)",
                self.budget_released_compute_p99_ms, self.answers_compared
            ),
        );
        out
    }
}

/// A tenant's name and API key.
struct TenantKey {
    name: String,
    bearer: MetadataValue<tonic::metadata::Ascii>,
}

/// Generates a key per tenant and writes the keys file.
fn write_keys(path: &Path, tenants: usize) -> anyhow::Result<Vec<TenantKey>> {
    let mut lines = String::new();
    let mut keys = Vec::with_capacity(tenants);
    for t in 0..tenants {
        let name = format!("tenant{t:05}");
        let key = kpi_server::auth::generate_key().context("generating a key")?;
        lines.push_str(&kpi_server::auth::key_line(&key, &name)?);
        lines.push('\n');
        keys.push(TenantKey {
            name,
            bearer: format!("Bearer {key}").parse()?,
        });
    }
    std::fs::write(path, lines).with_context(|| format!("writing {}", path.display()))?;
    Ok(keys)
}

fn as_tenant<T>(message: T, key: &TenantKey) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", key.bearer.clone());
    request
}

/// Stores every tenant's records, `IN_FLIGHT` tenants at once: records stored.
async fn store_all(
    clients: &Clients,
    keys: &Arc<Vec<TenantKey>>,
    per_tenant: usize,
) -> anyhow::Result<usize> {
    let mut workers = Vec::new();
    for w in 0..IN_FLIGHT {
        let mut records = clients.records.clone();
        let keys = Arc::clone(keys);
        workers.push(tokio::spawn(async move {
            let mut stored = 0usize;
            for (t, key) in keys.iter().enumerate().skip(w).step_by(IN_FLIGHT) {
                let data: Vec<pb::Record> = generate(&DemoOptions {
                    seed: t as u64,
                    records: per_tenant,
                    ..DemoOptions::default()
                })
                .iter()
                .map(proto::record)
                .collect();
                let n = data.len();
                let answer = records
                    .put_records(as_tenant(pb::PutRecordsRequest { records: data }, key))
                    .await
                    .with_context(|| format!("PutRecords for {}", key.name))?
                    .into_inner();
                ensure!(
                    answer.rejected.is_empty(),
                    "{}: rejected {:?}",
                    key.name,
                    answer.rejected.first()
                );
                stored += n;
            }
            anyhow::Ok(stored)
        }));
    }
    let mut stored = 0;
    for w in workers {
        stored += w.await??;
    }
    Ok(stored)
}

/// One Compute for `key`'s tenant: its time in ms and its values.
async fn compute(clients: &mut Clients, key: &TenantKey) -> anyhow::Result<(f64, Vec<String>)> {
    let started = Instant::now();
    let answer = clients
        .metrics
        .compute(as_tenant(window_compute(COMPUTE_METRIC), key))
        .await
        .with_context(|| format!("Compute for {}", key.name))?
        .into_inner();
    let elapsed = ms(started.elapsed());
    ensure!(
        answer.rows.len() == 12,
        "Compute answered {} rows",
        answer.rows.len()
    );
    let values = answer
        .rows
        .into_iter()
        .map(|r| format!("{}|{}", r.value, r.undefined_reason))
        .collect();
    Ok((elapsed, values))
}

/// One Compute for each of `keys`: times in ms, and the values of the first `COMPARED`.
async fn read_each(
    clients: &mut Clients,
    keys: &[TenantKey],
) -> anyhow::Result<(Vec<f64>, Vec<Vec<String>>)> {
    let mut times = Vec::with_capacity(keys.len());
    let mut values = Vec::new();
    for (t, key) in keys.iter().enumerate() {
        let (elapsed, v) = compute(clients, key).await?;
        times.push(elapsed);
        if t < COMPARED {
            values.push(v);
        }
    }
    Ok((times, values))
}

async fn settled_rss(child: &Child) -> anyhow::Result<f64> {
    tokio::time::sleep(SETTLE).await;
    child.rss_mb()
}

/// The whole phase: `tenants` tenants of `per_tenant` records each, under `out`.
pub(crate) async fn run(
    kpid: &Kpid,
    out: &Path,
    tenants: usize,
    per_tenant: usize,
) -> anyhow::Result<TenantsResults> {
    let mut res = TenantsResults {
        tenants,
        records_per_tenant: per_tenant,
        ..TenantsResults::default()
    };
    let data_dir = out.join("tenants-data");
    let _ = std::fs::remove_dir_all(&data_dir);
    let keys_file = out.join("tenants-keys");
    let keys = Arc::new(write_keys(&keys_file, tenants)?);
    let keys_flag = vec!["--api-keys".into(), keys_file.display().to_string()];

    say(format!(
        "tenants phase: {tenants} tenants × {per_tenant} records, each with its API key"
    ));
    let server = kpid.start_with(&data_dir, &keys_flag)?;
    let mut clients = connect(&Target {
        url: server.url(),
        bearer: Bearer::NONE,
    })
    .await?;
    let t = Instant::now();
    res.records = store_all(&clients, &keys, per_tenant).await?;
    res.store_s = t.elapsed().as_secs_f64();
    res.rss_after_writes_mb = settled_rss(&server).await?;
    res.rows_bytes_per_tenant = res.rss_after_writes_mb * 1024.0 * 1024.0 / tenants as f64;

    say("tenants phase: the first read of every tenant");
    let (cold, answers) = read_each(&mut clients, &keys).await?;
    res.rss_after_reads_mb = settled_rss(&server).await?;
    res.tenant_bytes =
        (res.rss_after_reads_mb - res.rss_after_writes_mb) * 1024.0 * 1024.0 / tenants as f64;
    res.cold_compute_p50_ms = quantile(&cold, 0.5);
    res.cold_compute_p99_ms = quantile(&cold, 0.99);
    say("tenants phase: every tenant read again");
    let (warm, _) = read_each(&mut clients, &keys).await?;
    res.warm_compute_p50_ms = quantile(&warm, 0.5);
    res.warm_compute_p99_ms = quantile(&warm, 0.99);
    res.peak_rss_mb = server.peak_rss_mb()?;
    drop(clients);
    server.terminate(STOP_GRACE)?;

    // A quarter of the tenants' query state, as kpid counts it.
    res.budget_bytes = (tenants as u64 / 4).max(1) * kpi_store::query_state_estimate(per_tenant);
    say(format!(
        "tenants phase: restarted with --memory-budget {}",
        res.budget_bytes
    ));
    let mut flags = keys_flag;
    flags.extend(["--memory-budget".into(), res.budget_bytes.to_string()]);
    let server = kpid.start_with(&data_dir, &flags)?;
    let mut clients = connect(&Target {
        url: server.url(),
        bearer: Bearer::NONE,
    })
    .await?;
    res.budget_rss_after_start_mb = settled_rss(&server).await?;
    let (cold, _) = read_each(&mut clients, &keys).await?;
    res.budget_cold_compute_p99_ms = quantile(&cold, 0.99);
    res.budget_rss_after_reads_mb = settled_rss(&server).await?;
    // The first tenants were read least recently: released by now (unless they all fit).
    let first = &keys[..COMPARED.min(tenants)];
    let (released, again) = read_each(&mut clients, first).await?;
    res.budget_released_compute_p99_ms = quantile(&released, 0.99);
    ensure!(
        again == answers,
        "a tenant answered differently after the memory budget released its state"
    );
    res.answers_compared = again.iter().map(Vec::len).sum();
    res.budget_peak_rss_mb = server.peak_rss_mb()?;
    drop(clients);
    server.terminate(STOP_GRACE)?;
    std::fs::remove_dir_all(&data_dir)?;
    std::fs::remove_file(&keys_file)?;
    Ok(res)
}
