//! Loom model: a retake racing the blocked worker's return (issue 7).
//!
//! Sysmon runs `Role::claim_retake` while the role's thread ends its poll and runs
//! `Role::claim_give_up`. The outcome must never lose the role: if the thread gives it up,
//! sysmon must have decided to replace it. (If sysmon decided to replace it and the thread
//! has not looked yet, the role stays `RETAKEN` and the thread gives it up at its next look.)
//!
//! The hardening issue's models (below) add sysmon's undo when the replacement role finds
//! no thread (`loom_retake_failed_assign`), and the leaving thread joining the spare pool
//! before it frees its slot (`loom_retake_leaving_thread`). They drive the real `Role`,
//! `SpareState` and `Idle`; the steps between are `try_retake` and `give_up_role`'s.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p runnel-executor --lib --release loom_retake`

use loom::sync::atomic::{AtomicBool, Ordering::SeqCst};
use loom::sync::{Arc, Mutex};
use loom::thread;

use crate::scheduler::idle::Idle;
use crate::scheduler::role::{Role, RoleState};
use crate::scheduler::threads::{Assign, SpareState};

/// Runs the race; `give_up` is the thread's side (the real one, or a broken variant).
fn race(give_up: fn(&Role) -> bool) {
    loom::model(move || {
        let role = Arc::new(Role::new(RoleState::Active));
        let ended = Arc::new(AtomicBool::new(false));
        let worker = {
            let (role, ended) = (role.clone(), ended.clone());
            thread::spawn(move || {
                ended.store(true, SeqCst); // the blocked poll returns
                give_up(&role)
            })
        };
        let replaced = role.claim_retake(|| ended.load(SeqCst));
        let gave_up = worker.join().unwrap();
        assert!(
            !gave_up || replaced,
            "the thread gave its role up and nobody replaced it"
        );
        match (replaced, gave_up) {
            (true, true) => assert_eq!(role.load(), RoleState::Leaving),
            (false, false) => assert_eq!(
                role.load(),
                RoleState::Active,
                "the role stays with its thread"
            ),
            (true, false) => {
                // The thread looked before the mark; its next look gives the role up.
                assert_eq!(role.load(), RoleState::Retaken);
                assert!(give_up(&role));
            }
            (false, true) => unreachable!(),
        }
    });
}

#[test]
fn loom_retake_vs_return() {
    race(Role::claim_give_up);
}

/// The variant this design replaced: the thread decided on a plain load and then freed
/// the slot with a store, so sysmon's back-off could slip in between and the role was
/// lost. The model finds it.
#[test]
#[should_panic(expected = "nobody replaced it")]
fn loom_retake_vs_return_without_the_cas_loses_the_role() {
    race(|role| {
        let retaken = role.load() == RoleState::Retaken;
        if retaken {
            role.store(RoleState::Leaving);
        }
        retaken
    });
}

// ---------------------------------------------------------------------------------------
// Hardening issue, A: the undo of a retake whose replacement found no thread.

/// Sysmon retakes role 0 (its thread stuck, then returning) into slot 1, and `assign`
/// finds no thread (a failed spawn). The worker thread ends its poll and, if it sees the
/// give-up, does what `give_up_role` does: joins the pool, frees its slot, uncounts itself.
/// `undo` is sysmon's failure path. Afterwards exactly one role must have a thread: the
/// worker's own (`ACTIVE`, not given up) or the replacement, handed to the pool the worker
/// joined; and `workers` must count exactly that one thread.
fn failed_assign(undo: fn(&Role, &Mutex<SpareState>) -> bool) {
    loom::model(move || {
        let roles = Arc::new([Role::new(RoleState::Active), Role::new(RoleState::Free)]);
        let pool = Arc::new(Mutex::new(SpareState::new(2)));
        let idle = Arc::new(Idle::new(1));
        let ended = Arc::new(AtomicBool::new(false));
        pool.lock().unwrap().threads = 1;
        let worker = {
            let (roles, pool, idle, ended) =
                (roles.clone(), pool.clone(), idle.clone(), ended.clone());
            thread::spawn(move || {
                ended.store(true, SeqCst); // the blocked poll returns
                if !roles[0].claim_give_up() {
                    return false;
                }
                pool.lock().unwrap().enter();
                roles[0].store(RoleState::Free);
                let _ = idle.lock().thread_left();
                true
            })
        };
        // Sysmon (`try_retake`).
        assert!(roles[1].transition(RoleState::Free, RoleState::Reserved));
        if roles[0].claim_retake(|| ended.load(SeqCst)) {
            let _ = idle.lock().thread_reserved();
            roles[1].store(RoleState::Active);
            // No pool thread free yet, and the spawn fails.
            let assign = pool.lock().unwrap().assign(1, 2);
            if assign == Assign::Start && !undo(&roles[0], &pool) {
                roles[1].store(RoleState::Free);
                let _ = idle.lock().thread_left();
            }
        } else {
            roles[1].store(RoleState::Free);
        }
        let gave_up = worker.join().unwrap();
        let mut pool = pool.lock().unwrap();
        let handed = pool.take();
        let runs = if gave_up {
            assert_eq!(
                handed,
                Some(1),
                "the thread gave its role up and nobody replaced it"
            );
            assert_eq!(roles[1].load(), RoleState::Active);
            1
        } else {
            assert_eq!(handed, None);
            // Its role, given back (or never taken).
            assert_eq!(
                roles[0].load(),
                RoleState::Active,
                "role lost: left RoleState::Retaken, its thread gives it up at its next look"
            );
            assert_eq!(roles[1].load(), RoleState::Free);
            1
        };
        assert_eq!(
            idle.lock().workers(),
            runs,
            "workers counts a thread that runs no role"
        );
    });
}

/// Returns true if the replacement stays (handed to the leaving thread), false to undo it.
fn shipped_undo(stuck: &Role, pool: &Mutex<SpareState>) -> bool {
    if stuck.restore() {
        false
    } else {
        pool.lock().unwrap().hand_to_leaving(1);
        true
    }
}

#[test]
fn loom_retake_failed_assign() {
    failed_assign(shipped_undo);
}

/// The undo this replaced: free the replacement and leave the stuck role `RETAKEN`, so the
/// thread gives it up when its poll returns and nobody runs it.
#[test]
#[should_panic(expected = "role lost")]
fn loom_retake_failed_assign_without_restore_loses_the_role() {
    failed_assign(|_, _| false);
}

/// Also reachable without a failed spawn: thread A, back from its poll, leaves slot 0 while
/// sysmon retakes thread B's stuck slot 1, with both threads alive and the cap at 2. If
/// sysmon can reserve slot 0, `assign` must find A in the pool (A enters it before it
/// publishes `FREE`), not report the cap.
fn leaving_thread(enter_first: bool) {
    loom::model(move || {
        let roles = Arc::new([Role::new(RoleState::Leaving), Role::new(RoleState::Active)]);
        let pool = Arc::new(Mutex::new(SpareState::new(2)));
        pool.lock().unwrap().threads = 2;
        let leaving = {
            let (roles, pool) = (roles.clone(), pool.clone());
            thread::spawn(move || {
                if enter_first {
                    pool.lock().unwrap().enter();
                }
                roles[0].store(RoleState::Free);
                if !enter_first {
                    pool.lock().unwrap().enter();
                }
            })
        };
        if roles[0].transition(RoleState::Free, RoleState::Reserved) {
            assert!(roles[1].claim_retake(|| false));
            let assign = pool.lock().unwrap().assign(0, 2);
            assert_eq!(
                assign,
                Assign::HandedOver,
                "a free slot but no thread for it"
            );
        }
        leaving.join().unwrap();
    });
}

#[test]
fn loom_retake_leaving_thread() {
    leaving_thread(true);
}

#[test]
#[should_panic(expected = "a free slot but no thread for it")]
fn loom_retake_leaving_thread_free_first_finds_the_cap() {
    leaving_thread(false);
}
