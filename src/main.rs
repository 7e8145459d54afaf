//! The kpid binary: the command line of the `kpid` library with the four built-in metric
//! families (linked by the library).

fn main() -> std::process::ExitCode {
    kpid::run()
}
