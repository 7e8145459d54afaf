//! What kpid's gRPC edge costs per empty RPC (a health `Check`), for a profile under
//! `valgrind --tool=callgrind`, which counts instructions and so gives the same figure on
//! a busy machine as on a quiet one.
//!
//! `edge_cost direct VARIANT N` calls kpid's layer stack N times in process, without the
//! network: VARIANT is `bare` (the services alone, as tonic routes them), `kpid` (every
//! layer, each request counted in flight as on a connection), or `kpid-no-LAYER` with
//! LAYER one of `cors`, `grpc-web`, `observe`, `auth`, `deadline`, `limit`,
//! `concurrency`, `connections`. `edge_cost loopback kpid|bare-tonic N` makes N calls over
//! 127.0.0.1 to kpid's server (`kpi_server::serve`, Prometheus on) or to a bare
//! `tonic::transport::Server` with the health service, client and server on one thread.
//!
//! The tracing subscriber is the bench server's (text to stderr, `info`). Per RPC:
//! the difference of two runs' instruction counts over the difference of their N (see
//! BENCHMARKS.md, "The gRPC edge").

use std::convert::Infallible;
use std::time::Duration;

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use kpi_server::{EdgeLayers, ServerConfig};
use prost::Message as _;
use tonic::body::Body;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tower::{Service, ServiceExt as _};

kpi_server::jemalloc!();

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, variant, calls] = args.as_slice() else {
        bail!("usage: edge_cost direct|loopback VARIANT N");
    };
    let calls: usize = calls.parse().context("N")?;
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
            "direct" => direct(variant, calls).await,
            "loopback" => loopback(variant, calls).await,
            _ => bail!("mode: direct or loopback"),
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

/// A health `Check` as a gRPC request, as a client sends it.
fn check_request() -> http::Request<Body> {
    let message = HealthCheckRequest {
        service: String::new(),
    }
    .encode_to_vec();
    let mut framed = Vec::with_capacity(5 + message.len());
    framed.push(0);
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(&message);
    http::Request::post("http://127.0.0.1/grpc.health.v1.Health/Check")
        .version(http::Version::HTTP_2)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Body::new(
            Full::new(Bytes::from(framed)).map_err(|e: Infallible| -> tonic::Status { match e {} }),
        ))
        .expect("a valid request")
}

async fn direct(variant: &str, calls: usize) -> anyhow::Result<()> {
    let (layers, track) = layers(variant)?;
    let mut service = kpi_server::profiled_edge(&ServerConfig::default(), layers, track).await?;
    for _ in 0..calls {
        let response = service.ready().await?.call(check_request()).await?;
        let collected = response.into_body().collect().await?;
        let ok = collected
            .trailers()
            .and_then(|t| t.get("grpc-status"))
            .is_some_and(|s| s == "0");
        if !ok {
            bail!("the health check did not answer OK");
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
                ..ServerConfig::default()
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
