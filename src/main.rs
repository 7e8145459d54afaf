//! The kpid binary: the command line of the `kpid` library with the four built-in metric
//! families (linked by the library).

kpi_server::jemalloc!();

fn main() -> std::process::ExitCode {
    kpid::run()
}
