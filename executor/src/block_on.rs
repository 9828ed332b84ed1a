//! `block_on`: the calling thread polls one future until it completes.
//!
//! The caller counts as a worker for the deadlock detector (`workers += 1` while inside),
//! idle while it sleeps. Its waker is a `Signal` behind one static vtable, so a
//! `JoinHandle` slot holding it can be recognised (see `task/waker.rs`), and so the
//! detector can tell how many of its wakers exist beyond the ones the runtime holds.
//!
//! Sleep/wake protocol (no lost wakeup): the sleeper stores `parked = true`, then reads
//! `notified`; the waker stores `notified = true`, then reads `parked` (all SeqCst, a
//! Dekker pair). Whoever sees the other acts: the sleeper stays awake, or the waker takes
//! the scheduler lock, claims the sleeper (`idle -= 1`) and unparks it.

use std::future::Future;
use std::panic::Location;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use crate::scheduler::idle::Counts;
use crate::scheduler::park::Parker;
use crate::scheduler::Shared;
use crate::task::WaitRecord;
use crate::{context, detector};

pub(crate) struct Signal {
    shared: Arc<Shared>,
    pub(crate) location: &'static Location<'static>,
    pub(crate) wait: WaitRecord,
    notified: AtomicBool,
    /// Written under the scheduler lock (read without it by the waker's fast path).
    parked: AtomicBool,
    /// Set by the deadlock check (under the scheduler lock) when `OnDeadlock::Panic`.
    deadlock: Mutex<Option<String>>,
    parker: Parker,
}

/// `Arc` references to a `Signal` that are not wakers someone else holds: `block_on`'s
/// own, its `Registration`'s, the scheduler's list entry, and the `Context`'s waker.
const OWN_REFS: usize = 4;

static SIGNAL_WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

fn signal_waker(signal: &Arc<Signal>) -> Waker {
    let data = Arc::into_raw(signal.clone()).cast::<()>();
    // SAFETY: data is an Arc<Signal> reference we own; the vtable functions treat it as
    // exactly that (clone increments, drop decrements, wake consumes).
    unsafe { Waker::from_raw(RawWaker::new(data, &SIGNAL_WAKER_VTABLE)) }
}

unsafe fn clone(data: *const ()) -> RawWaker {
    // SAFETY: data is a live Arc<Signal> (the waker being cloned holds one).
    unsafe { Arc::increment_strong_count(data.cast::<Signal>()) };
    RawWaker::new(data, &SIGNAL_WAKER_VTABLE)
}

unsafe fn wake(data: *const ()) {
    // SAFETY: consumes the waker's reference.
    let signal = unsafe { Arc::from_raw(data.cast::<Signal>()) };
    signal.wake();
}

unsafe fn wake_by_ref(data: *const ()) {
    // SAFETY: the waker holds a reference for the duration of the call.
    let signal = unsafe { &*data.cast::<Signal>() };
    signal.wake();
}

unsafe fn drop_waker(data: *const ()) {
    // SAFETY: releases the waker's reference.
    drop(unsafe { Arc::from_raw(data.cast::<Signal>()) });
}

/// If `waker` is a `block_on` waker of runtime `owner`, its wait record.
pub(crate) fn wait_record_of(waker: &Waker, owner: u64) -> Option<&WaitRecord> {
    if !std::ptr::eq(waker.vtable(), &SIGNAL_WAKER_VTABLE) {
        return None;
    }
    // SAFETY: a waker with our vtable carries a live Arc<Signal> pointer, kept alive by
    // the waker we borrow.
    let signal = unsafe { &*waker.data().cast::<Signal>() };
    (signal.shared.id == owner).then_some(&signal.wait)
}

impl Signal {
    fn wake(&self) {
        if self.notified.swap(true, SeqCst) || !self.parked.load(SeqCst) {
            return;
        }
        let claimed = {
            let mut counts = self.shared.idle.lock();
            self.claim(&mut counts)
        };
        if claimed {
            self.parker.unpark();
        }
    }

    /// Under the scheduler lock: if the caller is parked, count it running again. The
    /// caller must unpark it after releasing the lock.
    fn claim(&self, counts: &mut Counts) -> bool {
        if !self.parked.swap(false, SeqCst) {
            return false;
        }
        counts.block_on_claimed();
        true
    }

    /// The caller sleeps (its future returned `Pending` and no wake arrived yet).
    pub(crate) fn is_parked(&self) -> bool {
        self.parked.load(SeqCst)
    }

    /// A wake arrived that the caller has not consumed yet (it is about to run).
    pub(crate) fn wake_pending(&self) -> bool {
        self.notified.load(SeqCst)
    }

    /// Wakers of this `block_on` alive beyond the runtime's own holders (its `Context`'s,
    /// the ones in `JoinHandle` slots): held by someone the runtime cannot see.
    pub(crate) fn held_outside(self: &Arc<Self>) -> usize {
        let holds = self.wait.holds.load(SeqCst);
        Arc::strong_count(self).saturating_sub(OWN_REFS + holds)
    }

    /// Deadlock with `OnDeadlock::Panic`: hand the report to the sleeper. Under the lock;
    /// returns whether the caller must unpark it.
    pub(crate) fn deliver_deadlock(&self, counts: &mut Counts, report: &str) -> bool {
        *self.deadlock.lock().unwrap_or_else(|e| e.into_inner()) = Some(report.to_owned());
        self.claim(counts)
    }

    pub(crate) fn unpark(&self) {
        self.parker.unpark();
    }
}

/// Runs `future` to completion on the calling thread, within runtime `shared`.
#[track_caller]
pub(crate) fn block_on<F: Future>(shared: &Arc<Shared>, future: F) -> F::Output {
    let location = Location::caller();
    let (_guard, on_blocking_thread) = context::enter_block_on(shared);
    let _reactor = shared.reactor.enter();
    let signal = Arc::new(Signal {
        shared: shared.clone(),
        location,
        wait: WaitRecord::default(),
        notified: AtomicBool::new(false),
        parked: AtomicBool::new(false),
        deadlock: Mutex::new(None),
        parker: Parker::new(),
    });
    let _registration = Registration::new(&signal, on_blocking_thread);
    let waker = signal_waker(&signal);
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        shared
            .block_on_polls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let poll = {
            let _wait = runnel_reactor::wait::enter(&signal.wait.reason);
            runnel_reactor::coop::with_budget(|| future.as_mut().poll(&mut cx))
        };
        if let Poll::Ready(output) = poll {
            return output;
        }
        // Sysmon re-checks for a deadlock (and reports a stall) while the caller sleeps.
        shared.poller.ensure_started(shared);
        if let Err(report) = sleep_until_woken(shared, &signal) {
            // Panics at the caller's `block_on` (track_caller), like Go's fatal error
            // points at the program, not the runtime.
            panic!("{report}");
        }
    }
}

/// Returns when the waker fired, or with the deadlock report to panic with.
fn sleep_until_woken(shared: &Arc<Shared>, signal: &Arc<Signal>) -> Result<(), String> {
    loop {
        if signal.notified.swap(false, SeqCst) {
            return Ok(());
        }
        let (_, report) = {
            let mut counts = shared.idle.lock();
            signal.parked.store(true, SeqCst);
            if signal.notified.load(SeqCst) {
                signal.parked.store(false, SeqCst);
                continue;
            }
            detector::check_after(shared, &mut counts, Counts::block_on_idle)
        };
        if let Some(report) = report {
            report.deliver(shared);
        }
        signal.parker.park();
        if let Some(report) = signal
            .deadlock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            return Err(report);
        }
    }
}

/// Counts the caller as a worker while it is inside `block_on`. A blocking-pool job that
/// calls `block_on` (the pattern the nesting panic recommends) stops counting as a running
/// job meanwhile: it is a `block_on` caller, asleep or awake like any other, so a deadlock
/// it waits on is reported instead of hidden behind "a blocking job runs".
struct Registration {
    signal: Arc<Signal>,
    on_blocking_thread: bool,
}

impl Registration {
    fn new(signal: &Arc<Signal>, on_blocking_thread: bool) -> Registration {
        let shared = &signal.shared;
        // Raises `workers` before (or with) lowering `blocking`: never quiet, but routed
        // through the one transition path all the same.
        detector::after_transition(shared, |counts| {
            counts.block_on_enter(signal.clone(), on_blocking_thread)
        });
        Registration {
            signal: signal.clone(),
            on_blocking_thread,
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let signal = &self.signal;
        // Unwinding out of a delivered deadlock already un-idled us; anything else leaving
        // while parked is a bug, but keep the counts right regardless.
        let was_parked = signal.parked.swap(false, SeqCst);
        detector::after_transition(&signal.shared, |counts| {
            counts.block_on_leave(signal, self.on_blocking_thread, was_parked)
        });
    }
}
