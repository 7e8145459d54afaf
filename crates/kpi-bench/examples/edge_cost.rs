//! What kpid's gRPC edge costs per empty RPC (a health `Check`) and per Compute, for a
//! profile under `valgrind --tool=callgrind`, which counts instructions and so gives the
//! same figure on a busy machine as on a quiet one.
//!
//! `edge_cost direct VARIANT N` calls kpid's layer stack N times in process, without the
//! network: VARIANT is `bare` (the services alone, as tonic routes them), `kpid` (every
//! layer, each request counted in flight as on a connection), or `kpid-no-LAYER` with
//! LAYER one of `cors`, `grpc-web`, `observe`, `auth`, `deadline`, `limit`,
//! `concurrency`, `connections`. `edge_cost compute VARIANT N [RECORDS]` does the same
//! with the bench's Compute (`sales.win_rate` over 2024 by month) over a store of RECORDS
//! generated records (default 100 000; one untimed Compute first builds what it reads).
//! `edge_cost loopback kpid|bare-tonic N` makes N calls over 127.0.0.1 to kpid's server
//! (`kpi_server::serve`, Prometheus on) or to a bare `tonic::transport::Server` with the
//! health service, client and server on one thread.
//!
//! As the bench runs kpid: authentication on (one API key, its tenant holding the
//! records; every request carries the key), Prometheus on, the tracing subscriber the
//! bench server's (text to stderr, `info`). Per RPC: the difference of two runs'
//! instruction counts over the difference of their N (see BENCHMARKS.md, "The gRPC
//! edge").

use std::convert::Infallible;
use std::time::Duration;

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use kpi_proto::kpi::v1 as pb;
use kpi_server::auth::ApiKeys;
use kpi_server::{EdgeLayers, ServerConfig};
use tonic::body::Body;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tower::{Service, ServiceExt as _};

// The metric families register themselves at link time; the Compute needs them.
use kpi_marketing as _;
use kpi_revenue as _;
use kpi_sales as _;
use kpi_success as _;

kpi_server::jemalloc!();

/// The API key every request carries, and the tenant it acts as.
const KEY: &str = "kpid_edge-cost-key";
const TENANT: &str = "bench";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, variant, calls, records) = match args.as_slice() {
        [mode, variant, calls] => (mode, variant, calls, None),
        [mode, variant, calls, records] => (mode, variant, calls, Some(records)),
        _ => bail!("usage: edge_cost direct|compute|loopback VARIANT N [RECORDS]"),
    };
    let calls: usize = calls.parse().context("N")?;
    let records: usize = records
        .map_or(Ok(100_000), |r| r.parse())
        .context("RECORDS")?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match mode.as_str() {
            "direct" => direct(variant, calls, None).await,
            "compute" => direct(variant, calls, Some(records)).await,
            "loopback" => loopback(variant, calls).await,
            _ => bail!("mode: direct, compute or loopback"),
        }
    })
}

/// The layers and whether requests are counted in flight, for a `direct` variant.
fn layers(variant: &str) -> anyhow::Result<(EdgeLayers, bool)> {
    if variant == "bare" {
        return Ok((EdgeLayers::NONE, false));
    }
    let mut layers = EdgeLayers::ALL;
    let mut track = true;
    match variant.strip_prefix("kpid") {
        Some("") => {}
        Some("-no-cors") => layers.cors = false,
        Some("-no-grpc-web") => layers.grpc_web = false,
        Some("-no-observe") => layers.observe = false,
        Some("-no-auth") => layers.auth = false,
        Some("-no-deadline") => layers.deadline = false,
        Some("-no-limit") => layers.message_limit = false,
        Some("-no-concurrency") => layers.concurrency = false,
        Some("-no-connections") => track = false,
        _ => bail!("unknown variant {variant}"),
    }
    Ok((layers, track))
}

/// The server's configuration: kpid's defaults with the one API key.
fn config() -> anyhow::Result<ServerConfig> {
    let keys = ApiKeys::parse(&kpi_server::auth::key_line(KEY, TENANT)?)?;
    Ok(ServerConfig {
        api_keys: Some(std::sync::Arc::new(keys)),
        ..ServerConfig::default()
    })
}

/// `message` as a gRPC request to `path`, as a client sends it (with the API key).
fn grpc_request(path: &str, message: &impl prost::Message) -> http::Request<Body> {
    let message = message.encode_to_vec();
    let mut framed = Vec::with_capacity(5 + message.len());
    framed.push(0);
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(&message);
    http::Request::post(format!("http://127.0.0.1{path}"))
        .version(http::Version::HTTP_2)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", format!("Bearer {KEY}"))
        .body(Body::new(
            Full::new(Bytes::from(framed)).map_err(|e: Infallible| -> tonic::Status { match e {} }),
        ))
        .expect("a valid request")
}

/// A health `Check`.
fn check_request() -> http::Request<Body> {
    grpc_request(
        "/grpc.health.v1.Health/Check",
        &HealthCheckRequest {
            service: String::new(),
        },
    )
}

/// The bench's Compute: `sales.win_rate` over 2024 by month, UTC.
fn compute_request() -> http::Request<Body> {
    let at = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
    grpc_request(
        "/kpi.v1.MetricsService/Compute",
        &pb::ComputeRequest {
            metric_id: "sales.win_rate".into(),
            start: at(1_704_067_200),
            end: at(1_735_689_600),
            granularity: pb::Granularity::Month.into(),
            time_zone: "UTC".into(),
            ..Default::default()
        },
    )
}

/// A store holding `records` generated records under `tenant`.
fn store_of(records: usize, tenant: &str) -> anyhow::Result<kpi_store::Store> {
    let store = kpi_store::Store::temporary()?;
    let generated = kpi_store::generate::generate(&kpi_store::generate::DemoOptions {
        records,
        ..Default::default()
    });
    for batch in generated.chunks(10_000) {
        store.put(tenant, batch.to_vec())?;
    }
    Ok(store)
}

/// `calls` health checks, or with `records` as many Computes over a store of them (after
/// one untimed Compute).
async fn direct(variant: &str, calls: usize, records: Option<usize>) -> anyhow::Result<()> {
    let (layers, track) = layers(variant)?;
    // Without the auth layer every request is the tenant `default`.
    let tenant = if layers.auth {
        TENANT
    } else {
        kpi_store::DEFAULT_TENANT
    };
    let store = records.map(|n| store_of(n, tenant)).transpose()?;
    let computes = store.is_some();
    let mut service = kpi_server::profiled_edge(&config()?, layers, track, store).await?;
    let request = || {
        if computes {
            compute_request()
        } else {
            check_request()
        }
    };
    for _ in 0..calls + usize::from(computes) {
        let response = service.ready().await?.call(request()).await?;
        let collected = response.into_body().collect().await?;
        let status = collected.trailers().and_then(|t| t.get("grpc-status"));
        if status.is_none_or(|s| s != "0") {
            bail!("the call did not answer OK: {status:?}");
        }
    }
    Ok(())
}

async fn loopback(variant: &str, calls: usize) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stop = async {
        let _ = stop_rx.await;
    };
    let server = match variant {
        "kpid" => {
            let config = ServerConfig {
                metrics_addr: Some("127.0.0.1:0".parse()?),
                ..config()?
            };
            let store = kpi_store::Store::temporary()?;
            tokio::spawn(async move {
                kpi_server::serve(store, config, listener, stop)
                    .await
                    .map_err(anyhow::Error::from)
            })
        }
        "bare-tonic" => {
            let (_reporter, health) = tonic_health::server::health_reporter();
            tokio::spawn(async move {
                let _reporter = _reporter;
                tonic::transport::Server::builder()
                    .add_service(health)
                    .serve_with_incoming_shutdown(
                        tokio_stream::wrappers::TcpListenerStream::new(listener),
                        stop,
                    )
                    .await
                    .map_err(anyhow::Error::from)
            })
        }
        _ => bail!("loopback variant: kpid or bare-tonic"),
    };
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut health = HealthClient::new(channel);
    // kpid answers NOT_SERVING until its store is open: wait for SERVING.
    loop {
        let status = health
            .check(HealthCheckRequest::default())
            .await?
            .into_inner()
            .status;
        if status == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for _ in 0..calls {
        // As kpi-bench sends it: no deadline.
        health.check(HealthCheckRequest::default()).await?;
    }
    drop(health);
    let _ = stop_tx.send(());
    server.await??;
    Ok(())
}
