//! Loom model 2 (`executor/LOOM.md`): `Parker` never loses a wakeup and never returns
//! without one.
//!
//! A lost wakeup shows as a thread parked forever: loom reports it as a deadlock ("all
//! threads blocked"). A return without an `unpark` shows as a read of data the unparker
//! wrote before `unpark` that does not happen after that write: loom's `UnsafeCell`
//! reports it as a causality violation. (Loom's condvar never wakes spuriously, so the
//! `park` loop's spurious-wakeup branch is not exercised here.)

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

use super::Parker;

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
    loom::model(|| {
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
    loom::model(|| {
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
    loom::model(|| {
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
#[should_panic(expected = "deadlock")]
fn loom_parker_unlocked_notify_is_caught() {
    loom::model(|| {
        let parker = Arc::new(UnlockedNotifyParker::new());
        let th = {
            let parker = parker.clone();
            thread::spawn(move || parker.unpark())
        };
        parker.park();
        th.join().unwrap();
    });
}
