//! The waiter counts the deadlock detector reads: how many tasks the reactor may still wake.
//!
//! - `io` = number of wakers stored in the sources' waiter lists (each entry counts one,
//!   so two tasks waiting to read one socket count two), plus wakers drained but not yet
//!   released.
//! - `timers` = number of armed timer entries (linked in the wheel with a waker).
//!
//! A count goes **up** before (or while, under the list's lock) a waker is stored, and
//! **down** when a task takes its waker back out (an `IoWaiter` that found readiness or was
//! dropped), its registration or timer is dropped, or `Handle::shutdown` woke it. A waker
//! that `Driver::drain` takes out stays counted until `Handle::release` (its `Drained`
//! counts every waker it took), which the driving thread (a worker or the poller) calls
//! only after the woken tasks are in a run queue (ARCHITECTURE.md, "Idle accounting",
//! invariant 4; Go issue 61454). So the counts may over-count but
//! never under-count: a detector that reads 0 knows no task can be woken by the reactor.
//!
//! Over-counts, all in the safe direction: for a moment, drained wakers until release; and
//! until the next event for its direction (or its registration's drop), a waker stored by
//! the stateless `Registration::poll_*_ready` whose future stopped polling — the reactor
//! cannot see that future go away (`scheduled_io.rs`). That over-count is at most one per
//! source and direction: the stateless pollers of a direction share one entry, the last
//! poller's waker replacing the one before it. Waits through an `IoWaiter` (the async
//! methods `net` uses) are exact: a dropped waiter takes its count with it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// A snapshot of the reactor's waiter counts (see `Handle::waiters`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Waiters {
    /// Wakers stored for I/O readiness, including wakers drained but not released.
    pub io: usize,
    /// Armed timers, including fired ones whose wakers were drained but not released.
    pub timers: usize,
}

impl Waiters {
    /// Whether the reactor can wake no task at all.
    pub fn is_empty(&self) -> bool {
        self.io == 0 && self.timers == 0
    }
}

/// What one `Driver::drain` took out of the reactor. Pass it to `Handle::release` once every
/// woken task is in a run queue; until then the wakers still count as waiters.
#[must_use = "pass Drained to Handle::release after waking, or the waiter counts never drop"]
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Drained {
    pub(crate) io: usize,
    pub(crate) timers: usize,
}

impl Drained {
    /// I/O wakers taken out.
    pub fn io(&self) -> usize {
        self.io
    }
    /// Timer wakers taken out.
    pub fn timers(&self) -> usize {
        self.timers
    }
    /// Whether nothing was taken out (releasing it is then a no-op).
    pub fn is_empty(&self) -> bool {
        self.io == 0 && self.timers == 0
    }
}

/// The counts themselves, shared by every handle of one reactor.
///
/// Aligned to 128 bytes (two cache lines: x86's adjacent-line prefetcher pulls lines in
/// pairs, as crossbeam's `CachePadded` assumes) so that the fields next to it in the
/// reactor's `Inner` (the timers' clock base and shard table, read on every arm) do not
/// share a line with counters every arm and cancel writes from every worker. Measured on
/// `timer_timeouts`: the read of `Timers::base` was ~20 % of `Timers::arm`'s samples.
#[derive(Default)]
#[repr(align(128))]
pub(crate) struct WaiterCounts {
    io: AtomicUsize,
    timers: AtomicUsize,
    /// Whether the next stored waker calls `on_waiter` (`Handle::on_first_waiter`). On the
    /// counters' line, which the store just wrote: the test costs a load of a line in hand.
    wanted: AtomicBool,
    on_waiter: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl std::fmt::Debug for WaiterCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaiterCounts")
            .field("io", &self.io)
            .field("timers", &self.timers)
            .finish_non_exhaustive()
    }
}

// Orderings: increments happen on the thread that is about to store a waker, i.e. a running
// task, and the detector only trusts a count once that task has gone idle through the
// scheduler's lock, which orders the increment before the detector's read; Release/Acquire
// here is belt and braces for readers that skip that lock. Decrements must be Release: the
// poller enqueues the woken tasks and then releases, and a detector that Acquire-loads the
// smaller count must also see those tasks in the run queue (else it could see neither the
// waiter nor the task: a false deadlock).
impl WaiterCounts {
    pub(crate) fn add_io(&self, n: usize) {
        if n > 0 {
            self.io.fetch_add(n, Ordering::Release);
        }
    }

    pub(crate) fn sub_io(&self, n: usize) {
        if n > 0 {
            let before = self.io.fetch_sub(n, Ordering::Release);
            debug_assert!(before >= n, "io waiter count underflow: {before} - {n}");
        }
    }

    pub(crate) fn add_timers(&self, n: usize) {
        if n > 0 {
            self.timers.fetch_add(n, Ordering::Release);
        }
    }

    pub(crate) fn sub_timers(&self, n: usize) {
        if n > 0 {
            let before = self.timers.fetch_sub(n, Ordering::Release);
            debug_assert!(before >= n, "timer waiter count underflow: {before} - {n}");
        }
    }

    /// Sets the hook the next stored waker calls (once). See `Handle::on_first_waiter`.
    pub(crate) fn on_first_waiter(&self, hook: Box<dyn Fn() + Send + Sync>) {
        if self.on_waiter.set(hook).is_ok() {
            // Release: a thread that sees the flag sees the hook.
            self.wanted.store(true, Ordering::Release);
        }
    }

    /// A waker was stored (I/O readiness or a timer). The caller holds no reactor lock:
    /// the hook may start a thread.
    #[inline]
    pub(crate) fn waiter_stored(&self) {
        if self.wanted.load(Ordering::Relaxed) {
            self.call_hook();
        }
    }

    #[cold]
    fn call_hook(&self) {
        // One caller wins the flag; the hook runs once.
        if self.wanted.swap(false, Ordering::AcqRel) {
            if let Some(hook) = self.on_waiter.get() {
                hook();
            }
        }
    }

    pub(crate) fn release(&self, drained: Drained) {
        self.sub_io(drained.io);
        self.sub_timers(drained.timers);
    }

    pub(crate) fn snapshot(&self) -> Waiters {
        // Acquire pairs with the Release decrements (see the comment above the impl).
        Waiters {
            io: self.io.load(Ordering::Acquire),
            timers: self.timers.load(Ordering::Acquire),
        }
    }
}
