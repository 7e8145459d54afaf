//! Arbitrary bytes → `kpi.v1.ComputeRequest` and `kpi.v1.BatchComputeRequest` (prost) →
//! the server's conversion and the engine over a temporary in-memory store holding a few
//! generated records of every kind. Must never panic.

#![no_main]

use std::sync::OnceLock;

use kpi_core::Registry;
use kpi_store::generate::{generate, DemoOptions};
use kpi_store::Store;
use libfuzzer_sys::fuzz_target;

// The metric families register themselves at link time: link them all.
use kpi_marketing as _;
use kpi_revenue as _;
use kpi_sales as _;
use kpi_success as _;

/// The registry and a store of ~300 generated records, built once.
fn fixture() -> &'static (&'static Registry, Store) {
    static FIXTURE: OnceLock<(&'static Registry, Store)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let registry = kpi_core::registry().expect("the linked metrics are consistent");
        let store = Store::temporary().expect("a temporary store");
        let records = generate(&DemoOptions {
            records: 300,
            ..DemoOptions::default()
        });
        let outcome = store
            .put(kpi_server::TENANT, records)
            .expect("the generated records are stored");
        assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
        (registry, store)
    })
}

fuzz_target!(|data: &[u8]| {
    let (registry, store) = fixture();
    kpi_server::fuzzing::compute(registry, store, data);
});
