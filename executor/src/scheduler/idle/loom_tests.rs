//! Loom models 3 and 4 (`executor/LOOM.md`): the idle protocol (no lost wakeup) and the
//! token protocol (no false deadlock), over the real `Idle` accounting and `Parker`.
//!
//! The worker loop, `notify_parked`, the poller's drain and the deadlock check are loops
//! over real queues and real I/O; here each is re-expressed step for step (the functions
//! below name the code they mirror), while every count goes through the shipped `Idle`
//! methods (`worker_idle`, `unidle`, `claim_sleeper`, `claim_all`, `should_notify`,
//! `try_start_searching`, `stop_searching`, `take_token`, `release_token`, `thread_left`,
//! `Counts::running`) and every sleep through `Parker` (`park`, `park_in_driver`,
//! `unpark`). The model's queues are counters: `injector` (the global queue's `len`),
//! `local` (the draining worker's ring + LIFO slot), and `waiters` (the reactor's I/O
//! waiter count, `runnel_reactor::Waiters::io`).
//!
//! Each model records its check verdicts in `Findings`, outside loom, so a test can assert
//! that no execution (or, for a deliberately weakened protocol, some execution) reached a
//! false "deadlock". A lost wakeup leaves a thread parked forever, which loom reports as a
//! deadlock of the model itself.
//!
//! The model's deadlock check (`Model::check`) keeps the parts of `detector::check` that
//! this protocol is about: `running == 0` under the lock, then the waiter count, then the
//! run queues, in that order. It leaves out the test of tasks' reference counts (a waker in
//! flight holds one), so the model shows what the counts, the token and the waiter count
//! guarantee on their own; only model 4d, whose waker is held by a foreign thread, keeps
//! that one reference (`Model::foreign`).
//!
//! The worker's and the waker's `fence(SeqCst)` use loom's fence (the real code uses std's,
//! which is the same fence outside loom).

use std::sync::atomic::{AtomicBool as StdAtomicBool, Ordering::Relaxed as StdRelaxed};
use std::sync::Arc as StdArc;

use loom::sync::atomic::{fence, AtomicBool, AtomicUsize};
use loom::sync::Arc;
use loom::thread;

use super::{Check, Counts, Idle};
use crate::loom::atomic::Ordering::{Acquire, Release, SeqCst};
use crate::scheduler::park::loom_tests::{expect_deadlock_in_child, model};
use crate::scheduler::park::Parker;

/// What the model's deadlock check concluded.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Verdict {
    /// Somebody runs (or the poller holds the token), or the reactor may still wake a task.
    Busy,
    /// Nobody runs, but a task is queued: a worker's re-check will find it. `detector::check`
    /// returns before its queue test here because the queued task's `Notified` is an extra
    /// reference; the model records that this state is reachable (see
    /// `loom_token_quiet_with_queued_task_is_reachable`).
    QuietWithWork,
    /// "all tasks are asleep": false in every model but `loom_token_true_deadlock_is_reported`,
    /// since each task is always delivered and run.
    Deadlock,
}

/// The order in which the check reads the reactor and the queues.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Reads {
    /// `detector::check`'s order: the waiter count (Acquire), then the queues. With the
    /// waker's side (enqueue, then release the count) this pairs like a seqlock.
    WaitersFirst,
    /// The reverse, to show what the token buys: the check no longer depends on it.
    QueuesFirst,
}

/// What the models found, kept outside loom so a test can ask "did any execution...?".
#[derive(Default)]
struct Findings {
    /// Some execution's check said "deadlock".
    deadlock: StdAtomicBool,
    /// Some execution's check saw `running == 0` with a task queued.
    quiet_with_work: StdAtomicBool,
}

impl Findings {
    fn record(&self, verdict: Verdict) {
        match verdict {
            Verdict::Deadlock => self.deadlock.store(true, StdRelaxed),
            Verdict::QuietWithWork => self.quiet_with_work.store(true, StdRelaxed),
            Verdict::Busy => {}
        }
    }
}

/// The scheduler state of one model execution.
struct Model {
    idle: Idle,
    parkers: Vec<Parker>,
    /// Tasks in the global injector.
    injector: AtomicUsize,
    /// Tasks in the draining worker's ring or LIFO slot (models 4b and 4d).
    local: AtomicUsize,
    /// The reactor's I/O waiter count.
    waiters: AtomicUsize,
    /// Wakers held by threads outside the runtime (model 4d). `detector::check` sees them
    /// as task references beyond the runtime's own (its condition 5); a wake turns the
    /// waker's reference into the queued `Notified`'s, so the count drops after the push.
    foreign: AtomicUsize,
    /// Tasks run.
    ran: AtomicUsize,
    /// Every task ran (the model's `Shared::shutdown`).
    done: AtomicBool,
    reads: Reads,
    findings: StdArc<Findings>,
}

impl Model {
    fn new(workers: usize, waiters: usize, reads: Reads, findings: &StdArc<Findings>) -> Model {
        Model {
            idle: Idle::new(workers),
            parkers: (0..workers.max(2)).map(|_| Parker::new()).collect(),
            injector: AtomicUsize::new(0),
            local: AtomicUsize::new(0),
            waiters: AtomicUsize::new(waiters),
            foreign: AtomicUsize::new(0),
            ran: AtomicUsize::new(0),
            done: AtomicBool::new(false),
            reads,
            findings: findings.clone(),
        }
    }

    fn queued(&self) -> bool {
        self.injector.load(SeqCst) != 0 || self.local.load(SeqCst) != 0
    }

    /// `detector::check`, reduced (see the module docs). Called with the lock held.
    fn check(&self, counts: &Counts) -> Verdict {
        if counts.running() != 0 || counts.blocking() != 0 {
            return Verdict::Busy;
        }
        // Acquire, as `WaiterCounts::snapshot`: pairs with the Release decrement.
        let waiting = || self.waiters.load(Acquire) != 0 || self.foreign.load(Acquire) != 0;
        match self.reads {
            Reads::WaitersFirst if waiting() => Verdict::Busy,
            Reads::WaitersFirst if self.queued() => Verdict::QuietWithWork,
            Reads::QueuesFirst if self.queued() => Verdict::QuietWithWork,
            Reads::QueuesFirst if waiting() => Verdict::Busy,
            _ => Verdict::Deadlock,
        }
    }

    /// A transition returned `Check::Run`: run the check under the same lock.
    fn on_check(&self, check: Check, counts: &Counts) {
        if check == Check::Run {
            self.findings.record(self.check(counts));
        }
    }

    /// `Shared::notify_parked`.
    fn notify_parked(&self) {
        fence(SeqCst);
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
            self.parkers[index].unpark();
        }
    }

    /// A wake from a thread that is not a worker: `Injector::push` + `notify_parked`.
    fn wake_to_injector(&self, notify: bool) {
        self.injector.fetch_add(1, SeqCst);
        if notify {
            self.notify_parked();
        }
    }

    /// `Injector::pop`.
    fn pop_injector(&self) -> bool {
        let mut len = self.injector.load(SeqCst);
        while len > 0 {
            match self.injector.compare_exchange(len, len - 1, SeqCst, SeqCst) {
                Ok(_) => return true,
                Err(actual) => len = actual,
            }
        }
        false
    }

    /// Ends a model like runtime shutdown: `done` (which `park`'s re-check reads, as it reads
    /// `is_shutdown`), then claim and unpark every sleeper. Called once no work is left, so it
    /// cannot hide a lost wakeup.
    fn end(&self) {
        self.done.store(true, SeqCst);
        for index in self.idle.claim_all() {
            self.parkers[index].unpark();
        }
    }

    /// `Worker::park` (idle, fence, re-check, then sleep on the condvar, as `Worker::sleep`
    /// does when another thread holds the driver). Returns with the worker counted running:
    /// un-idled by itself, or claimed (then searching).
    fn park(&self, index: usize, searching: &mut bool, recheck: bool) {
        self.park_then(index, searching, recheck, |m, searching| {
            m.parkers[index].park();
            *searching = true;
        });
    }

    /// `Worker::park` up to the sleep, then `sleep`.
    fn park_then(
        &self,
        index: usize,
        searching: &mut bool,
        recheck: bool,
        sleep: impl FnOnce(&Model, &mut bool),
    ) {
        let was_last_searcher = *searching && {
            *searching = false;
            self.idle.stop_searching()
        };
        {
            let mut counts = self.idle.lock();
            let check = self.idle.worker_idle(&mut counts, index);
            self.on_check(check, &counts);
        }
        fence(SeqCst);
        let work_left = recheck
            && (self.injector.load(SeqCst) != 0
                || (was_last_searcher && self.local.load(SeqCst) != 0)
                || self.done.load(SeqCst));
        if work_left && self.idle.unidle(index) {
            return;
        }
        sleep(self, searching);
    }

    /// `Worker::run` until `until` tasks ran in all (`next_task` is the injector here,
    /// `run_task` counts). The worker that runs the last one ends the model (`end`).
    fn run_worker(&self, index: usize, mut searching: bool, until: usize, recheck: bool) {
        while !self.done.load(SeqCst) {
            if !self.pop_injector() {
                self.park(index, &mut searching, recheck);
                continue;
            }
            if searching {
                searching = false;
                if self.idle.stop_searching() {
                    self.notify_parked();
                }
            }
            if self.ran.fetch_add(1, SeqCst) + 1 == until {
                self.end();
            }
        }
        if searching {
            self.idle.stop_searching();
        }
    }

    /// End of a model: every task ran and the counts are back at rest.
    fn assert_at_rest(&self, tasks: usize) {
        assert_eq!(self.ran.load(SeqCst), tasks, "a task was not run");
        assert_eq!(self.injector.load(SeqCst), 0);
        let counts = self.idle.lock();
        assert_eq!(
            (
                counts.idle(),
                counts.idle_workers(),
                counts.token(),
                self.idle.num_searching()
            ),
            (0, 0, 0, 0),
            "idle, sleepers, token, searching"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Model 3: the idle protocol. A worker that finds nothing counts itself idle, fences,
// re-checks the injector and parks; a remote thread publishes work, fences, and claims and
// unparks a sleeper. Whatever the interleaving, the worker runs the work (a lost wakeup
// leaves it parked forever, which loom reports as a deadlock).
// ---------------------------------------------------------------------------------------

fn idle_vs_remote_wake(searching: bool, recheck: bool, publish_first: bool) {
    let findings = StdArc::new(Findings::default());
    model(None, move || {
        let m = Arc::new(Model::new(1, 0, Reads::WaitersFirst, &findings));
        if searching {
            assert!(m.idle.try_start_searching());
        }
        let remote = {
            let m = m.clone();
            thread::spawn(move || {
                if publish_first {
                    m.wake_to_injector(true);
                } else {
                    // Broken on purpose: wake a sleeper, then publish.
                    m.notify_parked();
                    m.wake_to_injector(false);
                }
            })
        };
        m.run_worker(0, searching, 1, recheck);
        remote.join().unwrap();
        m.assert_at_rest(1);
    });
}

/// A worker going idle against a remote wake: no lost wakeup.
#[test]
fn loom_idle_worker_vs_remote_wake() {
    idle_vs_remote_wake(false, true, true);
}

/// The same with the worker the last searcher: the wake sees `num_searching == 1` and
/// leaves the work to it; `stop_searching` before the fence makes its re-check see it.
#[test]
fn loom_idle_last_searcher_vs_remote_wake() {
    idle_vs_remote_wake(true, true, true);
}

/// Two workers, two wakes from a remote thread: both tasks run, whatever claims, searches
/// and re-checks interleave.
#[test]
fn loom_idle_two_workers_two_wakes() {
    let findings = StdArc::new(Findings::default());
    model(Some(3), move || {
        let m = Arc::new(Model::new(2, 0, Reads::WaitersFirst, &findings));
        let remote = {
            let m = m.clone();
            thread::spawn(move || {
                m.wake_to_injector(true);
                m.wake_to_injector(true);
            })
        };
        let other = {
            let m = m.clone();
            thread::spawn(move || m.run_worker(1, false, 2, true))
        };
        m.run_worker(0, false, 2, true);
        remote.join().unwrap();
        other.join().unwrap();
        m.assert_at_rest(2);
    });
}

/// Broken: the worker parks without re-checking the injector after counting itself idle.
#[test]
fn loom_idle_without_recheck_is_caught() {
    expect_deadlock_in_child("scheduler::idle::loom_tests::child_idle_without_recheck");
}

#[test]
#[ignore = "expected to deadlock: run by loom_idle_without_recheck_is_caught"]
fn child_idle_without_recheck() {
    idle_vs_remote_wake(false, false, true);
}

/// Broken: the remote thread notifies before it publishes (count first, publish second,
/// inverted on the waker's side).
#[test]
fn loom_idle_notify_before_publish_is_caught() {
    expect_deadlock_in_child("scheduler::idle::loom_tests::child_idle_notify_before_publish");
}

#[test]
#[ignore = "expected to deadlock: run by loom_idle_notify_before_publish_is_caught"]
fn child_idle_notify_before_publish() {
    idle_vs_remote_wake(false, true, false);
}

// ---------------------------------------------------------------------------------------
// Model 4: the token protocol (ARCHITECTURE.md invariant 1-4). One task T waits on I/O (the
// reactor holds its waker: waiter count 1) and its event is ready. One worker, which just
// polled T, finds nothing and goes idle, running the deadlock check when it is the last to
// do so; the poller drains the event: takes the token, moves the waker out, wakes T (the
// injector, then notify_parked), releases the waiter count, releases the token (running
// the check). Any "deadlock" verdict is false: T is about to run.
// ---------------------------------------------------------------------------------------

/// Which defences the model's poller keeps.
#[derive(Clone, Copy, Debug)]
struct Defences {
    /// The pretend-running token around the drain (invariant 3).
    token: bool,
    /// The waiter count drops after the woken task is queued (invariant 4), not when its
    /// waker leaves the reactor.
    waiters_until_release: bool,
    reads: Reads,
}

const SHIPPED: Defences = Defences {
    token: true,
    waiters_until_release: true,
    reads: Reads::WaitersFirst,
};

/// `poller::poll_if_unattended` + `drain_ready` for one ready waker, from the poller thread.
fn poller_drain(m: &Model, d: Defences) {
    if d.token {
        m.idle.take_token();
    }
    // `Driver::drain`: the waker leaves the reactor.
    if !d.waiters_until_release {
        m.waiters.fetch_sub(1, Release);
    }
    // `waker.wake()` off the workers: the injector, then notify_parked.
    m.wake_to_injector(true);
    // `Handle::release`.
    if d.waiters_until_release {
        m.waiters.fetch_sub(1, Release);
    }
    let mut counts = m.idle.lock();
    if d.token {
        let check = counts.release_token();
        m.on_check(check, &counts);
    } else {
        // Without a token, sysmon's `recheck_deadlock` is the poller's only check.
        let check = if counts.running() == 0 {
            Check::Run
        } else {
            Check::Skip
        };
        m.on_check(check, &counts);
    }
}

/// Explores every interleaving of the worker going idle and the poller draining; returns
/// what the executions found.
fn token_model(d: Defences) -> StdArc<Findings> {
    let findings = StdArc::new(Findings::default());
    let found = findings.clone();
    model(None, move || {
        let m = Arc::new(Model::new(1, 1, d.reads, &findings));
        let poller = {
            let m = m.clone();
            thread::spawn(move || poller_drain(&m, d))
        };
        m.run_worker(0, false, 1, true);
        poller.join().unwrap();
        m.assert_at_rest(1);
        assert_eq!(m.waiters.load(SeqCst), 0);
    });
    found
}

fn assert_no_false_deadlock(d: Defences) {
    let found = token_model(d);
    assert!(
        !found.deadlock.load(StdRelaxed),
        "{d:?}: an execution reported a deadlock while the woken task was about to run"
    );
}

fn assert_false_deadlock_found(d: Defences) {
    let found = token_model(d);
    assert!(
        found.deadlock.load(StdRelaxed),
        "{d:?}: expected an execution with a false deadlock, found none"
    );
}

/// The shipped protocol: no false deadlock in any interleaving.
#[test]
fn loom_token_no_false_deadlock() {
    assert_no_false_deadlock(SHIPPED);
}

/// The token alone suffices: even if the waiter count dropped as the waker left the reactor
/// (Go's netpoll before the 61454 fix), the worker's check sees `running > 0`.
#[test]
fn loom_token_alone_suffices() {
    assert_no_false_deadlock(Defences {
        waiters_until_release: false,
        ..SHIPPED
    });
}

/// The token makes the check's read order irrelevant.
#[test]
fn loom_token_check_order_irrelevant() {
    assert_no_false_deadlock(Defences {
        reads: Reads::QueuesFirst,
        ..SHIPPED
    });
}

/// Go's 2013 bug (commit 1da1030b5dd9): no token, and the waker stops counting as a waiter
/// when it leaves the reactor. The worker going idle in between sees nobody running, no
/// waiter and no queued task: a false deadlock, which the model finds.
#[test]
fn loom_no_token_finds_false_deadlock() {
    assert_false_deadlock_found(Defences {
        token: false,
        waiters_until_release: false,
        ..SHIPPED
    });
}

/// No token, waiter count released after the enqueue, but a check that reads the queues
/// before the waiter count: it can see the queue empty (before the push) and then the count
/// at zero (after the release). The model finds that false deadlock too.
#[test]
fn loom_no_token_queues_first_finds_false_deadlock() {
    assert_false_deadlock_found(Defences {
        token: false,
        reads: Reads::QueuesFirst,
        ..SHIPPED
    });
}

/// No token, but invariant 4 and `detector::check`'s read order (waiters, then queues):
/// the waiter count alone covers the drain window in this model. Kept as a test because it
/// is a fact the design leans on: the token is the defence that does not depend on the
/// check's read order (previous test) or on every drain path releasing late.
#[test]
fn loom_no_token_invariant_4_alone_suffices() {
    assert_no_false_deadlock(Defences {
        token: false,
        ..SHIPPED
    });
}

/// In the shipped protocol the check can see `running == 0` with the woken task queued:
/// the worker counts itself idle before its re-check, and the wake saw no sleeper to claim.
/// Not a bug (the re-check finds the task), but it means ARCHITECTURE.md invariant 5 ("a task seen
/// runnable while running = 0 is a runtime bug") holds only after `detector::check`'s
/// reference test, which returns first for a queued task; a queue test placed before it
/// would abort a healthy runtime.
#[test]
fn loom_token_quiet_with_queued_task_is_reachable() {
    let found = token_model(SHIPPED);
    assert!(found.quiet_with_work.load(StdRelaxed));
}

/// The check is not vacuous: with no event coming (nothing in the reactor), the worker that
/// goes idle last reports the deadlock.
#[test]
fn loom_token_true_deadlock_is_reported() {
    let findings = StdArc::new(Findings::default());
    let found = findings.clone();
    model(None, move || {
        let m = Model::new(1, 0, Reads::WaitersFirst, &findings);
        let mut counts = m.idle.lock();
        let check = m.idle.worker_idle(&mut counts, 0);
        m.on_check(check, &counts);
    });
    assert!(found.deadlock.load(StdRelaxed));
}

// ---------------------------------------------------------------------------------------
// Model 4b: a worker sleeping in the driver takes the waker out itself (`Worker::sleep`):
// it must count itself running (`unidle`) before the drain, as the poller takes the token.
// Worker 1 sleeps in the driver (idle) when T's event arrives; worker 0 goes idle at the
// same time and runs the check.
// ---------------------------------------------------------------------------------------

/// `Worker::sleep` after `driver.park` returned with T's event pending, not unparked.
fn worker_drain(m: &Model, count_first: bool, waiters_until_release: bool) {
    let mut claimed = count_first && !m.idle.unidle(1);
    if !waiters_until_release {
        m.waiters.fetch_sub(1, Release);
    }
    // The wake on a worker: T lands in this worker's LIFO slot (no notify for it).
    m.local.fetch_add(1, SeqCst);
    if waiters_until_release {
        m.waiters.fetch_sub(1, Release);
    }
    if !count_first {
        claimed = !m.idle.unidle(1);
    }
    if claimed {
        m.parkers[1].park();
    }
    // `next_task`: the LIFO slot; `run_task`.
    m.local.fetch_sub(1, SeqCst);
    m.ran.fetch_add(1, SeqCst);
}

fn worker_drain_model(count_first: bool, waiters_until_release: bool) -> StdArc<Findings> {
    let findings = StdArc::new(Findings::default());
    let found = findings.clone();
    model(None, move || {
        let m = Arc::new(Model::new(2, 1, Reads::WaitersFirst, &findings));
        {
            // Worker 1 went to sleep in the driver earlier (nothing to check then: worker 0
            // was running).
            let mut counts = m.idle.lock();
            assert_eq!(m.idle.worker_idle(&mut counts, 1), Check::Skip);
        }
        let drainer = {
            let m = m.clone();
            thread::spawn(move || worker_drain(&m, count_first, waiters_until_release))
        };
        // Worker 0: nothing to do, goes idle (and sleeps: nobody has work for it).
        let sleeper = {
            let m = m.clone();
            thread::spawn(move || m.park(0, &mut false, true))
        };
        drainer.join().unwrap();
        m.end();
        sleeper.join().unwrap();
        assert_eq!(m.ran.load(SeqCst), 1);
    });
    found
}

/// Shipped: count first (`unidle`), then drain, then release the waiter count.
#[test]
fn loom_worker_drain_no_false_deadlock() {
    let found = worker_drain_model(true, true);
    assert!(!found.deadlock.load(StdRelaxed), "false deadlock");
}

/// Broken twice (count after the drain, and the waiter count dropped at the drain): the
/// idle worker's check sees nobody running, nothing waiting, nothing queued.
#[test]
fn loom_worker_drain_count_after_finds_false_deadlock() {
    let found = worker_drain_model(false, false);
    assert!(found.deadlock.load(StdRelaxed), "expected a false deadlock");
}

// ---------------------------------------------------------------------------------------
// Model 4c: Go issues 40368/59600 — a worker thread reserved but not yet started while
// others stop counting. The shape is a retake (`retake.rs`): sysmon reserves a spare
// thread (`workers += 1` under the lock, `try_retake`) before it exists; the retaken
// thread, back from its long poll, gives up its role (`Idle::thread_left`, which runs the
// check); another worker goes idle (`worker_idle`, which runs the check). The work travels
// with the new thread, as in Go (`startm` hands the new M a P), so no queue shows it and
// only the reservation keeps both checks from reporting a deadlock. (runnel's retake also
// keeps the moved ring visible to the check: a second line this model leaves out.)
// ---------------------------------------------------------------------------------------

fn reserved_worker_model(reserve_before_start: bool) -> StdArc<Findings> {
    let findings = StdArc::new(Findings::default());
    let found = findings.clone();
    model(None, move || {
        // Worker 0 and the stuck (retaken) thread, both running.
        let m = Arc::new(Model::new(2, 0, Reads::WaitersFirst, &findings));
        if reserve_before_start {
            // `try_retake`: count the spare's thread before starting it.
            let _ = m.idle.lock().thread_reserved();
        }
        let spare = {
            let m = m.clone();
            thread::spawn(move || {
                if !reserve_before_start {
                    // Broken: the thread counts itself once it runs.
                    let _ = m.idle.lock().thread_reserved();
                }
                // Runs the task it was started for.
                m.ran.fetch_add(1, SeqCst);
            })
        };
        let retaken = {
            let m = m.clone();
            thread::spawn(move || {
                // `give_up_role`, after handing its queue over.
                let mut counts = m.idle.lock();
                let check = counts.thread_left();
                m.on_check(check, &counts);
            })
        };
        let sleeper = {
            let m = m.clone();
            thread::spawn(move || m.park(0, &mut false, true))
        };
        spare.join().unwrap();
        retaken.join().unwrap();
        m.end();
        sleeper.join().unwrap();
    });
    found
}

#[test]
fn loom_reserved_worker_no_false_deadlock() {
    let found = reserved_worker_model(true);
    assert!(!found.deadlock.load(StdRelaxed), "false deadlock");
}

#[test]
fn loom_unreserved_worker_finds_false_deadlock() {
    let found = reserved_worker_model(false);
    assert!(found.deadlock.load(StdRelaxed), "expected a false deadlock");
}

// ---------------------------------------------------------------------------------------
// Model 4d: the driver sleeper claimed while it drains. Worker 0 is the only worker and
// sleeps in the driver (`Parker::park_in_driver`); the driver returns with task T2's event
// ready. At the same time a foreign thread holding T1's waker wakes it (injector +
// `notify_parked`; the model's check counts that waker as `detector::check` counts an
// outside reference, else T1 would look stuck until the wake), which
// may claim the sleeper before, while or after it un-idles itself to drain. Whatever the
// interleaving: the worker is counted running exactly once (no underflow of `idle`, no
// second claim), a claim's unpark is consumed (`park` after a failed `unidle`), both tasks
// run, and no false deadlock is reported.
// ---------------------------------------------------------------------------------------

/// `Worker::sleep`'s first turn: in the driver, which returns with T2's event pending.
fn sleep_in_driver_with_event(m: &Model, searching: &mut bool) {
    let unparked = m.parkers[0].park_in_driver(|| {});
    // `driver.has_pending(now)`: true, T2's event. Count first, then drain.
    let claimed = unparked || !m.idle.unidle(0);
    m.local.fetch_add(1, SeqCst);
    m.waiters.fetch_sub(1, Release);
    if claimed && !unparked {
        // Consume the claimer's token.
        m.parkers[0].park();
    }
    *searching = claimed;
}

#[test]
fn loom_driver_sleeper_claimed_while_draining() {
    let findings = StdArc::new(Findings::default());
    let found = findings.clone();
    model(None, move || {
        let m = Arc::new(Model::new(1, 1, Reads::WaitersFirst, &findings));
        m.foreign.store(1, SeqCst);
        let foreign = {
            let m = m.clone();
            thread::spawn(move || {
                // `waker.wake()`: push, then the waker's reference is the queued task's.
                m.injector.fetch_add(1, SeqCst);
                m.foreign.fetch_sub(1, Release);
                m.notify_parked();
            })
        };
        let mut searching = false;
        let mut event_ready = true;
        while !m.done.load(SeqCst) {
            // `next_task`: the LIFO slot, then the injector.
            let got = if m.local.load(SeqCst) != 0 {
                m.local.fetch_sub(1, SeqCst);
                true
            } else {
                m.pop_injector()
            };
            if got {
                if searching {
                    searching = false;
                    if m.idle.stop_searching() {
                        m.notify_parked();
                    }
                }
                if m.ran.fetch_add(1, SeqCst) + 1 == 2 {
                    m.end();
                }
                continue;
            }
            // T2's event is taken out by the first sleep (a re-check that finds T1 first
            // skips the sleep, and the event waits for the next one).
            m.park_then(0, &mut searching, true, |m, searching| {
                if std::mem::take(&mut event_ready) {
                    sleep_in_driver_with_event(m, searching);
                } else {
                    m.parkers[0].park();
                    *searching = true;
                }
            });
        }
        if searching {
            m.idle.stop_searching();
        }
        foreign.join().unwrap();
        m.assert_at_rest(2);
        assert_eq!(m.waiters.load(SeqCst), 0);
    });
    assert!(!found.deadlock.load(StdRelaxed), "false deadlock");
}

// ---------------------------------------------------------------------------------------
// Model 3b: worker threads started by their first claim (`Shared::wake_claimed`). The
// runtime begins with every worker role parked and threadless (`Idle::with_parked_threads`,
// `Boot` at `NO_THREAD`). A claim that finds the role threadless starts its thread (a loom
// thread here) instead of unparking it; the thread begins counted running and searching,
// as a claimed worker returns from its park. The spawner also hands the poller's start on
// (`PollerThread::hand_duty`: claim a sleeper, else give it to a role whose thread has not
// begun) or starts it itself. Asserted: every task runs (no lost wakeup: a claim's start
// stands in for its unpark), the counts come to rest, and the poller is started exactly
// once (the duty is neither lost in the race between a claim's thread start, `hand_duty`
// and `Boot::begin`, nor doubled). The spawners are outside the runtime (the real check
// answers "maybe" while they hold a handle), so the check's verdicts are model 4's
// business, not asserted here.
// ---------------------------------------------------------------------------------------

use crate::scheduler::Boot;

struct Lazy {
    m: Model,
    boots: Vec<Boot>,
    /// `Remote::sysmon_duty`.
    duty: Vec<AtomicBool>,
    /// Worker threads started by claims, for the model to join.
    handles: loom::sync::Mutex<Vec<thread::JoinHandle<()>>>,
    /// Poller thread starts (by the spawner, or by a worker owing the duty).
    poller_starts: AtomicUsize,
    until: usize,
}

impl Lazy {
    fn new(workers: usize, until: usize, findings: &StdArc<Findings>) -> Lazy {
        let mut m = Model::new(workers, 0, Reads::WaitersFirst, findings);
        m.idle = Idle::with_parked_threads(workers);
        Lazy {
            m,
            boots: (0..workers).map(|_| Boot::new(true)).collect(),
            duty: (0..workers).map(|_| AtomicBool::new(false)).collect(),
            handles: loom::sync::Mutex::new(Vec::new()),
            poller_starts: AtomicUsize::new(0),
            until,
        }
    }

    /// `Shared::wake_claimed`.
    fn wake_claimed(this: &Arc<Self>, index: usize) {
        if !this.boots[index].claim_start() {
            this.m.parkers[index].unpark();
            return;
        }
        let me = this.clone();
        let handle = thread::spawn(move || Lazy::run(&me, index));
        this.handles.lock().unwrap().push(handle);
    }

    /// `Shared::notify_parked`.
    fn notify_parked(this: &Arc<Self>) {
        fence(SeqCst);
        if !this.m.idle.should_notify() {
            return;
        }
        let claimed = {
            let mut counts = this.m.idle.lock();
            if this.m.idle.num_searching() != 0 {
                return;
            }
            this.m.idle.claim_sleeper(&mut counts)
        };
        if let Some(index) = claimed {
            Lazy::wake_claimed(this, index);
        }
    }

    /// `PollerThread::hand_duty(shared, except)`.
    fn hand_duty(this: &Arc<Self>, except: Option<usize>) -> bool {
        let claimed = {
            let mut counts = this.m.idle.lock();
            this.m.idle.claim_sleeper(&mut counts)
        };
        if let Some(index) = claimed {
            this.duty[index].store(true, Release);
            Lazy::wake_claimed(this, index);
            return true;
        }
        this.boots
            .iter()
            .enumerate()
            .any(|(index, boot)| Some(index) != except && boot.hand_duty())
    }

    /// A spawn from a thread outside the runtime: push, notify, then `start_for_spawn`.
    fn spawn(this: &Arc<Self>, hand_poller: bool) {
        this.m.injector.fetch_add(1, SeqCst);
        Lazy::notify_parked(this);
        if hand_poller && !Lazy::hand_duty(this, None) {
            this.poller_starts.fetch_add(1, SeqCst);
        }
    }

    /// A worker owing the poller's start: `start_before_poll` (hand it on, else start it).
    fn pay_duty(this: &Arc<Self>, index: usize) {
        if !Lazy::hand_duty(this, Some(index)) {
            this.poller_starts.fetch_add(1, SeqCst);
        }
    }

    /// `thread_main` with `claimed`, then `Worker::run`: begins counted searching.
    fn run(this: &Arc<Self>, index: usize) {
        let mut owes = this.boots[index].begin();
        owes |= this.duty[index].swap(false, Acquire);
        let mut searching = true;
        let m = &this.m;
        while !m.done.load(SeqCst) {
            if !m.pop_injector() {
                m.park(index, &mut searching, true);
                owes |= this.duty[index].swap(false, Acquire);
                continue;
            }
            if std::mem::take(&mut owes) {
                Lazy::pay_duty(this, index);
            }
            if searching {
                searching = false;
                if m.idle.stop_searching() {
                    Lazy::notify_parked(this);
                }
            }
            if m.ran.fetch_add(1, SeqCst) + 1 == this.until {
                this.end();
            }
        }
        if owes {
            // `start_as_duty` with no task live: the start is withdrawn, not lost.
            this.poller_starts.fetch_add(1, SeqCst);
        }
        if searching {
            m.idle.stop_searching();
        }
    }

    /// `Model::end` as `Runtime::shutdown` does it: a role that never had a thread is
    /// claimed but not started.
    fn end(&self) {
        self.m.done.store(true, SeqCst);
        for index in self.m.idle.claim_all() {
            if self.boots[index].has_thread() {
                self.m.parkers[index].unpark();
            }
        }
    }

    fn join_all(&self) {
        loop {
            let next = self.handles.lock().unwrap().pop();
            match next {
                Some(handle) => handle.join().unwrap(),
                None => return,
            }
        }
    }
}

/// `workers` threadless roles; this thread spawns `local` tasks (handing on the poller's
/// start after the first), a remote thread `remote` more.
fn lazy_start_model(workers: usize, local: usize, remote: usize, bound: Option<usize>) {
    let findings = StdArc::new(Findings::default());
    let tasks = local + remote;
    model(bound, move || {
        let l = Arc::new(Lazy::new(workers, tasks, &findings));
        let other = (remote > 0).then(|| {
            let l = l.clone();
            thread::spawn(move || (0..remote).for_each(|_| Lazy::spawn(&l, false)))
        });
        for i in 0..local {
            Lazy::spawn(&l, i == 0);
        }
        if let Some(other) = other {
            other.join().unwrap();
        }
        l.join_all();
        let m = &l.m;
        assert_eq!(m.ran.load(SeqCst), tasks, "a task was not run");
        let never_started = l.boots.iter().filter(|b| !b.has_thread()).count();
        {
            let counts = m.idle.lock();
            assert_eq!(
                (counts.idle(), counts.idle_workers(), counts.token()),
                (0, 0, 0),
                "idle, sleepers, token"
            );
        }
        // `end` claims the threadless roles too; nothing ever un-counts their search.
        assert_eq!(m.idle.num_searching(), never_started, "searching");
        assert_eq!(
            l.poller_starts.load(SeqCst),
            usize::from(local > 0),
            "the poller's start was lost or doubled"
        );
    });
}

/// One spawn on a two-worker runtime: the claim starts worker 0, the poller's start goes
/// to worker 1 (claimed and started) or, once worker 0's search claimed it, to whichever
/// thread has not begun yet, else to the spawner.
#[test]
fn loom_lazy_start_first_spawn() {
    lazy_start_model(2, 1, 0, Some(3));
}

/// A local and a remote spawn race to claim the threadless roles: each role's thread is
/// started once, and both tasks run.
#[test]
fn loom_lazy_start_two_spawners() {
    lazy_start_model(2, 1, 1, Some(3));
}

/// One worker: the spawner's claim starts it, and the poller's start goes to it (not yet
/// begun, or parked again) or to the spawner.
#[test]
fn loom_lazy_start_one_worker() {
    lazy_start_model(1, 2, 0, None);
}
