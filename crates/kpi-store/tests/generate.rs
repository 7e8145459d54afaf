//! The demo dataset: deterministic, valid, of the size asked, with every kind.

use std::collections::{BTreeMap, HashSet};

use jiff::Timestamp;
use kpi_store::generate::{generate, stream, DemoOptions};
use kpi_store::{validate, Record, RecordKind};

#[test]
fn the_same_seed_gives_the_same_records() {
    let opts = DemoOptions {
        records: 5000,
        ..DemoOptions::default()
    };
    let a = generate(&opts);
    assert_eq!(a, generate(&opts));
    assert_eq!(a, stream(&opts).collect::<Vec<_>>());
    let b = generate(&DemoOptions { seed: 43, ..opts });
    assert_ne!(a, b);
}

#[test]
fn every_record_is_valid_unique_and_in_the_two_years_before_end() {
    let opts = DemoOptions::default();
    assert_eq!(opts.seed, 42);
    assert_eq!(opts.records, 20_000);
    assert_eq!(
        opts.end,
        "2025-01-01T00:00:00Z".parse::<Timestamp>().unwrap()
    );
    let records = generate(&opts);
    // About the number asked for (a lead's story is emitted whole).
    assert!(
        (20_000..20_100).contains(&records.len()),
        "{}",
        records.len()
    );
    let mut keys = HashSet::new();
    let mut per_kind: BTreeMap<RecordKind, usize> = BTreeMap::new();
    let start = "2023-01-02T00:00:00Z".parse::<Timestamp>().unwrap();
    for r in &records {
        assert_eq!(validate(r), Ok(()), "{r:?}");
        assert!(
            keys.insert((r.kind(), r.id().to_owned())),
            "duplicate {r:?}"
        );
        *per_kind.entry(r.kind()).or_default() += 1;
        let t = match r {
            Record::Customer(c) => c.acquired_at,
            Record::Lead(l) => l.created_at,
            Record::Deal(d) => d.created_at,
            Record::Subscription(s) => s.started_at,
            Record::Purchase(p) => p.at,
            Record::Spend(s) => s.at,
            Record::Campaign(c) => c.started_at,
            Record::Ticket(t) => t.opened_at,
            Record::SurveyResponse(s) => s.at,
            Record::Quota(q) => q.period_start,
            Record::Activity(a) => a.occurred_at,
            Record::FxRate(r) => r.effective_at,
        };
        assert!(start <= t && t < opts.end, "{r:?}");
    }
    // Activities and exchange rates come with their variants (below).
    for kind in RecordKind::ALL
        .into_iter()
        .filter(|k| *k != RecordKind::Activity && *k != RecordKind::FxRate)
    {
        assert!(
            per_kind.get(&kind).copied().unwrap_or(0) > 10,
            "{kind:?}: {per_kind:?}"
        );
    }
}

/// The variant with attributes and activities: every kind, three attributes on every
/// customer and deal, activities that point at their deal; without it, none of either.
#[test]
fn the_open_data_variant_adds_attributes_and_activities() {
    let plain = generate(&DemoOptions {
        records: 5000,
        ..DemoOptions::default()
    });
    assert!(plain.iter().all(|r| r.attributes().is_empty()
        && r.currency().is_none()
        && r.kind() != RecordKind::Activity
        && r.kind() != RecordKind::FxRate));
    let open = generate(&DemoOptions {
        records: 5000,
        attributes_and_activities: true,
        currencies: true,
        ..DemoOptions::default()
    });
    // About a quarter of the deals name a currency; the rest are in the base.
    let deals_in = |code: Option<&str>| {
        open.iter()
            .filter(|r| r.kind() == RecordKind::Deal && r.currency() == code)
            .count()
    };
    assert!(deals_in(Some("GBP")) > 10 && deals_in(Some("USD")) > 10);
    assert!(deals_in(None) > deals_in(Some("GBP")) * 2);
    let deals: HashSet<&str> = open
        .iter()
        .filter(|r| r.kind() == RecordKind::Deal)
        .map(Record::id)
        .collect();
    let mut per_kind: BTreeMap<RecordKind, usize> = BTreeMap::new();
    for r in &open {
        assert_eq!(validate(r), Ok(()), "{r:?}");
        *per_kind.entry(r.kind()).or_default() += 1;
        match r {
            Record::Customer(_) | Record::Deal(_) => {
                assert_eq!(r.attributes().len(), 3, "{r:?}")
            }
            Record::Activity(a) => {
                assert!(deals.contains(a.deal_id.as_deref().unwrap()), "{a:?}")
            }
            _ => assert!(r.attributes().is_empty()),
        }
    }
    for kind in RecordKind::ALL {
        assert!(
            per_kind.get(&kind).copied().unwrap_or(0) > 10,
            "{kind:?}: {per_kind:?}"
        );
    }
}

#[test]
fn small_and_large_requests() {
    assert!(generate(&DemoOptions {
        records: 0,
        ..DemoOptions::default()
    })
    .is_empty());
    let tiny = generate(&DemoOptions {
        records: 50,
        ..DemoOptions::default()
    });
    assert!(!tiny.is_empty());
    // Lazily: the first records of a huge dataset come at once.
    let first: Vec<Record> = stream(&DemoOptions {
        records: 10_000_000,
        ..DemoOptions::default()
    })
    .take(1000)
    .collect();
    assert_eq!(first.len(), 1000);
}

/// Some customers churn and come back: a later subscription starts after every earlier one
/// of the customer ended (reactivation MRR), and such a customer is not marked churned.
#[test]
fn some_churned_customers_come_back() {
    let records = generate(&DemoOptions::default());
    let mut subscriptions: BTreeMap<&str, Vec<(Timestamp, Option<Timestamp>)>> = BTreeMap::new();
    let mut churned: BTreeMap<&str, bool> = BTreeMap::new();
    for r in &records {
        match r {
            Record::Subscription(s) => subscriptions
                .entry(s.customer_id.as_str())
                .or_default()
                .push((s.started_at, s.ended_at)),
            Record::Customer(c) => {
                churned.insert(c.id.as_str(), c.churned_at.is_some());
            }
            _ => {}
        }
    }
    let returning: Vec<&str> = subscriptions
        .iter()
        .filter(|(_, subs)| {
            subs.iter().any(|(start, _)| {
                let earlier: Vec<_> = subs.iter().filter(|(s, _)| s < start).collect();
                !earlier.is_empty()
                    && earlier
                        .iter()
                        .all(|(_, end)| end.is_some_and(|e| e < *start))
            })
        })
        .map(|(customer, _)| *customer)
        .collect();
    assert!(
        returning.len() >= 10,
        "{} returning customers",
        returning.len()
    );
    for customer in returning {
        assert_eq!(churned.get(customer), Some(&false), "{customer}");
    }
}
