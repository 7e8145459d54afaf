//! A damaged rows snapshot is never served: every byte of a small store's snapshot flipped
//! in turn, huge lengths, counts and slots (with valid checksums, so the decoder's own
//! bounds are what stops them), and `verify_snapshot` catching a snapshot that verifies
//! but differs from sled. Each open must answer exactly what sled holds.

use std::collections::BTreeMap;
use std::path::Path;

use jiff::Timestamp;
use kpi_core::{
    AttributeName, DataSource, Decimal, Dimension, Measure, MetricError, Scope, SpendCategories,
    SurveyKind, Window,
};

use super::{BlockWriter, BLOCK, FILE, HEADER};
use crate::generate::{generate, DemoOptions};
use crate::index::tests::grouping_dimensions;
use crate::record::{Record, RecordKind};
use crate::settings::SettingsChange;
use crate::store::current_marker::FILE as MARKER;
use crate::store::{OpenOptions, Store};

/// The key in sled's `meta` tree of the current snapshot's token (as `store.rs` writes it).
const TOKEN_KEY: &[u8] = b"snapshot";
const TENANTS: [&str; 2] = ["acme", "beta"];

/// Records of every kind, few of them: for `acme` the first two of each kind of a demo
/// dataset (what they refer to may be missing, as it may in any store), for `beta` one.
fn dataset() -> Vec<(&'static str, Vec<Record>)> {
    let demo = generate(&DemoOptions {
        seed: 3,
        records: 2000,
        attributes_and_activities: true,
        // Amounts with currencies, and exchange rates: every kind is in the snapshot.
        currencies: true,
        ..DemoOptions::default()
    });
    // The demo has no activities yet: two of them, one with neither owner nor customer.
    let activities = [
        Record::Activity(crate::record::Activity {
            id: "a1".into(),
            activity_type: "meeting".into(),
            occurred_at: "2024-03-01T10:00:00Z".parse().unwrap(),
            customer_id: demo.iter().find_map(|r| match r {
                Record::Customer(c) => Some(c.id.clone()),
                _ => None,
            }),
            lead_id: None,
            deal_id: None,
            owner: Some("ann".into()),
            amount: Some(Decimal::new(12550, 2)),
            attributes: Default::default(),
        }),
        Record::Activity(crate::record::Activity {
            id: "a2".into(),
            activity_type: "call".into(),
            occurred_at: "2024-03-02T10:00:00Z".parse().unwrap(),
            customer_id: None,
            lead_id: None,
            deal_id: None,
            owner: None,
            amount: None,
            attributes: Default::default(),
        }),
    ];
    let first = |n: usize| -> Vec<Record> {
        RecordKind::ALL
            .iter()
            .flat_map(|kind| {
                demo.iter()
                    .chain(&activities)
                    .filter(|r| r.kind() == *kind)
                    .take(n)
            })
            .cloned()
            .collect()
    };
    let acme = first(2);
    assert_eq!(
        acme.len(),
        2 * RecordKind::ALL.len(),
        "the demo has every kind"
    );
    vec![(TENANTS[0], acme), (TENANTS[1], first(1))]
}

/// sled opened on `dir`, waiting while a store dropped just before still holds its lock.
fn open_db(dir: &Path) -> sled::Db {
    let started = std::time::Instant::now();
    loop {
        match sled::Config::new().path(dir).open() {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && started.elapsed() < std::time::Duration::from_secs(5) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other.unwrap(),
        }
    }
}

/// A store of [`dataset`] in a fresh directory that saved its snapshot and closed; sled
/// reopened on it, and the snapshot's bytes and token.
fn saved_store() -> (tempfile::TempDir, sled::Db, Vec<u8>, sled::IVec) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for (tenant, records) in dataset() {
        let outcome = store.put(tenant, records).unwrap();
        assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
    }
    store.save_snapshot().unwrap();
    drop(store);
    let db = open_db(dir.path());
    let bytes = std::fs::read(dir.path().join(FILE)).unwrap();
    let token = db
        .open_tree("meta")
        .unwrap()
        .get(TOKEN_KEY)
        .unwrap()
        .unwrap();
    (dir, db, bytes, token)
}

/// Opens the store over `db` with `snapshot` as its current snapshot file.
fn open_with_snapshot(
    dir: &Path,
    db: &sled::Db,
    token: &sled::IVec,
    snapshot: &[u8],
    options: OpenOptions,
) -> Store {
    std::fs::write(dir.join(FILE), snapshot).unwrap();
    db.open_tree("meta")
        .unwrap()
        .insert(TOKEN_KEY, token.clone())
        .unwrap();
    Store::load(db.clone(), None, Some(dir.to_owned()), options).unwrap()
}

/// What a store answers: every record listed, and measures and dimension values over a
/// few scopes, per tenant.
#[derive(Debug, PartialEq)]
struct AnswerSheet {
    records: Vec<Vec<Record>>,
    measures: Vec<Result<Decimal, MetricError>>,
    values: Vec<Result<Vec<String>, MetricError>>,
}

fn scopes() -> Vec<Scope> {
    let ts = |s: &str| -> Timestamp { s.parse().unwrap() };
    let mut scopes = Vec::new();
    for (a, b) in [
        ("2020-01-01T00:00:00Z", "2030-01-01T00:00:00Z"),
        ("2024-01-01T00:00:00Z", "2024-07-01T00:00:00Z"),
    ] {
        let window = Window::new(ts(a), ts(b)).unwrap();
        scopes.push(Scope::new(window));
        scopes.push(Scope {
            window,
            filters: BTreeMap::from([(Dimension::Segment, "smb".to_owned())]),
        });
        scopes.push(Scope {
            window,
            filters: BTreeMap::from([(
                Dimension::CustomerAttribute(AttributeName::new("region").unwrap()),
                "emea".to_owned(),
            )]),
        });
    }
    scopes
}

/// Measures reading every kind of record.
fn measures() -> Vec<Measure> {
    use Measure::*;
    vec![
        DealsWon,
        WonAmount,
        WonCycleDaysTotal,
        DealsOpen,
        OpenAmount,
        StageExits,
        StageDaysTotal,
        CampaignAttributedRevenue,
        QuotaProrated,
        LeadsCreated,
        LeadsConverted,
        CustomersAcquired,
        CustomersAtEnd,
        CustomersChurnedFromStart,
        NewCustomerRevenue,
        Spend(SpendCategories::ALL),
        CampaignSpend,
        EmailDelivered,
        EmailOpens,
        PurchaseRevenue,
        Buyers,
        RenewalsDue,
        MrrAtEnd,
        NewMrr,
        ExpansionMrr,
        ReactivationMrr,
        ChurnedMrr,
        TicketsResolved,
        FirstResponseHoursTotal,
        SurveyScoreTotal(SurveyKind::Nps),
        SurveyScoreTotal(SurveyKind::Csat),
    ]
}

fn answers(store: &Store) -> AnswerSheet {
    let mut answers = AnswerSheet {
        records: Vec::new(),
        measures: Vec::new(),
        values: Vec::new(),
    };
    for tenant in TENANTS {
        let mut records = Vec::new();
        let mut token = String::new();
        loop {
            let page = store.list(tenant, None, 1000, &token).unwrap();
            records.extend(page.records);
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        answers.records.push(records);
        let source = store.source(tenant);
        for scope in scopes() {
            for m in measures() {
                answers.measures.push(source.measure(m, &scope));
            }
            for dim in grouping_dimensions() {
                answers.values.push(source.group_values(dim, &scope, &[]));
            }
        }
    }
    answers
}

/// The kinds whose rows differ between two stores, per tenant (none: the same rows).
fn differing_rows(a: &Store, b: &Store) -> Vec<(&'static str, Vec<RecordKind>)> {
    TENANTS
        .iter()
        .map(|t| {
            let kinds = a.with_rows(t, |a| b.with_rows(t, |b| super::differing_kinds(a, b)));
            (*t, kinds)
        })
        .filter(|(_, kinds)| !kinds.is_empty())
        .collect()
}

/// Checks that `store` holds what sled holds (the scan `truth`): its rows, and (when
/// `sample`, or when the snapshot was read) the records it lists and its answers; and,
/// when it did not read its snapshot, that the snapshot is gone and no longer current.
fn check_against(
    store: &Store,
    truth: &Store,
    truth_answers: &AnswerSheet,
    dir: &Path,
    db: &sled::Db,
    label: &str,
    sample: bool,
) {
    assert_eq!(
        differing_rows(store, truth),
        vec![],
        "{label}: rows differ from sled's"
    );
    assert_eq!(store.stats().records, truth.stats().records, "{label}");
    // The answers too when the snapshot was read; else (the rows are a scan's, and equal)
    // now and then, which keeps the test fast in debug builds.
    if store.snapshot_is_current() || sample {
        assert!(
            &answers(store) == truth_answers,
            "{label}: answers differ from sled's"
        );
    }
    if !store.snapshot_is_current() {
        assert!(
            !dir.join(FILE).exists(),
            "{label}: a discarded snapshot is removed"
        );
        let meta = db.open_tree("meta").unwrap();
        assert_eq!(
            meta.get(TOKEN_KEY).unwrap(),
            None,
            "{label}: its token is retired"
        );
    }
}

/// The store as a scan of sled reads it (no snapshot).
fn scanned(db: &sled::Db) -> Store {
    db.open_tree("meta").unwrap().remove(TOKEN_KEY).unwrap();
    Store::load(db.clone(), None, None, OpenOptions::default()).unwrap()
}

/// Splits a snapshot into its header and content, checking its blocks' framing.
fn content_of(snapshot: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (header, mut rest) = snapshot.split_at(HEADER);
    let mut content = Vec::new();
    loop {
        let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
        assert!(len <= BLOCK);
        content.extend_from_slice(&rest[4..4 + len]);
        rest = &rest[4 + len + 4..];
        if len == 0 {
            assert!(rest.is_empty());
            return (header.to_vec(), content);
        }
    }
}

/// A snapshot of `header` and `content` with valid checksums.
fn snapshot_of(header: &[u8], content: &[u8]) -> Vec<u8> {
    let mut w = BlockWriter::new(Vec::new(), header).unwrap();
    std::io::Write::write_all(&mut w, content).unwrap();
    w.finish().unwrap()
}

/// The snapshot holds a slab for every kind of record (a new kind must be added to
/// `for_each_slab!`, and given `Snap` and `Refs`, or a restart would lose its records).
#[test]
fn the_snapshot_holds_every_kind_of_record() {
    let mut kinds = Vec::new();
    macro_rules! push {
        ($kind:ident, $slab:ident) => {
            kinds.push(RecordKind::$kind)
        };
    }
    for_each_slab!(push);
    assert_eq!(
        kinds,
        RecordKind::ALL,
        "add the missing kinds to for_each_slab!"
    );
}

/// The baseline: the saved snapshot reads, holds exactly what sled holds, and spans
/// blocks; rewritten from its content it is the same file.
#[test]
fn an_intact_snapshot_is_read() {
    let (dir, db, bytes, token) = saved_store();
    let truth = scanned(&db);
    let truth_answers = answers(&truth);
    assert!(bytes.len() > 4 * BLOCK, "{} bytes: one block", bytes.len());
    let (header, content) = content_of(&bytes);
    assert_eq!(snapshot_of(&header, &content), bytes);
    for options in [
        OpenOptions::default(),
        OpenOptions {
            verify_snapshot: true,
            ..OpenOptions::default()
        },
    ] {
        let store = open_with_snapshot(dir.path(), &db, &token, &bytes, options);
        assert!(
            store.snapshot_is_current(),
            "{options:?}: the snapshot was not read"
        );
        check_against(
            &store,
            &truth,
            &truth_answers,
            dir.path(),
            &db,
            "intact",
            true,
        );
    }
}

/// `Store::open` reads the snapshot while sled opens and keeps it when sled names it
/// current; a store that wrote nothing since does not write it again when it stops; a
/// snapshot whose token sled does not hold (a stale one) is not read, and is removed.
#[test]
fn the_snapshot_read_beside_sled_is_kept_only_when_current() {
    let (dir, db, bytes, token) = saved_store();
    drop(db);
    let store = Store::open(dir.path()).unwrap();
    assert!(store.snapshot_is_current());
    // What the snapshot answers (equal to a scan: `an_intact_snapshot_is_read`).
    let truth_answers = answers(&store);
    store.save_snapshot().unwrap();
    drop(store);
    assert_eq!(
        std::fs::read(dir.path().join(FILE)).unwrap(),
        bytes,
        "rewritten"
    );

    // Another token in sled: the file read beside sled is not the current snapshot (and,
    // as when a write retires a snapshot, no current-snapshot marker names it).
    std::fs::remove_file(dir.path().join(MARKER)).unwrap();
    let db = open_db(dir.path());
    let mut other = token.to_vec();
    other[0] ^= 1;
    db.open_tree("meta")
        .unwrap()
        .insert(TOKEN_KEY, other)
        .unwrap();
    db.flush().unwrap();
    drop(db);
    let store = Store::open(dir.path()).unwrap();
    assert!(!store.snapshot_is_current());
    assert!(!dir.path().join(FILE).exists());
    assert_eq!(answers(&store), truth_answers);
}

/// The current-snapshot marker (`store/current_marker.rs`) is written with the snapshot, so
/// a start answers from the snapshot before sled opens; a settings change removes it (the
/// next stop writes it again, with the new settings), and so does the first record write;
/// sled's log changed behind it (a kpid of an older release wrote) makes the next start
/// open sled first; a marker naming a token sled does not hold gets writes refused once
/// sled opens, and the next start scans sled.
/// A store closed after writes writes its marker once sled is closed (sled may still clean
/// its log after the snapshot's commit, and a marker written before would not hold): the
/// next open finds sled's log as the marker notes it and keeps the marker; a write after
/// the close is refused.
#[test]
fn a_closed_store_leaves_a_marker_the_next_open_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join(MARKER);
    let store = Store::open(dir.path()).unwrap();
    // Every record twice: upserts leave sled old versions to clean.
    for _ in 0..2 {
        for (tenant, records) in dataset() {
            store.put(tenant, records).unwrap();
        }
    }
    let truth = answers(&store);
    store.close().unwrap();
    assert!(marker.exists());
    let (tenant, records) = dataset().remove(0);
    assert!(
        store.put(tenant, records).is_err(),
        "a closed store takes no write"
    );
    drop(store);

    let store = Store::open(dir.path()).unwrap();
    assert!(marker.exists(), "read, and kept while current");
    assert!(store.snapshot_is_current());
    assert_eq!(answers(&store), truth);
}

#[test]
fn the_current_marker_follows_the_snapshot_token() {
    let (dir, db, _bytes, _token) = saved_store();
    drop(db);
    let marker = dir.path().join(MARKER);
    assert!(marker.exists(), "written with the snapshot");
    // The test's own sled handle wrote to the log since: not trusted, and removed.
    let store = Store::open(dir.path()).unwrap();
    assert!(!marker.exists(), "the log changed behind it");
    assert!(
        store.snapshot_is_current(),
        "sled's token still names the snapshot"
    );
    let truth = answers(&store);
    store.save_snapshot().unwrap();
    assert!(marker.exists(), "a stop writes it again");
    drop(store);

    let store = Store::open(dir.path()).unwrap();
    assert!(marker.exists(), "read, and kept while current");
    let april = SettingsChange {
        fiscal_year_start_month: Some(4),
        ..SettingsChange::default()
    }
    .validate()
    .unwrap();
    store.update_settings("acme", &april).unwrap();
    assert!(!marker.exists(), "a settings change removes it");
    store.save_snapshot().unwrap();
    assert!(marker.exists(), "a stop writes it again");
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert!(store.snapshot_is_current());
    assert_eq!(store.settings("acme").fiscal_year_start_month, 4);
    assert_eq!(answers(&store), truth);

    let (tenant, records) = dataset().remove(0);
    store.put(tenant, records.clone()).unwrap();
    assert!(!marker.exists(), "the first write removes it");
    assert!(!store.snapshot_is_current());
    store.save_snapshot().unwrap();
    let settings =
        crate::settings::SettingsByTenant::from([("acme".to_owned(), store.settings("acme"))]);
    drop(store);

    // sled names another snapshot than the marker and the file do, the marker written
    // over the log as it is (a directory restored in part): the rows are answered from
    // until sled opens, which refuses writes.
    let token = crate::store::current_marker::read(dir.path())
        .unwrap()
        .expect("written at the stop")
        .token;
    let db = open_db(dir.path());
    db.open_tree("meta")
        .unwrap()
        .insert(TOKEN_KEY, &(token ^ 1).to_le_bytes())
        .unwrap();
    db.flush().unwrap();
    drop(db);
    // sled's flusher thread outlives the handle a moment: wait for its log to settle.
    let log = || crate::store::current_marker::LogFile::of(dir.path()).unwrap();
    let mut seen = log();
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let now = log();
        if now == seen {
            break;
        }
        seen = now;
    }
    crate::store::current_marker::write(dir.path(), token, &settings).unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(
        store.put(tenant, records).is_err(),
        "writes are refused once sled opens"
    );
    assert!(!marker.exists());
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert!(!store.snapshot_is_current(), "the next start scans");
    assert_eq!(answers(&store), truth);
}

/// Every byte of the snapshot flipped in turn (XOR 0xFF): each open either verified the
/// snapshot (which the whole-file checksum makes impossible, but would be fine if its rows
/// were right) or discarded it and scanned sled; either way it holds and answers exactly
/// what sled holds.
#[test]
fn every_flipped_byte_of_the_snapshot_is_caught() {
    let (dir, db, bytes, token) = saved_store();
    let truth = scanned(&db);
    let truth_answers = answers(&truth);
    let (mut verified, mut rescanned) = (0, 0);
    for i in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[i] ^= 0xFF;
        let store = open_with_snapshot(dir.path(), &db, &token, &damaged, OpenOptions::default());
        if store.snapshot_is_current() {
            verified += 1;
        } else {
            rescanned += 1;
        }
        check_against(
            &store,
            &truth,
            &truth_answers,
            dir.path(),
            &db,
            &format!("byte {i} flipped"),
            i % 16 == 0,
        );
    }
    println!(
        "{} bytes flipped one at a time: {verified} verified, {rescanned} rescanned",
        bytes.len()
    );
    assert_eq!(verified + rescanned, bytes.len());
}

/// Every byte of the snapshot's content flipped in turn and the checksums made valid again
/// (so only the decoder's checks can catch it), opened with `verify_snapshot`: no panic,
/// no huge allocation, and the store holds what sled holds: the snapshot either does not
/// decode, or decodes to rows the comparison with the scan finds different (or equal).
#[test]
fn a_snapshot_with_valid_checksums_but_wrong_content_is_caught_by_verify() {
    let (dir, db, bytes, token) = saved_store();
    let truth = scanned(&db);
    let truth_answers = answers(&truth);
    let (header, content) = content_of(&bytes);
    let (mut undecodable, mut differing, mut same) = (0, 0, 0);
    for i in 0..content.len() {
        let mut altered = content.clone();
        altered[i] ^= 0xFF;
        let altered = snapshot_of(&header, &altered);
        // Whether it decodes at all, told apart from a decoded one that verify rejected.
        let decodes = super::read_from(
            Box::new(std::io::Cursor::new(altered.clone())),
            altered.len() as u64,
            Some(u64::from_le_bytes(token.as_ref().try_into().unwrap())),
        )
        .is_ok();
        let options = OpenOptions {
            verify_snapshot: true,
            ..OpenOptions::default()
        };
        let store = open_with_snapshot(dir.path(), &db, &token, &altered, options);
        match (decodes, store.snapshot_is_current()) {
            (false, current) => {
                assert!(
                    !current,
                    "content byte {i}: an undecodable snapshot was read"
                );
                undecodable += 1;
            }
            (true, false) => differing += 1,
            (true, true) => same += 1,
        }
        check_against(
            &store,
            &truth,
            &truth_answers,
            dir.path(),
            &db,
            &format!("content byte {i} flipped"),
            i % 16 == 0,
        );
    }
    println!(
        "{} content bytes flipped, checksums valid: {undecodable} did not decode, {differing} differed from sled, {same} decoded to the same rows",
        content.len()
    );
    assert!(undecodable > 0 && differing > 0);
}

/// Writes `value` at `at` in `content`.
fn set(content: &mut [u8], at: usize, value: u32) {
    content[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

/// The u32 at `at` in `content`.
fn u32_at(content: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(content[at..at + 4].try_into().unwrap())
}

/// Huge lengths, counts and slots, with valid checksums, and a truncated file: each read
/// fails at once, saying why, without allocating what the field claims (a slot of
/// 0xF000_0000 would otherwise have the slab allocate hundreds of gigabytes), and the
/// store opens by scanning sled.
#[test]
fn huge_lengths_and_slots_are_refused_before_anything_is_allocated() {
    let (dir, db, bytes, token) = saved_store();
    let truth = scanned(&db);
    let truth_answers = answers(&truth);
    let (header, content) = content_of(&bytes);
    let token_value = u64::from_le_bytes(token.as_ref().try_into().unwrap());
    // content = tenants u32 ‖ name (len u32 ‖ bytes) ‖ dimension values (count u32 ‖ ...)
    let name_len = u32_at(&content, 4) as usize;
    let dims_at = 8 + name_len;
    let first_dim_len_at = dims_at + 4;
    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();
    for (what, at, value, why) in [
        ("tenant count", 0, u32::MAX, "tenants"),
        ("tenant name length", 4, 0xFFFF_FFF0, "bytes of a string"),
        (
            "dimension value count",
            dims_at,
            u32::MAX - 1,
            "dimension values",
        ),
        (
            "dimension value length",
            first_dim_len_at,
            0x7FFF_FFFF,
            "bytes of a string",
        ),
    ] {
        let mut altered = content.clone();
        set(&mut altered, at, value);
        cases.push((what, snapshot_of(&header, &altered), why));
    }
    // The first customer row's slot: after the customer ids, at the customers' count.
    {
        let mut at = first_dim_len_at - 4;
        let dims = u32_at(&content, at);
        at += 4;
        for _ in 0..dims {
            at += 4 + u32_at(&content, at) as usize;
        }
        let ids = u32_at(&content, at);
        at += 4;
        for _ in 0..ids {
            at += 4 + u32_at(&content, at) as usize + 4;
        }
        // The customers' section length (u64), then their count.
        let section_at = at;
        at += 8;
        assert!(u32_at(&content, at) > 0, "no customer rows");
        let mut altered = content.clone();
        set(&mut altered, at, u32::MAX);
        cases.push((
            "customer row count",
            snapshot_of(&header, &altered),
            "customer rows",
        ));
        let mut altered = content.clone();
        set(&mut altered, at + 4, 0xF000_0000);
        cases.push((
            "customer slot",
            snapshot_of(&header, &altered),
            "may not span",
        ));
        let mut altered = content.clone();
        set(&mut altered, section_at, u32::MAX);
        cases.push((
            "customer section length",
            snapshot_of(&header, &altered),
            "bytes of customer rows",
        ));
        let mut altered = content.clone();
        let length = u32_at(&content, section_at);
        set(&mut altered, section_at, length + 1);
        cases.push((
            "customer section length one long",
            snapshot_of(&header, &altered),
            "do not take",
        ));
    }
    // A block length, raw (its checksum is never reached).
    let mut altered = bytes.clone();
    set(&mut altered, HEADER, u32::MAX);
    cases.push(("block length", altered, "claims"));
    cases.push((
        "file cut in half",
        bytes[..bytes.len() / 2].to_vec(),
        "truncated",
    ));
    cases.push((
        "file cut after the header",
        bytes[..HEADER].to_vec(),
        "truncated",
    ));
    cases.push((
        "file cut inside the header",
        bytes[..HEADER - 1].to_vec(),
        "truncated",
    ));
    let mut old = bytes.clone();
    old[8..12].copy_from_slice(&1u32.to_le_bytes());
    cases.push(("version 1", old, "version 1"));
    for (what, snapshot, why) in cases {
        let error = super::read_from(
            Box::new(std::io::Cursor::new(snapshot.clone())),
            snapshot.len() as u64,
            Some(token_value),
        )
        .map(|_| ())
        .expect_err(what);
        assert!(error.to_string().contains(why), "{what}: {error}");
        let store = open_with_snapshot(dir.path(), &db, &token, &snapshot, OpenOptions::default());
        assert!(!store.snapshot_is_current(), "{what}: read");
        check_against(&store, &truth, &truth_answers, dir.path(), &db, what, true);
    }
}

/// `verify_snapshot` scans sled after loading a snapshot that verified: when sled holds
/// something else (here a record written behind the store's back, the snapshot's token
/// kept), the store serves the scanned rows and removes the snapshot; without it the
/// snapshot's rows are served.
#[test]
fn verify_snapshot_serves_the_scanned_rows_when_they_differ() {
    let (dir, db, bytes, token) = saved_store();
    // A deal changed in sled only: its amount.
    let tree = db.open_tree("records").unwrap();
    let (key, value) = tree
        .scan_prefix(crate::codec::tenant_prefix(TENANTS[0]))
        .map(Result::unwrap)
        .find(|(key, value)| matches!(crate::codec::decode_record(key, value), Ok(Record::Deal(_))))
        .unwrap();
    let Ok(Record::Deal(mut deal)) = crate::codec::decode_record(&key, &value) else {
        unreachable!()
    };
    deal.amount += Decimal::ONE;
    let slot = crate::codec::value_slot(&key, &value).unwrap().unwrap();
    tree.insert(key, crate::codec::encode_record(&Record::Deal(deal), slot))
        .unwrap();
    let truth = scanned(&db);
    let truth_answers = answers(&truth);

    let stale = open_with_snapshot(dir.path(), &db, &token, &bytes, OpenOptions::default());
    assert!(stale.snapshot_is_current());
    assert_eq!(
        differing_rows(&stale, &truth),
        vec![(TENANTS[0], vec![RecordKind::Deal])]
    );
    drop(stale);

    let options = OpenOptions {
        verify_snapshot: true,
        ..OpenOptions::default()
    };
    let store = open_with_snapshot(dir.path(), &db, &token, &bytes, options);
    assert!(
        !store.snapshot_is_current(),
        "the differing snapshot was kept"
    );
    check_against(
        &store,
        &truth,
        &truth_answers,
        dir.path(),
        &db,
        "verified",
        true,
    );
}

/// A version 4 snapshot (each kind's rows without their length before them) is still read,
/// to the same rows as the version 5 one, and served.
#[test]
fn a_version_4_snapshot_is_still_read() {
    let (dir, db, bytes, token) = saved_store();
    let truth = scanned(&db);
    let truth_answers = answers(&truth);
    let token_value = u64::from_le_bytes(token.as_ref().try_into().unwrap());
    let read = |bytes: &[u8]| {
        super::read_from(
            Box::new(std::io::Cursor::new(bytes.to_vec())),
            bytes.len() as u64,
            Some(token_value),
        )
        .expect("the snapshot reads")
        .1
    };
    let tenants = read(&bytes);
    let old = tempfile::tempdir().unwrap();
    let path = old.path().join("v4");
    let borrowed: Vec<(&str, &super::Rows)> =
        tenants.iter().map(|(n, r)| (n.as_str(), r)).collect();
    super::write_to(&path, token_value, &borrowed, 4).unwrap();
    let v4 = std::fs::read(&path).unwrap();
    assert_eq!(u32::from_le_bytes(v4[8..12].try_into().unwrap()), 4);
    assert!(v4.len() < bytes.len(), "version 4 has no section lengths");
    let again = read(&v4);
    assert_eq!(again.len(), tenants.len());
    for ((name, rows), (name_again, rows_again)) in tenants.iter().zip(&again) {
        assert_eq!(name, name_again);
        assert!(
            super::differing_kinds(rows, rows_again).is_empty(),
            "{name}"
        );
    }
    let store = open_with_snapshot(dir.path(), &db, &token, &v4, OpenOptions::default());
    assert!(
        store.snapshot_is_current(),
        "the version 4 snapshot was not read"
    );
    check_against(
        &store,
        &truth,
        &truth_answers,
        dir.path(),
        &db,
        "version 4",
        true,
    );
}
