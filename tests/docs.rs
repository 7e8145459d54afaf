//! `docs/metrics.md` is generated from the metric descriptors linked into kpid; this test
//! fails when it is out of date. Regenerate with `UPDATE_DOCS=1 cargo test --test docs`.

use kpi_marketing as _;
use kpi_revenue as _;
use kpi_sales as _;
use kpi_success as _;

#[test]
fn metric_catalogue_doc_is_current() {
    let registry = kpi_core::registry().expect("registry builds");
    let rendered = kpi_core::docs::render_markdown(registry);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/metrics.md");
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &rendered).expect("write docs/metrics.md");
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == rendered,
        "docs/metrics.md is out of date: run `UPDATE_DOCS=1 cargo test --test docs` and commit it"
    );
}

#[test]
fn every_family_crate_is_linked() {
    let registry = kpi_core::registry().expect("registry builds");
    for family in ["sales", "marketing", "success", "revenue"] {
        assert!(
            registry.metrics().any(|m| m.descriptor().family == family),
            "no {family} metric is linked"
        );
    }
}
