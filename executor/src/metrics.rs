//! Runtime metrics: per-worker counters (written only by their worker, on its own cache
//! line) summed on read, plus the few global counters the poller and the detector own.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A worker's counters. Relaxed everywhere: they are statistics, except `poll_seq`, which
/// the poller's sysmon reads to notice a worker stuck in one poll (odd = inside a poll).
#[derive(Default)]
pub(crate) struct WorkerMetrics {
    polls: AtomicU64,
    steals: AtomicU64,
    parks: AtomicU64,
    pub(crate) poll_seq: AtomicU64,
}

impl WorkerMetrics {
    pub(crate) fn start_poll(&self) {
        // Only the owner writes: load + store, no RMW on the hot path.
        self.poll_seq
            .store(self.poll_seq.load(Relaxed) + 1, Relaxed);
    }

    /// Whether the owner is inside a task's poll (owner only: its own last store).
    pub(crate) fn in_poll(&self) -> bool {
        self.poll_seq.load(Relaxed) & 1 == 1
    }

    pub(crate) fn end_poll(&self) {
        self.poll_seq
            .store(self.poll_seq.load(Relaxed) + 1, Relaxed);
        self.polls.store(self.polls.load(Relaxed) + 1, Relaxed);
    }

    pub(crate) fn count_steal(&self) {
        self.steals.store(self.steals.load(Relaxed) + 1, Relaxed);
    }

    pub(crate) fn count_park(&self) {
        self.parks.store(self.parks.load(Relaxed) + 1, Relaxed);
    }

    pub(crate) fn polls(&self) -> u64 {
        self.polls.load(Relaxed)
    }

    pub(crate) fn steals(&self) -> u64 {
        self.steals.load(Relaxed)
    }

    pub(crate) fn parks(&self) -> u64 {
        self.parks.load(Relaxed)
    }
}

/// A snapshot of a runtime's counters, from [`Runtime::metrics`](crate::Runtime::metrics).
///
/// The counters are statistics, read without stopping the workers: a task's poll is
/// counted just after it returns, so it may not show yet when the task's output does.
///
/// ```
/// let rt = runnel_executor::Builder::new().worker_threads(2).build().unwrap();
/// rt.block_on(async { runnel_executor::spawn(async {}).await.unwrap() });
/// let m = rt.metrics();
/// assert_eq!(m.workers, 2);
/// assert_eq!(m.deadlock_reports, 0);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuntimeMetrics {
    /// Worker threads.
    pub workers: usize,
    /// Workers parked right now.
    pub idle: usize,
    /// Tasks alive (spawned, not yet completed).
    pub live_tasks: usize,
    /// Wakers taken out of the reactor (I/O readiness, expired timers) and woken, by a
    /// worker or by the poller thread.
    pub reactor_wakeups: u64,
    /// Times the poller thread took wakers out of the reactor itself (every worker busy),
    /// holding the pretend-running token so the deadlock check cannot run meanwhile.
    pub token_drains: u64,
    /// Task polls.
    pub polls: u64,
    /// Successful steals.
    pub steals: u64,
    /// Times a worker went to sleep.
    pub parks: u64,
    /// Partial deadlocks reported: cycles in the wait-for graph (tasks awaiting each
    /// other's `JoinHandle`s, or locks held by each other), found while the rest of the
    /// runtime runs on (each cycle is reported once).
    pub partial_deadlocks: u64,
    /// Tasks reported leaked: waiting, and no waker of them exists anywhere, so they can
    /// never be polled again (each task is reported once).
    pub leaked_tasks: u64,
    /// Deadlock checks run (each time the runtime went quiet).
    pub deadlock_checks: u64,
    /// Deadlocks reported.
    pub deadlock_reports: u64,
    /// Polls noticed running longer than the retake threshold (blocking code in a task).
    pub stalls: u64,
    /// Stall reports printed (quiet runtime, tasks waiting on wakers held elsewhere).
    pub stall_reports: u64,
    /// Times sysmon retook a worker stuck in a long poll (see `Builder::retake_after`).
    pub retakes: u64,
    /// Retake attempts that failed: no free spare slot (`max_spare_threads` all serving
    /// other blocked workers) or no thread for it. Sysmon retries on its next tick, so one
    /// blocked poll may count several times.
    pub failed_retakes: u64,
    /// Worker threads alive, spares included. Each worker's thread starts when work first
    /// needs it, so this is 0 after `build` and at most the worker count at rest.
    pub worker_threads: usize,
    /// Blocking-pool threads alive.
    pub blocking_threads: usize,
}
