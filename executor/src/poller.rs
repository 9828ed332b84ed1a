//! The poller thread: runnel's `sysmon`, and the one rule for taking wakers out of the
//! reactor.
//!
//! **Who polls the reactor.** An idle worker about to sleep takes the driver and sleeps in
//! its poll (one at a time: Go's netpoll shape, which saves the thread hop a dedicated
//! I/O thread would cost on every event); a busy worker polls it without blocking every
//! `GLOBAL_QUEUE_INTERVAL` ticks while anything waits on I/O or timers; and this thread
//! polls it on its tick when nobody else holds it (every worker busy).
//!
//! **The rule** (ARCHITECTURE.md invariant 3–4): whoever takes wakers out is counted running
//! first — a worker un-idles itself, this thread takes the pretend-running token — and the
//! reactor's waiter counts drop only after every woken task is queued (`drain_ready`).
//! Releasing the token runs the deadlock check.
//!
//! **Sysmon duties** on a tick that starts at 20 µs and doubles up to 10 ms, as Go's
//! `sysmon` delay; draining the reactor does not shorten it (Go's sysmon netpoll does not
//! either):
//! - notice a worker stuck in one poll (blocking code in a task): count it in
//!   `RuntimeMetrics::stalls`, retake its role after `retake_after` (see
//!   `scheduler/retake.rs`), and name the task on stderr after 1 s;
//! - while nothing runs, re-run the deadlock check (a waker dropped by a foreign thread
//!   can turn "maybe" into a deadlock without any thread going idle);
//! - after `stall_report_after` during which no poll ran (`block_on`'s included) and every
//!   check found only holders the runtime cannot see (`Verdict::Maybe`: no I/O waiter, no
//!   armed timer, no blocking job), print one stall report.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::task::Waker;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use runnel_reactor::Driver;

use crate::detector;
use crate::runtime::{BLOCKING_REPORT_AFTER, STALL_AFTER};
use crate::scheduler::role::RoleState;
use crate::scheduler::{retake, Shared};

const MIN_TICK: Duration = Duration::from_micros(20);
/// Also the longest an unattended reactor (every worker busy) waits for sysmon's drain,
/// Go's value for the same fallback.
const MAX_TICK: Duration = Duration::from_millis(10);

/// How often sysmon scans the tasks for partial deadlocks and leaks
/// (`detector::PartialCheck`).
const PARTIAL_CHECK_EVERY: Duration = Duration::from_millis(250);

/// The poller thread polls the reactor only when no worker has for this long. Busy
/// workers poll it every 61st tick and an idle one sleeps in it, so this is a fallback;
/// polling on every 20 µs tick instead cost measurable CPU on a 2-core machine (the
/// poller kept finding fresh events and never let its tick grow).
const UNATTENDED_AFTER: Duration = Duration::from_millis(1);

/// The poller thread's life: started on first need, not by `Builder::build`, so a runtime
/// that is built and dropped (or only runs `block_on` futures that finish on their first
/// poll) costs one thread fewer, as tokio's does.
///
/// **When it must run**: sysmon's duties all concern a task being polled (stall, retake,
/// blocking report) or a waiter asleep (deadlock re-check, stall report). So it is started
/// for every spawn while tasks are live, by `block_on` before its caller first sleeps, and
/// by `spawn_blocking` (a job may hold a task's waker). A poll that began before sysmon's
/// first tick is timed from that tick: a stall is noticed that much later, never missed. A
/// task waiting in a queue needs no sysmon (queued work is never quiet: a worker re-checks
/// the queues before it parks), and neither does the reactor fallback (polling while every
/// worker is busy) before a task exists.
///
/// **Who starts it on a spawn** (`start_for_spawn`): a worker that cannot be inside a poll
/// — one whose thread has not begun its loop yet (`scheduler::Boot`), else a parked one,
/// claimed for it like for any work (counted running and searching before it is unparked,
/// ARCHITECTURE.md invariant 3). It owes the start from then on. Before it polls a task
/// (which might never return) it hands the duty on the same way, or starts the thread
/// itself if nobody can take it (`start_before_poll`); if it finds no work, it sleeps in
/// the reactor for at most `SYSMON_GRACE` (1 ms) and then starts it (on its condvar, which
/// has no timeout, it starts it before sleeping) — `start_as_duty`. Only if no worker can
/// take the duty does the spawner start the thread itself. Starting a thread
/// costs ~30 µs; on the spawner it was the whole difference between runnel's and tokio's
/// "build + first task" (BENCHMARKS.md, "Timers and start-up"). The claimed worker starts
/// it only if a task is still live when it looks: a runtime whose first tasks are done by
/// then (a start-up, a short-lived runtime) has nothing to watch, and the next spawn asks
/// again. A spawn reads the request without a lock after binding its task; the worker
/// withdraws it and then counts the live tasks once more, and the owned list's locks order
/// the two: either the worker sees the task (and starts the thread), or the spawn sees the
/// withdrawal (and asks again) — `StartRequest`, loom model 5.
///
/// Start and shutdown meet under `state` too: shutdown sets `Shared::shutdown` before
/// taking the lock and leaves `Stopped`; a start under the lock checks both, so either the
/// thread exists before shutdown takes its handle (and is joined), or it is never started.
pub(crate) struct PollerThread {
    /// Set once the thread runs; the fast path of `ensure_started` and `start_for_spawn`.
    started: AtomicBool,
    /// A worker owes the start (`start_for_spawn`). Written under `state`, read without it
    /// by spawns (type header: the fences that pair it with the live-task count).
    requested: StartRequest,
    state: Mutex<PollerState>,
}

enum PollerState {
    NotStarted,
    Running(JoinHandle<()>),
    Stopped,
}

impl PollerThread {
    pub(crate) fn new() -> PollerThread {
        PollerThread {
            started: AtomicBool::new(false),
            requested: StartRequest::new(),
            state: Mutex::new(PollerState::NotStarted),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PollerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the poller thread unless it runs already. Returns whether it runs (or the
    /// runtime is shutting down, when none is wanted). A failed thread start is reported
    /// on stderr and retried on the next call: until then there is no stall report, no
    /// retake and no deadlock re-check, never a false report.
    pub(crate) fn ensure_started(&self, shared: &Arc<Shared>) -> bool {
        // Acquire: pairs with the Release below (nothing else is published through it;
        // it only saves the lock once the thread runs).
        if self.started.load(Acquire) {
            return true;
        }
        let mut state = self.lock();
        self.start_locked(&mut state, shared)
    }

    /// After a spawn (the task is bound and queued): makes sure the thread gets started,
    /// by a worker that cannot be inside a poll if there is one, else here (type header).
    pub(crate) fn start_for_spawn(&self, shared: &Arc<Shared>) {
        if self.started.load(Acquire) {
            return;
        }
        if self.requested.is_set() {
            return; // a worker owes the start
        }
        {
            let state = self.lock();
            if !matches!(*state, PollerState::NotStarted)
                || shared.is_shutdown()
                || self.requested.is_set()
            {
                return;
            }
            self.requested.set();
        }
        if !self.hand_duty(shared, None) {
            let mut state = self.lock();
            self.start_locked(&mut state, shared);
        }
    }

    /// Gives the owed start to a worker that is certainly not inside a poll: a parked one
    /// (or one with no thread yet, whose thread the claim starts), claimed like for any
    /// work (counted running and searching before it is woken), else one whose thread has
    /// not begun its loop yet (it takes the duty as it begins). A parked one first: a
    /// thread that has not begun was started by a claim for work moments ago and is about
    /// to poll it, and the duty would make it start a thread before that first poll (at
    /// start-up, the whole of "build + first task" would wait for it). `except`: the worker
    /// handing the duty on. Not under `state`: the scheduler lock is never taken inside it.
    pub(crate) fn hand_duty(&self, shared: &Arc<Shared>, except: Option<usize>) -> bool {
        if shared.config.current_thread {
            return false; // no worker threads: the `block_on` caller holding the core runs tasks
        }
        let claimed = {
            let mut counts = shared.idle.lock();
            shared.idle.claim_sleeper(&mut counts)
        };
        if let Some(index) = claimed {
            // Release: seen by the worker once its park returns (the unpark orders it), or
            // as its thread begins if the claim starts it.
            shared.remotes[index].sysmon_duty.store(true, Release);
            shared.wake_claimed(index);
            return true;
        }
        // The initial roles whose thread was started but has not begun its loop.
        shared.remotes[..shared.idle.num_workers()]
            .iter()
            .enumerate()
            .any(|(index, remote)| Some(index) != except && remote.boot.hand_duty())
    }

    /// The worker that owes the start, once its grace period is over (or before a sleep
    /// that cannot time out): starts the thread if a task is live (type header).
    pub(crate) fn start_as_duty(&self, shared: &Arc<Shared>) {
        {
            let mut state = self.lock();
            if !matches!(*state, PollerState::NotStarted) {
                return;
            }
            if shared.owned.len() > 0 {
                self.start_locked(&mut state, shared);
                return;
            }
            // Nothing to watch: withdraw the request; the next spawn asks again.
            self.requested.withdraw();
        }
        // A spawn that still saw the request had bound its task: counted here (`StartRequest`).
        if shared.owned.len() > 0 {
            self.ensure_started(shared);
        }
    }

    /// The worker that owes the start is about to poll a task (which might never return):
    /// hands the duty to another worker that is not in a poll, or starts the thread now.
    pub(crate) fn start_before_poll(&self, shared: &Arc<Shared>, index: usize) {
        if self.started.load(Acquire) || self.hand_duty(shared, Some(index)) {
            return;
        }
        let mut state = self.lock();
        self.start_locked(&mut state, shared);
    }

    fn start_locked(&self, state: &mut PollerState, shared: &Arc<Shared>) -> bool {
        match *state {
            PollerState::Running(_) | PollerState::Stopped => return true,
            PollerState::NotStarted if shared.is_shutdown() => return true,
            PollerState::NotStarted => {}
        }
        let poller_shared = shared.clone();
        match shared
            .config
            .poller_thread_builder()
            .spawn(move || run(poller_shared))
        {
            Ok(handle) => {
                *state = PollerState::Running(handle);
                self.started.store(true, Release);
                true
            }
            Err(err) => {
                // Withdrawn: the next spawn (or `block_on`, or blocking job) tries again.
                self.requested.withdraw();
                eprintln!(
                    "runnel: could not start the poller (sysmon) thread: {err}; stall reports, \
                     retakes and deadlock re-checks wait until it can be started (raise the \
                     thread limit)"
                );
                false
            }
        }
    }

    /// Shutdown: no start from now on; the thread to join, if one was started. The caller
    /// set `Shared::shutdown` first.
    pub(crate) fn stop(&self) -> Option<JoinHandle<()>> {
        let mut state = self.lock();
        match std::mem::replace(&mut *state, PollerState::Stopped) {
            PollerState::Running(handle) => Some(handle),
            PollerState::NotStarted | PollerState::Stopped => None,
        }
    }
}

/// `PollerThread`'s request flag: whether a worker owes the poller's start. Read by a
/// spawn after it bound its task, withdrawn by the owing worker under `state` when no task
/// is live, after which that worker counts the live tasks once more (type header of
/// `PollerThread`). The owned list's shard locks order the two sides: the worker's second
/// count either comes after the spawn's bind (and sees the task) or before it (and then the
/// spawn, locking the same shard later, sees the withdrawal and asks again). Its own type so
/// loom model 5 (`poller/loom_tests.rs`) runs these very methods.
pub(crate) struct StartRequest(crate::loom::atomic::AtomicBool);

impl StartRequest {
    pub(crate) fn new() -> StartRequest {
        StartRequest(crate::loom::atomic::AtomicBool::new(false))
    }

    /// SeqCst, like every access: a plain flag, ordered by the locks around it (above).
    pub(crate) fn is_set(&self) -> bool {
        self.0.load(crate::loom::atomic::Ordering::SeqCst)
    }

    /// Under `PollerThread::state`.
    pub(crate) fn set(&self) {
        self.0.store(true, crate::loom::atomic::Ordering::SeqCst);
    }

    /// Under `PollerThread::state`: no task was live, or the start failed.
    pub(crate) fn withdraw(&self) {
        self.0.store(false, crate::loom::atomic::Ordering::SeqCst);
    }
}

#[cfg(all(test, loom))]
mod loom_tests;

/// Takes every ready waker out of the reactor, wakes it, and only then releases the
/// reactor's waiter counts. The caller must be counted running (a worker that is not
/// idle, or this thread holding the token).
///
/// A waker is user code (any `Waker` can be registered on a runnel socket): one that
/// panics must not unwind through here, or the driver's lock would be poisoned with the
/// waiter counts never released and the rest of the wakers lost. Each wake is caught, the
/// panic is named on stderr, and draining goes on.
///
/// `max_timers` bounds how many due timers this drain fires (`Driver::drain_at_most`): a
/// worker passes the room left in its local queue (`Worker::timer_room`), so what it wakes
/// stays in its own queue instead of spilling to the injector behind unrelated work; the
/// other due timers stay armed (and counted) for its next poll, or anyone else's.
pub(crate) fn drain_ready(
    shared: &Arc<Shared>,
    driver: &mut Driver,
    now: Instant,
    max_timers: usize,
    wakers: &mut Vec<Waker>,
) {
    let drained = driver.drain_at_most(now, max_timers, wakers);
    shared
        .reactor_wakeups
        .fetch_add(wakers.len() as u64, Relaxed);
    let batch = crate::scheduler::NotifyBatch::begin(shared);
    for waker in wakers.drain(..) {
        // On a worker the task lands in its own queues; elsewhere in the injector, and
        // the batch's one notify_parked claims a sleeper (counted running under the lock).
        if std::panic::catch_unwind(AssertUnwindSafe(|| waker.wake())).is_err() {
            eprintln!(
                "runnel: a waker panicked when the reactor woke it (a custom Waker's wake or \
                 drop); the panic was contained and the reactor keeps running. Fix the Waker \
                 implementation: wake must not panic."
            );
        }
    }
    // Invariant 4: the waiter counts drop only now that the tasks are queued.
    shared.reactor.release(drained);
    batch.finish(shared);
}

/// Takes the driver if nobody holds it. The driver's state stays consistent across a
/// panic (nothing unwinds while it is half-updated; wakes are caught in `drain_ready`), so
/// a poisoned lock is taken like a free one rather than read as "busy" forever.
pub(crate) fn try_lock_driver(shared: &Shared) -> Option<MutexGuard<'_, Driver>> {
    match shared.driver.try_lock() {
        Ok(driver) => Some(driver),
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

fn run(shared: Arc<Shared>) {
    let mut wakers = Vec::new();
    let mut tick = MIN_TICK;
    let mut sysmon = Sysmon::new(shared.remotes.len());
    while !shared.is_shutdown() {
        std::thread::park_timeout(tick);
        let now = Instant::now();
        // A drain does not shorten the tick. It used to (20 µs, later 1 ms): under HTTP
        // load with both workers busy the poller then found events on nearly every tick
        // and woke ~600 times a second, for no gain we could measure in requests/s or CPU
        // per request (BENCHMARKS.md, "HTTP"); busy workers poll the reactor every 61st
        // tick anyway.
        poll_if_unattended(&shared, now, &mut wakers);
        tick = (tick * 2).min(MAX_TICK);
        sysmon.run(&shared, now);
    }
}

/// Polls the reactor without blocking if no worker holds it (so every worker is busy).
fn poll_if_unattended(shared: &Arc<Shared>, now: Instant, wakers: &mut Vec<Waker>) {
    let polled_at = Duration::from_micros(shared.reactor_polled_at.load(Relaxed));
    if now.saturating_duration_since(shared.epoch) < polled_at + UNATTENDED_AFTER {
        return;
    }
    let Some(mut driver) = try_lock_driver(shared) else {
        return;
    };
    if let Err(err) = driver.park(Some(Duration::ZERO)) {
        eprintln!("runnel: the reactor failed to poll: {err}");
    }
    shared.note_reactor_polled();
    if !driver.has_pending(now) {
        drop(driver);
        // A worker that went to sleep while we held the driver slept on its condvar; with
        // nobody in the poll, wake one so it comes back and sleeps in the driver. With no
        // worker thread yet nobody slept so, and a waker stored in the reactor starts one
        // (the `on_first_waiter` hook set in `build`).
        if shared.has_worker_thread() {
            shared.notify_parked();
        }
        return;
    }
    // Count first: from here until release_token, a worker going idle sees running > 0.
    shared.idle.take_token();
    shared.token_drains.fetch_add(1, Relaxed);
    // Not a worker: what it wakes goes to the injector anyway, so no bound.
    drain_ready(shared, &mut driver, now, usize::MAX, wakers);
    drop(driver);
    detector::after_transition(shared, detector::Counts::release_token);
}

struct Sysmon {
    /// Per slot: the poll sequence seen last and when it was first seen.
    seen: Vec<(u64, Instant)>,
    /// Per slot: the CPU time its thread had used when `seen` first saw the current poll
    /// (`None` between polls, or if it could not be read).
    seen_cpu: Vec<Option<Duration>>,
    /// Per slot: the last poll sequence counted as a stall / retaken / reported blocking.
    stalled: Vec<u64>,
    retaken: Vec<u64>,
    reported: Vec<u64>,
    last_polls: u64,
    quiet_since: Option<Instant>,
    stall_reported: bool,
    partial: detector::PartialCheck,
    partial_checked_at: Instant,
}

impl Sysmon {
    fn new(slots: usize) -> Sysmon {
        let now = Instant::now();
        Sysmon {
            seen: vec![(0, now); slots],
            seen_cpu: vec![None; slots],
            stalled: vec![u64::MAX; slots],
            retaken: vec![u64::MAX; slots],
            reported: vec![u64::MAX; slots],
            last_polls: 0,
            quiet_since: None,
            stall_reported: false,
            partial: detector::PartialCheck::default(),
            partial_checked_at: now,
        }
    }

    fn run(&mut self, shared: &Arc<Shared>, now: Instant) {
        // A server never goes quiet, so partial deadlocks and leaks are looked for while it
        // runs: a scan of every task, hence at most once per `PARTIAL_CHECK_EVERY`.
        if shared.config.deadlock_check && now - self.partial_checked_at >= PARTIAL_CHECK_EVERY {
            self.partial_checked_at = now;
            self.partial.run(shared, now);
        }
        // What each role is doing, before deciding anything: a retake looks at the others.
        for (slot, remote) in shared.remotes.iter().enumerate() {
            let seq = remote.metrics.poll_seq.load(Relaxed);
            let (last_seq, since) = &mut self.seen[slot];
            if seq != *last_seq {
                *last_seq = seq;
                *since = now;
                // Only when a retake may follow: a poll seen in progress (odd) for the
                // first time. One syscall per newly seen poll per tick.
                self.seen_cpu[slot] = match shared.config.retake_after {
                    Some(_) if seq % 2 == 1 => remote.cpu_clock.read(),
                    _ => None,
                };
            }
        }
        // Active roles not stuck in a poll: workers that can steal a stuck one's queue.
        let free_roles = shared.config.retake_after.map_or(0, |after| {
            (0..shared.remotes.len())
                .filter(|&slot| {
                    let (seq, since) = self.seen[slot];
                    shared.remotes[slot].role.load() == RoleState::Active
                        && (seq % 2 == 0 || now - since < after)
                })
                .count()
        });
        let mut polls = 0;
        let mut in_poll = false;
        for (slot, remote) in shared.remotes.iter().enumerate() {
            polls += remote.metrics.polls();
            let role = remote.role.load();
            if role == RoleState::Retaken {
                retake::sweep(shared, slot);
            }
            let (seq, since) = self.seen[slot];
            // Even: between polls. Odd: inside the same poll since `since`.
            if seq % 2 == 0 {
                continue;
            }
            in_poll = true;
            let stuck_for = now - since;
            if stuck_for >= STALL_AFTER && self.stalled[slot] != seq {
                self.stalled[slot] = seq;
                shared.stalls.fetch_add(1, Relaxed);
            }
            if let Some(after) = shared.config.retake_after {
                if role == RoleState::Active && stuck_for >= after && self.retaken[slot] != seq {
                    if free_roles > 0 && self.computing(slot, remote, stuck_for) {
                        // On a CPU, not blocked: a replacement thread would only take CPU
                        // time from it (and from the other workers), while a worker that
                        // is not stuck can take its queue. Make sure one looks: a task
                        // alone in its LIFO slot woke nobody when it was queued.
                        if remote.has_work() {
                            shared.notify_parked();
                        }
                    } else if retake::try_retake(shared, slot, seq) {
                        // Only a retake that happened is recorded: a failed one (no spare
                        // slot or thread yet) is retried on each tick until one frees up.
                        self.retaken[slot] = seq;
                    }
                }
            }
            if stuck_for >= BLOCKING_REPORT_AFTER && self.reported[slot] != seq {
                self.reported[slot] = seq;
                report_blocking(shared, remote, stuck_for);
            }
        }
        // Progress is any poll, `block_on`'s included.
        let polls = polls + shared.block_on_polls.load(Relaxed);
        if polls != self.last_polls || in_poll {
            self.last_polls = polls;
            self.quiet_since = None;
            self.stall_reported = false;
            return;
        }
        // Quiet: re-run the check (a waker dropped by a foreign thread can turn "maybe"
        // into a deadlock without any thread going idle). Only `Maybe` — nothing but holders
        // the runtime cannot see — is a stall; anything the runtime itself waits for (I/O,
        // a timer, a blocking job) restarts the clock.
        match recheck_deadlock(shared) {
            detector::Verdict::Maybe => {}
            // A thread is counted running without polling (a worker nudged awake, the
            // token in transit): no conclusion, keep the clock as it is.
            detector::Verdict::Running => return,
            detector::Verdict::Waiting | detector::Verdict::Deadlock => {
                self.quiet_since = None;
                self.stall_reported = false;
                return;
            }
        }
        let quiet_since = *self.quiet_since.get_or_insert(now);
        if let Some(after) = shared.config.stall_report_after {
            if !self.stall_reported && now - quiet_since >= after {
                self.stall_reported = true;
                if let Some(report) = detector::stall_report(shared, now - quiet_since) {
                    eprintln!("runnel: {report}");
                    // Counted once printed: a watcher that acts on the count (and may end
                    // the process) must not cut the report short.
                    shared.stall_reports.fetch_add(1, Relaxed);
                }
            }
        }
    }
}

/// Names a task that has blocked its worker thread for a long time: a bug users want to
/// find (a synchronous call or a long computation inside async code).
fn report_blocking(shared: &Shared, remote: &crate::scheduler::Remote, stuck_for: Duration) {
    let id = remote.current_task.load(Relaxed);
    // The owned list keeps where each task was spawned (the header does not): one shard's
    // scan, on this cold path only.
    let location = crate::task::Id::from_u64(id)
        .and_then(|id| shared.owned.location_of(id))
        .map_or_else(|| "?".to_owned(), |l| l.to_string());
    eprintln!(
        "runnel: task {id} (spawned at {location}) has blocked its worker thread for {:.1} s. \
         Blocking calls in async code stall every task queued behind them; move them to \
         runnel::spawn_blocking.",
        stuck_for.as_secs_f64()
    );
}

impl Sysmon {
    /// Whether the thread of `slot`, in a poll for `stuck_for` since `seen` first saw it,
    /// is computing rather than blocked: it spent at least an eighth of that time on a CPU,
    /// or it is runnable right now. A thread blocked in a sleep or a syscall uses next to
    /// no CPU and is asleep; one computing gets its share of the CPUs — ~50 % for
    /// `timer_sleeps`' spawning task on a loaded machine, 4 % for a spinning test task
    /// among the other tests' threads — and is runnable whenever it is not on a CPU.
    /// `false` when neither can be read: then it counts as blocked, the case retake
    /// exists for.
    fn computing(
        &self,
        slot: usize,
        remote: &crate::scheduler::Remote,
        stuck_for: Duration,
    ) -> bool {
        let used =
            self.seen_cpu[slot].and_then(|start| remote.cpu_clock.read()?.checked_sub(start));
        used.is_some_and(|used| used * 8 >= stuck_for)
            || remote.cpu_clock.runnable_now() == Some(true)
    }
}

fn recheck_deadlock(shared: &Shared) -> detector::Verdict {
    detector::after_transition(shared, |counts| counts.check_if_quiet())
}
