//! How long the first read after a single write waits, per record kind: a store of N
//! generated records (created in DIR on the first run, reopened after), read once (the
//! index built and warmed), then ROUNDS times for each kind one new record written and
//! the measures of a metric reading that kind read right after (as the benchmark's mixed
//! phase does through gRPC). Prints p50 and p99 (the slowest of fewer than 100) per kind.
//!
//! `cargo run -p kpi-store --release --example read_after_write -- 1000000 [DIR] [ROUNDS]`

use std::time::{Duration, Instant};

use kpi_core::{DataSource, Measure, Scope, SpendCategories, SurveyKind, Window};
use kpi_store::generate::{stream, DemoOptions};
use kpi_store::{Record, RecordKind, Store};

/// Per kind, the measures of the metric the benchmark reads after writing that kind.
fn measures(kind: RecordKind) -> Vec<Measure> {
    match kind {
        RecordKind::Deal => vec![Measure::DealsWon, Measure::DealsLost],
        RecordKind::Lead => vec![Measure::LeadsCreated, Measure::LeadsConverted],
        RecordKind::Customer => vec![
            Measure::CustomersAtStart,
            Measure::CustomersChurnedFromStart,
        ],
        RecordKind::Ticket => vec![Measure::TicketsResponded, Measure::FirstResponseHoursTotal],
        RecordKind::Subscription => vec![Measure::MrrAtEnd],
        RecordKind::SurveyResponse => vec![Measure::SurveyScoreTotal(SurveyKind::Nps)],
        RecordKind::Purchase => vec![Measure::Buyers, Measure::RepeatBuyers],
        RecordKind::Activity => vec![Measure::Activities],
        RecordKind::Spend => vec![
            Measure::Spend(SpendCategories::ALL),
            Measure::CustomersAcquired,
        ],
        RecordKind::Campaign => vec![Measure::EmailDelivered, Measure::EmailOpens],
        RecordKind::Quota => vec![Measure::QuotaProrated, Measure::WonAmount],
        // A rate converts the amounts of its currency again.
        RecordKind::FxRate => vec![Measure::WonAmount, Measure::MrrAtEnd],
    }
}

/// `record` under id `id`.
fn with_id(mut record: Record, id: String) -> Record {
    match &mut record {
        Record::Customer(r) => r.id = id,
        Record::Lead(r) => r.id = id,
        Record::Deal(r) => r.id = id,
        Record::Subscription(r) => r.id = id,
        Record::Purchase(r) => r.id = id,
        Record::Spend(r) => r.id = id,
        Record::Campaign(r) => r.id = id,
        Record::Ticket(r) => r.id = id,
        Record::SurveyResponse(r) => r.id = id,
        Record::Quota(r) => r.id = id,
        Record::FxRate(r) => r.id = id,
        Record::Activity(r) => r.id = id,
    }
    record
}

fn quantile(times: &mut [Duration], q: f64) -> Duration {
    times.sort();
    times[((times.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let records: usize = args
        .next()
        .map_or(1_000_000, |s| s.parse().expect("a count"));
    let dir = args.next().map_or_else(
        || std::env::temp_dir().join(format!("kpid-raw-{records}")),
        std::path::PathBuf::from,
    );
    let rounds: usize = args.next().map_or(20, |s| s.parse().expect("a count"));
    let opts = DemoOptions {
        records,
        ..DemoOptions::default()
    };
    if !dir.exists() {
        let store = Store::open(&dir).expect("a store");
        let mut batch = Vec::with_capacity(10_000);
        for r in stream(&opts) {
            batch.push(r);
            if batch.len() == 10_000 {
                store
                    .put("default", std::mem::take(&mut batch))
                    .expect("put");
            }
        }
        store.put("default", batch).expect("put");
        store.save_snapshot().expect("snapshot");
    }
    let store = Store::open(&dir).expect("reopen");
    let window = Window::new(
        "2024-01-01T00:00:00Z".parse().unwrap(),
        "2025-01-01T00:00:00Z".parse().unwrap(),
    )
    .unwrap();
    let scope = Scope::new(window);
    let read = |kind: RecordKind| {
        let source = store.source("default");
        for m in measures(kind) {
            source.measure(m, &scope).expect("a measure");
        }
    };
    let t = Instant::now();
    for kind in RecordKind::ALL {
        read(kind);
    }
    println!("first read of every kind's measures: {:.2?}", t.elapsed());
    // Let the background warm-up finish.
    std::thread::sleep(Duration::from_secs(5));
    let templates: Vec<Record> = stream(&DemoOptions {
        records: 5_000,
        ..DemoOptions::default()
    })
    .collect();
    let run = std::process::id();
    for kind in RecordKind::ALL {
        let of_kind: Vec<&Record> = templates.iter().filter(|r| r.kind() == kind).collect();
        if of_kind.is_empty() {
            println!("{kind:?}: none among the templates, not written");
            continue;
        }
        let mut times = Vec::new();
        for round in 0..rounds {
            let record = with_id(
                of_kind[round % of_kind.len()].clone(),
                format!("raw-{run}-{round}"),
            );
            store.put("default", vec![record]).expect("put");
            let t = Instant::now();
            read(kind);
            times.push(t.elapsed());
        }
        let p50 = quantile(&mut times, 0.5);
        let p99 = quantile(&mut times, 0.99);
        println!("{kind:?}: read after a single write p50 {p50:.2?} p99 {p99:.2?}");
    }
    // So the next run opens from the snapshot.
    store.save_snapshot().expect("snapshot");
}
