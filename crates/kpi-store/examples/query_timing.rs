//! Times the store at scale: loading a generated dataset, building the query index, and
//! answering measures, unfiltered and filtered; then, with WRITES, the same measures again
//! once that many records were written in batches of 25 (the first records again, from
//! another seed: upserts that change rows, customers among them), so every part read is a
//! base plus a delta (`index/delta.rs`).
//!
//! `cargo run -p kpi-store --release --example query_timing -- 1000000 [WRITES]`

use std::time::{Duration, Instant};

use kpi_core::{DataSource, Dimension, Measure, Scope, SpendCategories, SurveyKind, Window};
use kpi_store::generate::{stream, DemoOptions};
use kpi_store::Store;

/// Puts `records` in the tenant `default`, `size` at a time.
fn put_in_batches(store: &Store, records: impl Iterator<Item = kpi_store::Record>, size: usize) {
    let mut batch = Vec::with_capacity(size);
    for r in records {
        batch.push(r);
        if batch.len() == size {
            store
                .put("default", std::mem::take(&mut batch))
                .expect("put");
        }
    }
    store.put("default", batch).expect("put");
}

fn main() {
    let records: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("a record count"))
        .unwrap_or(1_000_000);
    let writes: usize = std::env::args()
        .nth(2)
        .map(|s| s.parse().expect("a count of records to write"))
        .unwrap_or(0);
    let opts = DemoOptions {
        records,
        ..DemoOptions::default()
    };
    let dir = std::env::temp_dir().join(format!("kpid-query-timing-{}", std::process::id()));
    let store = Store::open(&dir).expect("a store in a temporary directory");
    let started = Instant::now();
    put_in_batches(&store, stream(&opts), 20_000);
    println!(
        "generated and stored {} records in {:.2?}",
        store.stats().records,
        started.elapsed()
    );

    drop(store);
    let t = Instant::now();
    let store = Store::open(&dir).expect("reopen");
    println!(
        "reopened (every record decoded into memory) in {:.2?}",
        t.elapsed()
    );

    let window = Window::new(
        "2024-04-01T00:00:00Z".parse().unwrap(),
        "2024-07-01T00:00:00Z".parse().unwrap(),
    )
    .unwrap();
    let plain = Scope::new(window);
    let mut by_owner = Scope::new(window);
    by_owner.filters.insert(Dimension::Owner, "rep-003".into());
    let mut two = by_owner.clone();
    two.filters.insert(Dimension::Segment, "smb".into());

    let source = store.source("default");
    let t = Instant::now();
    source.measure(Measure::DealsWon, &plain).unwrap();
    println!("index built on first read in {:.2?}", t.elapsed());
    let t = Instant::now();
    source.measure(Measure::DealsWon, &by_owner).unwrap();
    println!(
        "owner partitions built on first filtered read in {:.2?}",
        t.elapsed()
    );
    let t = Instant::now();
    source.measure(Measure::DealsWon, &two).unwrap();
    println!("segment partitions built in {:.2?}", t.elapsed());

    let measures = [
        Measure::DealsWon,
        Measure::WonAmount,
        Measure::ClosingReps,
        Measure::DealsOpen,
        Measure::StageDaysTotal,
        Measure::QuotaProrated,
        Measure::LeadsCreated,
        Measure::LeadsConverted,
        Measure::CustomersAtStart,
        Measure::CustomersChurnedFromStart,
        Measure::CustomersNewRetained,
        Measure::CustomersActiveInWindow,
        Measure::MeanChurnedTenureYears,
        Measure::NewCustomerRevenue,
        Measure::NewCustomerMeanFirstMrr,
        Measure::Spend(SpendCategories::ALL),
        Measure::PurchaseRevenue,
        Measure::Buyers,
        Measure::RepeatBuyers,
        Measure::MrrAtEnd,
        Measure::PayingCustomersAtEnd,
        Measure::ExpansionMrr,
        Measure::ResolutionHoursTotal,
        Measure::SurveyResponses {
            kind: SurveyKind::Nps,
            scale: 10,
            min: 9,
            max: 10,
        },
    ];
    let table = |source: &kpi_store::TenantSource| {
        println!(
            "{:<40} {:>12} {:>12} {:>12}",
            "measure (µs per call)", "all", "owner", "owner+segment"
        );
        let mut total = Duration::ZERO;
        for m in measures {
            // None: the measure's records cannot carry a filter's dimension.
            let time = |scope: &Scope| {
                // The first read of a filter builds that dimension's partitions.
                source.measure(m, scope).ok()?;
                let n = 200;
                let t = Instant::now();
                for _ in 0..n {
                    std::hint::black_box(source.measure(m, scope).unwrap());
                }
                Some(t.elapsed() / n)
            };
            let us = |d: Option<Duration>| {
                d.map_or("—".to_owned(), |d| {
                    format!("{:.1}", d.as_secs_f64() * 1e6)
                })
            };
            let times = [time(&plain), time(&by_owner), time(&two)];
            total += times.iter().flatten().sum::<Duration>();
            println!(
                "{:<40} {:>12} {:>12} {:>12}",
                format!("{m:?}").chars().take(40).collect::<String>(),
                us(times[0]),
                us(times[1]),
                us(times[2])
            );
        }
        println!("every measure and scope once: {total:.2?}");
    };
    table(&source);
    if writes > 0 {
        let again = DemoOptions {
            seed: opts.seed + 1,
            ..opts
        };
        let t = Instant::now();
        put_in_batches(&store, stream(&again).take(writes), 25);
        println!(
            "{writes} records written in batches of 25 in {:.2?}",
            t.elapsed()
        );
        let source = store.source("default");
        source.measure(Measure::DealsWon, &plain).unwrap();
        table(&source);
    }
    let t = Instant::now();
    let owners = source
        .group_values(Dimension::Owner, &plain, &[Measure::DealsWon])
        .unwrap();
    println!(
        "group_values(owner): {} values in {:.2?}",
        owners.len(),
        t.elapsed()
    );
    drop(source);
    drop(store);
    std::fs::remove_dir_all(&dir).expect("remove the temporary store");
}
