//! What a waiting task waits on.
//!
//! Leaf futures — socket readiness, timers, joins, the runtime's sync primitives — call
//! [`note`] with a [`WaitReason`] when they return `Pending`. The executor points this
//! thread's slot at the polled task's [`WaitSlot`] for exactly the duration of each poll
//! ([`enter`]), so the slot ends up holding the reason given last before the task returned
//! `Pending`: what it waits on now. A future that waits on several things at once (a
//! `select!`) shows the last one it polled. The deadlock and stall reports and task dumps
//! read the slots.
//!
//! Cost: one thread-local read and one relaxed store per `Pending`, two thread-local
//! writes per poll; the slot is one `AtomicU64` (kind in the top byte, payload below).
//! Outside a runnel poll (another executor, no runtime) `note` does nothing.

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// What a task waits on, as its leaf future said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitReason {
    /// Read readiness of a file descriptor (a socket's `read`, `accept`, `recv`).
    Readable {
        /// The descriptor.
        fd: i32,
    },
    /// Write readiness of a file descriptor (`write`, `connect`, `send`).
    Writable {
        /// The descriptor.
        fd: i32,
    },
    /// A timer (`sleep`, `timeout`, `interval`), due at `deadline`.
    Timer {
        /// When it fires.
        deadline: Instant,
    },
    /// The completion of another task (awaiting its `JoinHandle`).
    Join {
        /// The task's id.
        task: u64,
    },
    /// The completion of any task of a `JoinSet`.
    JoinSet {
        /// How many tasks the set holds.
        tasks: u64,
    },
    /// A synchronisation primitive (a lock, a semaphore, a channel).
    Sync {
        /// What kind of wait.
        kind: SyncKind,
        /// The primitive's address (low 48 bits): equal for tasks waiting on the same one.
        addr: u64,
    },
}

/// The kinds of [`WaitReason::Sync`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
#[non_exhaustive]
pub enum SyncKind {
    /// `Mutex::lock`.
    MutexLock = 1,
    /// `RwLock::read`.
    RwLockRead,
    /// `RwLock::write`.
    RwLockWrite,
    /// `Semaphore::acquire`.
    SemaphoreAcquire,
    /// `Notify::notified`.
    Notified,
    /// `Barrier::wait`.
    BarrierWait,
    /// A channel's `recv`.
    ChannelRecv,
    /// A channel's `send` (a full bounded channel).
    ChannelSend,
    /// `WaitGroup::wait` (the group's counter reaching zero).
    WaitGroup,
}

impl SyncKind {
    const ALL: [SyncKind; 9] = [
        SyncKind::MutexLock,
        SyncKind::RwLockRead,
        SyncKind::RwLockWrite,
        SyncKind::SemaphoreAcquire,
        SyncKind::Notified,
        SyncKind::BarrierWait,
        SyncKind::ChannelRecv,
        SyncKind::ChannelSend,
        SyncKind::WaitGroup,
    ];

    fn describe(self) -> &'static str {
        match self {
            SyncKind::MutexLock => "lock of mutex",
            SyncKind::RwLockRead => "read lock of rwlock",
            SyncKind::RwLockWrite => "write lock of rwlock",
            SyncKind::SemaphoreAcquire => "permit of semaphore",
            SyncKind::Notified => "notification of notify",
            SyncKind::BarrierWait => "barrier",
            SyncKind::ChannelRecv => "recv on channel",
            SyncKind::ChannelSend => "send on full channel",
            SyncKind::WaitGroup => "completion of wait group",
        }
    }
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WaitReason::Readable { fd } => write!(f, "read readiness of fd {fd}"),
            WaitReason::Writable { fd } => write!(f, "write readiness of fd {fd}"),
            WaitReason::Timer { deadline } => {
                let now = Instant::now();
                if deadline > now {
                    write!(
                        f,
                        "a timer (fires in {:.3} s)",
                        (deadline - now).as_secs_f64()
                    )
                } else {
                    write!(f, "a timer (due)")
                }
            }
            WaitReason::Join { task } => write!(f, "join of task {task}"),
            WaitReason::JoinSet { tasks } => write!(f, "the next of {tasks} task(s) of a JoinSet"),
            WaitReason::Sync { kind, addr } => write!(f, "{} {addr:#x}", kind.describe()),
        }
    }
}

const KIND_SHIFT: u32 = 56;
const PAYLOAD: u64 = (1 << KIND_SHIFT) - 1;
const NONE: u64 = 0;
const READABLE: u64 = 1;
const WRITABLE: u64 = 2;
const TIMER: u64 = 3;
const JOIN: u64 = 4;
const JOIN_SET: u64 = 5;
/// `SYNC + SyncKind as u64`.
const SYNC: u64 = 16;

/// Timer deadlines are stored in ms since this process-wide instant.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl WaitReason {
    fn encode(self) -> u64 {
        let (kind, payload) = match self {
            // Descriptors are non-negative; the cast keeps the bits.
            WaitReason::Readable { fd } => (READABLE, u64::from(fd as u32)),
            WaitReason::Writable { fd } => (WRITABLE, u64::from(fd as u32)),
            WaitReason::Timer { deadline } => {
                let ms = deadline.saturating_duration_since(epoch()).as_millis();
                (TIMER, u64::try_from(ms).unwrap_or(PAYLOAD).min(PAYLOAD))
            }
            WaitReason::Join { task } => (JOIN, task & PAYLOAD),
            WaitReason::JoinSet { tasks } => (JOIN_SET, tasks & PAYLOAD),
            WaitReason::Sync { kind, addr } => (SYNC + kind as u64, addr & 0xffff_ffff_ffff),
        };
        (kind << KIND_SHIFT) | payload
    }

    fn decode(word: u64) -> Option<WaitReason> {
        let payload = word & PAYLOAD;
        Some(match word >> KIND_SHIFT {
            NONE => return None,
            READABLE => WaitReason::Readable { fd: payload as i32 },
            WRITABLE => WaitReason::Writable { fd: payload as i32 },
            TIMER => WaitReason::Timer {
                deadline: epoch() + Duration::from_millis(payload),
            },
            JOIN => WaitReason::Join { task: payload },
            JOIN_SET => WaitReason::JoinSet { tasks: payload },
            k => {
                let kind = *SyncKind::ALL.iter().find(|s| SYNC + **s as u64 == k)?;
                WaitReason::Sync {
                    kind,
                    addr: payload,
                }
            }
        })
    }
}

/// Where a task's last wait reason is kept (one per task, one per `block_on` caller).
#[derive(Default)]
pub struct WaitSlot(AtomicU64);

impl WaitSlot {
    /// The reason recorded last, if any. Meaningful while the task is not running.
    pub fn get(&self) -> Option<WaitReason> {
        WaitReason::decode(self.0.load(Relaxed))
    }

    /// Records `reason` (what [`note`] does for the current task).
    pub fn set(&self, reason: WaitReason) {
        // Relaxed: a diagnostic read by reports and dumps, ordering nothing.
        self.0.store(reason.encode(), Relaxed);
    }

    /// Forgets the reason (a new poll starts with none).
    fn clear(&self) {
        self.0.store(NONE, Relaxed);
    }
}

impl fmt::Debug for WaitSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

thread_local! {
    static CURRENT: Cell<*const WaitSlot> = const { Cell::new(std::ptr::null()) };
}

/// Makes `slot` the current task's until the guard drops (the executor calls this around
/// each poll). The slot is cleared first: a poll that returns `Pending` without a leaf
/// noting anything waits on something the runtime cannot name.
pub fn enter(slot: &WaitSlot) -> WaitGuard<'_> {
    slot.clear();
    let previous = CURRENT.with(|c| c.replace(slot));
    WaitGuard {
        previous,
        _slot: std::marker::PhantomData,
    }
}

/// Restores the previous current slot when dropped. See [`enter`].
#[must_use = "the slot is current only while the guard lives"]
pub struct WaitGuard<'a> {
    previous: *const WaitSlot,
    _slot: std::marker::PhantomData<&'a WaitSlot>,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}

/// Records what the task being polled waits on (call it when returning `Pending`). Does
/// nothing outside a runnel poll.
pub fn note(reason: WaitReason) {
    CURRENT.with(|c| {
        let slot = c.get();
        // SAFETY: a non-null pointer was set by `enter` from a `&WaitSlot` whose guard
        // (borrowing it) is still alive on this thread: guards restore the previous value
        // when dropped, in LIFO order, so the pointer is valid until then.
        if let Some(slot) = unsafe { slot.as_ref() } {
            slot.set(reason);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_round_trips() {
        let deadline = epoch() + Duration::from_millis(1234);
        let reasons = [
            WaitReason::Readable { fd: 7 },
            WaitReason::Writable { fd: 0 },
            WaitReason::Timer { deadline },
            WaitReason::Join { task: 42 },
            WaitReason::JoinSet { tasks: 3 },
            WaitReason::Sync {
                kind: SyncKind::MutexLock,
                addr: 0x7f00_1234_5678,
            },
            WaitReason::Sync {
                kind: SyncKind::ChannelSend,
                addr: 8,
            },
            WaitReason::Sync {
                kind: SyncKind::WaitGroup,
                addr: 0x5555_0000_1000,
            },
        ];
        for reason in reasons {
            let slot = WaitSlot::default();
            slot.set(reason);
            assert_eq!(slot.get(), Some(reason));
        }
    }

    #[test]
    fn every_sync_kind_round_trips_and_is_named() {
        for kind in SyncKind::ALL {
            let reason = WaitReason::Sync { kind, addr: 0x10 };
            let slot = WaitSlot::default();
            slot.set(reason);
            assert_eq!(slot.get(), Some(reason));
            assert!(reason.to_string().ends_with(" 0x10"), "{reason}");
        }
        let wait_group = WaitReason::Sync {
            kind: SyncKind::WaitGroup,
            addr: 0x10,
        };
        assert_eq!(wait_group.to_string(), "completion of wait group 0x10");
    }

    #[test]
    fn note_fills_the_current_slot_only_inside_enter() {
        note(WaitReason::Join { task: 1 }); // no slot: nothing happens
        let outer = WaitSlot::default();
        let inner = WaitSlot::default();
        {
            let _outer = enter(&outer);
            note(WaitReason::Readable { fd: 3 });
            {
                let _inner = enter(&inner);
                note(WaitReason::Join { task: 9 });
            }
            note(WaitReason::Writable { fd: 4 });
        }
        note(WaitReason::Readable { fd: 5 });
        assert_eq!(outer.get(), Some(WaitReason::Writable { fd: 4 }));
        assert_eq!(inner.get(), Some(WaitReason::Join { task: 9 }));
    }

    #[test]
    fn enter_clears_the_previous_reason() {
        let slot = WaitSlot::default();
        slot.set(WaitReason::Join { task: 2 });
        drop(enter(&slot));
        assert_eq!(slot.get(), None);
    }
}
