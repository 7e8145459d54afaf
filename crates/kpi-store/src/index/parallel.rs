//! Two halves of a large build on two threads.

/// Rows from which a part's index is built on two threads.
#[cfg(not(test))]
pub(super) const PARALLEL_ROWS: usize = 100_000;
/// Small under test, so the tests run the two-thread path.
#[cfg(test)]
pub(super) const PARALLEL_ROWS: usize = 16;

/// Runs `a` and `b`, on two threads when `parallel`.
pub(super) fn join<A: Send, B: Send>(
    parallel: bool,
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    if !parallel {
        return (a(), b());
    }
    std::thread::scope(|scope| {
        let a = scope.spawn(a);
        let b = b();
        (a.join().unwrap_or_else(|e| std::panic::resume_unwind(e)), b)
    })
}
