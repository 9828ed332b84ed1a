//! `Injector`: the global run queue, for tasks woken or spawned off the worker threads
//! (the poller, the blocking pool, foreign threads) and for local-queue overflow.
//!
//! Built on `crossbeam_queue::SegQueue` (lock-free, unbounded). The only addition is
//! `close`: after shutdown drained it, a late push (a foreign thread waking a task of a
//! dropped runtime) must not leave a task referenced by the queue forever — the task
//! holds the scheduler, which holds the queue: a cycle. Push and close each check the
//! other's flag after their own step (both SeqCst), so one of them always drains.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};

use crossbeam_queue::SegQueue;

use super::local_queue::Overflow;
use crate::task::{Notified, Schedule};

pub(crate) struct Injector<S: 'static> {
    queue: SegQueue<Notified<S>>,
    /// Maintained beside the queue so "is there global work?" is one load.
    len: AtomicUsize,
    closed: AtomicBool,
}

impl<S: Schedule> Injector<S> {
    pub(crate) fn new() -> Injector<S> {
        Injector {
            queue: SegQueue::new(),
            len: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        }
    }

    pub(crate) fn push(&self, task: Notified<S>) {
        if self.closed.load(SeqCst) {
            return drop(task);
        }
        self.queue.push(task);
        self.len.fetch_add(1, SeqCst);
        if self.closed.load(SeqCst) {
            self.drain();
        }
    }

    pub(crate) fn pop(&self) -> Option<Notified<S>> {
        if self.len.load(Acquire) == 0 {
            return None;
        }
        let task = self.queue.pop()?;
        self.len.fetch_sub(1, AcqRel);
        Some(task)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len.load(SeqCst) == 0
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Acquire)
    }

    /// Refuses later pushes and drops what is queued (the tasks were shut down already;
    /// this drops their `Notified` references).
    pub(crate) fn close(&self) {
        self.closed.store(true, SeqCst);
        self.drain();
    }

    fn drain(&self) {
        while let Some(task) = self.queue.pop() {
            self.len.fetch_sub(1, AcqRel);
            drop(task);
        }
    }
}

impl<S: Schedule> Overflow<S> for Injector<S> {
    fn push_batch(&self, tasks: Vec<Notified<S>>) {
        for task in tasks {
            self.push(task);
        }
    }
}
