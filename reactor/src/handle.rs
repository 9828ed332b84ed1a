//! `Handle`: the shareable side of a reactor, and the thread-local "current" handle.
//!
//! A handle is an `Arc` of the reactor's shared state (`Inner`): the mio `Registry` (to
//! register from any thread), the `mio::Waker` behind `unpark`, the sources slab, the
//! timers, and the waiter counts. The `Driver` holds the only `mio::Poll`.
//!
//! Reference cycle, by design: the reactor stores wakers, a waker keeps its task alive, the
//! task's futures own registrations and sleeps, which hold a `Handle`. `shutdown` breaks it
//! by taking every stored waker out, so the runtime must call it when it goes away.
//!
//! Current handle: a thread-local `Option<Handle>`, set by `enter` for the guard's lifetime.
//! The executor enters on every worker thread and in `block_on`.

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;

use crate::sources::Sources;
use crate::time::timers::Timers;
use crate::waiters::{Drained, WaiterCounts, Waiters};

/// A cheap, cloneable reference to a reactor, usable from any thread.
///
/// ```
/// let (driver, handle) = runnel_reactor::Driver::new()?;
/// assert!(runnel_reactor::Handle::try_current().is_none());
/// {
///     let _guard = handle.enter();
///     assert!(runnel_reactor::Handle::try_current().is_some());
/// }
/// assert!(runnel_reactor::Handle::try_current().is_none());
/// assert!(handle.waiters().is_empty());
/// # drop(driver);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Handle {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) registry: mio::Registry,
    waker: mio::Waker,
    pub(crate) sources: Sources,
    pub(crate) timers: Timers,
    pub(crate) counts: WaiterCounts,
    /// The reactor's signal pipe, made by its first `Signal` (`signal/pipe.rs`).
    #[cfg(unix)]
    pub(crate) signals: crate::signal::SignalSlot,
}

thread_local! {
    static CURRENT: RefCell<Option<Handle>> = const { RefCell::new(None) };
}

const NO_RUNTIME: &str = "there is no runnel runtime here: call this inside Runtime::block_on, \
                          a spawned task, or #[runnel::main]";

impl Handle {
    pub(crate) fn new(registry: mio::Registry, waker: mio::Waker) -> Handle {
        Handle {
            inner: Arc::new(Inner {
                registry,
                waker,
                sources: Sources::default(),
                timers: Timers::new(Instant::now()),
                counts: WaiterCounts::default(),
                #[cfg(unix)]
                signals: Default::default(),
            }),
        }
    }

    /// The handle entered on this thread.
    ///
    /// # Panics
    ///
    /// With "there is no runnel runtime here: call this inside Runtime::block_on, a spawned
    /// task, or `#[runnel::main]`" when no handle is entered on this thread.
    #[track_caller]
    pub fn current() -> Handle {
        match Handle::try_current() {
            Some(handle) => handle,
            None => panic!("{NO_RUNTIME}"),
        }
    }

    /// The handle entered on this thread, if any.
    pub fn try_current() -> Option<Handle> {
        // try_with: during thread-local destruction there is no current handle.
        CURRENT.try_with(|c| c.borrow().clone()).ok().flatten()
    }

    /// Makes `self` the current handle of this thread until the guard is dropped, which
    /// restores the previous one. Guards must be dropped in reverse order of creation.
    pub fn enter(&self) -> EnterGuard {
        let prev = CURRENT.with(|c| c.replace(Some(self.clone())));
        EnterGuard {
            prev,
            _not_send: PhantomData,
        }
    }

    /// The waiter counts the deadlock detector reads (lock-free; see [`Waiters`]).
    pub fn waiters(&self) -> Waiters {
        self.inner.counts.snapshot()
    }

    /// Calls `hook` once, on the thread that stores the next waker in this reactor (a task
    /// waiting for I/O readiness, a signal, or a timer), after the store and with no
    /// reactor lock held. The executor uses it to start a thread that drives the reactor
    /// when it has none yet: a waker stored here by a task of another runtime, or by code
    /// under `enter`, would otherwise wait for a driver that never comes. Only the first
    /// hook set is kept.
    pub fn on_first_waiter(&self, hook: Box<dyn Fn() + Send + Sync>) {
        self.inner.counts.on_first_waiter(hook);
    }

    /// Releases the waiter counts of wakers that [`Driver::drain`](crate::Driver::drain)
    /// took out. Call it only after those wakers were woken and their tasks enqueued.
    pub fn release(&self, drained: Drained) {
        self.inner.counts.release(drained);
    }

    /// Interrupts a blocked (or the next) [`Driver::park`](crate::Driver::park).
    pub fn unpark(&self) {
        // A failed wake (eventfd counter saturated) means a wake is already pending, which
        // is all we want; there is nothing useful to do with the error.
        let _ = self.inner.waker.wake();
    }

    /// The runtime is going away: wakes every stored I/O and timer waker, refuses new
    /// registrations and timers, and makes every later I/O readiness poll return the error
    /// "the runnel runtime has shut down". Idempotent.
    pub fn shutdown(&self) {
        let mut wakers = Vec::new();
        let io = self.inner.sources.shutdown(&mut wakers);
        // After the sources: from here no signal pipe can be made (`signal/pipe.rs`).
        #[cfg(unix)]
        self.inner.signals.close();
        let timers = self.inner.timers.shutdown(&mut wakers);
        // Wake first, release after (waiters.rs): the counts must not drop before the tasks
        // they stand for are runnable.
        wakers.into_iter().for_each(Waker::wake);
        self.inner.counts.release(Drained { io, timers });
        self.unpark();
    }

    /// Whether `self` and `other` are handles of the same reactor.
    pub fn ptr_eq(&self, other: &Handle) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("waiters", &self.waiters())
            .finish_non_exhaustive()
    }
}

/// Restores the previously current handle when dropped (see [`Handle::enter`]).
#[must_use = "the handle is current only until the guard is dropped"]
pub struct EnterGuard {
    prev: Option<Handle>,
    /// The guard restores *this thread's* state: it must not move to another thread.
    _not_send: PhantomData<*const ()>,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let prev = self.prev.take();
        // The replaced handle is dropped outside the borrow: if it is the last one, dropping
        // the reactor drops wakers, which may drop tasks that look at the current handle.
        let replaced = CURRENT.try_with(|c| c.replace(prev)).ok().flatten();
        drop(replaced);
    }
}

impl fmt::Debug for EnterGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnterGuard").finish_non_exhaustive()
    }
}
