//! Loom model 2 (`executor/LOOM.md`): `Parker` never loses a wakeup and never returns
//! without one.
//!
//! A lost wakeup shows as a thread parked forever: loom reports it as a deadlock ("all
//! threads blocked"). A return without an `unpark` shows as a read of data the unparker
//! wrote before `unpark` that does not happen after that write: loom's `UnsafeCell`
//! reports it as a causality violation. (Loom's condvar never wakes spuriously, so the
//! `park` loop's spurious-wakeup branch is not exercised here.)
//!
//! This module also holds the helpers the scheduler's other models share: `model` (a
//! loom run with a preemption bound) and `expect_deadlock_in_child` (for the deliberately
//! broken variants whose failure is a lost wakeup, which loom reports as a deadlock).

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

use super::{Parker, EMPTY};

/// Runs `f` under loom with at most `bound` preemptions per execution (`None`: every
/// interleaving). `LOOM_MAX_PREEMPTIONS` in the environment overrides the bound.
pub(in crate::scheduler) fn model(bound: Option<usize>, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = bound;
    }
    builder.check(f);
}

/// Runs the `#[ignore]`d model `test` (a path below this crate, e.g.
/// `scheduler::park::loom_tests::x`) in a child test process and asserts that loom found a
/// deadlock in it. A child, because loom cannot unwind a deadlocked execution cleanly: a
/// blocked thread's lock guard panics again while being dropped, which aborts the process.
pub(in crate::scheduler) fn expect_deadlock_in_child(test: &str) {
    let out = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "--exact",
            test,
            "--ignored",
            "--test-threads=1",
            "--nocapture",
        ])
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run the child test process");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("running 1 test"),
        "the child did not run exactly `{test}`:\n{stdout}"
    );
    assert!(
        !out.status.success() && stderr.contains("deadlock; threads"),
        "loom found no lost wakeup in `{test}`:\n{stdout}\n{stderr}"
    );
}

/// A value handed from the unparker to the parker with no synchronisation of its own:
/// only `unpark` → `park` returning may order the write before the read.
struct Payload(UnsafeCell<usize>);

// SAFETY: 1. the cell is written once, before `unpark`, by one thread, and read after
// `park` returns by the other; 2. loom checks every access for causality, so a `Parker`
// that returned without the unpark's happens-before edge fails the model instead of racing.
unsafe impl Sync for Payload {}

impl Payload {
    fn new() -> Payload {
        Payload(UnsafeCell::new(0))
    }
    fn write(&self, value: usize) {
        // SAFETY: see the `Sync` impl: one writer, and the reader waits for the unpark.
        self.0.with_mut(|p| unsafe { *p = value });
    }
    fn read(&self) -> usize {
        // SAFETY: see the `Sync` impl.
        self.0.with(|p| unsafe { *p })
    }
}

/// `unpark` from another thread, racing `park` at every point: before it, between its fast
/// path and the lock, while it waits. `park` must return, and after the unpark's writes.
#[test]
fn loom_parker_unpark_races_park() {
    model(None, || {
        let parker = Arc::new(Parker::new());
        let payload = Arc::new(Payload::new());
        let th = {
            let (parker, payload) = (parker.clone(), payload.clone());
            thread::spawn(move || {
                payload.write(7);
                parker.unpark();
            })
        };
        parker.park();
        assert_eq!(payload.read(), 7);
        th.join().unwrap();
    });
}

/// Repeated use: two threads hand a turn back and forth twice through two parkers, so
/// every park/unpark pair after the first starts from the state the previous one left
/// (EMPTY, or NOTIFIED when the unpark came first).
#[test]
fn loom_parker_repeated_handoff() {
    model(None, || {
        let ping = Arc::new(Parker::new());
        let pong = Arc::new(Parker::new());
        let turns = Arc::new(AtomicUsize::new(0));
        let th = {
            let (ping, pong, turns) = (ping.clone(), pong.clone(), turns.clone());
            thread::spawn(move || {
                for round in 0..2 {
                    ping.park();
                    assert_eq!(turns.load(SeqCst), 2 * round + 1);
                    turns.store(2 * round + 2, SeqCst);
                    pong.unpark();
                }
            })
        };
        for round in 0..2 {
            turns.store(2 * round + 1, SeqCst);
            ping.unpark();
            pong.park();
            assert_eq!(turns.load(SeqCst), 2 * round + 2);
        }
        th.join().unwrap();
    });
}

/// Two unparks from two threads coalesce into one token: one `park` returns (and
/// `unpark`'s NOTIFIED → NOTIFIED and PARKED paths both run).
#[test]
fn loom_parker_two_unparkers() {
    model(None, || {
        let parker = Arc::new(Parker::new());
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let parker = parker.clone();
                thread::spawn(move || parker.unpark())
            })
            .collect();
        parker.park();
        for th in threads {
            th.join().unwrap();
        }
    });
}

/// `park_in_driver` (a worker sleeping in the reactor's poll) against `unpark`: the poll
/// here returns at once "for its own reasons" (epoll may), and a `false` return is followed
/// by a condvar `park`, as the worker's `sleep` loop does when the driver is busy on its
/// next turn. The one token is consumed exactly once: both calls cannot miss it (the
/// condvar park would block forever), and none is left behind.
#[test]
fn loom_parker_park_in_driver_keeps_token() {
    model(None, || {
        let parker = Arc::new(Parker::new());
        let payload = Arc::new(Payload::new());
        let th = {
            let (parker, payload) = (parker.clone(), payload.clone());
            thread::spawn(move || {
                payload.write(7);
                parker.unpark();
            })
        };
        if !parker.park_in_driver(|| {}) {
            parker.park();
        }
        assert_eq!(payload.read(), 7);
        th.join().unwrap();
        assert_eq!(parker.state.load(SeqCst), EMPTY, "a token was left behind");
    });
}

/// `Parker` with one deliberate bug: `unpark` notifies without taking the lock, so a
/// notify can fall between the parker's `EMPTY → PARKED` and its condvar wait. The same
/// state machine otherwise (kept in step with `park.rs` by hand).
struct UnlockedNotifyParker {
    state: AtomicUsize,
    lock: Mutex<()>,
    cvar: Condvar,
}

impl UnlockedNotifyParker {
    fn new() -> Self {
        Self {
            state: AtomicUsize::new(super::EMPTY),
            lock: Mutex::new(()),
            cvar: Condvar::new(),
        }
    }

    fn park(&self) {
        if self
            .state
            .compare_exchange(super::NOTIFIED, super::EMPTY, SeqCst, SeqCst)
            .is_ok()
        {
            return;
        }
        let mut guard = self.lock.lock().unwrap();
        if self
            .state
            .compare_exchange(super::EMPTY, super::PARKED, SeqCst, SeqCst)
            .is_err()
        {
            self.state.store(super::EMPTY, SeqCst);
            return;
        }
        loop {
            guard = self.cvar.wait(guard).unwrap();
            if self
                .state
                .compare_exchange(super::NOTIFIED, super::EMPTY, SeqCst, SeqCst)
                .is_ok()
            {
                return;
            }
        }
    }

    fn unpark(&self) {
        if self.state.swap(super::NOTIFIED, SeqCst) == super::PARKED {
            // The bug: no `drop(self.lock.lock())` before notifying.
            self.cvar.notify_one();
        }
    }
}

/// The model catches the classic lost wakeup of a condvar notified outside its lock.
#[test]
fn loom_parker_unlocked_notify_is_caught() {
    expect_deadlock_in_child("scheduler::park::loom_tests::child_parker_unlocked_notify");
}

#[test]
#[ignore = "expected to deadlock: run by loom_parker_unlocked_notify_is_caught"]
fn child_parker_unlocked_notify() {
    model(None, || {
        let parker = Arc::new(UnlockedNotifyParker::new());
        let th = {
            let parker = parker.clone();
            thread::spawn(move || parker.park())
        };
        parker.unpark();
        th.join().unwrap();
    });
}
