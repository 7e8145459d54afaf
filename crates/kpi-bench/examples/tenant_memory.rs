//! What a tenant costs beyond its rows: stores TENANTS tenants of RECORDS demo records each
//! in a temporary store, then reads each tenant once (a few metrics over a year by month),
//! and prints the heap per tenant after the writes (rows) and after the reads (rows plus
//! the query state), with the heap of an empty index (the fixed part of a tenant's query
//! state).
//!
//! `cargo run --release -p kpi-bench --example tenant_memory -- [TENANTS] [RECORDS]`
//! (default 1000 tenants of 400 records).

use std::sync::atomic::Ordering;

use kpi_core::{ComputeSpec, Granularity, Window};
use kpi_marketing as _;
use kpi_revenue as _;
use kpi_sales as _;
use kpi_store::generate::{generate, DemoOptions};
use kpi_success as _;

#[path = "common/counting.rs"]
mod counting;
use counting::{Counting, LIVE};

#[global_allocator]
static ALLOC: Counting = Counting;

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .map_or(default, |a| a.parse().expect("a number"))
}

fn main() {
    let tenants = arg(1, 1000);
    let records = arg(2, 400);
    let store = kpi_store::Store::temporary().expect("a store");
    let window = Window::new(
        "2024-01-01T00:00:00Z".parse().unwrap(),
        "2025-01-01T00:00:00Z".parse().unwrap(),
    )
    .unwrap();
    let registry = kpi_core::registry().expect("the registry");
    let specs: Vec<ComputeSpec> = ["sales.win_rate", "revenue.mrr", "success.churn_rate"]
        .into_iter()
        .map(|id| ComputeSpec {
            granularity: Some(Granularity::Month),
            ..ComputeSpec::new(id, Some(window))
        })
        .collect();
    let before = LIVE.load(Ordering::Relaxed);
    for t in 0..tenants {
        let data = generate(&DemoOptions {
            records,
            seed: t as u64,
            ..DemoOptions::default()
        });
        store.put(&format!("t{t}"), data).expect("stored");
    }
    let written = LIVE.load(Ordering::Relaxed);
    for t in 0..tenants {
        let source = store.source(&format!("t{t}"));
        for result in registry.compute_batch(&specs, Some(&source)) {
            result.expect("computed");
        }
    }
    let read = LIVE.load(Ordering::Relaxed);
    let per = |bytes: usize| bytes as f64 / tenants as f64 / 1024.0;
    println!(
        "{tenants} tenants x {records} records: rows and sled's state {:.1} KiB a tenant; \
         query state {:.1} KiB a tenant more after one read of {} metrics",
        per(written - before),
        per(read - written),
        specs.len()
    );
}
