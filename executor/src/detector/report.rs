//! What the detector says: the deadlock report (built under the scheduler lock, delivered
//! after it is released) and the stall report, both naming every waiting task with what
//! is known about who could wake it.

use std::fmt::Write as _;
use std::sync::Arc;

use super::{handles_outside, refs_outside, Counts};
use std::sync::atomic::Ordering::Relaxed;

use runnel_reactor::wait::{HoldersSnapshot, RecordOf, SyncKind, WaitReason, WaitSlot};

use crate::dump::{BlockOnEntry, Seconds, TaskDump, TaskEntry, TaskState, WaitInfo};

use crate::runtime::OnDeadlock;
use crate::scheduler::Shared;
use crate::task::Header;

/// How many waiting tasks a report lists before "and N more".
const LISTED: usize = 10;

/// The first line of every deadlock report, as in Go.
pub const DEADLOCK_MESSAGE: &str = "all tasks are asleep - deadlock!";

/// What a report says about one waiting task.
pub(super) struct Waiter {
    id: u64,
    location: String,
    known: WaitInfo,
}

impl Waiter {
    pub(super) fn of(header: &Header, location: &'static std::panic::Location<'static>) -> Waiter {
        Waiter {
            id: header.id().as_u64(),
            location: location.to_string(),
            known: wait_info(header),
        }
    }
}

/// What is known about a waiting task, read under its list shard's lock.
fn wait_info(header: &Header) -> WaitInfo {
    let reason = header.reason.get();
    // A socket, timer or signal wait leaves one waker with the reactor or the timer wheel,
    // which the detector counts itself (I/O waiters, armed timers): not an outside holder.
    let reactor = matches!(
        reason,
        Some(
            WaitReason::Readable { .. }
                | WaitReason::Writable { .. }
                | WaitReason::Timer { .. }
                | WaitReason::Signal { .. }
        )
    );
    WaitInfo {
        reason,
        detail: detail(header),
        outside_wakers: refs_outside(header).saturating_sub(usize::from(reactor)),
        join_held_outside: header.is_join_held_outside(),
        unpolled_for: None,
    }
}

/// What is known about a `block_on` caller (it registers no reason detail: it has no own
/// waker slot).
fn block_on_info(signal: &Arc<crate::block_on::Signal>) -> WaitInfo {
    WaitInfo {
        reason: signal.wait.reason.get(),
        outside_wakers: signal.held_outside(),
        ..WaitInfo::default()
    }
}

/// A deadlock found under the lock, to deliver after it is released.
pub(crate) struct Report {
    pub(super) text: String,
    /// `block_on` callers to unpark (they will panic with `text`).
    pub(super) unpark: Vec<Arc<crate::block_on::Signal>>,
}

pub(super) fn render(counts: &Counts, stuck: Vec<Waiter>) -> String {
    let mut text = String::from(DEADLOCK_MESSAGE);
    text.push('\n');
    text.push_str(&render_waiters(counts, stuck));
    text
}

fn render_waiters(counts: &Counts, mut stuck: Vec<Waiter>) -> String {
    stuck.sort_by_key(|w| w.id);
    let mut text = String::new();
    for signal in counts.block_ons() {
        let _ = write!(
            text,
            "\nblock_on (called at {}) waits on: ",
            signal.location
        );
        let _ = write!(text, "{}", block_on_info(signal));
    }
    let total = stuck.len();
    for waiter in stuck.iter().take(LISTED) {
        let _ = write!(
            text,
            "\ntask {} (spawned at {}) waits on: ",
            waiter.id, waiter.location
        );
        let _ = write!(text, "{}", waiter.known);
    }
    if total > LISTED {
        let _ = write!(text, "\n... and {} more tasks", total - LISTED);
    }
    text
}

/// What a task's wait registration says beyond its reason (see [`Known::detail`]): for a
/// lock, where it was created, the tasks holding it and, for a semaphore, its free permits;
/// for a channel, where it was created and how many ends are alive. A `block_on` caller
/// registers nothing (no own waker), so only tasks have one.
///
/// Read under the task's list shard lock, like the wait-for graph's reads: the slot allows
/// one reader at a time.
fn detail(header: &Header) -> Option<String> {
    let slot: &WaitSlot = &header.reason;
    let WaitReason::Sync { kind, addr } = slot.get()? else {
        return None;
    };
    let record = slot.read_registration(|h| h.snapshot())?;
    describe_record(header.id().as_u64(), kind, addr, &record)
}

fn describe_record(
    waiter: u64,
    kind: SyncKind,
    addr: u64,
    record: &HoldersSnapshot,
) -> Option<String> {
    match (kind, record.of) {
        (
            SyncKind::ChannelRecv | SyncKind::ChannelSend | SyncKind::ChannelClosed,
            RecordOf::Channel {
                addr: at,
                senders,
                receivers,
            },
        ) if at == addr => Some(format!(
            "created at {}; {}, {}",
            record.created_at,
            count(senders, "sender"),
            count(receivers, "receiver")
        )),
        (
            SyncKind::MutexLock
            | SyncKind::RwLockRead
            | SyncKind::RwLockWrite
            | SyncKind::SemaphoreAcquire,
            RecordOf::Lock { permits },
        ) => {
            let mut text = format!("created at {}", record.created_at);
            if kind == SyncKind::SemaphoreAcquire {
                // While a task is queued the semaphore's word holds no permit (its
                // invariant: released permits go to the queue head), so none is free.
                let _ = write!(text, "; 0 of {permits} permits free");
            }
            let mut holders: Vec<String> = record
                .tasks
                .iter()
                .enumerate()
                .map(|(i, &id)| match id {
                    // The queue head holds what was handed to it so far.
                    id if id == waiter => format!("task {id} (itself, part of what it asked for)"),
                    id => format!("task {id}{}", hold_note(record, i)),
                })
                .collect();
            if record.unknown {
                holders.push("code outside any task".to_owned());
            }
            if !holders.is_empty() {
                let _ = write!(text, "; held by {}", holders.join(" and "));
            }
            Some(text)
        }
        _ => None,
    }
}

/// What a lock's record says of its `i`th holder's hold, as much as is known:
/// " for 1.204 s, taken at src/main.rs:9:20".
fn hold_note(record: &HoldersSnapshot, i: usize) -> String {
    let mut note = String::new();
    if let Some(Some(age)) = record.held_for.get(i) {
        let _ = write!(note, " for {}", Seconds(*age));
    }
    if let Some(Some(at)) = record.taken_at.get(i) {
        let _ = write!(note, ", taken at {at}");
    }
    note
}

/// The same, for a report that names what a task holds: "; taken at src/main.rs:9:20,
/// 1.204 s ago".
pub(super) fn taken_note(record: &HoldersSnapshot, i: usize) -> String {
    let mut note = String::new();
    if let Some(Some(at)) = record.taken_at.get(i) {
        let _ = write!(note, "; taken at {at}");
        if let Some(Some(age)) = record.held_for.get(i) {
            let _ = write!(note, ", {} ago", Seconds(*age));
        }
    }
    note
}

/// "1 sender alive", "2 senders alive", "no receiver alive".
fn count(n: usize, what: &str) -> String {
    match n {
        0 => format!("no {what} alive"),
        1 => format!("1 {what} alive"),
        n => format!("{n} {what}s alive"),
    }
}

impl Report {
    /// Acts on the report per `OnDeadlock`. Call without the scheduler lock.
    pub(crate) fn deliver(self, shared: &Shared) {
        match shared.config.on_deadlock {
            OnDeadlock::Ignore => {}
            OnDeadlock::Report => eprintln!("runnel: {}", self.text),
            OnDeadlock::Panic if self.unpark.is_empty() => eprintln!("runnel: {}", self.text),
            OnDeadlock::Panic => {
                for signal in self.unpark {
                    signal.unpark();
                }
            }
        }
    }
}

/// The stall report: for `quiet`, nothing has run and the check found only holders it
/// cannot see (`Verdict::Maybe`): no I/O waiter, no armed timer, no blocking job. Names
/// those holders and every waiting task with what is known about it.
pub(crate) fn stall_report(shared: &Shared, quiet: std::time::Duration) -> Option<String> {
    let counts = shared.idle.lock();
    // Same order as the check: handles first, then the tasks.
    let handles = handles_outside(shared, &counts);
    let mut waiting = Vec::new();
    shared.owned.for_each_while(|header, location| {
        waiting.push(Waiter::of(header, location));
        true
    });
    if waiting.is_empty() && counts.block_ons().is_empty() {
        return None;
    }
    let held: usize = waiting
        .iter()
        .filter(|w| w.known.outside_wakers > 0)
        .count()
        + counts
            .block_ons()
            .iter()
            .filter(|s| s.held_outside() > 0)
            .count();
    let joins = waiting.iter().filter(|w| w.known.join_held_outside).count();
    let mut holders = Vec::new();
    if handles > 0 {
        holders.push(format!(
            "{handles} runtime Handle(s) alive outside a block_on call (they may spawn)"
        ));
    }
    if held > 0 {
        holders.push(format!(
            "wakers of {held} task(s) held outside the runtime (a foreign thread or channel)"
        ));
    }
    if joins > 0 {
        holders.push(format!(
            "{joins} JoinHandle(s) on threads outside the runtime (they may abort)"
        ));
    }
    let mut text = format!(
        "stall report: no task has run for {:.3} s, and nothing waits on I/O, a timer or a \
         blocking job. {} task(s) wait; only holders outside the runtime could wake them, \
         so this is not provably a deadlock. Holders: {}.\n",
        quiet.as_secs_f64(),
        waiting.len(),
        if holders.is_empty() {
            "none left (the next check reports the deadlock)".to_owned()
        } else {
            holders.join("; ")
        }
    );
    text.push_str(render_waiters(&counts, waiting).trim_start_matches('\n'));
    Some(text)
}

/// A snapshot of every task of the runtime and what it waits on (`Handle::dump`).
///
/// Built so that it never holds up the workers for long: the scheduler lock is held only to
/// copy the counts and the `block_on` callers; the tasks are read one owned-list shard at a
/// time, copying a few words per task under the shard's lock (a lock or channel wait also
/// formats its registration's detail there); the text is built by `Display`, after every
/// lock is released. A shard's lock delays only a spawn or a completion of a task of that
/// shard, for at most one shard's copy (measured with `cargo bench --bench dump`: see
/// `Handle::dump`). Tasks are read one at a time without stopping the workers, so a busy
/// runtime's dump mixes instants; a stuck one's is exact.
pub(crate) fn dump(shared: &Shared) -> TaskDump {
    let (header, block_ons) = {
        let counts = shared.idle.lock();
        let block_ons: Vec<_> = counts
            .block_ons()
            .iter()
            .map(|signal| BlockOnEntry {
                called_at: signal.location,
                waiting: signal.is_parked().then(|| block_on_info(signal)),
            })
            .collect();
        (format!("{:?}", *counts), block_ons)
    };
    // Which worker polls which task: each role publishes the task it polls.
    let polled_by: Vec<u64> = shared
        .remotes
        .iter()
        .map(|remote| remote.current_task.load(Relaxed))
        .collect();
    // A little room for tasks spawned while we walk, so the vector rarely grows under a
    // shard lock.
    let mut tasks = Vec::with_capacity(shared.owned.len() + 64);
    let walk = std::time::Instant::now();
    shared.owned.for_each_while(|header, location| {
        tasks.push(entry_of(header, location, &polled_by));
        true
    });
    let walk = walk.elapsed();
    tasks.sort_unstable_by_key(|t| t.id);
    shared.wait_ages.fill(&mut tasks);
    TaskDump {
        header,
        block_ons,
        tasks,
        walk,
    }
}

/// One task of a dump, copied under its shard's lock.
fn entry_of(
    header: &Header,
    location: &'static std::panic::Location<'static>,
    polled_by: &[u64],
) -> TaskEntry {
    let id = header.id();
    // Read before the state: a poll counted here and begun after is still "running".
    let polls = header.polls();
    let state = if header.is_running() {
        TaskState::Running {
            worker: polled_by.iter().position(|&t| t == id.as_u64()),
        }
    } else if header.is_notified() {
        TaskState::Queued
    } else {
        TaskState::Waiting(wait_info(header))
    };
    TaskEntry {
        id,
        spawned_at: location,
        polls,
        state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runnel_reactor::wait::Holders;
    use std::panic::Location;

    #[test]
    fn a_record_adds_to_the_reason_only_when_it_matches_it() {
        let chan = Holders::channel(Location::caller(), 0x40usize as *const u8, 2, 1).snapshot();
        assert_eq!(
            describe_record(1, SyncKind::ChannelRecv, 0x40, &chan).as_deref(),
            Some(&*format!(
                "created at {}; 2 senders alive, 1 receiver alive",
                chan.created_at
            ))
        );
        // Another channel's reason (a later note in the same poll), or a lock's.
        assert_eq!(describe_record(1, SyncKind::ChannelRecv, 0x80, &chan), None);
        assert_eq!(describe_record(1, SyncKind::MutexLock, 0x40, &chan), None);

        let sem = Holders::with_permits(Location::caller(), 3);
        sem.set_partial(7);
        let sem = sem.snapshot();
        let text = describe_record(7, SyncKind::SemaphoreAcquire, 0x40, &sem).unwrap();
        assert!(
            text.ends_with(
                "; 0 of 3 permits free; held by task 7 (itself, part of what it asked for)"
            ),
            "{text}"
        );
        assert_eq!(describe_record(7, SyncKind::ChannelSend, 0x40, &sem), None);
    }
}
