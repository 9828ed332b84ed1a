//! `Injector`: the global run queue, for tasks woken or spawned off the worker threads
//! (the poller, the blocking pool, foreign threads) and for local-queue overflow.
//!
//! Built on `crossbeam_queue::SegQueue` (lock-free, unbounded). The only addition is
//! `close`: after shutdown drained it, a late push (a foreign thread waking a task of a
//! dropped runtime) must not leave a task referenced by the queue forever — the task
//! holds the scheduler, which holds the queue: a cycle. Push and close each check the
//! other's flag after their own step (both SeqCst), so one of them always drains.
//!
//! Emptiness and length are the queue's own head and tail indices (SeqCst loads): a push
//! is visible to `is_empty` from its SeqCst CAS on the tail, which is what the parking
//! protocol's Dekker pairing needs (push, fence, read the idle count; count idle, fence,
//! `is_empty`). A separate length counter would cost every push and pop one more atomic
//! read-modify-write on a line that the spawning thread and every worker write.

use std::sync::atomic::{AtomicBool, Ordering::*};

use crossbeam_queue::SegQueue;

use super::local_queue::Overflow;
use crate::task::{Notified, Schedule};

pub(crate) struct Injector<S: 'static> {
    queue: SegQueue<Notified<S>>,
    closed: AtomicBool,
}

impl<S: Schedule> Injector<S> {
    pub(crate) fn new() -> Injector<S> {
        Injector {
            queue: SegQueue::new(),
            closed: AtomicBool::new(false),
        }
    }

    pub(crate) fn push(&self, task: Notified<S>) {
        if self.closed.load(SeqCst) {
            return drop(task);
        }
        self.queue.push(task);
        if self.closed.load(SeqCst) {
            self.drain();
        }
    }

    pub(crate) fn pop(&self) -> Option<Notified<S>> {
        // Two plain loads first: `SegQueue::pop` on an empty queue runs a SeqCst fence.
        if self.queue.is_empty() {
            return None;
        }
        self.queue.pop()
    }

    /// Whether the queue holds no task (SeqCst: see the module docs).
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Tasks queued (a snapshot, to size a batch).
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Refuses later pushes and drops what is queued (the tasks were shut down already;
    /// this drops their `Notified` references).
    pub(crate) fn close(&self) {
        self.closed.store(true, SeqCst);
        self.drain();
    }

    fn drain(&self) {
        while let Some(task) = self.queue.pop() {
            drop(task);
        }
    }
}

impl<S: Schedule> Overflow<S> for Injector<S> {
    fn push_batch(&self, tasks: impl Iterator<Item = Notified<S>>) {
        for task in tasks {
            self.push(task);
        }
    }
}
