//! The current-thread runtime's core: its one worker role (role 0), run by a `block_on`
//! caller instead of a worker thread (`Builder::new_current_thread`).
//!
//! Whoever holds the core runs tasks between polls of its own future: it is worker 0 for
//! the queues (`context::enter_core` makes wakes on this thread use role 0's LIFO slot and
//! ring) and a `block_on` caller for the counts (it parks as one, `Counts::block_on_idle`,
//! so the detector needs no new rule). The other `block_on` callers only poll their own
//! futures; the holder hands the core over when its `block_on` returns, waking them so
//! one takes it.
//!
//! Invariants:
//! 1. At most one thread holds the core (`CoreSlot::taken`); role 0's queues are touched
//!    as an owner only by it. The hand-over is a Release/Acquire pair on `taken`.
//! 2. `Counts::core` names the holder's `Signal` exactly while it holds the core, so a
//!    thread that queues work can claim it (`notify`) under the scheduler lock.
//! 3. The holder parks only after announcing it (`Idle::set_core_sleeping`) and then
//!    re-checking the run queues (SeqCst, Dekker-paired with `notify`'s fence): work
//!    queued before the announcement is seen by the re-check, work queued after it finds
//!    the flag and claims the holder.
//! 4. Shutdown takes the core for good (`close`), after the holder gave it back.

use std::sync::atomic::{AtomicBool, Ordering::*};
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

use super::worker::Worker;
use super::Shared;
use crate::block_on::Signal;
use crate::context;
use crate::poller::{drain_ready, try_lock_driver};

/// Who holds the core of a current-thread runtime (always free on a multi-thread one,
/// and never taken there).
#[derive(Default)]
pub(crate) struct CoreSlot {
    taken: AtomicBool,
}

/// The core, held by a `block_on` caller: worker 0's loop state.
pub(crate) struct Core {
    worker: Worker,
    signal: Arc<Signal>,
    _context: context::ContextGuard,
    /// Reused buffer for wakers taken out of the reactor.
    wakers: Vec<Waker>,
}

impl Core {
    /// Takes the core if `shared` is a current-thread runtime and nobody holds it.
    pub(crate) fn try_take(shared: &Arc<Shared>, signal: &Arc<Signal>) -> Option<Core> {
        if !shared.config.current_thread
            || shared.core.taken.load(Relaxed)
            || shared.core.taken.swap(true, Acquire)
        {
            return None;
        }
        if shared.is_shutdown() {
            // Shutdown closes the slot itself; do not run tasks it is freeing.
            shared.core.taken.store(false, Release);
            return None;
        }
        {
            let mut counts = shared.idle.lock();
            // Under the lock, with the reference it describes (the check reads both there).
            signal.holds_core.store(true, SeqCst);
            counts.set_core(Some(signal.clone()));
        }
        Some(Core {
            worker: Worker::new(shared.clone(), 0),
            signal: signal.clone(),
            _context: context::enter_core(shared),
            wakers: Vec::new(),
        })
    }

    /// Runs the next queued task. False when there is none.
    pub(crate) fn run_one(&mut self) -> bool {
        match self.worker.next_task() {
            Some(task) => {
                self.worker.run_task(task);
                true
            }
            None => false,
        }
    }

    /// Whether the holder must give the core back now (shutdown is waiting for it).
    pub(crate) fn must_release(&self) -> bool {
        self.worker.shared().is_shutdown()
    }

    /// Sleeps until claimed (a wake of the holder's future, queued work, a deadlock
    /// report), in the reactor's poll if nobody else is in it. The caller counted itself
    /// parked (`Signal::park_counted`). Returns counted running.
    pub(crate) fn sleep(&mut self) {
        let shared = self.worker.shared().clone();
        loop {
            let Some(mut driver) = try_lock_driver(&shared) else {
                self.signal.parker().park();
                return;
            };
            let unparked = self.signal.parker().park_in_driver(|| {
                if let Err(err) = driver.park(None) {
                    eprintln!("runnel: the reactor failed to poll: {err}");
                }
            });
            shared.note_reactor_polled();
            let now = Instant::now();
            if !driver.has_pending(now) {
                if unparked {
                    return;
                }
                continue; // Woken for nothing (an interrupt meant for an earlier sleep).
            }
            // Count first (invariant 3 of ARCHITECTURE.md): running again before any waker
            // leaves the reactor. If that fails, someone claimed us and its unpark is on
            // the way.
            let claimed = unparked || !self.signal.claim_self();
            let room = self.worker.timer_room();
            drain_ready(&shared, &mut driver, now, room, &mut self.wakers);
            drop(driver);
            if claimed && !unparked {
                self.signal.parker().park(); // Consume the claimer's token.
            }
            return;
        }
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        let shared = self.worker.shared().clone();
        // Before the `block_on` caller stops counting (its `Registration` drops after
        // us): the other callers are woken while it still counts as running, so a check
        // run by its leaving sees their wakes pending, never a queue nobody will run.
        let others = {
            let mut counts = shared.idle.lock();
            counts.set_core(None);
            self.signal.holds_core.store(false, SeqCst);
            shared.idle.set_core_sleeping(false);
            counts
                .block_ons()
                .iter()
                .filter(|s| !Arc::ptr_eq(s, &self.signal))
                .cloned()
                .collect::<Vec<_>>()
        };
        shared.core.taken.store(false, Release);
        for signal in others {
            // A spurious wake of its future: it polls it once more, then takes the core.
            signal.wake();
        }
    }
}

impl CoreSlot {
    /// Shutdown: waits (until `deadline`) for the holder to give the core back, then
    /// keeps it so nobody runs tasks again. Returns whether the core is now closed (then
    /// role 0's queues may be emptied by the caller).
    pub(crate) fn close(&self, shared: &Shared, deadline: Option<Instant>) -> bool {
        // Wake the holder: it sees the shutdown flag and gives the core back.
        let holder = {
            let mut counts = shared.idle.lock();
            counts
                .core()
                .cloned()
                .filter(|signal| signal.claim(&mut counts))
        };
        if let Some(signal) = holder {
            signal.parker().unpark();
        }
        loop {
            if !self.taken.load(Relaxed) && !self.taken.swap(true, Acquire) {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            // The holder returns from its current task's poll; that has no upper bound we
            // could wait on, so poll for it like `join_until` does for threads.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Shared {
    /// Current-thread runtime: work was queued; wake the core's holder if it sleeps.
    pub(crate) fn notify_core(&self) {
        if context::current_worker(self).is_some() {
            // This thread holds the core and is awake: it finds the work itself.
            return;
        }
        // Pairs with the fence the holder runs between announcing its sleep and
        // re-checking the queues (invariant 3).
        std::sync::atomic::fence(SeqCst);
        if !self.idle.core_sleeping() {
            return;
        }
        let holder = {
            let mut counts = self.idle.lock();
            counts
                .core()
                .cloned()
                .filter(|signal| signal.claim(&mut counts))
        };
        if let Some(signal) = holder {
            signal.parker().unpark();
        }
    }
}
