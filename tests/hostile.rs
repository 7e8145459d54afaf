//! Hostile input end to end: malformed and extreme values in compute requests, records
//! and metadata, sent over gRPC to the real kpid binary on 127.0.0.1. Each gets its
//! documented code and a reason naming the field; valid records of the same batch are
//! kept; and the server stays up (a health check after each case).

mod common;

use std::collections::{BTreeMap, HashMap};

use common::{customer, deal, key_of, list_all, record, ts, Kpid};
use kpi_proto::kpi::v1 as pb;
use kpi_proto::kpi::v1::metrics_service_client::MetricsServiceClient;
use pb::record::Record as Kind;
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_types::StatusExt as _;

/// The largest rust_decimal value, 2^96 − 1 ≈ 7.9e28.
const DECIMAL_MAX: &str = "79228162514264337593543950335";
const FORTY_DIGITS: &str = "1234567890123456789012345678901234567890";

/// A server with small limits: 100 records per request, 50 rows per answer.
fn start() -> (Kpid, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let kpid = Kpid::start_in(
        dir.path(),
        &[
            ("KPID_MAX_RECORDS_PER_REQUEST", "100"),
            ("KPID_MAX_ROWS", "50"),
        ],
    );
    (kpid, dir)
}

/// Fails unless the server still answers health checks.
async fn assert_up(kpid: &Kpid) {
    let mut health = HealthClient::new(kpid.channel().await);
    let status = health
        .check(HealthCheckRequest::default())
        .await
        .expect("health check")
        .into_inner()
        .status();
    assert_eq!(status, ServingStatus::Serving);
}

/// The google.rpc.BadRequest field violations of a status, by field.
fn violations(status: &Status) -> HashMap<String, String> {
    status
        .get_details_bad_request()
        .map(|bad| {
            bad.field_violations
                .into_iter()
                .map(|v| (v.field, v.description))
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts INVALID_ARGUMENT with a violation on `field`; returns its description.
fn assert_invalid(status: &Status, field: &str, case: &str) -> String {
    assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
    let found = violations(status);
    found
        .get(field)
        .unwrap_or_else(|| panic!("{case}: no violation on `{field}`: {found:?}"))
        .clone()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn calculator(metric: &str, inputs: &[(&str, &str)]) -> pb::ComputeRequest {
    pb::ComputeRequest {
        metric_id: metric.into(),
        inputs: map(inputs),
        ..Default::default()
    }
}

fn windowed(metric: &str) -> pb::ComputeRequest {
    pb::ComputeRequest {
        metric_id: metric.into(),
        start: ts("2024-01-01T00:00:00Z"),
        end: ts("2025-01-01T00:00:00Z"),
        group_by: vec!["none".into()],
        ..Default::default()
    }
}

async fn compute(
    client: &mut MetricsServiceClient<Channel>,
    request: pb::ComputeRequest,
) -> Result<Vec<pb::Row>, Status> {
    client
        .compute(request)
        .await
        .map(|answer| answer.into_inner().rows)
}

#[tokio::test]
async fn malformed_and_extreme_decimal_inputs_are_invalid_argument_on_the_input() {
    let (kpid, _dir) = start();
    let mut client = kpid.metrics().await;
    for bad in [
        "",
        " ",
        "1e999",
        "1E5",
        "NaN",
        "nan",
        "inf",
        "-inf",
        "Infinity",
        FORTY_DIGITS,
        "1.2.3",
        "1,5",
        "0x10",
        "--1",
        "+",
        ".",
        "１２",
        "1 000",
        "792281625142643375935439503350",
    ] {
        let status = compute(
            &mut client,
            calculator("marketing.cac", &[("spend", bad), ("new_customers", "10")]),
        )
        .await
        .unwrap_err();
        let reason = assert_invalid(&status, "inputs[spend]", bad);
        assert!(!reason.is_empty(), "{bad}");
        assert_up(&kpid).await;
    }

    // Counts are whole and not negative.
    for (won, why) in [("-1", "negative"), ("1.5", "fraction"), ("-0.5", "both")] {
        let status = compute(
            &mut client,
            calculator("sales.win_rate", &[("won", won), ("lost", "1")]),
        )
        .await
        .unwrap_err();
        assert_invalid(&status, "inputs[won]", why);
    }
    // An unknown input is named too.
    let status = compute(
        &mut client,
        calculator(
            "sales.win_rate",
            &[("won", "1"), ("lost", "1"), ("wins", "1")],
        ),
    )
    .await
    .unwrap_err();
    assert_invalid(&status, "inputs[wins]", "unknown input");

    // Overflow in a sum (won + lost) and in a percent (× 100) near 7.9e28.
    for (won, lost) in [(DECIMAL_MAX, DECIMAL_MAX), (DECIMAL_MAX, "0")] {
        let status = compute(
            &mut client,
            calculator("sales.win_rate", &[("won", won), ("lost", lost)]),
        )
        .await
        .unwrap_err();
        let reason = assert_invalid(&status, "inputs", "overflow");
        assert!(reason.contains("overflow"), "{reason}");
    }
    // The extreme value itself is fine where nothing overflows: 7.9e28 / 7.9e28.
    let rows = compute(
        &mut client,
        calculator(
            "marketing.cac",
            &[("spend", DECIMAL_MAX), ("new_customers", DECIMAL_MAX)],
        ),
    )
    .await
    .unwrap();
    assert_eq!(rows[0].value, "1");
    // Exact to 28 places, no f64 on the way: 1 / 3 at the largest precision.
    let rows = compute(
        &mut client,
        pb::ComputeRequest {
            params: map(&[("precision", "10")]),
            ..calculator("marketing.cac", &[("spend", "1"), ("new_customers", "3")])
        },
    )
    .await
    .unwrap();
    assert_eq!(rows[0].value, "0.3333333333");
    assert_up(&kpid).await;
}

#[tokio::test]
async fn unknown_names_and_bad_windows_are_rejected_naming_the_field() {
    let (kpid, _dir) = start();
    let mut client = kpid.metrics().await;

    let status = compute(&mut client, windowed("sales.no_such_metric"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(
        status.message().contains("sales.no_such_metric"),
        "{status:?}"
    );
    let status = compute(&mut client, windowed("")).await.unwrap_err();
    assert_invalid(&status, "metric_id", "empty metric id");

    let cases: Vec<(&str, pb::ComputeRequest, &str)> = vec![
        (
            "unknown param",
            pb::ComputeRequest {
                params: map(&[("nope", "1")]),
                ..windowed("sales.win_rate")
            },
            "params[nope]",
        ),
        (
            "bad param value",
            pb::ComputeRequest {
                params: map(&[("precision", "NaN")]),
                ..windowed("sales.win_rate")
            },
            "params[precision]",
        ),
        (
            "unknown dimension",
            pb::ComputeRequest {
                group_by: vec!["planet".into()],
                ..windowed("sales.win_rate")
            },
            "group_by[0]",
        ),
        (
            "unknown filter",
            pb::ComputeRequest {
                filters: map(&[("planet", "mars")]),
                ..windowed("sales.win_rate")
            },
            "filters[planet]",
        ),
        (
            "unknown time zone",
            pb::ComputeRequest {
                time_zone: "Mars/Olympus_Mons".into(),
                ..windowed("sales.win_rate")
            },
            "time_zone",
        ),
        (
            "granularity out of the enum",
            pb::ComputeRequest {
                granularity: 99,
                ..windowed("sales.win_rate")
            },
            "granularity",
        ),
        (
            "end before start",
            pb::ComputeRequest {
                start: ts("2024-02-01T00:00:00Z"),
                end: ts("2024-01-01T00:00:00Z"),
                ..windowed("sales.win_rate")
            },
            "end",
        ),
        (
            "start without end",
            pb::ComputeRequest {
                end: None,
                ..windowed("sales.win_rate")
            },
            "end",
        ),
        (
            "end without start",
            pb::ComputeRequest {
                start: None,
                ..windowed("sales.win_rate")
            },
            "start",
        ),
        (
            "seconds past year 9999",
            pb::ComputeRequest {
                end: Some(prost_types::Timestamp {
                    seconds: i64::MAX,
                    nanos: 0,
                }),
                ..windowed("sales.win_rate")
            },
            "end",
        ),
        (
            "seconds before year 1",
            pb::ComputeRequest {
                start: Some(prost_types::Timestamp {
                    seconds: i64::MIN,
                    nanos: 0,
                }),
                ..windowed("sales.win_rate")
            },
            "start",
        ),
        (
            "end of year 9999, past the last instant kpid represents",
            pb::ComputeRequest {
                end: Some(prost_types::Timestamp {
                    seconds: 253_402_300_799,
                    nanos: 0,
                }),
                ..windowed("sales.win_rate")
            },
            "end",
        ),
        (
            "seconds just before year 1",
            pb::ComputeRequest {
                start: Some(prost_types::Timestamp {
                    seconds: -62_135_596_801,
                    nanos: 0,
                }),
                ..windowed("sales.win_rate")
            },
            "start",
        ),
        (
            "negative nanos",
            pb::ComputeRequest {
                start: Some(prost_types::Timestamp {
                    seconds: 1_704_067_200,
                    nanos: -1,
                }),
                ..windowed("sales.win_rate")
            },
            "start",
        ),
        (
            "nanos of a whole second",
            pb::ComputeRequest {
                start: Some(prost_types::Timestamp {
                    seconds: 1_704_067_200,
                    nanos: 1_000_000_000,
                }),
                ..windowed("sales.win_rate")
            },
            "start",
        ),
        (
            "granularity in calculator mode",
            pb::ComputeRequest {
                granularity: pb::Granularity::Day.into(),
                ..calculator("sales.win_rate", &[("won", "1"), ("lost", "1")])
            },
            "granularity",
        ),
    ];
    for (case, request, field) in cases {
        let status = match compute(&mut client, request).await {
            Ok(rows) => panic!("{case}: answered {rows:?}"),
            Err(status) => status,
        };
        let reason = assert_invalid(&status, field, case);
        assert!(!reason.is_empty(), "{case}");
        assert_up(&kpid).await;
    }

    // Year 1 to year 9999 is a valid window: one row, over no records.
    let rows = compute(
        &mut client,
        pb::ComputeRequest {
            start: ts("0001-01-01T00:00:00Z"),
            end: ts("9999-12-30T00:00:00Z"),
            ..windowed("sales.leads_created")
        },
    )
    .await
    .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].value, "0");
    // By day, that window is millions of rows: over the limit (50 here), before any
    // is computed.
    let status = compute(
        &mut client,
        pb::ComputeRequest {
            start: ts("0001-01-01T00:00:00Z"),
            end: ts("9999-12-30T00:00:00Z"),
            granularity: pb::Granularity::Day.into(),
            ..windowed("sales.leads_created")
        },
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    // 366 days of 2024 > 50 rows.
    let status = compute(
        &mut client,
        pb::ComputeRequest {
            granularity: pb::Granularity::Day.into(),
            ..windowed("sales.leads_created")
        },
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("50"),
        "names the limit: {status:?}"
    );
    // 12 months fit.
    let rows = compute(
        &mut client,
        pb::ComputeRequest {
            granularity: pb::Granularity::Month.into(),
            ..windowed("sales.leads_created")
        },
    )
    .await
    .unwrap();
    assert_eq!(rows.len(), 12);
    assert_up(&kpid).await;
}

#[tokio::test]
async fn huge_names_get_a_bounded_answer() {
    let (kpid, _dir) = start();
    let mut client = kpid.metrics().await;
    let huge = "x".repeat(1 << 20);
    let cases: Vec<(&str, pb::ComputeRequest, Code)> = vec![
        ("1 MB metric id", windowed(&huge), Code::NotFound),
        (
            "1 MB param name",
            pb::ComputeRequest {
                params: map(&[(&huge, "1")]),
                ..windowed("sales.win_rate")
            },
            Code::InvalidArgument,
        ),
        (
            "1 MB param value",
            pb::ComputeRequest {
                params: map(&[("precision", &huge)]),
                ..windowed("sales.win_rate")
            },
            Code::InvalidArgument,
        ),
        (
            "1 MB dimension",
            pb::ComputeRequest {
                group_by: vec![huge.clone()],
                ..windowed("sales.win_rate")
            },
            Code::InvalidArgument,
        ),
        (
            "1 MB filter",
            pb::ComputeRequest {
                filters: map(&[(&huge, &huge)]),
                ..windowed("sales.win_rate")
            },
            Code::InvalidArgument,
        ),
        (
            "1 MB time zone",
            pb::ComputeRequest {
                time_zone: huge.clone(),
                ..windowed("sales.win_rate")
            },
            Code::InvalidArgument,
        ),
        (
            "1 MB input",
            calculator("marketing.cac", &[(&huge, &huge)]),
            Code::InvalidArgument,
        ),
    ];
    for (case, request, code) in cases {
        let status = compute(&mut client, request).await.unwrap_err();
        assert_eq!(
            status.code(),
            code,
            "{case}: {}",
            &status.message()[..status.message().len().min(200)]
        );
        assert!(
            status.message().len() < 4096,
            "{case}: a {} byte message",
            status.message().len()
        );
        assert_up(&kpid).await;
    }

    // A batch answers each huge id in its own bounded result.
    let batch = client
        .batch_compute(pb::BatchComputeRequest {
            metrics: (0..3)
                .map(|i| pb::BatchComputeMetric {
                    metric_id: format!("{i}{huge}"),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(batch.results.len(), 3);
    for result in &batch.results {
        let error = result.error.as_ref().unwrap();
        assert_eq!(error.code, Code::NotFound as i32);
        assert!(error.message.len() < 4096);
    }

    // Huge record kinds and page tokens are named in a bounded answer too.
    let mut records = kpid.records().await;
    let status = records
        .list_records(pb::ListRecordsRequest {
            kind: huge.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid(&status, "kind", "1 MB kind");
    let status = records
        .delete_records(pb::DeleteRecordsRequest {
            keys: vec![pb::RecordKey {
                kind: huge.clone(),
                id: huge.clone(),
            }],
        })
        .await
        .unwrap_err();
    assert_invalid(&status, "keys[0].kind", "1 MB key");
    let status = records
        .list_records(pb::ListRecordsRequest {
            page_token: huge.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid(&status, "page_token", "1 MB page token");
    assert_up(&kpid).await;
}

fn with_deal(id: &str, edit: impl FnOnce(&mut pb::Deal)) -> pb::Record {
    let mut r = deal(
        id,
        "alice",
        pb::DealStatus::Won,
        "10",
        "2024-01-10T00:00:00Z",
    );
    if let Some(Kind::Deal(d)) = r.record.as_mut() {
        edit(d);
    }
    r
}

fn with_customer(id: &str, edit: impl FnOnce(&mut pb::Customer)) -> pb::Record {
    let mut r = customer(id, "2024-01-01T00:00:00Z", pb::Source::Sales);
    if let Some(Kind::Customer(c)) = r.record.as_mut() {
        edit(c);
    }
    r
}

#[tokio::test]
async fn hostile_records_are_rejected_by_index_and_valid_ones_kept() {
    let (kpid, _dir) = start();
    let mut client = kpid.records().await;
    let at = |seconds, nanos| Some(prost_types::Timestamp { seconds, nanos });
    // (record, the field its rejection must name; None: accepted)
    let cases: Vec<(pb::Record, Option<&str>)> = vec![
        (with_deal("ok1", |_| {}), None),
        (
            with_deal("empty-amount", |d| d.amount = String::new()),
            Some("amount"),
        ),
        (
            with_deal("exp", |d| d.amount = "1e999".into()),
            Some("amount"),
        ),
        (
            with_deal("nan", |d| d.amount = "NaN".into()),
            Some("amount"),
        ),
        (
            with_deal("inf", |d| d.amount = "inf".into()),
            Some("amount"),
        ),
        (
            with_deal("forty", |d| d.amount = FORTY_DIGITS.into()),
            Some("amount"),
        ),
        (
            with_deal("dots", |d| d.amount = "1.2.3".into()),
            Some("amount"),
        ),
        (
            with_deal("negative", |d| d.amount = "-5".into()),
            Some("amount"),
        ),
        (with_deal("max", |d| d.amount = DECIMAL_MAX.into()), None),
        (
            with_deal("closed-before-created", |d| {
                d.created_at = ts("2024-02-01T00:00:00Z")
            }),
            Some("closed_at"),
        ),
        (
            with_customer("year-1", |c| c.acquired_at = ts("0001-01-01T00:00:00Z")),
            Some("acquired_at"),
        ),
        (
            with_customer("year-9999", |c| c.acquired_at = ts("9999-06-01T00:00:00Z")),
            None,
        ),
        // A valid protobuf Timestamp, past the last instant jiff (and so kpid) represents.
        (
            with_customer("end-of-9999", |c| c.acquired_at = at(253_402_300_799, 0)),
            Some("acquired_at"),
        ),
        (
            with_customer("past-9999", |c| c.acquired_at = at(i64::MAX, 0)),
            Some("acquired_at"),
        ),
        (
            with_customer("before-1", |c| c.acquired_at = at(i64::MIN, 0)),
            Some("acquired_at"),
        ),
        (
            with_customer("bad-nanos", |c| c.acquired_at = at(1_704_067_200, -1)),
            Some("acquired_at"),
        ),
        (
            with_customer("churned-first", |c| {
                c.churned_at = ts("2023-01-01T00:00:00Z")
            }),
            Some("churned_at"),
        ),
        (with_customer(&"i".repeat(1 << 20), |_| {}), Some("id")),
        (with_customer("", |_| {}), Some("id")),
        (with_customer("ctl\u{7}", |_| {}), Some("id")),
        (pb::Record { record: None }, Some("record")),
        (
            record(Kind::SurveyResponse(pb::SurveyResponse {
                id: "neg-score".into(),
                kind: pb::SurveyKind::Nps.into(),
                score: "-1".into(),
                scale_max: 10,
                at: ts("2024-01-05T00:00:00Z"),
                ..Default::default()
            })),
            Some("score"),
        ),
        (
            record(Kind::SurveyResponse(pb::SurveyResponse {
                id: "zero-scale".into(),
                kind: pb::SurveyKind::Nps.into(),
                score: "1".into(),
                scale_max: 0,
                at: ts("2024-01-05T00:00:00Z"),
                ..Default::default()
            })),
            Some("scale_max"),
        ),
        // Duplicated ids in one batch: both are accepted and the later one wins.
        (with_deal("dup", |d| d.amount = "1".into()), None),
        (with_deal("dup", |d| d.amount = "2".into()), None),
        (with_deal("ok2", |_| {}), None),
    ];
    let (records, expected): (Vec<_>, Vec<_>) = cases.into_iter().unzip();
    let answer = client
        .put_records(pb::PutRecordsRequest { records })
        .await
        .unwrap()
        .into_inner();
    let rejected: HashMap<u64, String> = answer
        .rejected
        .iter()
        .map(|r| (r.index, r.reason.clone()))
        .collect();
    for (index, field) in expected.iter().enumerate() {
        match (field, rejected.get(&(index as u64))) {
            (None, None) => {}
            (Some(field), Some(reason)) => {
                assert!(
                    reason.contains(field),
                    "record {index}: `{reason}` does not name {field}"
                );
                assert!(
                    reason.len() < 1024,
                    "record {index}: a {} byte reason",
                    reason.len()
                );
            }
            (None, Some(reason)) => panic!("record {index} rejected: {reason}"),
            (Some(field), None) => {
                panic!("record {index} accepted; expected a rejection on {field}")
            }
        }
    }
    let accepted = expected.iter().filter(|f| f.is_none()).count() as u64;
    assert_eq!(answer.accepted, accepted);
    assert_up(&kpid).await;

    let (stored, _) = list_all(&mut client, "", 1000).await;
    let mut keys: Vec<_> = stored.iter().map(key_of).collect();
    keys.sort();
    let expected_keys: Vec<(String, String)> = [
        ("customer", "year-9999"),
        ("deal", "dup"),
        ("deal", "max"),
        ("deal", "ok1"),
        ("deal", "ok2"),
    ]
    .iter()
    .map(|(k, i)| ((*k).to_owned(), (*i).to_owned()))
    .collect();
    assert_eq!(keys, expected_keys);
    let dup = stored
        .iter()
        .find_map(|r| match &r.record {
            Some(Kind::Deal(d)) if d.id == "dup" => Some(d.amount.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(dup, "2", "the last record with an id wins");

    // A stored 7.9e28 amount beside others overflows the sum of a window's revenue: the
    // answer says so (kpi-core maps every overflow to INVALID_ARGUMENT on `inputs`).
    let mut metrics = kpid.metrics().await;
    let status = compute(&mut metrics, windowed("sales.revenue"))
        .await
        .unwrap_err();
    let reason = assert_invalid(&status, "inputs", "overflowing sum");
    assert!(reason.contains("overflow"), "{reason}");
    assert_up(&kpid).await;
}

#[tokio::test]
async fn too_many_records_in_one_request_is_invalid_argument_and_earlier_messages_stay() {
    let (kpid, _dir) = start();
    let mut client = kpid.records().await;
    let deals = |prefix: &str, n: usize| -> Vec<pb::Record> {
        (0..n)
            .map(|i| {
                deal(
                    &format!("{prefix}{i}"),
                    "alice",
                    pb::DealStatus::Won,
                    "1",
                    "2024-01-10T00:00:00Z",
                )
            })
            .collect()
    };
    let status = client
        .put_records(pb::PutRecordsRequest {
            records: deals("p", 101),
        })
        .await
        .unwrap_err();
    let reason = assert_invalid(&status, "records", "101 records");
    assert!(reason.contains("101") && reason.contains("100"), "{reason}");
    assert_up(&kpid).await;
    assert!(
        list_all(&mut client, "", 1000).await.0.is_empty(),
        "nothing of it is stored"
    );

    // 100 is the limit, not over it.
    let answer = client
        .put_records(pb::PutRecordsRequest {
            records: deals("p", 100),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.accepted, 100);

    // An Ingest stream fails at its oversized message; the messages before it are stored.
    let stream = tokio_stream::iter(vec![
        pb::IngestRequest {
            records: deals("i", 10),
        },
        pb::IngestRequest {
            records: deals("j", 101),
        },
        pb::IngestRequest {
            records: deals("k", 10),
        },
    ]);
    let status = client.ingest(stream).await.unwrap_err();
    assert_invalid(&status, "records", "ingest of 101");
    assert_up(&kpid).await;
    let (stored, _) = list_all(&mut client, "deal", 1000).await;
    let prefixes = |p: char| stored.iter().filter(|r| key_of(r).1.starts_with(p)).count();
    assert_eq!((prefixes('p'), prefixes('i'), prefixes('j')), (100, 10, 0));
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_resource_exhausted() {
    let (kpid, _dir) = start();
    let mut client = kpid.records().await;
    // 5 MiB in one id, over the default 4 MiB message limit.
    let status = client
        .put_records(pb::PutRecordsRequest {
            records: vec![customer(
                &"x".repeat(5 << 20),
                "2024-01-01T00:00:00Z",
                pb::Source::Sales,
            )],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_up(&kpid).await;
}

#[tokio::test]
async fn invalid_utf8_in_metadata_is_ignored_without_keys_and_unauthenticated_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let key = "kpid_hostile-test-key";
    std::fs::write(
        &keys,
        format!("{}\n", kpi_server::auth::key_line(key, "acme").unwrap()),
    )
    .unwrap();
    let open = Kpid::start_in(&dir.path().join("open"), &[]);
    let closed = Kpid::start_in(
        &dir.path().join("closed"),
        &[("KPID_API_KEYS", keys.to_str().unwrap())],
    );

    let junk = AsciiMetadataValue::try_from(&b"\xff\xfe\xc3\x28 junk"[..]).unwrap();
    let request = |auth: Option<AsciiMetadataValue>| {
        let mut request = tonic::Request::new(pb::ListMetricsRequest::default());
        request.metadata_mut().insert("x-custom", junk.clone());
        if let Some(auth) = auth {
            request.metadata_mut().insert("authorization", auth);
        }
        request
    };
    let mut client = open.metrics().await;
    assert!(client
        .list_metrics(request(Some(junk.clone())))
        .await
        .is_ok());
    assert_up(&open).await;

    let mut client = closed.metrics().await;
    let status = client
        .list_metrics(request(Some(junk.clone())))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let bad = AsciiMetadataValue::try_from(&b"Bearer kpid_\xff\xfe"[..]).unwrap();
    let status = client.list_metrics(request(Some(bad))).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let good = AsciiMetadataValue::try_from(format!("Bearer {key}").as_str()).unwrap();
    assert!(
        client.list_metrics(request(Some(good))).await.is_ok(),
        "junk beside a good key is ignored"
    );
    assert_up(&closed).await;
}

/// ComputeRequest's `metric_id` (field 1, a string) as raw bytes, to send invalid UTF-8.
#[derive(Clone, PartialEq, prost::Message)]
struct RawBytesRequest {
    #[prost(bytes = "vec", tag = "1")]
    metric_id: Vec<u8>,
}

/// ComputeRequest's field 1 with the wrong wire type (a varint, not a string).
#[derive(Clone, PartialEq, prost::Message)]
struct WrongWireType {
    #[prost(uint64, tag = "1")]
    metric_id: u64,
}

async fn raw_compute<M: prost::Message + Default + Send + Sync + 'static>(
    kpid: &Kpid,
    message: M,
) -> Status {
    let mut grpc = tonic::client::Grpc::new(kpid.channel().await);
    grpc.ready().await.unwrap();
    grpc.unary(
        tonic::Request::new(message),
        http::uri::PathAndQuery::from_static("/kpi.v1.MetricsService/Compute"),
        tonic_prost::ProstCodec::<M, pb::ComputeResponse>::default(),
    )
    .await
    .unwrap_err()
}

#[tokio::test]
async fn undecodable_messages_are_internal_as_grpc_specifies_and_the_server_stays_up() {
    let (kpid, _dir) = start();
    // gRPC's status code guide: a message that fails to parse is INTERNAL.
    let status = raw_compute(
        &kpid,
        RawBytesRequest {
            metric_id: b"sales.\xff\xfe\xc3\x28".to_vec(),
        },
    )
    .await;
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert_up(&kpid).await;
    let status = raw_compute(&kpid, WrongWireType { metric_id: 7 }).await;
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert_up(&kpid).await;
    // The same path still answers a well-formed request.
    let mut client = kpid.metrics().await;
    let rows = compute(
        &mut client,
        calculator(
            "marketing.cac",
            &[("spend", "10000"), ("new_customers", "10")],
        ),
    )
    .await
    .unwrap();
    assert_eq!(rows[0].value, "1000");
}

/// Whether the server closes `socket` (EOF or reset) before `deadline` passes.
async fn closed_within(socket: &mut tokio::net::TcpStream, deadline: std::time::Duration) -> bool {
    use tokio::io::AsyncReadExt as _;
    let mut buf = [0u8; 64];
    let read_to_end = async {
        // Frames the server sends first (SETTINGS, GOAWAY) are skipped.
        while matches!(socket.read(&mut buf).await, Ok(1..)) {}
    };
    tokio::time::timeout(deadline, read_to_end).await.is_ok()
}

/// Idle TCP sockets that never send a byte cannot lock clients out: with 80 of them open
/// against `--max-connections 50` (and a handshake timeout too long to help), a client
/// that connects next is answered, because each new connection evicts the oldest one that
/// has not sent its first request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_beyond_the_connection_limit_do_not_lock_out_a_client() {
    const LIMIT: usize = 50;
    const IDLE: usize = 80;
    let dir = tempfile::tempdir().unwrap();
    let kpid = Kpid::start_in(
        dir.path(),
        &[
            ("KPID_MAX_CONNECTIONS", "50"),
            ("KPID_HANDSHAKE_TIMEOUT", "120"),
        ],
    );
    let mut idle = Vec::new();
    for _ in 0..IDLE {
        idle.push(tokio::net::TcpStream::connect(kpid.addr).await.unwrap());
    }

    let started = std::time::Instant::now();
    let channel = Channel::from_shared(kpid.url())
        .unwrap()
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(5))
        .connect()
        .await
        .expect("a new client connects");
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .expect("a new client is answered")
        .into_inner()
        .status();
    assert_eq!(status, ServingStatus::Serving);
    eprintln!(
        "{IDLE} idle sockets against --max-connections {LIMIT}: a new client answered in {:?}",
        started.elapsed()
    );

    // The evicted sockets were closed, which is what freed their file descriptors.
    let mut reads = tokio::task::JoinSet::new();
    for mut socket in idle {
        reads.spawn(
            async move { closed_within(&mut socket, std::time::Duration::from_secs(5)).await },
        );
    }
    let closed = reads.join_all().await.into_iter().filter(|c| *c).count();
    assert!(
        closed > IDLE - LIMIT,
        "only {closed} of {IDLE} idle sockets were closed"
    );
    assert_up(&kpid).await;
}

/// A connection that never sends its first request is closed after the handshake timeout.
#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_handshake_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let kpid = Kpid::start_in(dir.path(), &[("KPID_HANDSHAKE_TIMEOUT", "1")]);
    let mut socket = tokio::net::TcpStream::connect(kpid.addr).await.unwrap();
    assert!(
        closed_within(&mut socket, std::time::Duration::from_secs(20)).await,
        "the server kept a silent connection open"
    );
    assert_up(&kpid).await;
}

/// With `--idle-timeout 1`, an HTTP/2 connection that sends no request is closed by the
/// server (GOAWAY, then the connection ends), while an Ingest stream kept open longer than
/// that, its connection busy all along, is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http2_connection_is_closed_and_a_busy_one_is_not() {
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let dir = tempfile::tempdir().unwrap();
    let kpid = Kpid::start_in(dir.path(), &[("KPID_IDLE_TIMEOUT", "1")]);

    let tcp = tokio::net::TcpStream::connect(kpid.addr).await.unwrap();
    let (_requests, connection) = hyper::client::conn::http2::handshake::<
        _,
        _,
        http_body_util::Empty<bytes::Bytes>,
    >(TokioExecutor::new(), TokioIo::new(tcp))
    .await
    .expect("HTTP/2 handshake");
    tokio::time::timeout(std::time::Duration::from_secs(20), connection)
        .await
        .expect("the server closes an idle connection")
        .expect("closed gracefully, by GOAWAY");

    let mut records = kpid.records().await;
    let (messages, stream) = tokio::sync::mpsc::channel(2);
    let ingest = tokio::spawn(async move {
        records
            .ingest(tokio_stream::wrappers::ReceiverStream::new(stream))
            .await
    });
    let message = |id: &str| pb::IngestRequest {
        records: vec![customer(id, "2024-01-01T00:00:00Z", pb::Source::Sales)],
    };
    messages.send(message("busy-1")).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    messages.send(message("busy-2")).await.unwrap();
    drop(messages);
    let answer = tokio::time::timeout(std::time::Duration::from_secs(20), ingest)
        .await
        .expect("the Ingest stream is answered")
        .unwrap()
        .expect("the Ingest stream succeeds")
        .into_inner();
    assert_eq!(answer.accepted, 2);
}

/// kpid raises its soft open-file limit to the hard limit at start.
#[cfg(target_os = "linux")]
#[test]
fn kpid_raises_its_open_file_limit_to_the_hard_limit() {
    use std::os::unix::process::CommandExt as _;

    let mut ours = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass it.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut ours) },
        0
    );
    let hard = ours.rlim_max.min(4096);
    let soft = 256.min(hard);
    let dir = tempfile::tempdir().unwrap();
    let kpid = Kpid::start_with(dir.path(), &[], |command| {
        let limit = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: runs in the child between fork and exec and calls only setrlimit, which
        // is async-signal-safe, on a struct it owns.
        unsafe {
            command.pre_exec(move || {
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", kpid.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[3..5], [hard.to_string(), hard.to_string()], "{line}");
    assert!(kpid.logs().contains("open-file limit"), "{}", kpid.logs());
}
