//! `Idle`: the scheduler lock and the counts the deadlock detector reads.
//!
//! This is runnel's `sched.lock` (Go's `proc.go`). The invariants (ARCHITECTURE.md, "Idle accounting and the deadlock detector"):
//!
//! 1. One lock guards `workers` (threads counted from the moment they are reserved),
//!    `idle`, the poller's `token` and `blocking`; `running = workers - idle + token`
//!    is only computed under it.
//! 2. Every increase of `idle`, every release of the token and every end of a blocking
//!    job returns `Check::Run` when it made `running` (or `blocking`) reach zero; the
//!    caller must then run the deadlock check before it drops the guard. Decreases never
//!    check.
//! 3. Count first, publish second: a thread that hands work to a parked worker claims
//!    it (`idle -= 1`) under the lock before unparking it, and the poller takes the token
//!    before any waker leaves the reactor.
//!
//! Sleepers: a parked worker is in `sleepers` and counted in `idle` until someone claims
//! it (`claim_sleeper`, which also counts it as searching) or it removes itself
//! (`unidle`). Every claim is followed by exactly one `unpark`, so a worker that finds
//! itself already claimed consumes that token by parking once more (it returns at once).
//!
//! The lock-free mirrors `num_idle` and `num_searching` let the wake fast path decide
//! "nobody needs waking" without the lock; they are Dekker-paired with the run queues
//! (push, SeqCst fence, read the mirror vs. count idle, SeqCst fence, re-check queues).

use std::sync::Arc;

use crate::block_on::Signal;
use crate::loom::atomic::{AtomicUsize, Ordering::SeqCst};
use crate::loom::{Mutex, MutexGuard};

#[cfg(all(test, loom))]
mod loom_tests;

pub(crate) struct Idle {
    counts: Mutex<Counts>,
    num_idle: AtomicUsize,
    num_searching: AtomicUsize,
    /// Worker threads (not `block_on` callers): the half-searching bound.
    num_workers: usize,
}

#[derive(Default)]
pub(crate) struct Counts {
    pub(crate) workers: usize,
    pub(crate) idle: usize,
    pub(crate) token: usize,
    pub(crate) blocking: usize,
    sleepers: Vec<usize>,
    pub(crate) block_ons: Vec<Arc<Signal>>,
    /// The runtime's total poll count when the last deadlock was reported: the same
    /// deadlock is not reported again until some task has run.
    pub(crate) reported_at_polls: Option<u64>,
}

/// Whether the caller must run the deadlock check (with the guard still held).
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Check {
    Run,
    Skip,
}

impl Counts {
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

    /// A `block_on` caller parks (its future is pending and not yet woken).
    pub(crate) fn block_on_idle(&mut self) -> Check {
        self.idle += 1;
        self.check_if_quiet()
    }

    /// A `block_on` caller was woken (by its waker or by a deadlock report).
    pub(crate) fn block_on_claimed(&mut self) {
        self.idle -= 1;
    }

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
}

impl Idle {
    pub(crate) fn new(num_workers: usize) -> Idle {
        Idle {
            counts: Mutex::new(Counts {
                // Worker threads count as running from the moment they are reserved
                // (invariant 1), i.e. before their threads start.
                workers: num_workers,
                ..Counts::default()
            }),
            num_idle: AtomicUsize::new(0),
            num_searching: AtomicUsize::new(0),
            num_workers,
        }
    }

    pub(crate) fn num_workers(&self) -> usize {
        self.num_workers
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A worker found nothing to do and is about to park.
    pub(crate) fn worker_idle(&self, counts: &mut Counts, index: usize) -> Check {
        counts.idle += 1;
        counts.sleepers.push(index);
        self.num_idle.store(counts.sleepers.len(), SeqCst);
        counts.check_if_quiet()
    }

    /// A worker that announced itself idle found work on its re-check. Returns false if
    /// someone claimed it meanwhile (it must then consume the unpark by parking).
    pub(crate) fn unidle(&self, index: usize) -> bool {
        let mut counts = self.lock();
        let Some(pos) = counts.sleepers.iter().position(|&i| i == index) else {
            return false;
        };
        counts.sleepers.swap_remove(pos);
        counts.idle -= 1;
        self.num_idle.store(counts.sleepers.len(), SeqCst);
        true
    }

    /// Takes a parked worker to run new work, counting it running and searching before it
    /// is unparked. The caller must unpark the returned worker.
    pub(crate) fn claim_sleeper(&self, counts: &mut Counts) -> Option<usize> {
        let index = counts.sleepers.pop()?;
        counts.idle -= 1;
        self.num_idle.store(counts.sleepers.len(), SeqCst);
        self.num_searching.fetch_add(1, SeqCst);
        Some(index)
    }

    /// Claims every sleeper (shutdown), counting them searching like any claim.
    pub(crate) fn claim_all(&self) -> Vec<usize> {
        let mut counts = self.lock();
        let all = std::mem::take(&mut counts.sleepers);
        counts.idle -= all.len();
        self.num_idle.store(0, SeqCst);
        self.num_searching.fetch_add(all.len(), SeqCst);
        all
    }

    /// Whether a wake should look for a sleeper to unpark (the lock-free fast path).
    pub(crate) fn should_notify(&self) -> bool {
        self.num_searching.load(SeqCst) == 0 && self.num_idle.load(SeqCst) > 0
    }

    /// A worker wants to steal. At most half the workers search at once (Go's rule: more
    /// searchers than that burn CPU for nothing).
    pub(crate) fn try_start_searching(&self) -> bool {
        let searching = self.num_searching.load(SeqCst);
        if 2 * searching >= self.num_workers {
            return false;
        }
        self.num_searching.fetch_add(1, SeqCst);
        true
    }

    /// A searching worker stops searching. Returns true if it was the last searcher:
    /// then it must make sure no work is left unnoticed (wake another, or re-check).
    pub(crate) fn stop_searching(&self) -> bool {
        self.num_searching.fetch_sub(1, SeqCst) == 1
    }

    pub(crate) fn num_searching(&self) -> usize {
        self.num_searching.load(SeqCst)
    }

    /// The poller takes the pretend-running token before a waker leaves the reactor.
    pub(crate) fn take_token(&self) {
        let mut counts = self.lock();
        debug_assert_eq!(counts.token, 0, "one poller, one token");
        counts.token += 1;
    }

    /// Gives the token back after every woken task is queued and a worker committed.
    pub(crate) fn release_token(&self, counts: &mut Counts) -> Check {
        counts.token -= 1;
        counts.check_if_quiet()
    }

    /// A retake reserved a thread for the replacement role (counted before it runs, or
    /// before a spare is told). An increase: it never makes the runtime quiet.
    pub(crate) fn thread_reserved(&self, counts: &mut Counts) -> Check {
        counts.workers += 1;
        Check::Skip
    }

    /// A worker thread gave up its role (after a retake), or a retake that reserved one
    /// was undone: it no longer counts.
    pub(crate) fn thread_left(&self, counts: &mut Counts) -> Check {
        counts.workers -= 1;
        counts.check_if_quiet()
    }

    /// A blocking job was submitted (counted before it is queued).
    pub(crate) fn blocking_start(&self) {
        self.lock().blocking += 1;
    }

    /// A blocking job finished and its joiner (if any) was woken.
    pub(crate) fn blocking_end(&self, counts: &mut Counts) -> Check {
        counts.blocking -= 1;
        counts.check_if_quiet()
    }
}
