//! Wakes: during the task's own poll, of a task already queued, from foreign threads,
//! after the runtime is gone; and `yield_now` fairness.

// Waking through a clone (by value) is a path under test, not a slip.
#![allow(clippy::waker_clone_wake)]

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Waker};

use support::{runtime, tracked, Counts, PATIENCE};

/// How the test future wakes itself while it is being polled.
#[derive(Clone, Copy)]
enum SelfWake {
    ByRef,
    ByVal,
    /// `wake_by_ref` many times in one poll: still one extra poll.
    Repeatedly,
    /// From a std::thread that the poll joins before returning, so the wake lands while
    /// the task is running.
    FromThread,
}

/// Pending `ready_at - 1` times, waking itself each time; then ready with its poll count.
struct WakesSelf {
    polls: usize,
    ready_at: usize,
    how: SelfWake,
}

impl Future for WakesSelf {
    type Output = usize;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        self.polls += 1;
        if self.polls == self.ready_at {
            return Poll::Ready(self.polls);
        }
        match self.how {
            SelfWake::ByRef => cx.waker().wake_by_ref(),
            SelfWake::ByVal => cx.waker().clone().wake(),
            SelfWake::Repeatedly => {
                for _ in 0..100 {
                    cx.waker().wake_by_ref();
                }
                cx.waker().clone().wake();
            }
            SelfWake::FromThread => {
                let waker = cx.waker().clone();
                std::thread::spawn(move || waker.wake()).join().unwrap();
            }
        }
        Poll::Pending
    }
}

fn self_wake(how: SelfWake, workers: usize) {
    let rt = runtime(workers);
    let counts = Counts::new();
    let handles: Vec<_> = (0..50)
        .map(|_| {
            rt.spawn(tracked(
                &counts,
                WakesSelf {
                    polls: 0,
                    ready_at: 10,
                    how,
                },
            ))
        })
        .collect();
    rt.block_on(async {
        for h in handles {
            assert_eq!(h.await.unwrap(), 10);
        }
    });
    assert_eq!(
        counts.polls(),
        50 * 10,
        "each wake during a poll gives exactly one more poll"
    );
    assert_eq!(counts.drops(), 50);
}

#[test]
fn wake_by_ref_while_running() {
    self_wake(SelfWake::ByRef, 1);
    self_wake(SelfWake::ByRef, 2);
}

#[test]
fn wake_by_val_while_running() {
    self_wake(SelfWake::ByVal, 1);
    self_wake(SelfWake::ByVal, 2);
}

#[test]
fn many_wakes_while_running_give_one_poll() {
    self_wake(SelfWake::Repeatedly, 2);
}

#[test]
fn wake_from_another_thread_while_running() {
    self_wake(SelfWake::FromThread, 2);
}

/// Stores its waker for the test; ready once `ready` is set.
struct Parked {
    waker: Arc<Mutex<Option<Waker>>>,
    ready: Arc<AtomicBool>,
    polled: mpsc::Sender<()>,
}

impl Future for Parked {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.ready.load(SeqCst) {
            return Poll::Ready(());
        }
        *self.waker.lock().unwrap() = Some(cx.waker().clone());
        let _ = self.polled.send(());
        Poll::Pending
    }
}

#[test]
fn waking_a_queued_task_does_not_queue_it_twice() {
    // One worker. The task parks; a blocker then occupies the worker while the test wakes
    // the task 200 times (it is queued once); then a probe is queued behind it. If the task
    // had been queued twice it would be polled twice before the probe runs. Retake off: a
    // spare thread taking over the blocked worker would run the two concurrently.
    let rt = runnel::Builder::new()
        .worker_threads(1)
        .retake_after(None)
        .build()
        .unwrap();
    let counts = Counts::new();
    let waker = Arc::new(Mutex::new(None::<Waker>));
    let ready = Arc::new(AtomicBool::new(false));
    let (polled_tx, polled_rx) = mpsc::channel();
    let task = rt.spawn(tracked(
        &counts,
        Parked {
            waker: waker.clone(),
            ready: ready.clone(),
            polled: polled_tx,
        },
    ));
    polled_rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(counts.polls(), 1);

    let (blocking_tx, blocking_rx) = mpsc::channel();
    let gate = support::Gate::new();
    let g = gate.clone();
    let blocker = rt.spawn(async move {
        blocking_tx.send(()).unwrap();
        g.pass();
    });
    blocking_rx.recv_timeout(PATIENCE).unwrap();

    let w = waker.lock().unwrap().clone().unwrap();
    for _ in 0..100 {
        w.wake_by_ref();
        w.clone().wake();
    }
    let c = counts.clone();
    let probe = rt.spawn(async move { c.polls() });
    gate.open(1);
    let polls_seen_by_probe = rt.block_on(probe).unwrap();
    assert_eq!(
        polls_seen_by_probe, 2,
        "200 wakes of a queued task: polled once"
    );
    rt.block_on(blocker).unwrap();

    ready.store(true, SeqCst);
    w.wake();
    rt.block_on(task).unwrap();
    assert_eq!(counts.polls(), 3);
}

#[test]
fn wakes_from_foreign_threads() {
    const TASKS: usize = 400;
    const THREADS: usize = 4;
    let rt = support::multi_thread(2);
    let counts = Counts::new();
    let mut wakers = Vec::new();
    let mut flags = Vec::new();
    let (polled_tx, polled_rx) = mpsc::channel();
    let handles: Vec<_> = (0..TASKS)
        .map(|_| {
            let waker = Arc::new(Mutex::new(None));
            let ready = Arc::new(AtomicBool::new(false));
            wakers.push(waker.clone());
            flags.push(ready.clone());
            rt.spawn(tracked(
                &counts,
                Parked {
                    waker,
                    ready,
                    polled: polled_tx.clone(),
                },
            ))
        })
        .collect();
    for _ in 0..TASKS {
        polled_rx.recv_timeout(PATIENCE).unwrap();
    }
    // Each thread releases a quarter of the tasks.
    let slots: Vec<_> = wakers.into_iter().zip(flags).collect();
    let slots = Arc::new(slots);
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let slots = slots.clone();
            std::thread::spawn(move || {
                for (waker, ready) in slots.iter().skip(t).step_by(THREADS) {
                    ready.store(true, SeqCst);
                    let w = waker.lock().unwrap().take().unwrap();
                    w.wake();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    rt.block_on(async {
        for h in handles {
            h.await.unwrap();
        }
    });
    assert_eq!(
        counts.polls(),
        2 * TASKS,
        "one poll to park, one after the wake"
    );
    assert_eq!(counts.drops(), TASKS);
}

#[test]
fn waker_outliving_the_runtime() {
    let rt = support::multi_thread(2);
    let counts = Counts::new();
    let token = Arc::new(());
    let waker = Arc::new(Mutex::new(None::<Waker>));
    let (polled_tx, polled_rx) = mpsc::channel();
    let t = token.clone();
    let handle = rt.spawn(tracked(&counts, {
        let parked = Parked {
            waker: waker.clone(),
            ready: Arc::new(AtomicBool::new(false)),
            polled: polled_tx,
        };
        async move {
            let _t = t;
            parked.await
        }
    }));
    polled_rx.recv_timeout(PATIENCE).unwrap();
    let w = waker.lock().unwrap().take().unwrap();
    drop(rt);
    assert_eq!(
        counts.drops(),
        1,
        "shutdown dropped the future although a waker lives"
    );
    assert_eq!(Arc::strong_count(&token), 1);
    // Every kind of wake on the dead task is harmless.
    w.wake_by_ref();
    let w2 = w.clone();
    w.wake();
    let err = futures::executor::block_on(handle).unwrap_err();
    assert!(err.is_cancelled());
    drop(w2); // the last reference: frees the task
    assert_eq!(counts.polls(), 1);
}

#[test]
fn waking_a_completed_task_does_nothing() {
    let rt = runtime(2);
    let counts = Counts::new();
    let slot = Arc::new(Mutex::new(None::<Waker>));
    let s = slot.clone();
    let handle = rt.spawn(tracked(
        &counts,
        futures::future::poll_fn(move |cx| {
            *s.lock().unwrap() = Some(cx.waker().clone());
            Poll::Ready(5)
        }),
    ));
    assert_eq!(rt.block_on(handle).unwrap(), 5);
    let w = slot.lock().unwrap().take().unwrap();
    w.wake_by_ref();
    w.wake();
    // A probe queued after the wakes runs after anything they could have queued.
    rt.block_on(rt.spawn(async {})).unwrap();
    assert_eq!(counts.polls(), 1);
}

#[test]
fn yield_now_interleaves_two_tasks_on_one_worker() {
    const ROUNDS: usize = 20;
    let rt = runtime(1);
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    rt.block_on(async move {
        // Spawned from a task on the only worker: neither runs until the spawner is done.
        runnel::spawn(async move {
            let tasks: Vec<_> = ['a', 'b']
                .into_iter()
                .map(|name| {
                    let log = l.clone();
                    runnel::spawn(async move {
                        for _ in 0..ROUNDS {
                            log.lock().unwrap().push(name);
                            runnel::task::yield_now().await;
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        })
        .await
        .unwrap()
    });
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 2 * ROUNDS);
    assert!(
        log.windows(2).all(|w| w[0] != w[1]),
        "yield_now must let the other task run: {}",
        log.iter().collect::<String>()
    );
}

/// A socket registered with runtime A's reactor, awaited by a task of runtime B: A's
/// reactor wakes B's task. That wake must reach B's workers (A's drain batches its own
/// runtime's notifies only), many times over.
#[test]
fn a_reactor_wakes_a_task_of_another_runtime() {
    let a = support::multi_thread(1);
    let b = support::multi_thread(2);
    for _ in 0..50 {
        let listener = a
            .block_on(async { runnel::net::TcpListener::bind("127.0.0.1:0").await })
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (done_tx, done_rx) = mpsc::channel();
        b.spawn(async move {
            let accepted = listener.accept().await.map(|_| ());
            done_tx.send(accepted).unwrap();
        });
        let _client = std::net::TcpStream::connect(addr).unwrap();
        done_rx.recv_timeout(PATIENCE).unwrap().unwrap();
    }
}
