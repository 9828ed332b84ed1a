//! Partial deadlocks and leaks, found while the rest of the runtime keeps running (a
//! server never goes quiet, so the global check cannot see them). Sysmon runs a scan
//! every 250 ms.
//!
//! - **Stuck sets** of the wait-for graph (`graph.rs`): tasks that wait on each other's
//!   completion (certain) or on locks held by each other (likely). Reported as "partial
//!   deadlock" / "likely partial deadlock", counted in `partial_deadlocks`.
//! - **Leaks** (certain): a task that waits and has no reference beyond the owned list's
//!   and its `JoinHandle`'s — no waker exists anywhere, no `Notified` is in flight (one
//!   read of the state word, `Header::is_unreachable_waiter`), so nothing can ever poll
//!   it again: a future returned `Pending` without keeping its waker. Counted in
//!   `leaked_tasks`. A task with an `AbortHandle` is not reported (the reference cannot be
//!   told from a waker).
//!
//! Both are reported once, and only after every task involved kept its poll count through
//! `partial_deadlock_after` of scans that all found it so. For a leak that wait is not
//! needed for certainty (nothing can reach the task), only to keep the two kinds alike.
//!
//! Delivery follows `Builder::on_partial_deadlock`: `Report` prints on stderr, `Ignore`
//! only counts, `Panic` hands the report to every `block_on` caller (as the global check
//! does; printed when there is none), again on each scan while any caller has not taken
//! it, since a caller that was awake when the report came may go to sleep later.

use std::collections::{HashMap, HashSet};
use std::panic::Location;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::time::Instant;

use super::graph::{render, stuck_sets, Vertex};
use crate::runtime::OnDeadlock;
use crate::scheduler::Shared;

/// The scan's memory between runs.
#[derive(Default)]
pub(crate) struct PartialCheck {
    /// Each task found stuck or leaked by the last scan: its poll count then, and since
    /// when it has been found so with that count.
    quiet: HashMap<u64, (u32, Instant)>,
    /// Stuck sets reported so far (sorted ids), so each is reported once.
    reported: HashSet<Vec<u64>>,
    /// Leaked tasks reported so far.
    leaks_reported: HashSet<u64>,
    /// `OnDeadlock::Panic`: the first report, handed to `block_on` callers on each scan.
    panic_with: Option<String>,
}

/// A task found leaked by one scan.
struct Leak {
    id: u64,
    polls: u32,
    location: &'static Location<'static>,
}

impl PartialCheck {
    /// Scans the runtime's tasks; reports (per the policy) each stuck set and leak that has
    /// stayed quiet long enough and was not reported before.
    pub(crate) fn run(&mut self, shared: &Shared, now: Instant) {
        let mut vertices = HashMap::new();
        let mut leaks = Vec::new();
        let mut waiting = Vec::new();
        shared.owned.for_each_while(|header, location| {
            let polls = header.polls();
            if header.is_idle() {
                waiting.push((header.id().as_u64(), polls));
            }
            if header.is_unreachable_waiter() && header.holds.load(SeqCst) == 0 {
                leaks.push(Leak {
                    id: header.id().as_u64(),
                    polls,
                    location,
                });
            } else if let Some(vertex) = Vertex::of(header, location) {
                vertices.insert(vertex.id, vertex);
            }
            true
        });
        shared.wait_ages.update(&waiting, now);
        let sets = stuck_sets(&vertices);

        // Keep the clock of each task still found with the same poll count.
        let mut quiet = HashMap::new();
        let found = sets
            .iter()
            .flatten()
            .map(|id| (*id, vertices[id].polls))
            .chain(leaks.iter().map(|l| (l.id, l.polls)));
        for (id, polls) in found {
            let since = match self.quiet.get(&id) {
                Some(&(seen, since)) if seen == polls => since,
                _ => now,
            };
            quiet.insert(id, (polls, since));
        }
        self.quiet = quiet;
        let after = shared.config.partial_deadlock_after;
        let ripe = |id: &u64| now.duration_since(self.quiet[id].1) >= after;

        let mut reports = Vec::new();
        for set in sets {
            if set.iter().all(ripe) && !self.reported.contains(&set) {
                reports.push(render(&set, &vertices));
                self.reported.insert(set);
                shared.partial_deadlocks.fetch_add(1, Relaxed);
            }
        }
        for leak in &leaks {
            if ripe(&leak.id) && self.leaks_reported.insert(leak.id) {
                reports.push(format!(
                    "task {} leaked: it returned Pending and no waker for it exists, so it \
                     can never be polled again (spawned at {}; a future that returns \
                     Pending must keep its waker, or a clone of it, to be woken)",
                    leak.id, leak.location
                ));
                shared.leaked_tasks.fetch_add(1, Relaxed);
            }
        }
        self.deliver(shared, reports);
    }

    fn deliver(&mut self, shared: &Shared, reports: Vec<String>) {
        match shared.config.on_partial_deadlock {
            OnDeadlock::Ignore => {}
            OnDeadlock::Report => {
                for report in &reports {
                    eprintln!("runnel: {report}");
                }
            }
            OnDeadlock::Panic => {
                if self.panic_with.is_none() {
                    self.panic_with = reports.first().cloned();
                }
                let Some(text) = &self.panic_with else {
                    return;
                };
                let mut unpark = Vec::new();
                let callers = {
                    let mut counts = shared.idle.lock();
                    let signals = counts.block_ons().to_vec();
                    for signal in &signals {
                        if signal.deliver_deadlock(&mut counts, text) {
                            unpark.push(signal.clone());
                        }
                    }
                    signals.len()
                };
                for signal in unpark {
                    signal.unpark();
                }
                if callers == 0 {
                    // Nobody to panic: say it (new reports only).
                    for report in &reports {
                        eprintln!("runnel: {report}");
                    }
                }
            }
        }
    }
}
