//! Retake: a worker stuck inside one poll (blocking code in a task) never strands the work
//! queued behind it. Go's `sysmon` `retake`, for runnel's worker roles.
//!
//! A *role* is a slot of `Shared::remotes` (LIFO slot, ring, parker, counters; its state
//! machine is `role.rs`); a *thread* runs one role at a time (threads and the spare pool:
//! `threads.rs`). There are `workers + max_spare_threads` slots, of which `workers` are
//! `ACTIVE`; the rest are `FREE`, `RESERVED`, `RETAKEN` or `LEAVING`.
//!
//! When the poller's sysmon sees a role whose current poll has lasted longer than
//! `retake_after` — and its thread is blocked, or no other worker is free to take its
//! queue (`poller::Sysmon::computing`: a thread computing on a CPU keeps its role while
//! another worker can steal from it, since a replacement would only compete with it for
//! the CPUs; Go likewise hands a P off only from an M blocked in a syscall) — it:
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
//! future retake, exiting after the keep-alive. Its CAS and sysmon's back-off CAS decide
//! the race with the poll ending: either the role stays with its thread, or it is
//! replaced — never lost.
//! While it is stuck its wakes go to the injector (`Shared::schedule_task` checks the role),
//! and sysmon sweeps anything that raced into its queues.
//!
//! Invariants: at most `workers` roles are `ACTIVE`; only the thread running a role owns
//! its ring (push/pop), everyone else uses thief operations; a stuck thread stays counted
//! running (it may still wake tasks), so a retake never makes a deadlock reportable.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::local_queue::Steal;
use super::role::RoleState;
use super::threads::Failure;
use super::Shared;
use crate::detector;

#[cfg(all(test, loom))]
mod loom_tests;

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
    let Some(spare) = (0..remotes.len()).find(|&i| {
        remotes[i]
            .role
            .transition(RoleState::Free, RoleState::Reserved)
    }) else {
        // Every spare slot serves another stuck role (max_spare_threads reached).
        shared
            .spares
            .report_failure(shared, stuck, seq, Failure::NoSlot);
        return false;
    };
    let unreserve = || remotes[spare].role.store(RoleState::Free);
    let poll_ended = || remotes[stuck].metrics.poll_seq.load(Relaxed) != seq;
    if !remotes[stuck].role.claim_retake(poll_ended) {
        // Not ACTIVE any more, or the poll ended and its thread keeps the role.
        unreserve();
        return false;
    }
    // Count first (invariant 3): the token covers the tasks in transit, and the spare's
    // thread is counted running before it exists.
    shared.idle.take_token();
    detector::after_transition(shared, detector::Counts::thread_reserved);
    move_work(shared, stuck, spare);
    // Release: the spare's thread (or anyone who sees ACTIVE) sees the moved queue.
    remotes[spare].role.store(RoleState::Active);
    let retaken = match shared.spares.assign(shared, spare) {
        Ok(()) => true,
        Err(failure) => {
            if remotes[stuck].role.restore() {
                // The stuck thread keeps its role (it was never told otherwise): undo the
                // replacement. Its tasks go global, where the thread finds them when its
                // poll returns (or the next retake's spare does).
                drain_slot_to_injector(shared, spare);
                unreserve();
                detector::after_transition(shared, detector::Counts::thread_left);
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
pub(crate) fn sweep(shared: &Arc<Shared>, slot: usize) {
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
pub(crate) fn give_up_role(shared: &Arc<Shared>, slot: usize) {
    debug_assert_eq!(shared.remotes[slot].role.load(), RoleState::Leaving);
    drain_slot_to_injector(shared, slot);
    shared.notify_parked();
    // In the pool before the slot is FREE: once sysmon can reserve this slot for another
    // retake, it must find this thread waiting. Otherwise, with `max_threads` alive, that
    // retake would find no thread to run the slot (loom: `loom_retake_leaving_thread`).
    shared.spares.enter();
    shared.remotes[slot].role.store(RoleState::Free);
    detector::after_transition(shared, detector::Counts::thread_left);
}

fn release_token(shared: &Shared) {
    detector::after_transition(shared, detector::Counts::release_token);
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
            RoleState::Active,
            "the role was not restored"
        );
        assert_eq!(
            shared.remotes[1].role.load(),
            RoleState::Free,
            "the spare slot stays reserved"
        );
        assert_eq!(
            shared.idle.lock().workers(),
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
