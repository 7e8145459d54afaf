//! kpid: a gRPC service that computes CRM KPIs from stored records or explicit inputs.
//!
//! `kpid serve` opens the record store, listens, logs one `kpid ready addr=…` line once it
//! accepts requests, and shuts down gracefully on SIGTERM or SIGINT (finishing in-flight
//! requests, then flushing the store). `kpid demo` (or `kpid serve --demo`) serves the same
//! way over a generated CRM dataset. `kpid import`, `kpid metrics` and `kpid compute` are
//! clients of a running server (see the `cli` module); `kpid keys add` makes API keys
//! for `serve --api-keys` (see the `keys` module).
//!
//! The binary is `src/main.rs`: `kpid::run()`. A team that adds its own KPI crate builds its
//! own kpid the same way, with its crate linked in (see `crates/kpi-example-custom`):
//!
//! ```no_run
//! use std::process::ExitCode;
//! // use acme_kpis as _; // the team's metric crate, linked so its metrics register
//!
//! fn main() -> ExitCode {
//!     kpid::run()
//! }
//! ```

// The metric families register themselves with inventory at link time; a crate nothing
// references is not linked and its metrics would silently vanish.
use kpi_marketing as _;
use kpi_revenue as _;
use kpi_sales as _;
use kpi_success as _;

mod byte_size;
mod cli;
mod keys;

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::builder::{Resettable, TypedValueParser as _};
use clap::parser::ValueSource;
use clap::{Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand, ValueEnum};
use kpi_server::auth::ApiKeys;
use kpi_server::{ConnectionLimits, DashboardPage, Limits, ServerConfig, TlsFiles};
use kpi_store::{OpenOptions, Store};
use tracing_subscriber::EnvFilter;

use crate::byte_size::ByteSize;

/// kpid computes CRM KPIs (CAC, CLV, churn, NPS, win rate, MRR…) over gRPC.
#[derive(Debug, Parser)]
#[command(name = "kpid", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the kpi.v1 gRPC API, health checking and reflection.
    Serve(ServeArgs),
    /// Serve like `serve`, over a generated demo CRM dataset in a fresh temporary store.
    Demo(DemoArgs),
    /// Import NDJSON and CSV record files into a running server (RecordsService.Ingest).
    Import(cli::import::ImportArgs),
    /// List the metric catalogue of a running server.
    Metrics(cli::metrics::MetricsArgs),
    /// Compute one metric on a running server.
    Compute(cli::compute::ComputeArgs),
    /// Print a cohort metric's triangle (rows = cohorts, columns = periods since the
    /// cohort's period) from a running server.
    Cohorts(cli::cohorts::CohortsArgs),
    /// Read or change the tenant's settings on a running server (`kpid settings get`,
    /// `kpid settings set --fiscal-year-start 4`).
    Settings(cli::settings::SettingsArgs),
    /// Manage the API keys file of `serve --api-keys` (`kpid keys add`).
    Keys(keys::KeysArgs),
}

#[derive(Debug, Args)]
struct DemoArgs {
    #[command(flatten)]
    serve: ServeArgs,
}

/// The record store's backend (`--store`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum StoreBackend {
    /// The embedded sled database in `--data-dir`.
    Sled,
    /// A PostgreSQL database, by its URL (which may hold a password: never logged).
    Postgres(String),
}

impl std::str::FromStr for StoreBackend {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "sled" {
            Ok(StoreBackend::Sled)
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(StoreBackend::Postgres(s.to_owned()))
        } else {
            Err("expected `sled` or a PostgreSQL URL (postgres://user@host:port/db)".to_owned())
        }
    }
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the ready line says which).
    #[arg(long, env = "KPID_ADDR", default_value = "127.0.0.1:50051")]
    addr: SocketAddr,
    /// Directory of the sled record store (created if missing).
    #[arg(long, env = "KPID_DATA_DIR", default_value = "./kpid-data")]
    data_dir: PathBuf,
    /// Where the records live: `sled` (embedded, in --data-dir) or a PostgreSQL URL
    /// (`postgres://user@host:port/db`), whose schema kpid migrates at start.
    #[arg(
        long,
        env = "KPID_STORE",
        default_value = "sled",
        value_name = "sled|postgres://…"
    )]
    store: StoreBackend,
    /// File of API keys and their tenants (`sha256:<hex> <tenant>` lines, see `kpid keys
    /// add`): every kpi.v1 RPC then needs `authorization: Bearer KEY` and sees only its
    /// tenant's records. Without it auth is off (logged) and every caller is tenant
    /// `default`.
    #[arg(long, env = "KPID_API_KEYS")]
    api_keys: Option<PathBuf>,
    /// Most records in one PutRecords request or one Ingest message; more is
    /// INVALID_ARGUMENT.
    #[arg(
        long,
        env = "KPID_MAX_RECORDS_PER_REQUEST",
        default_value_t = Limits::default().max_records_per_request,
        value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize)
    )]
    max_records_per_request: usize,
    /// Most rows one Compute answer (or one metric of a BatchCompute) may have; more is
    /// RESOURCE_EXHAUSTED.
    #[arg(
        long,
        env = "KPID_MAX_ROWS",
        default_value_t = Limits::default().max_rows,
        value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize)
    )]
    max_rows: usize,
    /// Most kpi.v1 RPCs served at once; one more is answered RESOURCE_EXHAUSTED at once
    /// (load shedding, no queue). Health checks are never shed.
    #[arg(
        long,
        env = "KPID_MAX_CONCURRENT_REQUESTS",
        default_value_t = ServerConfig::DEFAULT_MAX_CONCURRENT_REQUESTS,
        value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize)
    )]
    max_concurrent_requests: usize,
    /// Most kpi.v1 RPCs of one tenant (one API key's) served at once; one more is answered
    /// RESOURCE_EXHAUSTED at once. Default: half of --max-concurrent-requests with
    /// --api-keys, all of it without (every caller is then the tenant `default`).
    #[arg(
        long,
        env = "KPID_MAX_CONCURRENT_REQUESTS_PER_TENANT",
        value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize)
    )]
    max_concurrent_requests_per_tenant: Option<usize>,
    /// PEM certificate chain: serve TLS (needs --tls-key).
    #[arg(long, env = "KPID_TLS_CERT", requires = "tls_key", value_name = "PEM")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "KPID_TLS_KEY", requires = "tls_cert", value_name = "PEM")]
    tls_key: Option<PathBuf>,
    /// PEM CA certificates: require client certificates signed by them (mutual TLS).
    #[arg(
        long,
        env = "KPID_TLS_CLIENT_CA",
        requires = "tls_cert",
        value_name = "PEM"
    )]
    tls_client_ca: Option<PathBuf>,
    /// Longest a request may run, in seconds, whatever its own `grpc-timeout` (a whole
    /// Ingest stream included); past it the answer is DEADLINE_EXCEEDED. Off by default:
    /// set it when untrusted callers could hold streams open.
    #[arg(
        long,
        env = "KPID_REQUEST_TIMEOUT",
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    request_timeout: Option<u64>,
    /// Most client connections open at once (each holds a file descriptor; at most the
    /// open-file limit less 128). At the limit a new connection closes the oldest one that
    /// has not sent its first request, else the longest idle one (GOAWAY), else itself.
    #[arg(
        long,
        env = "KPID_MAX_CONNECTIONS",
        default_value_t = ConnectionLimits::DEFAULT_MAX_CONNECTIONS,
        value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize)
    )]
    max_connections: usize,
    /// Seconds a new connection has to send its first request (HTTP/2 preface or HTTP/1
    /// request line), its TLS handshake included; then it is closed.
    #[arg(
        long,
        env = "KPID_HANDSHAKE_TIMEOUT",
        value_name = "SECONDS",
        default_value_t = ConnectionLimits::DEFAULT_HANDSHAKE_TIMEOUT.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    handshake_timeout: u64,
    /// Seconds a connection may stay with no request in flight; then it is closed
    /// gracefully (GOAWAY for HTTP/2).
    #[arg(
        long,
        env = "KPID_IDLE_TIMEOUT",
        value_name = "SECONDS",
        default_value_t = ConnectionLimits::DEFAULT_IDLE_TIMEOUT.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    idle_timeout: u64,
    /// Log format on stderr.
    #[arg(long, env = "KPID_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Largest request message in bytes (each message of an Ingest stream counts alone);
    /// a larger one is answered RESOURCE_EXHAUSTED. Responses may be as large, and at
    /// least 16 MiB.
    #[arg(
        long,
        env = "KPID_MAX_MESSAGE_BYTES",
        default_value_t = Limits::DEFAULT_MAX_DECODING_MESSAGE_BYTES as u32,
        value_parser = clap::value_parser!(u32).range(1024..)
    )]
    max_message_bytes: u32,
    /// Serve Prometheus metrics on http://HOST:PORT/metrics (off unless given; port 0
    /// picks a free port, logged at startup).
    #[arg(long, env = "KPID_METRICS_ADDR", value_name = "HOST:PORT")]
    metrics_addr: Option<SocketAddr>,
    /// After loading the rows snapshot (which must pass its checksums in any case), also
    /// scan the records in sled and compare: on any difference, log a warning and serve the
    /// scanned rows. The start then takes as long as without a snapshot: an operator's check.
    #[arg(
        long,
        env = "KPID_VERIFY_SNAPSHOT",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    verify_snapshot: bool,
    /// Hold the tenants' query state (each tenant's index, rebuilt from its rows on its
    /// next read) to this many bytes (`512MiB`, `2GB`, `1048576`): beyond it the least
    /// recently read tenants' state is released. Rows are never released. Off unless given.
    #[arg(long, env = "KPID_MEMORY_BUDGET", value_name = "BYTES")]
    memory_budget: Option<ByteSize>,
    /// Serve the dashboard page on `GET /` of the serving port (on by default;
    /// `--dashboard false` turns it off). It holds no data: it calls kpid through
    /// grpc-web like any client, with an API key when --api-keys is set.
    #[arg(
        long,
        env = "KPID_DASHBOARD",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_name = "BOOL",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    dashboard: bool,
    /// Write the index image when kpid stops and read it when it starts (on by default;
    /// `--index-image false` turns it off): a tenant of 50 000 rows or more then answers
    /// its first dashboard after a restart from its index as it was, instead of building
    /// it. The stop takes longer (the parts written since they were last built are built
    /// then), and the file is about the size of the rows snapshot.
    #[arg(
        long,
        env = "KPID_INDEX_IMAGE",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_name = "BOOL",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    index_image: bool,
    /// Load the generated demo dataset (see `kpid demo`) into the store before serving.
    #[arg(long)]
    demo: bool,
    #[command(flatten)]
    dataset: cli::demo::DatasetArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, fields at the top level.
    Json,
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A log line that cannot be written (stderr closed by whoever started kpid) is dropped:
    // reporting it would write to the same closed stderr and panic, taking the server down.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .log_internal_errors(false)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
    }
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!(signal = "SIGINT", "signal received"),
        () = terminate => tracing::info!(signal = "SIGTERM", "signal received"),
    }
}

/// File descriptors kept for other than client connections (the store's files, the
/// listeners, the runtime's own).
const RESERVED_FILES: u64 = 128;

/// The connection limits of the serve flags, after raising the soft open-file limit to
/// the hard one (logged): `--max-connections` is lowered to fit under it.
fn connection_limits(args: &ServeArgs) -> ConnectionLimits {
    let mut max_connections = args.max_connections;
    #[cfg(unix)]
    match kpi_server::raise_open_file_limit() {
        Ok(open_files) => {
            let room = usize::try_from(open_files.saturating_sub(RESERVED_FILES))
                .unwrap_or(usize::MAX)
                .max(1);
            if max_connections > room {
                tracing::warn!(
                    open_files,
                    asked = max_connections,
                    max_connections = room,
                    "the open-file limit is too low for --max-connections: lowered"
                );
                max_connections = room;
            }
            tracing::info!(open_files, max_connections, "open-file limit raised");
        }
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
    ConnectionLimits {
        max_connections,
        handshake_timeout: std::time::Duration::from_secs(args.handshake_timeout),
        idle_timeout: std::time::Duration::from_secs(args.idle_timeout),
    }
}

/// The dashboard page of the serve flags: none with `--dashboard false`; over the demo,
/// opening on the demo's last year, which the page compares with the year before.
fn dashboard_page(args: &ServeArgs) -> Option<DashboardPage> {
    if !args.dashboard {
        return None;
    }
    if args.demo {
        let (first, end) = cli::demo::window(&args.dataset.options());
        let last_year = end
            .to_zoned(jiff::tz::TimeZone::UTC)
            .checked_sub(jiff::Span::new().years(1))
            .map_or(first, |zoned| zoned.timestamp().max(first));
        return Some(DashboardPage::suggesting(last_year, end));
    }
    Some(DashboardPage::default())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let registry = kpi_core::registry().context("the linked metrics are inconsistent")?;
    tracing::info!(metrics = registry.len(), "metric registry built");
    let api_keys = match &args.api_keys {
        None => {
            tracing::warn!(
                "authentication is off: no --api-keys file given, every caller is served as tenant `default`"
            );
            None
        }
        Some(path) => {
            let keys = ApiKeys::load(path)?;
            tracing::info!(
                path = %path.display(),
                keys = keys.len(),
                tenants = keys.tenants().join(","),
                "authentication on: every kpi.v1 call needs an API key"
            );
            Some(Arc::new(keys))
        }
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: args.tls_client_ca.clone(),
        }),
        _ => None,
    };

    // Listen first: health answers NOT_SERVING while the store opens (and the demo loads).
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let addr = listener
        .local_addr()
        .context("the listener has no address")?;
    let config = ServerConfig {
        limits: Limits {
            max_rows: args.max_rows,
            max_records_per_request: args.max_records_per_request,
            ..Limits::with_max_message_bytes(args.max_message_bytes as usize)
        },
        metrics_addr: args.metrics_addr,
        api_keys,
        max_concurrent_requests: args.max_concurrent_requests,
        max_concurrent_requests_per_tenant: args.max_concurrent_requests_per_tenant,
        tls,
        request_timeout: args.request_timeout.map(std::time::Duration::from_secs),
        connections: connection_limits(&args),
        dashboard: dashboard_page(&args),
        ..ServerConfig::default()
    };
    let open = async move {
        let data_dir = args.data_dir.clone();
        let options = OpenOptions {
            verify_snapshot: args.verify_snapshot,
            memory_budget: args.memory_budget.map(|b| b.0),
            no_index_image: !args.index_image,
        };
        let store = match args.store.clone() {
            StoreBackend::Sled => {
                tokio::task::spawn_blocking(move || Store::open_with(&data_dir, options))
                    .await?
                    .with_context(|| {
                        format!(
                            "cannot open the record store in {}",
                            args.data_dir.display()
                        )
                    })?
            }
            StoreBackend::Postgres(url) => {
                tokio::task::spawn_blocking(move || Store::open_postgres(&url, options))
                    .await?
                    .context("cannot open the record store in PostgreSQL")?
            }
        };
        match &args.store {
            StoreBackend::Sled => {
                tracing::info!(data_dir = %args.data_dir.display(), records = store.stats().records, "record store open")
            }
            StoreBackend::Postgres(_) => {
                tracing::info!(
                    backend = "postgres",
                    records = store.stats().records,
                    "record store open"
                )
            }
        }
        if args.demo {
            cli::demo::load(&store, &args.dataset, addr).await?;
        }
        anyhow::Ok(store)
    };
    kpi_server::serve_opening(open, config, listener, shutdown_signal()).await?;
    Ok(())
}

/// The command line: the derived parser, with `kpid demo`'s take on the serve flags (the
/// demo is implied, and the data dir is a fresh temporary one unless given on the
/// command line: never `KPID_DATA_DIR`, which may name a real store).
fn command() -> clap::Command {
    Cli::command().mut_subcommand("demo", |demo| {
        demo.mut_arg("demo", |arg| arg.hide(true))
            .mut_arg("records", |arg| arg.requires(Resettable::Reset))
            .mut_arg("seed", |arg| arg.requires(Resettable::Reset))
            .mut_arg("data_dir", |arg| {
                arg.env(None).hide_default_value(true).help(
                    "Directory of the record store to load the demo into [default: a fresh temporary directory, removed on exit]",
                )
            })
    })
}

/// Runs the kpid command line (`serve`, `demo`, `import`, `metrics`, `compute`, `keys`) with
/// every metric crate linked into the calling binary, and returns its exit code.
pub fn run() -> ExitCode {
    let matches = command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match cli.command {
        Command::Serve(args) => {
            init_logging(args.log_format);
            run_server(args)
        }
        Command::Demo(DemoArgs { mut serve }) => {
            init_logging(serve.log_format);
            serve.demo = true;
            let given = matches
                .subcommand_matches("demo")
                .and_then(|m| m.value_source("data_dir"));
            if given == Some(ValueSource::CommandLine) {
                return run_server(serve);
            }
            let temp = match cli::demo::temporary_data_dir() {
                Ok(temp) => temp,
                Err(e) => {
                    tracing::error!(error = %e, "cannot create a temporary data directory");
                    return ExitCode::FAILURE;
                }
            };
            serve.data_dir = temp.path().to_owned();
            tracing::info!(data_dir = %serve.data_dir.display(), "demo store in a fresh temporary directory, removed on exit");
            let code = run_server(serve);
            drop(temp);
            code
        }
        Command::Import(args) => run_client(cli::import::run(args)),
        Command::Metrics(args) => run_client(cli::metrics::run(args)),
        Command::Compute(args) => run_client(cli::compute::run(args)),
        Command::Cohorts(args) => run_client(cli::cohorts::run(args)),
        Command::Settings(args) => run_client(cli::settings::run(args)),
        Command::Keys(args) => keys::run(args),
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// Runs a client subcommand to its exit code.
fn run_client(task: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    match runtime() {
        Ok(runtime) => runtime.block_on(task),
        Err(e) => cli::fail(format!("cannot start the async runtime: {e}")),
    }
}

/// Serves until shutdown (logging is on).
fn run_server(args: ServeArgs) -> ExitCode {
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = describe(&e), "kpid failed");
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, `: `-separated, leaving out a cause whose text the previous
/// message already ends with (error types that print their source themselves).
fn describe(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.ends_with(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_described_once_per_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let wrapped = anyhow::Error::new(io).context("storage: no such file");
        let e = wrapped.context("cannot open the record store in /x");
        assert_eq!(
            describe(&e),
            "cannot open the record store in /x: storage: no such file"
        );
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
        command().debug_assert();
    }

    fn parse(argv: &[&str]) -> Result<(Cli, clap::ArgMatches), clap::Error> {
        let matches = command().try_get_matches_from(argv)?;
        Ok((Cli::from_arg_matches(&matches)?, matches))
    }

    #[test]
    fn serve_loads_the_demo_only_when_asked() {
        let (cli, _) =
            parse(&["kpid", "serve", "--demo", "--records", "500", "--seed", "7"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("{cli:?}")
        };
        assert!(args.demo);
        assert_eq!((args.dataset.records, args.dataset.seed), (500, 7));
        let (cli, _) = parse(&["kpid", "serve"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("{cli:?}")
        };
        assert!(!args.demo);
        let err = parse(&["kpid", "serve", "--records", "500"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn the_dashboard_is_on_unless_turned_off() {
        let serve_args = |argv: &[&str]| match parse(argv).unwrap().0.command {
            Command::Serve(args) | Command::Demo(DemoArgs { serve: args }) => args,
            command => panic!("{command:?}"),
        };
        assert!(serve_args(&["kpid", "serve"]).dashboard);
        assert!(serve_args(&["kpid", "demo"]).dashboard);
        assert!(!serve_args(&["kpid", "serve", "--dashboard", "false"]).dashboard);
        assert!(!serve_args(&["kpid", "demo", "--dashboard=0"]).dashboard);
        assert!(dashboard_page(&serve_args(&["kpid", "serve", "--dashboard", "off"])).is_none());
        assert_eq!(
            dashboard_page(&serve_args(&["kpid", "serve"])),
            Some(DashboardPage::default())
        );
    }

    #[test]
    fn demo_takes_the_serve_flags_and_its_own_data_dir() {
        let (cli, matches) =
            parse(&["kpid", "demo", "--addr", "127.0.0.1:0", "--records", "100"]).unwrap();
        let Command::Demo(DemoArgs { serve }) = cli.command else {
            panic!("{cli:?}")
        };
        assert_eq!(serve.addr.port(), 0);
        assert_eq!(serve.dataset.records, 100);
        let demo = matches.subcommand_matches("demo").unwrap();
        assert_ne!(
            demo.value_source("data_dir"),
            Some(ValueSource::CommandLine)
        );

        let (_, matches) = parse(&["kpid", "demo", "--data-dir", "/tmp/d"]).unwrap();
        let demo = matches.subcommand_matches("demo").unwrap();
        assert_eq!(
            demo.value_source("data_dir"),
            Some(ValueSource::CommandLine)
        );
    }

    #[test]
    fn client_subcommands_parse() {
        let (cli, _) = parse(&[
            "kpid",
            "import",
            "--addr",
            "h:1",
            "a.ndjson",
            "deals.csv",
            "--fail-on-reject",
        ])
        .unwrap();
        assert!(matches!(cli.command, Command::Import(_)), "{cli:?}");
        let (cli, _) =
            parse(&["kpid", "metrics", "--family", "sales", "--format", "json"]).unwrap();
        assert!(matches!(cli.command, Command::Metrics(_)), "{cli:?}");
        let (cli, _) =
            parse(&["kpid", "compute", "marketing.cac", "--input", "spend=10000"]).unwrap();
        assert!(matches!(cli.command, Command::Compute(_)), "{cli:?}");
        assert!(parse(&["kpid", "import"]).is_err(), "import needs a file");
    }

    #[test]
    fn serve_defaults_match_the_spec() {
        let cli = Cli::try_parse_from(["kpid", "serve"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve: {cli:?}")
        };
        if std::env::var_os("KPID_ADDR").is_none() {
            assert_eq!(args.addr, "127.0.0.1:50051".parse().unwrap());
        }
        if std::env::var_os("KPID_DATA_DIR").is_none() {
            assert_eq!(args.data_dir, PathBuf::from("./kpid-data"));
        }
        if std::env::var_os("KPID_LOG_FORMAT").is_none() {
            assert_eq!(args.log_format, LogFormat::Text);
        }
        if std::env::var_os("KPID_MAX_MESSAGE_BYTES").is_none() {
            assert_eq!(args.max_message_bytes, 4 * 1024 * 1024);
        }
        if std::env::var_os("KPID_METRICS_ADDR").is_none() {
            assert_eq!(
                args.metrics_addr, None,
                "the metrics endpoint is off by default"
            );
        }
    }

    #[test]
    fn ecosystem_flags_parse() {
        let cli = Cli::try_parse_from([
            "kpid",
            "serve",
            "--max-message-bytes",
            "65536",
            "--metrics-addr",
            "127.0.0.1:9464",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve: {cli:?}")
        };
        assert_eq!(args.max_message_bytes, 65536);
        assert_eq!(args.metrics_addr, Some("127.0.0.1:9464".parse().unwrap()));
        assert!(Cli::try_parse_from(["kpid", "serve", "--max-message-bytes", "10"]).is_err());
        assert!(Cli::try_parse_from(["kpid", "serve", "--metrics-addr", "localhost"]).is_err());
    }

    #[test]
    fn security_flags_parse_with_safe_defaults() {
        let cli = Cli::try_parse_from(["kpid", "serve"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve: {cli:?}")
        };
        if std::env::var_os("KPID_MAX_ROWS").is_none() {
            assert_eq!(args.max_rows, 100_000);
        }
        if std::env::var_os("KPID_MAX_RECORDS_PER_REQUEST").is_none() {
            assert_eq!(args.max_records_per_request, 10_000);
        }
        if std::env::var_os("KPID_MAX_CONCURRENT_REQUESTS").is_none() {
            assert_eq!(args.max_concurrent_requests, 256);
        }
        let cli = Cli::try_parse_from([
            "kpid",
            "serve",
            "--max-rows",
            "5",
            "--max-records-per-request",
            "7",
            "--max-concurrent-requests",
            "2",
            "--max-concurrent-requests-per-tenant",
            "1",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
            "--tls-client-ca",
            "ca.pem",
            "--request-timeout",
            "30",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve: {cli:?}")
        };
        assert_eq!(
            (
                args.max_rows,
                args.max_records_per_request,
                args.max_concurrent_requests
            ),
            (5, 7, 2)
        );
        assert_eq!(args.max_concurrent_requests_per_tenant, Some(1));
        assert_eq!(args.tls_client_ca, Some(PathBuf::from("ca.pem")));
        assert_eq!(args.request_timeout, Some(30));
        for bad in [
            &["kpid", "serve", "--tls-cert", "c.pem"][..],
            &["kpid", "serve", "--tls-client-ca", "ca.pem"],
            &["kpid", "serve", "--max-concurrent-requests", "0"],
            &["kpid", "serve", "--max-concurrent-requests-per-tenant", "0"],
            &["kpid", "serve", "--max-rows", "0"],
            &["kpid", "serve", "--request-timeout", "0"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
        let cli = Cli::try_parse_from(["kpid", "keys", "add", "--file", "k", "--tenant", "acme"])
            .unwrap();
        assert!(matches!(cli.command, Command::Keys(_)), "{cli:?}");
        assert!(Cli::try_parse_from(["kpid", "keys", "add", "--file", "k"]).is_err());
    }

    #[test]
    fn flags_parse() {
        let cli = Cli::try_parse_from([
            "kpid",
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--data-dir",
            "/tmp/x",
            "--api-keys",
            "/tmp/keys",
            "--log-format",
            "json",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve: {cli:?}")
        };
        assert_eq!(args.addr.port(), 0);
        assert_eq!(args.api_keys, Some(PathBuf::from("/tmp/keys")));
        assert_eq!(args.log_format, LogFormat::Json);
    }

    #[test]
    fn verify_snapshot_is_off_unless_asked() {
        let verify = |argv: &[&str]| {
            let (cli, _) = parse(argv).unwrap();
            match cli.command {
                Command::Serve(args) | Command::Demo(DemoArgs { serve: args }) => {
                    args.verify_snapshot
                }
                other => panic!("not serve: {other:?}"),
            }
        };
        if std::env::var_os("KPID_VERIFY_SNAPSHOT").is_none() {
            assert!(!verify(&["kpid", "serve"]));
        }
        assert!(verify(&["kpid", "serve", "--verify-snapshot"]));
        assert!(verify(&["kpid", "demo", "--verify-snapshot"]));
        assert!(parse(&["kpid", "serve", "--verify-snapshot=maybe"]).is_err());
    }

    #[test]
    fn the_index_image_is_on_unless_turned_off() {
        let image = |argv: &[&str]| {
            let (cli, _) = parse(argv).unwrap();
            match cli.command {
                Command::Serve(args) => args.index_image,
                other => panic!("not serve: {other:?}"),
            }
        };
        if std::env::var_os("KPID_INDEX_IMAGE").is_none() {
            assert!(image(&["kpid", "serve"]));
        }
        assert!(!image(&["kpid", "serve", "--index-image", "false"]));
        assert!(image(&["kpid", "serve", "--index-image", "true"]));
        assert!(parse(&["kpid", "serve", "--index-image", "maybe"]).is_err());
    }

    #[test]
    fn memory_budget_takes_a_size() {
        let budget = |argv: &[&str]| {
            let (cli, _) = parse(argv).unwrap();
            match cli.command {
                Command::Serve(args) => args.memory_budget.map(|b| b.0),
                other => panic!("not serve: {other:?}"),
            }
        };
        if std::env::var_os("KPID_MEMORY_BUDGET").is_none() {
            assert_eq!(budget(&["kpid", "serve"]), None);
        }
        assert_eq!(
            budget(&["kpid", "serve", "--memory-budget", "512MiB"]),
            Some(512 << 20)
        );
        assert!(parse(&["kpid", "serve", "--memory-budget", "lots"]).is_err());
    }
}
