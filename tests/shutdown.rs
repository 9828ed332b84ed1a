//! Dropping a runtime cancels every task and frees everything exactly once: tasks blocked
//! (on a channel, a timer, a socket), queued, and running at the time; their outputs,
//! awaited or not; tasks spawned while shutting down.
//!
//! "Freed" is checked three ways: drop counters on futures and outputs, the strong count
//! of an `Arc` every task captured, and the process's open file descriptors — the
//! runtime's reactor holds an epoll fd and an eventfd, so a runtime kept alive by a leaked
//! task (a task references its scheduler) shows up as leaked fds. The tests in this file
//! run one at a time (`serial`) so the fd count is theirs alone.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::channel::oneshot;
use runnel::{Handle, JoinHandle};
use support::{runtime, tracked, wait_until, Counts, Gate, Out, PATIENCE};

fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Asserts the fds opened since `baseline` are all closed again (waiting for threads the
/// runtime detached, which hold the last references).
#[track_caller]
fn assert_fds_released(baseline: usize) {
    wait_until(
        "the runtime's file descriptors are closed (nothing keeps it alive)",
        || open_fds() <= baseline,
    );
}

fn one_worker_without_retake() -> runnel::Runtime {
    runnel::Builder::new()
        .worker_threads(1)
        .retake_after(None)
        .build()
        .unwrap()
}

#[test]
fn drop_cancels_blocked_tasks() {
    let _serial = serial();
    let baseline = open_fds();
    let rt = runtime(2);
    let counts = Counts::new();
    let token = Arc::new(());
    let (started_tx, started_rx) = mpsc::channel();
    let mut senders = Vec::new();
    let mut handles = Vec::new();
    for i in 0..100 {
        let (tx, rx) = oneshot::channel::<()>();
        senders.push(tx);
        let (t, started) = (token.clone(), started_tx.clone());
        handles.push(rt.spawn(tracked(&counts, async move {
            let _t = t;
            started.send(()).unwrap();
            match i % 3 {
                0 => rx.await.unwrap(),
                1 => runnel::time::sleep(Duration::from_secs(3600)).await,
                _ => {
                    let listener = runnel::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                    let _ = listener.accept().await;
                }
            }
        })));
    }
    // Tasks waiting on other tasks' JoinHandles.
    let joiners: Vec<_> = handles
        .drain(..50)
        .map(|h| {
            let (t, started) = (token.clone(), started_tx.clone());
            rt.spawn(tracked(&counts, async move {
                let _t = t;
                started.send(()).unwrap();
                h.await.unwrap()
            }))
        })
        .collect();
    for _ in 0..150 {
        started_rx.recv_timeout(PATIENCE).unwrap();
    }
    drop(rt);
    assert_eq!(counts.drops(), 150, "every future dropped exactly once");
    assert_eq!(
        counts.polls(),
        150,
        "and none polled after its first (blocking) poll"
    );
    assert_eq!(Arc::strong_count(&token), 1);
    assert!(senders.iter().all(|tx| tx.is_canceled()));
    for h in handles.into_iter().chain(joiners) {
        assert!(futures::executor::block_on(h).unwrap_err().is_cancelled());
    }
    assert_fds_released(baseline);
}

#[test]
fn drop_cancels_queued_tasks() {
    // One worker, blocked in a task until after shutdown began (shutdown_timeout detaches
    // it), so the tasks spawned meanwhile are still queued: cancelled, never polled.
    // Retake off, or a spare thread would take the queue over and run it.
    let _serial = serial();
    let baseline = open_fds();
    let rt = one_worker_without_retake();
    let counts = Counts::new();
    let out_drops = Arc::new(AtomicUsize::new(0));
    let token = Arc::new(());
    let gate = Gate::new();
    let (blocking_tx, blocking_rx) = mpsc::channel();
    let g = gate.clone();
    let blocker = rt.spawn(async move {
        blocking_tx.send(()).unwrap();
        g.pass();
    });
    blocking_rx.recv_timeout(PATIENCE).unwrap();
    let queued: Vec<_> = (0..1_000)
        .map(|i| {
            let (t, d) = (token.clone(), out_drops.clone());
            rt.spawn(tracked(&counts, async move {
                let _t = t;
                Out::new(i, &d)
            }))
        })
        .collect();
    rt.shutdown_timeout(Duration::from_millis(10));
    assert_eq!(counts.polls(), 0, "queued tasks are not run after shutdown");
    assert_eq!(counts.drops(), 1_000);
    assert_eq!(Arc::strong_count(&token), 1);
    gate.open(1); // let the detached worker finish its poll and exit
    assert!(
        futures::executor::block_on(blocker).is_ok(),
        "the running task completed"
    );
    for h in queued {
        assert!(futures::executor::block_on(h).unwrap_err().is_cancelled());
    }
    assert_eq!(out_drops.load(SeqCst), 0, "no output was produced");
    assert_fds_released(baseline);
}

#[test]
fn tasks_queued_on_a_detached_worker_are_freed() {
    // As above, but the queued tasks sit in the blocked worker's own LIFO slot and local
    // queue (spawned by the task that then blocks), which shutdown cannot drain while the
    // worker is detached: the worker must free them when it exits.
    let _serial = serial();
    let baseline = open_fds();
    let rt = one_worker_without_retake();
    let counts = Counts::new();
    let gate = Gate::new();
    let (blocking_tx, blocking_rx) = mpsc::channel();
    let g = gate.clone();
    let c = counts.clone();
    let blocker = rt.spawn(async move {
        let queued: Vec<JoinHandle<()>> = (0..10)
            .map(|_| runnel::spawn(tracked(&c, async {})))
            .collect();
        blocking_tx.send(()).unwrap();
        g.pass();
        queued
    });
    blocking_rx.recv_timeout(PATIENCE).unwrap();
    rt.shutdown_timeout(Duration::from_millis(10));
    assert_eq!(counts.drops(), 10, "the queued tasks were cancelled");
    gate.open(1);
    let queued = futures::executor::block_on(blocker).unwrap();
    for h in queued {
        assert!(futures::executor::block_on(h).unwrap_err().is_cancelled());
    }
    assert_eq!(counts.polls(), 0);
    assert_fds_released(baseline);
}

#[test]
fn drop_while_a_task_runs() {
    // The running task spins until the test, having started the drop on another thread,
    // lets it return. Meanwhile 100 tasks it spawned wait in its worker's queue. Whatever
    // the interleaving, every future and every output is dropped exactly once.
    let _serial = serial();
    let baseline = open_fds();
    let rt = runtime(1);
    let counts = Counts::new();
    let out_drops = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (spinning_tx, spinning_rx) = mpsc::channel();
    let (c, d, s) = (counts.clone(), out_drops.clone(), stop.clone());
    let spinner = rt.spawn(tracked(&counts, async move {
        let queued: Vec<_> = (0..100)
            .map(|i| {
                runnel::spawn(tracked(&c, {
                    let d = d.clone();
                    async move { Out::new(i, &d) }
                }))
            })
            .collect();
        spinning_tx.send(()).unwrap();
        while !s.load(SeqCst) {
            std::hint::spin_loop();
        }
        queued
    }));
    spinning_rx.recv_timeout(PATIENCE).unwrap();
    let (dropping_tx, dropping_rx) = mpsc::channel();
    let dropper = std::thread::spawn(move || {
        dropping_tx.send(()).unwrap();
        drop(rt);
    });
    dropping_rx.recv_timeout(PATIENCE).unwrap();
    stop.store(true, SeqCst);
    dropper.join().unwrap();
    assert_eq!(counts.drops(), 101);
    let queued =
        futures::executor::block_on(spinner).expect("the spinner returned before it was cancelled");
    let mut completed = 0;
    for h in queued {
        match futures::executor::block_on(h) {
            Ok(out) => {
                completed += 1;
                drop(out);
            }
            Err(e) => assert!(e.is_cancelled()),
        }
    }
    assert_eq!(
        counts.polls(),
        1 + completed,
        "a cancelled task was never polled"
    );
    assert_eq!(out_drops.load(SeqCst), completed);
    assert_fds_released(baseline);
}

#[test]
fn outputs_are_dropped_exactly_once() {
    let _serial = serial();
    let baseline = open_fds();
    let rt = runtime(2);
    let out_drops = Arc::new(AtomicUsize::new(0));
    let spawn_out = |i: usize| {
        let d = out_drops.clone();
        rt.spawn(async move {
            runnel::task::yield_now().await;
            Out::new(i, &d)
        })
    };
    let awaited: Vec<_> = (0..100).map(spawn_out).collect();
    let held: Vec<_> = (100..200).map(spawn_out).collect();
    for i in 200..300 {
        drop(spawn_out(i)); // detached: the task drops its own output
    }
    let values = rt.block_on(async move {
        let mut values = Vec::new();
        for h in awaited {
            values.push(h.await.unwrap().value); // the Out is dropped right here
        }
        values
    });
    assert_eq!(values, (0..100).collect::<Vec<_>>());
    for h in &held {
        wait_until("the held task completed", || h.is_finished());
    }
    wait_until("the detached tasks completed", || {
        rt.metrics().live_tasks == 0
    });
    assert_eq!(
        out_drops.load(SeqCst),
        200,
        "awaited outputs and detached tasks' outputs"
    );
    drop(rt);
    assert_eq!(
        out_drops.load(SeqCst),
        200,
        "outputs in held handles outlive the runtime"
    );
    drop(held);
    assert_eq!(out_drops.load(SeqCst), 300);
    assert_fds_released(baseline);
}

/// Spawns a task (and a blocking job) when dropped, as cleanup code might.
struct SpawnOnDrop {
    handle: Handle,
    counts: Arc<Counts>,
    spawned: Arc<Mutex<Vec<JoinHandle<()>>>>,
    blocking_ran: Arc<AtomicUsize>,
}

impl Drop for SpawnOnDrop {
    fn drop(&mut self) {
        let task = self.handle.spawn(tracked(&self.counts, async {}));
        let ran = self.blocking_ran.clone();
        let job = self.handle.spawn_blocking(move || {
            ran.fetch_add(1, SeqCst);
        });
        self.spawned.lock().unwrap().extend([task, job]);
    }
}

#[test]
fn spawn_during_shutdown_is_cancelled_not_leaked() {
    let _serial = serial();
    let baseline = open_fds();
    let rt = runtime(2);
    let late = Counts::new();
    let spawned = Arc::new(Mutex::new(Vec::new()));
    let blocking_ran = Arc::new(AtomicUsize::new(0));
    let (started_tx, started_rx) = mpsc::channel();
    for _ in 0..10 {
        let guard = SpawnOnDrop {
            handle: rt.handle().clone(),
            counts: late.clone(),
            spawned: spawned.clone(),
            blocking_ran: blocking_ran.clone(),
        };
        let started = started_tx.clone();
        rt.spawn(async move {
            let _guard = guard;
            started.send(()).unwrap();
            std::future::pending::<()>().await
        });
    }
    for _ in 0..10 {
        started_rx.recv_timeout(PATIENCE).unwrap();
    }
    drop(rt);
    assert_eq!(late.polls(), 0, "a task spawned during shutdown never runs");
    assert_eq!(late.drops(), 10, "and its future is dropped at once");
    let spawned = std::mem::take(&mut *spawned.lock().unwrap());
    assert_eq!(spawned.len(), 20);
    let mut jobs_ok = 0;
    for (i, h) in spawned.into_iter().enumerate() {
        match futures::executor::block_on(h) {
            Ok(()) => {
                assert_eq!(i % 2, 1, "only a blocking job may still run");
                jobs_ok += 1;
            }
            Err(e) => assert!(e.is_cancelled()),
        }
    }
    assert_eq!(
        blocking_ran.load(SeqCst),
        jobs_ok,
        "a job ran iff its handle says so"
    );
    assert_fds_released(baseline);
}

#[test]
fn captured_arc_returns_to_one_after_drop() {
    let _serial = serial();
    let baseline = open_fds();
    let shared = Arc::new(AtomicUsize::new(0));
    let rt = runtime(2);
    let (started_tx, started_rx) = mpsc::channel();
    let mut handles = Vec::new();
    for i in 0..1_000 {
        let s = shared.clone();
        let started = started_tx.clone();
        handles.push(rt.spawn(async move {
            s.fetch_add(1, SeqCst);
            if i % 2 == 0 {
                started.send(()).unwrap();
                std::future::pending::<()>().await; // still blocked at drop
            }
        }));
        if i % 3 == 0 {
            drop(handles.pop()); // some detached
        }
    }
    for _ in 0..500 {
        started_rx.recv_timeout(PATIENCE).unwrap();
    }
    drop(rt);
    assert_eq!(Arc::strong_count(&shared), 1);
    drop(handles);
    assert_fds_released(baseline);
}
