//! The servers the bench talks to, each its own process on 127.0.0.1 port 0:
//!
//! - kpid: `kpi-bench serve` runs exactly what `kpid serve` runs (the store opened while
//!   health answers NOT_SERVING, `kpi_server::serve_opening` with the same layers, graceful
//!   shutdown on SIGTERM flushing the store), so the bench needs no other binary; with
//!   `--kpid PATH` the bench starts that `kpid` binary instead.
//! - a bare tonic server (`kpi-bench bare-tonic`): `tonic::transport::Server` with only the
//!   gRPC health service, the floor an RPC cannot go below.
//!
//! Each child logs one ready line with its address; the bench reads it, measures the
//! child's memory from `/proc/PID/status`, and stops only that child, by its PID.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use kpi_server::{Limits, ServerConfig};
use kpi_store::{OpenOptions, Store};

use crate::bench::{Bearer, Target};

/// Largest Ingest message the bench's server accepts (`kpid serve --max-message-bytes`).
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// How long a child may take to log its ready line (a 10M-record store reopens first).
const READY_TIMEOUT: Duration = Duration::from_secs(600);

/// A running server child process.
pub(crate) struct Child {
    child: std::process::Child,
    /// The address from its ready line.
    pub(crate) addr: SocketAddr,
    /// From the spawn to its ready line.
    pub(crate) ready_after: Duration,
    logs: Arc<Mutex<Vec<String>>>,
}

/// The address in a ready line (`… ready addr=127.0.0.1:PORT …`).
pub(crate) fn ready_addr(line: &str, marker: &str) -> Option<SocketAddr> {
    if !line.contains(marker) {
        return None;
    }
    let rest = line.split("addr=").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

impl Child {
    /// Starts `program args…` and waits for the stderr line containing `marker`.
    pub(crate) fn spawn(program: &Path, args: &[String], marker: &str) -> anyhow::Result<Child> {
        let spawned = Instant::now();
        let mut child = Command::new(program)
            .args(args)
            .env("RUST_LOG", "info")
            .env_remove("KPID_API_KEYS")
            .env_remove("KPID_MEMORY_BUDGET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let stderr = child.stderr.take().context("stderr is piped")?;
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<String>();
        {
            let logs = logs.clone();
            // Drains the child's stderr for its whole life, keeping the last lines.
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let mut logs = logs.lock().unwrap_or_else(|e| e.into_inner());
                    if logs.len() == 200 {
                        logs.remove(0);
                    }
                    logs.push(line.clone());
                    let _ = tx.send(line);
                }
            });
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        let addr = loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    if let Some(addr) = ready_addr(&line, marker) {
                        break addr;
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!(
                        "{} did not log `{marker}`; its last lines:\n{}",
                        program.display(),
                        logs.lock().unwrap_or_else(|e| e.into_inner()).join("\n")
                    );
                }
            }
        };
        Ok(Child {
            child,
            addr,
            ready_after: spawned.elapsed(),
            logs,
        })
    }

    /// The value of `field` (`sled_ms`, say) in the last of its log lines (kept so far)
    /// that has it, as the text format writes it (`field=value`).
    pub(crate) fn log_field(&self, field: &str) -> Option<String> {
        let logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        let prefix = format!("{field}=");
        logs.iter().rev().find_map(|line| {
            line.split_whitespace()
                .find_map(|word| word.strip_prefix(&prefix))
                .map(str::to_owned)
        })
    }

    /// `field=value` for each of `fields` its log has ([`Child::log_field`]), space-separated.
    pub(crate) fn logged(&self, fields: &[&str]) -> String {
        let logged: Vec<String> = fields
            .iter()
            .filter_map(|f| self.log_field(f).map(|v| format!("{f}={v}")))
            .collect();
        logged.join(" ")
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://ADDR`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Peak resident memory so far (`VmHWM`), in MiB.
    pub(crate) fn peak_rss_mb(&self) -> anyhow::Result<f64> {
        status_kib(self.pid(), "VmHWM:").map(|kib| kib as f64 / 1024.0)
    }

    /// Resident memory now (`VmRSS`), in MiB.
    pub(crate) fn rss_mb(&self) -> anyhow::Result<f64> {
        status_kib(self.pid(), "VmRSS:").map(|kib| kib as f64 / 1024.0)
    }

    /// Sends SIGTERM and waits (at most `grace`) for a clean exit, which it times; kills
    /// it after that.
    pub(crate) fn terminate(mut self, grace: Duration) -> anyhow::Result<Duration> {
        self.stop(grace)
    }

    /// [`Child::terminate`], keeping what it logged ([`Child::log_field`]).
    pub(crate) fn stop(&mut self, grace: Duration) -> anyhow::Result<Duration> {
        let sent_at = Instant::now();
        let pid = self.pid().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        if !sent.is_ok_and(|s| s.success()) {
            self.child.kill().context("killing the server")?;
        }
        let deadline = Instant::now() + grace;
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!(
                        "the server exited with {status}; its last lines:\n{}",
                        self.logs
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .join("\n")
                    );
                }
                return Ok(sent_at.elapsed());
            }
            if Instant::now() > deadline {
                self.child.kill()?;
                self.child.wait()?;
                bail!("the server did not stop within {grace:?} of SIGTERM; killed");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("parsing `{line}`"))
}

/// Bytes the files under `dir` occupy on disk.
pub(crate) fn disk_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_bytes(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

/// How to start kpid: this binary's `serve`, or a `kpid` binary.
#[derive(Debug, Clone)]
pub(crate) enum Kpid {
    /// `kpi-bench serve` (the same code as `kpid serve`).
    Builtin,
    /// `PATH serve …`.
    Binary(PathBuf),
}

impl Kpid {
    /// Starts kpid over the store in `data_dir` with more flags (`--api-keys FILE`,
    /// `--memory-budget BYTES`, `--metrics-addr HOST:PORT`: both servers take them).
    pub(crate) fn start_with(&self, data_dir: &Path, flags: &[String]) -> anyhow::Result<Child> {
        let mut args: Vec<String> = vec![
            "serve".into(),
            "--addr".into(),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--max-message-bytes".into(),
            MAX_MESSAGE_BYTES.to_string(),
        ];
        let program = match self {
            Kpid::Builtin => std::env::current_exe().context("locating kpi-bench")?,
            Kpid::Binary(path) => {
                args.extend(["--log-format".into(), "text".into()]);
                path.clone()
            }
        };
        args.extend(flags.iter().cloned());
        Child::spawn(&program, &args, "kpid ready")
    }
}

/// kpid as deployed, for the bench's phases over one tenant: `kpid serve`'s defaults
/// with authentication on (a keys file holding one generated key, acting as the tenant)
/// and the Prometheus endpoint on (on a free port), so every call passes the layers a
/// production call passes; the clients send the key on every call.
pub(crate) struct DeployedKpid {
    kpid: Kpid,
    flags: Vec<String>,
    /// The key the clients send.
    pub(crate) bearer: Bearer,
}

impl DeployedKpid {
    /// Writes `keys_file` with a new key acting as `tenant`.
    pub(crate) fn new(kpid: Kpid, keys_file: &Path, tenant: &str) -> anyhow::Result<Self> {
        let key = kpi_server::auth::generate_key().context("generating an API key")?;
        let line = kpi_server::auth::key_line(&key, tenant)?;
        std::fs::write(keys_file, line + "\n")
            .with_context(|| format!("writing {}", keys_file.display()))?;
        Ok(Self {
            kpid,
            flags: vec![
                "--api-keys".into(),
                keys_file.display().to_string(),
                "--metrics-addr".into(),
                "127.0.0.1:0".into(),
            ],
            bearer: Bearer::of_key(&key)?,
        })
    }

    /// Its kpids keep their records in the PostgreSQL database at `url` (`--store`; the
    /// data directory they are given stays unused).
    pub(crate) fn on_postgres(mut self, url: &str) -> Self {
        self.flags.extend(["--store".into(), url.to_owned()]);
        self
    }

    /// Starts kpid over the store in `data_dir`.
    pub(crate) fn start(&self, data_dir: &Path) -> anyhow::Result<Child> {
        self.kpid.start_with(data_dir, &self.flags)
    }

    /// Where to call `child` (a server this started, or another server the same clients
    /// call with the same metadata).
    pub(crate) fn target(&self, child: &Child) -> Target {
        Target {
            url: child.url(),
            bearer: self.bearer.clone(),
        }
    }
}

/// Starts the bare tonic server (`kpi-bench bare-tonic`).
pub(crate) fn start_bare_tonic() -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("locating kpi-bench")?;
    Child::spawn(&exe, &["bare-tonic".into()], "bare tonic ready")
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        // Without a SIGTERM handler, Ctrl-C (or being killed) still stops the server.
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// What `kpi-bench serve` is told.
pub(crate) struct ServeOptions {
    pub(crate) addr: SocketAddr,
    pub(crate) data_dir: PathBuf,
    pub(crate) max_message_bytes: usize,
    pub(crate) api_keys: Option<PathBuf>,
    pub(crate) memory_budget: Option<u64>,
    pub(crate) metrics_addr: Option<SocketAddr>,
    /// A PostgreSQL URL (`None`: sled in `data_dir`).
    pub(crate) store: Option<String>,
}

/// `kpi-bench serve`: what `kpid serve --addr A --data-dir D --max-message-bytes N
/// [--api-keys F] [--memory-budget B] [--metrics-addr M] [--store URL]` does (the
/// dashboard page on, as kpid's default).
pub(crate) fn serve_kpid(options: ServeOptions) -> anyhow::Result<()> {
    let ServeOptions {
        addr,
        data_dir,
        max_message_bytes,
        api_keys,
        memory_budget,
        metrics_addr,
        store,
    } = options;
    init_logging();
    let api_keys = match api_keys {
        Some(path) => Some(Arc::new(kpi_server::auth::ApiKeys::load(&path)?)),
        None => None,
    };
    kpi_core::registry().context("the linked metrics are inconsistent")?;
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let config = ServerConfig {
            limits: Limits::with_max_message_bytes(max_message_bytes),
            api_keys,
            metrics_addr,
            dashboard: Some(kpi_server::DashboardPage::default()),
            ..ServerConfig::default()
        };
        let open = async move {
            let dir = data_dir.clone();
            let options = OpenOptions {
                memory_budget,
                ..OpenOptions::default()
            };
            let store = tokio::task::spawn_blocking(move || match store {
                Some(url) => Store::open_postgres(&url, options),
                None => Store::open_with(&dir, options),
            })
            .await?
            .with_context(|| {
                format!(
                    "cannot open the record store (data dir {})",
                    data_dir.display()
                )
            })?;
            tracing::info!(records = store.stats().records, "record store open");
            anyhow::Ok(store)
        };
        kpi_server::serve_opening(open, config, listener, shutdown_signal()).await?;
        anyhow::Ok(())
    })
}

/// `kpi-bench bare-tonic`: tonic's own server with only the health service.
pub(crate) fn serve_bare_tonic() -> anyhow::Result<()> {
    init_logging();
    runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (_reporter, health) = tonic_health::server::health_reporter();
        tracing::info!(addr = %addr, "bare tonic ready");
        tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                shutdown_signal(),
            )
            .await?;
        anyhow::Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_address_of_a_ready_line() {
        let line = "2025-01-01T00:00:00Z  INFO kpid ready addr=127.0.0.1:41234 metrics=39";
        assert_eq!(
            ready_addr(line, "kpid ready"),
            Some("127.0.0.1:41234".parse().unwrap())
        );
        assert_eq!(ready_addr(line, "bare tonic ready"), None);
        assert_eq!(ready_addr("kpid ready", "kpid ready"), None);
    }

    #[test]
    fn measures_its_own_memory_and_a_directory() {
        let kib = status_kib(std::process::id(), "VmHWM:").unwrap();
        assert!(kib > 0);
        let dir = std::env::temp_dir().join(format!("kpi-bench-disk-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/file"), vec![1u8; 10_000]).unwrap();
        assert!(disk_bytes(&dir) >= 10_000);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
