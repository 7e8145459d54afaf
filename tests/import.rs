//! `kpid import` end to end: the real binary imports NDJSON and CSV files into a real
//! server; bad lines are reported as `file:line: reason` without stopping the import.

mod common;

use std::path::Path;
use std::process::Command;

use common::{key_of, list_all, Kpid};
use kpi_proto::kpi::v1 as pb;
use pb::record::Record as Kind;

/// What a finished `kpid` client run printed and how it exited.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn kpid(args: &[&str], files: &[&Path]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_kpid"))
        .args(args)
        .args(files)
        .output()
        .expect("run kpid");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("UTF-8 stderr"),
    }
}

fn ids(records: &[pb::Record]) -> Vec<String> {
    records.iter().map(|r| key_of(r).1).collect()
}

const DEALS_NDJSON: &str = r#"{"deal": {"id": "d1", "owner": "ann", "amount": "1200.50", "createdAt": "2024-01-05T10:00:00Z", "closedAt": "2024-02-01T10:00:00Z", "status": "DEAL_STATUS_WON", "kind": "DEAL_KIND_NEW_BUSINESS"}}
{"deal": {"id": "d2", "owner": "bob", "amount": "12,5", "created_at": "2024-01-05T10:00:00Z", "closed_at": "2024-02-01T10:00:00Z", "status": "won", "kind": "upsell"}}

{"deal": {"id": "d9", "owner": "bob", "amount": "3"
{"deal": {"id": "d3", "owner": "bob", "amount": "300", "created_at": "2024-01-05T10:00:00Z", "status": "open", "kind": "upsell", "stageHistory": [{"stage": "demo", "enteredAt": "2024-01-10T00:00:00Z"}]}}
"#;

const CUSTOMERS_CSV: &str = "id,acquired_at,source,segment,owner
c1,2024-01-05T10:00:00Z,marketing,smb,ann
c2,2024-01-06T10:00:00+01:00,SOURCE_REFERRAL,,
c3,not-a-time,sales,smb,
c4,2024-01-07T10:00:00Z,,smb,
";

#[tokio::test]
async fn ndjson_and_csv_import_reports_bad_lines_and_stores_the_rest() {
    let server = Kpid::start();
    let dir = tempfile::tempdir().unwrap();
    let deals = dir.path().join("deals.ndjson");
    let customers = dir.path().join("customers.csv");
    std::fs::write(&deals, DEALS_NDJSON).unwrap();
    std::fs::write(&customers, CUSTOMERS_CSV).unwrap();

    let addr = server.addr.to_string();
    let run = kpid(&["import", "--addr", &addr], &[&deals, &customers]);
    assert_eq!(
        run.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );

    let d = deals.display();
    let c = customers.display();
    for expected in [
        format!("{d}:2: deal.amount: `12,5` is not a decimal number"),
        format!("{d}:4: not valid JSON: EOF while parsing"),
        format!("{c}:4: customer.acquired_at: `not-a-time` is not an RFC 3339 time"),
        format!("{c}:5: customer.source: missing"),
    ] {
        assert!(
            run.stderr.contains(&expected),
            "no `{expected}` in:\n{}",
            run.stderr
        );
    }
    assert_eq!(run.stderr.lines().count(), 4, "{}", run.stderr);
    assert!(
        run.stdout
            .contains(&format!("{d}: 2 accepted, 2 rejected\n")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("{c}: 2 accepted, 2 rejected\n")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .ends_with("total: 4 accepted, 4 rejected (2 not parsed, 2 refused by the server)\n"),
        "{}",
        run.stdout
    );

    let mut client = server.records().await;
    let (stored_deals, _) = list_all(&mut client, "deal", 100).await;
    assert_eq!(ids(&stored_deals), ["d1", "d3"]);
    let Some(Kind::Deal(d3)) = &stored_deals[1].record else {
        panic!("{stored_deals:?}")
    };
    assert_eq!(d3.status, pb::DealStatus::Open as i32);
    assert_eq!(d3.stage_history.len(), 1);
    assert_eq!(d3.stage_history[0].stage, "demo");
    let Some(Kind::Deal(d1)) = &stored_deals[0].record else {
        panic!("{stored_deals:?}")
    };
    assert_eq!(d1.amount, "1200.50");

    let (stored_customers, _) = list_all(&mut client, "customer", 100).await;
    assert_eq!(ids(&stored_customers), ["c1", "c2"]);
    let Some(Kind::Customer(c1)) = &stored_customers[0].record else {
        panic!("{stored_customers:?}")
    };
    assert_eq!(c1.segment.as_deref(), Some("smb"));
    assert_eq!(c1.source, pb::Source::Marketing as i32);
    let Some(Kind::Customer(c2)) = &stored_customers[1].record else {
        panic!("{stored_customers:?}")
    };
    assert_eq!(c2.acquired_at, common::ts("2024-01-06T09:00:00Z"));
    assert_eq!(c2.segment, None);
}

#[tokio::test]
async fn server_rejections_map_back_to_their_line_across_messages() {
    let server = Kpid::start();
    let dir = tempfile::tempdir().unwrap();
    let leads = dir.path().join("leads.jsonl");
    let mut text = String::new();
    for line in 1..=1200 {
        match line {
            5 => text.push_str("not json\n"),
            // No created_at: the server rejects it.
            777 => text.push_str(&format!("{{\"lead\": {{\"id\": \"l{line}\", \"source\": \"sales\"}}}}\n")),
            _ => text.push_str(&format!(
                "{{\"lead\": {{\"id\": \"l{line:04}\", \"createdAt\": \"2024-03-01T00:00:00Z\", \"source\": \"marketing\"}}}}\n"
            )),
        }
    }
    std::fs::write(&leads, text).unwrap();

    let addr = server.addr.to_string();
    let run = kpid(
        &["import", "--addr", &addr, "--batch-size", "100"],
        &[&leads],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let l = leads.display();
    assert!(
        run.stderr.contains(&format!("{l}:5: not valid JSON")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("{l}:777: lead.created_at: missing")),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("total: 1198 accepted, 2 rejected"),
        "{}",
        run.stdout
    );

    let mut client = server.records().await;
    let (stored, _) = list_all(&mut client, "lead", 1000).await;
    assert_eq!(stored.len(), 1198);
}

#[tokio::test]
async fn exit_codes_follow_rejections_and_failures() {
    let server = Kpid::start();
    let addr = server.addr.to_string();
    let dir = tempfile::tempdir().unwrap();
    let customers = dir.path().join("customers.csv");
    std::fs::write(&customers, CUSTOMERS_CSV).unwrap();
    let good = dir.path().join("quota.csv");
    std::fs::write(
        &good,
        "id,owner,period_start,period_end,amount\nq1,ann,2024-01-01T00:00:00Z,2024-04-01T00:00:00Z,50000\n",
    )
    .unwrap();

    // --fail-on-reject: any rejection exits 2, none exits 0.
    let run = kpid(
        &["import", "--addr", &addr, "--fail-on-reject"],
        &[&customers],
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    let run = kpid(&["import", "--addr", &addr, "--fail-on-reject"], &[&good]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains("total: 1 accepted, 0 rejected"),
        "{}",
        run.stdout
    );

    // A file that cannot be read exits 1, and the other files are still imported.
    let missing = dir.path().join("missing.ndjson");
    let deals = dir.path().join("deals.ndjson");
    std::fs::write(&deals, DEALS_NDJSON).unwrap();
    let run = kpid(&["import", "--addr", &addr], &[&missing, &deals]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("error: {}: cannot open", missing.display())),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("total: 2 accepted"), "{}", run.stdout);

    // A server that is not there exits 1.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let run = kpid(&["import", "--addr", &closed_addr], &[&good]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("error: cannot connect to"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn kind_and_format_flags_override_the_file_name() {
    let server = Kpid::start();
    let addr = server.addr.to_string();
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export.csv");
    std::fs::write(
        &export,
        "id,customerId,startedAt,mrr_changes,renewed\n\
         s1,c1,2024-01-01T00:00:00Z,2024-01-01T00:00:00Z=100;2024-04-01T00:00:00Z=150.50,true\n",
    )
    .unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(
        &notes,
        "{\"purchase\": {\"id\": \"p1\", \"customerId\": \"c1\", \"amount\": \"99.90\", \"at\": \"2024-02-01T00:00:00Z\"}}\n",
    )
    .unwrap();

    // Without the flags neither file can be read.
    let run = kpid(&["import", "--addr", &addr], &[&export, &notes]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("pass --kind"), "{}", run.stderr);
    assert!(run.stderr.contains("pass --format"), "{}", run.stderr);

    let run = kpid(
        &["import", "--addr", &addr, "--kind", "subscription"],
        &[&export],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let run = kpid(
        &["import", "--addr", &addr, "--format", "ndjson"],
        &[&notes],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);

    let mut client = server.records().await;
    let (subscriptions, _) = list_all(&mut client, "subscription", 100).await;
    let Some(Kind::Subscription(s1)) = &subscriptions[0].record else {
        panic!("{subscriptions:?}")
    };
    let mrr: Vec<&str> = s1.mrr_changes.iter().map(|c| c.mrr.as_str()).collect();
    assert_eq!(mrr, ["100", "150.50"]);
    assert_eq!(s1.renewed, Some(true));
    let (purchases, _) = list_all(&mut client, "purchase", 100).await;
    assert_eq!(ids(&purchases), ["p1"]);
}

/// One attribute's value of a stored record.
fn attribute(
    attributes: &std::collections::BTreeMap<String, pb::AttributeValue>,
    name: &str,
) -> Option<pb::attribute_value::Value> {
    attributes.get(name).and_then(|a| a.value.clone())
}

#[tokio::test]
async fn attributes_import_from_ndjson_and_attr_columns() {
    use pb::attribute_value::Value as Attr;

    let server = Kpid::start();
    let addr = server.addr.to_string();
    let dir = tempfile::tempdir().unwrap();
    let customers = dir.path().join("customers.ndjson");
    std::fs::write(
        &customers,
        r#"{"customer": {"id": "c1", "acquiredAt": "2024-01-05T10:00:00Z", "source": "marketing", "attributes": {"region": {"text": "EMEA"}, "seats": {"decimal": 12}, "vip": {"flag": true}, "renewal": {"time": "2025-01-01T01:00:00+01:00"}}}}
{"customer": {"id": "c2", "acquiredAt": "2024-01-05T10:00:00Z", "source": "marketing", "attributes": {"seats": {"decimal": 1.5}}}}
{"customer": {"id": "c3", "acquiredAt": "2024-01-05T10:00:00Z", "source": "marketing", "attributes": {"Bad Name": {"text": "x"}}}}
"#,
    )
    .unwrap();
    let deals = dir.path().join("deals.csv");
    std::fs::write(
        &deals,
        "id,owner,amount,created_at,status,kind,attr.region,attr.seats:decimal,attr.vip:flag,attr.renewal:time\n\
         d1,ann,100,2024-01-05T10:00:00Z,open,upsell,EMEA,12.5,true,2025-01-01T00:00:00Z\n\
         d2,ann,100,2024-01-05T10:00:00Z,open,upsell,,,,\n\
         d3,ann,100,2024-01-05T10:00:00Z,open,upsell,,,maybe,\n",
    )
    .unwrap();

    let run = kpid(&["import", "--addr", &addr], &[&customers, &deals]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let c = customers.display();
    let d = deals.display();
    for expected in [
        format!("{c}:2: customer.attributes[seats].decimal: must be a decimal string (\"1.5\")"),
        // Refused by the server, which names the attribute.
        format!("{c}:3: "),
        format!("{d}:4: deal.attributes[vip].flag: `maybe` is not true or false"),
    ] {
        assert!(
            run.stderr.contains(&expected),
            "no `{expected}` in:\n{}",
            run.stderr
        );
    }
    assert_eq!(run.stderr.lines().count(), 3, "{}", run.stderr);
    let refused = run
        .stderr
        .lines()
        .find(|l| l.starts_with(&format!("{c}:3: ")));
    assert!(refused.unwrap().contains("Bad Name"), "{}", run.stderr);
    assert!(
        run.stdout
            .ends_with("total: 3 accepted, 3 rejected (2 not parsed, 1 refused by the server)\n"),
        "{}",
        run.stdout
    );

    let mut client = server.records().await;
    let (stored, _) = list_all(&mut client, "customer", 100).await;
    assert_eq!(ids(&stored), ["c1"]);
    let Some(Kind::Customer(c1)) = &stored[0].record else {
        panic!("{stored:?}")
    };
    assert_eq!(
        attribute(&c1.attributes, "region"),
        Some(Attr::Text("EMEA".into()))
    );
    assert_eq!(
        attribute(&c1.attributes, "seats"),
        Some(Attr::Decimal("12".into()))
    );
    assert_eq!(attribute(&c1.attributes, "vip"), Some(Attr::Flag(true)));
    assert_eq!(
        attribute(&c1.attributes, "renewal"),
        Some(Attr::Time(common::ts("2025-01-01T00:00:00Z").unwrap()))
    );

    let (stored, _) = list_all(&mut client, "deal", 100).await;
    assert_eq!(ids(&stored), ["d1", "d2"]);
    let Some(Kind::Deal(d1)) = &stored[0].record else {
        panic!("{stored:?}")
    };
    assert_eq!(d1.attributes.len(), 4);
    assert_eq!(
        attribute(&d1.attributes, "seats"),
        Some(Attr::Decimal("12.5".into()))
    );
    assert_eq!(
        attribute(&d1.attributes, "renewal"),
        Some(Attr::Time(common::ts("2025-01-01T00:00:00Z").unwrap()))
    );
    let Some(Kind::Deal(d2)) = &stored[1].record else {
        panic!("{stored:?}")
    };
    assert!(d2.attributes.is_empty(), "{d2:?}");
}
