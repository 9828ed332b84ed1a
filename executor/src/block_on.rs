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

use crate::scheduler::core::Core;
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
    /// Holds a current-thread runtime's core: `CORE_REFS` more references are the
    /// runtime's own (`Core` and `Counts::core`).
    pub(crate) holds_core: AtomicBool,
    /// Set by the deadlock check (under the scheduler lock) when `OnDeadlock::Panic`.
    deadlock: Mutex<Option<String>>,
    parker: Parker,
}

/// `Arc` references to a `Signal` that are not wakers someone else holds: `block_on`'s
/// own, its `Registration`'s, the scheduler's list entry, and the `Context`'s waker.
const OWN_REFS: usize = 4;
/// References to the `Signal` of the core's holder kept by `Core` and `Counts::core`.
const CORE_REFS: usize = 2;

/// Known to the join-waker slot, which keeps such a waker in one word (its data pointer,
/// tagged in the low 2 bits: `Signal` is at least 4-aligned).
pub(crate) static SIGNAL_WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

const _: () = assert!(std::mem::align_of::<Signal>() >= 4);

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
    pub(crate) fn wake(&self) {
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
    pub(crate) fn claim(&self, counts: &mut Counts) -> bool {
        if !self.parked.swap(false, SeqCst) {
            return false;
        }
        counts.block_on_claimed();
        true
    }

    /// The caller, counted parked, runs again by itself (it found events in the reactor).
    /// False if someone claimed it first (its unpark is on the way).
    pub(crate) fn claim_self(&self) -> bool {
        let mut counts = self.shared.idle.lock();
        self.claim(&mut counts)
    }

    pub(crate) fn parker(&self) -> &Parker {
        &self.parker
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
        let core = if self.holds_core.load(SeqCst) {
            CORE_REFS
        } else {
            0
        };
        Arc::strong_count(self).saturating_sub(OWN_REFS + core + holds)
    }

    /// Deadlock with `OnDeadlock::Panic`: hand the report to the sleeper. Under the lock;
    /// returns whether the caller must unpark it.
    pub(crate) fn deliver_deadlock(&self, counts: &mut Counts, report: &str) -> bool {
        // The first delivery wins: a later one (a deadlock found after a panic shut the
        // runtime down and cancelled every task) must not replace the cause.
        self.deadlock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(|| report.to_owned());
        self.claim(counts)
    }

    /// The report or shutdown message handed to this caller, if any (taken once).
    fn take_delivered(&self) -> Option<String> {
        self.deadlock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
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
        holds_core: AtomicBool::new(false),
        deadlock: Mutex::new(None),
        // The core's holder (current-thread runtime) may sleep in the reactor's poll.
        parker: Parker::with_reactor(shared.reactor.clone()),
    });
    let _registration = Registration::new(&signal, on_blocking_thread);
    let waker = signal_waker(&signal);
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    // Current-thread runtime: the core, once this caller holds it (see `scheduler::core`).
    // Dropped before `_registration`, so the other callers are woken to take it over
    // while this one still counts as running.
    let mut core: Option<Core> = None;
    let mut poll_future = true;
    loop {
        if poll_future {
            shared
                .block_on_polls
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let poll = {
                runnel_reactor::wait::polling(&signal.wait.reason, || {
                    runnel_reactor::coop::with_budget(|| future.as_mut().poll(&mut cx))
                })
            };
            if let Poll::Ready(output) = poll {
                return output;
            }
            // Sysmon re-checks for a deadlock (and reports a stall) while the caller
            // sleeps, and watches the polls of the tasks the core runs.
            shared.poller.ensure_started(shared);
        }
        if core.is_none() {
            core = Core::try_take(shared, &signal);
        }
        if let Some(held) = &mut core {
            if held.must_release() {
                core = None;
            } else if held.run_one() {
                // One task at a time, so a wake of the future is served between tasks.
                poll_future = signal.notified.swap(false, SeqCst);
                continue;
            }
        }
        if signal.notified.swap(false, SeqCst) {
            poll_future = true;
            continue;
        }
        if let Err(report) = sleep_until_woken(shared, &signal, core.as_mut()) {
            // Panics at the caller's `block_on` (track_caller), like Go's fatal error
            // points at the program, not the runtime.
            panic!("{report}");
        }
        poll_future = signal.notified.swap(false, SeqCst);
    }
}

/// Returns when woken — by the waker (`notified` is then set), or, for the core's holder,
/// by queued work or reactor events — or with the deadlock report to panic with.
fn sleep_until_woken(
    shared: &Arc<Shared>,
    signal: &Arc<Signal>,
    mut core: Option<&mut Core>,
) -> Result<(), String> {
    loop {
        // Delivered while this caller was awake (the core's holder ran the task whose
        // panic shut the runtime down): nothing to sleep for.
        if let Some(report) = signal.take_delivered() {
            return Err(report);
        }
        if signal.notified.load(SeqCst) {
            return Ok(());
        }
        let (_, report) = {
            let mut counts = shared.idle.lock();
            signal.parked.store(true, SeqCst);
            if core.is_some() {
                // Announce, then re-check the queues (core invariant 3).
                shared.idle.set_core_sleeping(true);
            }
            let work_queued = core.is_some() && shared.has_queued_work();
            if signal.notified.load(SeqCst) || work_queued {
                signal.parked.store(false, SeqCst);
                shared.idle.set_core_sleeping(false);
                return Ok(());
            }
            detector::check_after(shared, &mut counts, Counts::block_on_idle)
        };
        if let Some(report) = report {
            report.deliver(shared);
        }
        match core.as_deref_mut() {
            Some(held) => held.sleep(),
            None => signal.parker.park(),
        }
        if let Some(report) = signal.take_delivered() {
            return Err(report);
        }
        if core.is_some() {
            shared.idle.set_core_sleeping(false);
            return Ok(());
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
