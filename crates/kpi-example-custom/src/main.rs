//! `acme-kpid`: kpid with this team's metrics linked in. Everything kpid does (serve, demo,
//! import, compute…) works the same; `acme.weighted_pipeline` is one more metric.

// Link the team's metric crate so its `register_metric!` entries are collected.
use kpi_example_custom as _;

fn main() -> std::process::ExitCode {
    kpid::run()
}
