//! `OwnedTasks`: every live task of a runtime, in sharded intrusive lists.
//!
//! The list holds one reference to each task from spawn until completion, so shutdown can
//! reach tasks no queue holds (a task waiting for I/O is referenced only by its wakers),
//! and the deadlock detector can walk the waiting tasks.
//!
//! Invariants:
//! - A task's `links` are read and written only under the lock of shard `id % shards`.
//! - A task is linked (the list holds its reference) exactly when it has a `prev` or is
//!   its shard's `head`: no separate flag, so the header stays 8 bytes smaller.
//! - Once `closed` is set (under every shard lock), no task is linked again: `bind`
//!   shuts the task down instead, so nothing spawned during shutdown outlives it.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::raw::Header;
use super::{Notified, Schedule, Task};

#[derive(Default)]
pub(crate) struct Links {
    prev: Option<NonNull<Header>>,
    next: Option<NonNull<Header>>,
}

struct Shard {
    head: Option<NonNull<Header>>,
    len: usize,
}

/// One shard's lock on a line (two, for the adjacent-line prefetcher) of its own: packed
/// 24-byte mutexes would put two or three shards on one line, so a spawn on one thread and
/// a completion on another would bounce a line between them even for different shards.
#[repr(align(128))]
struct PaddedShard(Mutex<Shard>);

// SAFETY: the shard's pointers are only dereferenced under its lock, and they point to
// tasks the list holds a reference to (so they are alive and Send, see Task).
unsafe impl Send for Shard {}

pub(crate) struct OwnedTasks<S: 'static> {
    shards: Box<[PaddedShard]>,
    closed: AtomicBool,
    _s: std::marker::PhantomData<S>,
}

fn links<'a>(header: NonNull<Header>) -> &'a crate::loom::UnsafeCell<Links> {
    // SAFETY: the caller holds a reference to the task (directly or through the list).
    unsafe { &header.as_ref().links }
}

impl<S: Schedule> OwnedTasks<S> {
    pub(crate) fn new(shards: usize) -> OwnedTasks<S> {
        let shards = shards.next_power_of_two().max(1);
        OwnedTasks {
            shards: (0..shards)
                .map(|_| PaddedShard(Mutex::new(Shard { head: None, len: 0 })))
                .collect(),
            closed: AtomicBool::new(false),
            _s: std::marker::PhantomData,
        }
    }

    fn shard(&self, header: &Header) -> MutexGuard<'_, Shard> {
        let index = header.id().as_u64() as usize & (self.shards.len() - 1);
        self.shards[index]
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Links a new task, handing back its first `Notified` to submit; or, if the list is
    /// closed (runtime shutting down), cancels the task and returns `None`.
    pub(crate) fn bind(&self, task: Task<S>, notified: Notified<S>) -> Option<Notified<S>> {
        let mut shard = self.shard(task.header());
        if self.closed.load(Ordering::Acquire) {
            drop(shard);
            drop(notified);
            task.shutdown();
            return None;
        }
        let ptr = task.into_raw();
        let old_head = shard.head;
        links(ptr).with_mut(|l| {
            // SAFETY: we hold the shard lock; the task is not linked yet.
            let l = unsafe { &mut *l };
            l.prev = None;
            l.next = old_head;
        });
        if let Some(h) = old_head {
            // SAFETY: h is linked in this shard and we hold its lock.
            links(h).with_mut(|l| unsafe { (*l).prev = Some(ptr) });
        }
        shard.head = Some(ptr);
        shard.len += 1;
        Some(notified)
    }

    /// Unlinks a completed task, returning the list's reference (None if shutdown already
    /// took it).
    pub(crate) fn remove(&self, task: &Task<S>) -> Option<Task<S>> {
        let ptr = task.header_ptr();
        let mut shard = self.shard(task.header());
        // SAFETY: shard lock held; the caller holds a reference to the task.
        let has_prev = links(ptr).with(|l| unsafe { (*l).prev.is_some() });
        if !has_prev && shard.head != Some(ptr) {
            return None;
        }
        Self::unlink(&mut shard, ptr);
        // SAFETY: the list's reference, which `bind` took with into_raw.
        Some(unsafe { Task::from_header(ptr) })
    }

    fn unlink(shard: &mut Shard, ptr: NonNull<Header>) {
        // SAFETY: the caller holds the shard lock and ptr is linked in this shard.
        let (prev, next) = links(ptr).with_mut(|l| unsafe {
            let l = &mut *l;
            (l.prev.take(), l.next.take())
        });
        match prev {
            // SAFETY: linked neighbours in the same shard, lock held.
            Some(p) => links(p).with_mut(|l| unsafe { (*l).next = next }),
            None => shard.head = next,
        }
        if let Some(n) = next {
            // SAFETY: as above.
            links(n).with_mut(|l| unsafe { (*l).prev = prev });
        }
        shard.len -= 1;
    }

    /// Closes the list and shuts every task down (cancelling it unless a worker runs it).
    pub(crate) fn close_and_shutdown_all(&self) {
        for shard in self.shards.iter() {
            let _guard = shard.0.lock().unwrap_or_else(|e| e.into_inner());
            self.closed.store(true, Ordering::Release);
        }
        for shard in self.shards.iter() {
            loop {
                let task = {
                    let mut shard = shard.0.lock().unwrap_or_else(|e| e.into_inner());
                    let Some(head) = shard.head else { break };
                    Self::unlink(&mut shard, head);
                    // SAFETY: the list's reference to a task we just unlinked.
                    unsafe { Task::<S>::from_header(head) }
                };
                // Outside the lock: cancelling runs the future's Drop, user code.
                task.shutdown();
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.0.lock().unwrap_or_else(|e| e.into_inner()).len)
            .sum()
    }

    /// Visits every linked task under its shard's lock until `f` returns false. `f` must
    /// not lock the list again (it runs under a shard lock) and must not run user code.
    pub(crate) fn for_each_while(&self, mut f: impl FnMut(&Header) -> bool) -> bool {
        for shard in self.shards.iter() {
            let shard = shard.0.lock().unwrap_or_else(|e| e.into_inner());
            let mut cursor = shard.head;
            while let Some(ptr) = cursor {
                // SAFETY: linked, so the list's reference keeps it alive; lock held.
                let header = unsafe { ptr.as_ref() };
                if !f(header) {
                    return false;
                }
                // SAFETY: lock held.
                cursor = links(ptr).with(|l| unsafe { (*l).next });
            }
        }
        true
    }
}

impl<S: 'static> Drop for OwnedTasks<S> {
    fn drop(&mut self) {
        // Every task holds the scheduler (which owns this list) alive until it is
        // unlinked, so by the time the list drops it must be empty.
        debug_assert!(self.shards.iter_mut().all(|s| s
            .0
            .get_mut()
            .map(|s| s.head.is_none())
            .unwrap_or(true)));
    }
}
