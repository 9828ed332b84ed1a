//! Loom models of the semaphore's hand-over: the release that grants a queued waiter
//! (freeing its slot and publishing its ticket in `granted`) against the waiter's
//! lock-free check, its locked re-check, a waker replacement and its cancellation. Each
//! model checks that no permit is lost or duplicated (the count at the end) and that no
//! wakeup is lost (loom reports a deadlock if a waiter is never woken).

use super::*;
use loom::future::block_on;
use loom::sync::atomic::AtomicUsize as LoomAtomic;
use loom::thread;
use std::sync::atomic::Ordering::SeqCst;
use std::task::Context;

fn poll_once(f: &mut Acquire<'_>) -> Poll<Result<(), AcquireError>> {
    let noop = futures::task::noop_waker();
    Pin::new(f).poll(&mut Context::from_waker(&noop))
}

/// Counts the holders of the one permit and checks the bound (loom's own atomic, so the
/// check is part of the model).
fn enter(inside: &LoomAtomic) {
    assert_eq!(inside.fetch_add(1, SeqCst), 0, "two holders of one permit");
}

fn leave(inside: &LoomAtomic) {
    inside.fetch_sub(1, SeqCst);
}

#[test]
fn loom_release_races_the_queued_wait() {
    loom::model(|| {
        let sem = Arc::new(Semaphore::new(1));
        let inside = Arc::new(LoomAtomic::new(0));
        sem.try_acquire_permits(1).unwrap();
        enter(&inside);
        let waiter = {
            let (sem, inside) = (sem.clone(), inside.clone());
            thread::spawn(move || {
                block_on(sem.acquire_permits(1)).unwrap();
                enter(&inside);
                leave(&inside);
                sem.release(1);
            })
        };
        leave(&inside);
        sem.release(1);
        waiter.join().unwrap();
        assert_eq!(sem.available_permits(), 1);
    });
}

#[test]
fn loom_grant_races_a_waker_replacement() {
    loom::model(|| {
        let sem = Arc::new(Semaphore::new(1));
        sem.try_acquire_permits(1).unwrap();
        let waiter = {
            let sem = sem.clone();
            thread::spawn(move || {
                let mut acquire = sem.acquire_permits(1);
                if poll_once(&mut acquire).is_pending() {
                    // Polled again with block_on's waker: the grant may land before the
                    // lock-free check, between it and the lock, or after the new waker.
                    block_on(&mut acquire).unwrap();
                }
                sem.release(1);
            })
        };
        sem.release(1);
        waiter.join().unwrap();
        assert_eq!(sem.available_permits(), 1);
    });
}

#[test]
fn loom_cancel_races_the_grant_and_passes_it_on() {
    loom::model(|| {
        let sem = Arc::new(Semaphore::new(1));
        sem.try_acquire_permits(1).unwrap();
        // Queued first, so the release grants it (or it leaves first): either way the
        // second waiter must end up with the permit.
        let mut first = sem.acquire_permits(1);
        assert!(poll_once(&mut first).is_pending());
        let second = {
            let sem = sem.clone();
            thread::spawn(move || {
                block_on(sem.acquire_permits(1)).unwrap();
                sem.release(1);
            })
        };
        let releaser = {
            let sem = sem.clone();
            thread::spawn(move || sem.release(1))
        };
        // Cancelled while the release may be granting it.
        drop(first);
        releaser.join().unwrap();
        second.join().unwrap();
        assert_eq!(sem.available_permits(), 1);
    });
}
