//! gRPC ecosystem conventions and observability of the real `kpid` binary: grpc-web over
//! HTTP/1.1 with CORS, gzip and zstd both ways, deadlines, message limits, the Prometheus
//! endpoint, the RPC span in JSON logs, and the dashboard page beside the RPCs.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Buf as _, BufMut as _, Bytes};
use common::{customer, Kpid};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use kpi_proto::kpi::v1 as pb;
use kpi_proto::kpi::v1::metrics_service_client::MetricsServiceClient;
use kpi_proto::kpi::v1::records_service_client::RecordsServiceClient;
use prost::Message as _;
use tonic::codec::CompressionEncoding;
use tonic::Code;

/// One HTTP/1.1 request on a fresh connection (hyper's low-level client).
async fn http1(addr: SocketAddr, request: http::Request<Full<Bytes>>) -> http::Response<Bytes> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_11);
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    http::Response::from_parts(parts, body)
}

/// `message` as one length-prefixed gRPC frame.
fn frame(message: &impl prost::Message) -> Bytes {
    let encoded = message.encode_to_vec();
    let mut framed = Vec::with_capacity(encoded.len() + 5);
    framed.put_u8(0);
    framed.put_u32(encoded.len() as u32);
    framed.extend(encoded);
    framed.into()
}

/// The grpc-web response body's frames: (flag, payload); flag 0x80 is the trailers frame.
fn frames(mut body: Bytes) -> Vec<(u8, Bytes)> {
    let mut frames = Vec::new();
    while body.has_remaining() {
        let flag = body.get_u8();
        let len = body.get_u32() as usize;
        frames.push((flag, body.split_to(len)));
    }
    frames
}

fn grpc_web_post(addr: SocketAddr, path: &str, body: Bytes) -> http::Request<Full<Bytes>> {
    http::Request::post(format!("http://{addr}{path}"))
        .header(http::header::HOST, addr.to_string())
        .header(http::header::CONTENT_TYPE, "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header(http::header::ORIGIN, "http://dashboard.example")
        .body(Full::new(body))
        .unwrap()
}

#[tokio::test]
async fn a_browser_calls_over_grpc_web_on_http1() {
    let kpid = Kpid::start();

    // CORS preflight, as a page on another origin sends it.
    let preflight = http::Request::options(format!(
        "http://{}/kpi.v1.MetricsService/ListMetrics",
        kpid.addr
    ))
    .header(http::header::HOST, kpid.addr.to_string())
    .header(http::header::ORIGIN, "http://dashboard.example")
    .header(http::header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
    .header(
        http::header::ACCESS_CONTROL_REQUEST_HEADERS,
        "content-type,x-grpc-web,x-user-agent,grpc-timeout",
    )
    .body(Full::new(Bytes::new()))
    .unwrap();
    let preflight = http1(kpid.addr, preflight).await;
    assert!(preflight.status().is_success(), "{preflight:?}");
    let headers = preflight.headers();
    assert_eq!(headers[http::header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert_eq!(headers[http::header::ACCESS_CONTROL_ALLOW_METHODS], "POST");
    assert_eq!(
        headers[http::header::ACCESS_CONTROL_ALLOW_HEADERS],
        "content-type,x-grpc-web,x-user-agent,grpc-timeout"
    );

    // The call itself: application/grpc-web+proto over HTTP/1.1.
    let request = pb::ListMetricsRequest {
        family: "sales".into(),
    };
    let response = http1(
        kpid.addr,
        grpc_web_post(
            kpid.addr,
            "/kpi.v1.MetricsService/ListMetrics",
            frame(&request),
        ),
    )
    .await;
    assert_eq!(response.status(), http::StatusCode::OK, "{response:?}");
    let headers = response.headers();
    assert_eq!(
        headers[http::header::CONTENT_TYPE],
        "application/grpc-web+proto"
    );
    assert_eq!(headers[http::header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    let exposed = headers[http::header::ACCESS_CONTROL_EXPOSE_HEADERS]
        .to_str()
        .unwrap();
    assert!(exposed.contains("grpc-status"), "{exposed}");
    let answer = frames(response.into_body());
    assert_eq!(answer.len(), 2, "a message and the trailers: {answer:?}");
    assert_eq!(answer[0].0, 0);
    let listed = pb::ListMetricsResponse::decode(answer[0].1.clone()).unwrap();
    assert!(listed.metrics.iter().any(|m| m.id == "sales.win_rate"));
    assert!(listed.metrics.iter().all(|m| m.family == "sales"));
    assert_eq!(answer[1].0, 0x80);
    let trailers = String::from_utf8(answer[1].1.to_vec()).unwrap();
    assert!(trailers.contains("grpc-status:0"), "{trailers}");

    // An error reaches the page too.
    let request = pb::ComputeRequest {
        metric_id: "sales.nope".into(),
        ..Default::default()
    };
    let response = http1(
        kpid.addr,
        grpc_web_post(kpid.addr, "/kpi.v1.MetricsService/Compute", frame(&request)),
    )
    .await;
    assert_eq!(response.status(), http::StatusCode::OK);
    let in_headers = response
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap().to_owned());
    let in_trailers = frames(response.into_body())
        .into_iter()
        .find(|(flag, _)| *flag == 0x80)
        .map(|(_, text)| String::from_utf8(text.to_vec()).unwrap());
    assert!(
        in_headers.as_deref() == Some("5")
            || in_trailers
                .as_deref()
                .is_some_and(|t| t.contains("grpc-status:5")),
        "NOT_FOUND: {in_headers:?} {in_trailers:?}"
    );
}

#[tokio::test]
async fn zstd_and_gzip_requests_get_compressed_answers() {
    let kpid = Kpid::start();
    let channel = kpid.channel().await;
    for (encoding, name) in [
        (CompressionEncoding::Zstd, "zstd"),
        (CompressionEncoding::Gzip, "gzip"),
    ] {
        let mut records = RecordsServiceClient::new(channel.clone())
            .send_compressed(encoding)
            .accept_compressed(encoding);
        let put = records
            .put_records(pb::PutRecordsRequest {
                records: (0..200)
                    .map(|i| {
                        customer(
                            &format!("{name}-{i:04}"),
                            "2024-01-01T00:00:00Z",
                            pb::Source::Sales,
                        )
                    })
                    .collect(),
            })
            .await
            .unwrap();
        assert_eq!(put.metadata().get("grpc-encoding").unwrap(), name);
        assert_eq!(put.into_inner().accepted, 200);

        let mut metrics = MetricsServiceClient::new(channel.clone())
            .send_compressed(encoding)
            .accept_compressed(encoding);
        let listed = metrics
            .list_metrics(pb::ListMetricsRequest::default())
            .await
            .unwrap();
        assert_eq!(listed.metadata().get("grpc-encoding").unwrap(), name);
        assert!(listed.into_inner().metrics.len() >= 39);
    }

    // A client that accepts no compression gets plain answers.
    let listed = kpid
        .metrics()
        .await
        .list_metrics(pb::ListMetricsRequest::default())
        .await
        .unwrap();
    assert!(listed.metadata().get("grpc-encoding").is_none());
}

#[tokio::test]
async fn oversized_requests_are_resource_exhausted_and_the_server_stays_up() {
    let data = tempfile::tempdir().unwrap();
    let kpid = Kpid::start_in(data.path(), &[("KPID_MAX_MESSAGE_BYTES", "65536")]);
    let many = |prefix: &str, n: usize| pb::PutRecordsRequest {
        records: (0..n)
            .map(|i| {
                customer(
                    &format!("{prefix}-{i:06}"),
                    "2024-01-01T00:00:00Z",
                    pb::Source::Sales,
                )
            })
            .collect(),
    };
    let oversized = many("big", 3000);
    assert!(oversized.encoded_len() > 65536);

    let mut records = kpid.records().await;
    let status = records.put_records(oversized.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("65536"), "{status:?}");

    // Compressed below the limit but larger once decompressed: still refused.
    let mut gzip = kpid
        .records()
        .await
        .send_compressed(CompressionEncoding::Gzip);
    let status = gzip.put_records(oversized).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    // In an Ingest stream each message counts alone.
    let stream = tokio_stream::iter(vec![
        pb::IngestRequest {
            records: many("a", 300).records,
        },
        pb::IngestRequest {
            records: many("b", 300).records,
        },
    ]);
    let ingested = records.ingest(stream).await.unwrap().into_inner();
    assert_eq!(ingested.accepted, 600);
    let (stored, _) = common::list_all(&mut records, "customer", 1000).await;
    assert_eq!(
        stored.len(),
        600,
        "nothing of the refused requests was stored"
    );
}

#[tokio::test]
async fn a_batch_compute_past_its_deadline_is_deadline_exceeded() {
    let kpid = Kpid::start();
    let mut records = kpid.records().await;
    records
        .put_records(pb::PutRecordsRequest {
            records: (0..500)
                .map(|i| {
                    common::deal(
                        &format!("d{i:04}"),
                        if i % 2 == 0 { "alice" } else { "bob" },
                        if i % 3 == 0 {
                            pb::DealStatus::Lost
                        } else {
                            pb::DealStatus::Won
                        },
                        "1000",
                        "2020-06-01T00:00:00Z",
                    )
                })
                .collect(),
        })
        .await
        .unwrap();
    let ids: Vec<String> = kpid
        .metrics()
        .await
        .list_metrics(pb::ListMetricsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .metrics
        .into_iter()
        .map(|m| m.id)
        .collect();

    // tonic's Channel enforces grpc-timeout itself (answering CANCELLED on its own); a
    // plain HTTP/2 client shows what the server answers.
    let plain = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<tonic::body::Body>();
    let mut metrics = MetricsServiceClient::with_origin(plain, kpid.url().parse().unwrap());
    let batch = pb::BatchComputeRequest {
        start: common::ts("2015-01-01T00:00:00Z"),
        end: common::ts("2025-01-01T00:00:00Z"),
        granularity: pb::Granularity::Day.into(),
        metrics: ids
            .iter()
            .map(|id| pb::BatchComputeMetric {
                metric_id: id.clone(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let mut request = tonic::Request::new(batch);
    request.set_timeout(Duration::from_millis(5));
    let asked = Instant::now();
    let status = metrics.batch_compute(request).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );

    // The server is free again: a small request with a generous deadline is answered.
    let mut request = tonic::Request::new(pb::ComputeRequest {
        metric_id: "sales.win_rate".into(),
        start: common::ts("2020-01-01T00:00:00Z"),
        end: common::ts("2021-01-01T00:00:00Z"),
        ..Default::default()
    });
    request.set_timeout(Duration::from_secs(30));
    let answer = metrics.compute(request).await.unwrap().into_inner();
    assert_eq!(answer.rows.len(), 1, "{answer:?}");
    assert!(answer.rows[0].value.starts_with("66.6"), "{answer:?}");
}

/// The metrics endpoint's address from its log line.
fn metrics_addr(kpid: &Kpid) -> SocketAddr {
    let logs = kpid.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("metrics endpoint listening"))
        .unwrap_or_else(|| panic!("no metrics endpoint line in:\n{logs}"));
    let rest = line.split("addr=").nth(1).expect("addr field");
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

async fn scrape(addr: SocketAddr, path: &str) -> http::Response<Bytes> {
    let request = http::Request::get(format!("http://{addr}{path}"))
        .header(http::header::HOST, addr.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap();
    http1(addr, request).await
}

#[tokio::test]
async fn prometheus_counts_rpcs_by_method_and_code() {
    let data = tempfile::tempdir().unwrap();
    let kpid = Kpid::start_in(data.path(), &[("KPID_METRICS_ADDR", "127.0.0.1:0")]);
    let endpoint = metrics_addr(&kpid);
    assert_ne!(endpoint.port(), 0);

    let mut metrics = kpid.metrics().await;
    let ok = metrics
        .compute(pb::ComputeRequest {
            metric_id: "sales.win_rate".into(),
            inputs: [("won".into(), "3".into()), ("lost".into(), "1".into())].into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.rows[0].value, "75");
    let missing = metrics
        .compute(pb::ComputeRequest {
            metric_id: "sales.nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    kpid.records()
        .await
        .put_records(pb::PutRecordsRequest {
            records: (0..3)
                .map(|i| customer(&format!("c{i}"), "2024-01-01T00:00:00Z", pb::Source::Sales))
                .collect(),
        })
        .await
        .unwrap();

    let response = scrape(endpoint, "/metrics").await;
    assert_eq!(response.status(), http::StatusCode::OK);
    assert!(response.headers()[http::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = String::from_utf8(response.into_body().to_vec()).unwrap();
    let compute = r#"grpc_type="unary",grpc_service="kpi.v1.MetricsService",grpc_method="Compute""#;
    let value = |series: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .unwrap_or_else(|| panic!("no {series} in\n{text}"));
        line[series.len()..].trim().parse().unwrap()
    };
    assert_eq!(
        value(&format!("grpc_server_started_total{{{compute}}}")),
        2.0
    );
    assert_eq!(
        value(&format!(
            "grpc_server_handled_total{{{compute},grpc_code=\"OK\"}}"
        )),
        1.0
    );
    assert_eq!(
        value(&format!(
            "grpc_server_handled_total{{{compute},grpc_code=\"NotFound\"}}"
        )),
        1.0
    );
    assert_eq!(
        value(&format!(
            "grpc_server_handling_seconds_count{{{compute},grpc_code=\"OK\"}}"
        )),
        1.0
    );
    assert!(
        value(&format!(
            "grpc_server_handling_seconds_sum{{{compute},grpc_code=\"OK\"}}"
        )) > 0.0
    );
    assert_eq!(
        value(&format!(
            "grpc_server_handling_seconds_bucket{{le=\"+Inf\",{compute},grpc_code=\"NotFound\"}}"
        )),
        1.0
    );
    assert_eq!(
        value(
            r#"grpc_server_handled_total{grpc_type="unary",grpc_service="kpi.v1.RecordsService",grpc_method="PutRecords",grpc_code="OK"}"#
        ),
        1.0
    );
    let fastest = value(&format!(
        "grpc_server_handling_seconds_bucket{{le=\"0.005\",{compute},grpc_code=\"OK\"}}"
    ));
    assert!(fastest == 0.0 || fastest == 1.0, "{fastest}");
    assert!(
        text.contains("# TYPE grpc_server_handling_seconds histogram"),
        "{text}"
    );
    assert_eq!(value("kpid_records_stored"), 3.0);
    assert!(value("kpid_store_size_bytes") > 0.0);

    assert_eq!(
        scrape(endpoint, "/").await.status(),
        http::StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_metrics_endpoint_is_off_by_default() {
    let data = tempfile::tempdir().unwrap();
    let kpid = Kpid::start_in(data.path(), &[]);
    kpid.metrics()
        .await
        .list_metrics(pb::ListMetricsRequest::default())
        .await
        .unwrap();
    assert!(!kpid.logs().contains("metrics endpoint"), "{}", kpid.logs());
}

#[tokio::test]
async fn json_logs_carry_the_rpc_span() {
    let data = tempfile::tempdir().unwrap();
    let kpid = Kpid::start_in(
        data.path(),
        &[
            ("KPID_LOG_FORMAT", "json"),
            ("RUST_LOG", "info,kpi_server=debug"),
        ],
    );
    let mut metrics = kpid.metrics().await;
    metrics
        .compute(pb::ComputeRequest {
            metric_id: "sales.win_rate".into(),
            inputs: [("won".into(), "3".into()), ("lost".into(), "1".into())].into(),
            ..Default::default()
        })
        .await
        .unwrap();
    metrics
        .compute(pb::ComputeRequest {
            metric_id: "sales.nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();

    // The end events are logged as the answers go out; give the log reader a moment.
    let find = |message: &str| -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = kpid.logs().lines().find_map(|line| {
                let event: serde_json::Value = serde_json::from_str(line).ok()?;
                (event["message"] == message).then_some(event)
            });
            if let Some(event) = found {
                return event;
            }
            assert!(
                Instant::now() < deadline,
                "no {message:?} in:\n{}",
                kpid.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let finished = find("rpc finished");
    let span = &finished["span"];
    assert_eq!(span["name"], "rpc", "{finished}");
    assert_eq!(span["service"], "kpi.v1.MetricsService");
    assert_eq!(span["method"], "Compute");
    assert_eq!(span["tenant"], "default");
    assert_eq!(span["metric_id"], "sales.win_rate");
    assert_eq!(span["rows"], 1);
    assert_eq!(span["code"], "OK");
    assert!(
        span["duration_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{finished}"
    );

    let rejected = find("rpc rejected");
    assert_eq!(rejected["level"], "INFO");
    assert_eq!(rejected["span"]["metric_id"], "sales.nope", "{rejected}");
    assert_eq!(rejected["span"]["code"], "NotFound");
    assert!(rejected["detail"].as_str().unwrap().contains("sales.nope"));
}

fn get(addr: SocketAddr, path: &str) -> http::Request<Full<Bytes>> {
    http::Request::get(format!("http://{addr}{path}"))
        .header(http::header::HOST, addr.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap()
}

#[tokio::test]
async fn the_dashboard_page_is_served_beside_the_rpcs_unless_turned_off() {
    let kpid = Kpid::start();
    let page = http1(kpid.addr, get(kpid.addr, "/")).await;
    assert_eq!(page.status(), http::StatusCode::OK, "{page:?}");
    assert_eq!(
        page.headers()[http::header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    let html = std::str::from_utf8(page.body()).unwrap();
    assert!(
        html.contains("<title>kpid dashboard</title>"),
        "{html:.200}"
    );
    // The RPCs on the same port are untouched, grpc-web included.
    let listed = http1(
        kpid.addr,
        grpc_web_post(
            kpid.addr,
            "/kpi.v1.MetricsService/ListMetrics",
            frame(&pb::ListMetricsRequest::default()),
        ),
    )
    .await;
    let answer = frames(listed.into_body());
    let trailers = std::str::from_utf8(&answer.last().unwrap().1).unwrap();
    assert!(trailers.contains("grpc-status:0"), "{trailers}");
    // Only the page's paths are the page.
    let other = http1(
        kpid.addr,
        get(kpid.addr, "/kpi.v1.MetricsService/ListMetrics"),
    )
    .await;
    assert_ne!(other.status(), http::StatusCode::OK);

    let temp = tempfile::tempdir().unwrap();
    let without = Kpid::start_in(temp.path(), &[("KPID_DASHBOARD", "false")]);
    let answer = http1(without.addr, get(without.addr, "/")).await;
    assert_ne!(answer.status(), http::StatusCode::OK, "{answer:?}");
    assert!(!without.logs().contains("dashboard page"));
    assert!(kpid.logs().contains("dashboard page"));
}
