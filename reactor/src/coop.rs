//! Cooperative budget: a per-thread count of operations a task may complete in one poll.
//!
//! The executor wraps every task poll, and every poll of a `block_on` future, in
//! [`with_budget`]. Leaf futures that can be ready over and over (socket reads, timers, join
//! handles) call [`poll_proceed`] before doing work; once the budget is spent it wakes the
//! task and returns `Pending`, so the task goes to the back of its run queue and its
//! siblings on the same worker get to run (a `block_on` caller simply polls again).
//!
//! Outside `with_budget` (a foreign executor, a future polled by hand) the budget is
//! unconstrained: [`poll_proceed`] is always ready.
//!
//! Invariant: the budget is per thread and per poll. `with_budget` and `unconstrained`
//! restore the previous value when they return or unwind, so a nested poll (a `block_on`
//! inside a task, a timeout's deadline check) cannot leak its budget into its caller's.
//!
//! A combinator that races its own check against an inner future (`time::Timeout`) must not
//! let the inner future's spending starve that check: once the inner future has spent the
//! last unit, every later leaf poll in the same task poll returns `Pending`, and a deadline
//! checked through a leaf would never be seen while the inner future stays busy. Such a
//! combinator makes its check under `unconstrained` when the inner future is what spent
//! the budget (tokio's `Timeout` does the same).

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

/// Runs `f` with no budget limit (its [`poll_proceed`] calls are always ready and spend
/// nothing), restoring the current budget after. For a combinator's own check after an
/// inner future spent the budget (module header).
pub(crate) fn unconstrained<R>(f: impl FnOnce() -> R) -> R {
    let _restore = Restore(REMAINING.with(|r| r.replace(None)));
    f()
}

/// Puts a saved budget back on drop, so a panic inside the closure restores it too.
struct Restore(Option<u32>);

impl Drop for Restore {
    fn drop(&mut self) {
        REMAINING.with(|r| r.set(self.0));
    }
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

    #[test]
    fn unconstrained_ignores_a_spent_budget_and_restores_it() {
        let mut cx = Context::from_waker(Waker::noop());
        with_budget(|| {
            for _ in 0..BUDGET {
                assert!(poll_proceed(&mut cx).is_ready());
            }
            unconstrained(|| {
                for _ in 0..2 * BUDGET {
                    assert!(poll_proceed(&mut cx).is_ready());
                }
            });
            assert!(!has_budget_remaining(), "still spent after unconstrained");
            assert!(poll_proceed(&mut cx).is_pending());
        });
    }
}
