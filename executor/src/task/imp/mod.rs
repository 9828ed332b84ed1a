//! Tasks: one allocation per spawned future, and the handles that reference it.
//!
//! # The allocation
//!
//! A task is a `Cell<F, S>` (see `raw.rs`): a type-erased [`Header`] first (state word
//! with the poll count, id, hold count, owned-list slot, vtable, wait slot, one-word
//! join-waker slot: 56 bytes; the spawn location is in the owned list), then the scheduler handle `S` and the `Stage` (the future, then its output,
//! untagged). `#[repr(C)]` puts the header
//! at offset 0, so a `NonNull<Header>` is all any handle stores.
//!
//! # Handles and what each owns (each is one reference in the state word)
//!
//! | handle | owns | made by | consumed by |
//! | --- | --- | --- | --- |
//! | [`Task`] | membership of the runtime's [`OwnedTasks`] list | spawn | completion or shutdown |
//! | [`Notified`] | the right to run the task once (it sits in a run queue) | spawn, a wake | a worker |
//! | [`JoinHandle`] | the right to read the output | spawn | the user |
//! | `Waker` | the right to submit a `Notified` | the executor's `Context` | wake / drop |
//!
//! # Who may touch which field
//!
//! - `Stage` (future/output): only the thread that set `RUNNING` (a worker polling or
//!   cancelling, or shutdown that claimed the task), or, once `COMPLETE` is set, the
//!   `JoinHandle` (reads the output) or the completer when there is no `JoinHandle`.
//! - The join-waker slot: by the `JOIN_WAKER` bit protocol described in `state.rs`.
//! - Owned-list slot: only under the lock of the list shard the task belongs to.
//! - `holds` is written by `JoinWaker`s (and the join slot's holds); `reason` by the
//!   task's own leaf futures during its poll (`runnel_reactor::wait`).
//!
//! # Wakers held by the runtime itself
//!
//! The deadlock detector must know whether a waiting task's wakers are all held by the
//! runtime (then nothing outside can wake it) or some are held elsewhere (a foreign thread
//! may wake it). The reactor's and the timers' wakers are covered by their waiter counts;
//! the remaining runtime-owned holder is a `JoinHandle`'s slot. A waker stored there is
//! wrapped in a [`JoinWaker`], which counts it in the awaiting task's `holds`
//! — incremented after the waker exists, decremented before it is dropped, so the count
//! never exceeds the real number and the detector can only err towards "maybe".

mod join;
mod join_slot;
mod list;
mod raw;
mod state;
mod waker;

#[cfg(all(test, not(loom)))]
mod tests;

pub use join::{AbortHandle, JoinError, JoinHandle};
pub(crate) use list::OwnedTasks;
pub(crate) use raw::{Header, WaitRecord};
pub(crate) use waker::JoinWaker;

use std::fmt;
use std::marker::PhantomData;
use std::num::NonZeroU64;
use std::ptr::NonNull;

use raw::RawTask;

/// The scheduler a task belongs to: where its wakes submit it, and the list that owns it.
///
/// The task module calls `schedule`/`yield_now` on the scheduler stored in the task's own
/// cell, and always holds a reference to the task of its own until the call returns, so an
/// implementation may go on using `self` after the `Notified` it queued has been run and
/// released by another thread.
pub(crate) trait Schedule: Send + Sync + Sized + 'static {
    /// Submits a task that was woken (or spawned, or yielded) to a run queue.
    fn schedule(&self, task: Notified<Self>);

    /// Submits a task that woke itself during its own poll (a yield): it must go behind
    /// the other runnable tasks, not ahead of them.
    fn yield_now(&self, task: Notified<Self>) {
        self.schedule(task);
    }

    /// The task completed: unlink it from the owned list, returning the list's reference.
    fn release(&self, task: &Task<Self>) -> Option<Task<Self>>;

    /// The task's poll panicked (its future is already dropped; its `JoinHandle` is
    /// completed with the panic right after this returns). Called on the polling thread,
    /// with the task still `RUNNING`.
    fn unhandled_panic(&self, _id: Id, _payload: &(dyn std::any::Any + Send)) {}

    /// The id of the runtime the task belongs to (`Shared::id`; 0 for none), so a
    /// `JoinHandle` of another runtime does not count as a holder inside this one. Read
    /// through the task's scheduler rather than stored in every header (8 bytes a task).
    fn owner(&self) -> u64;
}

/// A task's id, unique among the tasks of a process.
///
/// ```
/// # runnel_executor::Runtime::new().unwrap().block_on(async {
/// let handle = runnel_executor::spawn(async {});
/// println!("spawned task {}", handle.id());
/// # });
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Id(NonZeroU64);

impl Id {
    pub(crate) fn next() -> Id {
        use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
        // Relaxed: only uniqueness matters. This is a shared line, but written once per
        // spawn, never on the wake path.
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Id(NonZeroU64::new(NEXT.fetch_add(1, Relaxed)).expect("task ids exhausted"))
    }

    pub(crate) fn as_u64(self) -> u64 {
        self.0.get()
    }

    /// The id `as_u64` gave (`None` for 0, which no task has).
    pub(crate) fn from_u64(id: u64) -> Option<Id> {
        NonZeroU64::new(id).map(Id)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The owned list's reference to a task.
pub(crate) struct Task<S: 'static> {
    raw: RawTask,
    _s: PhantomData<S>,
}

/// A reference that entitles its holder to run the task once.
pub(crate) struct Notified<S: 'static>(Task<S>);

// SAFETY: 1. the handles only reach the task through the header's atomics and the state
// protocol, which serialises access to the future (RUNNING) and the output (COMPLETE);
// 2. `spawn` requires `F: Send` and `F::Output: Send` for every task the runtime creates,
// so moving the future or output to another thread with the handle is sound.
unsafe impl<S: Schedule> Send for Task<S> {}
// SAFETY: as for `Send`: `&Task` only exposes atomic operations on the header.
unsafe impl<S: Schedule> Sync for Task<S> {}

impl<S: Schedule> Task<S> {
    fn from_raw(raw: RawTask) -> Task<S> {
        Task {
            raw,
            _s: PhantomData,
        }
    }

    pub(crate) fn header(&self) -> &Header {
        self.raw.header()
    }

    pub(crate) fn header_ptr(&self) -> NonNull<Header> {
        self.raw.ptr()
    }

    /// Shutdown: cancel the task unless a worker is running it; consumes the reference.
    pub(crate) fn shutdown(self) {
        let raw = self.raw;
        std::mem::forget(self);
        raw.shutdown();
    }

    /// # Safety
    /// `ptr` must come from `Task::into_raw` of the same `S`, and not be used again.
    pub(crate) unsafe fn from_header(ptr: NonNull<Header>) -> Task<S> {
        Task::from_raw(RawTask::from_ptr(ptr))
    }

    pub(crate) fn into_raw(self) -> NonNull<Header> {
        let ptr = self.raw.ptr();
        std::mem::forget(self);
        ptr
    }
}

impl<S: 'static> Drop for Task<S> {
    fn drop(&mut self) {
        self.raw.drop_reference();
    }
}

impl<S: Schedule> Notified<S> {
    /// Polls (or cancels) the task, consuming this reference.
    pub(crate) fn run(self) {
        let raw = self.0.raw;
        std::mem::forget(self);
        raw.poll();
    }

    /// Who the task is (for the report of a task blocking its worker).
    pub(crate) fn id(&self) -> Id {
        self.0.header().id
    }

    /// Cancels a task that was never run (a blocking job at shutdown); consumes this
    /// reference.
    pub(crate) fn shutdown(self) {
        let raw = self.0.raw;
        std::mem::forget(self);
        raw.shutdown();
    }

    pub(crate) fn into_raw(self) -> NonNull<Header> {
        let ptr = self.0.raw.ptr();
        std::mem::forget(self);
        ptr
    }

    /// # Safety
    /// `ptr` must come from `Notified::into_raw` of the same `S`, and not be used again.
    pub(crate) unsafe fn from_raw(ptr: NonNull<Header>) -> Notified<S> {
        Notified(Task::from_raw(RawTask::from_ptr(ptr)))
    }
}

/// Allocates a task. Returns the owned-list reference, the first `Notified` and the
/// `JoinHandle` (the state word starts with exactly these three references).
pub(crate) fn new_task<F, S>(
    future: F,
    scheduler: S,
    id: Id,
) -> (Task<S>, Notified<S>, JoinHandle<F::Output>)
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
    S: Schedule,
{
    let raw = RawTask::new(future, scheduler, id);
    (
        Task::from_raw(raw),
        Notified(Task::from_raw(raw)),
        JoinHandle::new(raw),
    )
}
