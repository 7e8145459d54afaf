//! Work on a query's path that may take long — building a tenant's index, or what a part
//! of at least [`LONG_WORK_ROWS`] rows builds on its first read (its event lists, a
//! dimension's partition, a cohort's rows) — announced to whoever runs the query. A server
//! that computes in place on an async worker passes a runner ([`with_long_work_runner`])
//! that hands the worker's other tasks over before such work starts (tokio's
//! `block_in_place`), so a warm query pays no hand-over and a cold one holds only its own
//! thread. Without a runner (blocking threads, tests, tools) the work just runs.

use std::cell::Cell;
use std::sync::OnceLock;

/// Work over fewer rows than this is short whatever it does (a delta part's index after a
/// write, a small tenant's): handing a worker over would cost more than the work.
#[cfg(not(test))]
pub(crate) const LONG_WORK_ROWS: usize = 50_000;
#[cfg(test)]
pub(crate) const LONG_WORK_ROWS: usize = 2;

/// Runs long work (the closure it is given) so that it may block the calling thread.
pub type LongWorkRunner = fn(&mut dyn FnMut());

thread_local! {
    /// The runner of the query running on this thread, while one does.
    static RUNNER: Cell<Option<LongWorkRunner>> = const { Cell::new(None) };
}

/// Puts the previous runner back when the query ends (or panics).
struct Restore(Option<LongWorkRunner>);

impl Drop for Restore {
    fn drop(&mut self) {
        RUNNER.set(self.0);
    }
}

/// Runs `query` on this thread with `runner` running the long work the store announces
/// meanwhile.
pub fn with_long_work_runner<T>(runner: LongWorkRunner, query: impl FnOnce() -> T) -> T {
    let _restore = Restore(RUNNER.replace(Some(runner)));
    query()
}

/// Runs `work` over `rows` rows: when they are [`LONG_WORK_ROWS`] or more, through the
/// current query's runner if it has one. Long work it does in turn runs directly: the
/// runner has already been told.
pub(crate) fn run<T>(rows: usize, work: impl FnOnce() -> T) -> T {
    if rows < LONG_WORK_ROWS {
        return work();
    }
    let Some(runner) = RUNNER.take() else {
        return work();
    };
    let _restore = Restore(Some(runner));
    let mut work = Some(work);
    let mut out = None;
    runner(&mut || {
        if let Some(w) = work.take() {
            out = Some(w());
        }
    });
    out.expect("a long-work runner runs the work it is given")
}

/// A cell built on first use, from rows (long work when they are many: see [`run`]).
pub(crate) trait GetOrBuild<T> {
    /// Its value, built by `build` from `rows` rows if it has none yet.
    fn get_or_build(&self, rows: usize, build: impl FnOnce() -> T) -> &T;
}

impl<T> GetOrBuild<T> for OnceLock<T> {
    fn get_or_build(&self, rows: usize, build: impl FnOnce() -> T) -> &T {
        match self.get() {
            Some(value) => value,
            None => run(rows, || self.get_or_init(build)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    thread_local! {
        static RAN: Cell<u32> = const { Cell::new(0) };
    }

    fn counting(work: &mut dyn FnMut()) {
        RAN.set(RAN.get() + 1);
        work();
    }

    #[test]
    fn long_work_goes_through_the_runner_once_and_only_inside_the_query() {
        let cell = OnceLock::new();
        let many = LONG_WORK_ROWS;
        assert_eq!(run(many, || 1), 1, "no runner: the work just runs");
        let value = with_long_work_runner(counting, || {
            let short = run(many - 1, || 5);
            assert_eq!(RAN.get(), 0, "work over few rows is short");
            let first = *cell.get_or_build(many, || run(many, || 7));
            let again = *cell.get_or_build(many, || unreachable!("built once"));
            (short, first, again)
        });
        assert_eq!(value, (5, 7, 7));
        assert_eq!(
            RAN.get(),
            1,
            "the nested work ran directly; the built cell needs none"
        );
        run(many, || ());
        assert_eq!(RAN.get(), 1, "the runner is gone with its query");
    }

    #[test]
    fn a_panicking_query_leaves_no_runner_behind() {
        let panicked = std::panic::catch_unwind(|| {
            with_long_work_runner(counting, || run(LONG_WORK_ROWS, || panic!("in the work")))
        });
        assert!(panicked.is_err());
        RAN.set(0);
        run(LONG_WORK_ROWS, || ());
        assert_eq!(RAN.get(), 0);
    }
}
