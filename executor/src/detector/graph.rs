//! The wait-for graph: which waiting task can only be woken by which other tasks.
//!
//! A *vertex* is a waiting task whose every possible waker is known to be another task of
//! this runtime. Its *sources* are those tasks; it has no other way to run again:
//!
//! - **Join** (certain): idle, its only waker beyond the runtime's holders sits in a
//!   `JoinHandle` slot (`holds == 1`, no other reference: no reactor, timer, channel or
//!   foreign waker, no `AbortHandle`, no `Notified` in flight), its own `JoinHandle` is
//!   inside the runtime, and it waits on the join of task T. Source: T (its completion).
//! - **Lock** (likely): idle, exactly one waker beyond the runtime's holders (`holds ==
//!   0`, one other reference) and its last poll registered a wait on a `runnel-sync`
//!   `Mutex`, `RwLock` or `Semaphore` with its own waker (`runnel_reactor::wait`) — so that
//!   one reference is the waker in the lock's queue. Sources: the tasks the lock's
//!   `Holders` record names (guards and the queue head's partial assignment). Not a
//!   vertex if any holder is not a runnel task or was not recorded, or if the semaphore
//!   ever had permits added or was closed by a call no guard made (`open`). A guard can
//!   move to another task or thread without the lock seeing it: that is the presumption.
//!   (A lock inside the waiting task's own future could only have been taken by that
//!   task, but the wait reason that would give the lock's address is not tied to the
//!   registration as an address registration is, so lock edges stay likely.)
//! - **Own** (certain): idle, exactly one waker beyond the runtime's holders (`holds ==
//!   0`, one other reference), and its last poll registered, with its own waker, a wait
//!   on a `runnel-sync` primitive (`Notify`, a `WaitGroup` no token shares) *by address*
//!   — an address inside the task's own allocation (`Header::owns`). So the one reference
//!   is the waker in that primitive, and the primitive is a field of the task's future:
//!   a spawned future is `'static` and owned by its task, so no other task or thread can
//!   hold a reference into it, and nothing but the task's own poll can reach the
//!   primitive to wake it (only `unsafe` code that publishes a pointer into a task's
//!   future could). Source: the task itself. Rust's form of Go's `cond.Wait()` with no
//!   other goroutine able to signal, or `wg.Add(1); wg.Wait()`.
//!
//! A set of vertices whose sources all lie inside the set (a *knot*) can never run again:
//! each could only be woken by another member acting, and none can act without running.
//! Any waiter is satisfied by one source acting (a holder's release, a completion), so
//! the test is conservative for every kind of wait (a writer that needs every reader
//! would already be stuck with one stuck reader; requiring all of them misses such cases,
//! never invents one). `stuck_sets` finds the largest knot by removing, until nothing
//! changes, every vertex with a source outside the remaining set, and splits what is left
//! into connected parts: each is one report.
//!
//! Tasks are read one at a time while the runtime runs, so one scan may mix instants; the
//! caller reports a set only after every member kept the same poll count (was not polled)
//! through `partial_deadlock_after` of scans that all found it stuck.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::panic::Location;
use std::sync::atomic::Ordering::SeqCst;

use runnel_reactor::wait::{HoldersSnapshot, RecordOf, SyncKind, WaitReason};

use super::refs_outside;
use crate::task::Header;

/// How a vertex waits (see the module docs).
#[derive(Clone, Debug)]
pub(super) enum Edge {
    /// The completion of this task: certain.
    Join { target: u64 },
    /// A lock whose holders are these: likely.
    Lock {
        reason: WaitReason,
        holders: HoldersSnapshot,
    },
    /// A primitive inside the task's own future: certain, and its only source is itself.
    Own { reason: WaitReason },
}

/// A waiting task that only other tasks of the runtime can wake.
#[derive(Clone, Debug)]
pub(super) struct Vertex {
    pub(super) id: u64,
    /// Polls begun when read (mod 2^31, `Header::polls`): unchanged at the next scan
    /// means not polled in between. Only ever compared for equality, so the wrap does not
    /// matter: 2^31 polls of one task between two scans 250 ms apart cannot happen.
    pub(super) polls: u32,
    location: &'static Location<'static>,
    edge: Edge,
}

impl Vertex {
    /// The vertex `header` is, if it is one (see the module docs).
    pub(super) fn of(header: &Header, location: &'static Location<'static>) -> Option<Vertex> {
        // The poll count first: a poll that begins after this read changes it, so a
        // later scan sees that the task ran.
        let polls = header.polls();
        if !header.is_idle() || header.is_join_held_outside() {
            return None;
        }
        let id = header.id().as_u64();
        let holds = header.holds.load(SeqCst);
        let outside = refs_outside(header);
        let edge = match header.reason.get()? {
            WaitReason::Join { task } if task != id && holds == 1 && outside == 0 => {
                Edge::Join { target: task }
            }
            reason @ WaitReason::Sync { kind, .. }
                if lock_name(kind).is_some() && holds == 0 && outside == 1 =>
            {
                let holders = header.reason.read_registration(|h| h.snapshot())?;
                // A channel's record is for dumps only: channel waits are never followed
                // (ARCHITECTURE.md, "Why channel waits are not followed").
                if !matches!(holders.of, RecordOf::Lock { .. })
                    || holders.unknown
                    || holders.open
                    || holders.tasks.is_empty()
                {
                    return None;
                }
                Edge::Lock { reason, holders }
            }
            reason @ WaitReason::Sync { .. } if holds == 0 && outside == 1 => {
                let at = header.reason.registered_at()?;
                if !header.owns(at) {
                    return None;
                }
                Edge::Own { reason }
            }
            _ => return None,
        };
        Some(Vertex {
            id,
            polls,
            location,
            edge,
        })
    }

    /// The tasks that alone can wake this one.
    fn sources(&self) -> &[u64] {
        match &self.edge {
            Edge::Join { target } => std::slice::from_ref(target),
            Edge::Lock { holders, .. } => &holders.tasks,
            Edge::Own { .. } => std::slice::from_ref(&self.id),
        }
    }

    fn is_certain(&self) -> bool {
        matches!(self.edge, Edge::Join { .. } | Edge::Own { .. })
    }
}

/// What a lock kind's primitive is called, for the lock waits the graph follows.
fn lock_name(kind: SyncKind) -> Option<&'static str> {
    match kind {
        SyncKind::MutexLock => Some("mutex"),
        SyncKind::RwLockRead | SyncKind::RwLockWrite => Some("rwlock"),
        SyncKind::SemaphoreAcquire => Some("semaphore"),
        _ => None,
    }
}

/// The sets of vertices that can never run again (see the module docs), each sorted by
/// task id.
pub(super) fn stuck_sets(vertices: &HashMap<u64, Vertex>) -> Vec<Vec<u64>> {
    let mut alive: HashSet<u64> = vertices.keys().copied().collect();
    loop {
        let leaving: Vec<u64> = alive
            .iter()
            .copied()
            .filter(|id| {
                vertices[id]
                    .sources()
                    .iter()
                    .any(|source| !alive.contains(source))
            })
            .collect();
        if leaving.is_empty() {
            break;
        }
        for id in leaving {
            alive.remove(&id);
        }
    }
    // Connected parts (edges taken both ways), by union-find over task ids.
    let mut parent: HashMap<u64, u64> = alive.iter().map(|&id| (id, id)).collect();
    fn root(parent: &mut HashMap<u64, u64>, mut id: u64) -> u64 {
        while parent[&id] != id {
            let up = parent[&parent[&id]];
            parent.insert(id, up);
            id = up;
        }
        id
    }
    for &id in &alive {
        for &source in vertices[&id].sources() {
            let (a, b) = (root(&mut parent, id), root(&mut parent, source));
            if a != b {
                parent.insert(a.max(b), a.min(b));
            }
        }
    }
    let mut sets: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for &id in &alive {
        let r = root(&mut parent, id);
        sets.entry(r).or_default().push(id);
    }
    sets.into_values()
        .map(|mut set| {
            set.sort_unstable();
            set
        })
        .collect()
}

/// The report for one stuck set: every task, what it waits on, and which locks it holds.
pub(super) fn render(set: &[u64], vertices: &HashMap<u64, Vertex>) -> String {
    let members: Vec<&Vertex> = set.iter().map(|id| &vertices[id]).collect();
    let mut text = if members.iter().all(|v| matches!(v.edge, Edge::Join { .. })) {
        format!(
            "partial deadlock: {} task(s) wait on each other's completion and can never run \
             again (the rest of the runtime goes on):",
            set.len()
        )
    } else if members.iter().all(|v| v.is_certain()) {
        format!(
            "partial deadlock: {} task(s) can never run again: each waits on the completion \
             of another of them or on a primitive inside its own future, which nothing \
             outside the task can reach (the rest of the runtime goes on):",
            set.len()
        )
    } else {
        format!(
            "likely partial deadlock: {} task(s) wait on each other and can never run again, \
             unless a lock guard was moved to a task or thread outside this cycle (lock \
             holders are the tasks that took the lock); the rest of the runtime goes on:",
            set.len()
        )
    };
    for v in &members {
        let _ = write!(
            text,
            "\ntask {} (spawned at {}) waits on: ",
            v.id, v.location
        );
        match &v.edge {
            Edge::Join { target } => {
                let _ = write!(text, "join of task {target}");
            }
            Edge::Lock { reason, holders } => {
                let _ = write!(
                    text,
                    "{reason} (created at {}), held by {}",
                    holders.created_at,
                    tasks(&holders.tasks)
                );
            }
            Edge::Own { reason } => {
                let _ = write!(
                    text,
                    "{reason}, which lives inside this task's own future: nothing outside \
                     the task can reach it"
                );
            }
        }
        let held: Vec<String> = members
            .iter()
            .filter_map(|w| match &w.edge {
                Edge::Lock {
                    reason: WaitReason::Sync { kind, addr },
                    holders,
                } => {
                    let i = holders.tasks.iter().position(|&t| t == v.id)?;
                    Some(format!(
                        "{} {addr:#x} (created at {}{})",
                        lock_name(*kind).unwrap_or("lock"),
                        holders.created_at,
                        super::report::taken_note(holders, i)
                    ))
                }
                _ => None,
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if !held.is_empty() {
            let _ = write!(text, "; it holds {}", held.join(", "));
        }
    }
    text
}

fn tasks(ids: &[u64]) -> String {
    let names: Vec<String> = ids.iter().map(|id| format!("task {id}")).collect();
    names.join(" and ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(id: u64, target: u64) -> Vertex {
        Vertex {
            id,
            polls: 1,
            location: Location::caller(),
            edge: Edge::Join { target },
        }
    }

    fn lock(id: u64, holders: &[u64]) -> Vertex {
        Vertex {
            id,
            polls: 1,
            location: Location::caller(),
            edge: Edge::Lock {
                reason: WaitReason::Sync {
                    kind: SyncKind::MutexLock,
                    addr: 0x10,
                },
                holders: HoldersSnapshot {
                    tasks: holders.to_vec(),
                    held_for: vec![None; holders.len()],
                    taken_at: vec![None; holders.len()],
                    unknown: false,
                    open: false,
                    created_at: Location::caller(),
                    of: RecordOf::Lock { permits: 1 },
                },
            },
        }
    }

    fn own(id: u64) -> Vertex {
        Vertex {
            id,
            polls: 1,
            location: Location::caller(),
            edge: Edge::Own {
                reason: WaitReason::Sync {
                    kind: SyncKind::Notified,
                    addr: 0x20,
                },
            },
        }
    }

    fn graph(vertices: Vec<Vertex>) -> HashMap<u64, Vertex> {
        vertices.into_iter().map(|v| (v.id, v)).collect()
    }

    #[test]
    fn a_cycle_and_the_chain_into_it_are_one_stuck_set() {
        // 1 -> 2 -> 3 -> 2 (join, lock, join); 4 waits on 1; 5 on a task not waiting (9).
        let g = graph(vec![
            join(1, 2),
            lock(2, &[3]),
            join(3, 2),
            lock(4, &[1]),
            join(5, 9),
        ]);
        assert_eq!(stuck_sets(&g), vec![vec![1, 2, 3, 4]]);
    }

    #[test]
    fn a_waiter_with_any_source_outside_is_not_stuck() {
        // 1 and 2 hold what the other waits on, but 2 could also be released by 3, which
        // is not waiting: nothing is stuck (one source acting suffices).
        let g = graph(vec![lock(1, &[2]), lock(2, &[1, 3])]);
        assert!(stuck_sets(&g).is_empty());
        // A self-wait (an RwLock reader asking to write) is stuck on its own.
        let g = graph(vec![lock(7, &[7]), lock(8, &[8])]);
        assert_eq!(stuck_sets(&g), vec![vec![7], vec![8]]);
    }

    #[test]
    fn the_report_says_likely_only_with_a_lock_edge() {
        let g = graph(vec![join(1, 2), join(2, 1)]);
        assert!(render(&[1, 2], &g).starts_with("partial deadlock: 2 task(s)"));
        let g = graph(vec![join(1, 2), lock(2, &[1])]);
        let text = render(&[1, 2], &g);
        assert!(
            text.starts_with("likely partial deadlock: 2 task(s)"),
            "{text}"
        );
        assert!(text.contains("held by task 1"), "{text}");
        assert!(text.contains("task 1 (spawned at"), "{text}");
        assert!(text.contains("; it holds mutex 0x10"), "{text}");
    }

    #[test]
    fn a_wait_on_a_primitive_of_its_own_is_stuck_alone_and_certain() {
        // 1 waits on a notify inside its own future; 2 joins 1; 3 joins a running task.
        let g = graph(vec![own(1), join(2, 1), join(3, 9)]);
        assert_eq!(stuck_sets(&g), vec![vec![1, 2]]);
        let text = render(&[1, 2], &g);
        assert!(
            text.starts_with("partial deadlock: 2 task(s) can never run again"),
            "{text}"
        );
        assert!(
            text.contains(
                "waits on: notification of notify 0x20, which lives inside this task's own future"
            ),
            "{text}"
        );
        // With a lock edge in the set, the report is likely again.
        let g = graph(vec![own(1), lock(2, &[1])]);
        assert!(render(&[1, 2], &g).starts_with("likely partial deadlock"));
    }
}
