//! The memory allocator of kpid's binaries (`kpid`, and `kpi-bench`, whose built-in
//! server and raw-sled baseline must run on the same allocator as kpid).
//!
//! jemalloc instead of the system allocator: with glibc's, memory freed while the index is
//! built (sort buffers, partitions' scratch) stays resident in per-thread arenas; jemalloc,
//! with one arena and a background thread returning freed pages shortly after, holds less.
//! Measured at 10M records (`kpi-bench`, BENCHMARKS.md has the table): peak RSS 2 034 MiB
//! with glibc's allocator, 2 053 MiB with jemalloc's defaults, 1 916 MiB with the decay
//! options below, about 60 MiB less again with one arena; ingest through kpid runs faster
//! with jemalloc in every configuration tried.

/// Declares jemalloc the binary's global allocator, with [`MALLOC_CONF`]: invoke once, at
/// the top level of a binary crate (`kpi_server::jemalloc!();`). On other than Unix targets
/// it declares nothing (the system allocator stays).
#[macro_export]
macro_rules! jemalloc {
    () => {
        #[cfg(unix)]
        #[global_allocator]
        static GLOBAL: $crate::alloc::Jemalloc = $crate::alloc::Jemalloc;

        /// jemalloc's options, read when it starts (its `malloc_conf`).
        #[cfg(unix)]
        #[export_name = "_rjem_malloc_conf"]
        pub static MALLOC_CONF: &u8 = &$crate::alloc::MALLOC_CONF[0];
    };
}

#[cfg(unix)]
pub use tikv_jemallocator::Jemalloc;

/// jemalloc's options (a C string): one arena (memory freed by one thread is reused by the
/// others), and a background thread returning freed pages to the system 100 ms after they
/// are freed, instead of jemalloc's default 10 s (dirty) and 10 s more (muzzy), which would
/// keep the index build's scratch resident.
pub const MALLOC_CONF: &[u8] =
    b"narenas:1,background_thread:true,dirty_decay_ms:100,muzzy_decay_ms:0\0";
