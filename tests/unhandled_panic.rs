//! `Builder::unhandled_panic` and `Runtime::shutdown_background`.
//!
//! With `UnhandledPanic::ShutdownRuntime` a spawned task's panic cancels every other task,
//! makes every `block_on` panic with the shutdown message (never return the panic's
//! `JoinError` instead), and cancels later spawns. `shutdown_background` returns without
//! waiting for a blocked worker or blocking job; their threads exit on their own.

mod support;

use std::panic::{catch_unwind, AssertUnwindSafe};

use runnel::UnhandledPanic;
use support::{
    in_child_process, panic_message, silence_expected_panics, threads_named, tracked, wait_until,
    Counts, Gate, EXPECTED,
};

fn shutdown_on_panic(workers: usize) -> runnel::Runtime {
    support::builder(workers)
        .unhandled_panic(UnhandledPanic::ShutdownRuntime)
        .build()
        .unwrap()
}

#[track_caller]
fn shutdown_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("block_on should have panicked");
    let msg = panic_message(&*payload);
    assert!(
        msg.contains("the runtime was shut down because task"),
        "not the shutdown message: {msg}"
    );
    msg
}

#[test]
fn block_on_awaiting_the_panicking_task_panics_with_the_shutdown_message() {
    silence_expected_panics();
    for _ in 0..5 {
        let rt = shutdown_on_panic(2);
        let reader = rt.handle().metrics_reader();
        let (checks_tx, checks_rx) = std::sync::mpsc::channel();
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        // The task panics only once block_on sleeps: a block_on that is awake counts as
        // running, so no deadlock check runs until it parks, and a check counted after its
        // poll began means it is asleep. Then block_on is woken by the shutdown, never
        // polled again, and cannot see the JoinError. (A poll already running when a task
        // panics may see it: see `UnhandledPanic::ShutdownRuntime`.)
        let trigger = std::thread::spawn(move || {
            let checks_before = checks_rx.recv().unwrap();
            wait_until("block_on asleep", || {
                reader.snapshot().deadlock_checks > checks_before
            });
            tx.send(()).unwrap();
        });
        let r = rt.handle().metrics_reader();
        let msg = shutdown_message(|| {
            rt.block_on(async move {
                checks_tx.send(r.snapshot().deadlock_checks).unwrap();
                let task = runnel::spawn(async {
                    rx.await.unwrap();
                    panic!("bug {EXPECTED}")
                });
                let _ = task.await;
                unreachable!("block_on observed the JoinError of a panic that shut it down");
            })
        });
        trigger.join().unwrap();
        assert!(msg.contains("panicked with message \"bug"), "{msg}");
    }
}

#[test]
fn every_other_task_is_cancelled_and_block_on_waiting_elsewhere_is_woken() {
    silence_expected_panics();
    let rt = shutdown_on_panic(2);
    let counts = Counts::new();
    let c = counts.clone();
    let gate = Gate::new();
    let g = gate.clone();
    let opener = std::thread::spawn(move || gate.open(1));
    shutdown_message(|| {
        rt.block_on(async move {
            for _ in 0..10 {
                runnel::spawn(tracked(&c, std::future::pending::<()>()));
            }
            runnel::spawn(async move {
                // Off the block_on's path: block_on waits on nothing this task completes.
                runnel::spawn_blocking(move || g.pass()).await.unwrap();
                panic!("late bug {EXPECTED}");
            });
            std::future::pending::<()>().await
        })
    });
    opener.join().unwrap();
    wait_until("every other task cancelled", || counts.drops() == 10);
    wait_until("no task alive", || rt.metrics().live_tasks == 0);
    // Shut down means shut down: later block_on calls panic, later spawns are cancelled.
    shutdown_message(|| rt.block_on(async {}));
    let late = rt.spawn(async { 1 });
    let err = futures::executor::block_on(late).unwrap_err();
    assert!(err.is_cancelled(), "{err:?}");
    assert_eq!(rt.metrics().deadlock_reports, 0);
}

#[test]
fn ignore_is_the_default_and_fails_only_the_task() {
    silence_expected_panics();
    let rt = support::runtime(2);
    let out = rt.block_on(async {
        let bad = runnel::spawn(async { panic!("ignored {EXPECTED}") });
        let good = runnel::spawn(async { 5 });
        assert!(bad.await.unwrap_err().is_panic());
        good.await.unwrap()
    });
    assert_eq!(out, 5);
    assert_eq!(rt.block_on(async { 6 }), 6);
}

#[test]
fn shutdown_background_does_not_wait_for_busy_threads() {
    // A hang (waiting for the blocked threads) is the failure mode: run it in a child.
    in_child_process("shutdown_background_does_not_wait_for_busy_threads", || {
        // Multi-thread only: a worker thread blocked in a poll is the scenario.
        let rt = runnel::Builder::new()
            .worker_threads(1)
            .retake_after(None)
            .thread_name("bgshut")
            .build()
            .unwrap();
        let gate = Gate::new();
        let (job_started_tx, job_started_rx) = std::sync::mpsc::channel();
        let (task_started_tx, task_started_rx) = std::sync::mpsc::channel();
        let g = gate.clone();
        rt.spawn_blocking(move || {
            job_started_tx.send(()).unwrap();
            g.pass();
        });
        let g = gate.clone();
        rt.spawn(async move {
            task_started_tx.send(()).unwrap();
            g.pass(); // blocks the only worker inside a poll
        });
        job_started_rx.recv_timeout(support::PATIENCE).unwrap();
        task_started_rx.recv_timeout(support::PATIENCE).unwrap();
        // Returns although both threads are blocked until the gate opens below.
        rt.shutdown_background();
        gate.open(2);
        wait_until("the runtime's threads exited on their own", || {
            threads_named("bgshut") == 0
        });
    });
}
