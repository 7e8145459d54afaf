//! kpid: a gRPC service that computes CRM KPIs from stored records or explicit inputs.
//!
//! `kpid serve` opens the record store, listens, logs one `kpid ready addr=…` line once it
//! accepts requests, and shuts down gracefully on SIGTERM or SIGINT (finishing in-flight
//! requests, then flushing the store).

// The metric families register themselves with inventory at link time; a crate nothing
// references is not linked and its metrics would silently vanish.
use kpi_marketing as _;
use kpi_revenue as _;
use kpi_sales as _;
use kpi_success as _;

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use kpi_server::ServerConfig;
use kpi_store::Store;
use tracing_subscriber::EnvFilter;

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
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the ready line says which).
    #[arg(long, env = "KPID_ADDR", default_value = "127.0.0.1:50051")]
    addr: SocketAddr,
    /// Directory of the sled record store (created if missing).
    #[arg(long, env = "KPID_DATA_DIR", default_value = "./kpid-data")]
    data_dir: PathBuf,
    /// File of accepted API keys. Authentication is not enforced yet: without this
    /// flag the server logs that auth is off.
    #[arg(long, env = "KPID_API_KEYS")]
    api_keys: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, env = "KPID_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
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

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let registry = kpi_core::registry().context("the linked metrics are inconsistent")?;
    tracing::info!(metrics = registry.len(), "metric registry built");
    match &args.api_keys {
        None => tracing::warn!(
            "authentication is off: no --api-keys file given, every caller is served as tenant `default`"
        ),
        Some(path) => tracing::warn!(
            path = %path.display(),
            "authentication is not implemented yet: the API keys file is not enforced, every caller is served as tenant `default`"
        ),
    }

    let data_dir = args.data_dir.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&data_dir))
        .await?
        .with_context(|| {
            format!(
                "cannot open the record store in {}",
                args.data_dir.display()
            )
        })?;
    tracing::info!(data_dir = %args.data_dir.display(), records = store.stats().records, "record store open");

    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    kpi_server::serve(ServerConfig::new(store), listener, shutdown_signal()).await?;
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Command::Serve(args) = cli.command;
    init_logging(args.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
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
    use clap::CommandFactory as _;

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
    }

    #[test]
    fn serve_defaults_match_the_spec() {
        let cli = Cli::try_parse_from(["kpid", "serve"]).unwrap();
        let Command::Serve(args) = cli.command;
        if std::env::var_os("KPID_ADDR").is_none() {
            assert_eq!(args.addr, "127.0.0.1:50051".parse().unwrap());
        }
        if std::env::var_os("KPID_DATA_DIR").is_none() {
            assert_eq!(args.data_dir, PathBuf::from("./kpid-data"));
        }
        if std::env::var_os("KPID_LOG_FORMAT").is_none() {
            assert_eq!(args.log_format, LogFormat::Text);
        }
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
        let Command::Serve(args) = cli.command;
        assert_eq!(args.addr.port(), 0);
        assert_eq!(args.api_keys, Some(PathBuf::from("/tmp/keys")));
        assert_eq!(args.log_format, LogFormat::Json);
    }
}
