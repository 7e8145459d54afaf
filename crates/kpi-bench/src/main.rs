//! kpi-bench: kpid's benchmark, in one run.
//!
//! 1. generates a realistic CRM dataset (`kpi_store::generate`, N records over every kind);
//! 2. inserts it into a bare sled tree with one flush (the baseline) and exports it to CSV
//!    for DuckDB;
//! 3. ingests it through the `Ingest` stream of a real kpid on 127.0.0.1 (durable
//!    acknowledgements), `--batch` records per message;
//! 4. computes the dashboard — every metric kpid lists, one year by month — through
//!    `BatchCompute`: one untimed run, then `--runs` timed ones (median, p99);
//! 5. times an empty unary RPC (gRPC health Check) and a single-metric `Compute` on the
//!    same connection, in turn with the empty RPC on a bare tonic server (so each ratio
//!    compares calls made at the same moment);
//! 6. the mixed phase (`mixed.rs`): single Computes and dashboards with no writes, then
//!    during a steady stream of writes, then a read right after a single write of each kind;
//! 7. records kpid's peak RSS and on-disk size, then restarts it over the stored records
//!    and times its first answer, and restarts it again and times its first dashboard;
//! 8. the tenants phase (`tenants.rs`): many tenants with their API keys, what each holds
//!    beyond its rows, its first and later Computes, and the memory budget;
//! 9. runs the same dashboard in DuckDB (the PyPI package, in a venv under the output
//!    directory; SQL following METRICS.md in `duckdb_dashboard.py`), warm, median, and
//!    checks that DuckDB's inputs and values equal kpid's;
//! 10. writes `results.json` and prints a table with the targets.
//!
//! `cargo run --release -p kpi-bench -- --records 1000000`; the CI smoke run is
//! `cargo run -p kpi-bench -- --records 20000 --quick`. Timings are never asserted; a
//! disagreement between DuckDB and kpid fails the run.

// The metric families register themselves at link time; the built-in server needs them.
use kpi_marketing as _;
use kpi_revenue as _;
use kpi_sales as _;
use kpi_success as _;

mod bench;
mod compare;
mod export;
mod mixed;
mod postgres;
mod proto;
mod report;
mod server;
mod tenants;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// kpid's benchmark: ingest, dashboard and RPC overhead against sled, DuckDB and a bare
/// tonic RPC.
#[derive(Debug, Parser)]
#[command(
    name = "kpi-bench",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve kpid like `kpid serve` (the bench starts this as its server).
    #[command(hide = true)]
    Serve(ServeArgs),
    /// Serve a bare tonic server with only the health service.
    #[command(hide = true)]
    BareTonic,
    /// Time restarts of kpid over an existing data directory: to the first Compute
    /// answer, and (a second start) to the first dashboard, `--runs` times each.
    Restart(RestartArgs),
}

#[derive(Debug, Args)]
struct RestartArgs {
    /// The data directory of a stopped kpid (`kpi-store`'s `memory` example writes one).
    #[arg(long)]
    data_dir: PathBuf,
    /// Benchmark this `kpid` binary instead of the built-in server.
    #[arg(long)]
    kpid: Option<PathBuf>,
    /// Restarts of each kind.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    #[arg(long)]
    data_dir: PathBuf,
    #[arg(long, default_value_t = server::MAX_MESSAGE_BYTES)]
    max_message_bytes: usize,
    /// The API keys file, as `kpid serve --api-keys`.
    #[arg(long)]
    api_keys: Option<PathBuf>,
    /// The memory budget in bytes, as `kpid serve --memory-budget`.
    #[arg(long)]
    memory_budget: Option<u64>,
    /// The Prometheus endpoint, as `kpid serve --metrics-addr`.
    #[arg(long)]
    metrics_addr: Option<SocketAddr>,
    /// A PostgreSQL URL, as `kpid serve --store` (default: sled in --data-dir).
    #[arg(long)]
    store: Option<String>,
}

/// What one benchmark run does.
#[derive(Debug, Clone, Args)]
pub(crate) struct RunArgs {
    /// Records to generate, over every kind.
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) records: usize,
    /// Quick mode for CI: few timed runs and calls (use with a small --records).
    #[arg(long)]
    pub(crate) quick: bool,
    /// Timed dashboard runs (default 10; 3 in quick mode).
    #[arg(long)]
    pub(crate) runs: Option<usize>,
    /// Sequential calls timed for each RPC (default 2000; 200 in quick mode).
    #[arg(long)]
    pub(crate) rpc_calls: Option<usize>,
    /// Records per Ingest message.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) batch: usize,
    /// The generator's seed.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// The open data model's dataset: three custom attributes on every customer and deal,
    /// and activities for every deal (compare a run with and one without).
    #[arg(long)]
    pub(crate) attributes: bool,
    /// Where the data, the venv and results.json go.
    #[arg(long, default_value = default_out())]
    pub(crate) out: PathBuf,
    /// Benchmark this `kpid` binary instead of the built-in server (same code).
    #[arg(long)]
    pub(crate) kpid: Option<PathBuf>,
    /// Skip DuckDB (no venv, no PyPI).
    #[arg(long)]
    pub(crate) no_duckdb: bool,
    /// The Python that creates the venv.
    #[arg(long, default_value = "python3")]
    pub(crate) python: String,
    /// DuckDB's threads (default: the machine's cores).
    #[arg(long)]
    pub(crate) duckdb_threads: Option<usize>,
    /// Seconds of the mixed phase's readers alone, before the writes (default 20; 2 in
    /// quick mode).
    #[arg(long)]
    pub(crate) quiet_secs: Option<u64>,
    /// Seconds of the mixed phase's readers during writes (default 60; 4 in quick mode).
    #[arg(long)]
    pub(crate) mixed_secs: Option<u64>,
    /// The mixed phase's write rate, records a second (batches of 1–50).
    #[arg(long, default_value_t = 250.0)]
    pub(crate) write_rate: f64,
    /// Single writes of each kind, each followed by a read (default 30; 3 in quick mode).
    #[arg(long)]
    pub(crate) read_after_write_rounds: Option<usize>,
    /// Skip the mixed phase.
    #[arg(long)]
    pub(crate) no_mixed: bool,
    /// Keep kpid's data directory (`OUT/kpid-data`)
    /// after the run, for `kpi-bench restart --data-dir OUT/kpid-data`.
    #[arg(long)]
    pub(crate) keep_data: bool,
    /// Tenants of the tenants phase, each with its API key (default 1000; 20 in quick
    /// mode; the figure is 10000; 0 skips the phase).
    #[arg(long)]
    pub(crate) tenants: Option<usize>,
    /// Records per tenant in the tenants phase.
    #[arg(long, default_value_t = 1000)]
    pub(crate) tenant_records: usize,
    /// Run on the PostgreSQL backend: kpid gets `--store` with a database the run creates
    /// on this server (`postgres://user@host:port/db`, `db` any database the user may
    /// connect to) and drops at the end. Ingest is compared with `COPY` of the same rows
    /// into that database, and a second replica's lag is measured; the sled floor, the
    /// restarts over a data directory and the tenants phase are skipped.
    #[arg(long, value_name = "postgres://…")]
    pub(crate) store: Option<String>,
    /// Writes on replica A in the replica lag phase (default 1000; 50 in quick mode).
    #[arg(long)]
    pub(crate) lag_writes: Option<usize>,
}

fn default_out() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/bench")
}

kpi_server::jemalloc!();

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Some(Command::Serve(a)) => server::serve_kpid(server::ServeOptions {
            addr: a.addr,
            data_dir: a.data_dir,
            max_message_bytes: a.max_message_bytes,
            api_keys: a.api_keys,
            memory_budget: a.memory_budget,
            metrics_addr: a.metrics_addr,
            store: a.store,
        }),
        Some(Command::BareTonic) => server::serve_bare_tonic(),
        Some(Command::Restart(a)) => bench::restarts(&a.data_dir, a.kpid, a.runs),
        None => bench::run(&cli.run),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kpi-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
