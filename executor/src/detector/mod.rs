//! The deadlock detector, a leaf module: `counts` (what it knows about who runs, under the
//! scheduler lock, changed only by named transitions), the check here (Go's `checkdead`),
//! and `report` (the deadlock and stall reports). The rest of the executor reaches it
//! through those transitions, `after_transition`/`check_after` and `stall_report`.
//!
//! A deadlock is reported only when all of these hold (ARCHITECTURE.md, "The rule"):
//! 1. no thread runs a task and the poller does not hold its token (`running == 0`);
//! 2. no blocking job runs;
//! 3. the reactor has no I/O source with a waiting task and no armed timer;
//! 4. no `block_on` caller is awake, has a wake pending, or has a waker held outside the
//!    runtime's own holders;
//! 5. every `Handle` (the `Runtime`'s own included) is lent to a `block_on` call: any other
//!    may spawn from a thread the runtime cannot see;
//! 6. no task has a reference beyond its owned-list entry, its `JoinHandle` and the wakers
//!    held in `JoinHandle` slots of this runtime — any other reference is a waker someone
//!    may still call (a foreign thread, a third-party channel), an `AbortHandle`, or a
//!    `Notified` in flight — and no task's `JoinHandle` was made or last polled on a thread
//!    outside the runtime (it may abort the task);
//! 7. every run queue is empty (implied by 6; checked last as a consistency check).
//!
//! Order matters: handles are read before tasks, and tasks before queues, so a foreign
//! thread that spawns and then drops its handle, or pushes a task and then drops its
//! waker, is seen by one of the reads.
//!
//! Anything short of a deadlock is a `Verdict`: `Waiting` when the runtime itself waits
//! for something (I/O, a timer, a job), `Maybe` when only holders it cannot see remain —
//! the only state in which sysmon's stall report may fire.
//!
//! The check runs under the scheduler lock; the report is built there, and delivered
//! (printed, or handed to `block_on` callers to panic with) after the lock is released.

mod ages;
mod counts;
mod graph;
mod partial;
mod report;

use std::sync::atomic::Ordering::{Relaxed, SeqCst};

pub(crate) use ages::WaitAges;
pub(crate) use counts::{Check, Counts};
pub(crate) use partial::PartialCheck;
pub use report::DEADLOCK_MESSAGE;
pub(crate) use report::{dump, stall_report, Report};

use crate::runtime::OnDeadlock;
use crate::scheduler::Shared;
use crate::task::Header;
use report::{render, Waiter};

/// What the check concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A thread runs a task or holds the token, or the check is off: nothing to conclude.
    Running,
    /// Nothing runs, but the runtime waits for something it knows will come or may come:
    /// I/O, a timer, a blocking job, a `block_on` wake in flight, a queued task.
    Waiting,
    /// Only holders the runtime cannot see (a waker held elsewhere, a `Handle` outside a
    /// `block_on` call, a `JoinHandle` or `AbortHandle` outside) could still wake a task:
    /// not provably a deadlock. After `stall_report_after` of this, a stall report.
    Maybe,
    /// A deadlock: reported now (the `Report` is returned) or already.
    Deadlock,
}

/// Applies a counting transition under the scheduler lock; if it made the runtime quiet,
/// runs the check there (invariant 2), and delivers a report after releasing the lock
/// (invariant 6). Every counting transition goes through here (or through
/// `check_after`, for the `block_on` caller's own park).
pub(crate) fn after_transition(
    shared: &Shared,
    transition: impl FnOnce(&mut Counts) -> Check,
) -> Verdict {
    let (verdict, report) = {
        let mut counts = shared.idle.lock();
        check_after(shared, &mut counts, transition)
    };
    if let Some(report) = report {
        report.deliver(shared);
    }
    verdict
}

/// As `after_transition`, for a caller that holds the lock itself and delivers the report
/// after releasing it.
pub(crate) fn check_after(
    shared: &Shared,
    counts: &mut Counts,
    transition: impl FnOnce(&mut Counts) -> Check,
) -> (Verdict, Option<Report>) {
    match transition(counts) {
        Check::Run => check(shared, counts),
        // Not quiet: a thread runs, or a blocking job does (the runtime waits for it).
        Check::Skip if counts.running() == 0 => (Verdict::Waiting, None),
        Check::Skip => (Verdict::Running, None),
    }
}

/// Runs the check. Must be called with the scheduler lock held, by the thread whose
/// transition returned `Check::Run`.
fn check(shared: &Shared, counts: &mut Counts) -> (Verdict, Option<Report>) {
    if counts.running() != 0 || !shared.config.deadlock_check {
        return (Verdict::Running, None);
    }
    shared.deadlock_checks.fetch_add(1, Relaxed);
    if counts.blocking() != 0 {
        return (Verdict::Waiting, None);
    }
    let waiters = shared.reactor.waiters();
    if waiters.io != 0 || waiters.timers != 0 {
        return (Verdict::Waiting, None);
    }
    if counts.block_ons().iter().any(|s| s.wake_pending()) {
        return (Verdict::Waiting, None);
    }
    // Read before the tasks (SeqCst, pairs with `Handle::drop`): a holder that spawned and
    // then dropped its handle is seen either here or by the task it spawned.
    if handles_outside(shared, counts) > 0
        || counts.block_ons().iter().any(|s| s.held_outside() > 0)
    {
        return (Verdict::Maybe, None);
    }
    let mut stuck = Vec::new();
    let mut inconsistent = None;
    let all_stuck = shared.owned.for_each_while(|header, location| {
        if header.is_running() {
            inconsistent = Some(header.id().as_u64());
            return false;
        }
        if may_wake(header) {
            return false;
        }
        stuck.push(Waiter::of(header, location));
        true
    });
    if let Some(id) = inconsistent {
        inconsistent_counts(counts, &format!("task {id} is RUNNING"));
        return (Verdict::Running, None);
    }
    if !all_stuck {
        return (Verdict::Maybe, None);
    }
    if stuck.is_empty() && counts.block_ons().is_empty() {
        // Nothing waits at all: an idle runtime, not a deadlock.
        return (Verdict::Waiting, None);
    }
    if shared.has_queued_work() {
        // A thread outside the runtime may have spawned during the scan: `bind` links the
        // new task before it is pushed, so a task the scan missed (its shard was visited
        // already) is linked by now, and its queued `Notified` makes it wakeable. Scan
        // again: only work queued while every linked task is still stuck is the bug of
        // invariant 5.
        let still_stuck = |header: &Header, _: &_| !header.is_running() && !may_wake(header);
        if !shared.owned.for_each_while(still_stuck) {
            return (Verdict::Waiting, None);
        }
        inconsistent_counts(counts, "a run queue holds a task");
        return (Verdict::Running, None);
    }
    // Only polls prove progress: a worker woken for nothing (the poller nudging a sleeper
    // into the reactor) must not make the same deadlock reportable twice.
    if !counts.first_report_at(shared.total_polls()) {
        return (Verdict::Deadlock, None);
    }
    shared.deadlock_reports.fetch_add(1, Relaxed);
    let text = render(counts, stuck);
    let mut unpark = Vec::new();
    if shared.config.on_deadlock == OnDeadlock::Panic {
        for signal in &counts.block_ons().to_vec() {
            if signal.deliver_deadlock(counts, &text) {
                unpark.push(signal.clone());
            }
        }
    }
    (Verdict::Deadlock, Some(Report { text, unpark }))
}

/// `Handle`s (the `Runtime`'s own included) alive beyond the ones lent to `block_on`
/// calls: each may spawn from a thread the runtime cannot see. Under the lock.
pub(super) fn handles_outside(shared: &Shared, counts: &Counts) -> usize {
    shared
        .outside_handles
        .load(SeqCst)
        .saturating_sub(counts.block_ons().len())
}

/// A task may still be woken if something other than the runtime's own holders keeps a
/// reference to it, or its `JoinHandle` is outside the runtime (see the module docs,
/// condition 5).
fn may_wake(header: &Header) -> bool {
    refs_outside(header) > 0 || header.is_join_held_outside()
}

/// References to the task beyond the owned list's, its `JoinHandle`'s and the wakers held
/// in `JoinHandle` slots of this runtime: wakers (or `AbortHandle`s) held elsewhere.
pub(super) fn refs_outside(header: &Header) -> usize {
    let refs = header.ref_count();
    let holds = header.holds.load(SeqCst);
    let own = 1 + usize::from(header.is_join_interested()) + holds;
    refs.saturating_sub(own)
}

/// Invariant 5 of ARCHITECTURE.md: a runnable or running task while nobody runs is a runtime
/// bug. Loud in debug builds and tests; in release we just do not report.
fn inconsistent_counts(counts: &Counts, what: &str) {
    if cfg!(debug_assertions) {
        let msg = format!("runnel: inconsistent counts: {what} while running = 0 ({counts:?})");
        // Straight to the stderr handle: `eprintln!` from a runtime thread may be captured
        // by the test harness, and the abort would swallow it.
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "{msg}");
        // Not a panic: we hold the scheduler lock, and poisoning it would hide the bug
        // behind a second one. Abort loudly instead so tests fail at the right spot.
        std::process::abort();
    }
}
