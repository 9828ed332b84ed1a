//! `Counts`: what the deadlock detector knows about who is running, guarded by the
//! scheduler lock (`scheduler::idle::Idle` owns the mutex).
//!
//! Invariants (ARCHITECTURE.md, "Idle accounting and the deadlock detector"):
//! 1. `workers` counts worker threads from the moment they are reserved and `block_on`
//!    callers; `idle` the parked ones (a multi-thread runtime's initial roles are reserved
//!    at `build` as parked sleepers with no thread: `with_parked_workers`); `token` the poller while it takes wakers out of
//!    the reactor; `running = workers - idle + token` is only computed under the lock.
//! 2. Every transition that can make the runtime quiet (more idle, token released, a job
//!    or a thread gone) returns `Check::Run` when `running` and `blocking` reached zero;
//!    the caller runs the check before releasing the lock (`detector::after_transition`).
//!    Increases return `Check::Skip`.
//!
//! The fields are private: every change is one of the named transitions below.

use std::sync::Arc;

use crate::block_on::Signal;

#[derive(Default)]
pub(crate) struct Counts {
    workers: usize,
    idle: usize,
    token: usize,
    blocking: usize,
    /// Parked worker threads (by role index), each also counted in `idle`.
    sleepers: Vec<usize>,
    block_ons: Vec<Arc<Signal>>,
    /// Current-thread runtime: the `block_on` caller that holds the core (runs the tasks).
    core: Option<Arc<Signal>>,
    /// The runtime's total poll count when the last deadlock was reported: the same
    /// deadlock is not reported again until some task has run.
    reported_at_polls: Option<u64>,
}

/// Whether the caller must run the deadlock check (with the guard still held).
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Check {
    Run,
    Skip,
}

impl Counts {
    /// Counts for a runtime whose `workers` worker threads are reserved (they count as
    /// running before their threads start).
    pub(crate) fn with_workers(workers: usize) -> Counts {
        Counts {
            workers,
            ..Counts::default()
        }
    }

    /// Counts for a runtime whose `workers` worker roles are reserved but have no thread
    /// yet: each is a sleeper (counted parked) whose thread its first claimer starts
    /// (`Shared::wake_claimed`). Claimed in role order: role 0 first.
    pub(crate) fn with_parked_workers(workers: usize) -> Counts {
        Counts {
            workers,
            idle: workers,
            sleepers: (0..workers).rev().collect(),
            ..Counts::default()
        }
    }

    /// Threads running tasks, plus the poller while it holds the token.
    pub(crate) fn running(&self) -> usize {
        let active = self.workers.checked_sub(self.idle).unwrap_or_else(|| {
            panic!(
                "inconsistent counts: idle {} > workers {}",
                self.idle, self.workers
            )
        });
        active + self.token
    }

    /// Blocking jobs counted (submitted, not yet finished with their joiner woken).
    pub(crate) fn blocking(&self) -> usize {
        self.blocking
    }

    /// The `block_on` callers inside the runtime.
    pub(crate) fn block_ons(&self) -> &[Arc<Signal>] {
        &self.block_ons
    }

    /// `Check::Run` when nothing runs and no blocking job does.
    pub(crate) fn check_if_quiet(&self) -> Check {
        if self.running() == 0 && self.blocking == 0 {
            Check::Run
        } else {
            Check::Skip
        }
    }

    /// Worker threads parked right now (`idle` also counts sleeping `block_on` callers).
    pub(crate) fn idle_workers(&self) -> usize {
        self.sleepers.len()
    }

    // --- workers -------------------------------------------------------------------------

    /// Worker `index` found nothing to do and is about to park.
    pub(crate) fn worker_parks(&mut self, index: usize) -> Check {
        self.idle += 1;
        self.sleepers.push(index);
        self.check_if_quiet()
    }

    /// Worker `index`, counted parked, runs again by itself. False if someone claimed it
    /// first (then that claimer counted it running already).
    pub(crate) fn worker_unparks(&mut self, index: usize) -> bool {
        let Some(pos) = self.sleepers.iter().position(|&i| i == index) else {
            return false;
        };
        self.sleepers.swap_remove(pos);
        self.idle -= 1;
        true
    }

    /// Claims a parked worker to run new work (counted running before it is unparked).
    pub(crate) fn claim_sleeper(&mut self) -> Option<usize> {
        let index = self.sleepers.pop()?;
        self.idle -= 1;
        Some(index)
    }

    /// Claims every parked worker (shutdown).
    pub(crate) fn claim_all_sleepers(&mut self) -> Vec<usize> {
        let all = std::mem::take(&mut self.sleepers);
        self.idle -= all.len();
        all
    }

    /// A retake reserved a thread for the replacement role (counted before it runs).
    pub(crate) fn thread_reserved(&mut self) -> Check {
        self.workers += 1;
        Check::Skip
    }

    /// A worker thread gave up its role (after a retake), or a reservation was undone.
    pub(crate) fn thread_left(&mut self) -> Check {
        self.workers -= 1;
        self.check_if_quiet()
    }

    // --- the poller's token --------------------------------------------------------------

    /// The poller takes the pretend-running token before a waker leaves the reactor.
    pub(crate) fn take_token(&mut self) {
        debug_assert_eq!(self.token, 0, "one poller, one token");
        self.token += 1;
    }

    /// The token is given back after every woken task is queued and a worker committed.
    pub(crate) fn release_token(&mut self) -> Check {
        self.token -= 1;
        self.check_if_quiet()
    }

    // --- blocking jobs -------------------------------------------------------------------

    /// A blocking job was submitted (counted before it is queued).
    pub(crate) fn blocking_start(&mut self) {
        self.blocking += 1;
    }

    /// A blocking job finished and its joiner (if any) was woken.
    pub(crate) fn blocking_end(&mut self) -> Check {
        self.blocking -= 1;
        self.check_if_quiet()
    }

    // --- block_on ------------------------------------------------------------------------

    /// A thread enters `block_on`: it counts as a worker (running) until it parks. A
    /// blocking-pool job entering it stops counting as a running job meanwhile.
    pub(crate) fn block_on_enter(&mut self, signal: Arc<Signal>, from_blocking_job: bool) -> Check {
        self.workers += 1;
        if from_blocking_job {
            self.blocking -= 1;
        }
        self.block_ons.push(signal);
        self.check_if_quiet()
    }

    /// A `block_on` caller parks (its future is pending and not yet woken).
    pub(crate) fn block_on_idle(&mut self) -> Check {
        self.idle += 1;
        self.check_if_quiet()
    }

    /// A `block_on` caller was woken (by its waker or by a deadlock report).
    pub(crate) fn block_on_claimed(&mut self) {
        self.idle -= 1;
    }

    /// A thread leaves `block_on` (its future completed, or it unwinds). `was_parked`: it
    /// was still counted idle (only possible while unwinding).
    pub(crate) fn block_on_leave(
        &mut self,
        signal: &Arc<Signal>,
        from_blocking_job: bool,
        was_parked: bool,
    ) -> Check {
        self.workers -= 1;
        if was_parked {
            self.idle -= 1;
        }
        if from_blocking_job {
            self.blocking += 1;
        }
        self.block_ons.retain(|s| !Arc::ptr_eq(s, signal));
        self.check_if_quiet()
    }

    // --- the current-thread core ------------------------------------------------------

    /// A `block_on` caller took (`Some`) or gave back (`None`) the current-thread core.
    /// Not a counting transition: the caller is counted as a `block_on` caller either way.
    pub(crate) fn set_core(&mut self, holder: Option<Arc<Signal>>) {
        self.core = holder;
    }

    /// The `block_on` caller holding the current-thread core, if any.
    pub(crate) fn core(&self) -> Option<&Arc<Signal>> {
        self.core.as_ref()
    }

    // --- report de-duplication -----------------------------------------------------------

    /// Records a report at `polls` (the runtime's poll count); false if the same deadlock
    /// was reported already (no poll since).
    pub(crate) fn first_report_at(&mut self, polls: u64) -> bool {
        if self.reported_at_polls == Some(polls) {
            return false;
        }
        self.reported_at_polls = Some(polls);
        true
    }
}

impl std::fmt::Debug for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "workers {}, idle {}, token {}, blocking {}, block_on callers {}",
            self.workers,
            self.idle,
            self.token,
            self.blocking,
            self.block_ons.len()
        )
    }
}

/// Read access for the unit and loom tests' end-of-model assertions.
#[cfg(test)]
impl Counts {
    pub(crate) fn workers(&self) -> usize {
        self.workers
    }

    #[cfg(loom)]
    pub(crate) fn idle(&self) -> usize {
        self.idle
    }

    #[cfg(loom)]
    pub(crate) fn token(&self) -> usize {
        self.token
    }
}
