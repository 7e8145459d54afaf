//! `serve_opening` on a loopback port, in-process: health while the store opens and from
//! the shutdown signal on, and a deadline that stops a slow computation. One test metric
//! is linked: `testkit.slow`, which takes 20 ms per row and counts its evaluations.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kpi_core::{
    percent, Direction, InputKind, InputSpec, Inputs, Measure, Metric, MetricDescriptor,
    MetricError, Params, Unit, Value,
};
use kpi_proto::kpi::v1 as pb;
use kpi_proto::kpi::v1::metrics_service_client::MetricsServiceClient;
use kpi_server::ServerConfig;
use kpi_store::Store;
use tokio::net::TcpListener;
use tonic::transport::Channel;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// How many rows `testkit.slow` has evaluated, over the whole test binary.
static SLOW_EVALUATIONS: AtomicUsize = AtomicUsize::new(0);
const SLOW_ROW: Duration = Duration::from_millis(20);

struct Slow;

static SLOW: MetricDescriptor = MetricDescriptor {
    id: "testkit.slow",
    name: "Slow win share",
    family: "testkit",
    description: "won / (won + lost) × 100, taking 20 ms per row (test metric).",
    formula: "won / (won + lost) × 100",
    unit: Unit::Percent,
    direction: Direction::HigherIsBetter,
    inputs: &[
        InputSpec::stored("won", "deals won", InputKind::Count, Measure::DealsWon),
        InputSpec::stored("lost", "deals lost", InputKind::Count, Measure::DealsLost),
    ],
    params: &[],
    dimensions: &[],
    default_group_by: &[],
};

impl Metric for Slow {
    fn descriptor(&self) -> &'static MetricDescriptor {
        &SLOW
    }

    fn evaluate(&self, inputs: &Inputs, _params: &Params) -> Result<Value, MetricError> {
        std::thread::sleep(SLOW_ROW);
        SLOW_EVALUATIONS.fetch_add(1, Ordering::SeqCst);
        let won = inputs.get("won")?;
        let lost = inputs.get("lost")?;
        percent(won, won + lost, "no deals were closed")
    }
}

kpi_core::register_metric!(Slow);

fn ts(text: &str) -> Option<prost_types::Timestamp> {
    let t: jiff::Timestamp = text.parse().unwrap();
    Some(prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: t.subsec_nanosecond(),
    })
}

async fn channel(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn health_of(health: &mut HealthClient<Channel>, service: &str) -> ServingStatus {
    health
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_not_serving_until_the_store_is_open_and_from_shutdown_on() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (open_tx, open_rx) = tokio::sync::oneshot::channel::<Store>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let config = ServerConfig {
        shutdown_grace: Duration::from_secs(2),
        ..ServerConfig::default()
    };
    let server = tokio::spawn(kpi_server::serve_opening(
        open_rx,
        config,
        listener,
        async {
            let _ = stop_rx.await;
        },
    ));

    let channel = channel(addr).await;
    let mut health = HealthClient::new(channel.clone());
    let mut metrics = MetricsServiceClient::new(channel.clone());
    for service in ["", "kpi.v1.MetricsService", "kpi.v1.RecordsService"] {
        assert_eq!(
            health_of(&mut health, service).await,
            ServingStatus::NotServing,
            "{service:?} while the store opens"
        );
    }
    let early = metrics
        .list_metrics(pb::ListMetricsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(early.code(), Code::Unavailable, "{early:?}");

    open_tx.send(Store::temporary().unwrap()).unwrap();
    let started = Instant::now();
    while health_of(&mut health, "").await != ServingStatus::Serving {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "SERVING once open"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for service in ["kpi.v1.MetricsService", "kpi.v1.RecordsService"] {
        assert_eq!(
            health_of(&mut health, service).await,
            ServingStatus::Serving
        );
    }
    let listed = metrics
        .list_metrics(pb::ListMetricsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.metrics[0].id, "testkit.slow");

    // A Watch stream in flight sees the shutdown signal turn the status NOT_SERVING.
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "kpi.v1.MetricsService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status(), ServingStatus::Serving);
    stop_tx.send(()).unwrap();
    let next = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .expect("a status change")
        .unwrap()
        .expect("the stream is open");
    assert_eq!(next.status(), ServingStatus::NotServing);

    drop((watch, health, metrics, channel));
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("serve stops after the signal")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_failed_open_is_an_error_and_the_server_stops() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let outcome = tokio::time::timeout(
        Duration::from_secs(10),
        kpi_server::serve_opening(
            async { Err::<Store, _>(std::io::Error::other("disk on fire")) },
            ServerConfig::default(),
            listener,
            std::future::pending(),
        ),
    )
    .await
    .expect("serve gives up");
    let error = outcome.unwrap_err();
    assert!(
        matches!(error, kpi_server::ServeError::Open(_)),
        "{error:?}"
    );
    assert_eq!(error.to_string(), "disk on fire");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passed_deadline_answers_deadline_exceeded_and_stops_the_engine() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(kpi_server::serve(
        Store::temporary().unwrap(),
        ServerConfig::default(),
        listener,
        async {
            let _ = stop_rx.await;
        },
    ));
    // tonic's Channel enforces grpc-timeout on the client side too (and answers itself,
    // CANCELLED); a plain hyper HTTP/2 client shows what the server answers.
    let plain = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<tonic::body::Body>();
    let mut metrics =
        MetricsServiceClient::with_origin(plain, format!("http://{addr}").parse().unwrap());

    // 120 monthly rows at 20 ms each would take 2.4 s; the caller gives it 200 ms.
    let mut request = tonic::Request::new(pb::ComputeRequest {
        metric_id: "testkit.slow".into(),
        start: ts("2015-01-01T00:00:00Z"),
        end: ts("2025-01-01T00:00:00Z"),
        granularity: pb::Granularity::Month.into(),
        ..Default::default()
    });
    request.set_timeout(Duration::from_millis(200));
    let asked = Instant::now();
    let status = metrics.compute(request).await.unwrap_err();
    let answered = asked.elapsed();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(status.message().contains("deadline"), "{status:?}");
    assert!(
        answered < Duration::from_millis(1500),
        "answered at the deadline, not after the work: {answered:?}"
    );

    // The engine saw the cancellation flag and stopped between rows.
    tokio::time::sleep(SLOW_ROW * 5).await;
    let settled = SLOW_EVALUATIONS.load(Ordering::SeqCst);
    tokio::time::sleep(SLOW_ROW * 15).await;
    let later = SLOW_EVALUATIONS.load(Ordering::SeqCst);
    assert_eq!(settled, later, "no rows evaluated after the deadline");
    assert!(later < 120, "{later} of 120 rows evaluated");

    // Without a deadline the same request completes.
    let answer = metrics
        .compute(pb::ComputeRequest {
            metric_id: "testkit.slow".into(),
            start: ts("2024-01-01T00:00:00Z"),
            end: ts("2024-04-01T00:00:00Z"),
            granularity: pb::Granularity::Month.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.rows.len(), 3);

    drop(metrics);
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
