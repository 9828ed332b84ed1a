//! The poller thread: runnel's `sysmon`. The only thread that blocks in the reactor.
//!
//! Each turn: block in `Driver::park` until an I/O event, a timer deadline, an interrupt
//! or the sysmon tick; if any waker is ready, take the pretend-running token, move the
//! wakers out, wake them (their tasks go to the injector and a sleeping worker is
//! claimed), release the reactor's waiter counts, and give the token back — which runs
//! the deadlock check (DESIGN.md invariants 2–4). Then the sysmon duties:
//!
//! - notice a worker stuck in one poll for longer than `stuck_poll_after` (blocking code
//!   in a task) and count it in `RuntimeMetrics::stalls`;
//! - while nothing runs, re-run the deadlock check (a waker dropped by a foreign thread
//!   can turn "maybe" into a deadlock without any thread going idle);
//! - after `stall_report_after` of continuous quiet, print one stall report.
//!
//! The tick adapts as in Go: 20 µs while there is activity, doubling up to 10 ms when
//! idle (epoll's millisecond timeout rounds the short ticks up to 1 ms).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use runnel_reactor::Driver;

use crate::deadlock;
use crate::scheduler::idle::Check;
use crate::scheduler::Shared;

const MIN_TICK: Duration = Duration::from_micros(20);
const MAX_TICK: Duration = Duration::from_millis(10);

pub(crate) fn run(shared: Arc<Shared>, mut driver: Driver) {
    let mut wakers = Vec::new();
    let mut tick = MIN_TICK;
    let mut sysmon = Sysmon::new(shared.remotes.len());
    while !shared.is_shutdown() {
        if let Err(err) = driver.park(Some(tick)) {
            if err.kind() != std::io::ErrorKind::Interrupted {
                eprintln!("runnel: the reactor failed to poll: {err}");
                std::thread::sleep(tick);
            }
        }
        let now = Instant::now();
        if driver.has_pending(now) {
            inject(&shared, &mut driver, now, &mut wakers);
            tick = MIN_TICK;
        } else {
            tick = (tick * 2).min(MAX_TICK);
        }
        sysmon.run(&shared, now);
    }
}

/// Moves every ready waker out of the reactor and wakes it, under the token.
fn inject(shared: &Shared, driver: &mut Driver, now: Instant, wakers: &mut Vec<std::task::Waker>) {
    // Count first: from here until release_token, a worker going idle sees running > 0.
    shared.idle.take_token();
    let drained = driver.drain(now, wakers);
    shared
        .injected_wakeups
        .fetch_add(wakers.len() as u64, Relaxed);
    for waker in wakers.drain(..) {
        // Each task lands in the injector and notify_parked claims a sleeper (counted
        // running under the lock) before we get here again.
        waker.wake();
    }
    // Invariant 4: the reactor's waiter count drops only now that the tasks are queued.
    shared.reactor.release(drained);
    let report = {
        let mut counts = shared.idle.lock();
        match shared.idle.release_token(&mut counts) {
            Check::Run => deadlock::check(shared, &mut counts),
            Check::Skip => None,
        }
    };
    if let Some(report) = report {
        report.deliver(shared);
    }
}

struct Sysmon {
    /// Per worker: the poll sequence seen last and when it was first seen.
    seen: Vec<(u64, Instant)>,
    /// Per worker: the poll sequence already counted as a stall.
    stalled: Vec<u64>,
    last_polls: u64,
    quiet_since: Option<Instant>,
    stall_reported: bool,
}

impl Sysmon {
    fn new(workers: usize) -> Sysmon {
        let now = Instant::now();
        Sysmon {
            seen: vec![(0, now); workers],
            stalled: vec![u64::MAX; workers],
            last_polls: 0,
            quiet_since: None,
            stall_reported: false,
        }
    }

    fn run(&mut self, shared: &Shared, now: Instant) {
        let mut polls = 0;
        let mut in_poll = false;
        for (index, remote) in shared.remotes.iter().enumerate() {
            polls += remote.metrics.polls();
            let seq = remote.metrics.poll_seq.load(Relaxed);
            let (last_seq, since) = &mut self.seen[index];
            if seq != *last_seq {
                *last_seq = seq;
                *since = now;
            }
            // Odd: inside a poll, and the same poll since `since`.
            if seq % 2 == 1 {
                in_poll = true;
                if now - *since >= shared.config.stuck_poll_after && self.stalled[index] != seq {
                    self.stalled[index] = seq;
                    shared.stalls.fetch_add(1, Relaxed);
                }
            }
        }
        if polls != self.last_polls || in_poll {
            self.last_polls = polls;
            self.quiet_since = None;
            self.stall_reported = false;
            return;
        }
        let quiet_since = *self.quiet_since.get_or_insert(now);
        self.recheck_deadlock(shared);
        if let Some(after) = shared.config.stall_report_after {
            if !self.stall_reported && now - quiet_since >= after {
                self.stall_reported = true;
                if let Some(report) = deadlock::stall_report(shared, now - quiet_since) {
                    shared.stall_reports.fetch_add(1, Relaxed);
                    eprintln!("runnel: {report}");
                }
            }
        }
    }

    fn recheck_deadlock(&self, shared: &Shared) {
        let report = {
            let mut counts = shared.idle.lock();
            if counts.running() != 0 || counts.blocking != 0 {
                return;
            }
            deadlock::check(shared, &mut counts)
        };
        if let Some(report) = report {
            report.deliver(shared);
        }
    }
}
