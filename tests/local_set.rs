//! `LocalSet` and `spawn_local`: `!Send` tasks on the driving thread, on both flavours;
//! wakes from other threads, abort, panics, dropping the set, and misuse messages.

mod support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::thread;

use runnel::task::{spawn_local, LocalSet};
use runnel::{Builder, Runtime};
use support::panic_message;

fn runtimes() -> [Runtime; 2] {
    [
        Builder::new_current_thread().build().unwrap(),
        support::runtime(2),
    ]
}

#[test]
fn not_send_tasks_run_on_the_driving_thread() {
    for rt in runtimes() {
        let local = LocalSet::new();
        let me = thread::current().id();
        let log = Rc::new(RefCell::new(Vec::new()));
        let out = local.block_on(&rt, {
            let log = log.clone();
            async move {
                let handles: Vec<_> = (0..100)
                    .map(|i| {
                        let log = log.clone();
                        spawn_local(async move {
                            runnel::task::yield_now().await;
                            log.borrow_mut().push(i);
                            thread::current().id()
                        })
                    })
                    .collect();
                let mut ids = Vec::new();
                for h in handles {
                    ids.push(h.await.unwrap());
                }
                ids
            }
        });
        assert!(out.iter().all(|&id| id == me));
        let mut log = log.borrow().clone();
        log.sort_unstable();
        assert_eq!(log, (0..100).collect::<Vec<_>>());
    }
}

/// Local tasks wait on runtime tasks, timers and wakes from foreign threads.
#[test]
fn local_tasks_are_woken_from_anywhere() {
    for rt in runtimes() {
        let local = LocalSet::new();
        let total = local.block_on(&rt, async {
            let sum = Rc::new(Cell::new(0u64));
            let mut handles = Vec::new();
            for i in 0..50u64 {
                let sum = sum.clone();
                handles.push(spawn_local(async move {
                    let (tx, rx) = futures::channel::oneshot::channel();
                    let sender = thread::spawn(move || tx.send(i).unwrap());
                    let got = rx.await.unwrap();
                    sender.join().unwrap();
                    let doubled = runnel::spawn(async move { got * 2 }).await.unwrap();
                    runnel::time::sleep(std::time::Duration::from_millis(1)).await;
                    sum.set(sum.get() + doubled);
                }));
            }
            for h in handles {
                h.await.unwrap();
            }
            sum.get()
        });
        assert_eq!(total, 2 * (0..50).sum::<u64>());
    }
}

#[test]
fn awaiting_the_set_runs_every_task_to_completion() {
    let rt = Builder::new_current_thread().build().unwrap();
    let local = LocalSet::new();
    let done = Rc::new(Cell::new(0));
    for _ in 0..10 {
        let done = done.clone();
        local.spawn_local(async move {
            runnel::task::yield_now().await;
            done.set(done.get() + 1);
        });
    }
    rt.block_on(local);
    assert_eq!(done.get(), 10);
}

#[test]
fn abort_panic_and_drop_complete_the_handles() {
    let rt = Builder::new_current_thread().build().unwrap();
    let local = LocalSet::new();
    let (aborted, panicked, orphan) = local.block_on(&rt, async {
        let forever = spawn_local(std::future::pending::<()>());
        runnel::task::yield_now().await;
        forever.abort();
        let aborted = forever.await.unwrap_err();
        let panicked = spawn_local(async { panic!("local boom") })
            .await
            .unwrap_err();
        let orphan = spawn_local(std::future::pending::<u8>());
        (aborted, panicked, orphan)
    });
    assert!(aborted.is_cancelled());
    assert!(panicked.is_panic());
    assert_eq!(panic_message(&*panicked.into_panic()), "local boom");
    // The set still holds the pending task; dropping the set cancels it.
    assert!(!orphan.is_finished());
    drop(local);
    assert!(orphan.is_finished());
    let err = rt.block_on(orphan).unwrap_err();
    assert!(err.is_cancelled());
}

#[test]
fn spawn_local_outside_a_set_says_what_to_do() {
    let rt = Builder::new_current_thread().build().unwrap();
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            drop(spawn_local(async {}));
        })
    }))
    .expect_err("spawn_local outside a LocalSet must panic");
    let message = panic_message(&*payload);
    assert!(message.contains("outside a LocalSet"), "{message}");
    assert!(message.contains("LocalSet::run_until"), "{message}");
}

/// A local task that waits forever: on a current-thread runtime the driving `block_on` is
/// not reported as a deadlock (the set's wakers are holders the detector cannot see) —
/// the documented limit; the task is still cancelled when the set drops.
#[test]
fn a_stuck_local_task_is_never_a_false_deadlock() {
    let rt = Builder::new_current_thread().build().unwrap();
    let local = LocalSet::new();
    let (tx, rx) = futures::channel::oneshot::channel::<u8>();
    let helper = thread::spawn(move || {
        thread::sleep(std::time::Duration::from_millis(300));
        tx.send(3).unwrap();
    });
    let got = local.block_on(&rt, async { spawn_local(rx).await.unwrap().unwrap() });
    assert_eq!(got, 3);
    helper.join().unwrap();
    assert_eq!(rt.metrics().deadlock_reports, 0);
}
