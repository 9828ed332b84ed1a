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
//!    under the scheduler lock (count first, DESIGN.md invariant 3);
//! 4. moves the stuck role's LIFO slot and ring into the new slot, with the thief-side
//!    operations (the stuck thread still owns its ring and may push to it);
//! 5. marks the new slot `ACTIVE` and hands it to a waiting spare thread, or starts one.
//!
//! The stuck thread, when its poll returns, claims `RETAKEN → LEAVING` at the top of its
//! loop: it moves whatever it queued meanwhile to the injector, frees the slot, uncounts
//! itself (running the deadlock check) and waits as a spare for a future retake, exiting
//! after the keep-alive. Its CAS and sysmon's back-off CAS decide the race with the poll
//! ending: either the role stays with its thread, or it is replaced — never lost.
//! While it is stuck its wakes go to the injector (`Shared::schedule_task` checks the role),
//! and sysmon sweeps anything that raced into its queues.
//!
//! Invariants: at most `workers` roles are `ACTIVE`; only the thread running a role owns
//! its ring (push/pop), everyone else uses thief operations; a stuck thread stays counted
//! running (it may still wake tasks), so a retake never makes a deadlock reportable.

use std::collections::VecDeque;
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
}

/// Threads that have no role and wait for one (threads of retaken roles, or started for a
/// retake). Also owns the join handles of every worker thread.
pub(crate) struct SparePool {
    state: Mutex<SpareState>,
    cvar: Condvar,
    max_threads: usize,
    keep_alive: Duration,
}

struct SpareState {
    /// Slots handed to waiting spares, not yet picked up.
    assigned: VecDeque<usize>,
    waiting: usize,
    /// Worker threads alive (with a role or waiting for one).
    threads: usize,
    handles: Vec<std::thread::JoinHandle<()>>,
    shutdown: bool,
}

impl SparePool {
    pub(crate) fn new(max_threads: usize, keep_alive: Duration) -> SparePool {
        SparePool {
            state: Mutex::new(SpareState {
                assigned: VecDeque::new(),
                waiting: 0,
                threads: 0,
                handles: Vec::new(),
                shutdown: false,
            }),
            cvar: Condvar::new(),
            max_threads,
            keep_alive,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SpareState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn threads(&self) -> usize {
        self.lock().threads
    }

    /// Starts a worker thread for `slot`.
    pub(crate) fn start(&self, shared: &Arc<Shared>, slot: usize) -> std::io::Result<()> {
        let mut state = self.lock();
        state.handles.retain(|h| !h.is_finished());
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
    fn assign(&self, shared: &Arc<Shared>, slot: usize) -> bool {
        {
            let mut state = self.lock();
            if state.waiting > 0 {
                state.waiting -= 1;
                state.assigned.push_back(slot);
                self.cvar.notify_one();
                return true;
            }
            if state.threads >= self.max_threads {
                return false;
            }
        }
        self.start(shared, slot).is_ok()
    }

    /// Waits for a slot to run; `None` after the keep-alive or at shutdown (then the
    /// thread exits).
    fn wait_for_role(&self) -> Option<usize> {
        let mut state = self.lock();
        let deadline = Instant::now() + self.keep_alive;
        state.waiting += 1;
        loop {
            if let Some(slot) = state.assigned.pop_front() {
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

    /// Shutdown: wakes the waiting spares and returns every thread handle to join.
    pub(crate) fn shutdown(&self) -> Vec<std::thread::JoinHandle<()>> {
        let mut state = self.lock();
        state.shutdown = true;
        self.cvar.notify_all();
        std::mem::take(&mut state.handles)
    }

    fn thread_exiting(&self) {
        self.lock().threads -= 1;
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
/// Returns whether a retake happened.
///
/// The spare slot is reserved *before* the stuck role is marked: once the stuck thread has
/// seen `RETAKEN` and claimed `LEAVING`, the role must be replaced, so there must be a
/// slot to replace it with. The race with the poll ending is settled by CAS: the stuck
/// thread claims `RETAKEN → LEAVING`, we try `RETAKEN → ACTIVE` to back off; exactly one
/// wins (a loom-checked shape: `loom_retake_vs_return`).
pub(crate) fn try_retake(shared: &Arc<Shared>, stuck: usize, seq: u64) -> bool {
    let remotes = &shared.remotes;
    let Some(spare) = (0..remotes.len()).find(|&i| remotes[i].role.transition(FREE, RESERVED))
    else {
        // Every spare slot serves another stuck role (max_spare_threads reached).
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
    shared.idle.lock().workers += 1;
    move_work(shared, stuck, spare);
    // Release: the spare's thread (or anyone who sees ACTIVE) sees the moved queue.
    remotes[spare].role.store(ACTIVE);
    let assigned = shared.spares.assign(shared, spare);
    if !assigned {
        // No thread for it (spawn failed): undo; its tasks go global.
        drain_slot_to_injector(shared, spare);
        unreserve();
        shared.idle.lock().workers -= 1;
    } else {
        shared.retakes.fetch_add(1, Relaxed);
    }
    release_token(shared);
    shared.notify_parked();
    assigned
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

/// The thread of a retaken role, back from its poll: hand back what it queued, free the
/// slot, and stop counting as a worker (which may make the runtime quiet: check).
pub(crate) fn give_up_role(shared: &Shared, slot: usize) {
    debug_assert_eq!(shared.remotes[slot].role.load(), LEAVING);
    drain_slot_to_injector(shared, slot);
    shared.notify_parked();
    shared.remotes[slot].role.store(FREE);
    deadlock::after_transition(shared, |counts| shared.idle.thread_left(counts));
}

fn release_token(shared: &Shared) {
    deadlock::after_transition(shared, |counts| shared.idle.release_token(counts));
}
