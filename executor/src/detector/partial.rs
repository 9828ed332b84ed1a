//! Partial deadlocks: a cycle of tasks each awaiting the next one's `JoinHandle`, found
//! while the rest of the runtime keeps running (a server never goes quiet, so the global
//! check cannot see it).
//!
//! A task is a *link* when it is idle (not running, queued or complete), its only waker
//! beyond the runtime's holders is the one in a `JoinHandle` slot (`holds == 1`, no other
//! reference: no reactor, timer, channel or foreign waker, no `AbortHandle`), its own
//! `JoinHandle` is inside the runtime, and what it waits on is the join of task T. Such a
//! task can only be woken by T's completion. A cycle of links can never run again: each
//! member waits for the next to complete, and none can complete without running.
//!
//! Reading the tasks one at a time is enough: a member seen idle stays idle until its
//! target completes, and every target is seen not complete (a link's target must be a
//! link too). This relies on the rule's stated limit (README, "The limit"): a
//! `JoinHandle` is held by the task that awaits it — one shared by reference with a task
//! that could abort it is not seen.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};

use runnel_reactor::wait::WaitReason;

use super::refs_outside;
use crate::scheduler::Shared;
use crate::task::Header;

/// The cycles reported so far (by their smallest task id), so each is reported once.
#[derive(Default)]
pub(crate) struct PartialCheck {
    reported: HashSet<u64>,
}

impl PartialCheck {
    /// Scans the runtime's tasks; returns a report for each cycle not reported before.
    pub(crate) fn run(&mut self, shared: &Shared) -> Vec<String> {
        let mut links: HashMap<u64, (u64, String)> = HashMap::new();
        shared.owned.for_each_while(|header| {
            if let Some(target) = link_target(header) {
                links.insert(
                    header.id().as_u64(),
                    (target, header.origin.location.to_string()),
                );
            }
            true
        });
        let mut reports = Vec::new();
        let mut seen = HashSet::new();
        for &start in links.keys() {
            if seen.contains(&start) {
                continue;
            }
            // Follow the chain from `start`; a cycle closes when we meet a task of this
            // walk again.
            let mut path = Vec::new();
            let mut on_path = HashMap::new();
            let mut current = start;
            let cycle = loop {
                if seen.contains(&current) && !on_path.contains_key(&current) {
                    break None;
                }
                if let Some(&at) = on_path.get(&current) {
                    break Some(path[at..].to_vec());
                }
                let Some((target, _)) = links.get(&current) else {
                    break None;
                };
                on_path.insert(current, path.len());
                path.push(current);
                current = *target;
            };
            seen.extend(path.iter().copied());
            let Some(cycle) = cycle else { continue };
            let key = *cycle.iter().min().expect("a cycle has members");
            if !self.reported.insert(key) {
                continue;
            }
            reports.push(render(&cycle, &links));
        }
        if !reports.is_empty() {
            shared
                .partial_deadlocks
                .fetch_add(reports.len() as u64, Relaxed);
        }
        reports
    }
}

/// The task `header` can only be woken by, if it is a link (see the module docs).
fn link_target(header: &Header) -> Option<u64> {
    if !header.is_idle() {
        return None;
    }
    if header.holds.load(SeqCst) != 1 || refs_outside(header) != 0 || header.is_join_held_outside()
    {
        return None;
    }
    match header.reason.get() {
        Some(WaitReason::Join { task }) if task != header.id().as_u64() => Some(task),
        _ => None,
    }
}

fn render(cycle: &[u64], links: &HashMap<u64, (u64, String)>) -> String {
    let mut text = format!(
        "partial deadlock: {} task(s) wait on each other's completion and can never run \
         again (the rest of the runtime goes on):",
        cycle.len()
    );
    for id in cycle {
        let (target, location) = &links[id];
        let _ = write!(
            text,
            "\ntask {id} (spawned at {location}) waits on: join of task {target}"
        );
    }
    text
}
