//! The store's durable side: upserts, deletes, listing, reopening, tenants.

use std::collections::BTreeSet;
use std::str::FromStr;

use jiff::Timestamp;
use kpi_core::{DataSource, Decimal, Measure, Scope, Window};
use kpi_store::generate::{generate, DemoOptions};
use kpi_store::{Purchase, Record, RecordKey, RecordKind, Store, StoreError, DEFAULT_PAGE_SIZE};

fn purchase(id: &str, amount: &str) -> Record {
    Record::Purchase(Purchase {
        currency: None,
        attributes: Default::default(),
        id: id.into(),
        customer_id: "c1".into(),
        amount: Decimal::from_str(amount).unwrap(),
        at: "2024-01-02T00:00:00Z".parse().unwrap(),
    })
}

fn window() -> Scope {
    Scope::new(
        Window::new(
            "2023-01-01T00:00:00Z".parse::<Timestamp>().unwrap(),
            "2025-01-01T00:00:00Z".parse::<Timestamp>().unwrap(),
        )
        .unwrap(),
    )
}

fn all_records(store: &Store, tenant: &str, kind: Option<RecordKind>, page: usize) -> Vec<Record> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let p = store.list(tenant, kind, page, &token).unwrap();
        assert!(p.records.len() <= page.max(1));
        out.extend(p.records);
        if p.next_page_token.is_empty() {
            return out;
        }
        token = p.next_page_token;
    }
}

#[test]
fn store_and_source_are_send_sync_and_cheap_to_share() {
    fn check<T: Send + Sync + 'static>() {}
    check::<Store>();
    check::<kpi_store::TenantSource>();
}

#[test]
fn reopening_finds_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let records = generate(&DemoOptions {
        records: 3000,
        ..DemoOptions::default()
    });
    let (won, mrr) = {
        let store = Store::open(dir.path()).unwrap();
        let outcome = store.put("default", records.clone()).unwrap();
        assert_eq!(outcome.accepted, records.len() as u64);
        assert!(outcome.rejected.is_empty());
        store.put("acme", vec![purchase("p1", "10")]).unwrap();
        let s = store.source("default");
        (
            s.measure(Measure::WonAmount, &window()).unwrap(),
            s.measure(Measure::MrrAtEnd, &window()).unwrap(),
        )
    };
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.stats().records, records.len() as u64 + 1);
    assert!(store.stats().disk_bytes > 0);
    let listed = all_records(&store, "default", None, 1000);
    assert_eq!(listed.len(), records.len());
    let mut expected = records.clone();
    expected.sort_by(|a, b| (a.kind(), a.id()).cmp(&(b.kind(), b.id())));
    assert_eq!(listed, expected, "every record comes back, in key order");
    let s = store.source("default");
    assert_eq!(s.measure(Measure::WonAmount, &window()).unwrap(), won);
    assert_eq!(s.measure(Measure::MrrAtEnd, &window()).unwrap(), mrr);
    assert_eq!(
        all_records(&store, "acme", None, 10),
        vec![purchase("p1", "10")]
    );
}

#[test]
fn upserts_replace_and_deletes_are_durable() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store
            .put("default", vec![purchase("p1", "10"), purchase("p2", "20")])
            .unwrap();
        store.put("default", vec![purchase("p1", "15")]).unwrap();
        let removed = store
            .delete(
                "default",
                &[
                    RecordKey {
                        kind: RecordKind::Purchase,
                        id: "p2".into(),
                    },
                    RecordKey {
                        kind: RecordKind::Purchase,
                        id: "p2".into(),
                    },
                    RecordKey {
                        kind: RecordKind::Deal,
                        id: "p1".into(),
                    },
                ],
            )
            .unwrap();
        assert_eq!(
            removed, 1,
            "a key named twice counts once; another kind's id is another key"
        );
        assert_eq!(store.delete("nobody", &[]).unwrap(), 0);
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        all_records(&store, "default", None, 10),
        vec![purchase("p1", "15")]
    );
    assert_eq!(
        store
            .source("default")
            .measure(Measure::PurchaseRevenue, &window())
            .unwrap(),
        Decimal::from(15)
    );
}

#[test]
fn rejected_records_carry_their_index_and_the_rest_are_kept() {
    let store = Store::temporary().unwrap();
    let outcome = store
        .put(
            "default",
            vec![
                purchase("ok-1", "1"),
                purchase("", "1"),
                purchase("ok-2", "2"),
                purchase("bad", "-3"),
            ],
        )
        .unwrap();
    assert_eq!(outcome.accepted, 2);
    assert_eq!(outcome.rejected.len(), 2);
    assert_eq!(outcome.rejected[0].index, 1);
    assert_eq!(outcome.rejected[0].reason, "id is empty");
    assert_eq!(outcome.rejected[1].index, 3);
    assert_eq!(outcome.rejected[1].reason, "amount -3 is negative");
    assert_eq!(store.stats().records, 2);
}

#[test]
fn listing_pages_in_key_order_with_a_kind_filter() {
    let store = Store::temporary().unwrap();
    let records = generate(&DemoOptions {
        records: 400,
        ..DemoOptions::default()
    });
    store.put("default", records.clone()).unwrap();
    // Several pages of 7.
    let listed = all_records(&store, "default", None, 7);
    assert_eq!(listed.len(), records.len());
    let keys: Vec<(RecordKind, String)> = listed
        .iter()
        .map(|r| (r.kind(), r.id().to_owned()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(keys, sorted, "key order, no repeats");
    // One kind only.
    let deals = all_records(&store, "default", Some(RecordKind::Deal), 5);
    let expected: BTreeSet<String> = records
        .iter()
        .filter(|r| r.kind() == RecordKind::Deal)
        .map(|r| r.id().to_owned())
        .collect();
    assert!(expected.len() > 10);
    assert_eq!(
        deals.iter().map(|r| r.id().to_owned()).collect::<Vec<_>>(),
        expected.into_iter().collect::<Vec<_>>()
    );
    // Page sizes: 0 is the default; the last page has no token.
    let first = store.list("default", None, 0, "").unwrap();
    assert_eq!(first.records.len(), DEFAULT_PAGE_SIZE);
    assert!(!first.next_page_token.is_empty());
    let campaigns = store
        .list("default", Some(RecordKind::Campaign), 1000, "")
        .unwrap();
    assert!(campaigns.next_page_token.is_empty());
    // An empty tenant lists nothing.
    let empty = store.list("nobody", None, 10, "").unwrap();
    assert!(empty.records.is_empty() && empty.next_page_token.is_empty());
}

#[test]
fn bad_page_tokens_and_tenants_are_refused() {
    let store = Store::temporary().unwrap();
    store
        .put(
            "default",
            (0..5).map(|i| purchase(&format!("p{i}"), "1")).collect(),
        )
        .unwrap();
    let page = store
        .list("default", Some(RecordKind::Purchase), 2, "")
        .unwrap();
    assert_eq!(page.records.len(), 2);
    // The token resumes after p1.
    let next = store
        .list(
            "default",
            Some(RecordKind::Purchase),
            2,
            &page.next_page_token,
        )
        .unwrap();
    assert_eq!(next.records[0].id(), "p2");
    // ... but not in a listing of another kind.
    assert!(matches!(
        store.list("default", Some(RecordKind::Deal), 2, &page.next_page_token),
        Err(StoreError::InvalidPageToken(_))
    ));
    for bad in ["xyz", "0", "ff00"] {
        assert!(matches!(
            store.list("default", None, 2, bad),
            Err(StoreError::InvalidPageToken(_))
        ));
    }
    for tenant in ["", "a\0b", "tab\there"] {
        assert!(matches!(
            store.put(tenant, vec![purchase("p1", "1")]),
            Err(StoreError::InvalidTenant(_))
        ));
        assert!(matches!(
            store.list(tenant, None, 1, ""),
            Err(StoreError::InvalidTenant(_))
        ));
        assert!(matches!(
            store.delete(tenant, &[]),
            Err(StoreError::InvalidTenant(_))
        ));
    }
}

#[test]
fn concurrent_writers_and_readers() {
    let store = Store::temporary().unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for batch in 0..5 {
                    let records = (0..20)
                        .map(|i| purchase(&format!("t{t}-b{batch}-{i}"), "1"))
                        .collect();
                    store.put("default", records).unwrap();
                    // Reads between writes see whole batches.
                    let n = store
                        .source("default")
                        .measure(Measure::Purchases, &window())
                        .unwrap();
                    assert_eq!(n % Decimal::from(20), Decimal::ZERO);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let n = store
        .source("default")
        .measure(Measure::Purchases, &window())
        .unwrap();
    assert_eq!(n, Decimal::from(400));
    assert_eq!(store.stats().records, 400);
}
