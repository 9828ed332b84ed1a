//! `task::JoinSet`: every output comes back once (panics as `JoinError`s), `abort_all`,
//! `shutdown` and drop leave no task alive, `try_join_next` never waits, and the deadlock
//! detector sees through a set: a set whose tasks are all stuck is reported, one whose
//! task may still be woken from outside (or from another runtime) is not.

mod support;

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Instant;

use futures::channel::oneshot;
use runnel::task::JoinSet;
use runnel::DEADLOCK_MESSAGE;
use support::{
    panic_message, runtime, silence_expected_panics, tracked, wait_until, Counts, Gate, EXPECTED,
    PATIENCE,
};

#[test]
fn join_next_returns_every_output_once() {
    let rt = runtime(2);
    let (outputs, ids) = rt.block_on(async {
        let mut set = JoinSet::new();
        let mut ids = HashSet::new();
        for i in 0..200usize {
            let abort = set.spawn(async move {
                // Some finish at once, some after yielding: completion order is mixed.
                for _ in 0..i % 3 {
                    runnel::task::yield_now().await;
                }
                i
            });
            ids.insert(abort.id());
        }
        assert_eq!(set.len(), 200);
        let mut outputs = Vec::new();
        let mut seen = HashSet::new();
        while let Some(result) = set.join_next_with_id().await {
            let (id, out) = result.unwrap();
            assert!(seen.insert(id), "task {id} joined twice");
            outputs.push(out);
        }
        assert!(set.is_empty());
        assert!(set.join_next().await.is_none(), "an empty set gives None");
        (outputs, (ids, seen))
    });
    let mut sorted = outputs;
    sorted.sort_unstable();
    assert_eq!(sorted, (0..200).collect::<Vec<_>>());
    assert_eq!(ids.0, ids.1, "the ids joined are the ids spawned");
}

#[test]
fn join_next_inside_a_task_and_with_blocking_jobs() {
    let rt = runtime(2);
    let sum = rt.block_on(async {
        runnel::spawn(async {
            let mut set = JoinSet::new();
            for i in 0..20u64 {
                set.spawn_blocking(move || i);
                set.spawn(async move { 100 + i });
            }
            let mut sum = 0;
            while let Some(result) = set.join_next().await {
                sum += result.unwrap();
            }
            sum
        })
        .await
        .unwrap()
    });
    assert_eq!(sum, (0..20).sum::<u64>() + (100..120).sum::<u64>());
}

#[test]
fn abort_all_leaves_no_task_alive() {
    let rt = runtime(2);
    let baseline = rt.metrics().live_tasks;
    let counts = Counts::new();
    let c = counts.clone();
    let cancelled = rt.block_on(async move {
        let mut set = JoinSet::new();
        for _ in 0..50 {
            set.spawn(tracked(&c, std::future::pending::<()>()));
        }
        set.abort_all();
        let mut cancelled = 0;
        while let Some(result) = set.join_next().await {
            assert!(result.unwrap_err().is_cancelled());
            cancelled += 1;
        }
        cancelled
    });
    assert_eq!(cancelled, 50);
    assert_eq!(counts.drops(), 50, "every future dropped once");
    wait_until("no task of the set is alive", || {
        rt.metrics().live_tasks == baseline
    });
}

#[test]
fn dropping_the_set_aborts_its_tasks() {
    let rt = support::multi_thread(2);
    let baseline = rt.metrics().live_tasks;
    let counts = Counts::new();
    let c = counts.clone();
    rt.block_on(async move {
        let mut set = JoinSet::new();
        for _ in 0..30 {
            set.spawn(tracked(&c, std::future::pending::<()>()));
        }
        // Let some of them start waiting, so both idle and never-polled tasks are aborted.
        runnel::task::yield_now().await;
        drop(set);
    });
    wait_until("every future dropped", || counts.drops() == 30);
    wait_until("no task of the set is alive", || {
        rt.metrics().live_tasks == baseline
    });
}

#[test]
fn detach_all_lets_the_tasks_run_on() {
    let rt = support::multi_thread(2);
    let done = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = oneshot::channel::<()>();
    let d = done.clone();
    rt.block_on(async move {
        let mut set = JoinSet::new();
        set.spawn(async move {
            rx.await.unwrap();
            d.fetch_add(1, SeqCst);
        });
        set.detach_all();
        assert!(set.is_empty());
        drop(set);
    });
    tx.send(()).unwrap();
    wait_until("the detached task ran", || done.load(SeqCst) == 1);
}

#[test]
fn shutdown_waits_for_every_task_to_stop() {
    let rt = support::multi_thread(2);
    let counts = Counts::new();
    let gate = Gate::new();
    let c = counts.clone();
    let g = gate.clone();
    let drops_after = rt.block_on(async move {
        let mut set = JoinSet::new();
        let (started_tx, started_rx) = oneshot::channel();
        // A task inside a long poll when shutdown is called: its abort takes effect only
        // when that poll returns, and shutdown must wait for it.
        set.spawn(tracked(&c, async move {
            started_tx.send(()).unwrap();
            g.pass();
            std::future::pending::<()>().await;
        }));
        for _ in 0..10 {
            set.spawn(tracked(&c, std::future::pending::<()>()));
        }
        started_rx.await.unwrap();
        let opener = std::thread::spawn(move || gate.open(1));
        set.shutdown().await;
        opener.join().unwrap();
        assert!(set.is_empty());
        c.drops()
    });
    assert_eq!(
        drops_after, 11,
        "shutdown returned before every task stopped"
    );
    assert_eq!(counts.drops(), 11);
}

#[test]
fn a_panic_comes_back_as_a_join_error() {
    silence_expected_panics();
    let rt = runtime(2);
    let (panicked, ok) = rt.block_on(async {
        let mut set = JoinSet::new();
        let bad = set.spawn(async { panic!("boom {EXPECTED}") }).id();
        set.spawn(async { 7 });
        let mut panicked = None;
        let mut ok = None;
        while let Some(result) = set.join_next().await {
            match result {
                Ok(v) => ok = Some(v),
                Err(err) => {
                    assert!(err.is_panic(), "{err:?}");
                    assert_eq!(err.id(), bad);
                    panicked = Some(panic_message(&*err.into_panic()));
                }
            }
        }
        (panicked, ok)
    });
    assert!(panicked.unwrap().starts_with("boom"));
    assert_eq!(ok, Some(7));
}

#[test]
fn join_all_resumes_a_panic() {
    silence_expected_panics();
    let rt = runtime(2);
    let outputs = rt.block_on(async {
        let set: JoinSet<u32> = (0..5u32).map(|i| async move { i }).collect();
        set.join_all().await
    });
    assert_eq!(outputs.iter().sum::<u32>(), 10);
    let payload = catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(async {
            let mut set = JoinSet::new();
            set.spawn(async { panic!("join_all {EXPECTED}") });
            set.join_all().await
        })
    }))
    .unwrap_err();
    assert!(panic_message(&*payload).starts_with("join_all"));
}

#[test]
fn try_join_next_never_waits() {
    let rt = runtime(2);
    rt.block_on(async {
        let mut set = JoinSet::new();
        assert!(set.try_join_next().is_none(), "empty set");
        let (tx, rx) = oneshot::channel::<u32>();
        set.spawn(async move { rx.await.unwrap() });
        // The task waits on `rx`: nothing is ready, and the call returns at once.
        assert!(set.try_join_next().is_none());
        assert!(set.try_join_next().is_none());
        assert_eq!(set.len(), 1);
        tx.send(5).unwrap();
        let deadline = Instant::now() + PATIENCE;
        let out = loop {
            if let Some(result) = set.try_join_next() {
                break result.unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "the completed task never showed up"
            );
            runnel::task::yield_now().await;
        };
        assert_eq!(out, 5);
        assert!(set.is_empty());
    });
}

#[test]
fn cancelling_join_next_loses_no_output() {
    let rt = runtime(2);
    rt.block_on(async {
        let mut set = JoinSet::new();
        let (tx, rx) = oneshot::channel::<u32>();
        set.spawn(async move { rx.await.unwrap() });
        // Poll join_next once (it registers) and drop it.
        {
            let next = set.join_next();
            futures::pin_mut!(next);
            assert!(futures::poll!(next).is_pending());
        }
        tx.send(9).unwrap();
        assert_eq!(set.join_next().await.unwrap().unwrap(), 9);
    });
}

// ---------------------------------------------------------------------------------------
// The deadlock detector

#[test]
fn a_set_of_stuck_tasks_awaited_by_block_on_is_a_deadlock() {
    let rt = runtime(2);
    let mut stuck = None;
    let payload = catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(async {
            let mut set = JoinSet::new();
            stuck = Some(set.spawn(std::future::pending::<()>()).id());
            set.join_next().await
        })
    }))
    .expect_err("expected a deadlock report");
    let report = panic_message(&*payload);
    let id = stuck.unwrap();
    assert!(report.starts_with(DEADLOCK_MESSAGE), "{report}");
    assert!(
        report.contains("block_on (called at tests/join_set.rs:"),
        "{report}"
    );
    assert!(
        report.contains("waits on: the next of 1 task(s) of a JoinSet"),
        "{report}"
    );
    assert!(
        report.contains(&format!("task {id} (spawned at tests/join_set.rs:")),
        "{report}"
    );
    assert_eq!(rt.metrics().deadlock_reports, 1);
}

#[test]
fn a_set_of_stuck_tasks_awaited_by_a_task_is_a_deadlock() {
    let rt = runtime(2);
    let payload = catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(async {
            runnel::spawn(async {
                let mut set = JoinSet::new();
                for _ in 0..3 {
                    set.spawn(std::future::pending::<()>());
                }
                set.spawn(async {});
                // One completes; the others never do.
                assert!(set.join_next().await.unwrap().is_ok());
                set.join_next().await
            })
            .await
            .unwrap()
        })
    }))
    .expect_err("expected a deadlock report");
    let report = panic_message(&*payload);
    assert!(report.starts_with(DEADLOCK_MESSAGE), "{report}");
}

/// A task of the set waits on a waker held by a foreign thread: "maybe", so no report;
/// the thread sends once the runtime has gone quiet and been checked, and the set joins.
#[test]
fn a_set_task_woken_from_outside_is_not_reported() {
    let rt = runtime(2);
    let reader = rt.handle().metrics_reader();
    let (tx, rx) = oneshot::channel::<u32>();
    let checks_before = reader.snapshot().deadlock_checks;
    let sender = std::thread::spawn(move || {
        wait_until("the runtime went quiet and was checked", || {
            reader.snapshot().deadlock_checks > checks_before
        });
        tx.send(3).unwrap();
    });
    let out = rt.block_on(async move {
        let mut set = JoinSet::new();
        set.spawn(async move { rx.await.unwrap() });
        set.join_next().await.unwrap().unwrap()
    });
    sender.join().unwrap();
    assert_eq!(out, 3);
    assert_eq!(rt.metrics().deadlock_reports, 0);
}

/// A set holding a stuck task of this runtime and a task of another runtime that will
/// complete: the owner's waker is no longer only this runtime's, so no report here.
#[test]
fn a_set_spanning_two_runtimes_is_not_reported() {
    let rt = runtime(2);
    let other = runtime(1);
    let reader = rt.handle().metrics_reader();
    let gate = Gate::new();
    let g = gate.clone();
    let checks_before = reader.snapshot().deadlock_checks;
    let opener = std::thread::spawn(move || {
        wait_until("the runtime went quiet and was checked", || {
            reader.snapshot().deadlock_checks > checks_before
        });
        gate.open(1);
    });
    let other_handle = other.handle().clone();
    let out = rt.block_on(async move {
        let mut set = JoinSet::new();
        set.spawn(std::future::pending::<u32>());
        // A blocking job of the other runtime: it waits on the gate.
        set.spawn_blocking_on(
            move || {
                g.pass();
                4
            },
            &other_handle,
        );
        let out = set.join_next().await.unwrap().unwrap();
        set.abort_all();
        out
    });
    opener.join().unwrap();
    assert_eq!(out, 4);
    assert_eq!(rt.metrics().deadlock_reports, 0);
}

// ---------------------------------------------------------------------------------------
// Measurement (not a test of speed: prints figures; run with `--ignored --nocapture`).

#[test]
#[ignore = "measurement: cargo test --release --test join_set -- --ignored --nocapture"]
fn measure_join_next_10k_vs_tokio() {
    const TASKS: usize = 10_000;
    const ROUNDS: usize = 15;
    let rt = runtime(2);
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let sum = rt.block_on(async {
            let mut set = JoinSet::new();
            for i in 0..TASKS {
                set.spawn(async move { i });
            }
            let mut sum = 0;
            while let Some(r) = set.join_next().await {
                sum += r.unwrap();
            }
            sum
        });
        ours.push(start.elapsed());
        assert_eq!(sum, TASKS * (TASKS - 1) / 2);
        let start = Instant::now();
        let sum = tokio_rt.block_on(async {
            let mut set = tokio::task::JoinSet::new();
            for i in 0..TASKS {
                set.spawn(async move { i });
            }
            let mut sum = 0;
            while let Some(r) = set.join_next().await {
                sum += r.unwrap();
            }
            sum
        });
        theirs.push(start.elapsed());
        assert_eq!(sum, TASKS * (TASKS - 1) / 2);
    }
    ours.sort();
    theirs.sort();
    println!(
        "spawn + join_next of {TASKS} tasks, 2 workers, median of {ROUNDS}: runnel {:?}, tokio {:?} (ratio {:.2})",
        ours[ROUNDS / 2],
        theirs[ROUNDS / 2],
        ours[ROUNDS / 2].as_secs_f64() / theirs[ROUNDS / 2].as_secs_f64()
    );
}
