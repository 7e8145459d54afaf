//! The results of one run: percentiles, `results.json`, and the table printed at the end.

use std::time::Duration;

use serde::Serialize;

use crate::mixed::MixedResults;
use crate::tenants::TenantsResults;

/// The size at which the memory and restart targets apply.
const TEN_MILLION: usize = 10_000_000;
/// The size at which the Compute-over-bare-tonic target applies.
const ONE_MILLION: usize = 1_000_000;
/// Tenants from which the tenants phase's figures are judged (with fewer, a tenant's
/// bytes are lost in the process's resident memory).
const MANY_TENANTS: usize = 1_000;

/// The `q`-quantile (0..=1) of `samples` by the nearest-rank method; 0 when empty.
pub(crate) fn quantile(samples: &[f64], q: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of `samples` (the mean of the middle two for an even count).
pub(crate) fn median(samples: &[f64]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Milliseconds of a duration.
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Microseconds of a duration.
pub(crate) fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// One target of the benchmark issue: a ratio from this run and the bound it must hold.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Target {
    /// What is compared.
    pub(crate) name: &'static str,
    /// The measured ratio or figure.
    pub(crate) measured: f64,
    /// The bound.
    pub(crate) bound: f64,
    /// Whether `measured` must stay at most (true) or at least (false) `bound`.
    pub(crate) at_most: bool,
    /// Whether the target holds.
    pub(crate) met: bool,
    /// Whether it is judged at this run's size (memory and restart are targets at 10M
    /// records; at other sizes they are shown for information).
    pub(crate) judged: bool,
}

impl Target {
    /// A target `measured ≤ bound` (or `≥` when `at_most` is false).
    pub(crate) fn new(name: &'static str, measured: f64, bound: f64, at_most: bool) -> Self {
        let met = if at_most {
            measured <= bound
        } else {
            measured >= bound
        };
        Self {
            name,
            measured,
            bound,
            at_most,
            met,
            judged: true,
        }
    }

    /// The same target, shown but not judged at this size.
    fn informative(mut self) -> Self {
        self.judged = false;
        self
    }
}

/// Everything one run measured (written as `results.json`).
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Results {
    /// Records generated, ingested and exported.
    pub(crate) records: usize,
    /// The generator's seed.
    pub(crate) seed: u64,
    /// Whether the dataset carried attributes and activities (`--attributes`).
    pub(crate) attributes_and_activities: bool,
    /// Whether this was the quick (CI) mode.
    pub(crate) quick: bool,
    /// CPU cores of the machine.
    pub(crate) cores: usize,
    /// The server measured: the bench's built-in kpid or a `kpid` binary.
    pub(crate) server: String,
    /// The dashboard's window and granularity.
    pub(crate) window: String,
    /// How kpid's edge ran for the phases over the dataset (authentication, Prometheus).
    pub(crate) edge: String,

    /// Records per second through kpid's Ingest stream (durable acknowledgements).
    pub(crate) ingest_records_per_s: f64,
    /// Seconds the Ingest stream took.
    pub(crate) ingest_s: f64,
    /// Records per Ingest message.
    pub(crate) ingest_batch: usize,
    /// Records per second into a bare sled tree (encode + insert, one flush).
    pub(crate) sled_raw_records_per_s: f64,
    /// Seconds the bare sled inserts took.
    pub(crate) sled_raw_s: f64,
    /// The record store kpid ran on: `sled` or `postgres` (`--store`).
    pub(crate) store: String,
    /// On PostgreSQL: records per second through kpid's Ingest (as `ingest_records_per_s`).
    pub(crate) pg_ingest_per_s: Option<f64>,
    /// On PostgreSQL: records per second of one binary `COPY` of the same rows into a table
    /// of the shape of `records`, in the same database, one transaction.
    pub(crate) pg_copy_per_s: Option<f64>,
    /// Seconds the `COPY` took (to its commit).
    pub(crate) pg_copy_s: Option<f64>,
    /// `pg_ingest_per_s / pg_copy_per_s` (target ≥ 0.5).
    pub(crate) pg_ingest_ratio: Option<f64>,
    /// On PostgreSQL: writes timed in the replica lag phase.
    pub(crate) replica_lag_writes: Option<usize>,
    /// Replica lag p50: from a write's acknowledgement on one replica to the other having
    /// applied its sequence, in ms.
    pub(crate) replica_lag_p50_ms: Option<f64>,
    /// Replica lag p99, in ms.
    pub(crate) replica_lag_p99_ms: Option<f64>,

    /// Metrics in the dashboard (every metric the server lists).
    pub(crate) dashboard_metrics: usize,
    /// Rows of one dashboard answer.
    pub(crate) dashboard_rows: usize,
    /// The first dashboard after ingest (builds the query index), in ms.
    pub(crate) dashboard_first_ms_kpid: f64,
    /// Median warm dashboard through BatchCompute, in ms.
    pub(crate) dashboard_ms_kpid: f64,
    /// 99th percentile of the warm dashboard, in ms.
    pub(crate) dashboard_p99_ms_kpid: f64,
    /// Timed dashboard runs.
    pub(crate) dashboard_runs: usize,
    /// Median warm dashboard with `compare = COMPARISON_PREVIOUS_PERIOD` (each row also
    /// computed for the month before), in ms.
    pub(crate) dashboard_compare_ms_kpid: f64,
    /// The compared dashboard's median over the uncompared one's, from runs alternating
    /// the two (target: at most about 2).
    pub(crate) dashboard_compare_ratio: f64,
    /// Median warm dashboard in DuckDB (the metrics it has SQL for), in ms.
    pub(crate) dashboard_ms_duckdb: Option<f64>,
    /// Median of kpid's dashboard restricted to the metrics DuckDB computes, in ms.
    pub(crate) dashboard_same_metrics_ms_kpid: Option<f64>,
    /// DuckDB's version.
    pub(crate) duckdb_version: Option<String>,
    /// DuckDB's threads.
    pub(crate) duckdb_threads: Option<usize>,
    /// Seconds DuckDB took to load the CSV files into tables (not in the dashboard time).
    pub(crate) duckdb_load_s: Option<f64>,
    /// Metrics DuckDB computed and compared with kpid.
    pub(crate) duckdb_metrics_compared: Vec<String>,
    /// Rows compared (months × groups).
    pub(crate) duckdb_rows_compared: usize,
    /// Inputs and values compared.
    pub(crate) duckdb_values_compared: usize,
    /// Disagreements between DuckDB and kpid (empty when the comparison is honest).
    pub(crate) duckdb_mismatches: Vec<String>,

    /// The single-metric Compute timed.
    pub(crate) compute_request: String,
    /// Median single-metric Compute, in µs.
    pub(crate) compute_p50_us: f64,
    /// 99th percentile single-metric Compute, in µs.
    pub(crate) compute_p99_us: f64,
    /// With `--attributes`: median `sales.win_rate` (the Compute's window by month) grouped
    /// by `customer.region`, in µs, alternating with the same grouped by `owner`.
    pub(crate) win_rate_by_customer_attribute_us: Option<f64>,
    /// With `--attributes`: median `sales.win_rate` grouped by `owner`, in µs.
    pub(crate) win_rate_by_owner_us: Option<f64>,
    /// By `customer.region` / by `owner` (target ≤ 2).
    pub(crate) win_rate_attribute_ratio: Option<f64>,
    /// Median empty unary RPC (gRPC health Check) on kpid's connection, in µs.
    pub(crate) empty_rpc_p50_us: f64,
    /// 99th percentile of it, in µs.
    pub(crate) empty_rpc_p99_us: f64,
    /// Median empty unary RPC on a bare tonic server, in µs.
    pub(crate) bare_tonic_rpc_p50_us: f64,
    /// Sequential calls timed per RPC kind.
    pub(crate) rpc_calls: usize,

    /// kpid's peak resident memory while ingesting and answering, in MiB.
    pub(crate) peak_rss_mb: f64,
    /// kpid's peak resident memory by the end of the ingest (before any query), in MiB.
    pub(crate) ingest_peak_rss_mb: f64,
    /// kpid's resident memory after the dashboards, in MiB.
    pub(crate) rss_after_dashboard_mb: f64,
    /// Seconds from starting kpid over the stored records to its first Compute answer.
    pub(crate) restart_to_first_answer_s: f64,
    /// Of those, seconds from starting it to its ready line (the store open).
    pub(crate) restart_ready_s: f64,
    /// Peak resident memory of the restarted kpid after its first answer, in MiB.
    pub(crate) restart_peak_rss_mb: f64,
    /// kpid's store on disk, in MiB.
    pub(crate) disk_mb: f64,
    /// Seconds from SIGTERM to kpid's exit after the phases (the rows snapshot and, on
    /// sled, the index image written).
    pub(crate) stop_s: f64,
    /// Seconds from starting kpid over the stored records to its first dashboard answer
    /// (a second restart, whose first request is the dashboard).
    pub(crate) restart_first_dashboard_s: f64,

    /// The mixed phase: single Compute p99 with no writes (the dashboard reader running),
    /// in µs.
    pub(crate) quiet_compute_p99_us: f64,
    /// Single Compute p99 during writes, in µs.
    pub(crate) mixed_compute_p99_us: f64,
    /// Dashboard p99 during writes, in ms.
    pub(crate) mixed_dashboard_p99_ms: f64,
    /// The largest per-kind p99 of a Compute right after a single acknowledged write, in ms.
    pub(crate) read_after_write_p99_ms: f64,
    /// Acknowledged write (1–50 records) p99 during the mixed phase, in ms.
    pub(crate) write_p99_ms: f64,
    /// kpid's peak resident memory by the end of the mixed phase, in MiB.
    pub(crate) mixed_peak_rss_mb: f64,
    /// Everything the mixed phase measured (absent with `--no-mixed`).
    pub(crate) mixed: Option<MixedResults>,

    /// The tenants phase: tenants served (each with its API key).
    pub(crate) tenants: usize,
    /// Bytes a tenant holds beyond its rows after one read (resident memory).
    pub(crate) tenant_bytes: f64,
    /// p99 of the first Compute on a tenant not read since kpid started, in ms.
    pub(crate) tenant_cold_compute_p99_ms: f64,
    /// p99 of a Compute on a tenant read before, in ms.
    pub(crate) tenant_warm_compute_p99_ms: f64,
    /// Everything the tenants phase measured (absent with `--tenants 0`).
    pub(crate) tenants_phase: Option<TenantsResults>,

    /// The targets, from this run's figures.
    pub(crate) targets: Vec<Target>,
    /// Whether every target judged at this size holds.
    pub(crate) all_targets_met: bool,
}

fn opt(v: Option<f64>, unit: &str) -> String {
    v.map_or_else(|| "—".to_owned(), |v| format!("{v:.1} {unit}"))
}

impl Results {
    /// Fills [`Results::targets`] from the measured figures.
    pub(crate) fn judge(&mut self) {
        let mut t = Vec::new();
        if let Some(duck) = self.dashboard_ms_duckdb.filter(|d| *d > 0.0) {
            t.push(Target::new(
                "dashboard kpid / DuckDB",
                self.dashboard_ms_kpid / duck,
                0.5,
                true,
            ));
        }
        if self.empty_rpc_p50_us > 0.0 {
            t.push(Target::new(
                "Compute p50 / empty RPC p50",
                self.compute_p50_us / self.empty_rpc_p50_us,
                3.0,
                true,
            ));
        }
        if self.sled_raw_records_per_s > 0.0 {
            t.push(Target::new(
                "ingest / raw sled insert",
                self.ingest_records_per_s / self.sled_raw_records_per_s,
                0.5,
                false,
            ));
        }
        if let Some(ratio) = self.pg_ingest_ratio {
            t.push(Target::new("ingest / PostgreSQL COPY", ratio, 0.5, false));
        }
        let at_scale = self.records >= TEN_MILLION;
        let scaled = |target: Target| {
            if at_scale {
                target
            } else {
                target.informative()
            }
        };
        t.push(scaled(Target::new(
            "peak RSS (MiB)",
            self.peak_rss_mb.max(self.restart_peak_rss_mb),
            1536.0,
            true,
        )));
        if !self.on_postgres() {
            t.push(scaled(Target::new(
                "restart to first answer (s)",
                self.restart_to_first_answer_s,
                3.0,
                true,
            )));
        }
        if self.dashboard_compare_ratio > 0.0 {
            t.push(Target::new(
                "dashboard compared / uncompared",
                self.dashboard_compare_ratio,
                2.0,
                true,
            ));
        }
        if self.bare_tonic_rpc_p50_us > 0.0 {
            t.push(Target::new(
                "empty RPC p50 kpid / bare tonic",
                self.empty_rpc_p50_us / self.bare_tonic_rpc_p50_us,
                1.2,
                true,
            ));
            let target = Target::new(
                "Compute p50 / bare tonic empty RPC p50",
                self.compute_p50_us / self.bare_tonic_rpc_p50_us,
                1.6,
                true,
            );
            t.push(if self.records >= ONE_MILLION {
                target
            } else {
                target.informative()
            });
        }
        if self.restart_first_dashboard_s > 0.0 {
            t.push(scaled(Target::new(
                "restart to first dashboard (s)",
                self.restart_first_dashboard_s,
                3.0,
                true,
            )));
        }
        if let Some(m) = &self.mixed {
            if m.quiet_compute_p99_us > 0.0 {
                t.push(Target::new(
                    "Compute p99 during writes / no writes",
                    m.mixed_compute_p99_us / m.quiet_compute_p99_us,
                    2.0,
                    true,
                ));
            }
            if m.quiet_dashboard_p99_ms > 0.0 {
                t.push(Target::new(
                    "dashboard p99 during writes / no writes",
                    m.mixed_dashboard_p99_ms / m.quiet_dashboard_p99_ms,
                    1.5,
                    true,
                ));
            }
            t.push(scaled(Target::new(
                "read after a write p99 (ms)",
                m.read_after_write_p99_ms,
                20.0,
                true,
            )));
        }
        if let Some(p) = &self.tenants_phase {
            let many = |target: Target| {
                if p.tenants >= MANY_TENANTS {
                    target
                } else {
                    target.informative()
                }
            };
            t.push(many(Target::new(
                "bytes a tenant holds beyond its rows",
                p.tenant_bytes,
                32.0 * 1024.0,
                true,
            )));
            t.push(many(Target::new(
                "first Compute on a cold tenant p99 (ms)",
                p.cold_compute_p99_ms,
                20.0,
                true,
            )));
        }
        self.targets = t;
        self.all_targets_met = self.all_met();
    }

    /// Whether kpid ran on PostgreSQL (`--store`): no data directory to restart over.
    fn on_postgres(&self) -> bool {
        self.store == "postgres"
    }

    /// Whether every target judged at this size holds.
    pub(crate) fn all_met(&self) -> bool {
        self.targets.iter().all(|t| t.met || !t.judged)
    }

    /// The human-readable table.
    pub(crate) fn table(&self) -> String {
        let mut out = String::new();
        let mut row = |k: &str, v: String| out.push_str(&format!("  {k:<44} {v}\n"));
        row("records", self.records.to_string());
        if self.attributes_and_activities {
            row("dataset", "with attributes and activities".to_string());
        }
        row(
            "ingest through kpid (durable)",
            format!(
                "{:.0} records/s ({:.1} s)",
                self.ingest_records_per_s, self.ingest_s
            ),
        );
        row("record store", self.store.clone());
        if let (Some(copy), Some(copy_s)) = (self.pg_copy_per_s, self.pg_copy_s) {
            row(
                "PostgreSQL COPY of the same rows, one commit",
                format!("{copy:.0} records/s ({copy_s:.1} s)"),
            );
        } else {
            row(
                "raw sled insert, one flush",
                format!(
                    "{:.0} records/s ({:.1} s)",
                    self.sled_raw_records_per_s, self.sled_raw_s
                ),
            );
        }
        if let (Some(p50), Some(p99), Some(writes)) = (
            self.replica_lag_p50_ms,
            self.replica_lag_p99_ms,
            self.replica_lag_writes,
        ) {
            row(
                "replica lag p50 / p99",
                format!("{p50:.2} ms / {p99:.2} ms ({writes} writes)"),
            );
        }
        row(
            "dashboard kpid, first (builds the index)",
            format!("{:.1} ms", self.dashboard_first_ms_kpid),
        );
        row(
            "dashboard kpid, warm median / p99",
            format!(
                "{:.1} ms / {:.1} ms ({} metrics, {} rows)",
                self.dashboard_ms_kpid,
                self.dashboard_p99_ms_kpid,
                self.dashboard_metrics,
                self.dashboard_rows
            ),
        );
        row(
            "dashboard kpid compared with previous month",
            format!(
                "{:.1} ms median ({:.2} × uncompared)",
                self.dashboard_compare_ms_kpid, self.dashboard_compare_ratio
            ),
        );
        row(
            "dashboard kpid, DuckDB's metrics only",
            opt(self.dashboard_same_metrics_ms_kpid, "ms"),
        );
        row(
            "dashboard DuckDB, warm median",
            format!(
                "{} ({} metrics, DuckDB {}, {} threads)",
                opt(self.dashboard_ms_duckdb, "ms"),
                self.duckdb_metrics_compared.len(),
                self.duckdb_version.as_deref().unwrap_or("—"),
                self.duckdb_threads.unwrap_or(0)
            ),
        );
        row(
            "DuckDB = kpid",
            if self.duckdb_version.is_none() {
                "not run".to_owned()
            } else if self.duckdb_mismatches.is_empty() {
                format!(
                    "yes: {} rows, {} inputs and values",
                    self.duckdb_rows_compared, self.duckdb_values_compared
                )
            } else {
                format!("NO: {} mismatches", self.duckdb_mismatches.len())
            },
        );
        row(
            "Compute p50 / p99",
            format!(
                "{:.0} µs / {:.0} µs ({})",
                self.compute_p50_us, self.compute_p99_us, self.compute_request
            ),
        );
        if let (Some(attribute), Some(owner), Some(ratio)) = (
            self.win_rate_by_customer_attribute_us,
            self.win_rate_by_owner_us,
            self.win_rate_attribute_ratio,
        ) {
            row(
                "win_rate by customer.region / by owner",
                format!("{attribute:.0} µs / {owner:.0} µs ({ratio:.2} ×, target ≤ 2)"),
            );
        }
        row(
            "empty RPC on kpid p50 / p99",
            format!(
                "{:.0} µs / {:.0} µs",
                self.empty_rpc_p50_us, self.empty_rpc_p99_us
            ),
        );
        row(
            "empty RPC on bare tonic p50",
            format!("{:.0} µs", self.bare_tonic_rpc_p50_us),
        );
        row(
            "kpid peak RSS",
            format!(
                "{:.0} MiB ({:.0} MiB by the end of the ingest)",
                self.peak_rss_mb, self.ingest_peak_rss_mb
            ),
        );
        if self.on_postgres() {
            row(
                "restarts, kpid on disk",
                "not measured on PostgreSQL".into(),
            );
        } else {
            row(
                "restart to first answer",
                format!(
                    "{:.2} s, ready after {:.2} s (peak RSS {:.0} MiB)",
                    self.restart_to_first_answer_s, self.restart_ready_s, self.restart_peak_rss_mb
                ),
            );
            row(
                "restart to first dashboard",
                format!("{:.2} s", self.restart_first_dashboard_s),
            );
            row("kpid on disk", format!("{:.0} MiB", self.disk_mb));
            row(
                "stop (snapshot, index image)",
                format!("{:.2} s", self.stop_s),
            );
        }
        if self.bare_tonic_rpc_p50_us > 0.0 {
            row(
                "empty RPC p50 kpid / bare tonic",
                format!(
                    "{:.2} (Compute p50 {:.2} × bare tonic)",
                    self.empty_rpc_p50_us / self.bare_tonic_rpc_p50_us,
                    self.compute_p50_us / self.bare_tonic_rpc_p50_us
                ),
            );
        }
        if let Some(m) = &self.mixed {
            row(
                "mixed: Compute p99 writes / none",
                format!(
                    "{:.0} µs / {:.0} µs ({} and {} calls)",
                    m.mixed_compute_p99_us,
                    m.quiet_compute_p99_us,
                    m.mixed_computes,
                    m.quiet_computes
                ),
            );
            row(
                "mixed: dashboard p99 writes / none / warm",
                format!(
                    "{:.1} ms / {:.1} ms / {:.1} ms ({} and {} runs)",
                    m.mixed_dashboard_p99_ms,
                    m.quiet_dashboard_p99_ms,
                    self.dashboard_p99_ms_kpid,
                    m.mixed_dashboards,
                    m.quiet_dashboards
                ),
            );
            row(
                "mixed: writes",
                format!(
                    "{} records in {} calls, {:.0}/s ({} upserts, {} new, {} deletes); \
                     ack p50 {:.1} ms, p99 {:.1} ms",
                    m.records_written,
                    m.write_calls,
                    m.write_records_per_s,
                    m.upserts,
                    m.inserts,
                    m.deletes,
                    m.write_p50_ms,
                    m.write_p99_ms
                ),
            );
            let kinds: Vec<String> = m
                .read_after_write_p99_ms_by_kind
                .iter()
                .map(|(k, v)| format!("{k} {v:.1}"))
                .collect();
            row(
                "read after a single write p99",
                format!(
                    "{:.1} ms max (ms by kind: {})",
                    m.read_after_write_p99_ms,
                    kinds.join(", ")
                ),
            );
            row(
                "kpid peak RSS by the end of the writes",
                format!("{:.0} MiB", self.mixed_peak_rss_mb),
            );
        }
        if let Some(p) = &self.tenants_phase {
            out.push_str(&p.table());
        }
        out.push_str("  targets:\n");
        for t in &self.targets {
            out.push_str(&format!(
                "    {:<42} {:>9.3} {} {:<7} {}\n",
                t.name,
                t.measured,
                if t.at_most { "≤" } else { "≥" },
                t.bound,
                match (t.judged, t.met) {
                    (false, _) => "(not judged at this size)",
                    (true, true) => "met",
                    (true, false) => "MISSED",
                }
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let xs: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&xs, 0.5), 50.0);
        assert_eq!(quantile(&xs, 0.99), 99.0);
        assert_eq!(quantile(&xs, 1.0), 100.0);
        assert_eq!(quantile(&[7.0], 0.99), 7.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn targets_hold_or_not() {
        let mut r = Results {
            dashboard_ms_kpid: 10.0,
            dashboard_ms_duckdb: Some(30.0),
            compute_p50_us: 400.0,
            empty_rpc_p50_us: 100.0,
            ingest_records_per_s: 90_000.0,
            sled_raw_records_per_s: 160_000.0,
            peak_rss_mb: 900.0,
            restart_to_first_answer_s: 2.0,
            ..Results::default()
        };
        r.judge();
        let met: Vec<(&str, bool)> = r.targets.iter().map(|t| (t.name, t.met)).collect();
        assert!(!r.all_met());
        assert!(!r.targets[3].judged, "memory is a target at 10M records");
        assert_eq!(
            met,
            [
                ("dashboard kpid / DuckDB", true),
                ("Compute p50 / empty RPC p50", false),
                ("ingest / raw sled insert", true),
                ("peak RSS (MiB)", true),
                ("restart to first answer (s)", true),
            ]
        );
        assert!(r.table().contains("MISSED"));
        r.records = 10_000_000;
        r.compute_p50_us = 200.0;
        r.dashboard_compare_ratio = 1.4;
        r.judge();
        assert!(r.all_met());
        assert_eq!(r.targets[5].name, "dashboard compared / uncompared");
        assert!(r.targets.iter().all(|t| t.judged));
    }
}
