//! `JoinHandle::abort` in every state of the task: before its first poll, while it waits,
//! during a poll, after completion, detached, and from another thread. Every future is
//! dropped exactly once.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll};

use futures::channel::oneshot;
use runnel::JoinHandle;
use support::{runtime, tracked, wait_until, Counts, Out, PATIENCE};

#[test]
fn abort_before_first_poll() {
    // One worker, and the abort happens inside the task that spawned the victim: the
    // worker is busy with the spawner, so the victim cannot have run yet.
    let rt = runtime(1);
    let counts = Counts::new();
    let c = counts.clone();
    let (err, polls_at_abort) = rt.block_on(async move {
        runnel::spawn(async move {
            let victim = runnel::spawn(tracked(&c, async { 1 }));
            victim.abort();
            let polls_at_abort = c.polls();
            (victim.await.unwrap_err(), polls_at_abort)
        })
        .await
        .unwrap()
    });
    assert_eq!(polls_at_abort, 0);
    assert!(err.is_cancelled(), "{err:?}");
    assert!(!err.is_panic());
    assert_eq!(counts.polls(), 0, "an aborted task is never polled");
    assert_eq!(counts.drops(), 1, "its future is dropped exactly once");
}

#[test]
fn abort_while_waiting() {
    let rt = runtime(2);
    let counts = Counts::new();
    let (started_tx, started_rx) = oneshot::channel();
    let (tx, rx) = oneshot::channel::<u32>();
    let handle = rt.spawn(tracked(&counts, async move {
        started_tx.send(()).unwrap();
        rx.await.unwrap()
    }));
    rt.block_on(started_rx).unwrap();
    handle.abort();
    let err = rt.block_on(handle).unwrap_err();
    assert!(err.is_cancelled());
    assert_eq!(counts.drops(), 1);
    assert!(tx.is_canceled(), "dropping the future dropped the receiver");
}

/// Returns `Pending` or `Ready` after the test aborted it during this very poll.
struct AbortedDuringPoll {
    in_poll: mpsc::Sender<()>,
    aborted: mpsc::Receiver<()>,
    then_ready: bool,
}

impl Future for AbortedDuringPoll {
    type Output = u32;
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<u32> {
        self.in_poll.send(()).unwrap();
        self.aborted
            .recv_timeout(PATIENCE)
            .expect("the test never aborted");
        if self.then_ready {
            Poll::Ready(7)
        } else {
            Poll::Pending // no waker kept: only the abort can end this task
        }
    }
}

fn abort_during_poll(then_ready: bool) -> Result<u32, runnel::JoinError> {
    let rt = support::multi_thread(2);
    let counts = Counts::new();
    let (in_poll_tx, in_poll_rx) = mpsc::channel();
    let (aborted_tx, aborted_rx) = mpsc::channel();
    let handle = rt.spawn(tracked(
        &counts,
        AbortedDuringPoll {
            in_poll: in_poll_tx,
            aborted: aborted_rx,
            then_ready,
        },
    ));
    in_poll_rx.recv_timeout(PATIENCE).unwrap();
    handle.abort(); // from the test thread, while a worker is inside the poll
    aborted_tx.send(()).unwrap();
    let out = rt.block_on(handle);
    assert_eq!(counts.polls(), 1, "not polled again after the abort");
    assert_eq!(counts.drops(), 1);
    out
}

#[test]
fn abort_during_a_poll_that_returns_pending_cancels() {
    let err = abort_during_poll(false).unwrap_err();
    assert!(err.is_cancelled());
}

#[test]
fn abort_during_a_poll_that_completes_keeps_the_output() {
    assert_eq!(abort_during_poll(true).unwrap(), 7);
}

#[test]
fn task_aborting_itself_during_its_poll() {
    let rt = support::multi_thread(2);
    let counts = Counts::new();
    let slot: Arc<Mutex<Option<JoinHandle<()>>>> = Arc::default();
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let s = slot.clone();
    let handle_of_self = rt.spawn(tracked(&counts, async move {
        go_rx.await.unwrap();
        s.lock().unwrap().as_ref().unwrap().abort();
        // Still pending after aborting itself: the worker cancels it when the poll returns.
        std::future::pending::<()>().await
    }));
    let id = handle_of_self.id();
    *slot.lock().unwrap() = Some(handle_of_self);
    go_tx.send(()).unwrap();
    wait_until("the task cancelled itself", || counts.drops() == 1);
    let handle = slot.lock().unwrap().take().unwrap();
    assert!(handle.is_finished());
    let err = rt.block_on(handle).unwrap_err();
    assert!(err.is_cancelled());
    assert_eq!(err.id(), id);
    // One poll if `go` was sent before its first poll, two otherwise; never a poll after
    // the one that aborted.
    assert!((1..=2).contains(&counts.polls()), "{counts:?}");
}

#[test]
fn abort_after_completion_returns_the_output() {
    let rt = support::multi_thread(2);
    let counts = Counts::new();
    let out_drops = Arc::new(AtomicUsize::new(0));
    let d = out_drops.clone();
    let handle = rt.spawn(tracked(&counts, async move { Out::new(9, &d) }));
    wait_until("the task completed", || handle.is_finished());
    handle.abort();
    handle.abort();
    let out = rt.block_on(handle).unwrap();
    assert_eq!(out.value, 9);
    assert_eq!(out_drops.load(SeqCst), 0, "the output survived the abort");
    drop(out);
    assert_eq!(out_drops.load(SeqCst), 1);
    assert_eq!(counts.drops(), 1);
}

/// Reports its drop on a channel, so the test can wait for it.
struct SignalOnDrop(mpsc::Sender<()>);

impl Drop for SignalOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

#[test]
fn abort_then_detach() {
    let rt = support::multi_thread(2);
    let counts = Counts::new();
    let (dropped_tx, dropped_rx) = mpsc::channel();
    let (tx, rx) = oneshot::channel::<()>();
    let (started_tx, started_rx) = oneshot::channel();
    let guard = SignalOnDrop(dropped_tx);
    let handle = rt.spawn(tracked(&counts, async move {
        let _guard = guard;
        started_tx.send(()).unwrap();
        rx.await.unwrap();
    }));
    rt.block_on(started_rx).unwrap();
    handle.abort();
    drop(handle); // detached: nobody will read the cancellation
    dropped_rx
        .recv_timeout(PATIENCE)
        .expect("the aborted, detached task was dropped");
    wait_until("the tracked future's drop counted", || counts.drops() == 1);
    assert!(tx.is_canceled());
    wait_until("the task left the owned list", || {
        rt.metrics().live_tasks == 0
    });
}

#[test]
fn detach_without_abort_keeps_running() {
    let rt = support::multi_thread(2);
    let (tx, rx) = oneshot::channel::<u32>();
    let (done_tx, done_rx) = mpsc::channel();
    drop(rt.spawn(async move {
        done_tx.send(rx.await.unwrap()).unwrap();
    }));
    tx.send(3).unwrap();
    assert_eq!(done_rx.recv_timeout(PATIENCE).unwrap(), 3);
}

#[test]
fn abort_from_another_thread() {
    let rt = runtime(2);
    let counts = Counts::new();
    let mut handles = Vec::new();
    let mut senders = Vec::new();
    for _ in 0..100 {
        let (tx, rx) = oneshot::channel::<()>();
        senders.push(tx);
        handles.push(rt.spawn(tracked(&counts, async move { rx.await.unwrap() })));
    }
    let handles = std::thread::spawn(move || {
        for h in &handles {
            h.abort();
        }
        handles
    })
    .join()
    .unwrap();
    rt.block_on(async move {
        for h in handles {
            assert!(h.await.unwrap_err().is_cancelled());
        }
    });
    assert_eq!(counts.drops(), 100);
    assert!(senders.iter().all(|tx| tx.is_canceled()));
}

#[test]
fn abort_races_with_completion() {
    // Whichever wins, the handle yields either the output or a cancellation, and the
    // future and the output are each dropped exactly once.
    let rt = runtime(2);
    let counts = Counts::new();
    let out_drops = Arc::new(AtomicUsize::new(0));
    const N: usize = 2_000;
    let handles: Vec<_> = (0..N)
        .map(|i| {
            let d = out_drops.clone();
            rt.spawn(tracked(&counts, async move {
                runnel::task::yield_now().await;
                Out::new(i, &d)
            }))
        })
        .collect();
    let aborter = std::thread::spawn(move || {
        for h in &handles {
            h.abort();
        }
        handles
    });
    let handles = aborter.join().unwrap();
    let completed = rt.block_on(async move {
        let mut completed = 0;
        for (i, h) in handles.into_iter().enumerate() {
            match h.await {
                Ok(out) => {
                    assert_eq!(out.value, i);
                    completed += 1;
                }
                Err(e) => assert!(e.is_cancelled()),
            }
        }
        completed
    });
    assert_eq!(counts.drops(), N);
    assert_eq!(
        out_drops.load(SeqCst),
        completed,
        "each produced output dropped once"
    );
}
