//! `spawn_blocking`: results, more jobs than threads, panics, the thread cap, idle threads
//! retiring after `thread_keep_alive`, and runtime context inside a job.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use runnel::Handle;
use support::{runtime, silence_expected_panics, wait_until, Gate, EXPECTED, PATIENCE};

#[test]
fn returns_the_result() {
    let rt = runtime(2);
    assert_eq!(rt.block_on(rt.spawn_blocking(|| 6 * 7)).unwrap(), 42);
    let out = rt.block_on(async {
        let a = runnel::spawn_blocking(|| "from the pool".to_owned());
        let b = runnel::task::spawn_blocking(|| vec![1, 2, 3]);
        (a.await.unwrap(), b.await.unwrap())
    });
    assert_eq!(out, ("from the pool".to_owned(), vec![1, 2, 3]));
}

#[test]
fn more_jobs_than_threads() {
    let rt = runnel::Builder::new()
        .worker_threads(2)
        .max_blocking_threads(3)
        .build()
        .unwrap();
    let sum = rt.block_on(async {
        let jobs: Vec<_> = (0..200u64)
            .map(|i| {
                runnel::spawn_blocking(move || {
                    std::thread::yield_now();
                    i * i
                })
            })
            .collect();
        let mut sum = 0;
        for (i, j) in jobs.into_iter().enumerate() {
            let v = j.await.unwrap();
            assert_eq!(v, (i * i) as u64);
            sum += v;
        }
        sum
    });
    assert_eq!(sum, (0..200u64).map(|i| i * i).sum());
    assert!(rt.metrics().blocking_threads <= 3);
}

#[test]
fn panic_in_a_job_is_a_join_error() {
    silence_expected_panics();
    let rt = runtime(2);
    let err = rt
        .block_on(rt.spawn_blocking(|| -> u32 { panic!("job failed {EXPECTED}") }))
        .unwrap_err();
    assert!(err.is_panic());
    assert_eq!(
        support::panic_message(&*err.into_panic()),
        format!("job failed {EXPECTED}")
    );
    // The pool goes on.
    assert_eq!(rt.block_on(rt.spawn_blocking(|| 1)).unwrap(), 1);
}

#[test]
fn max_blocking_threads_caps_concurrency() {
    const CAP: usize = 2;
    const JOBS: usize = 10;
    let rt = runnel::Builder::new()
        .worker_threads(1)
        .max_blocking_threads(CAP)
        .build()
        .unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let max_running = Arc::new(AtomicUsize::new(0));
    let gate = Gate::new();
    let (started_tx, started_rx) = mpsc::channel();
    let jobs: Vec<_> = (0..JOBS)
        .map(|i| {
            let (running, max_running, gate, started) = (
                running.clone(),
                max_running.clone(),
                gate.clone(),
                started_tx.clone(),
            );
            rt.spawn_blocking(move || {
                let now = running.fetch_add(1, SeqCst) + 1;
                max_running.fetch_max(now, SeqCst);
                started.send(()).unwrap();
                gate.pass();
                running.fetch_sub(1, SeqCst);
                i
            })
        })
        .collect();
    // CAP jobs start and block; then each release lets exactly one more start.
    for _ in 0..CAP {
        started_rx
            .recv_timeout(PATIENCE)
            .expect("a job did not start");
    }
    for _ in CAP..JOBS {
        assert!(rt.metrics().blocking_threads <= CAP, "{:?}", rt.metrics());
        gate.open(1);
        started_rx
            .recv_timeout(PATIENCE)
            .expect("a queued job did not start after a release");
    }
    gate.open(CAP); // the last CAP
    let outs: Vec<_> = rt.block_on(async { futures::future::join_all(jobs).await });
    let outs: Vec<_> = outs.into_iter().map(Result::unwrap).collect();
    assert_eq!(outs, (0..JOBS).collect::<Vec<_>>());
    assert_eq!(
        max_running.load(SeqCst),
        CAP,
        "never more than the cap at once, and it was reached"
    );
}

#[test]
fn idle_threads_exit_after_keep_alive() {
    const JOBS: usize = 3;
    let rt = runnel::Builder::new()
        .worker_threads(1)
        .thread_keep_alive(Duration::from_millis(50))
        .build()
        .unwrap();
    assert_eq!(rt.metrics().blocking_threads, 0);
    // Three jobs that only finish together need three threads.
    let gate = Gate::new();
    let (started_tx, started_rx) = mpsc::channel();
    let jobs: Vec<_> = (0..JOBS)
        .map(|_| {
            let (gate, started) = (gate.clone(), started_tx.clone());
            rt.spawn_blocking(move || {
                started.send(()).unwrap();
                gate.pass();
            })
        })
        .collect();
    for _ in 0..JOBS {
        started_rx.recv_timeout(PATIENCE).unwrap();
    }
    assert_eq!(rt.metrics().blocking_threads, JOBS);
    gate.open(JOBS);
    rt.block_on(async {
        for j in jobs {
            j.await.unwrap();
        }
    });
    wait_until("idle blocking threads exited", || {
        rt.metrics().blocking_threads == 0
    });
    // And the pool starts threads again on demand.
    assert_eq!(rt.block_on(rt.spawn_blocking(|| 5)).unwrap(), 5);
}

#[test]
fn runtime_context_inside_a_job() {
    let rt = runtime(2);
    let out = rt.block_on(async {
        runnel::spawn_blocking(|| {
            // spawn works, and so does block_on on the runtime's handle (a blocking-pool
            // thread is not a runtime thread).
            let task = runnel::spawn(async { 20 });
            let handle = Handle::current();
            let nested = handle.block_on(async { runnel::spawn(async { 1 }).await.unwrap() });
            handle.block_on(task).unwrap() + nested + 21
        })
        .await
        .unwrap()
    });
    assert_eq!(out, 42);
}

#[test]
fn abort_of_a_queued_job_cancels_it() {
    let rt = runnel::Builder::new()
        .worker_threads(1)
        .max_blocking_threads(1)
        .build()
        .unwrap();
    let gate = Gate::new();
    let (started_tx, started_rx) = mpsc::channel();
    let g = gate.clone();
    let busy = rt.spawn_blocking(move || {
        started_tx.send(()).unwrap();
        g.pass();
    });
    started_rx.recv_timeout(PATIENCE).unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let queued = rt.spawn_blocking(move || {
        r.fetch_add(1, SeqCst);
    });
    queued.abort();
    gate.open(1);
    rt.block_on(busy).unwrap();
    assert!(rt.block_on(queued).unwrap_err().is_cancelled());
    // The single thread is free again, so a later job proves the aborted one was skipped.
    rt.block_on(rt.spawn_blocking(|| ())).unwrap();
    assert_eq!(ran.load(SeqCst), 0);
}

#[test]
fn jobs_queued_at_shutdown_are_cancelled() {
    let rt = runnel::Builder::new()
        .worker_threads(1)
        .max_blocking_threads(1)
        .build()
        .unwrap();
    let gate = Gate::new();
    let (started_tx, started_rx) = mpsc::channel();
    let g = gate.clone();
    let busy = rt.spawn_blocking(move || {
        started_tx.send(()).unwrap();
        g.pass();
        7
    });
    started_rx.recv_timeout(PATIENCE).unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let queued: Vec<_> = (0..5)
        .map(|_| {
            let r = ran.clone();
            rt.spawn_blocking(move || {
                r.fetch_add(1, SeqCst);
            })
        })
        .collect();
    gate.open(1);
    drop(rt); // waits for the running job; the queued ones are cancelled or run, never lost
    assert_eq!(futures::executor::block_on(busy).unwrap(), 7);
    let mut ok = 0;
    for q in queued {
        match futures::executor::block_on(q) {
            Ok(()) => ok += 1,
            Err(e) => assert!(e.is_cancelled()),
        }
    }
    assert_eq!(ran.load(SeqCst), ok);
}
