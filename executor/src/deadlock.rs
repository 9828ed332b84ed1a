//! The deadlock check (Go's `checkdead`) and the report it produces.
//!
//! A deadlock is reported only when all of these hold (DESIGN.md):
//! 1. no thread runs a task and the poller does not hold its token (`running == 0`);
//! 2. no blocking job runs;
//! 3. the reactor has no I/O source with a waiting task and no armed timer;
//! 4. no `block_on` caller is awake, has a wake pending, or has a waker held outside the
//!    runtime's own holders;
//! 5. no task has a reference beyond its owned-list entry, its `JoinHandle` and the wakers
//!    held in `JoinHandle` slots of this runtime — any other reference is a waker someone
//!    may still call (a foreign thread, a third-party channel) or a `Notified` in flight;
//! 6. every run queue is empty (implied by 5; checked last as a consistency check).
//!
//! Order matters: tasks are read before queues, so a foreign thread that pushes a task and
//! then drops its waker is seen either by its reference or by the queue.
//!
//! The check runs under the scheduler lock; the report is built there, and delivered
//! (printed, or handed to `block_on` callers to panic with) after the lock is released.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;

use crate::runtime::OnDeadlock;
use crate::scheduler::idle::{Check, Counts};
use crate::scheduler::Shared;
use crate::task::Header;

/// How many waiting tasks a report lists before "and N more".
const LISTED: usize = 10;

/// The first line of every deadlock report, as in Go.
pub const DEADLOCK_MESSAGE: &str = "all tasks are asleep - deadlock!";

struct Waiter {
    id: u64,
    location: String,
    waiting_on: Option<u64>,
}

/// A deadlock found under the lock, to deliver after it is released.
pub(crate) struct Report {
    text: String,
    /// `block_on` callers to unpark (they will panic with `text`).
    unpark: Vec<Arc<crate::block_on::Signal>>,
}

/// Applies a counting transition under the scheduler lock; if it made the runtime quiet,
/// runs the check there (invariant 2), and delivers a report after releasing the lock
/// (invariant 6). Every path that raises `idle`, releases the token or ends a job goes
/// through here.
pub(crate) fn after_transition(shared: &Shared, transition: impl FnOnce(&mut Counts) -> Check) {
    let report = {
        let mut counts = shared.idle.lock();
        match transition(&mut counts) {
            Check::Run => check(shared, &mut counts),
            Check::Skip => None,
        }
    };
    if let Some(report) = report {
        report.deliver(shared);
    }
}

/// Runs the check. Must be called with the scheduler lock held, by the thread whose
/// transition returned `Check::Run`.
pub(crate) fn check(shared: &Shared, counts: &mut Counts) -> Option<Report> {
    if counts.running() != 0 || counts.blocking != 0 || !shared.config.deadlock_check {
        return None;
    }
    shared.deadlock_checks.fetch_add(1, Relaxed);
    let waiters = shared.reactor.waiters();
    if waiters.io != 0 || waiters.timers != 0 {
        return None;
    }
    if counts.block_ons.iter().any(|s| s.may_wake()) {
        return None;
    }
    let mut stuck = Vec::new();
    let mut inconsistent = None;
    let all_stuck = shared.owned.for_each_while(|header| {
        if header.is_running() {
            inconsistent = Some(header.id().as_u64());
            return false;
        }
        if may_wake(header) {
            return false;
        }
        stuck.push(Waiter {
            id: header.id().as_u64(),
            location: header.origin.location.to_string(),
            waiting_on: waiting_on(header),
        });
        true
    });
    if let Some(id) = inconsistent {
        inconsistent_counts(counts, &format!("task {id} is RUNNING"));
        return None;
    }
    if !all_stuck || (stuck.is_empty() && counts.block_ons.is_empty()) {
        return None;
    }
    if shared.has_queued_work() {
        // A thread outside the runtime may have spawned during the scan: `bind` links the
        // new task before it is pushed, so a task the scan missed (its shard was visited
        // already) is linked by now, and its queued `Notified` makes it wakeable. Scan
        // again: only work queued while every linked task is still stuck is the bug of
        // invariant 5.
        let still_stuck = |header: &Header| !header.is_running() && !may_wake(header);
        if !shared.owned.for_each_while(still_stuck) {
            return None;
        }
        inconsistent_counts(counts, "a run queue holds a task");
        return None;
    }
    // Only polls prove progress: a worker woken for nothing (the poller nudging a sleeper
    // into the reactor) must not make the same deadlock reportable twice.
    let polls = shared.total_polls();
    if counts.reported_at_polls == Some(polls) {
        return None;
    }
    counts.reported_at_polls = Some(polls);
    shared.deadlock_reports.fetch_add(1, Relaxed);
    let text = render(counts, stuck);
    let mut unpark = Vec::new();
    if shared.config.on_deadlock == OnDeadlock::Panic {
        for signal in &counts.block_ons.clone() {
            if signal.deliver_deadlock(counts, &text) {
                unpark.push(signal.clone());
            }
        }
    }
    Some(Report { text, unpark })
}

/// A task may still be woken if something other than the runtime's own holders keeps a
/// reference to it (see the module docs, condition 5).
fn may_wake(header: &Header) -> bool {
    let refs = header.ref_count();
    let holds = header.wait.holds.load(SeqCst);
    let own = 1 + usize::from(header.is_join_interested()) + holds;
    refs > own
}

fn waiting_on(header: &Header) -> Option<u64> {
    (header.wait.holds.load(Relaxed) > 0).then(|| header.wait.waiting_on.load(Relaxed))
}

/// Invariant 5 of DESIGN.md: a runnable or running task while nobody runs is a runtime
/// bug. Loud in debug builds and tests; in release we just do not report.
fn inconsistent_counts(counts: &Counts, what: &str) {
    if cfg!(debug_assertions) {
        let msg = format!(
            "runnel: inconsistent counts: {what} while running = 0 (workers {}, idle {}, token {}, blocking {})",
            counts.workers, counts.idle, counts.token, counts.blocking
        );
        // Straight to the stderr handle: `eprintln!` from a runtime thread may be captured
        // by the test harness, and the abort would swallow it.
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "{msg}");
        // Not a panic: we hold the scheduler lock, and poisoning it would hide the bug
        // behind a second one. Abort loudly instead so tests fail at the right spot.
        std::process::abort();
    }
}

fn render(counts: &Counts, stuck: Vec<Waiter>) -> String {
    let mut text = String::from(DEADLOCK_MESSAGE);
    text.push('\n');
    text.push_str(&render_waiters(counts, stuck));
    text
}

fn render_waiters(counts: &Counts, mut stuck: Vec<Waiter>) -> String {
    stuck.sort_by_key(|w| w.id);
    let mut text = String::new();
    for signal in &counts.block_ons {
        let _ = write!(
            text,
            "\nblock_on (called at {}) waits on: ",
            signal.location
        );
        describe(&mut text, waiting_on_signal(signal));
    }
    let total = stuck.len();
    for waiter in stuck.iter().take(LISTED) {
        let _ = write!(
            text,
            "\ntask {} (spawned at {}) waits on: ",
            waiter.id, waiter.location
        );
        describe(&mut text, waiter.waiting_on);
    }
    if total > LISTED {
        let _ = write!(text, "\n... and {} more tasks", total - LISTED);
    }
    text
}

fn waiting_on_signal(signal: &crate::block_on::Signal) -> Option<u64> {
    (signal.wait.holds.load(Relaxed) > 0).then(|| signal.wait.waiting_on.load(Relaxed))
}

fn describe(text: &mut String, waiting_on: Option<u64>) {
    match waiting_on {
        Some(id) => {
            let _ = write!(text, "join of task {id}");
        }
        None => text.push_str("nothing (no waker of it is held anywhere)"),
    }
}

impl Report {
    /// Acts on the report per `OnDeadlock`. Call without the scheduler lock.
    pub(crate) fn deliver(self, shared: &Shared) {
        match shared.config.on_deadlock {
            OnDeadlock::Ignore => {}
            OnDeadlock::Report => eprintln!("runnel: {}", self.text),
            OnDeadlock::Panic if self.unpark.is_empty() => eprintln!("runnel: {}", self.text),
            OnDeadlock::Panic => {
                for signal in self.unpark {
                    signal.unpark();
                }
            }
        }
    }
}

/// The stall report: the runtime has been quiet for `quiet` while tasks wait on wakers
/// held outside the runtime, so no deadlock can be proven. Lists who waits on what.
pub(crate) fn stall_report(shared: &Shared, quiet: std::time::Duration) -> Option<String> {
    let mut waiting = Vec::new();
    shared.owned.for_each_while(|header| {
        waiting.push(Waiter {
            id: header.id().as_u64(),
            location: header.origin.location.to_string(),
            waiting_on: waiting_on(header),
        });
        true
    });
    let counts = shared.idle.lock();
    if waiting.is_empty() && counts.block_ons.is_empty() {
        return None;
    }
    let mut text = format!(
        "stall report: no task has run for {:.1} s; {} task(s) wait on wakers held outside the runtime \
         (a foreign thread or channel), so this is not provably a deadlock:\n",
        quiet.as_secs_f64(),
        waiting.len()
    );
    text.push_str(render_waiters(&counts, waiting).trim_start_matches('\n'));
    Some(text)
}
