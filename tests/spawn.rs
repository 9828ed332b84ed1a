//! Spawning: from outside the runtime, from `block_on`, from tasks; every result checked;
//! `JoinHandle::is_finished`; `Handle::current`/`try_current`; `Runtime::enter`; one and
//! four workers.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use runnel::{Handle, JoinHandle};
use support::{runtime, wait_until};

const MANY: u64 = 100_000;

/// Awaits every handle and checks that task `i` returned `f(i)`.
async fn check_all(handles: Vec<JoinHandle<u64>>, f: impl Fn(u64) -> u64) -> u64 {
    let mut sum = 0;
    for (i, h) in handles.into_iter().enumerate() {
        let out = h.await.unwrap();
        assert_eq!(out, f(i as u64), "task {i} returned the wrong value");
        sum += out;
    }
    sum
}

#[test]
fn many_tasks_spawned_from_outside() {
    let rt = runtime(2);
    let handles: Vec<_> = (0..MANY).map(|i| rt.spawn(async move { i * 3 })).collect();
    let sum = rt.block_on(check_all(handles, |i| i * 3));
    assert_eq!(sum, 3 * (0..MANY).sum::<u64>());
    assert_eq!(
        rt.metrics().live_tasks,
        0,
        "every task completed and left the owned list"
    );
}

#[runnel::test]
async fn many_tasks_spawned_inside_block_on() {
    let handles: Vec<_> = (0..MANY)
        .map(|i| runnel::spawn(async move { i + 1 }))
        .collect();
    let sum = check_all(handles, |i| i + 1).await;
    assert_eq!(sum, (1..=MANY).sum::<u64>());
}

#[runnel::test]
async fn many_tasks_spawned_from_tasks() {
    const PARENTS: u64 = 10;
    const CHILDREN: u64 = MANY / PARENTS;
    let parents: Vec<_> = (0..PARENTS)
        .map(|p| {
            runnel::spawn(async move {
                let children: Vec<_> = (0..CHILDREN)
                    .map(|c| runnel::spawn(async move { p * CHILDREN + c }))
                    .collect();
                check_all(children, |c| p * CHILDREN + c).await
            })
        })
        .collect();
    let mut total = 0;
    for p in parents {
        total += p.await.unwrap();
    }
    assert_eq!(total, (0..MANY).sum::<u64>());
}

#[test]
fn a_task_spawns_onto_its_own_runtime() {
    let rt = runnel::Builder::new()
        .worker_threads(2)
        .thread_name("spawn-same-rt")
        .build()
        .unwrap();
    let thread = rt.block_on(async {
        runnel::spawn(async {
            // The child runs on one of this runtime's workers, not on some other runtime.
            runnel::spawn(async { std::thread::current().name().map(str::to_owned) })
                .await
                .unwrap()
        })
        .await
        .unwrap()
    });
    assert_eq!(thread.as_deref(), Some("spawn-same-rt-worker"));
}

#[test]
fn a_task_spawned_through_a_handle_runs_on_that_runtime() {
    let a = runnel::Builder::new()
        .worker_threads(1)
        .thread_name("rt-a")
        .build()
        .unwrap();
    let b = runnel::Builder::new()
        .worker_threads(1)
        .thread_name("rt-b")
        .build()
        .unwrap();
    let b_handle = b.handle().clone();
    let thread = a.block_on(async move {
        b_handle
            .spawn(async { std::thread::current().name().map(str::to_owned) })
            .await
            .unwrap()
    });
    assert_eq!(thread.as_deref(), Some("rt-b-worker"));
}

#[test]
fn is_finished_turns_true_on_completion() {
    let rt = runtime(2);
    let (tx, rx) = futures::channel::oneshot::channel::<u32>();
    let mut handle = rt.spawn(async move { rx.await.unwrap() + 1 });
    assert!(!handle.is_finished(), "the task waits for the channel");
    tx.send(41).unwrap();
    // Poll through `&mut` so the handle survives its own completion.
    let out = rt.block_on(&mut handle).unwrap();
    assert_eq!(out, 42);
    assert!(handle.is_finished());

    // A task nobody awaits: is_finished is the only way to see it finish.
    let counter = Arc::new(AtomicUsize::new(0));
    let c = counter.clone();
    let detached = rt.spawn(async move { c.fetch_add(1, SeqCst) });
    wait_until("the unawaited task finished", || detached.is_finished());
    assert_eq!(counter.load(SeqCst), 1);
}

#[test]
fn handle_current_inside_and_outside() {
    assert!(
        Handle::try_current().is_err(),
        "no runtime on the test thread"
    );
    let err = std::panic::catch_unwind(Handle::current).unwrap_err();
    let msg = support::panic_message(&*err);
    assert!(msg.contains("outside a runnel runtime"), "{msg}");

    let rt = runtime(2);
    let (in_block_on, in_task, in_blocking) = rt.block_on(async {
        let in_block_on = Handle::try_current().is_ok();
        let in_task = runnel::spawn(async { Handle::try_current().is_ok() })
            .await
            .unwrap();
        let in_blocking = runnel::spawn_blocking(|| Handle::try_current().is_ok())
            .await
            .unwrap();
        (in_block_on, in_task, in_blocking)
    });
    assert!(in_block_on && in_task && in_blocking);
    // Handle::current() inside a task can spawn.
    let out = rt.block_on(async {
        runnel::spawn(async { Handle::current().spawn(async { 7 }).await.unwrap() })
            .await
            .unwrap()
    });
    assert_eq!(out, 7);
    assert!(
        Handle::try_current().is_err(),
        "block_on restored the empty context"
    );
}

#[test]
fn enter_makes_spawn_work_from_sync_code() {
    let rt = runtime(2);
    let handle = {
        let _guard = rt.enter();
        assert!(Handle::try_current().is_ok());
        runnel::spawn(async { 5 })
    };
    assert!(
        Handle::try_current().is_err(),
        "the guard restored the previous context"
    );
    assert_eq!(rt.block_on(handle).unwrap(), 5);

    // Nested enters restore in LIFO order.
    let other = runtime(1);
    {
        let _outer = rt.enter();
        {
            let _inner = other.enter();
            let h = runnel::spawn(async { std::thread::current().name().map(str::to_owned) });
            assert!(other.block_on(h).is_ok());
        }
        assert!(
            Handle::try_current().is_ok(),
            "the outer runtime is current again"
        );
    }
    assert!(Handle::try_current().is_err());
}

fn fan_out_and_in(workers: usize) {
    let rt = runtime(workers);
    assert_eq!(rt.metrics().workers, workers);
    let sum = rt.block_on(async {
        let handles: Vec<_> = (0..1_000u64)
            .map(|i| {
                runnel::spawn(async move {
                    runnel::task::yield_now().await;
                    let inner = runnel::spawn(async move { i * 2 });
                    inner.await.unwrap()
                })
            })
            .collect();
        check_all(handles, |i| i * 2).await
    });
    assert_eq!(sum, 2 * (0..1_000u64).sum::<u64>());
}

#[test]
fn one_worker() {
    fan_out_and_in(1);
}

#[test]
fn four_workers() {
    fan_out_and_in(4);
}
