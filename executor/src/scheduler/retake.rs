//! Retake: a worker stuck inside one poll (blocking code in a task) never strands the work
//! queued behind it. Go's `sysmon` `retake`, for runnel's worker roles.
//!
//! A *role* is a slot of `Shared::remotes` (LIFO slot, ring, parker, counters); a *thread*
//! runs one role at a time. There are `workers + max_spare_threads` slots, of which
//! `workers` are `ACTIVE`; the rest are `FREE`, `RESERVED`, `RETAKEN` or `LEAVING`.
//!
//! When the poller's sysmon sees a role whose current poll has lasted longer than
//! `retake_after`, it:
//! 1. reserves a `FREE` slot for the replacement (none: no retake);
//! 2. marks the stuck role `RETAKEN` (CAS from `ACTIVE`), and backs off (CAS back to
//!    `ACTIVE`) if the poll ended meanwhile and its thread has not claimed the give-up;
//! 3. takes the pretend-running token and counts the replacement's thread in `workers`
//!    under the scheduler lock (count first, ARCHITECTURE.md invariant 3);
//! 4. moves the stuck role's LIFO slot and ring into the new slot, with the thief-side
//!    operations (the stuck thread still owns its ring and may push to it);
//! 5. marks the new slot `ACTIVE` and hands it to a waiting spare thread, or starts one.
//!
//! If step 5 finds no thread (starting one failed, or the runtime is shutting down), the
//! retake is undone without losing a role: sysmon gives the stuck role back to its thread
//! (CAS `RETAKEN → ACTIVE`) and sends the moved work to the injector; if that CAS loses
//! because the thread, back from its poll, already claimed the give-up, that thread is on
//! its way into the spare pool and the new role is handed to it. A failed retake is
//! retried on sysmon's next tick.
//!
//! The stuck thread, when its poll returns, claims `RETAKEN → LEAVING` at the top of its
//! loop: it moves whatever it queued meanwhile to the injector, counts itself as a waiting
//! spare, frees the slot, uncounts itself (running the deadlock check) and waits for a
//! future retake, exiting after the keep-alive. Its CAS and sysmon's back-off CAS decide the race with the poll
//! ending: either the role stays with its thread, or it is replaced — never lost.
//! While it is stuck its wakes go to the injector (`Shared::schedule_task` checks the role),
//! and sysmon sweeps anything that raced into its queues.
//!
//! Invariants: at most `workers` roles are `ACTIVE`; only the thread running a role owns
//! its ring (push/pop), everyone else uses thief operations; a stuck thread stays counted
//! running (it may still wake tasks), so a retake never makes a deadlock reportable.

use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::local_queue::Steal;
use super::worker::{RoleEnd, Worker};
use super::Shared;
use crate::deadlock;

/// No thread runs the role; sysmon may reserve it.
pub(crate) const FREE: u8 = 0;
/// A thread runs the role.
pub(crate) const ACTIVE: u8 = 1;
/// Sysmon retook it; its thread is (or was just) stuck in a poll.
pub(crate) const RETAKEN: u8 = 2;
/// Its thread claimed the give-up and is handing back its queues.
pub(crate) const LEAVING: u8 = 3;
/// Sysmon reserved it for a spare, before moving work in.
pub(crate) const RESERVED: u8 = 4;

#[cfg(all(test, loom))]
mod loom_tests;

/// A role's state. Transitions: sysmon `FREE → RESERVED → ACTIVE` (or back to `FREE`),
/// `ACTIVE → RETAKEN`, and the back-off `RETAKEN → ACTIVE`; the role's thread
/// `RETAKEN → LEAVING → FREE`. The two CASes out of `RETAKEN` decide who owns the outcome.
pub(crate) struct Role(crate::loom::atomic::AtomicU8);

impl Role {
    pub(crate) fn new(state: u8) -> Role {
        Role(crate::loom::atomic::AtomicU8::new(state))
    }

    pub(crate) fn load(&self) -> u8 {
        // Acquire: pairs with the Release of the transitions, so a thread that sees FREE
        // or ACTIVE sees the slot's queues as the previous owner left them.
        self.0.load(Acquire)
    }

    fn transition(&self, from: u8, to: u8) -> bool {
        self.0.compare_exchange(from, to, AcqRel, Acquire).is_ok()
    }

    pub(crate) fn store(&self, state: u8) {
        self.0.store(state, Release);
    }

    /// Sysmon's side of the race with the poll ending: marks the role `RETAKEN`, then backs
    /// off if `poll_ended()` and the thread has not claimed the give-up. True: the role
    /// must be replaced.
    pub(crate) fn claim_retake(&self, poll_ended: impl FnOnce() -> bool) -> bool {
        if !self.transition(ACTIVE, RETAKEN) {
            return false;
        }
        !(poll_ended() && self.transition(RETAKEN, ACTIVE))
    }

    /// The role's thread's side: true if it must give the role up (it now is `LEAVING`).
    pub(crate) fn claim_give_up(&self) -> bool {
        self.load() == RETAKEN && self.transition(RETAKEN, LEAVING)
    }

    /// Sysmon's undo of a retake that found no thread for the replacement: gives the role
    /// back to its thread (`RETAKEN → ACTIVE`). False if the thread already claimed the
    /// give-up (`LEAVING`): it is leaving for the spare pool, so the replacement role must
    /// be handed to it (the same CAS race as `claim_retake`, loom-checked in
    /// `loom_retake_failed_assign`).
    pub(crate) fn restore(&self) -> bool {
        self.transition(RETAKEN, ACTIVE)
    }
}

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
    threads: usize,
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
enum Failure {
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

    /// Starts a worker thread for `slot`; refused after `shutdown` (its handle would never
    /// be joined).
    pub(crate) fn start(&self, shared: &Arc<Shared>, slot: usize) -> std::io::Result<()> {
        let mut state = self.lock();
        if state.shutdown {
            return Err(std::io::Error::other("the runtime is shutting down"));
        }
        Self::spawn(&mut state, shared, slot)
    }

    /// With the pool locked, so `shutdown` either sees this handle or stops us first.
    fn spawn(state: &mut SpareState, shared: &Arc<Shared>, slot: usize) -> std::io::Result<()> {
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
            .spawn(move || thread_main(thread_shared, slot))?;
        state.threads += 1;
        state.handles.push(handle);
        Ok(())
    }

    /// Gives `slot` to a waiting spare, or starts a thread for it if the cap allows.
    fn assign(&self, shared: &Arc<Shared>, slot: usize) -> Result<(), Failure> {
        let mut state = self.lock();
        match state.assign(slot, self.max_threads) {
            Assign::HandedOver => {
                self.cvar.notify_one();
                Ok(())
            }
            Assign::Start => Self::spawn(&mut state, shared, slot).map_err(Failure::Spawn),
            other => Err(Failure::NoThread(other)),
        }
    }

    /// See `SpareState::hand_to_leaving`.
    fn hand_to_leaving(&self, slot: usize) {
        self.lock().hand_to_leaving(slot);
        self.cvar.notify_one();
    }

    /// A thread whose role was retaken joins the pool; it must then `wait_for_role`.
    fn enter(&self) {
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
        self.cvar.notify_all();
        std::mem::take(&mut state.handles)
    }

    fn thread_exiting(&self) {
        self.lock().threads -= 1;
    }

    /// Counts a failed retake of role `stuck` and names it on stderr, once per blocked
    /// poll (sysmon retries on every tick).
    fn report_failure(&self, shared: &Shared, stuck: usize, seq: u64, failure: Failure) {
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
fn thread_main(shared: Arc<Shared>, first_slot: usize) {
    let mut slot = first_slot;
    loop {
        match Worker::new(shared.clone(), slot).run() {
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

pub(crate) fn start_thread(shared: &Arc<Shared>, slot: usize) -> std::io::Result<()> {
    shared.spares.start(shared, slot)
}

/// Sysmon: retakes role `stuck` if its poll with sequence number `seq` is still running.
/// Returns whether a retake happened; a failed one is named on stderr, and the caller
/// tries again on its next tick.
///
/// The spare slot is reserved *before* the stuck role is marked: once the stuck thread has
/// seen `RETAKEN` and claimed `LEAVING`, the role must be replaced, so there must be a
/// slot to replace it with. The race with the poll ending is settled by CAS: the stuck
/// thread claims `RETAKEN → LEAVING`, we try `RETAKEN → ACTIVE` to back off (or to undo,
/// if no thread can take the new slot); exactly one wins (loom-checked shapes:
/// `loom_retake_vs_return`, `loom_retake_failed_assign`).
pub(crate) fn try_retake(shared: &Arc<Shared>, stuck: usize, seq: u64) -> bool {
    if shared.is_shutdown() {
        // Only a shortcut: `SparePool::assign` refuses under its lock, which is what
        // orders us against `SparePool::shutdown`.
        return false;
    }
    let remotes = &shared.remotes;
    let Some(spare) = (0..remotes.len()).find(|&i| remotes[i].role.transition(FREE, RESERVED))
    else {
        // Every spare slot serves another stuck role (max_spare_threads reached).
        shared
            .spares
            .report_failure(shared, stuck, seq, Failure::NoSlot);
        return false;
    };
    let unreserve = || remotes[spare].role.store(FREE);
    let poll_ended = || remotes[stuck].metrics.poll_seq.load(Relaxed) != seq;
    if !remotes[stuck].role.claim_retake(poll_ended) {
        // Not ACTIVE any more, or the poll ended and its thread keeps the role.
        unreserve();
        return false;
    }
    // Count first (invariant 3): the token covers the tasks in transit, and the spare's
    // thread is counted running before it exists.
    shared.idle.take_token();
    deadlock::after_transition(shared, |counts| shared.idle.thread_reserved(counts));
    move_work(shared, stuck, spare);
    // Release: the spare's thread (or anyone who sees ACTIVE) sees the moved queue.
    remotes[spare].role.store(ACTIVE);
    let retaken = match shared.spares.assign(shared, spare) {
        Ok(()) => true,
        Err(failure) => {
            if remotes[stuck].role.restore() {
                // The stuck thread keeps its role (it was never told otherwise): undo the
                // replacement. Its tasks go global, where the thread finds them when its
                // poll returns (or the next retake's spare does).
                drain_slot_to_injector(shared, spare);
                unreserve();
                deadlock::after_transition(shared, |counts| shared.idle.thread_left(counts));
                shared.spares.report_failure(shared, stuck, seq, failure);
                false
            } else {
                // Its poll returned and it claimed LEAVING: it is on its way into the pool
                // and will run the new role. The retake happened after all.
                shared.spares.hand_to_leaving(spare);
                true
            }
        }
    };
    if retaken {
        shared.retakes.fetch_add(1, Relaxed);
    }
    release_token(shared);
    shared.notify_parked();
    retaken
}

/// The thread of role `slot`, at the top of its loop: whether sysmon retook the role. If
/// so the thread claims the give-up (`RETAKEN → LEAVING`) and must call `give_up_role`;
/// if sysmon backed off first, the role is still ours.
pub(crate) fn was_retaken(shared: &Shared, slot: usize) -> bool {
    shared.remotes[slot].role.claim_give_up()
}

/// Moves the stuck role's LIFO slot and ring into `to`, whose thread does not exist yet
/// (so we are its ring's only user). Thief operations on `from`: its thread may still push.
fn move_work(shared: &Shared, from: usize, to: usize) {
    let (src, dst) = (&shared.remotes[from], &shared.remotes[to]);
    if let Some(task) = src.take_lifo() {
        dst.queue.push_back(task, &shared.injector);
    }
    // Stops when `to` is half full; sysmon's sweep sends the rest to the injector.
    while let Steal::Success(task) = src.queue.steal_into(&dst.queue) {
        dst.queue.push_back(task, &shared.injector);
    }
}

fn drain_slot_to_injector(shared: &Shared, slot: usize) {
    let remote = &shared.remotes[slot];
    if let Some(task) = remote.take_lifo() {
        shared.injector.push(task);
    }
    while let Some(task) = remote.queue.pop() {
        shared.injector.push(task);
    }
}

/// Sysmon: a retaken role's thread is still stuck; anything that raced into its queues
/// (a wake between its role check and the retake) goes to the injector.
pub(crate) fn sweep(shared: &Shared, slot: usize) {
    let remote = &shared.remotes[slot];
    let mut moved = false;
    if let Some(task) = remote.take_lifo() {
        shared.injector.push(task);
        moved = true;
    }
    while let Some(task) = remote.queue.pop() {
        shared.injector.push(task);
        moved = true;
    }
    if moved {
        shared.notify_parked();
    }
}

/// The thread of a retaken role, back from its poll: hand back what it queued, join the
/// spare pool, free the slot, and stop counting as a worker (which may make the runtime
/// quiet: check).
pub(crate) fn give_up_role(shared: &Shared, slot: usize) {
    debug_assert_eq!(shared.remotes[slot].role.load(), LEAVING);
    drain_slot_to_injector(shared, slot);
    shared.notify_parked();
    // In the pool before the slot is FREE: once sysmon can reserve this slot for another
    // retake, it must find this thread waiting. Otherwise, with `max_threads` alive, that
    // retake would find no thread to run the slot (loom: `loom_retake_leaving_thread`).
    shared.spares.enter();
    shared.remotes[slot].role.store(FREE);
    deadlock::after_transition(shared, |counts| shared.idle.thread_left(counts));
}

fn release_token(shared: &Shared) {
    deadlock::after_transition(shared, |counts| shared.idle.release_token(counts));
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::runtime::Builder;

    /// Hardening issue, C: a retake in the shutdown window (after `SparePool::shutdown`
    /// took the handles to join) must start no thread, and must undo its reservation:
    /// the stuck worker keeps its role, the spare slot is free, the counts are back.
    #[test]
    fn retake_after_pool_shutdown_starts_no_thread() {
        let rt = Builder::new()
            .worker_threads(1)
            .retake_after(None) // only this test retakes
            .build()
            .unwrap();
        let shared = rt.handle().shared.clone();
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let blocker = rt.spawn(async move {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
        });
        started_rx.recv().unwrap();
        let seq = shared.remotes[0].metrics.poll_seq.load(Relaxed);
        assert_eq!(seq % 2, 1, "worker 0 is inside the blocking poll");
        // What `Runtime::shutdown` does before joining: take every handle.
        let handles = shared.spares.shutdown();
        assert!(!try_retake(&shared, 0, seq));
        assert_eq!(
            shared.spares.threads(),
            1,
            "a thread was started after shutdown"
        );
        assert_eq!(
            shared.remotes[0].role.load(),
            ACTIVE,
            "the role was not restored"
        );
        assert_eq!(
            shared.remotes[1].role.load(),
            FREE,
            "the spare slot stays reserved"
        );
        assert_eq!(
            shared.idle.lock().workers,
            1,
            "the reservation is still counted"
        );
        assert_eq!(shared.retakes.load(Relaxed), 0);
        release_tx.send(()).unwrap();
        rt.block_on(blocker).unwrap();
        drop(rt);
        for handle in handles {
            handle.join().unwrap();
        }
    }
}
