//! Worker threads: starting them, and the pool of spare threads that wait for a role
//! (threads of retaken roles, or started for a retake). Owns the join handle of every
//! worker thread, so shutdown joins them all; no thread starts once shutdown took them.

use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::worker::{RoleEnd, Worker};
use super::Shared;

/// Threads that have no role and wait for one (threads of retaken roles, or started for a
/// retake). Also owns the join handles of every worker thread.
pub(crate) struct SparePool {
    state: Mutex<SpareState>,
    cvar: Condvar,
    max_threads: usize,
    keep_alive: Duration,
    /// Retake attempts that failed (no spare slot, or no thread for it).
    failed_retakes: AtomicU64,
}

/// The pool's bookkeeping, under its lock. The counting is separate from the threads and
/// the condvar so the loom models (`loom_tests.rs`) can drive the real methods.
pub(crate) struct SpareState {
    /// Slots handed to the pool, not yet picked up by a thread.
    assigned: VecDeque<usize>,
    /// Threads in the pool: counted by `enter` (before the role they left is published
    /// `FREE`) until they take a slot or exit. `waiting - assigned.len()` of them are free
    /// to take a new slot (fewer, briefly, after `hand_to_leaving`).
    waiting: usize,
    /// Worker threads alive (with a role or in the pool).
    pub(super) threads: usize,
    handles: Vec<std::thread::JoinHandle<()>>,
    /// Set by `SparePool::shutdown` when it takes `handles`: from then on no thread is
    /// started (it would never be joined) and no slot is handed out.
    shutdown: bool,
    /// Per slot: the poll whose failed retake was last reported on stderr (one line per
    /// blocked poll, however many ticks retry it).
    reported: Vec<u64>,
}

/// How `SpareState::assign` placed a slot.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Assign {
    /// A thread in the pool will take it.
    HandedOver,
    /// No free thread in the pool, but the cap allows starting one.
    Start,
    /// No free thread in the pool and `max_threads` are alive.
    Full,
    /// The runtime is shutting down.
    Shutdown,
}

/// Why a retake did not happen (for the stderr line and the metric).
pub(crate) enum Failure {
    NoSlot,
    NoThread(Assign),
    Spawn(std::io::Error),
}

impl SpareState {
    pub(crate) fn new(slots: usize) -> SpareState {
        SpareState {
            assigned: VecDeque::new(),
            waiting: 0,
            threads: 0,
            handles: Vec::new(),
            shutdown: false,
            reported: vec![u64::MAX; slots],
        }
    }

    /// A thread joins the pool (it then calls `SparePool::wait_for_role`).
    pub(crate) fn enter(&mut self) {
        self.waiting += 1;
    }

    /// Hands `slot` to a pool thread not yet promised one, or says what else to do.
    pub(crate) fn assign(&mut self, slot: usize, max_threads: usize) -> Assign {
        if self.shutdown {
            Assign::Shutdown
        } else if self.waiting > self.assigned.len() {
            self.assigned.push_back(slot);
            Assign::HandedOver
        } else if self.threads >= max_threads {
            Assign::Full
        } else {
            Assign::Start
        }
    }

    /// Hands `slot` to a thread that claimed `LEAVING` and so is certain to `enter` and
    /// take a slot, even if it has not entered yet (and even at shutdown: it then runs the
    /// role only to see the shutdown and exit).
    pub(crate) fn hand_to_leaving(&mut self, slot: usize) {
        self.assigned.push_back(slot);
    }

    /// A pool thread takes a slot to run.
    pub(crate) fn take(&mut self) -> Option<usize> {
        let slot = self.assigned.pop_front()?;
        self.waiting -= 1;
        Some(slot)
    }
}

impl SparePool {
    pub(crate) fn new(max_threads: usize, keep_alive: Duration) -> SparePool {
        SparePool {
            // One slot per possible thread: `workers + max_spare_threads` of each.
            state: Mutex::new(SpareState::new(max_threads)),
            cvar: Condvar::new(),
            max_threads,
            keep_alive,
            failed_retakes: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SpareState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn threads(&self) -> usize {
        self.lock().threads
    }

    pub(crate) fn failed_retakes(&self) -> u64 {
        self.failed_retakes.load(Relaxed)
    }

    /// Starts the thread of initial role `slot`, which its caller claimed as a sleeper
    /// (`Shared::wake_claimed`); refused after `shutdown` (its handle would never be
    /// joined).
    pub(crate) fn start_claimed(&self, shared: &Arc<Shared>, slot: usize) -> std::io::Result<()> {
        let mut state = self.lock();
        if state.shutdown {
            return Err(std::io::Error::other("the runtime is shutting down"));
        }
        Self::spawn(&mut state, shared, slot, true)
    }

    /// With the pool locked, so `shutdown` either sees this handle or stops us first.
    /// `claimed`: the thread begins counted searching, as a claimed sleeper.
    fn spawn(
        state: &mut SpareState,
        shared: &Arc<Shared>,
        slot: usize,
        claimed: bool,
    ) -> std::io::Result<()> {
        // Reap threads that have exited (joining a finished thread does not block): a
        // dropped handle would detach a thread that may still be tearing down.
        let (finished, alive) = std::mem::take(&mut state.handles)
            .into_iter()
            .partition::<Vec<_>, _>(|h| h.is_finished());
        state.handles = alive;
        for handle in finished {
            let _ = handle.join();
        }
        let thread_shared = shared.clone();
        let handle = shared
            .config
            .thread_builder("worker")
            .spawn(move || thread_main(thread_shared, slot, claimed))?;
        state.threads += 1;
        state.handles.push(handle);
        Ok(())
    }

    /// Gives `slot` to a waiting spare, or starts a thread for it if the cap allows.
    pub(crate) fn assign(&self, shared: &Arc<Shared>, slot: usize) -> Result<(), Failure> {
        let mut state = self.lock();
        match state.assign(slot, self.max_threads) {
            Assign::HandedOver => {
                self.cvar.notify_one();
                Ok(())
            }
            Assign::Start => Self::spawn(&mut state, shared, slot, false).map_err(Failure::Spawn),
            other => Err(Failure::NoThread(other)),
        }
    }

    /// See `SpareState::hand_to_leaving`.
    pub(crate) fn hand_to_leaving(&self, slot: usize) {
        self.lock().hand_to_leaving(slot);
        self.cvar.notify_one();
    }

    /// A thread whose role was retaken joins the pool; it must then `wait_for_role`.
    pub(crate) fn enter(&self) {
        self.lock().enter();
    }

    /// Waits for a slot to run; `None` after the keep-alive or at shutdown (then the
    /// thread exits). The caller has `enter`ed.
    fn wait_for_role(&self) -> Option<usize> {
        let mut state = self.lock();
        let deadline = Instant::now() + self.keep_alive;
        loop {
            // Before the shutdown test: a slot handed to us must be run (and see the
            // shutdown itself), or it would be left ACTIVE with nobody on it.
            if let Some(slot) = state.take() {
                return Some(slot);
            }
            let now = Instant::now();
            if state.shutdown || now >= deadline {
                state.waiting -= 1;
                state.threads -= 1;
                return None;
            }
            state = self
                .cvar
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Shutdown: wakes the waiting spares and returns every thread handle to join. No
    /// thread is started after this.
    pub(crate) fn shutdown(&self) -> Vec<std::thread::JoinHandle<()>> {
        let mut state = self.lock();
        state.shutdown = true;
        // Only threads counted in `waiting` wait on the condvar (they `enter` under this
        // lock first, and test `shutdown` under it before each wait): with none, skip the
        // notify's syscall.
        if state.waiting > 0 {
            self.cvar.notify_all();
        }
        std::mem::take(&mut state.handles)
    }

    fn thread_exiting(&self) {
        self.lock().threads -= 1;
    }

    /// Counts a failed retake of role `stuck` and names it on stderr, once per blocked
    /// poll (sysmon retries on every tick).
    pub(crate) fn report_failure(&self, shared: &Shared, stuck: usize, seq: u64, failure: Failure) {
        if let Failure::NoThread(Assign::Shutdown) = failure {
            // Expected and silent: the runtime is going away.
            return;
        }
        self.failed_retakes.fetch_add(1, Relaxed);
        {
            let mut state = self.lock();
            if state.reported[stuck] == seq {
                return;
            }
            state.reported[stuck] = seq;
        }
        let what = match failure {
            Failure::NoSlot => format!(
                "every spare slot serves another blocked worker (max_spare_threads = {}); its \
                 queued tasks wait for it",
                shared.remotes.len() - shared.idle.num_workers()
            ),
            Failure::NoThread(_) => format!(
                "{} worker threads are alive already; its queued tasks go to the global queue \
                 and it keeps its role",
                self.max_threads
            ),
            Failure::Spawn(err) => format!(
                "a thread could not be started ({err}); its queued tasks go to the global \
                 queue and it keeps its role"
            ),
        };
        eprintln!("runnel: could not retake worker {stuck}, blocked in a poll: {what}. Retrying.");
    }
}

/// A worker thread: runs a role until it ends; after a retake, waits as a spare.
/// `claimed`: started by the claim of a sleeper (its first role begins searching).
fn thread_main(shared: Arc<Shared>, first_slot: usize, claimed: bool) {
    let mut slot = first_slot;
    let mut claimed = claimed;
    loop {
        match Worker::new(shared.clone(), slot).run(std::mem::take(&mut claimed)) {
            RoleEnd::Shutdown => {
                shared.spares.thread_exiting();
                return;
            }
            // `give_up_role` entered the pool.
            RoleEnd::Retaken => match shared.spares.wait_for_role() {
                Some(next) => slot = next,
                None => return,
            },
        }
    }
}
