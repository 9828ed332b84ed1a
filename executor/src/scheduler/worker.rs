//! The worker loop: find a task, run it, repeat; steal when out of work; park when there
//! is nothing to steal.
//!
//! Order in `next_task` (ARCHITECTURE.md, "Queues and where a task goes"): every `GLOBAL_QUEUE_INTERVAL`th tick the
//! injector first (so injected wakes cannot starve behind a busy local queue), then the
//! LIFO slot (at most `MAX_LIFO_POLLS` times in a row), the local queue, the injector;
//! then `steal`; then `park`.
//!
//! Parking follows the protocol in `idle.rs`: give up searching, count ourselves idle
//! under the lock (which may run the deadlock check), fence, re-check the queues, and
//! only then sleep. A worker returns from `park` already counted running by whoever
//! claimed it.

use std::sync::atomic::{fence, Ordering::Acquire, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

use super::local_queue::Steal;
use super::{retake, Shared};
use crate::context;
use crate::detector;
use crate::poller::{drain_ready, try_lock_driver};
use crate::task::Notified;

/// Go checks the global run queue every 61st schedule: a prime, so it does not fall into
/// step with periodic task patterns.
const GLOBAL_QUEUE_INTERVAL: u32 = 61;

/// Two tasks that wake each other would otherwise run from the LIFO slot forever while
/// the local queue starves; tokio measured 3 as enough to keep the ping-pong fast path.
const MAX_LIFO_POLLS: u32 = 3;

/// How many tasks to move from the injector to the local queue at once (Go's
/// `globrunqget` takes up to half a local queue).
const INJECTOR_BATCH: usize = 32;

/// How long a worker that has been fed from the injector since it last slept keeps
/// looking at the injector before it parks. A thread outside the workers (a `block_on`
/// caller, the poller) that is spawning or waking tasks one by one produces one every few
/// hundred ns, faster than a park plus the futex or eventfd wake that undoes it (5–20 µs
/// on a VM); a worker that has drained the injector would otherwise park between two
/// pushes, and each push would wake it again. Only the searching worker spins (at most
/// half the workers search), and only while it has recently been fed this way: workers
/// fed by their own queues and the reactor park at once, as before.
const INJECTOR_SPIN: Duration = Duration::from_micros(3);

/// How long a worker claimed to start the poller thread may wait, idle, before it does:
/// a runtime whose tasks are all done by then (a start-up, a short-lived runtime) never
/// needs the thread (`PollerThread::start_as_duty` looks), and a stall is noticed at most
/// this much later. Started at once, the thread cost ~30 µs of CPU per start-up and, on
/// two cores, delayed the first task's result (BENCHMARKS.md, "Timers and start-up").
const SYSMON_GRACE: Duration = Duration::from_millis(1);

/// The fewest timers a worker's drain may fire, however full its queue (`timer_room`).
const MIN_TIMER_FIRE: usize = 16;

/// Why a worker loop ended.
pub(crate) enum RoleEnd {
    /// The runtime is shutting down: the thread exits.
    Shutdown,
    /// Sysmon retook the role while this thread was stuck in a poll: the thread becomes a
    /// spare (see `retake.rs`).
    Retaken,
}

pub(crate) struct Worker {
    shared: Arc<Shared>,
    index: usize,
    tick: u32,
    lifo_polls: u32,
    searching: bool,
    rng: u32,
    /// Reused buffer for wakers taken out of the reactor.
    wakers: Vec<Waker>,
    /// Took a task from the injector since it last slept (see `INJECTOR_SPIN`).
    fed_by_injector: bool,
    /// Claimed by a spawn to start the poller thread (`PollerThread::start_for_spawn`):
    /// the start is owed by this instant, or before this worker polls a task.
    sysmon_owed: Option<Instant>,
}

impl Worker {
    pub(crate) fn new(shared: Arc<Shared>, index: usize) -> Worker {
        Worker {
            shared,
            index,
            tick: 0,
            lifo_polls: 0,
            searching: false,
            rng: (index as u32).wrapping_mul(0x9E37_79B9) | 1,
            wakers: Vec::new(),
            fed_by_injector: false,
            sysmon_owed: None,
        }
    }

    /// `claimed`: this thread was started by the claim of the role as a sleeper
    /// (`Shared::wake_claimed`), so it begins as a claimed worker returns from its park:
    /// counted searching, and owing the poller's start if the claimer handed it over.
    pub(crate) fn run(mut self, claimed: bool) -> RoleEnd {
        let shared = self.shared.clone();
        let _worker = context::enter_worker(&shared, self.index);
        let _reactor = shared.reactor.enter();
        self.remote().cpu_clock.set_to_current_thread();
        let mut owes_sysmon = self.remote().boot.begin();
        if claimed {
            self.searching = true;
            // Acquire: pairs with the claimer's Release store before the thread start.
            owes_sysmon |= self.remote().sysmon_duty.swap(false, Acquire);
        }
        if owes_sysmon {
            // Handed the poller's start before this thread began (`PollerThread::hand_duty`).
            self.sysmon_owed = Some(Instant::now() + SYSMON_GRACE);
        }
        let end = loop {
            if shared.is_shutdown() {
                break RoleEnd::Shutdown;
            }
            if retake::was_retaken(&shared, self.index) {
                break RoleEnd::Retaken;
            }
            if let Some(task) = self.next_task().or_else(|| self.steal()) {
                // Never poll with the start still owed: this poll might never end.
                self.start_sysmon_before_poll();
                self.run_task(task);
            } else {
                self.park();
                // Acquire: pairs with the Release store before the claimer's unpark.
                if self.remote().sysmon_duty.swap(false, Acquire) {
                    self.sysmon_owed = Some(Instant::now() + SYSMON_GRACE);
                }
            }
        };
        if self.searching {
            self.searching = false;
            shared.idle.stop_searching();
        }
        match end {
            RoleEnd::Retaken => retake::give_up_role(&shared, self.index),
            RoleEnd::Shutdown => {
                // Shutdown drains only the queues of threads it joined; `shutdown_timeout`
                // may have given up on us, so free what is still queued here ourselves.
                // Each entry holds a reference to its task, which holds `Shared`: left here,
                // they would keep the whole runtime alive (a cycle). Only this thread pushes
                // to these, and it is done.
                drop(self.remote().take_lifo());
                while let Some(task) = self.remote().queue.pop() {
                    drop(task);
                }
            }
        }
        end
    }

    fn remote(&self) -> &super::Remote {
        &self.shared.remotes[self.index]
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub(crate) fn run_task(&mut self, task: Notified<Arc<Shared>>) {
        if self.searching {
            self.searching = false;
            // We were the last searcher and found work: there may be more, so keep one
            // searcher going (Go's resetspinning → wakep).
            if self.shared.idle.stop_searching() {
                self.shared.notify_parked();
            }
        }
        self.tick = self.tick.wrapping_add(1);
        let remote = &self.shared.remotes[self.index];
        // Relaxed: read by sysmon only to name a task that blocks this worker.
        remote.current_task.store(task.id().as_u64(), Relaxed);
        remote.metrics.start_poll();
        runnel_reactor::coop::with_budget(|| task.run());
        remote.metrics.end_poll();
    }

    pub(crate) fn next_task(&mut self) -> Option<Notified<Arc<Shared>>> {
        if self.tick % GLOBAL_QUEUE_INTERVAL == 0 {
            self.poll_reactor_now();
            if let Some(task) = self.shared.injector.pop() {
                return Some(task);
            }
        }
        let remote = &self.shared.remotes[self.index];
        if let Some(task) = remote.take_lifo() {
            if self.lifo_polls < MAX_LIFO_POLLS {
                self.lifo_polls += 1;
                // Relaxed: read only by this thread (`schedule_task`).
                remote.lifo_ran.store(task.id().as_u64(), Relaxed);
                return Some(task);
            }
            // Fairness: the LIFO task goes behind the queue it was jumping. A ping-pong
            // pair cut this way must not look like a consumer fed by many when this task,
            // run from the queue, wakes its partner (the partner last ran from the slot).
            remote.lifo_ran.store(0, Relaxed);
            remote.queue.push_back(task, &self.shared.injector);
        }
        self.lifo_polls = 0;
        if let Some(task) = remote.queue.pop() {
            return Some(task);
        }
        self.pop_injector_batch()
    }

    /// Busy workers look at the reactor now and then, so I/O is not left waiting for the
    /// poller's tick while every worker is busy (tokio does the same every 61 ticks).
    /// Only when something waits on I/O or a timer, and only if nobody holds the driver.
    fn poll_reactor_now(&mut self) {
        if self.shared.reactor.waiters().is_empty() {
            return;
        }
        let shared = self.shared.clone();
        let Some(mut driver) = try_lock_driver(&shared) else {
            return;
        };
        if driver.park(Some(Duration::ZERO)).is_ok() {
            shared.note_reactor_polled();
            let now = Instant::now();
            if driver.has_pending(now) {
                // We are running: the rule "counted running before wakers leave" holds.
                let room = self.timer_room();
                drain_ready(&shared, &mut driver, now, room, &mut self.wakers);
            }
        }
    }

    /// How many timers a drain by this worker may fire: the room left in its local queue,
    /// where the tasks it wakes go (the LIFO slot, the one it displaces to the ring). A
    /// burst of due timers beyond that room used to spill to the injector, behind whatever
    /// waited there: under a spawn backlog (`timer_sleeps`: 100 000 tasks spawned in one
    /// poll) a woken sleeper then waited for every task queued before it, tens of ms
    /// (BENCHMARKS.md, "Timers and start-up"). The rest fire on this worker's next poll of
    /// the reactor (61 ticks on), or when it parks. At least `MIN_TIMER_FIRE`, so a full
    /// ring cannot hold timers back indefinitely.
    pub(crate) fn timer_room(&self) -> usize {
        let room = super::local_queue::CAPACITY.saturating_sub(self.remote().queue.len());
        room.max(MIN_TIMER_FIRE)
    }

    /// Takes one task from the injector to run and moves a batch into the local queue,
    /// so we do not come back to the shared queue for every task.
    fn pop_injector_batch(&mut self) -> Option<Notified<Arc<Shared>>> {
        let first = self.shared.injector.pop()?;
        self.fed_by_injector = true;
        let available = self.shared.injector.len();
        let share = available / self.shared.idle.num_workers() + 1;
        let remote = self.remote();
        for _ in 0..share.min(INJECTOR_BATCH) {
            let Some(task) = self.shared.injector.pop() else {
                break;
            };
            remote.queue.push_back(task, &self.shared.injector);
        }
        Some(first)
    }

    fn next_rand(&mut self) -> u32 {
        // xorshift32: cheap, per-worker, good enough to spread victims.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 17;
        self.rng ^= self.rng << 5;
        self.rng
    }

    fn steal(&mut self) -> Option<Notified<Arc<Shared>>> {
        if !self.searching {
            if !self.shared.idle.try_start_searching() {
                return None;
            }
            self.searching = true;
        }
        let n = self.shared.remotes.len();
        let start = self.next_rand() as usize % n;
        for i in 0..n {
            let victim = (start + i) % n;
            if victim == self.index {
                continue;
            }
            let remote = &self.shared.remotes[victim];
            if let Steal::Success(task) = remote.queue.steal_into(&self.remote().queue) {
                self.remote().metrics.count_steal();
                return Some(task);
            }
            // Its ring is empty but its LIFO slot is not: the owner may be stuck in a
            // long poll, so take it rather than strand it.
            if let Some(task) = remote.take_lifo() {
                self.remote().metrics.count_steal();
                return Some(task);
            }
        }
        if let Some(task) = self.shared.injector.pop() {
            return Some(task);
        }
        if self.fed_by_injector {
            return self.spin_on_injector();
        }
        None
    }

    /// Watches the injector for `INJECTOR_SPIN` (we are searching, so wakes of sleepers
    /// are held back meanwhile: the search is ours). Then stops feeding on it until the
    /// next sleep, so a trickle that stopped costs one spin, not one per task.
    fn spin_on_injector(&mut self) -> Option<Notified<Arc<Shared>>> {
        let until = Instant::now() + INJECTOR_SPIN;
        loop {
            for _ in 0..16 {
                std::hint::spin_loop();
            }
            if !self.shared.injector.is_empty() {
                if let Some(task) = self.shared.injector.pop() {
                    return Some(task);
                }
            }
            if self.shared.is_shutdown() || Instant::now() >= until {
                self.fed_by_injector = false;
                return None;
            }
        }
    }

    fn park(&mut self) {
        let shared = self.shared.clone();
        let was_last_searcher = self.searching && {
            self.searching = false;
            shared.idle.stop_searching()
        };
        detector::after_transition(&shared, |counts| {
            shared.idle.worker_idle(counts, self.index)
        });
        // Pairs with notify_parked's fence: a task pushed before it saw us idle is seen here.
        fence(SeqCst);
        let work_left = !shared.injector.is_empty()
            || (was_last_searcher && shared.remotes.iter().any(super::Remote::has_work))
            || shared.is_shutdown();
        if work_left && shared.idle.unidle(self.index) {
            return;
        }
        self.remote().metrics.count_park();
        self.sleep();
    }

    /// Sleeps until claimed, in the reactor's poll if no other worker is in it. Returns
    /// counted running: claimed by a waker (then also counted searching), or un-idled by
    /// ourselves because the reactor had wakers for us to take out.
    /// Starts the poller thread if this worker owes it (`sysmon_owed`): before a poll, when
    /// the grace period ran out, or before a sleep that cannot time out.
    fn start_sysmon_if_owed(&mut self) {
        if self.sysmon_owed.take().is_some() {
            self.shared.poller.start_as_duty(&self.shared);
        }
    }

    /// Before a poll: a worker owing the poller's start hands it on, or starts it now.
    fn start_sysmon_before_poll(&mut self) {
        if self.sysmon_owed.take().is_some() {
            self.shared
                .poller
                .start_before_poll(&self.shared, self.index);
        }
    }

    fn sleep(&mut self) {
        let shared = self.shared.clone();
        let remote = &shared.remotes[self.index];
        loop {
            if self.sysmon_owed.is_some_and(|due| Instant::now() >= due) {
                self.start_sysmon_if_owed();
            }
            let Some(mut driver) = try_lock_driver(&shared) else {
                // The condvar has no timeout: pay the start now rather than forget it.
                self.start_sysmon_if_owed();
                remote.parker.park();
                // Whoever claimed us counted us searching (Idle::claim_sleeper, claim_all).
                self.searching = true;
                return;
            };
            // Owing the poller's start, wake for it (a timeout with nothing pending loops
            // back to the top, still idle).
            let timeout = self
                .sysmon_owed
                .map(|due| due.saturating_duration_since(Instant::now()));
            let unparked = remote.parker.park_in_driver(|| {
                if let Err(err) = driver.park(timeout) {
                    eprintln!("runnel: the reactor failed to poll: {err}");
                }
            });
            shared.note_reactor_polled();
            let now = Instant::now();
            if !driver.has_pending(now) {
                if unparked {
                    self.searching = true;
                    return;
                }
                // Woken for nothing (an interrupt meant for an earlier sleep): still idle.
                continue;
            }
            // Count first (invariant 3): running again before any waker leaves the reactor.
            // If unidle fails, someone claimed us and its unpark is on the way.
            let claimed = unparked || !shared.idle.unidle(self.index);
            let room = self.timer_room();
            drain_ready(&shared, &mut driver, now, room, &mut self.wakers);
            drop(driver);
            if claimed && !unparked {
                // Consume the claimer's token (returns as soon as its unpark lands).
                remote.parker.park();
            }
            self.searching = claimed;
            return;
        }
    }
}
