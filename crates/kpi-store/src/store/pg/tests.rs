//! Against the PostgreSQL server of `KPID_TEST_POSTGRES` (`scripts/postgres.sh`); each
//! test says it skipped without one.

use super::*;
use crate::generate::{generate, DemoOptions};

/// A fresh database on the test server, dropped with this.
struct TestDatabase {
    admin: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// `None` (saying so) without a test server.
    fn create(test: &str) -> Option<TestDatabase> {
        let Ok(admin) = std::env::var("KPID_TEST_POSTGRES") else {
            eprintln!("{test}: skipped, KPID_TEST_POSTGRES is not set (scripts/postgres.sh)");
            return None;
        };
        let name = format!("kpid_unit_{}_{test}", std::process::id());
        let base = admin
            .rsplit_once('/')
            .map_or(admin.as_str(), |(base, _)| base);
        let url = format!("{base}/{name}");
        Client::connect(&admin, NoTls)
            .and_then(|mut c| c.batch_execute(&format!("CREATE DATABASE {name}")))
            .expect("create the test database");
        Some(TestDatabase { admin, name, url })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let dropped = Client::connect(&self.admin, NoTls).and_then(|mut c| {
            c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
        });
        if let Err(e) = dropped {
            eprintln!("dropping {}: {e}", self.name);
        }
    }
}

/// Demo records of several kinds, no key twice.
fn some_records(n: usize) -> Vec<Record> {
    let records = generate(&DemoOptions {
        records: 60,
        ..DemoOptions::default()
    });
    let mut seen = std::collections::HashSet::new();
    records
        .into_iter()
        .filter(|r| seen.insert((r.kind(), r.id().to_owned())))
        .take(n)
        .collect()
}

fn encoded(records: &[Record]) -> Vec<(RecordKind, &str, Vec<u8>)> {
    records
        .iter()
        .map(|r| (r.kind(), r.id(), encode_record_without_slot(r)))
        .collect()
}

/// A version 2 change log (one row per change, positions in any order) becomes one row
/// per write at the migration to version 3: the same writes, changes in position order.
#[test]
fn a_version_2_change_log_migrates_to_one_row_per_write() {
    let Some(database) = TestDatabase::create("version_2_log") else {
        return;
    };
    let mut c = Client::connect(&database.url, NoTls).expect("connect");
    c.batch_execute(
        "CREATE TABLE kpid_migrations (version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now());
         INSERT INTO kpid_migrations (version) VALUES (1), (2);",
    )
    .expect("migrations table");
    c.batch_execute(MIGRATIONS[0]).expect("version 1");
    c.batch_execute(MIGRATIONS[1]).expect("version 2");
    let records = some_records(3);
    let settings = TenantSettings {
        base_currency: "EUR".into(),
        ..TenantSettings::default()
    };
    // Write 1 puts three records (logged last position first), write 2 the settings,
    // write 3 deletes two records.
    let log = "INSERT INTO change_log (tenant, sequence, position, kind, id, value)
               VALUES ('t', $1, $2, $3, $4, $5)";
    for (position, record) in records.iter().enumerate().rev() {
        let kind = i16::from(kind_byte(record.kind()));
        let value = encode_record_without_slot(record);
        c.execute(
            log,
            &[&1i64, &(position as i32 + 1), &kind, &record.id(), &value],
        )
        .expect("log a put");
    }
    c.execute(
        log,
        &[&2i64, &1i32, &SETTINGS_KIND, &"", &settings.encode()],
    )
    .expect("log the settings");
    for (position, record) in records.iter().take(2).enumerate() {
        let kind = i16::from(kind_byte(record.kind()));
        c.execute(
            log,
            &[
                &3i64,
                &(position as i32 + 1),
                &kind,
                &record.id(),
                &None::<Vec<u8>>,
            ],
        )
        .expect("log a delete");
    }
    migrate(&mut c).expect("migrate to version 3");
    let version: i32 = c
        .query_one("SELECT max(version) FROM kpid_migrations", &[])
        .expect("version")
        .get(0);
    assert_eq!(version, SCHEMA_VERSION);
    let expected = vec![
        LoggedWrite {
            sequence: 1,
            changes: records.iter().cloned().map(Change::Upsert).collect(),
        },
        LoggedWrite {
            sequence: 2,
            changes: vec![Change::Settings(settings)],
        },
        LoggedWrite {
            sequence: 3,
            changes: records[..2]
                .iter()
                .map(|r| Change::Delete(r.kind(), r.id().to_owned()))
                .collect(),
        },
    ];
    assert_eq!(read_log(&mut c, "t", 0, 3).expect("read the log"), expected);
    assert_eq!(
        read_log(&mut c, "t", 1, 2).expect("read the log"),
        expected[1..2]
    );
}

/// A put whose keys partly exist (the plain insert of new keys fails, and the batch
/// is upserted instead) replaces the existing row's value and adds the new one, in one
/// write.
#[test]
fn a_put_of_existing_keys_upserts() {
    let Some(database) = TestDatabase::create("put_existing") else {
        return;
    };
    let a = Postgres::open(&database.url).expect("open");
    let (customer, deal, lead) = (RecordKind::Customer, RecordKind::Deal, RecordKind::Lead);
    let first = vec![
        (customer, "c1", b"\x01one".to_vec()),
        (deal, "d1", b"\x01two".to_vec()),
    ];
    assert_eq!(a.put("t", &first, 0).expect("first put").sequence, 1);
    let second = vec![
        (lead, "l1", b"\x01three".to_vec()),
        (deal, "d1", b"\x01four".to_vec()),
    ];
    assert_eq!(a.put("t", &second, 1).expect("second put").sequence, 2);
    let rows = a.list("t", None, None, 10).expect("list");
    let values: Vec<&[u8]> = rows.iter().map(|(_, value)| value.as_slice()).collect();
    // Key order: customer (0x01), lead (0x02), deal (0x03).
    assert_eq!(values, [b"\x01one".as_slice(), b"\x01three", b"\x01four"]);
    assert_eq!(logged_writes(&a, "t"), 2);
    let mut c = a.connect().expect("connect");
    assert_eq!(sequence_of(&mut c, "t").expect("sequence"), 2);
}

/// How many writes of `tenant` the change log holds.
fn logged_writes(database: &Postgres, tenant: &str) -> i64 {
    let mut c = database.connect().expect("connect");
    c.query_one(
        "SELECT count(*) FROM change_log WHERE tenant = $1",
        &[&tenant],
    )
    .expect("count")
    .get(0)
}

/// A batch large enough to be copied in ([`COPY_FROM_ROWS`]) one of whose keys exists
/// is upserted: nothing of the failed copy remains, every key is stored once with the
/// later value, and the write is logged once.
#[test]
fn a_copied_batch_with_an_existing_key_upserts() {
    let Some(database) = TestDatabase::create("copy_existing") else {
        return;
    };
    let a = Postgres::open(&database.url).expect("open");
    let n = COPY_FROM_ROWS + 10;
    let ids: Vec<String> = (0..2 * n).map(|i| format!("c{i:05}")).collect();
    let batch = |from: usize, value: &[u8]| -> Vec<(RecordKind, &str, Vec<u8>)> {
        ids[from..from + n]
            .iter()
            .map(|id| (RecordKind::Customer, id.as_str(), value.to_vec()))
            .collect()
    };
    assert_eq!(
        a.put("t", &batch(0, b"\x01old"), 0)
            .expect("copied")
            .sequence,
        1
    );
    // Keys n .. 2n - 1, then n - 1, which exists: the copy fails at its last row.
    let mut second = batch(n, b"\x01new")[..n - 1].to_vec();
    second.push((
        RecordKind::Customer,
        ids[n - 1].as_str(),
        b"\x01new".to_vec(),
    ));
    assert_eq!(a.put("t", &second, 1).expect("upserted").sequence, 2);
    let rows = a.list("t", None, None, 10 * n).expect("list");
    assert_eq!(rows.len(), 2 * n - 1);
    let new = rows.iter().filter(|(_, value)| value == b"\x01new").count();
    assert_eq!(new, n, "the second batch's keys hold its value");
    assert_eq!(logged_writes(&a, "t"), 2);
}

/// Puts, a delete and a settings change through two connections (two replicas): each
/// write's sequence follows the last, the log holds every write as made, a write
/// returns those it had not applied, and a delete of nothing writes nothing.
#[test]
fn writes_are_logged_in_sequence_order() {
    let Some(database) = TestDatabase::create("writes_logged") else {
        return;
    };
    let a = Postgres::open(&database.url).expect("replica A");
    let b = Postgres::open(&database.url).expect("replica B");
    let records = some_records(5);
    let first = a.put("t", &encoded(&records[..3]), 0).expect("put on A");
    assert_eq!((first.sequence, first.missed.len()), (1, 0));
    let second = b.put("t", &encoded(&records[3..]), 0).expect("put on B");
    assert_eq!(second.sequence, 2);
    assert_eq!(
        second.missed,
        vec![LoggedWrite {
            sequence: 1,
            changes: records[..3].iter().cloned().map(Change::Upsert).collect(),
        }]
    );
    let keys: Vec<(RecordKind, &str)> = vec![
        (records[4].kind(), records[4].id()),
        (records[0].kind(), "no-such-id"),
    ];
    let deleted = a.delete("t", &keys, 1).expect("delete on A");
    assert_eq!(deleted.sequence, 3);
    assert_eq!(
        deleted.outcome,
        vec![(records[4].kind(), records[4].id().to_owned())]
    );
    assert_eq!(deleted.missed.len(), 1, "write 2, made on B");
    let nothing = a
        .delete("t", &[(records[0].kind(), "no-such-id")], 3)
        .expect("delete of nothing");
    assert_eq!((nothing.sequence, nothing.outcome.len()), (3, 0));
    let settings = b
        .update_settings(
            "t",
            |stored| {
                assert_eq!(stored, None);
                TenantSettings {
                    base_currency: "USD".into(),
                    ..TenantSettings::default()
                }
            },
            2,
        )
        .expect("settings on B");
    assert_eq!(settings.sequence, 4);
    let mut c = a.connect().expect("connect");
    let log = read_log(&mut c, "t", 0, 10).expect("read the log");
    let sequences: Vec<u64> = log.iter().map(|w| w.sequence).collect();
    assert_eq!(sequences, [1, 2, 3, 4]);
    assert_eq!(
        log[1].changes,
        records[3..]
            .iter()
            .cloned()
            .map(Change::Upsert)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        log[2].changes,
        vec![Change::Delete(
            records[4].kind(),
            records[4].id().to_owned()
        )]
    );
    assert_eq!(log[3].changes, vec![Change::Settings(settings.outcome)]);
    assert_eq!(sequence_of(&mut c, "t").expect("sequence"), 4);
    assert_eq!(a.list("t", None, None, 100).expect("list").len(), 4);
}
