//! Unit tests of the raw task against a tiny scheduler, written to run under Miri (with
//! strict provenance), which checks every access to the allocation and reports leaks:
//!
//! ```text
//! MIRIFLAGS="-Zmiri-strict-provenance" cargo +nightly miri test -p runnel-executor --lib task
//! ```
//!
//! (about 25 s; it also passes with `-Zmiri-tree-borrows`, and the thread tests in `wake`
//! with `-Zmiri-many-seeds=0..16`). This suite found a use-after-free under Stacked
//! Borrows when it was written: `store_and_complete` freed the task while a `&Cell`
//! argument of its caller still pointed into it (see the comment there).
//!
//! Scenarios: poll to completion; the `JoinHandle` dropped before/after completion and
//! waiting on it; wakes by value/by reference while idle, running and complete; abort in
//! each state; panics (in poll and in `Drop`); shutdown of queued, idle, running and
//! complete tasks; wakers outliving everything; wakes from other threads; and one
//! exhaustive test over every sequence of lifecycle events up to a length.
//!
//! Besides the counters, every test ends with `TestScheduler::finish`, which asserts that
//! the scheduler's `Arc` is unique again: each task allocation holds one, so a leaked task
//! fails the test even without Miri.

// Waking through a clone (by value) is a path under test, not a slip.
#![allow(clippy::waker_clone_wake)]

use std::collections::VecDeque;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use super::{new_task, Id, JoinError, JoinHandle, Notified, OwnedTasks, Schedule, Task};

/// Miri is ~1000× slower: shrink loops and thread counts there.
const fn scaled(normal: usize, miri: usize) -> usize {
    if cfg!(miri) {
        miri
    } else {
        normal
    }
}

/// An owner id no real runtime of this test binary uses.
const OWNER: u64 = u64::MAX;

struct TestScheduler {
    queue: Mutex<VecDeque<Notified<Arc<TestScheduler>>>>,
    owned: OwnedTasks<Arc<TestScheduler>>,
    yields: AtomicUsize,
    /// Run a scheduled task at once, inside `schedule`, instead of queueing it: the most
    /// hostile scheduler for the task's own lifetime (the task may complete and be released
    /// before `schedule` returns, and `schedule` then still reads `self`, which lives in the
    /// task's cell).
    run_inline: AtomicBool,
    inline_runs: AtomicUsize,
}

impl Schedule for Arc<TestScheduler> {
    fn schedule(&self, task: Notified<Self>) {
        if self.run_inline.load(SeqCst) {
            task.run();
            // Touches `self` after the task may have completed (the bug this guards).
            self.inline_runs.fetch_add(1, SeqCst);
            return;
        }
        self.queue.lock().unwrap().push_back(task);
    }

    fn yield_now(&self, task: Notified<Self>) {
        self.yields.fetch_add(1, SeqCst);
        self.schedule(task);
    }

    fn release(&self, task: &Task<Self>) -> Option<Task<Self>> {
        self.owned.remove(task)
    }

    fn owner(&self) -> u64 {
        OWNER
    }
}

impl TestScheduler {
    fn new() -> Arc<TestScheduler> {
        Arc::new(TestScheduler {
            queue: Mutex::new(VecDeque::new()),
            owned: OwnedTasks::new(4),
            yields: AtomicUsize::new(0),
            run_inline: AtomicBool::new(false),
            inline_runs: AtomicUsize::new(0),
        })
    }

    #[track_caller]
    fn spawn<F>(self: &Arc<Self>, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let id = Id::next();
        let (task, notified, join) = new_task(future, self.clone(), id);
        if let Some(notified) = self.owned.bind(task, notified, Location::caller()) {
            self.schedule(notified);
        }
        join
    }

    fn queued(&self) -> usize {
        self.queue.lock().unwrap().len()
    }

    /// Runs the oldest queued task (outside the queue lock: the task may reschedule).
    fn run_one(&self) -> bool {
        let task = self.queue.lock().unwrap().pop_front();
        match task {
            Some(task) => {
                task.run();
                true
            }
            None => false,
        }
    }

    fn run_all(&self) -> usize {
        let mut runs = 0;
        while self.run_one() {
            runs += 1;
        }
        runs
    }

    /// The runtime's shutdown order: close the owned list (cancelling every task nobody
    /// runs), then drop the queued references.
    fn shutdown(&self) {
        self.owned.close_and_shutdown_all();
        let queued = std::mem::take(&mut *self.queue.lock().unwrap());
        drop(queued);
    }

    /// Shuts down and asserts every task allocation is gone (each holds an `Arc` of us).
    #[track_caller]
    fn finish(self: Arc<Self>) {
        self.shutdown();
        assert_eq!(self.owned.len(), 0);
        assert_eq!(Arc::strong_count(&self), 1, "a task allocation leaked");
    }
}

/// Polls, drops and completions of one scripted future.
#[derive(Default)]
struct Counts {
    polls: AtomicUsize,
    drops: AtomicUsize,
    completed: AtomicBool,
}

impl Counts {
    fn polls(&self) -> usize {
        self.polls.load(SeqCst)
    }
    fn drops(&self) -> usize {
        self.drops.load(SeqCst)
    }
}

/// What a [`Scripted`] future does on one poll.
enum Step {
    /// Store a clone of the waker in the slot and return `Pending`.
    Park,
    /// Wake itself by reference during the poll and return `Pending`.
    WakeByRef,
    /// Wake itself by value (a clone) during the poll and return `Pending`.
    WakeByVal,
    /// Return `Ready` with an output that counts its drops.
    Ready,
    /// Panic.
    Panic,
}

/// A future that follows a script of steps, counting polls and its drop.
struct Scripted {
    steps: VecDeque<Step>,
    counts: Arc<Counts>,
    out_drops: Arc<AtomicUsize>,
    slot: Arc<Mutex<Option<Waker>>>,
}

/// An output that counts its drops.
#[derive(Debug)]
struct Out(Arc<AtomicUsize>);

impl Drop for Out {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

impl Future for Scripted {
    type Output = Out;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Out> {
        self.counts.polls.fetch_add(1, SeqCst);
        match self
            .steps
            .pop_front()
            .expect("polled more often than scripted")
        {
            Step::Park => {
                *self.slot.lock().unwrap() = Some(cx.waker().clone());
                Poll::Pending
            }
            Step::WakeByRef => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Step::WakeByVal => {
                cx.waker().clone().wake();
                Poll::Pending
            }
            Step::Ready => {
                self.counts.completed.store(true, SeqCst);
                Poll::Ready(Out(self.out_drops.clone()))
            }
            Step::Panic => panic!("scripted panic"),
        }
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.counts.drops.fetch_add(1, SeqCst);
    }
}

/// The test's view of one scripted task.
struct Probe {
    counts: Arc<Counts>,
    out_drops: Arc<AtomicUsize>,
    slot: Arc<Mutex<Option<Waker>>>,
}

impl Probe {
    fn new() -> Probe {
        Probe {
            counts: Arc::default(),
            out_drops: Arc::default(),
            slot: Arc::default(),
        }
    }

    fn future(&self, steps: impl IntoIterator<Item = Step>) -> Scripted {
        Scripted {
            steps: steps.into_iter().collect(),
            counts: self.counts.clone(),
            out_drops: self.out_drops.clone(),
            slot: self.slot.clone(),
        }
    }

    fn out_drops(&self) -> usize {
        self.out_drops.load(SeqCst)
    }

    /// The waker the future parked with.
    fn waker(&self) -> Waker {
        self.slot
            .lock()
            .unwrap()
            .clone()
            .expect("the future has not parked")
    }

    fn take_waker(&self) -> Option<Waker> {
        self.slot.lock().unwrap().take()
    }
}

/// A waker that counts its wakes; `Arc::strong_count` tells whether clones are alive.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

impl CountingWaker {
    fn new() -> (Arc<CountingWaker>, Waker) {
        let counter = Arc::new(CountingWaker::default());
        (counter.clone(), Waker::from(counter))
    }
    fn wakes(&self) -> usize {
        self.0.load(SeqCst)
    }
}

fn poll_join<T>(handle: &mut JoinHandle<T>, waker: &Waker) -> Poll<Result<T, JoinError>> {
    Pin::new(handle).poll(&mut Context::from_waker(waker))
}

#[track_caller]
fn ready<T>(poll: Poll<Result<T, JoinError>>) -> Result<T, JoinError> {
    match poll {
        Poll::Ready(result) => result,
        Poll::Pending => panic!("the JoinHandle is not ready"),
    }
}

mod abort;
mod exhaustive;
mod join;
mod list;
mod panic;
mod shutdown;
mod wake;
