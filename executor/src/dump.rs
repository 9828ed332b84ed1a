//! Task dumps (`Handle::dump`): what the runtime knows about each of its tasks at one
//! moment, as data for tools and as Go-style text for people.
//!
//! Everything here is a copy: building a [`TaskDump`] reads each task once under its
//! owned-list shard lock (`detector::report::dump`), and nothing in it refers back to the
//! runtime. A busy runtime's dump mixes instants (tasks are read one at a time while the
//! workers run); a stuck one's is exact.

use std::fmt;
use std::panic::Location;
use std::time::Duration;

use crate::task::Id;

pub use runnel_reactor::wait::{SyncKind, WaitReason};

/// A snapshot of a runtime's tasks and what each waits on, from
/// [`Handle::dump`](crate::Handle::dump). Its `Display` is one line per task (Go's
/// goroutine dump); [`tasks`](Self::tasks) gives the same as data.
///
/// ```
/// use runnel_executor::dump::TaskState;
///
/// let rt = runnel_executor::Runtime::new().unwrap();
/// let sleeper = rt.spawn(std::future::pending::<()>());
/// for task in rt.dump().tasks() {
///     match task.state() {
///         TaskState::Running { worker } => println!("{} runs on {worker:?}", task.id()),
///         TaskState::Queued => println!("{} is queued", task.id()),
///         TaskState::Waiting(wait) => println!(
///             "{} (spawned at {}, {} polls) waits on {wait}",
///             task.id(),
///             task.spawned_at(),
///             task.polls()
///         ),
///     }
/// }
/// assert!(rt.dump().tasks().iter().any(|t| t.id() == sleeper.id()));
/// sleeper.abort();
/// ```
#[derive(Clone, Debug)]
pub struct TaskDump {
    pub(crate) header: String,
    pub(crate) block_ons: Vec<BlockOnEntry>,
    pub(crate) tasks: Vec<TaskEntry>,
    pub(crate) walk: Duration,
}

impl TaskDump {
    /// Every task of the runtime, by id.
    pub fn tasks(&self) -> &[TaskEntry] {
        &self.tasks
    }

    /// Every thread inside `block_on` on the runtime (they are not tasks, but they wait
    /// like tasks and can be part of a deadlock).
    pub fn block_ons(&self) -> &[BlockOnEntry] {
        &self.block_ons
    }

    /// How long the dump spent reading the tasks, one owned-list shard lock at a time: an
    /// upper bound on how long it delayed any spawn or task completion (see
    /// [`Handle::dump`](crate::Handle::dump)).
    pub fn walk_time(&self) -> Duration {
        self.walk
    }
}

/// One task of a [`TaskDump`].
#[derive(Clone, Debug)]
pub struct TaskEntry {
    pub(crate) id: Id,
    pub(crate) spawned_at: &'static Location<'static>,
    pub(crate) polls: u32,
    pub(crate) state: TaskState,
}

impl TaskEntry {
    /// The task's id (the one its `JoinHandle::id` gives).
    pub fn id(&self) -> Id {
        self.id
    }

    /// Where it was spawned.
    pub fn spawned_at(&self) -> &'static Location<'static> {
        self.spawned_at
    }

    /// How many polls it has begun (wraps at 2³¹).
    pub fn polls(&self) -> u32 {
        self.polls
    }

    /// Whether it runs, is queued, or waits (and on what).
    pub fn state(&self) -> &TaskState {
        &self.state
    }
}

/// What a task was doing when the dump read it.
#[derive(Clone, Debug)]
pub enum TaskState {
    /// Being polled, on this worker (`None` if the worker had not published it yet: the
    /// poll had only just begun, or the task runs on a `block_on` thread of a
    /// current-thread runtime).
    Running {
        /// The worker's index.
        worker: Option<usize>,
    },
    /// Woken, waiting in a queue to be polled.
    Queued,
    /// Waiting to be woken.
    Waiting(WaitInfo),
}

/// What is known about a waiting task (or `block_on` caller): what it waits on and who
/// could wake it.
#[derive(Clone, Debug, Default)]
pub struct WaitInfo {
    pub(crate) reason: Option<WaitReason>,
    pub(crate) detail: Option<String>,
    pub(crate) outside_wakers: usize,
    pub(crate) join_held_outside: bool,
    pub(crate) unpolled_for: Option<Duration>,
}

impl WaitInfo {
    /// What its leaf futures said they wait on when its last poll returned `Pending`
    /// (`None`: a future that records nothing, e.g. one from another library).
    pub fn reason(&self) -> Option<&WaitReason> {
        self.reason.as_ref()
    }

    /// What the wait's registration adds: a lock's creation site, holders and how long
    /// they have held it, a semaphore's free permits, a channel's creation site and live
    /// ends.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// References to the task held outside the runtime's own holders: wakers kept by
    /// foreign code (another library's channel, a `runnel::sync` primitive, a thread),
    /// `AbortHandle`s. The one waker a socket, timer or signal wait leaves with the reactor
    /// is the runtime's own and not counted.
    pub fn outside_wakers(&self) -> usize {
        self.outside_wakers
    }

    /// Whether its `JoinHandle` is on a thread outside the runtime (which may abort it).
    pub fn join_held_outside(&self) -> bool {
        self.join_held_outside
    }

    /// A lower bound on how long it has gone without a poll, from sysmon's scans (every
    /// 250 ms while the runtime has tasks; no cost on the poll path): `None` if no scan has
    /// seen it waiting since its last poll yet.
    pub fn unpolled_for(&self) -> Option<Duration> {
        self.unpolled_for
    }
}

impl fmt::Display for WaitInfo {
    /// What it waits on and who could wake it, in the words of the deadlock reports.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(reason) = &self.reason {
            match &self.detail {
                Some(detail) => parts.push(format!("{reason} ({detail})")),
                None => parts.push(reason.to_string()),
            }
        }
        match self.outside_wakers {
            0 => {}
            1 => parts.push("a waker held outside the runtime (1 reference)".to_owned()),
            n => parts.push(format!("wakers held outside the runtime ({n} references)")),
        }
        if self.join_held_outside {
            parts.push(
                "its JoinHandle, held outside the runtime (it may abort the task)".to_owned(),
            );
        }
        if parts.is_empty() {
            f.write_str("nothing (no waker of it is held anywhere)")
        } else {
            f.write_str(&parts.join("; "))
        }
    }
}

/// A thread inside `block_on` on the runtime, in a [`TaskDump`].
#[derive(Clone, Debug)]
pub struct BlockOnEntry {
    pub(crate) called_at: &'static Location<'static>,
    pub(crate) waiting: Option<WaitInfo>,
}

impl BlockOnEntry {
    /// Where `block_on` was called.
    pub fn called_at(&self) -> &'static Location<'static> {
        self.called_at
    }

    /// What it waits on, or `None` while it polls its future or runs tasks.
    pub fn waiting(&self) -> Option<&WaitInfo> {
        self.waiting.as_ref()
    }
}

impl fmt::Display for TaskDump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "runnel task dump: {} task(s), {} block_on caller(s); {}",
            self.tasks.len(),
            self.block_ons.len(),
            self.header
        )?;
        for b in &self.block_ons {
            write!(f, "block_on (called at {}): ", b.called_at)?;
            match &b.waiting {
                Some(wait) => writeln!(f, "waits on: {wait}")?,
                None => writeln!(f, "running")?,
            }
        }
        for t in &self.tasks {
            write!(f, "task {} (spawned at {}): ", t.id, t.spawned_at)?;
            match &t.state {
                TaskState::Running { worker: Some(k) } => write!(f, "running on worker {k}")?,
                TaskState::Running { worker: None } => f.write_str("running")?,
                TaskState::Queued => f.write_str("queued")?,
                TaskState::Waiting(wait) => write!(f, "waits on: {wait}")?,
            }
            write!(f, " [{}", plural(t.polls, "poll"))?;
            if let TaskState::Waiting(WaitInfo {
                unpolled_for: Some(age),
                ..
            }) = &t.state
            {
                write!(f, ", unpolled for over {}", Seconds(*age))?;
            }
            writeln!(f, "]")?;
        }
        Ok(())
    }
}

fn plural(n: u32, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// A duration as "0.250 s", "12.0 s", "3 min 5 s".
pub(crate) struct Seconds(pub(crate) Duration);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.as_secs_f64();
        if s < 10.0 {
            write!(f, "{s:.3} s")
        } else if s < 120.0 {
            write!(f, "{s:.1} s")
        } else {
            write!(
                f,
                "{} min {} s",
                self.0.as_secs() / 60,
                self.0.as_secs() % 60
            )
        }
    }
}
