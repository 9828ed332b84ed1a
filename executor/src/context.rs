//! Thread-local runtime context: which runtime `spawn` goes to, what kind of runtime thread
//! this is (so a wake can use its local queue, `block_on` can refuse to nest, and the
//! deadlock detector knows whether a new `JoinHandle` starts inside or outside the runtime).
//!
//! Invariants: `WORKER` is set only on a worker thread (or the `block_on` caller holding a
//! current-thread runtime's core), for the runtime that thread works for, for as long as
//! its loop runs (or it holds the core); `Shared` outlives it (the worker holds an `Arc`).
//! `CURRENT` holds an uncounted `Arc<Shared>`: only a user-visible [`Handle`] counts as a
//! possible source of new work (see `Shared::outside_handles`), and the runtime's own
//! threads are not one.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use crate::runtime::Handle;
use crate::scheduler::Shared;

/// What this thread is to the runtime it is in.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ThreadKind {
    /// A thread of the program (or one that only entered a runtime with `Handle::enter`).
    Outside,
    /// One of the runtime's worker threads.
    Worker,
    /// A thread inside `block_on`.
    BlockOn,
    /// A blocking-pool thread.
    Blocking,
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Shared>>> = const { RefCell::new(None) };
    static WORKER: Cell<(*const Shared, usize)> = const { Cell::new((std::ptr::null(), 0)) };
    /// The kind of runtime thread this is, and for which runtime (`Shared::id`; ids start
    /// at 1).
    static KIND: Cell<(ThreadKind, u64)> = const { Cell::new((ThreadKind::Outside, 0)) };
}

/// Restores the previous thread-local state when dropped.
pub(crate) struct ContextGuard {
    current: Option<Arc<Shared>>,
    worker: (*const Shared, usize),
    kind: (ThreadKind, u64),
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| *c.borrow_mut() = self.current.take());
        WORKER.with(|w| w.set(self.worker));
        KIND.with(|k| k.set(self.kind));
    }
}

fn enter(
    shared: &Arc<Shared>,
    worker: (*const Shared, usize),
    kind: (ThreadKind, u64),
) -> ContextGuard {
    ContextGuard {
        current: CURRENT.with(|c| c.borrow_mut().replace(shared.clone())),
        worker: WORKER.with(|w| w.replace(worker)),
        kind: KIND.with(|k| k.replace(kind)),
    }
}

/// Makes `shared` current (for `spawn`, `Handle::current`) without changing what kind of
/// thread this is. The caller (an `EnterGuard`) holds a counted `Handle` meanwhile.
pub(crate) fn enter_handle(shared: &Arc<Shared>) -> ContextGuard {
    let worker = WORKER.with(Cell::get);
    let kind = KIND.with(Cell::get);
    enter(shared, worker, kind)
}

pub(crate) fn enter_worker(shared: &Arc<Shared>, index: usize) -> ContextGuard {
    let ptr = Arc::as_ptr(shared);
    enter(shared, (ptr, index), (ThreadKind::Worker, shared.id))
}

/// A current-thread runtime's `block_on` caller takes the core: it runs role 0, so wakes
/// on this thread use role 0's queues. It stays a `block_on` thread otherwise.
pub(crate) fn enter_core(shared: &Arc<Shared>) -> ContextGuard {
    let kind = KIND.with(Cell::get);
    enter(shared, (Arc::as_ptr(shared), 0), kind)
}

pub(crate) fn enter_blocking(shared: &Arc<Shared>) -> ContextGuard {
    enter(
        shared,
        (std::ptr::null(), 0),
        (ThreadKind::Blocking, shared.id),
    )
}

/// Enters `block_on`, panicking if this thread already drives a runtime. Returns the
/// guard and whether this is a blocking-pool thread of `shared` (whose job then waits in
/// `block_on`, see `block_on::Registration`).
#[track_caller]
pub(crate) fn enter_block_on(shared: &Arc<Shared>) -> (ContextGuard, bool) {
    let (kind, of) = KIND.with(Cell::get);
    if matches!(kind, ThreadKind::Worker | ThreadKind::BlockOn) {
        panic!(
            "Runtime::block_on called from a thread that is already running a runnel runtime \
             (a worker thread, or inside another block_on). Blocking here would stall the \
             runtime's tasks. Inside async code, `.await` the future instead; to run blocking \
             code that needs a result from async code, use runnel::spawn_blocking and call \
             Handle::block_on from there."
        );
    }
    let on_own_blocking_thread = kind == ThreadKind::Blocking && of == shared.id;
    let guard = enter(
        shared,
        (std::ptr::null(), 0),
        (ThreadKind::BlockOn, shared.id),
    );
    (guard, on_own_blocking_thread)
}

/// The worker index if this thread is a worker of `shared`.
pub(crate) fn current_worker(shared: &Shared) -> Option<usize> {
    let (ptr, index) = WORKER.with(Cell::get);
    std::ptr::eq(ptr, shared).then_some(index)
}

/// Whether this thread is one of `shared`'s own (a worker, a blocking-pool thread, or
/// inside its `block_on`): a `JoinHandle` made here starts out held inside the runtime.
pub(crate) fn is_runtime_thread(shared: &Shared) -> bool {
    is_runtime_thread_of(shared.id)
}

/// As `is_runtime_thread`, by runtime id (`Shared::id`, `Schedule::owner`).
pub(crate) fn is_runtime_thread_of(runtime: u64) -> bool {
    let (kind, of) = KIND.with(Cell::get);
    kind != ThreadKind::Outside && of == runtime
}

/// Runs `f` with the current runtime, without making a (counted) `Handle`.
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Arc<Shared>>) -> R) -> R {
    CURRENT.with(|c| f(c.borrow().as_ref()))
}

/// A new counted `Handle` to the current runtime.
pub(crate) fn try_current() -> Option<Handle> {
    with_current(|shared| shared.map(|s| Handle::new(s.clone())))
}
