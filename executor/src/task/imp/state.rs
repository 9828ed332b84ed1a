//! The task state word: lifecycle flags, the reference count and the poll count, in one
//! `AtomicU64`.
//!
//! Every transition is a method that returns a `#[must_use]` value telling the caller
//! what to do next; call sites never see bit masks.
//!
//! | bit | name | meaning |
//! | --- | --- | --- |
//! | 0 | `RUNNING` | a thread owns the future (polling, cancelling or completing it) |
//! | 1 | `COMPLETE` | the output (or the `JoinError`) is stored; the future is gone |
//! | 2 | `NOTIFIED` | a `Notified` reference exists (queued), or the task was woken while running |
//! | 3 | `CANCELLED` | abort or shutdown asked for the task to stop at its next poll |
//! | 4 | `JOIN_INTEREST` | a `JoinHandle` exists and will read the output |
//! | 5 | `JOIN_WAKER` | the join waker slot holds a waker owned by the task side |
//! | 6 | `JOIN_OUTSIDE` | the `JoinHandle` was made or last polled on a thread outside the runtime (it may abort the task: the deadlock detector counts it as a possible wake) |
//! | 7..=32 | refcount | one per `Task`, `Notified`, `JoinHandle` and `Waker` |
//! | 33..=63 | polls | polls begun, mod 2^31: the wait-for graph's "was it polled since" |
//!
//! The poll count lives here, not in the task's `WaitSlot`, because the transition that
//! starts a poll is a CAS on this word anyway: counting costs no extra store, and the
//! detector reads the count and the task's state in one load. It takes the top 31 bits,
//! so its increment wraps without touching the rest; the detector only compares two
//! reads for equality (`detector/graph.rs`), and 2^31 polls of one task between two
//! scans (250 ms apart) cannot happen. That leaves the refcount 26 bits: `ref_inc` aborts
//! at 2^25 references to one task, half the field, as `Arc` aborts at `isize::MAX` (the
//! other half is headroom for increments racing past the check). tokio's refcount has the
//! same 2^25 limit on 32-bit targets. 2^25 references are 2^25 wakers (16 bytes each, 512
//! MiB) of one task.
//!
//! `NOTIFIED` is what keeps a task from being queued twice: only the transition that
//! sets it while the task is idle submits a `Notified`. A wake while `RUNNING` only sets
//! the bit, and the worker resubmits the task when the poll returns.
//!
//! The `JOIN_WAKER` protocol (the slot is a plain cell, the bit says who owns it):
//! - bit clear, task not complete: the `JoinHandle` owns the slot and may write it, then
//!   sets the bit with a CAS that fails if `COMPLETE` was set meanwhile;
//! - bit set: the task side owns it; the completer reads it to wake the joiner, and the
//!   `JoinHandle` must clear the bit (CAS, fails if complete) before touching the slot.

use crate::loom::atomic::{AtomicU64, Ordering::*};

const RUNNING: u64 = 1 << 0;
const COMPLETE: u64 = 1 << 1;
const NOTIFIED: u64 = 1 << 2;
const CANCELLED: u64 = 1 << 3;
const JOIN_INTEREST: u64 = 1 << 4;
const JOIN_WAKER: u64 = 1 << 5;
const JOIN_OUTSIDE: u64 = 1 << 6;
const REF_SHIFT: u32 = 7;
const REF_ONE: u64 = 1 << REF_SHIFT;
const REF_BITS: u32 = 26;
const REF_MASK: u64 = ((1 << REF_BITS) - 1) << REF_SHIFT;
/// `ref_inc` aborts when the count it raised was already this high (see the module docs).
const REF_LIMIT: u64 = 1 << (REF_BITS - 1);
const POLL_SHIFT: u32 = REF_SHIFT + REF_BITS;
const POLL_ONE: u64 = 1 << POLL_SHIFT;

/// A new task is referenced by its `Task` (the owned list), its first `Notified` and its
/// `JoinHandle`, and is queued (`NOTIFIED`).
const INITIAL: u64 = (3 * REF_ONE) | NOTIFIED | JOIN_INTEREST;

/// A copy of the state word at one instant.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot(u64);

impl Snapshot {
    pub(crate) fn is_running(self) -> bool {
        self.0 & RUNNING != 0
    }
    pub(crate) fn is_complete(self) -> bool {
        self.0 & COMPLETE != 0
    }
    pub(crate) fn is_notified(self) -> bool {
        self.0 & NOTIFIED != 0
    }
    pub(crate) fn is_cancelled(self) -> bool {
        self.0 & CANCELLED != 0
    }
    pub(crate) fn is_join_interested(self) -> bool {
        self.0 & JOIN_INTEREST != 0
    }
    /// A `JoinHandle` exists and was last seen on a thread outside the runtime.
    pub(crate) fn is_join_held_outside(self) -> bool {
        self.is_join_interested() && self.0 & JOIN_OUTSIDE != 0
    }

    pub(crate) fn is_join_waker_set(self) -> bool {
        self.0 & JOIN_WAKER != 0
    }
    pub(crate) fn ref_count(self) -> usize {
        ((self.0 & REF_MASK) >> REF_SHIFT) as usize
    }
    /// Polls begun, mod 2^31. Unchanged between two reads: the task was not polled in
    /// between (a poll in progress counts as begun).
    pub(crate) fn polls(self) -> u32 {
        (self.0 >> POLL_SHIFT) as u32
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("running", &self.is_running())
            .field("complete", &self.is_complete())
            .field("notified", &self.is_notified())
            .field("cancelled", &self.is_cancelled())
            .field("join_interest", &self.is_join_interested())
            .field("join_waker", &self.is_join_waker_set())
            .field("refs", &self.ref_count())
            .field("polls", &self.polls())
            .finish()
    }
}

/// What a worker must do with a `Notified` it took off a queue.
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ToRunning {
    /// Poll the future.
    Poll,
    /// The task was aborted: drop the future and complete with `Cancelled`.
    Cancel,
    /// Someone else completed or owns the task (shutdown): just drop the reference.
    DropRef,
}

/// What a worker must do after a poll returned `Pending`.
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ToIdle {
    /// The task waits for a wake; drop the `Notified` reference the poll consumed.
    Idle,
    /// It was woken during the poll: resubmit it, reusing the poll's reference. One more
    /// reference was taken for the caller, which drops it after the submit returned (the
    /// scheduler is borrowed from the task's own cell; see `Wake::Submit`).
    Resubmit,
    /// It was aborted during the poll: cancel it now.
    Cancel,
}

/// What a waker must do.
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Submit a `Notified` to the scheduler (its reference is accounted for). The caller
    /// also holds a reference of its own until the submit returns: the scheduler handle is
    /// borrowed from the task's cell, and once the `Notified` is in a queue another worker
    /// may run the task to completion; the caller's reference keeps the cell (and so the
    /// scheduler) alive until the submit is done. `by_val` took an extra one for this.
    Submit,
    /// Nothing to schedule (already queued, running or complete).
    DoNothing,
    /// Nothing to schedule, and the caller's reference was the last: deallocate.
    Dealloc,
}

pub(crate) struct State(AtomicU64);

impl State {
    pub(crate) fn new() -> State {
        State(AtomicU64::new(INITIAL))
    }

    pub(crate) fn load(&self) -> Snapshot {
        // Acquire: pairs with the AcqRel of every transition, so whoever sees COMPLETE also
        // sees the stored output.
        Snapshot(self.0.load(Acquire))
    }

    /// Applies `f` in a CAS loop; `f` returns the new word and a result, or `None` to stop
    /// without writing. AcqRel: a transition both publishes the caller's writes to the task
    /// (output, join waker) and acquires those of the previous owner.
    fn fetch_update<R>(&self, mut f: impl FnMut(Snapshot) -> (Option<u64>, R)) -> R {
        let mut cur = self.0.load(Acquire);
        loop {
            let (next, result) = f(Snapshot(cur));
            let Some(next) = next else { return result };
            match self.0.compare_exchange_weak(cur, next, AcqRel, Acquire) {
                Ok(_) => return result,
                Err(actual) => cur = actual,
            }
        }
    }

    /// A worker took a `Notified` off a queue and wants to run it.
    pub(crate) fn transition_to_running(&self) -> ToRunning {
        self.fetch_update(|s| {
            if s.is_running() || s.is_complete() {
                // Shutdown claimed it; the Notified reference is all that is left to drop.
                return (None, ToRunning::DropRef);
            }
            debug_assert!(s.is_notified(), "a queued task must be NOTIFIED: {s:?}");
            let next = (s.0 & !NOTIFIED) | RUNNING;
            if s.is_cancelled() {
                (Some(next), ToRunning::Cancel)
            } else {
                // A poll begins: count it (the top bits; a carry out of them is dropped).
                (Some(next.wrapping_add(POLL_ONE)), ToRunning::Poll)
            }
        })
    }

    /// The poll returned `Pending`.
    pub(crate) fn transition_to_idle(&self) -> ToIdle {
        self.fetch_update(|s| {
            debug_assert!(s.is_running() && !s.is_complete(), "{s:?}");
            if s.is_cancelled() {
                // Stay RUNNING: the caller goes on to cancel the task.
                return (None, ToIdle::Cancel);
            }
            let next = s.0 & !RUNNING;
            if s.is_notified() {
                // Woken during the poll; the poll's reference becomes the new Notified's,
                // plus one the caller holds until the submit returned (see `Wake::Submit`).
                (Some(next + REF_ONE), ToIdle::Resubmit)
            } else {
                (Some(next), ToIdle::Idle)
            }
        })
    }

    /// The output is stored (or the future dropped): RUNNING → COMPLETE.
    pub(crate) fn transition_to_complete(&self) -> Snapshot {
        let prev = Snapshot(self.0.fetch_xor(RUNNING | COMPLETE, AcqRel));
        debug_assert!(prev.is_running() && !prev.is_complete(), "{prev:?}");
        Snapshot(prev.0 ^ (RUNNING | COMPLETE))
    }

    /// After waking the joiner, the completer hands the slot back. Returns the state after,
    /// so the caller knows whether the `JoinHandle` is gone (then it drops the waker itself).
    pub(crate) fn unset_join_waker_after_complete(&self) -> Snapshot {
        let prev = Snapshot(self.0.fetch_and(!JOIN_WAKER, AcqRel));
        debug_assert!(prev.is_complete() && prev.is_join_waker_set(), "{prev:?}");
        Snapshot(prev.0 & !JOIN_WAKER)
    }

    /// `wake()` consuming a waker's reference.
    pub(crate) fn transition_to_notified_by_val(&self) -> Wake {
        self.fetch_update(|s| {
            if s.is_running() {
                // The worker resubmits after the poll; our reference is not needed.
                debug_assert!(s.ref_count() > 1);
                (Some((s.0 | NOTIFIED) - REF_ONE), Wake::DoNothing)
            } else if s.is_complete() || s.is_notified() {
                let action = if s.ref_count() == 1 {
                    Wake::Dealloc
                } else {
                    Wake::DoNothing
                };
                (Some(s.0 - REF_ONE), action)
            } else {
                // The waker's reference becomes the Notified's, and one more keeps the
                // cell alive while we submit (see `Wake::Submit`).
                (Some((s.0 | NOTIFIED) + REF_ONE), Wake::Submit)
            }
        })
    }

    /// `wake_by_ref()`: the waker keeps its reference, so a submit takes a new one.
    pub(crate) fn transition_to_notified_by_ref(&self) -> Wake {
        self.fetch_update(|s| {
            if s.is_complete() || s.is_notified() {
                (None, Wake::DoNothing)
            } else if s.is_running() {
                (Some(s.0 | NOTIFIED), Wake::DoNothing)
            } else {
                (Some((s.0 | NOTIFIED) + REF_ONE), Wake::Submit)
            }
        })
    }

    /// `JoinHandle::abort()`: mark cancelled, and submit the task if it is idle so a worker
    /// drops its future promptly.
    pub(crate) fn transition_to_notified_and_cancel(&self) -> Wake {
        self.fetch_update(|s| {
            if s.is_complete() || s.is_cancelled() {
                (None, Wake::DoNothing)
            } else if s.is_running() || s.is_notified() {
                // The running worker (or the queued Notified) will see CANCELLED.
                (Some(s.0 | CANCELLED | NOTIFIED), Wake::DoNothing)
            } else {
                (Some((s.0 | CANCELLED | NOTIFIED) + REF_ONE), Wake::Submit)
            }
        })
    }

    /// Runtime shutdown: mark cancelled and, if nobody runs the task, claim it (set RUNNING)
    /// so the caller drops the future. Returns whether the caller owns the task now.
    pub(crate) fn transition_to_shutdown(&self) -> bool {
        self.fetch_update(|s| {
            if s.is_running() || s.is_complete() {
                (Some(s.0 | CANCELLED), false)
            } else {
                (Some(s.0 | CANCELLED | RUNNING), true)
            }
        })
    }

    /// The `JoinHandle` is dropped. Returns the state after; if it is complete, the caller
    /// must drop the output; if `JOIN_WAKER` is clear, the caller owns (and drops) the slot.
    pub(crate) fn transition_to_join_handle_dropped(&self) -> Snapshot {
        self.fetch_update(|s| {
            debug_assert!(s.is_join_interested());
            let mut next = s.0 & !JOIN_INTEREST;
            if !s.is_complete() {
                // Take the slot back so the (now joinless) waker can be dropped here, not
                // racing with a completer that still thinks somebody wants it.
                next &= !JOIN_WAKER;
            }
            (Some(next), Snapshot(next))
        })
    }

    /// The `JoinHandle` stored a waker in the slot and hands it to the task side. Fails
    /// (returns the state) if the task completed meanwhile: then read the output instead.
    pub(crate) fn set_join_waker(&self) -> Result<Snapshot, Snapshot> {
        self.fetch_update(|s| {
            debug_assert!(s.is_join_interested() && !s.is_join_waker_set());
            if s.is_complete() {
                (None, Err(s))
            } else {
                (Some(s.0 | JOIN_WAKER), Ok(Snapshot(s.0 | JOIN_WAKER)))
            }
        })
    }

    /// The `JoinHandle` wants to replace the stored waker: take the slot back. Fails if the
    /// task completed meanwhile.
    pub(crate) fn unset_join_waker(&self) -> Result<Snapshot, Snapshot> {
        self.fetch_update(|s| {
            debug_assert!(s.is_join_interested() && s.is_join_waker_set());
            if s.is_complete() {
                (None, Err(s))
            } else {
                (Some(s.0 & !JOIN_WAKER), Ok(Snapshot(s.0 & !JOIN_WAKER)))
            }
        })
    }

    /// Records where the `JoinHandle` is (see `JOIN_OUTSIDE`). Only the `JoinHandle`
    /// calls this; a no-op when nothing changes, so polling in place costs one load.
    pub(crate) fn set_join_held_outside(&self, outside: bool) {
        if (self.load().0 & JOIN_OUTSIDE != 0) == outside {
            return;
        }
        // SeqCst: the deadlock check reads it after the handle counts (see
        // `Shared::outside_handles`); a mark made before a handle drop must be seen then.
        if outside {
            self.0.fetch_or(JOIN_OUTSIDE, SeqCst);
        } else {
            self.0.fetch_and(!JOIN_OUTSIDE, SeqCst);
        }
    }

    pub(crate) fn ref_inc(&self) {
        // Relaxed: a new reference is made from an existing one, which already keeps the
        // task alive; no other memory needs to be ordered by it (as Arc::clone).
        let prev = Snapshot(self.0.fetch_add(REF_ONE, Relaxed));
        if prev.ref_count() as u64 >= REF_LIMIT {
            // Before the count can reach the poll count's bits (module docs).
            std::process::abort();
        }
    }

    /// Drops `n` references; returns true if they were the last (the caller deallocates).
    pub(crate) fn ref_dec(&self, n: usize) -> bool {
        // AcqRel: the release publishes this holder's uses of the task to the deallocator;
        // the acquire (when we are last) sees every other holder's.
        let prev = Snapshot(self.0.fetch_sub(n as u64 * REF_ONE, AcqRel));
        debug_assert!(prev.ref_count() >= n, "refcount underflow: {prev:?}");
        prev.ref_count() == n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wake_while_running_resubmits_after_poll() {
        let s = State::new();
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        assert_eq!(s.transition_to_notified_by_ref(), Wake::DoNothing);
        assert_eq!(s.transition_to_idle(), ToIdle::Resubmit);
        assert!(s.load().is_notified() && !s.load().is_running());
    }

    #[test]
    fn double_wake_submits_once() {
        let s = State::new();
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        assert_eq!(s.transition_to_idle(), ToIdle::Idle);
        assert_eq!(s.transition_to_notified_by_ref(), Wake::Submit);
        assert_eq!(s.transition_to_notified_by_ref(), Wake::DoNothing);
        assert_eq!(s.load().ref_count(), 4);
    }

    #[test]
    fn polls_count_begun_polls_and_wrap_alone() {
        let s = State::new();
        assert_eq!(s.load().polls(), 0);
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        assert_eq!(s.load().polls(), 1, "counted when the poll begins");
        assert_eq!(s.transition_to_idle(), ToIdle::Idle);
        assert_eq!(s.transition_to_notified_and_cancel(), Wake::Submit);
        assert_eq!(s.transition_to_running(), ToRunning::Cancel);
        assert_eq!(s.load().polls(), 1, "a cancel is not a poll");

        // At the top of its range the count wraps to 0 and leaves the rest of the word.
        let full = State(AtomicU64::new(INITIAL | (u64::MAX << POLL_SHIFT)));
        assert_eq!(full.load().polls(), (1 << 31) - 1);
        let refs = full.load().ref_count();
        assert_eq!(full.transition_to_running(), ToRunning::Poll);
        let after = full.load();
        assert_eq!(after.polls(), 0);
        assert_eq!(after.ref_count(), refs);
        assert!(after.is_running() && !after.is_notified() && after.is_join_interested());
    }

    #[test]
    fn references_never_reach_the_poll_count() {
        let s = State::new();
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        // The most references `ref_inc` allows: every one lands in the refcount field.
        let base = s.load().ref_count() as u64;
        s.0.fetch_add((REF_LIMIT - base) * REF_ONE, Relaxed);
        assert_eq!(s.load().ref_count() as u64, REF_LIMIT);
        assert_eq!(s.load().polls(), 1);
        assert!(!s.ref_dec((REF_LIMIT - base) as usize));
        assert_eq!(s.load().ref_count() as u64, base);
        assert_eq!(s.load().polls(), 1);
    }

    #[test]
    fn abort_idle_submits_and_cancels() {
        let s = State::new();
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        assert_eq!(s.transition_to_idle(), ToIdle::Idle);
        assert_eq!(s.transition_to_notified_and_cancel(), Wake::Submit);
        assert_eq!(s.transition_to_running(), ToRunning::Cancel);
    }

    #[test]
    fn shutdown_claims_idle_but_not_running() {
        let s = State::new();
        assert!(s.transition_to_shutdown(), "queued task is claimed");
        assert_eq!(s.transition_to_running(), ToRunning::DropRef);
        let r = State::new();
        assert_eq!(r.transition_to_running(), ToRunning::Poll);
        assert!(
            !r.transition_to_shutdown(),
            "running task is left to its worker"
        );
        assert_eq!(r.transition_to_idle(), ToIdle::Cancel);
    }

    #[test]
    fn join_waker_cannot_be_set_after_complete() {
        let s = State::new();
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        let _ = s.transition_to_complete();
        assert!(s.set_join_waker().is_err());
    }
}
