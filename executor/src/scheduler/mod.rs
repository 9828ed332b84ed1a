//! The multi-worker scheduler: where tasks go when they are spawned or woken, and how a
//! sleeping worker is brought back for them.
//!
//! - `local_queue`: each worker's stealable ring (Go's `runq`);
//! - `injector`: the global queue for wakes from outside the workers;
//! - `idle`: the scheduler lock, the idle/searching counts and the deadlock-check trigger;
//! - `park`: the per-worker parker;
//! - `worker`: the worker loop (find work, run it, steal, park);
//! - `core`: a current-thread runtime's role 0, run by the `block_on` caller holding it;
//! - `threads`, `retake`, `role`: worker threads, spares and retaking a stuck role.
//!
//! Placement rule: a task woken or spawned *on one of this runtime's workers* goes to that
//! worker's LIFO slot (the task it displaces to the back of the local queue); a task that
//! woke itself during its own poll (a yield) goes to the back of the local queue, and so
//! does a consumer fed by many (woken again while it is the task this worker last ran out
//! of the LIFO slot: see `schedule_task`); anything else goes to the injector. Whenever work lands somewhere another worker could take it,
//! `notify_parked` wakes a sleeper unless one is already searching.

pub(crate) mod core;
pub(crate) mod cpu_clock;
pub(crate) mod idle;
pub(crate) mod injector;
pub(crate) mod local_queue;
pub(crate) mod park;
pub(crate) mod retake;
pub(crate) mod role;
pub(crate) mod threads;
pub(crate) mod worker;

use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::Arc;

use crate::blocking::BlockingPool;
use crate::context;
use crate::metrics::WorkerMetrics;
use crate::runtime::{self, Config};
use crate::task::{Header, Notified, OwnedTasks, Schedule, Task};
use idle::Idle;
use injector::Injector;
use local_queue::LocalQueue;
use park::Parker;
use role::RoleState;

/// Everything the workers, the poller, the blocking pool and every task share.
pub(crate) struct Shared {
    /// Distinguishes runtimes (see `Schedule::owner`).
    pub(crate) id: u64,
    pub(crate) remotes: Box<[Remote]>,
    pub(crate) injector: Injector<Arc<Shared>>,
    pub(crate) idle: Idle,
    pub(crate) owned: OwnedTasks<Arc<Shared>>,
    pub(crate) reactor: runnel_reactor::Handle,
    /// The reactor's poll. An idle worker about to sleep takes it and sleeps in it (one at
    /// a time, Go's netpoll shape); a busy worker polls it without blocking every
    /// `GLOBAL_QUEUE_INTERVAL` ticks; the poller thread polls it when nobody else has.
    pub(crate) driver: std::sync::Mutex<runnel_reactor::Driver>,
    /// When any thread last polled the driver, in µs since `epoch`: the poller thread
    /// polls only a reactor nobody has polled for `UNATTENDED_AFTER`.
    pub(crate) reactor_polled_at: AtomicU64,
    pub(crate) epoch: std::time::Instant,
    pub(crate) blocking: BlockingPool,
    pub(crate) config: Config,
    pub(crate) shutdown: AtomicBool,
    /// Set once a spawned task panicked under `UnhandledPanic::ShutdownRuntime`: the message
    /// every `block_on` of the runtime panics with (see `runtime::shut_down_on_panic`).
    pub(crate) panic_shutdown: runtime::PanicShutdown,
    /// Live `Handle`s, the `Runtime`'s own included: each may spawn at any time from a
    /// thread the runtime cannot see, so the detector reports only while every one is lent
    /// to a `block_on` call (its caller cannot use it). The runtime's own threads hold
    /// uncounted `Arc<Shared>`s instead.
    pub(crate) outside_handles: AtomicUsize,
    /// Wakers taken out of the reactor and woken, by anyone (metrics).
    pub(crate) reactor_wakeups: AtomicU64,
    /// Times the poller thread took wakers out while holding the pretend-running token.
    pub(crate) token_drains: AtomicU64,
    pub(crate) deadlock_checks: AtomicU64,
    pub(crate) deadlock_reports: AtomicU64,
    pub(crate) stalls: AtomicU64,
    pub(crate) stall_reports: AtomicU64,
    /// Cycles of tasks awaiting each other's joins, reported while the runtime runs on.
    pub(crate) partial_deadlocks: AtomicU64,
    /// How long each waiting task has gone unpolled, as sysmon's scans saw it (dumps).
    pub(crate) wait_ages: crate::detector::WaitAges,
    /// Tasks reported leaked (waiting, and no waker of them exists).
    pub(crate) leaked_tasks: AtomicU64,
    pub(crate) retakes: AtomicU64,
    /// Polls of `block_on` futures (progress, for the report de-duplication).
    pub(crate) block_on_polls: AtomicU64,
    /// Worker threads, with a role or waiting for one (see `retake`).
    pub(crate) spares: threads::SparePool,
    /// The poller (sysmon) thread, started on first need (see `poller::PollerThread`).
    pub(crate) poller: crate::poller::PollerThread,
    /// Current-thread runtime: which `block_on` caller runs role 0 (see `core`).
    pub(crate) core: core::CoreSlot,
}

/// The part of a worker other threads touch: its queue (to steal), its LIFO slot, its
/// parker (to wake it) and its counters. Aligned so two workers never share a line.
#[repr(align(128))]
pub(crate) struct Remote {
    pub(crate) queue: LocalQueue<Arc<Shared>>,
    /// The most recently woken task (Go's `runnext`). Holds a `Notified` reference.
    /// The owner swaps it; a thief may take it when the ring is empty (unlike tokio's,
    /// tokio #4941), so a worker stuck in a long poll does not strand it.
    pub(crate) lifo: AtomicPtr<Header>,
    /// The id of the task this worker last ran out of its LIFO slot (0: none yet). Owner
    /// only (Relaxed): `schedule_task` sends that task, woken again, to the back of the
    /// queue instead of the slot (see "a consumer fed by many" there).
    pub(crate) lifo_ran: AtomicU64,
    pub(crate) parker: Parker,
    pub(crate) metrics: WorkerMetrics,
    /// Whether a thread runs this role (`retake::{FREE, ACTIVE, RETAKEN}`).
    pub(crate) role: role::Role,
    /// The task being polled (for the report of a task blocking its worker).
    pub(crate) current_task: AtomicU64,
    /// The CPU clock of the thread running the role: sysmon tells a worker computing in a
    /// long poll from one blocked in it (`retake.rs`).
    pub(crate) cpu_clock: cpu_clock::CpuClock,
    /// Set by a spawn that claimed this (parked) worker to start the poller thread; taken
    /// when its park returns (`poller::PollerThread::hand_duty`).
    pub(crate) sysmon_duty: AtomicBool,
    /// Whether a thread has begun running this role, and whether it owes the poller's
    /// start from before it began (`Boot`).
    pub(crate) boot: Boot,
}

/// A role's start. An initial role of a multi-thread runtime begins at `NO_THREAD`: its
/// thread is started by whoever first claims it as a sleeper (`Shared::wake_claimed`,
/// which swaps in `UNBOOTED`), so a runtime that never needs a worker starts none. A spare
/// slot begins at `UNBOOTED` (its thread is started by a retake). The thread swaps in
/// `BOOTED` as it begins its loop (`Worker::run`). A spawn that needs the poller thread
/// started may swap `UNBOOTED` for `DUTY` (`hand_duty`): the thread, not yet in any poll,
/// then owes the start. One swap per thread start, none per poll.
pub(crate) struct Boot(crate::loom::atomic::AtomicU8);

const UNBOOTED: u8 = 0;
const BOOTED: u8 = 1;
const DUTY: u8 = 2;
const NO_THREAD: u8 = 3;

impl Boot {
    fn new(lazy: bool) -> Boot {
        Boot(crate::loom::atomic::AtomicU8::new(if lazy {
            NO_THREAD
        } else {
            UNBOOTED
        }))
    }

    /// The role's thread begins its loop. Returns whether it owes the poller's start.
    pub(crate) fn begin(&self) -> bool {
        // AcqRel: pairs with `hand_duty`'s CAS (nothing else is published through it).
        self.0.swap(BOOTED, AcqRel) == DUTY
    }

    /// Gives the poller's start to the role's thread if it has not begun its loop yet.
    pub(crate) fn hand_duty(&self) -> bool {
        // The load first: once every role has begun (nearly always), no write at all.
        self.0.load(Relaxed) == UNBOOTED
            && self
                .0
                .compare_exchange(UNBOOTED, DUTY, AcqRel, Relaxed)
                .is_ok()
    }

    /// The claimer of a parked role takes on starting its thread, if it has none yet.
    /// Only one thread can hold a claim on a role at a time (the sleeper list is under the
    /// scheduler lock), so this races only with `hand_duty`, which leaves `NO_THREAD` alone.
    fn claim_start(&self) -> bool {
        self.0.load(Relaxed) == NO_THREAD
            && self
                .0
                .compare_exchange(NO_THREAD, UNBOOTED, AcqRel, Relaxed)
                .is_ok()
    }

    /// A start taken by `claim_start` failed: the role has no thread again. Returns whether
    /// `hand_duty` gave it the poller's start meanwhile (the caller must pass that on).
    fn undo_start(&self) -> bool {
        self.0.swap(NO_THREAD, AcqRel) == DUTY
    }

    /// Whether a thread was ever started for this role.
    pub(crate) fn has_thread(&self) -> bool {
        self.0.load(Acquire) != NO_THREAD
    }
}

impl Remote {
    /// `lazy`: an initial role whose thread starts when it is first claimed (`Boot`).
    pub(crate) fn new(reactor: &runnel_reactor::Handle, role: RoleState, lazy: bool) -> Remote {
        Remote {
            queue: LocalQueue::new(),
            lifo: AtomicPtr::new(ptr::null_mut()),
            lifo_ran: AtomicU64::new(0),
            parker: Parker::with_reactor(reactor.clone()),
            metrics: WorkerMetrics::default(),
            role: role::Role::new(role),
            current_task: AtomicU64::new(0),
            cpu_clock: cpu_clock::CpuClock::new(),
            sysmon_duty: AtomicBool::new(false),
            boot: Boot::new(lazy),
        }
    }

    /// Puts `task` in the LIFO slot, returning the task it displaced.
    pub(crate) fn swap_lifo(
        &self,
        task: Option<Notified<Arc<Shared>>>,
    ) -> Option<Notified<Arc<Shared>>> {
        let new = task.map_or(ptr::null_mut(), |t| t.into_raw().as_ptr());
        // AcqRel: publishes the task to a thief that takes the slot, and acquires the
        // one we take out.
        let old = self.lifo.swap(new, AcqRel);
        // SAFETY: a non-null slot value is a Notified reference put there by swap_lifo.
        NonNull::new(old).map(|p| unsafe { Notified::from_raw(p) })
    }

    pub(crate) fn take_lifo(&self) -> Option<Notified<Arc<Shared>>> {
        if self.lifo.load(Relaxed).is_null() {
            return None;
        }
        self.swap_lifo(None)
    }

    pub(crate) fn has_work(&self) -> bool {
        !self.queue.is_empty() || !self.lifo.load(Acquire).is_null()
    }
}

impl Schedule for Arc<Shared> {
    fn schedule(&self, task: Notified<Self>) {
        self.schedule_task(task, false);
    }

    fn yield_now(&self, task: Notified<Self>) {
        self.schedule_task(task, true);
    }

    fn release(&self, task: &Task<Self>) -> Option<Task<Self>> {
        self.owned.remove(task)
    }

    fn unhandled_panic(&self, id: crate::task::Id, payload: &(dyn std::any::Any + Send)) {
        runtime::shut_down_on_panic(self, id, payload);
    }

    fn owner(&self) -> u64 {
        self.id
    }
}

thread_local! {
    /// The runtime whose reactor this thread is draining, and whether a notify is owed.
    static NOTIFY_BATCH: std::cell::Cell<Option<(*const Shared, bool)>> =
        const { std::cell::Cell::new(None) };
}

/// Defers this thread's `notify_parked` calls for runtime `shared` while it wakes a batch
/// of tasks taken out of that runtime's reactor, and makes one at the end (`finish`). The
/// draining thread is counted running throughout (a non-idle worker or core holder, or the
/// poller holding the token), and `finish` runs before it lets go of that, so the deferral
/// changes nothing the detector reads. Wakes of another runtime's tasks (a custom waker)
/// are not deferred: this batch's notify would go to the wrong runtime.
pub(crate) struct NotifyBatch(());

impl NotifyBatch {
    pub(crate) fn begin(shared: &Shared) -> NotifyBatch {
        NOTIFY_BATCH.with(|b| b.set(Some((shared as *const Shared, false))));
        NotifyBatch(())
    }

    /// Inside a batch for `shared`: records that a notify is owed and returns true.
    fn defer(shared: &Shared) -> bool {
        NOTIFY_BATCH.with(|b| match b.get() {
            Some((of, _)) if std::ptr::eq(of, shared) => {
                b.set(Some((of, true)));
                true
            }
            _ => false,
        })
    }

    /// Ends the batch, making the owed notify.
    pub(crate) fn finish(self, shared: &Arc<Shared>) {
        let owed = NOTIFY_BATCH.with(|b| matches!(b.get(), Some((_, true))));
        drop(self);
        if owed {
            shared.notify_parked();
        }
    }
}

impl Drop for NotifyBatch {
    fn drop(&mut self) {
        NOTIFY_BATCH.with(|b| b.set(None));
    }
}

impl Shared {
    pub(crate) fn schedule_task(self: &Arc<Self>, task: Notified<Arc<Shared>>, is_yield: bool) {
        // A retaken role's queues are being emptied by others; its stuck thread's wakes go
        // to the injector instead.
        let local = context::current_worker(self)
            .filter(|&index| self.remotes[index].role.load() == RoleState::Active);
        match local {
            Some(index) => {
                let remote = &self.remotes[index];
                // A consumer fed by many: a task polled here wakes the task this worker last
                // ran out of the LIFO slot, and no other task has run from the slot since, so
                // it is being woken by one queued producer after another (N tasks sending
                // into one channel). Only wakes from a task's poll: a task woken by the
                // reactor or a timer each time it runs (a connection) keeps the slot, which
                // needs no sibling notified (`notify_parked_or_defer` below). In the slot it would run after every producer and
                // take one message per poll; at the back of the queue it takes what the
                // producers ahead of it sent in one poll. A ping-pong pair alternates in
                // the slot and never matches (BENCHMARKS.md, "fan-in").
                // Relaxed: only this thread writes `lifo_ran`.
                let fed_by_many =
                    remote.metrics.in_poll() && remote.lifo_ran.load(Relaxed) == task.id().as_u64();
                let displaced = if is_yield || fed_by_many {
                    Some(task)
                } else {
                    remote.swap_lifo(Some(task))
                };
                // A task only in the LIFO slot is about to run here: waking a sibling for
                // it would cost a futex for nothing (the ping-pong case).
                if let Some(task) = displaced {
                    remote.queue.push_back(task, &self.injector);
                    self.notify_parked_or_defer();
                }
            }
            None => {
                self.injector.push(task);
                self.notify_parked_or_defer();
            }
        }
    }

    /// `notify_parked`, unless this thread is draining the reactor (`NotifyBatch`): then
    /// once, when the drain ends. A drain wakes tasks in bursts; notifying on each one woke
    /// a sibling in the middle of the burst, which stole a task, ran dry and parked again —
    /// a futex wake and wait per round of events (0.17 futex calls per HTTP request against
    /// 0.03 deferred; BENCHMARKS.md, "notify once after a drain").
    fn notify_parked_or_defer(self: &Arc<Self>) {
        if !NotifyBatch::defer(self) {
            self.notify_parked();
        }
    }

    /// Wakes a parked worker to look for work, unless one is searching already.
    pub(crate) fn notify_parked(self: &Arc<Self>) {
        if self.config.current_thread {
            return self.notify_core();
        }
        // The SeqCst fence pairs with the one a parking worker runs between counting itself
        // idle and re-checking the queues: either we see it idle or it sees our work.
        std::sync::atomic::fence(SeqCst);
        if !self.idle.should_notify() {
            return;
        }
        let claimed = {
            let mut counts = self.idle.lock();
            if self.idle.num_searching() != 0 {
                return;
            }
            self.idle.claim_sleeper(&mut counts)
        };
        if let Some(index) = claimed {
            self.wake_claimed(index);
        }
    }

    /// Wakes worker `index`, which the caller claimed as a sleeper (counted running and
    /// searching under the scheduler lock, `Idle::claim_sleeper`): unparks its thread, or
    /// starts it if the role never had one (`Boot`). Called with the scheduler lock
    /// released: a thread start takes tens of microseconds. The new thread begins as a
    /// claimed worker returning from its park would (`Worker::run`), so the claim's count
    /// and its one wake-up (the start, instead of an unpark) match as for any sleeper.
    pub(crate) fn wake_claimed(self: &Arc<Self>, index: usize) {
        let remote = &self.remotes[index];
        if !remote.boot.claim_start() {
            remote.parker.unpark();
            return;
        }
        let Err(err) = self.spares.start_claimed(self, index) else {
            return;
        };
        // Refused only once shutdown took the thread handles: nothing is left to run.
        if self.is_shutdown() {
            return;
        }
        // Put the role back as an unstarted sleeper so a later claim tries again. No
        // deadlock check here: the work this claim was for is still queued, which the
        // check would call an inconsistent count, and the panic below is the report.
        let owed_poller = remote.boot.undo_start();
        {
            let mut counts = self.idle.lock();
            let _ = self.idle.worker_idle(&mut counts, index);
            self.idle.stop_searching();
        }
        if owed_poller {
            self.poller.ensure_started(self);
        }
        panic!("runnel: could not start worker thread {index}: {err}");
    }

    /// Whether any initial role's thread was ever started.
    pub(crate) fn has_worker_thread(&self) -> bool {
        self.remotes[..self.idle.num_workers()]
            .iter()
            .any(|r| r.boot.has_thread())
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.load(Acquire)
    }

    /// Records that the driver was just polled (see `reactor_polled_at`).
    pub(crate) fn note_reactor_polled(&self) {
        // Relaxed: a timestamp hint for the poller's heuristic, ordering nothing.
        self.reactor_polled_at
            .store(self.epoch.elapsed().as_micros() as u64, Relaxed);
    }

    /// Polls run so far, all workers (the per-worker counters summed).
    pub(crate) fn total_polls(&self) -> u64 {
        let workers: u64 = self.remotes.iter().map(|r| r.metrics.polls()).sum();
        workers + self.block_on_polls.load(Relaxed)
    }

    /// Whether any run queue (global, local, LIFO) holds a task.
    pub(crate) fn has_queued_work(&self) -> bool {
        !self.injector.is_empty() || self.remotes.iter().any(Remote::has_work)
    }
}
