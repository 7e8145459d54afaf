//! Where the query index's memory goes: opens a store, runs the bench's dashboard (every
//! metric, the bench's year by month) in-process, and prints the heap each measure's first
//! read added (the index parts it built), largest first, with the heap and the resident
//! memory after opening and after the dashboard.
//!
//! `cargo run --release -p kpi-bench --example index_memory -- DIR` (DIR holds a store, e.g.
//! one written by `cargo run --release -p kpi-store --example memory -- 10000000 DIR`).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kpi_core::{
    ComputeSpec, DataSource, Decimal, Dimension, Granularity, Measure, MetricError, Scope, Window,
};
use kpi_marketing as _;
use kpi_revenue as _;
use kpi_sales as _;
use kpi_success as _;

#[path = "common/counting.rs"]
mod counting;
use counting::{Counting, LIVE, PEAK};

#[global_allocator]
static ALLOC: Counting = Counting;

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

/// A source that notes what each measure's first read (per set of filtered dimensions)
/// added to the heap and how long it took.
struct Probe<'a> {
    inner: &'a dyn DataSource,
    seen: Mutex<HashMap<String, (isize, Duration)>>,
}

impl Probe<'_> {
    fn noted<T>(&self, key: String, read: impl FnOnce() -> T) -> T {
        if self.seen.lock().unwrap().contains_key(&key) {
            return read();
        }
        let before = LIVE.load(Ordering::Relaxed) as isize;
        let t = Instant::now();
        let out = read();
        let took = t.elapsed();
        let grew = LIVE.load(Ordering::Relaxed) as isize - before;
        self.seen.lock().unwrap().insert(key, (grew, took));
        out
    }
}

fn dims(scope: &Scope) -> String {
    scope
        .filters
        .keys()
        .map(|d| format!("{d:?}"))
        .collect::<Vec<_>>()
        .join("+")
}

impl DataSource for Probe<'_> {
    fn measure(&self, measure: Measure, scope: &Scope) -> Result<Decimal, MetricError> {
        self.noted(format!("{measure:?} [{}]", dims(scope)), || {
            self.inner.measure(measure, scope)
        })
    }

    fn group_values(
        &self,
        dimension: Dimension,
        scope: &Scope,
        measures: &[Measure],
    ) -> Result<Vec<String>, MetricError> {
        self.noted(format!("values of {dimension:?} [{}]", dims(scope)), || {
            self.inner.group_values(dimension, scope, measures)
        })
    }
}

fn main() {
    let dir = std::env::args().nth(1).expect("a store directory");
    let t = Instant::now();
    let store = kpi_store::Store::open(&dir).expect("a store");
    let opened = LIVE.load(Ordering::Relaxed);
    println!(
        "opened in {:.2?}: heap {:.0} MiB, rss {} MiB",
        t.elapsed(),
        mib(opened),
        rss_mib()
    );
    let window = Window::new(
        "2024-01-01T00:00:00Z".parse().unwrap(),
        "2025-01-01T00:00:00Z".parse().unwrap(),
    )
    .unwrap();
    let registry = kpi_core::registry().expect("the registry");
    let specs: Vec<ComputeSpec> = registry
        .metrics()
        .map(|m| ComputeSpec {
            granularity: Some(Granularity::Month),
            ..ComputeSpec::new(m.descriptor().id, Some(window))
        })
        .collect();
    let inner = store.source("default");
    let probe = Probe {
        inner: &inner,
        seen: Mutex::new(HashMap::new()),
    };
    // The first read builds the index over every row of each part (the background
    // thread builds the parts the read does not need); wait until it is done, so what the
    // dashboard adds is what its filters and groups build.
    let t = Instant::now();
    inner
        .measure(Measure::DealsWon, &Scope::new(window))
        .expect("a first read");
    let mut last = 0;
    while LIVE.load(Ordering::Relaxed) != last {
        last = LIVE.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_secs(2));
    }
    let warmed = LIVE.load(Ordering::Relaxed);
    println!(
        "index over every row built in {:.2?} (less the last 2 s): heap {:.0} MiB (+{:.0}), \
         peak {:.0} MiB, rss {} MiB",
        t.elapsed(),
        mib(warmed),
        mib(warmed - opened),
        mib(PEAK.load(Ordering::Relaxed)),
        rss_mib()
    );
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
    let t = Instant::now();
    let results = registry.compute_batch(&specs, Some(&probe));
    let took = t.elapsed();
    let failed = results.iter().filter(|r| r.is_err()).count();
    let after = LIVE.load(Ordering::Relaxed);
    println!(
        "dashboard ({} metrics, {failed} failed) in {took:.2?}: heap {:.0} MiB (+{:.0}), \
         peak {:.0} MiB, rss {} MiB",
        specs.len(),
        mib(after),
        mib(after - warmed),
        mib(PEAK.load(Ordering::Relaxed)),
        rss_mib()
    );
    let seen = probe.seen.into_inner().unwrap();
    let mut by_size: Vec<_> = seen.into_iter().collect();
    by_size.sort_by_key(|(_, (grew, _))| -grew);
    let mut total: BTreeMap<bool, isize> = BTreeMap::new();
    for (key, (grew, took)) in &by_size {
        *total.entry(*grew >= 0).or_default() += grew;
        if grew.unsigned_abs() >= 1 << 20 {
            println!(
                "{:>9.1} MiB {:>9.1?}  {key}",
                *grew as f64 / (1 << 20) as f64,
                took
            );
        }
    }
    println!(
        "first reads: {:.0} MiB added, {:.0} MiB freed ({} reads; those under 1 MiB not shown)",
        mib(total.get(&true).copied().unwrap_or(0).unsigned_abs()),
        mib(total.get(&false).copied().unwrap_or(0).unsigned_abs()),
        by_size.len()
    );
}
