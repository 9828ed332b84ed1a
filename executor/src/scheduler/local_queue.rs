//! `LocalQueue`: a worker's bounded run queue. The owner pushes and pops; any other worker
//! may steal half of it.
//!
//! The algorithm is Go's `runq` (`runtime/proc.go`: `runqput`, `runqget`, `runqgrab`): a
//! ring of `CAPACITY` slots with a `head` that owner and thieves advance by CAS, and a
//! `tail` only the owner writes. Unlike Go (and crossbeam-deque's benign race) the slots
//! are `AtomicPtr`, so a thief reading a slot the owner is about to reuse is a relaxed
//! atomic read, not a data race; the thief then fails its CAS because `head` moved.
//!
//! Invariants:
//! - Only the owner thread writes `tail` and the slots; `tail - head <= CAPACITY`.
//! - Slots in `[head, tail)` hold tasks the queue owns (one `Notified` reference each).
//! - A thief copies slots, then claims them with one CAS on `head`; on failure the copies
//!   are discarded (they were never owned).
//! - Indices are `u32` and wrap; an ABA on `head` would need 2^32 pops between a thief's
//!   load and its CAS.

use std::marker::PhantomData;
use std::ptr::{self, NonNull};

use crate::loom::atomic::{AtomicPtr, AtomicU32, Ordering::*};
use crate::task::{Header, Notified, Schedule};

#[cfg(not(loom))]
pub(crate) const CAPACITY: usize = 256;
/// Small under loom so the model explores full and overflowing queues.
#[cfg(loom)]
pub(crate) const CAPACITY: usize = 4;
const MASK: u32 = CAPACITY as u32 - 1;

#[cfg(all(test, loom))]
mod loom_tests;
#[cfg(all(test, not(loom)))]
mod versus_array_queue;

/// Where a full queue moves half of its tasks (the global injector).
pub(crate) trait Overflow<S: Schedule> {
    /// Takes the tasks as they are read out of the ring: collecting them first would mean
    /// a 1 KiB `Vec` per overflow, an allocation large enough to make glibc consolidate its
    /// fast bins, which hold the task cells other workers just freed (BENCHMARKS.md).
    fn push_batch(&self, tasks: impl Iterator<Item = Notified<S>>);
}

pub(crate) struct LocalQueue<S: 'static> {
    head: AtomicU32,
    tail: AtomicU32,
    slots: Box<[AtomicPtr<Header>]>,
    _s: PhantomData<S>,
}

/// The result of a steal attempt.
pub(crate) enum Steal<T> {
    Empty,
    Success(T),
}

impl<S: Schedule> LocalQueue<S> {
    pub(crate) fn new() -> LocalQueue<S> {
        LocalQueue {
            head: AtomicU32::new(0),
            tail: AtomicU32::new(0),
            slots: (0..CAPACITY)
                .map(|_| AtomicPtr::new(ptr::null_mut()))
                .collect(),
            _s: PhantomData,
        }
    }

    fn slot(&self, index: u32) -> &AtomicPtr<Header> {
        &self.slots[(index & MASK) as usize]
    }

    /// Approximate length (exact when called by the owner with no steal in flight).
    pub(crate) fn len(&self) -> usize {
        let head = self.head.load(Acquire);
        let tail = self.tail.load(Acquire);
        tail.wrapping_sub(head) as usize
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Owner only. Appends a task; if the ring is full, moves half of it plus `task` to
    /// `overflow` (Go's `runqputslow`).
    pub(crate) fn push_back(&self, task: Notified<S>, overflow: &impl Overflow<S>) {
        let mut task = task;
        loop {
            // Acquire: pairs with a thief's CAS (Release), so its reads of the slots it
            // claimed happen before we overwrite them.
            let head = self.head.load(Acquire);
            // Relaxed: only this thread writes tail.
            let tail = self.tail.load(Relaxed);
            if tail.wrapping_sub(head) < CAPACITY as u32 {
                self.slot(tail).store(task.into_raw().as_ptr(), Relaxed);
                // Release: publishes the slot to thieves that acquire tail.
                self.tail.store(tail.wrapping_add(1), Release);
                return;
            }
            match self.push_overflow(task, head, overflow) {
                Ok(()) => return,
                // A thief took some tasks meanwhile: there is room again.
                Err(t) => task = t,
            }
        }
    }

    fn push_overflow(
        &self,
        task: Notified<S>,
        head: u32,
        overflow: &impl Overflow<S>,
    ) -> Result<(), Notified<S>> {
        let half = CAPACITY as u32 / 2;
        // Claim the older half exactly as a thief would. Release: as in steal.
        if self
            .head
            .compare_exchange(head, head.wrapping_add(half), Release, Relaxed)
            .is_err()
        {
            return Err(task);
        }
        let claimed = (0..half).map(|i| {
            let ptr = self.slot(head.wrapping_add(i)).load(Relaxed);
            // SAFETY: the slot was in [head, tail) (owned by the queue) and our CAS moved
            // its ownership to us; only this thread writes slots, and it does not until
            // push_batch has returned, so it is not reused yet.
            unsafe { Notified::from_raw(NonNull::new_unchecked(ptr)) }
        });
        overflow.push_batch(claimed.chain(std::iter::once(task)));
        Ok(())
    }

    /// Takes the oldest task. Safe from any thread: the owner's pop and a single-task
    /// steal (sysmon sweeping a retaken role) are the same CAS on `head`.
    pub(crate) fn pop(&self) -> Option<Notified<S>> {
        let mut head = self.head.load(Acquire);
        loop {
            // Acquire: pairs with the owner's Release store after writing the slot.
            let tail = self.tail.load(Acquire);
            if head == tail {
                return None;
            }
            let ptr = self.slot(head).load(Relaxed);
            match self
                .head
                .compare_exchange_weak(head, head.wrapping_add(1), Release, Acquire)
            {
                // SAFETY: the CAS gave us the slot's task, as in pop.
                Ok(_) => return Some(unsafe { Notified::from_raw(NonNull::new_unchecked(ptr)) }),
                Err(actual) => head = actual,
            }
        }
    }

    /// Called by the thief, whose own queue is `dst`: moves half of `self` into `dst` and
    /// returns one of the moved tasks to run (Go's `runqsteal`).
    pub(crate) fn steal_into(&self, dst: &LocalQueue<S>) -> Steal<Notified<S>> {
        // Relaxed/Acquire: we are dst's owner.
        let dst_tail = dst.tail.load(Relaxed);
        let dst_head = dst.head.load(Acquire);
        if dst_tail.wrapping_sub(dst_head) > CAPACITY as u32 / 2 {
            // Room for a half is not guaranteed; we have enough work anyway.
            return Steal::Empty;
        }
        loop {
            // Acquire both: head pairs with other thieves' CAS, tail with the owner's
            // Release store after writing the slots we are about to read.
            let head = self.head.load(Acquire);
            let tail = self.tail.load(Acquire);
            let available = tail.wrapping_sub(head);
            let n = available - available / 2;
            if n == 0 {
                return Steal::Empty;
            }
            if n > CAPACITY as u32 / 2 {
                // head and tail were read at different moments; try again.
                crate::loom::spin_loop();
                continue;
            }
            for i in 0..n {
                let ptr = self.slot(head.wrapping_add(i)).load(Relaxed);
                // dst's slots past its tail are free and only we (its owner) write them.
                dst.slot(dst_tail.wrapping_add(i)).store(ptr, Relaxed);
            }
            // Release: our slot reads happen before the owner reuses them (it acquires
            // head). AcqRel on success is not needed beyond that.
            if self
                .head
                .compare_exchange(head, head.wrapping_add(n), Release, Relaxed)
                .is_ok()
            {
                let last = dst.slot(dst_tail.wrapping_add(n - 1)).load(Relaxed);
                if n > 1 {
                    // Release: publish the copied slots to dst's thieves.
                    dst.tail.store(dst_tail.wrapping_add(n - 1), Release);
                }
                // SAFETY: our CAS moved ownership of these n tasks to us.
                return Steal::Success(unsafe { Notified::from_raw(NonNull::new_unchecked(last)) });
            }
            crate::loom::spin_loop();
        }
    }
}

impl<S: 'static> Drop for LocalQueue<S> {
    fn drop(&mut self) {
        // The runtime drains every queue at shutdown before dropping it.
        if !std::thread::panicking() {
            let head = self.head.load(Relaxed);
            let tail = self.tail.load(Relaxed);
            debug_assert_eq!(head, tail, "local queue dropped with tasks in it");
        }
    }
}
