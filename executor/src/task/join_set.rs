//! `JoinSet`: a collection of spawned tasks whose outputs are taken in completion order.
//!
//! Each entry keeps its task's `JoinHandle` and a waker of its own (`EntryWaker`). The
//! entry waker is what the entry's `JoinHandle` is polled with, so it is the waker that
//! sits in the task's join-waker slot; when the task completes it pushes the entry's key
//! onto the set's ready queue and wakes the set's owner (whoever last polled `join_next`).
//! `join_next` polls only the entries on the ready queue, so joining N tasks costs O(N)
//! polls in all, not O(N²). A new entry starts on the ready queue: its first poll is what
//! installs its waker in the slot.
//!
//! Invariants:
//! - An entry is on the ready queue at most once per wake (`EntryWaker::queued`); a queue
//!   item carries the entry's generation, so an item left by a removed entry whose slab key
//!   was reused is skipped, never polled as the new entry.
//! - Wakers are woken and dropped outside the set's lock: dropping a task's waker may free
//!   the task, whose future may own a `JoinSet` whose `Drop` takes this lock.
//!
//! # The deadlock detector
//!
//! The owner's waker is stored in `Ready::owner`. It is reachable only from the entry
//! wakers — which never leave the join-waker slots of the set's tasks (the `Context` they
//! are lent through goes to `JoinHandle` polls only) — and from the `JoinSet`, which never
//! wakes it. So it fires only when a task of the set completes: a holder of the runtime's
//! own, like a `JoinHandle` slot. While every task of the set belongs to one runtime it is
//! stored as a [`JoinWaker`], which counts it in the owner's `holds` (the report then says
//! the owner waits on the "join of task N", N one of the set's tasks); a set that also
//! holds tasks of another runtime stores it plain, which the detector sees as a waker held
//! outside ("maybe", never a report). The counting rules of `JoinWaker` still hold:
//! incremented after the waker exists, decremented before it is dropped.
//!
//! The set's `JoinHandle`s are the runtime's `JoinHandle`s and are seen as such (made or
//! polled outside the runtime: "maybe"); a `JoinSet` moved to a thread outside the runtime
//! is the README's stated limit for a moved `JoinHandle`.

use std::collections::VecDeque;
use std::fmt;
use std::future::{poll_fn, Future};
use std::sync::atomic::{AtomicBool, Ordering::AcqRel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use slab::Slab;

use super::imp::{AbortHandle, Id, JoinError, JoinHandle, JoinWaker};
use crate::runtime::Handle;

/// A collection of tasks spawned on a runnel runtime, awaited in the order they complete.
///
/// Dropping a `JoinSet` aborts every task still in it (as tokio's does); use
/// [`detach_all`](JoinSet::detach_all) to let them run on.
///
/// ```
/// # runnel_executor::Runtime::new().unwrap().block_on(async {
/// use runnel_executor::task::JoinSet;
///
/// let mut set = JoinSet::new();
/// for i in 0..10u64 {
///     set.spawn(async move { i * i });
/// }
/// let mut sum = 0;
/// while let Some(result) = set.join_next().await {
///     sum += result.unwrap();
/// }
/// assert_eq!(sum, 285);
/// # });
/// ```
///
/// A set awaited while all of its tasks wait for nothing is a deadlock, and is reported:
///
/// ```should_panic
/// let rt = runnel_executor::Runtime::new().unwrap();
/// rt.block_on(async {
///     let mut set = runnel_executor::task::JoinSet::new();
///     set.spawn(std::future::pending::<()>());
///     set.join_next().await; // panics: all tasks are asleep - deadlock!
/// });
/// ```
pub struct JoinSet<T> {
    entries: Slab<Entry<T>>,
    ready: Arc<Ready>,
    next_generation: u64,
    /// The runtime (`Shared::id`) of every task of the set, while all of them belong to one:
    /// the owner's stored waker is then counted as held by that runtime (module docs).
    /// `None` once tasks of two runtimes were added, or before the first.
    counted_as: Option<u64>,
    mixed: bool,
}

struct Entry<T> {
    handle: JoinHandle<T>,
    /// Made once from `inner`, so the join-waker slot recognises it (`will_wake`) and
    /// re-polls do not clone it again.
    waker: Waker,
    inner: Arc<EntryWaker>,
}

/// The set's side that entry wakers reach.
struct Ready {
    state: Mutex<ReadyState>,
}

struct ReadyState {
    /// Entries to poll: `(slab key, generation)`.
    queue: VecDeque<(usize, u64)>,
    /// Who to wake when an entry is queued; taken by the wake.
    owner: Option<OwnerWaker>,
}

enum OwnerWaker {
    /// Counted as held by the runtime (every task of the set is of one runtime).
    Counted(JoinWaker),
    Plain(Waker),
}

impl OwnerWaker {
    fn new(waker: Waker, counted_as: Option<u64>) -> OwnerWaker {
        match counted_as {
            Some(owner) => OwnerWaker::Counted(JoinWaker::new(waker, owner)),
            None => OwnerWaker::Plain(waker),
        }
    }

    fn will_wake(&self, waker: &Waker) -> bool {
        match self {
            OwnerWaker::Counted(w) => w.will_wake(waker),
            OwnerWaker::Plain(w) => w.will_wake(waker),
        }
    }

    fn wake(self) {
        match self {
            // Woken by reference and then dropped: the hold is released before the
            // waker (JoinWaker's rule), never after.
            OwnerWaker::Counted(w) => w.wake_by_ref(),
            OwnerWaker::Plain(w) => w.wake(),
        }
    }
}

/// An entry's side of its waker. At least 4-aligned (the join-waker slot tags the
/// pointer), which its fields guarantee.
struct EntryWaker {
    key: usize,
    generation: u64,
    /// On the ready queue (or about to be polled from it).
    queued: AtomicBool,
    ready: Arc<Ready>,
}

/// The entry waker's vtable: a static of its own (not `Wake`'s), so the join-waker slot
/// knows it and keeps such a waker in one word, with no allocation (`join_slot.rs`).
pub(crate) static ENTRY_WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(entry_clone, entry_wake, entry_wake_by_ref, entry_drop);

/// A waker owning one `Arc<EntryWaker>` reference.
fn entry_waker(inner: Arc<EntryWaker>) -> Waker {
    let data = Arc::into_raw(inner).cast::<()>();
    // SAFETY: `data` is an `Arc<EntryWaker>` reference we own; the vtable's functions
    // treat it as exactly that (clone increments, drop decrements, wake consumes).
    unsafe { Waker::new(data, &ENTRY_WAKER_VTABLE) }
}

unsafe fn entry_clone(data: *const ()) -> RawWaker {
    // SAFETY: `data` is a live `Arc<EntryWaker>` reference (the waker being cloned).
    unsafe { Arc::increment_strong_count(data.cast::<EntryWaker>()) };
    RawWaker::new(data, &ENTRY_WAKER_VTABLE)
}

unsafe fn entry_wake(data: *const ()) {
    // SAFETY: the waker's reference, consumed by `wake`.
    let inner = unsafe { Arc::from_raw(data.cast::<EntryWaker>()) };
    inner.wake_by_ref();
}

unsafe fn entry_wake_by_ref(data: *const ()) {
    // SAFETY: the waker's reference, borrowed for the call.
    unsafe { &*data.cast::<EntryWaker>() }.wake_by_ref();
}

unsafe fn entry_drop(data: *const ()) {
    // SAFETY: the waker's reference, released once.
    drop(unsafe { Arc::from_raw(data.cast::<EntryWaker>()) });
}

const _: () = assert!(std::mem::align_of::<EntryWaker>() >= 4);

/// An entry waker of no set, and a probe of how many wakers share it (the join slot's
/// tests).
#[cfg(test)]
pub(crate) fn entry_waker_for_test() -> (Waker, impl Fn() -> usize) {
    let inner = Arc::new(EntryWaker {
        key: 0,
        generation: 0,
        queued: AtomicBool::new(false),
        ready: Arc::new(Ready {
            state: Mutex::new(ReadyState {
                queue: VecDeque::new(),
                owner: None,
            }),
        }),
    });
    let kept = inner.clone();
    (entry_waker(inner), move || Arc::strong_count(&kept) - 1)
}

impl EntryWaker {
    fn wake_by_ref(&self) {
        // AcqRel: the completer's writes (the task's output) happen before the poll that
        // clears this flag with a swap (see `poll_join_next_with_id`).
        if self.queued.swap(true, AcqRel) {
            return;
        }
        let owner = {
            let mut state = self.ready.lock();
            state.queue.push_back((self.key, self.generation));
            state.owner.take()
        };
        if let Some(owner) = owner {
            owner.wake();
        }
    }
}

impl Ready {
    fn lock(&self) -> MutexGuard<'_, ReadyState> {
        // Nothing under this lock runs user code, so a poisoned lock holds consistent data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T> Default for JoinSet<T> {
    fn default() -> Self {
        JoinSet::new()
    }
}

impl<T> JoinSet<T> {
    /// An empty set.
    pub fn new() -> JoinSet<T> {
        JoinSet {
            entries: Slab::new(),
            ready: Arc::new(Ready {
                state: Mutex::new(ReadyState {
                    queue: VecDeque::new(),
                    owner: None,
                }),
            }),
            next_generation: 0,
            counted_as: None,
            mixed: false,
        }
    }

    /// The number of tasks in the set (running, or finished but not yet joined).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the set holds no task.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<T: Send + 'static> JoinSet<T> {
    /// Spawns `task` on the current runtime and adds it to the set. The returned
    /// [`AbortHandle`] may be dropped; keeping one alive makes the deadlock detector count
    /// the task as possibly woken (see the README's rule).
    ///
    /// # Panics
    /// Outside a runtime, as [`spawn`](crate::spawn).
    #[track_caller]
    pub fn spawn<F>(&mut self, task: F) -> AbortHandle
    where
        F: Future<Output = T> + Send + 'static,
    {
        self.insert(crate::runtime::spawn(task))
    }

    /// Spawns `task` on the runtime of `handle` and adds it to the set.
    #[track_caller]
    pub fn spawn_on<F>(&mut self, task: F, handle: &Handle) -> AbortHandle
    where
        F: Future<Output = T> + Send + 'static,
    {
        self.insert(handle.spawn(task))
    }

    /// Runs `f` on the current runtime's blocking pool and adds it to the set. Aborting a
    /// blocking job that already started has no effect (it runs to completion).
    ///
    /// # Panics
    /// Outside a runtime, as [`spawn_blocking`](crate::spawn_blocking).
    #[track_caller]
    pub fn spawn_blocking<F>(&mut self, f: F) -> AbortHandle
    where
        F: FnOnce() -> T + Send + 'static,
    {
        self.insert(crate::runtime::spawn_blocking(f))
    }

    /// Runs `f` on the blocking pool of `handle`'s runtime and adds it to the set.
    #[track_caller]
    pub fn spawn_blocking_on<F>(&mut self, f: F, handle: &Handle) -> AbortHandle
    where
        F: FnOnce() -> T + Send + 'static,
    {
        self.insert(handle.spawn_blocking(f))
    }

    fn insert(&mut self, handle: JoinHandle<T>) -> AbortHandle {
        let abort = handle.abort_handle();
        self.note_runtime(handle.owner());
        let generation = self.next_generation;
        self.next_generation += 1;
        let vacant = self.entries.vacant_entry();
        let key = vacant.key();
        let inner = Arc::new(EntryWaker {
            key,
            generation,
            queued: AtomicBool::new(true),
            ready: self.ready.clone(),
        });
        vacant.insert(Entry {
            handle,
            waker: entry_waker(inner.clone()),
            inner,
        });
        // Queued so that the first `join_next` polls it and installs its waker. No owner
        // wake: `join_next` borrows the set mutably, so no poll of it is pending now.
        self.ready.lock().queue.push_back((key, generation));
        abort
    }

    /// Tracks whether every task of the set is of one runtime (module docs).
    fn note_runtime(&mut self, owner: u64) {
        if self.mixed {
            return;
        }
        match self.counted_as {
            Some(prev) if prev != owner => {
                self.mixed = true;
                self.counted_as = None;
                // A task of another runtime may now wake the owner: the stored waker is
                // no longer the runtime's own. Re-store it uncounted before that task's
                // entry waker can be installed (its first poll is in `join_next`).
                let mut state = self.ready.lock();
                let old = state.owner.take();
                let demoted = old.as_ref().map(|w| match w {
                    OwnerWaker::Counted(w) => OwnerWaker::Plain(w.waker().clone()),
                    OwnerWaker::Plain(w) => OwnerWaker::Plain(w.clone()),
                });
                state.owner = demoted;
                drop(state);
                drop(old);
            }
            _ => self.counted_as = Some(owner),
        }
    }
}

impl<T: 'static> JoinSet<T> {
    /// Waits for any task of the set to complete and returns its output, or `None` if the
    /// set is empty. Outputs come in completion order; a panic or cancellation comes back
    /// as a [`JoinError`].
    ///
    /// Cancel-safe: if the future is dropped before it completes, no output is lost (the
    /// next call returns it).
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        poll_fn(|cx| self.poll_join_next(cx)).await
    }

    /// As [`join_next`](JoinSet::join_next), with the id of the task that completed.
    pub async fn join_next_with_id(&mut self) -> Option<Result<(Id, T), JoinError>> {
        poll_fn(|cx| self.poll_join_next_with_id(cx)).await
    }

    /// The output of a task that has already completed, without waiting: `None` if no task
    /// of the set has completed (or the set is empty).
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        self.try_join_next_with_id().map(|r| r.map(|(_, out)| out))
    }

    /// As [`try_join_next`](JoinSet::try_join_next), with the task's id.
    pub fn try_join_next_with_id(&mut self) -> Option<Result<(Id, T), JoinError>> {
        loop {
            let (key, generation) = self.ready.lock().queue.pop_front()?;
            if let Some(out) = self.poll_entry(key, generation) {
                return Some(out);
            }
        }
    }

    /// Polls for the next completed task: `Ready(None)` if the set is empty; `Pending`
    /// (with `cx`'s waker stored) if no task has completed.
    pub fn poll_join_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, JoinError>>> {
        self.poll_join_next_with_id(cx)
            .map(|o| o.map(|r| r.map(|(_, out)| out)))
    }

    /// As [`poll_join_next`](JoinSet::poll_join_next), with the task's id.
    pub fn poll_join_next_with_id(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<(Id, T), JoinError>>> {
        if self.entries.is_empty() {
            return Poll::Ready(None);
        }
        // One unit of budget per call, like awaiting one `JoinHandle`.
        if runnel_reactor::coop::poll_proceed(cx).is_pending() {
            return Poll::Pending;
        }
        loop {
            let (key, generation) = {
                let mut state = self.ready.lock();
                match state.queue.pop_front() {
                    Some(item) => item,
                    None => {
                        // Stored under the same lock that found the queue empty: an entry
                        // queued after this sees the waker.
                        let stale = match &state.owner {
                            Some(owner) if owner.will_wake(cx.waker()) => None,
                            _ => {
                                let owner = OwnerWaker::new(cx.waker().clone(), self.counted_as);
                                state.owner.replace(owner)
                            }
                        };
                        drop(state);
                        drop(stale);
                        // Any entry's completion wakes the owner: it waits on the set, not
                        // on the entry polled last (which `poll_entry` noted).
                        runnel_reactor::wait::note(runnel_reactor::wait::WaitReason::JoinSet {
                            tasks: self.entries.len() as u64,
                        });
                        return Poll::Pending;
                    }
                }
            };
            if let Some(out) = self.poll_entry(key, generation) {
                return Poll::Ready(Some(out));
            }
        }
    }

    /// Polls a queued entry with its own waker; removes it and returns its output if done.
    fn poll_entry(&mut self, key: usize, generation: u64) -> Option<Result<(Id, T), JoinError>> {
        let entry = self
            .entries
            .get_mut(key)
            .filter(|e| e.inner.generation == generation)?;
        // Cleared with a swap before the poll: a completion that found the flag set (and so
        // did not queue the entry again) is ordered before this poll, which then sees it.
        entry.inner.queued.swap(false, AcqRel);
        let mut cx = Context::from_waker(&entry.waker);
        match entry.handle.poll_unbudgeted(&mut cx) {
            Poll::Pending => None,
            Poll::Ready(result) => {
                let entry = self.entries.remove(key);
                let id = entry.handle.id();
                Some(result.map(|out| (id, out)))
            }
        }
    }

    /// Aborts every task of the set; they stay in it until joined (each then gives a
    /// cancelled [`JoinError`], unless it completed first).
    pub fn abort_all(&mut self) {
        for (_, entry) in self.entries.iter() {
            entry.handle.abort();
        }
    }

    /// Aborts every task and waits until all of them have stopped, discarding their
    /// outputs. The set is empty afterwards.
    pub async fn shutdown(&mut self) {
        self.abort_all();
        while self.join_next().await.is_some() {}
    }

    /// Removes every task from the set without aborting it: each runs on, and its output
    /// is dropped.
    pub fn detach_all(&mut self) {
        // Dropping a JoinHandle detaches its task (and empties its join-waker slot).
        self.entries.clear();
        self.ready.lock().queue.clear();
    }

    /// Waits for every task and returns their outputs in completion order.
    ///
    /// # Panics
    /// If a task panicked, this resumes its panic (after aborting the other tasks, when the
    /// set is dropped); if a task was cancelled, panics saying which.
    pub async fn join_all(mut self) -> Vec<T> {
        let mut outputs = Vec::with_capacity(self.len());
        while let Some(result) = self.join_next().await {
            match result {
                Ok(out) => outputs.push(out),
                Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
                Err(err) => panic!("JoinSet::join_all: {err}"),
            }
        }
        outputs
    }
}

impl<T> Drop for JoinSet<T> {
    fn drop(&mut self) {
        for (_, entry) in self.entries.iter() {
            entry.handle.abort();
        }
        self.entries.clear();
        // The owner's waker would otherwise live on in the entry wakers still in slots.
        let owner = self.ready.lock().owner.take();
        drop(owner);
    }
}

impl<T> fmt::Debug for JoinSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinSet").field("len", &self.len()).finish()
    }
}

impl<T, F> FromIterator<F> for JoinSet<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    /// Spawns every future on the current runtime. Panics outside a runtime.
    #[track_caller]
    fn from_iter<I: IntoIterator<Item = F>>(iter: I) -> Self {
        let mut set = JoinSet::new();
        set.extend(iter);
        set
    }
}

impl<T, F> Extend<F> for JoinSet<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    /// Spawns every future on the current runtime. Panics outside a runtime.
    #[track_caller]
    fn extend<I: IntoIterator<Item = F>>(&mut self, iter: I) {
        for future in iter {
            self.spawn(future);
        }
    }
}
