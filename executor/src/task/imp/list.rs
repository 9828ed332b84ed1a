//! `OwnedTasks`: every live task of a runtime, in sharded slabs.
//!
//! The list holds one reference to each task from spawn until completion, so shutdown can
//! reach tasks no queue holds (a task waiting for I/O is referenced only by its wakers),
//! and the deadlock detector can walk the waiting tasks.
//!
//! Each shard is a slab: a vector of entries (a task pointer and where the task was
//! spawned, which the header does not keep: see `raw::Header`) and a stack of its vacant
//! slots; a task
//! keeps its slot's index in its header (`list_slot`, 4 bytes beside its hold count). An
//! intrusive doubly-linked list would need 16 bytes in every header, and binding or
//! unlinking a task would write its neighbours' headers, lines that other threads are
//! polling or allocating nearby; here a bind or an unlink writes only the slab and the
//! task's own header.
//!
//! Invariants:
//! - A task's `list_slot` is read and written only under the lock of shard `id % shards`.
//! - A task is listed (the list holds its reference) exactly when its shard's
//!   `entries[list_slot]` points to it. `UNLISTED` is never a valid index.
//! - `free` holds exactly the indices of the vacant entries below `entries.len()`.
//! - Once `closed` is set (under every shard lock), no task is listed again: `bind` shuts
//!   the task down instead, so nothing spawned during shutdown outlives it.
//!
//! Memory: 16 bytes of slab per listed task, plus 4 per vacant slot. A shard keeps up to
//! `KEEP` slots' worth of capacity whatever happens (so the common rise and fall of a few
//! hundred tasks reallocates nothing); above that, a shard whose live tasks fall below a
//! quarter of its slots is compacted in place (its tasks' slots renumbered) and its
//! capacity trimmed, so a burst does not pin its peak. The work is paid for by the
//! removals since the slab last grew or shrank: at most 4/3 of an entry move per removal.

use std::panic::Location;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::raw::Header;
use super::{Notified, Schedule, Task};

/// The `list_slot` of a task that is not listed (never bound, or bind refused it).
pub(super) const UNLISTED: u32 = u32::MAX;

/// Slots a shard may keep without compacting or trimming (8 KiB of entries).
const KEEP: usize = 1024;

/// A listed task, and where it was spawned (for the detector's reports and dumps).
#[derive(Clone, Copy)]
struct Entry {
    ptr: NonNull<Header>,
    location: &'static Location<'static>,
}

#[derive(Default)]
struct Shard {
    /// Slot `i` holds the task whose `list_slot` is `i`, or nothing.
    entries: Vec<Option<Entry>>,
    /// The vacant slots of `entries`, most recently vacated last (reused first: its line
    /// is the warmest).
    free: Vec<u32>,
    /// Listed tasks (`entries` that are `Some`).
    len: usize,
}

// SAFETY: the shard's pointers are only dereferenced under its lock, and they point to
// tasks the list holds a reference to (so they are alive and Send, see Task).
unsafe impl Send for Shard {}

/// One shard's lock on a line (two, for the adjacent-line prefetcher) of its own: packed
/// mutexes would put several shards on one line, so a spawn on one thread and a
/// completion on another would bounce a line between them even for different shards.
#[repr(align(128))]
struct PaddedShard(Mutex<Shard>);

pub(crate) struct OwnedTasks<S: 'static> {
    shards: Box<[PaddedShard]>,
    closed: AtomicBool,
    _s: std::marker::PhantomData<S>,
}

fn slot_of(header: NonNull<Header>) -> u32 {
    // SAFETY: 1. the caller holds a reference to the task (directly or through the list),
    // so the header is alive; 2. the caller holds the lock of the task's shard, which
    // guards `list_slot`.
    unsafe { header.as_ref() }
        .list_slot
        .with(|slot| unsafe { *slot })
}

fn set_slot(header: NonNull<Header>, slot: u32) {
    // SAFETY: as in slot_of.
    unsafe { header.as_ref() }
        .list_slot
        .with_mut(|s| unsafe { *s = slot });
}

impl Shard {
    fn insert(&mut self, ptr: NonNull<Header>, location: &'static Location<'static>) {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                let slot = u32::try_from(self.entries.len())
                    .ok()
                    .filter(|&s| s != UNLISTED)
                    .expect("more than 2^32 - 1 live tasks in one owned-list shard");
                self.entries.push(None);
                slot
            }
        };
        self.entries[slot as usize] = Some(Entry { ptr, location });
        set_slot(ptr, slot);
        self.len += 1;
    }

    /// Unlists `ptr` if it is listed here.
    fn remove(&mut self, ptr: NonNull<Header>) -> bool {
        let slot = slot_of(ptr);
        if !matches!(self.entries.get(slot as usize), Some(Some(e)) if e.ptr == ptr) {
            return false;
        }
        self.entries[slot as usize] = None;
        set_slot(ptr, UNLISTED);
        self.len -= 1;
        if self.len == 0 {
            // Nothing listed: start over.
            self.entries.clear();
            self.free.clear();
            self.trim();
        } else if self.entries.len() > KEEP && self.len < self.entries.len() / 4 {
            self.compact();
        } else {
            self.free.push(slot);
        }
        true
    }

    /// Moves the listed tasks to the front, renumbering their slots, drops the vacant
    /// tail and trims the capacity.
    fn compact(&mut self) {
        let mut dense = 0;
        for i in 0..self.entries.len() {
            if let Some(entry) = self.entries[i] {
                if i != dense {
                    self.entries[dense] = Some(entry);
                    // dense < i < entries.len() <= u32::MAX (insert's check): it fits.
                    set_slot(entry.ptr, dense as u32);
                }
                dense += 1;
            }
        }
        self.entries.truncate(dense);
        self.free.clear();
        self.trim();
    }

    /// Gives back capacity beyond what the listed tasks and `KEEP` need.
    fn trim(&mut self) {
        let keep = KEEP.max(2 * self.len);
        if self.entries.capacity() > 2 * keep {
            self.entries.shrink_to(keep);
        }
        if self.free.capacity() > 2 * keep {
            self.free.shrink_to(keep);
        }
    }

    /// Takes any listed task out (shutdown).
    fn pop(&mut self) -> Option<NonNull<Header>> {
        while let Some(entry) = self.entries.pop() {
            if let Some(Entry { ptr, .. }) = entry {
                set_slot(ptr, UNLISTED);
                self.len -= 1;
                return Some(ptr);
            }
        }
        None
    }
}

impl<S: Schedule> OwnedTasks<S> {
    pub(crate) fn new(shards: usize) -> OwnedTasks<S> {
        let shards = shards.next_power_of_two().max(1);
        OwnedTasks {
            shards: (0..shards)
                .map(|_| PaddedShard(Mutex::new(Shard::default())))
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

    /// Lists a new task spawned at `location`, handing back its first `Notified` to
    /// submit; or, if the list is closed (runtime shutting down), cancels the task and
    /// returns `None`.
    pub(crate) fn bind(
        &self,
        task: Task<S>,
        notified: Notified<S>,
        location: &'static Location<'static>,
    ) -> Option<Notified<S>> {
        let mut shard = self.shard(task.header());
        if self.closed.load(Ordering::Acquire) {
            drop(shard);
            drop(notified);
            task.shutdown();
            return None;
        }
        shard.insert(task.into_raw(), location);
        Some(notified)
    }

    /// Unlists a completed task, returning the list's reference (None if shutdown already
    /// took it).
    pub(crate) fn remove(&self, task: &Task<S>) -> Option<Task<S>> {
        let ptr = task.header_ptr();
        if !self.shard(task.header()).remove(ptr) {
            return None;
        }
        // SAFETY: the list's reference, which `bind` took with into_raw.
        Some(unsafe { Task::from_header(ptr) })
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
                    let Some(ptr) = shard.pop() else { break };
                    // SAFETY: the list's reference to a task we just unlisted.
                    unsafe { Task::<S>::from_header(ptr) }
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

    /// Visits every listed task, with where it was spawned, under its shard's lock until
    /// `f` returns false. `f` must not lock the list again (it runs under a shard lock) and
    /// must not run user code.
    pub(crate) fn for_each_while(
        &self,
        mut f: impl FnMut(&Header, &'static Location<'static>) -> bool,
    ) -> bool {
        for shard in self.shards.iter() {
            let shard = shard.0.lock().unwrap_or_else(|e| e.into_inner());
            for entry in shard.entries.iter().flatten() {
                // SAFETY: listed, so the list's reference keeps it alive; lock held.
                if !f(unsafe { entry.ptr.as_ref() }, entry.location) {
                    return false;
                }
            }
        }
        true
    }

    /// Where the listed task `id` was spawned (`None`: not listed). Locks one shard and
    /// scans it: for the cold report of a task blocking its worker.
    pub(crate) fn location_of(&self, id: super::Id) -> Option<&'static Location<'static>> {
        let index = id.as_u64() as usize & (self.shards.len() - 1);
        let shard = self.shards[index]
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        shard
            .entries
            .iter()
            .flatten()
            // SAFETY: listed, so the list's reference keeps it alive; lock held.
            .find(|e| unsafe { e.ptr.as_ref() }.id() == id)
            .map(|e| e.location)
    }
}

impl<S: 'static> Drop for OwnedTasks<S> {
    fn drop(&mut self) {
        // Every task holds the scheduler (which owns this list) alive until it is
        // unlisted, so by the time the list drops it must be empty.
        debug_assert!(self.shards.iter_mut().all(|s| s
            .0
            .get_mut()
            .map(|s| s.len == 0)
            .unwrap_or(true)));
    }
}
