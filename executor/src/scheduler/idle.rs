//! `Idle`: the scheduler lock (runnel's `sched.lock`, Go's `proc.go`), which guards the
//! deadlock detector's `Counts` (see `detector/counts.rs` for the counting invariants),
//! and the lock-free mirrors of who is parked and who is searching.
//!
//! Count first, publish second (ARCHITECTURE.md invariant 3): a thread that hands work to
//! a parked worker claims it (`idle -= 1`) under the lock before unparking it, and the
//! poller takes the token before any waker leaves the reactor.
//!
//! Sleepers: a parked worker is in `sleepers` and counted in `idle` until someone claims
//! it (`claim_sleeper`, which also counts it as searching) or it removes itself
//! (`unidle`). Every claim is followed by exactly one `unpark`, so a worker that finds
//! itself already claimed consumes that token by parking once more (it returns at once).
//! A role that has no thread yet (a multi-thread runtime starts with all of them so,
//! `with_parked_threads`) is a sleeper too: its first claim starts its thread instead of
//! the `unpark` (`Shared::wake_claimed`), and the thread begins as if claimed from a park.
//!
//! The lock-free mirrors `num_idle` and `num_searching` let the wake fast path decide
//! "nobody needs waking" without the lock; they are Dekker-paired with the run queues
//! (push, SeqCst fence, read the mirror vs. count idle, SeqCst fence, re-check queues).

pub(crate) use crate::detector::{Check, Counts};
use crate::loom::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use crate::loom::{Mutex, MutexGuard};

#[cfg(all(test, loom))]
mod loom_tests;
#[cfg(all(test, not(loom)))]
mod transition_bench;

pub(crate) struct Idle {
    counts: Mutex<Counts>,
    num_idle: AtomicUsize,
    num_searching: AtomicUsize,
    /// Worker roles (not `block_on` callers): the half-searching bound.
    num_workers: usize,
    /// Current-thread runtime: the `block_on` caller holding the core is asleep (a
    /// lock-free mirror of its `parked` flag, set under the lock when it parks and cleared
    /// by itself when it resumes; see `scheduler::core`). Dekker-paired with the run
    /// queues like `num_idle`.
    core_sleeping: AtomicBool,
}

impl Idle {
    #[cfg(test)]
    pub(crate) fn new(num_workers: usize) -> Idle {
        Idle::with_threads(num_workers, num_workers)
    }

    /// `roles` worker roles, `threads` of them run by worker threads reserved now (a
    /// current-thread runtime has one role and no thread: its `block_on` caller runs it).
    pub(crate) fn with_threads(roles: usize, threads: usize) -> Idle {
        Idle {
            // Worker threads count as running from the moment they are reserved
            // (invariant 1), i.e. before their threads start.
            counts: Mutex::new(Counts::with_workers(threads)),
            num_idle: AtomicUsize::new(0),
            num_searching: AtomicUsize::new(0),
            num_workers: roles,
            core_sleeping: AtomicBool::new(false),
        }
    }

    /// `threads` worker roles, all parked with no thread yet: the first claim of each
    /// starts its thread (`Shared::wake_claimed`), so a runtime starts a worker thread
    /// only once work or the reactor needs one.
    pub(crate) fn with_parked_threads(threads: usize) -> Idle {
        Idle {
            counts: Mutex::new(Counts::with_parked_workers(threads)),
            num_idle: AtomicUsize::new(threads),
            num_searching: AtomicUsize::new(0),
            num_workers: threads,
            core_sleeping: AtomicBool::new(false),
        }
    }

    /// See `core_sleeping`.
    pub(crate) fn set_core_sleeping(&self, sleeping: bool) {
        self.core_sleeping.store(sleeping, SeqCst);
    }

    pub(crate) fn core_sleeping(&self) -> bool {
        self.core_sleeping.load(SeqCst)
    }

    pub(crate) fn num_workers(&self) -> usize {
        self.num_workers
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A worker found nothing to do and is about to park.
    pub(crate) fn worker_idle(&self, counts: &mut Counts, index: usize) -> Check {
        let check = counts.worker_parks(index);
        self.num_idle.store(counts.idle_workers(), SeqCst);
        check
    }

    /// A worker that announced itself idle found work on its re-check. Returns false if
    /// someone claimed it meanwhile (it must then consume the unpark by parking).
    pub(crate) fn unidle(&self, index: usize) -> bool {
        let mut counts = self.lock();
        if !counts.worker_unparks(index) {
            return false;
        }
        self.num_idle.store(counts.idle_workers(), SeqCst);
        true
    }

    /// Takes a parked worker to run new work, counting it running and searching before it
    /// is unparked. The caller must unpark the returned worker.
    pub(crate) fn claim_sleeper(&self, counts: &mut Counts) -> Option<usize> {
        let index = counts.claim_sleeper()?;
        self.num_idle.store(counts.idle_workers(), SeqCst);
        self.num_searching.fetch_add(1, SeqCst);
        Some(index)
    }

    /// Claims every sleeper (shutdown), counting them searching like any claim.
    pub(crate) fn claim_all(&self) -> Vec<usize> {
        let mut counts = self.lock();
        let all = counts.claim_all_sleepers();
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

    /// The poller takes the pretend-running token before a waker leaves the reactor (an
    /// increase: never makes the runtime quiet, so it needs no check).
    pub(crate) fn take_token(&self) {
        self.lock().take_token();
    }

    /// A blocking job was submitted (counted before it is queued; an increase).
    pub(crate) fn blocking_start(&self) {
        self.lock().blocking_start();
    }
}
