//! `LocalSet` and `spawn_local`: tasks whose futures are not `Send`, run on the thread that
//! drives the set (tokio's `LocalSet`).
//!
//! A set is driven by awaiting [`LocalSet::run_until`] (or the set itself) inside a task or
//! `block_on`, or by [`LocalSet::block_on`]. Its tasks live in the set (a slab of boxed
//! futures) and are polled only there, on the owning thread, so they may hold `Rc`s and
//! `RefCell`s across awaits. Their wakers are `Send` and may fire anywhere: a wake queues
//! the task's slot in the set's shared run queue and wakes whoever drives the set.
//!
//! Invariants:
//! 1. A local task's future is polled and dropped only on the thread that created the set
//!    (`LocalSet` is `!Send`; the shared part holds no future).
//! 2. A slot is in the run queue at most once (`LocalWaker::queued`), and a wake for a slot
//!    that was freed and reused is ignored (the waker carries the slot's generation).
//! 3. A `LocalJoinHandle` completes exactly once: with the output, a panic, or cancelled
//!    (aborted, or the set dropped).
//!
//! The deadlock detector does not see local tasks one by one: their wakers are ordinary
//! wakers, so a set whose tasks all wait counts as "a waker held outside the runtime" for
//! the task or `block_on` driving it ("maybe": a stall report, never a false deadlock).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use super::{Id, JoinError};
use crate::runtime::Runtime;

/// How many local tasks one poll of the driving future runs before it yields to the
/// runtime (it wakes itself, so it is polled again after the other tasks had a turn).
const TASKS_PER_POLL: usize = 61;

thread_local! {
    /// The set being driven on this thread (for `spawn_local`).
    static CURRENT: RefCell<Option<Rc<Inner>>> = const { RefCell::new(None) };
}

/// A set of `!Send` tasks run on the thread that drives it.
///
/// ```
/// use std::rc::Rc;
/// use runnel_executor::task::{self, LocalSet};
///
/// let rt = runnel_executor::Builder::new_current_thread().build().unwrap();
/// let local = LocalSet::new();
/// let shared = Rc::new(5); // not Send
/// let total = local.block_on(&rt, async move {
///     let copy = shared.clone();
///     let task = task::spawn_local(async move { *copy * 2 });
///     task.await.unwrap() + *shared
/// });
/// assert_eq!(total, 15);
/// ```
pub struct LocalSet {
    inner: Rc<Inner>,
}

struct Inner {
    tasks: RefCell<slab::Slab<Slot>>,
    shared: Arc<Shared>,
    /// Set while a task of this set is being polled (a nested drive is refused).
    running: Cell<bool>,
}

struct Slot {
    /// `None` only while the task is being polled.
    future: Option<Pin<Box<dyn Future<Output = ()>>>>,
    waker: Arc<LocalWaker>,
    abort: Arc<AbortFlag>,
}

/// The part of a set that wakers, on any thread, touch.
struct Shared {
    ready: Mutex<VecDeque<(usize, u64)>>,
    /// Whoever drives the set (the task or `block_on` awaiting `run_until`).
    driver: Mutex<Option<Waker>>,
    next_generation: AtomicU64,
}

impl Shared {
    fn push(&self, key: usize, generation: u64) {
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back((key, generation));
        let driver = self
            .driver
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(driver) = driver {
            driver.wake();
        }
    }

    fn clear_driver(&self) {
        *self.driver.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn pop(&self) -> Option<(usize, u64)> {
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
    }
}

/// A local task's waker.
struct LocalWaker {
    shared: Arc<Shared>,
    key: usize,
    generation: u64,
    queued: AtomicBool,
}

impl Wake for LocalWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, AcqRel) {
            self.shared.push(self.key, self.generation);
        }
    }
}

/// `abort()` of a local task: a flag and a wake, read by the set's thread.
#[derive(Default)]
struct AbortFlag {
    requested: AtomicBool,
}

/// Where a local task's result goes.
struct JoinSlot<T> {
    result: Option<Result<T, JoinError>>,
    waker: Option<Waker>,
    done: bool,
}

/// An owned permission to await a local task (from [`spawn_local`]). Awaiting it gives the
/// task's output, or a [`JoinError`] if it panicked or was cancelled (aborted, or its
/// `LocalSet` dropped). Dropping it detaches the task. `Send` when the output is.
pub struct LocalJoinHandle<T> {
    id: Id,
    slot: Arc<Mutex<JoinSlot<T>>>,
    abort: Arc<AbortFlag>,
    waker: Arc<LocalWaker>,
}

impl<T> LocalJoinHandle<T> {
    /// The task's id.
    pub fn id(&self) -> Id {
        self.id
    }

    /// Cancels the task: it is dropped on the set's thread at its next turn (not polled
    /// again), and awaiting this handle gives a cancelled [`JoinError`] unless it had
    /// completed already.
    pub fn abort(&self) {
        self.abort.requested.store(true, Release);
        Waker::from(self.waker.clone()).wake();
    }

    /// Whether the task has finished (completed, panicked or been cancelled).
    pub fn is_finished(&self) -> bool {
        self.slot.lock().unwrap_or_else(|e| e.into_inner()).done
    }
}

impl<T> Future for LocalJoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(result) = slot.result.take() {
            return Poll::Ready(result);
        }
        assert!(
            !slot.done,
            "a LocalJoinHandle was polled after it returned Ready"
        );
        runnel_reactor::wait::note(runnel_reactor::wait::WaitReason::Join {
            task: self.id.as_u64(),
        });
        slot.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl<T> fmt::Debug for LocalJoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalJoinHandle")
            .field("id", &self.id)
            .finish()
    }
}

fn complete<T>(slot: &Mutex<JoinSlot<T>>, result: Result<T, JoinError>) {
    let waker = {
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        if slot.done {
            return;
        }
        slot.done = true;
        slot.result = Some(result);
        slot.waker.take()
    };
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// Spawns a `!Send` future on the [`LocalSet`] being driven on this thread.
///
/// ```
/// use runnel_executor::task::{spawn_local, LocalSet};
/// let rt = runnel_executor::Runtime::new().unwrap();
/// let out = LocalSet::new().block_on(&rt, async {
///     let counter = std::rc::Rc::new(std::cell::Cell::new(0));
///     let c = counter.clone();
///     spawn_local(async move { c.set(c.get() + 1) }).await.unwrap();
///     counter.get()
/// });
/// assert_eq!(out, 1);
/// ```
///
/// # Panics
/// Outside a `LocalSet` (there is no thread-bound set to run the task): drive one with
/// [`LocalSet::run_until`] or [`LocalSet::block_on`] and spawn inside it, or use
/// [`LocalSet::spawn_local`] directly.
#[track_caller]
pub fn spawn_local<F>(future: F) -> LocalJoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let location = Location::caller();
    let inner = CURRENT.with(|c| c.borrow().clone()).unwrap_or_else(|| {
        panic!(
            "runnel::task::spawn_local called outside a LocalSet (at {location}): a !Send task \
             needs a set to run it on this thread. Drive one with LocalSet::run_until(..).await \
             or LocalSet::block_on(&runtime, ..) and spawn inside it, or call \
             LocalSet::spawn_local on the set"
        )
    });
    inner.spawn(future)
}

impl Default for LocalSet {
    fn default() -> Self {
        LocalSet::new()
    }
}

impl fmt::Debug for LocalSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalSet")
            .field("tasks", &self.inner.tasks.borrow().len())
            .finish()
    }
}

impl LocalSet {
    /// An empty set.
    pub fn new() -> LocalSet {
        LocalSet {
            inner: Rc::new(Inner {
                tasks: RefCell::new(slab::Slab::new()),
                shared: Arc::new(Shared {
                    ready: Mutex::new(VecDeque::new()),
                    driver: Mutex::new(None),
                    next_generation: AtomicU64::new(0),
                }),
                running: Cell::new(false),
            }),
        }
    }

    /// Spawns a `!Send` task on this set. It runs when the set is driven.
    #[track_caller]
    pub fn spawn_local<F>(&self, future: F) -> LocalJoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.inner.spawn(future)
    }

    /// Runs `future` on the current thread, driving this set's tasks meanwhile, until
    /// `future` completes (the set's remaining tasks stay in it). Await it inside a task or
    /// `block_on`; `spawn_local` works inside `future` and inside the set's tasks.
    pub async fn run_until<F: Future>(&self, future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        std::future::poll_fn(|cx| {
            let _enter = self.inner.enter();
            if let Poll::Ready(out) = future.as_mut().poll(cx) {
                // Nobody drives the set now: keep no waker of ours (a stale one would
                // look to the deadlock detector like a holder that may wake us).
                self.inner.shared.clear_driver();
                return Poll::Ready(out);
            }
            if self.inner.tick(cx) {
                // Ran its share: let the runtime's other tasks run, then come back.
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        })
        .await
    }

    /// `runtime.block_on(self.run_until(future))`.
    #[track_caller]
    pub fn block_on<F: Future>(&self, runtime: &Runtime, future: F) -> F::Output {
        runtime.block_on(self.run_until(future))
    }

    /// Makes this set current on this thread until the guard drops, so
    /// [`spawn_local`] works from synchronous code (the tasks run when the set is driven).
    pub fn enter(&self) -> LocalEnterGuard {
        LocalEnterGuard {
            previous: CURRENT.with(|c| c.borrow_mut().replace(self.inner.clone())),
            _not_send: PhantomData,
        }
    }
}

/// Awaiting a `LocalSet` runs its tasks until every one has finished.
impl Future for LocalSet {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let _enter = self.inner.enter();
        if self.inner.tick(cx) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if self.inner.tasks.borrow().is_empty() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for LocalSet {
    fn drop(&mut self) {
        let _enter = self.inner.enter();
        // Dropped here, on the owning thread (invariant 1); a task's drop may spawn or
        // wake others, so take them one at a time with the slab not borrowed.
        loop {
            let next = {
                let mut tasks = self.inner.tasks.borrow_mut();
                let key = tasks.iter().next().map(|(key, _)| key);
                key.map(|key| tasks.remove(key))
            };
            match next {
                Some(slot) => drop(slot), // the future's drop completes its handle
                None => break,
            }
        }
        self.inner.shared.clear_driver();
    }
}

/// Restores the previously current `LocalSet` when dropped. See [`LocalSet::enter`].
#[must_use = "the set stays current only while the guard lives"]
pub struct LocalEnterGuard {
    previous: Option<Rc<Inner>>,
    _not_send: PhantomData<*const ()>,
}

impl Drop for LocalEnterGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

impl fmt::Debug for LocalEnterGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LocalEnterGuard")
    }
}

/// The task future stored in a slot: runs the user's future, catching its panic, and
/// completes the handle. Dropped unfinished (abort, set dropped): completes it cancelled.
struct TaskFuture<F: Future> {
    future: Option<Pin<Box<F>>>,
    id: Id,
    slot: Arc<Mutex<JoinSlot<F::Output>>>,
}

impl<F: Future> Future for TaskFuture<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let Some(future) = this.future.as_mut() else {
            return Poll::Ready(());
        };
        let result = match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(out)) => Ok(out),
            Err(payload) => Err(JoinError::panic(this.id, payload)),
        };
        this.future = None;
        complete(&this.slot, result);
        Poll::Ready(())
    }
}

impl<F: Future> Drop for TaskFuture<F> {
    fn drop(&mut self) {
        if self.future.take().is_some() {
            complete(&self.slot, Err(JoinError::cancelled(self.id)));
        }
    }
}

impl Inner {
    fn enter(self: &Rc<Self>) -> LocalEnterGuard {
        LocalEnterGuard {
            previous: CURRENT.with(|c| c.borrow_mut().replace(self.clone())),
            _not_send: PhantomData,
        }
    }

    #[track_caller]
    fn spawn<F>(&self, future: F) -> LocalJoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let id = Id::next();
        let join = Arc::new(Mutex::new(JoinSlot {
            result: None,
            waker: None,
            done: false,
        }));
        let abort = Arc::new(AbortFlag::default());
        let mut tasks = self.tasks.borrow_mut();
        let entry = tasks.vacant_entry();
        let waker = Arc::new(LocalWaker {
            shared: self.shared.clone(),
            key: entry.key(),
            generation: self.shared.next_generation.fetch_add(1, Relaxed),
            queued: AtomicBool::new(false),
        });
        entry.insert(Slot {
            future: Some(Box::pin(TaskFuture {
                future: Some(Box::pin(future)),
                id,
                slot: join.clone(),
            })),
            waker: waker.clone(),
            abort: abort.clone(),
        });
        drop(tasks);
        Waker::from(waker.clone()).wake_by_ref(); // queue its first poll
        LocalJoinHandle {
            id,
            slot: join,
            abort,
            waker,
        }
    }

    /// Runs up to `TASKS_PER_POLL` queued tasks. Registers `cx`'s waker as the set's
    /// driver first, so a wake after we stop looking reaches it. Returns whether it
    /// stopped with tasks still queued.
    fn tick(&self, cx: &mut Context<'_>) -> bool {
        assert!(
            !self.running.get(),
            "a LocalSet was driven from inside one of its own tasks: await the task's \
             work directly instead of driving the set again"
        );
        {
            let mut driver = self.shared.driver.lock().unwrap_or_else(|e| e.into_inner());
            if !driver.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *driver = Some(cx.waker().clone());
            }
        }
        for _ in 0..TASKS_PER_POLL {
            let Some((key, generation)) = self.shared.pop() else {
                return false;
            };
            self.run(key, generation);
        }
        !self
            .shared
            .ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    fn run(&self, key: usize, generation: u64) {
        // The future leaves its slot while it runs (the slot stays reserved, so the key
        // its wakers carry stays valid): its poll may spawn, which borrows the slab.
        let (mut future, waker, abort) = {
            let mut tasks = self.tasks.borrow_mut();
            match tasks.get_mut(key) {
                Some(slot) if slot.waker.generation == generation => match slot.future.take() {
                    Some(future) => (future, slot.waker.clone(), slot.abort.clone()),
                    None => return,
                },
                _ => return, // a stale wake of a finished task (invariant 2)
            }
        };
        // Cleared before the poll, so a wake during it queues the task again.
        waker.queued.store(false, Release);
        let done = if abort.requested.load(Acquire) {
            drop(future); // cancels: completes the handle with a cancelled error
            true
        } else {
            let task_waker = Waker::from(waker);
            let mut cx = Context::from_waker(&task_waker);
            self.running.set(true);
            let poll = runnel_reactor::coop::with_budget(|| future.as_mut().poll(&mut cx));
            self.running.set(false);
            if poll.is_pending() {
                if let Some(slot) = self.tasks.borrow_mut().get_mut(key) {
                    slot.future = Some(future);
                }
                return;
            }
            drop(future);
            true
        };
        if done {
            self.tasks.borrow_mut().remove(key);
        }
    }
}
