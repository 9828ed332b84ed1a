//! A worker *role* (a slot of `Shared::remotes`: LIFO slot, ring, parker, counters) and
//! the state machine that says which thread, if any, runs it.
//!
//! Transitions: sysmon `Free → Reserved → Active` (or back to `Free`), `Active → Retaken`,
//! and the back-off `Retaken → Active`; the role's thread `Retaken → Leaving → Free`. The
//! two CASes out of `Retaken` decide who owns the outcome (loom: `retake/loom_tests.rs`).
//! Only the thread running an `Active` role owns its ring (push/pop); everyone else uses
//! thief operations.

use std::sync::atomic::Ordering::{AcqRel, Acquire, Release};

/// Who runs a role.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RoleState {
    /// No thread runs the role; sysmon may reserve it.
    Free = 0,
    /// A thread runs the role.
    Active = 1,
    /// Sysmon retook it; its thread is (or was just) stuck in a poll.
    Retaken = 2,
    /// Its thread claimed the give-up and is handing back its queues.
    Leaving = 3,
    /// Sysmon reserved it for a spare, before moving work in.
    Reserved = 4,
}

impl RoleState {
    fn from_u8(v: u8) -> RoleState {
        match v {
            0 => RoleState::Free,
            1 => RoleState::Active,
            2 => RoleState::Retaken,
            3 => RoleState::Leaving,
            4 => RoleState::Reserved,
            _ => unreachable!("invalid role state {v}"),
        }
    }
}

/// A role's state word (a `RoleState`).
pub(crate) struct Role(crate::loom::atomic::AtomicU8);

impl Role {
    pub(crate) fn new(state: RoleState) -> Role {
        Role(crate::loom::atomic::AtomicU8::new(state as u8))
    }

    pub(crate) fn load(&self) -> RoleState {
        // Acquire: pairs with the Release of the transitions, so a thread that sees Free
        // or Active sees the slot's queues as the previous owner left them.
        RoleState::from_u8(self.0.load(Acquire))
    }

    pub(crate) fn transition(&self, from: RoleState, to: RoleState) -> bool {
        self.0
            .compare_exchange(from as u8, to as u8, AcqRel, Acquire)
            .is_ok()
    }

    pub(crate) fn store(&self, state: RoleState) {
        self.0.store(state as u8, Release);
    }

    /// Sysmon's side of the race with the poll ending: marks the role `RETAKEN`, then backs
    /// off if `poll_ended()` and the thread has not claimed the give-up. True: the role
    /// must be replaced.
    pub(crate) fn claim_retake(&self, poll_ended: impl FnOnce() -> bool) -> bool {
        if !self.transition(RoleState::Active, RoleState::Retaken) {
            return false;
        }
        !(poll_ended() && self.transition(RoleState::Retaken, RoleState::Active))
    }

    /// The role's thread's side: true if it must give the role up (it now is `LEAVING`).
    pub(crate) fn claim_give_up(&self) -> bool {
        self.load() == RoleState::Retaken && self.transition(RoleState::Retaken, RoleState::Leaving)
    }

    /// Sysmon's undo of a retake that found no thread for the replacement: gives the role
    /// back to its thread (`RETAKEN → ACTIVE`). False if the thread already claimed the
    /// give-up (`LEAVING`): it is leaving for the spare pool, so the replacement role must
    /// be handed to it (the same CAS race as `claim_retake`, loom-checked in
    /// `loom_retake_failed_assign`).
    pub(crate) fn restore(&self) -> bool {
        self.transition(RoleState::Retaken, RoleState::Active)
    }
}
