//! Tenant settings end to end through the real `kpid`: `TenantService` reads and changes
//! them (by mask, values checked, per tenant, durable), Compute cuts fiscal quarters and
//! years and weeks in the tenant's calendar and zone, and `kpid settings get|set`.
//!
//! Every expected value is worked out by hand in the comments. Revenue (`sales.revenue`)
//! is the sum of the amounts of the deals won in a bucket; a fiscal year starting in
//! April is named by the calendar year it ends in (FY2025 = April 2024 – March 2025).

mod common;

use std::process::Command;

use common::{deal, ts, Kpid};
use kpi_proto::kpi::v1 as pb;
use pb::DealStatus::Won;
use tonic::Code;
use tonic_types::StatusExt as _;

/// An UpdateSettings request changing the fields `paths` to their values in `settings`.
fn update(paths: &[&str], settings: pb::TenantSettings) -> pb::UpdateSettingsRequest {
    pb::UpdateSettingsRequest {
        settings: Some(settings),
        update_mask: Some(prost_types::FieldMask {
            paths: paths.iter().map(|p| p.to_string()).collect(),
        }),
    }
}

/// `request` with `authorization: Bearer key`.
fn with_key<T>(request: T, key: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(request);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}

async fn get(kpid: &Kpid) -> pb::TenantSettings {
    kpid.tenant()
        .await
        .get_settings(pb::GetSettingsRequest::default())
        .await
        .expect("GetSettings")
        .into_inner()
        .settings
        .expect("settings")
}

async fn set(kpid: &Kpid, paths: &[&str], settings: pb::TenantSettings) -> pb::TenantSettings {
    kpid.tenant()
        .await
        .update_settings(update(paths, settings))
        .await
        .expect("UpdateSettings")
        .into_inner()
        .settings
        .expect("settings")
}

fn defaults() -> pb::TenantSettings {
    pb::TenantSettings {
        base_currency: String::new(),
        time_zone: "UTC".into(),
        fiscal_year_start_month: 1,
        week_start: pb::Weekday::Monday.into(),
    }
}

/// A kpid holding `records` whose default tenant has the settings `paths` of `settings`.
async fn serve(records: Vec<pb::Record>, paths: &[&str], settings: pb::TenantSettings) -> Kpid {
    let kpid = Kpid::start();
    let n = records.len() as u64;
    let put = kpid
        .records()
        .await
        .put_records(pb::PutRecordsRequest { records })
        .await
        .expect("PutRecords")
        .into_inner();
    assert_eq!(put.accepted, n, "rejected: {:?}", put.rejected);
    set(&kpid, paths, settings).await;
    kpid
}

/// Revenue with one row per bucket (no groups).
fn revenue(start: &str, end: &str, granularity: pb::Granularity, zone: &str) -> pb::ComputeRequest {
    pb::ComputeRequest {
        metric_id: "sales.revenue".into(),
        start: ts(start),
        end: ts(end),
        granularity: granularity.into(),
        time_zone: zone.into(),
        group_by: vec!["none".into()],
        ..Default::default()
    }
}

async fn rows(kpid: &Kpid, request: pb::ComputeRequest) -> Vec<pb::Row> {
    kpid.metrics()
        .await
        .compute(request)
        .await
        .expect("Compute")
        .into_inner()
        .rows
}

/// (bucket start, label, value) of each row.
fn buckets(rows: &[pb::Row]) -> Vec<(String, String, String)> {
    rows.iter()
        .map(|r| {
            let start = r.bucket_start.as_ref().expect("a bucket start");
            let start = jiff::Timestamp::new(start.seconds, start.nanos).unwrap();
            (start.to_string(), r.bucket_label.clone(), r.value.clone())
        })
        .collect()
}

fn bucket(start: &str, label: &str, value: &str) -> (String, String, String) {
    (start.into(), label.into(), value.into())
}

#[tokio::test]
async fn settings_start_at_the_defaults_change_by_mask_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut kpid = Kpid::start_in(dir.path(), &[]);
    assert_eq!(get(&kpid).await, defaults());

    // Only the masked fields change: base_currency is sent but not named.
    let paris_april = pb::TenantSettings {
        base_currency: "EUR".into(),
        time_zone: "Europe/Paris".into(),
        fiscal_year_start_month: 4,
        week_start: pb::Weekday::Sunday.into(),
    };
    let answered = set(
        &kpid,
        &["time_zone", "settings.fiscal_year_start_month"],
        paris_april.clone(),
    )
    .await;
    let expected = pb::TenantSettings {
        time_zone: "Europe/Paris".into(),
        fiscal_year_start_month: 4,
        ..defaults()
    };
    assert_eq!(answered, expected);
    assert_eq!(get(&kpid).await, expected);
    let answered = set(&kpid, &["base_currency", "week_start"], paris_april.clone()).await;
    assert_eq!(answered, paris_april);

    // Durable: a restart on the same data directory reads them back.
    assert!(kpid.terminate().success());
    let kpid = Kpid::start_in(dir.path(), &[]);
    assert_eq!(get(&kpid).await, paris_april);
}

#[tokio::test]
async fn bad_paths_and_values_are_refused_with_one_violation_each_and_change_nothing() {
    let kpid = Kpid::start();
    let mut client = kpid.tenant().await;
    let violations = |status: tonic::Status| -> Vec<String> {
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        let mut fields: Vec<String> = status
            .get_details_bad_request()
            .expect("BadRequest details")
            .field_violations
            .into_iter()
            .map(|v| v.field)
            .collect();
        fields.sort();
        fields
    };
    let empty = client
        .update_settings(update(&[], defaults()))
        .await
        .unwrap_err();
    assert_eq!(violations(empty), ["update_mask"]);
    let no_mask = client
        .update_settings(pb::UpdateSettingsRequest {
            settings: Some(defaults()),
            update_mask: None,
        })
        .await
        .unwrap_err();
    assert_eq!(violations(no_mask), ["update_mask"]);
    let unknown = client
        .update_settings(update(&["currency", "time_zone"], defaults()))
        .await
        .unwrap_err();
    assert_eq!(violations(unknown), ["update_mask.paths[0]"]);
    let bad = pb::TenantSettings {
        base_currency: "eur".into(),
        time_zone: "Mars/Olympus_Mons".into(),
        fiscal_year_start_month: 13,
        week_start: pb::Weekday::Unspecified.into(),
    };
    let all = [
        "base_currency",
        "time_zone",
        "fiscal_year_start_month",
        "week_start",
    ];
    let refused = client.update_settings(update(&all, bad)).await.unwrap_err();
    assert_eq!(
        violations(refused),
        [
            "settings.base_currency",
            "settings.fiscal_year_start_month",
            "settings.time_zone",
            "settings.week_start"
        ]
    );
    // Well formed but not an ISO 4217 currency; month 0.
    let unknown_currency = pb::TenantSettings {
        base_currency: "XYZ".into(),
        fiscal_year_start_month: 0,
        ..defaults()
    };
    let refused = client
        .update_settings(update(
            &["base_currency", "fiscal_year_start_month"],
            unknown_currency,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        violations(refused),
        ["settings.base_currency", "settings.fiscal_year_start_month"]
    );
    // One good value beside a bad one: nothing changes.
    let half = pb::TenantSettings {
        time_zone: "Europe/Paris".into(),
        fiscal_year_start_month: 13,
        ..defaults()
    };
    client
        .update_settings(update(&["time_zone", "fiscal_year_start_month"], half))
        .await
        .unwrap_err();
    assert_eq!(get(&kpid).await, defaults());
}

#[tokio::test]
async fn a_tenant_reads_and_changes_only_its_own_settings() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("api-keys");
    let key = |tenant: &str| -> String {
        let output = Command::new(env!("CARGO_BIN_EXE_kpid"))
            .args(["keys", "add", "--file"])
            .arg(&file)
            .args(["--tenant", tenant])
            .env_remove("KPID_API_KEYS")
            .output()
            .expect("kpid keys add");
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    let acme = key("acme");
    let globex = key("globex");
    let kpid = Kpid::start_in(
        &dir.path().join("data"),
        &[("KPID_API_KEYS", file.to_str().unwrap())],
    );
    let mut client = kpid.tenant().await;

    let unauthenticated = client
        .get_settings(pb::GetSettingsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(unauthenticated.code(), Code::Unauthenticated);
    let unauthenticated = client
        .update_settings(update(&["time_zone"], defaults()))
        .await
        .unwrap_err();
    assert_eq!(unauthenticated.code(), Code::Unauthenticated);

    let paris = pb::TenantSettings {
        time_zone: "Europe/Paris".into(),
        ..defaults()
    };
    client
        .update_settings(with_key(update(&["time_zone"], paris.clone()), &acme))
        .await
        .expect("acme's update");
    let globex_sees = client
        .get_settings(with_key(pb::GetSettingsRequest::default(), &globex))
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    assert_eq!(globex_sees, defaults(), "acme's change is acme's alone");
    let new_york = pb::TenantSettings {
        time_zone: "America/New_York".into(),
        ..defaults()
    };
    client
        .update_settings(with_key(update(&["time_zone"], new_york), &globex))
        .await
        .expect("globex's update");
    let acme_sees = client
        .get_settings(with_key(pb::GetSettingsRequest::default(), &acme))
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    assert_eq!(acme_sees, paris);
}

/// New York, fiscal year from April. Deals won (UTC instant = New York local time):
/// - 2023-12-31T05:00Z = 31 Dec 2023 00:00 EST, 3000 → FY2024 Q3 (October–December 2023);
/// - 2024-01-01T04:30Z = 31 Dec 2023 23:30 EST, 1600 → FY2024 Q3;
/// - 2024-01-01T05:00Z = 1 Jan 2024 00:00 EST, 50 → FY2024 Q4 (January–March 2024);
/// - 2024-04-01T03:30Z = 31 Mar 23:30 EDT, 100 → FY2024 Q4 (a UTC cut would say April);
/// - 2024-04-01T04:00Z = 1 Apr 00:00 EDT, 200 → FY2025 Q1 (April–June 2024);
/// - 2024-07-01T03:59:59Z = 30 Jun 23:59:59 EDT, 400 → FY2025 Q1;
/// - 2024-07-01T04:00Z = 1 Jul 00:00 EDT, 800 → FY2025 Q2 (July–September 2024).
///
/// Quarters start at local midnight: 1 January on EST (05:00Z), 1 April and 1 July on
/// EDT (04:00Z). FY2024 Q4 = 50 + 100 = 150; FY2025 Q1 = 200 + 400 = 600; FY2025 Q2 =
/// 800. Compared with the previous fiscal quarter: Q4 with Q3 (1 Oct 2023 04:00Z to 1 Jan
/// 05:00Z: 3000 + 1600 = 4600): 150 − 4600 = −4450, −4450 / 4600 × 100 = −96.7391… →
/// −96.74; Q1 with Q4: 600 − 150 = 450, 300 %; Q2 with Q1: 800 − 600 = 200, 33.333… →
/// 33.33. Fiscal years: FY2024 (1 Apr 2023 04:00Z – 1 Apr 2024 04:00Z) = 3000 + 1600 + 50
/// + 100 = 4750; FY2025 = 200 + 400 + 800 = 1400.
#[tokio::test]
async fn fiscal_quarters_and_years_cut_at_local_midnight_in_new_york() {
    let kpid = serve(
        vec![
            deal("a", "ann", Won, "3000", "2023-12-31T05:00:00Z"),
            deal("b", "ann", Won, "1600", "2024-01-01T04:30:00Z"),
            deal("c", "ann", Won, "50", "2024-01-01T05:00:00Z"),
            deal("d", "ann", Won, "100", "2024-04-01T03:30:00Z"),
            deal("e", "ann", Won, "200", "2024-04-01T04:00:00Z"),
            deal("f", "ann", Won, "400", "2024-07-01T03:59:59Z"),
            deal("g", "ann", Won, "800", "2024-07-01T04:00:00Z"),
        ],
        &["time_zone", "fiscal_year_start_month"],
        pb::TenantSettings {
            time_zone: "America/New_York".into(),
            fiscal_year_start_month: 4,
            ..defaults()
        },
    )
    .await;
    let mut quarterly = revenue(
        "2024-01-01T05:00:00Z",
        "2024-10-01T04:00:00Z",
        pb::Granularity::Quarter,
        "",
    );
    quarterly.compare = pb::Comparison::PreviousPeriod.into();
    let quarters = rows(&kpid, quarterly).await;
    assert_eq!(
        buckets(&quarters),
        [
            bucket("2024-01-01T05:00:00Z", "FY2024 Q4", "150"),
            bucket("2024-04-01T04:00:00Z", "FY2025 Q1", "600"),
            bucket("2024-07-01T04:00:00Z", "FY2025 Q2", "800"),
        ]
    );
    let changes: Vec<(&str, &str, &str)> = quarters
        .iter()
        .map(|r| {
            (
                r.previous_value.as_str(),
                r.change.as_str(),
                r.change_pct.as_str(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("4600", "-4450", "-96.74"),
            ("150", "450", "300"),
            ("600", "200", "33.33"),
        ]
    );

    let years = rows(
        &kpid,
        revenue(
            "2023-04-01T04:00:00Z",
            "2025-04-01T04:00:00Z",
            pb::Granularity::Year,
            "",
        ),
    )
    .await;
    assert_eq!(
        buckets(&years),
        [
            bucket("2023-04-01T04:00:00Z", "FY2024", "4750"),
            bucket("2024-04-01T04:00:00Z", "FY2025", "1400"),
        ]
    );
}

/// Paris, weeks from Sunday. Deals won: 10 at 2024-03-31T21:30Z (Sunday 31 March 23:30
/// CEST, the day summer time starts) and 100 at 2024-03-31T22:30Z (Monday 1 April 00:30
/// CEST).
///
/// - No zone in the request → Paris: March (from 1 March 00:00 CET = 02-29T23:00Z) holds 10,
///   April (from 1 April 00:00 CEST = 03-31T22:00Z) holds 100.
/// - The same window with `time_zone: UTC`: the window starts an hour before a UTC
///   month, so February's last hour (0), March (both deals, 110) and April up to
///   04-30T22:00Z (0).
/// - Weeks, no zone: the Sunday week from 31 March 00:00 CET (03-30T23:00Z) to 7 April
///   00:00 CEST (04-06T22:00Z) holds both (110); its fourth day is Wednesday 3 April, day
///   94 of 2024, so it is week (94 − 1) / 7 + 1 = 14.
#[tokio::test]
async fn the_default_time_zone_applies_when_the_request_names_none() {
    let kpid = serve(
        vec![
            deal("a", "ann", Won, "10", "2024-03-31T21:30:00Z"),
            deal("b", "ann", Won, "100", "2024-03-31T22:30:00Z"),
        ],
        &["time_zone", "week_start"],
        pb::TenantSettings {
            time_zone: "Europe/Paris".into(),
            week_start: pb::Weekday::Sunday.into(),
            ..defaults()
        },
    )
    .await;
    let start = "2024-02-29T23:00:00Z";
    let end = "2024-04-30T22:00:00Z";
    let paris = rows(&kpid, revenue(start, end, pb::Granularity::Month, "")).await;
    assert_eq!(
        buckets(&paris),
        [
            bucket("2024-02-29T23:00:00Z", "2024-03", "10"),
            bucket("2024-03-31T22:00:00Z", "2024-04", "100"),
        ]
    );
    let utc = rows(&kpid, revenue(start, end, pb::Granularity::Month, "UTC")).await;
    assert_eq!(
        buckets(&utc),
        [
            bucket("2024-02-29T23:00:00Z", "2024-02", "0"),
            bucket("2024-03-01T00:00:00Z", "2024-03", "110"),
            bucket("2024-04-01T00:00:00Z", "2024-04", "0"),
        ]
    );
    // BatchCompute too: no zone → Paris, the metric's own rows labelled alike.
    let batch = kpid
        .metrics()
        .await
        .batch_compute(pb::BatchComputeRequest {
            metrics: vec![pb::BatchComputeMetric {
                metric_id: "sales.revenue".into(),
                ..Default::default()
            }],
            start: ts(start),
            end: ts(end),
            granularity: pb::Granularity::Month.into(),
            group_by: vec!["none".into()],
            ..Default::default()
        })
        .await
        .expect("BatchCompute")
        .into_inner();
    assert_eq!(buckets(&batch.results[0].rows), buckets(&paris));
    let weeks = rows(
        &kpid,
        revenue(
            "2024-03-30T23:00:00Z",
            "2024-04-06T22:00:00Z",
            pb::Granularity::Week,
            "",
        ),
    )
    .await;
    assert_eq!(
        buckets(&weeks),
        [bucket("2024-03-30T23:00:00Z", "2024-W14", "110")]
    );
    // `kpid compute` reads its dates in the tenant's zone too: March and April in Paris.
    let output = Command::new(env!("CARGO_BIN_EXE_kpid"))
        .args([
            "compute",
            "sales.revenue",
            "--from",
            "2024-03-01",
            "--to",
            "2024-05-01",
        ])
        .args(["--by", "month", "--group", "none", "--format", "json"])
        .args(["--addr", &kpid.addr.to_string()])
        .env_remove("KPID_API_KEY")
        .output()
        .expect("run kpid compute");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON rows");
    let cli_buckets: Vec<(String, String)> = answer["rows"]
        .as_array()
        .expect("an array of rows")
        .iter()
        .map(|row| {
            (
                row["bucketStart"].as_str().unwrap_or_default().to_owned(),
                row["value"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        cli_buckets,
        [
            ("2024-02-29T23:00:00Z".to_owned(), "10".to_owned()),
            ("2024-03-31T22:00:00Z".to_owned(), "100".to_owned()),
        ]
    );
}

/// Runs `kpid settings ARGS` against `kpid`; (success, stdout, stderr).
fn cli(kpid: &Kpid, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_kpid"))
        .arg("settings")
        .args(args)
        .args(["--addr", &kpid.addr.to_string()])
        .env_remove("KPID_API_KEY")
        .output()
        .expect("run kpid settings");
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[tokio::test]
async fn the_cli_gets_and_sets_settings() {
    let kpid = Kpid::start();
    let (ok, out, err) = cli(&kpid, &["get"]);
    assert!(ok, "{err}");
    let lines = |text: &str| -> Vec<String> {
        text.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    };
    assert_eq!(
        lines(&out),
        [
            "SETTING VALUE",
            "base_currency (none)",
            "time_zone UTC",
            "fiscal_year_start_month 1",
            "week_start monday"
        ]
    );
    let (ok, out, err) = cli(
        &kpid,
        &[
            "set",
            "--time-zone",
            "Europe/Paris",
            "--fiscal-year-start",
            "4",
            "--week-start",
            "sunday",
            "--base-currency",
            "EUR",
        ],
    );
    assert!(ok, "{err}");
    let expected = [
        "SETTING VALUE",
        "base_currency EUR",
        "time_zone Europe/Paris",
        "fiscal_year_start_month 4",
        "week_start sunday",
    ];
    assert_eq!(lines(&out), expected);
    assert_eq!(lines(&cli(&kpid, &["get"]).1), expected);
    // Only the flags given change.
    let (ok, out, _) = cli(&kpid, &["set", "--fiscal-year-start", "7"]);
    assert!(ok);
    assert!(lines(&out).contains(&"time_zone Europe/Paris".to_owned()));
    assert!(lines(&out).contains(&"fiscal_year_start_month 7".to_owned()));
    // A bad value: exit 1 and the field named.
    let (ok, _, err) = cli(&kpid, &["set", "--fiscal-year-start", "13"]);
    assert!(!ok);
    assert!(err.contains("settings.fiscal_year_start_month"), "{err}");
    assert!(err.contains("INVALID_ARGUMENT"), "{err}");
}
