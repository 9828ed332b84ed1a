//! Retake (issue 7): a worker blocked inside a task never strands the work queued behind
//! it. Timing is never asserted directly: each test compares the order of events against
//! a blocking duration (1 s) that is 100 times the retake threshold (10 ms).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use runnel::Builder;

const BLOCK: Duration = Duration::from_secs(1);

/// A spawns B (B lands in the worker's LIFO slot, the case tokio strands: tokio #4941),
/// then blocks its only worker for 1 s. Returns whether B finished while A still blocked.
fn lifo_task_runs_while_worker_blocked(retake_after: Option<Duration>) -> bool {
    let rt = Builder::new()
        .worker_threads(1)
        .retake_after(retake_after)
        .build()
        .unwrap();
    let a_done = Arc::new(AtomicBool::new(false));
    let b_finished_first = rt.block_on({
        let a_done = a_done.clone();
        async move {
            let (b_tx, b_rx) = futures::channel::oneshot::channel::<bool>();
            let a = runnel::spawn({
                let a_done = a_done.clone();
                async move {
                    let a_done_for_b = a_done.clone();
                    let _b = runnel::spawn(async move {
                        let _ = b_tx.send(!a_done_for_b.load(SeqCst));
                    });
                    std::thread::sleep(BLOCK); // blocking code in an async task
                    a_done.store(true, SeqCst);
                }
            });
            let b_first = b_rx.await.unwrap();
            a.await.unwrap();
            b_first
        }
    });
    assert!(a_done.load(SeqCst));
    b_finished_first
}

#[test]
fn retake_runs_the_lifo_task_of_a_blocked_worker() {
    assert!(
        lifo_task_runs_while_worker_blocked(Some(Duration::from_millis(10))),
        "the task queued behind a blocked worker waited for the blocking call to end"
    );
}

#[test]
fn without_retake_the_lifo_task_waits_for_the_blocked_worker() {
    // The control experiment: shows the test above can fail.
    assert!(!lifo_task_runs_while_worker_blocked(None));
}

#[test]
fn blocked_worker_counts_running_and_work_progresses() {
    let rt = Builder::new().worker_threads(2).build().unwrap();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let done = Arc::new(AtomicUsize::new(0));
    rt.block_on({
        let done = done.clone();
        async move {
            // Blocks its worker until the test releases it: no deadlock may be reported
            // meanwhile, whatever the other tasks do.
            let blocker = runnel::spawn(async move {
                release_rx.recv().unwrap();
            });
            let tasks: Vec<_> = (0..2_000)
                .map(|_| {
                    let done = done.clone();
                    runnel::spawn(async move {
                        runnel::task::yield_now().await;
                        done.fetch_add(1, SeqCst);
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            assert_eq!(done.load(SeqCst), 2_000);
            // Main now waits only on the blocked task: the runtime is quiet but a thread
            // is inside a poll, so this is not a deadlock.
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                release_tx.send(()).unwrap();
            });
            blocker.await.unwrap();
        }
    });
    let m = rt.metrics();
    assert_eq!(m.deadlock_reports, 0, "{m:?}");
}

#[test]
fn thread_count_returns_to_rest_after_blocking() {
    let rt = Builder::new()
        .worker_threads(2)
        .thread_keep_alive(Duration::from_millis(50))
        .build()
        .unwrap();
    rt.block_on(async {
        let blockers: Vec<_> = (0..2)
            .map(|_| runnel::spawn(async { std::thread::sleep(Duration::from_millis(300)) }))
            .collect();
        // Work queued behind the blockers still runs.
        let quick: Vec<_> = (0..100).map(|i| runnel::spawn(async move { i })).collect();
        let mut sum = 0;
        for q in quick {
            sum += q.await.unwrap();
        }
        assert_eq!(sum, (0..100).sum());
        for b in blockers {
            b.await.unwrap();
        }
    });
    let m = rt.metrics();
    assert!(
        m.retakes >= 1,
        "two 300 ms blocking polls were not retaken: {m:?}"
    );
    // Spares without a role exit after the keep-alive: wait for it, with a generous deadline.
    let deadline = Instant::now() + Duration::from_secs(10);
    while rt.metrics().worker_threads != 2 {
        assert!(
            Instant::now() < deadline,
            "threads never returned to rest: {:?}",
            rt.metrics()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn retake_stress_every_task_runs_once() {
    for round in 0..20 {
        let rt = Builder::new()
            .worker_threads(2)
            .retake_after(Some(Duration::from_millis(1)))
            .max_spare_threads(2)
            .build()
            .unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        rt.block_on({
            let runs = runs.clone();
            async move {
                let mut handles = Vec::new();
                for i in 0..400usize {
                    let runs = runs.clone();
                    handles.push(runnel::spawn(async move {
                        if i % 50 == round % 50 {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        let inner = runnel::spawn(async move { i });
                        runnel::task::yield_now().await;
                        runs.fetch_add(1, SeqCst);
                        inner.await.unwrap()
                    }));
                }
                let mut sum = 0;
                for h in handles {
                    sum += h.await.unwrap();
                }
                assert_eq!(sum, (0..400).sum());
            }
        });
        assert_eq!(runs.load(SeqCst), 400);
        assert_eq!(rt.metrics().deadlock_reports, 0);
    }
}
