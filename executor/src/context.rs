//! Thread-local runtime context: which runtime `spawn` goes to, and whether this thread is
//! one of a runtime's workers (so a wake can use its local queue).
//!
//! Invariant: `WORKER` is set only on a worker thread, for the runtime that thread works
//! for, for as long as its loop runs; `Shared` outlives it (the worker holds an `Arc`).

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use crate::runtime::Handle;
use crate::scheduler::Shared;

thread_local! {
    static HANDLE: RefCell<Option<Handle>> = const { RefCell::new(None) };
    static WORKER: Cell<(*const Shared, usize)> = const { Cell::new((std::ptr::null(), 0)) };
    /// Set on worker threads and inside `block_on`: blocking here would stall the runtime.
    static IN_RUNTIME: Cell<bool> = const { Cell::new(false) };
}

/// Restores the previous thread-local state when dropped.
pub(crate) struct ContextGuard {
    handle: Option<Handle>,
    worker: (*const Shared, usize),
    in_runtime: bool,
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        HANDLE.with(|h| *h.borrow_mut() = self.handle.take());
        WORKER.with(|w| w.set(self.worker));
        IN_RUNTIME.with(|r| r.set(self.in_runtime));
    }
}

fn enter(handle: Handle, worker: (*const Shared, usize), in_runtime: bool) -> ContextGuard {
    ContextGuard {
        handle: HANDLE.with(|h| h.borrow_mut().replace(handle)),
        worker: WORKER.with(|w| w.replace(worker)),
        in_runtime: IN_RUNTIME.with(|r| r.replace(in_runtime)),
    }
}

/// Makes `handle` current (for `spawn`, `Handle::current`) without making this thread a
/// runtime thread.
pub(crate) fn enter_handle(handle: Handle) -> ContextGuard {
    let in_runtime = IN_RUNTIME.with(Cell::get);
    enter(handle, (std::ptr::null(), 0), in_runtime)
}

pub(crate) fn enter_worker(shared: &Arc<Shared>, index: usize) -> ContextGuard {
    enter(
        Handle::from_shared(shared.clone()),
        (Arc::as_ptr(shared), index),
        true,
    )
}

pub(crate) fn enter_blocking(shared: &Arc<Shared>) -> ContextGuard {
    enter(
        Handle::from_shared(shared.clone()),
        (std::ptr::null(), 0),
        false,
    )
}

/// Enters `block_on`, panicking if this thread already drives a runtime.
#[track_caller]
pub(crate) fn enter_block_on(shared: &Arc<Shared>) -> ContextGuard {
    if IN_RUNTIME.with(Cell::get) {
        panic!(
            "Runtime::block_on called from a thread that is already running a runnel runtime \
             (a worker thread, or inside another block_on). Blocking here would stall the \
             runtime's tasks. Inside async code, `.await` the future instead; to run blocking \
             code that needs a result from async code, use runnel::spawn_blocking and call \
             Handle::block_on from there."
        );
    }
    enter(
        Handle::from_shared(shared.clone()),
        (std::ptr::null(), 0),
        true,
    )
}

/// The worker index if this thread is a worker of `shared`.
pub(crate) fn current_worker(shared: &Shared) -> Option<usize> {
    let (ptr, index) = WORKER.with(Cell::get);
    std::ptr::eq(ptr, shared).then_some(index)
}

pub(crate) fn try_current() -> Option<Handle> {
    HANDLE.with(|h| h.borrow().clone())
}
