//! Loom model: a retake racing the blocked worker's return (issue 7).
//!
//! Sysmon runs `Role::claim_retake` while the role's thread ends its poll and runs
//! `Role::claim_give_up`. The outcome must never lose the role: if the thread gives it up,
//! sysmon must have decided to replace it. (If sysmon decided to replace it and the thread
//! has not looked yet, the role stays `RETAKEN` and the thread gives it up at its next look.)
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p runnel-executor --lib --release loom_retake`

use loom::sync::atomic::{AtomicBool, Ordering::SeqCst};
use loom::sync::Arc;
use loom::thread;

use super::{Role, ACTIVE, LEAVING, RETAKEN};

/// Runs the race; `give_up` is the thread's side (the real one, or a broken variant).
fn race(give_up: fn(&Role) -> bool) {
    loom::model(move || {
        let role = Arc::new(Role::new(ACTIVE));
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
            (true, true) => assert_eq!(role.load(), LEAVING),
            (false, false) => assert_eq!(role.load(), ACTIVE, "the role stays with its thread"),
            (true, false) => {
                // The thread looked before the mark; its next look gives the role up.
                assert_eq!(role.load(), RETAKEN);
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
        let retaken = role.load() == RETAKEN;
        if retaken {
            role.store(LEAVING);
        }
        retaken
    });
}
