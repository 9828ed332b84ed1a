//! Cooperative budget: a per-thread count of operations a task may complete in one poll.
//!
//! The executor wraps every task poll in [`with_budget`]. Leaf futures that can be ready
//! over and over (socket reads, timers, join handles) call [`poll_proceed`] before doing
//! work; once the budget is spent it wakes the task and returns `Pending`, so the task goes
//! to the back of its run queue and its siblings on the same worker get to run.
//!
//! Outside `with_budget` (a foreign executor, `block_on`) the budget is unconstrained.

use std::cell::Cell;
use std::task::{Context, Poll};

/// Operations a task may complete per poll before it is forced to yield. Tokio uses 128 and
/// measured that it keeps tail latency low without costing throughput; we follow it.
pub const BUDGET: u32 = 128;

thread_local! {
    static REMAINING: Cell<Option<u32>> = const { Cell::new(None) };
}

/// Runs `f` with a fresh budget of [`BUDGET`] operations, restoring the previous budget after.
pub fn with_budget<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(Option<u32>);
    impl Drop for Restore {
        fn drop(&mut self) {
            REMAINING.with(|r| r.set(self.0));
        }
    }
    let _restore = Restore(REMAINING.with(|r| r.replace(Some(BUDGET))));
    f()
}

/// Consumes one unit of budget. When the budget is spent, wakes the task (so it is
/// rescheduled) and returns `Pending`: the caller must return `Pending` too.
pub fn poll_proceed(cx: &mut Context<'_>) -> Poll<()> {
    REMAINING.with(|r| match r.get() {
        None => Poll::Ready(()),
        Some(0) => {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
        Some(n) => {
            r.set(Some(n - 1));
            Poll::Ready(())
        }
    })
}

/// Whether the current task still has budget left (always true outside `with_budget`).
pub fn has_budget_remaining() -> bool {
    REMAINING.with(|r| r.get() != Some(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    #[test]
    fn budget_runs_out_and_is_restored() {
        let mut cx = Context::from_waker(Waker::noop());
        assert!(
            poll_proceed(&mut cx).is_ready(),
            "unconstrained outside with_budget"
        );
        with_budget(|| {
            for _ in 0..BUDGET {
                assert!(poll_proceed(&mut cx).is_ready());
            }
            assert!(poll_proceed(&mut cx).is_pending());
            assert!(!has_budget_remaining());
        });
        assert!(
            poll_proceed(&mut cx).is_ready(),
            "restored after with_budget"
        );
    }
}
