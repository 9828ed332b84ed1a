//! Regression tests for a use-after-free in the wake path: scheduling a woken task handed
//! its only reference to a run queue and then read the scheduler handle (`&Arc<Shared>`)
//! out of the task's own allocation, which a worker that ran the task to completion
//! meanwhile may have freed.
//!
//! Each test races wakes of detached tasks (nothing else keeps them alive) against their
//! completion on the other worker, round after round, and checks that every task ran to
//! completion exactly once. A lost race rarely crashes a plain build; under AddressSanitizer
//! it is a `heap-use-after-free` report (`.ci/sanitize` runs these under ASan and TSan).
//! The default run is short; `RUNNEL_STRESS_ROUNDS=<n>` sets the rounds per test.

// Waking through a clone (by value) is a path under test, not a slip.
#![allow(clippy::waker_clone_wake)]

use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Tasks per round.
const TASKS: usize = 64;

/// How long one round may wait for its tasks before the test fails instead of hanging.
/// Generous: the machine is shared, and sanitizer builds are slow.
const PATIENCE: Duration = Duration::from_secs(60);

/// Rounds per test: `RUNNEL_STRESS_ROUNDS`, else `default` (sized for a ~1 s debug run).
fn rounds(default: usize) -> usize {
    match std::env::var("RUNNEL_STRESS_ROUNDS") {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("RUNNEL_STRESS_ROUNDS={s:?} is not a number")),
        Err(_) => default,
    }
}

fn two_workers() -> runnel::Runtime {
    runnel::Builder::new().worker_threads(2).build().unwrap()
}

/// Receives one message from each of the round's `TASKS` tasks, in any order; fails on a
/// missing or a duplicate one. Returns what each task sent, indexed by task.
fn collect<T>(rx: &Receiver<(usize, T)>, what: &str, round: usize) -> Vec<T> {
    let mut got: Vec<Option<T>> = (0..TASKS).map(|_| None).collect();
    for n in 0..TASKS {
        let (index, value) = rx.recv_timeout(PATIENCE).unwrap_or_else(|e| {
            panic!("round {round}: only {n} of {TASKS} tasks {what} ({e})");
        });
        assert!(
            got[index].replace(value).is_none(),
            "round {round}: task {index} {what} twice"
        );
    }
    got.into_iter().map(Option::unwrap).collect()
}

/// Pending on its first poll, after sending its waker out; ready on the next one, after
/// reporting that it completed.
struct PendingOnce {
    index: usize,
    registered: Option<Sender<(usize, Waker)>>,
    done: Sender<(usize, ())>,
}

impl Future for PendingOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(registered) = self.registered.take() {
            registered.send((self.index, cx.waker().clone())).unwrap();
            return Poll::Pending;
        }
        self.done.send((self.index, ())).unwrap();
        Poll::Ready(())
    }
}

/// One round: spawns `TASKS` detached `PendingOnce` tasks, waits until each is parked on
/// its first `Pending`, then gives each of two threads a waker of every task and lets them
/// loose together (`first` on one, `second` on the other). Every task must complete once.
fn wake_race_round(
    rt: &runnel::Runtime,
    round: usize,
    first: fn(Vec<Waker>),
    second: fn(Vec<Waker>),
) {
    let (reg_tx, reg_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    for index in 0..TASKS {
        // Detached: after the wakers are gone, only the scheduler holds the task.
        drop(rt.spawn(PendingOnce {
            index,
            registered: Some(reg_tx.clone()),
            done: done_tx.clone(),
        }));
    }
    let wakers = collect(&reg_rx, "registered a waker", round);
    let mut clones = wakers.clone();
    // The second thread goes through the tasks in the other order, so the two threads
    // meet in the middle of the round instead of always hitting the same task together.
    clones.reverse();
    let start = Arc::new(Barrier::new(2));
    let threads: Vec<_> = [(wakers, first), (clones, second)]
        .into_iter()
        .map(|(wakers, wake)| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                wake(wakers);
            })
        })
        .collect();
    collect(&done_rx, "completed", round);
    for t in threads {
        t.join().unwrap();
    }
}

fn wake_all_by_value(wakers: Vec<Waker>) {
    for w in wakers {
        w.wake();
    }
}

fn wake_all_by_ref_then_drop(wakers: Vec<Waker>) {
    for w in wakers {
        w.wake_by_ref();
        // The drop may release the last reference of a task that completed meanwhile.
        drop(w);
    }
}

/// The scenario: two foreign threads wake every task by value. A wake that submits
/// the task passes its reference to the injector; the other worker can run the task to
/// completion and free it while the waking thread is still inside the scheduler.
#[test]
fn by_value_wakes_from_two_threads_race_completion() {
    let rt = two_workers();
    for round in 0..rounds(500) {
        wake_race_round(&rt, round, wake_all_by_value, wake_all_by_value);
    }
}

/// One thread wakes by reference (and then drops its waker) while the other wakes by value:
/// a by-ref wake that submits the task races the task's completion on a worker, and the
/// drop that follows races the release of the task's other references.
#[test]
fn by_ref_wakes_race_completion() {
    let rt = two_workers();
    for round in 0..rounds(500) {
        wake_race_round(&rt, round, wake_all_by_ref_then_drop, wake_all_by_value);
    }
}

/// The yield path: tasks spawned on a worker (so they sit in its local queue, where the
/// other worker steals them) each yield once and then complete. The resubmit after the
/// yielding poll hands the task to the local queue; a thief may run it to completion and
/// free it while the yielding worker is still in the scheduler.
#[test]
fn yield_resubmit_races_a_stealing_worker() {
    let rt = two_workers();
    for round in 0..rounds(1500) {
        let (done_tx, done_rx) = mpsc::channel();
        // The spawner runs on a worker, so its spawns go to that worker's queues.
        drop(rt.spawn(async move {
            for index in 0..TASKS {
                let done = done_tx.clone();
                drop(runnel::spawn(async move {
                    runnel::task::yield_now().await;
                    done.send((index, ())).unwrap();
                }));
            }
        }));
        collect(&done_rx, "completed", round);
    }
}
