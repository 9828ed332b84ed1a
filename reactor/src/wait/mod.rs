//! What a waiting task waits on.
//!
//! Leaf futures — socket readiness, timers, joins, the runtime's sync primitives — call
//! [`note`] with a [`WaitReason`] when they return `Pending`. The executor points this
//! thread's slot at the polled task's [`WaitSlot`] for exactly the duration of each poll
//! ([`polling`], [`polling_task`]), so the slot ends up holding the reason given last before
//! the task returned `Pending`: what it waits on now. A future that waits on several
//! things at once (a `select!`) shows the last one it polled. The deadlock and stall
//! reports and task dumps read the slots.
//!
//! The slot also keeps what the wait-for graph (the executor's `detector/graph.rs`) needs
//! beyond the reason (the executor counts a task's polls itself, in its state word): while
//! the task is queued on a primitive of `runnel-sync` with its own waker, a *registration*
//! of one of two kinds:
//! - a lock's (`Mutex`, `RwLock`, `Semaphore`): an `Arc` of the lock's [`Holders`], so the
//!   detector can read who holds it without touching the lock itself (which may be freed
//!   at any time) — [`register_wait`], [`unregister_wait`]; an mpsc channel registers a
//!   [`Holders`] made by [`Holders::channel`] the same way, for dumps only (where it was
//!   created, how many senders are alive): the graph never follows a channel's record;
//! - an *address* (`Notify`, and a `WaitGroup` no token or other handle shares): where the
//!   primitive the task waits on lives, which only code that can reach that address can
//!   wake; the detector never dereferences it, only compares it with the task's own
//!   allocation — [`register_wait_at`], [`unregister_wait_at`].
//!
//! Registrations are made by the waiting future only when it is polled with the polled
//! task's own waker (the one the primitive stored), and end at the task's next poll, or
//! when the future completes or is dropped during the same poll. The one reader (the
//! detector) borrows a lock's `Arc` by tagging the pointer; a clear that finds the tag
//! leaves the `Arc` to the reader to drop (see [`WaitSlot::read_registration`]), so neither
//! side waits for the other. An address registration owns nothing (its tag bit says so).
//!
//! The executor points this thread at the poll in progress with one thread-local word,
//! and puts back the word it found when the poll ends or unwinds. For a runnel task's poll
//! ([`polling_owned`]) the word is the task's slot, tagged: the task's id and own waker,
//! needed only by the rare readers (lock holders, own-waker checks), are found through a
//! [`SlotOwner`] the executor keeps in the word just before the slot. For [`polling`] and
//! [`polling_task`] it points at a record (the slot, the task's id and its own waker) on
//! their stack frame. A poll nested in another (a `block_on` inside a task's poll, and the
//! tasks of that `block_on`'s runtime inside it) thus links to what the poll it
//! interrupted published, and every outer poll gets its slot, task and waker back at any
//! depth. Outside a runnel poll (another executor, no runtime) `note` and `register_wait`
//! do nothing.
//!
//! Cost, per task poll, all inlined into the executor's poll: a store clearing the reason,
//! a load and test of the registration (one to end goes out of line), one thread-local
//! load and store publishing the tagged slot and one store when the poll ends — about 9
//! instructions, with no branch on nesting, no atomic read-modify-write, no allocation, no
//! lock and no lazily initialised thread-local. Per `Pending`: a thread-local load, a test
//! of the tag and a relaxed store (`note`). The slot is two words (it sits in every task's
//! 64-byte header; the executor counts polls in the task's state word, where the CAS that
//! starts a poll increments it). Against a build with `--cfg runnel_no_wait_reasons`
//! (which compiles all of it out, for measuring only) that is +2.3 % instructions on a
//! current-thread `yield_many` (the cheapest poll runnel has, ~384 instructions a yield),
//! +1.8 % on spawning and joining tasks, +1.1 % on a TCP echo round trip (BENCHMARKS.md,
//! "Wait reasons: the per-poll cost").

pub(crate) mod clock;
mod holders;

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{
    AtomicPtr, AtomicU64, Ordering::AcqRel, Ordering::Acquire, Ordering::Relaxed,
};
use std::sync::{Arc, OnceLock};
use std::task::Waker;
use std::time::{Duration, Instant};

pub use holders::{HoldSlot, Holders, HoldersSnapshot, RecordOf, HOLDER_SLOTS, OUTSIDE};

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
    /// A delivery of a signal (`Signal::recv`, `ctrl_c`).
    Signal {
        /// The signal number.
        signum: i32,
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
            WaitReason::Readable { fd } => write!(f, "read readiness of fd {fd}{}", Socket(fd)),
            WaitReason::Writable { fd } => write!(f, "write readiness of fd {fd}{}", Socket(fd)),
            WaitReason::Signal { signum } => match signal_name(signum) {
                Some(name) => write!(f, "delivery of signal {signum} ({name})"),
                None => write!(f, "delivery of signal {signum}"),
            },
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

/// What a descriptor a task waits on is, asked of the kernel when a report or dump is
/// written (never on the wait path): ` (TCP 127.0.0.1:8080 → 127.0.0.1:51234)`,
/// ` (TCP listener on 0.0.0.0:80)`, ` (UDP 0.0.0.0:5353)`, ` (Unix stream /tmp/s.sock)`;
/// nothing for what is not a socket. The descriptor was open when the task noted it; if
/// it was closed (or its number reused) since, this shows nothing (or the new socket).
struct Socket(i32);

impl fmt::Display for Socket {
    #[cfg(unix)]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fd = self.0;
        let Some(ty) = sockopt(fd, libc::SO_TYPE) else {
            return Ok(()); // not a socket (a pipe, a closed descriptor)
        };
        let listening = sockopt(fd, libc::SO_ACCEPTCONN) == Some(1);
        let Some(local) = sockaddr(fd, libc::getsockname) else {
            return Ok(());
        };
        let (family, peer) = (local.0, sockaddr(fd, libc::getpeername));
        let kind = match (family, ty) {
            (libc::AF_UNIX, libc::SOCK_STREAM) => "Unix stream",
            (libc::AF_UNIX, _) => "Unix datagram",
            (_, libc::SOCK_STREAM) => "TCP",
            (_, libc::SOCK_DGRAM) => "UDP",
            _ => "socket",
        };
        let local = local.1;
        match peer {
            _ if listening => write!(f, " ({kind} listener on {local})"),
            Some((_, peer)) => write!(f, " ({kind} {local} \u{2192} {peer})"),
            None => write!(f, " ({kind} {local})"),
        }
    }

    #[cfg(not(unix))]
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        Ok(())
    }
}

/// An integer socket option of `fd`, if it is a socket.
#[cfg(unix)]
fn sockopt(fd: i32, name: libc::c_int) -> Option<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for writes of the sizes passed; a descriptor
    // that is closed or not a socket only makes the call fail.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(value)
}

/// The address family and printable address `get` (`getsockname` or `getpeername`)
/// gives for `fd`.
#[cfg(unix)]
fn sockaddr(
    fd: i32,
    get: unsafe extern "C" fn(
        libc::c_int,
        *mut libc::sockaddr,
        *mut libc::socklen_t,
    ) -> libc::c_int,
) -> Option<(libc::c_int, String)> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    // SAFETY: an all-zero `sockaddr_storage` is a valid value (plain integers and arrays).
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `storage` is valid for writes of `len` bytes, the size the kernel may fill;
    // a bad descriptor only makes the call fail.
    let rc = unsafe {
        get(
            fd,
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return None;
    }
    let family = libc::c_int::from(storage.ss_family);
    let text = match family {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a `sockaddr_in` (family AF_INET), which fits in and
            // is no more aligned than `sockaddr_storage`.
            let a = unsafe {
                &*(&storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            SocketAddrV4::new(ip, u16::from_be(a.sin_port)).to_string()
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for AF_INET6 and `sockaddr_in6`.
            let a = unsafe {
                &*(&storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )
            .to_string()
        }
        libc::AF_UNIX => {
            // SAFETY: as above, for AF_UNIX and `sockaddr_un`.
            let a = unsafe {
                &*(&storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_un>()
            };
            let offset = std::mem::size_of::<libc::sa_family_t>();
            let path_len = (len as usize).saturating_sub(offset).min(a.sun_path.len());
            let path: Vec<u8> = a.sun_path[..path_len]
                .iter()
                .map(|&c| c as u8)
                .take_while(|&c| c != 0)
                .collect();
            if path.is_empty() {
                "(unnamed)".to_string()
            } else {
                String::from_utf8_lossy(&path).into_owned()
            }
        }
        _ => return Some((family, "?".to_string())),
    };
    Some((family, text))
}

const KIND_SHIFT: u32 = 56;
const PAYLOAD: u64 = (1 << KIND_SHIFT) - 1;
const NONE: u64 = 0;
const READABLE: u64 = 1;
const WRITABLE: u64 = 2;
const TIMER: u64 = 3;
const JOIN: u64 = 4;
const JOIN_SET: u64 = 5;
const SIGNAL: u64 = 6;
/// `SYNC + SyncKind as u64`.
const SYNC: u64 = 16;

/// The name of the signals that have a `SignalKind` constructor, for reports.
fn signal_name(signum: i32) -> Option<&'static str> {
    #[cfg(unix)]
    {
        let names = [
            (libc::SIGALRM, "SIGALRM"),
            (libc::SIGCHLD, "SIGCHLD"),
            (libc::SIGHUP, "SIGHUP"),
            (libc::SIGINT, "SIGINT"),
            (libc::SIGIO, "SIGIO"),
            (libc::SIGPIPE, "SIGPIPE"),
            (libc::SIGQUIT, "SIGQUIT"),
            (libc::SIGTERM, "SIGTERM"),
            (libc::SIGUSR1, "SIGUSR1"),
            (libc::SIGUSR2, "SIGUSR2"),
            (libc::SIGWINCH, "SIGWINCH"),
        ];
        names
            .iter()
            .find(|(n, _)| *n == signum)
            .map(|(_, name)| *name)
    }
    #[cfg(not(unix))]
    {
        let _ = signum;
        None
    }
}

/// Timer deadlines are stored in ms since this process-wide instant.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl WaitReason {
    #[inline]
    fn encode(self) -> u64 {
        let (kind, payload) = match self {
            // Descriptors are non-negative; the cast keeps the bits.
            WaitReason::Readable { fd } => (READABLE, u64::from(fd as u32)),
            WaitReason::Writable { fd } => (WRITABLE, u64::from(fd as u32)),
            WaitReason::Signal { signum } => (SIGNAL, u64::from(signum as u32)),
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
            SIGNAL => WaitReason::Signal {
                signum: payload as i32,
            },
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

/// Where a task's last wait reason is kept (one per task, one per `block_on` caller),
/// with its registration (see the module docs). Two words: no poll count, which the
/// executor keeps in the task's state word, where counting a poll costs nothing.
#[derive(Default)]
pub struct WaitSlot {
    word: AtomicU64,
    /// An `Arc<Holders>` from `Arc::into_raw` (bit 0 set while the detector reads
    /// through it), or an address with bit 1 set (an address registration: owns
    /// nothing), or null.
    on: AtomicPtr<Holders>,
}

/// The tag bits of `WaitSlot::on` (an `Arc`'s data, and every primitive registered by
/// address, are at least word-aligned).
const READING: usize = 1;
const ADDRESS: usize = 2;

impl WaitSlot {
    /// The reason recorded last, if any. Meaningful while the task is not running.
    pub fn get(&self) -> Option<WaitReason> {
        WaitReason::decode(self.word.load(Relaxed))
    }

    /// Records `reason` (what [`note`] does for the current task).
    #[inline]
    pub fn set(&self, reason: WaitReason) {
        // Relaxed: a diagnostic read by reports and dumps, ordering nothing.
        self.word.store(reason.encode(), Relaxed);
    }

    /// Calls `read` with the holders of the lock the owner was queued on when its last
    /// poll ended (or of the channel it waited on), if any; `None` if there is none, or
    /// another reader is at it. Meant for one reader at a time: two could restore each
    /// other's tag (the executor's detector and dumps read only under the task's list
    /// shard lock, which serialises them). Never blocks, and never blocks the owner.
    pub fn read_registration<R>(&self, read: impl FnOnce(&Holders) -> R) -> Option<R> {
        let ptr = self.on.load(Acquire);
        if ptr.is_null() || ptr as usize & (READING | ADDRESS) != 0 {
            return None;
        }
        let tagged = (ptr as usize | READING) as *mut Holders;
        // Tagging transfers nothing yet: the owner's clear will see the tag and leave the
        // `Arc` to us.
        self.on
            .compare_exchange(ptr, tagged, AcqRel, Acquire)
            .ok()?;
        // SAFETY: `ptr` came from `Arc::into_raw` (`register_wait`) and its reference is
        // still owned by this slot: the owner frees it only if it clears an untagged
        // pointer, and we tagged it first; if it clears meanwhile, we free it below.
        let result = read(unsafe { &*ptr });
        if self
            .on
            .compare_exchange(tagged, ptr, AcqRel, Acquire)
            .is_err()
        {
            // The owner cleared (or replaced) the registration while we read: the
            // reference is ours to drop.
            // SAFETY: as above; nobody else will drop this reference.
            drop(unsafe { Arc::from_raw(ptr.cast_const()) });
        }
        Some(result)
    }

    /// Where the primitive the owner was queued on lives, if its last poll ended with an
    /// address registration ([`register_wait_at`]). Only compared, never dereferenced:
    /// the primitive may be gone by the time the caller looks.
    pub fn registered_at(&self) -> Option<usize> {
        let word = self.on.load(Acquire) as usize;
        (word & ADDRESS != 0).then_some(word & !(READING | ADDRESS))
    }

    /// Replaces the registration (null to clear). Only the owner's poll (or the slot's
    /// drop) calls this.
    fn replace_registration(&self, new: *mut Holders) {
        let old = self.on.swap(new, AcqRel);
        // An address registration owns nothing; a tagged `Arc` is the reader's to drop.
        if !old.is_null() && old as usize & (READING | ADDRESS) == 0 {
            // SAFETY: an untagged pointer is a reference this slot owns (from
            // `Arc::into_raw` in `register_wait`); the swap took it out, so we drop it once.
            drop(unsafe { Arc::from_raw(old.cast_const()) });
        }
        // Tagged: the reader's restoring CAS fails and it drops the reference.
    }
}

impl Drop for WaitSlot {
    fn drop(&mut self) {
        // No reader can be active: the slot's owner is being freed, which the executor
        // does only after the task left its task list (the detector reads under that
        // list's lock). `&mut` says so too, so a plain read replaces the swap (a `lock`ed
        // instruction on every task's free) when there is nothing to end.
        if !self.on.get_mut().is_null() {
            self.replace_registration(std::ptr::null_mut());
        }
    }
}

impl fmt::Debug for WaitSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

/// The poll in progress on this thread, kept on the stack frame of [`polling`] or
/// [`polling_task`] for exactly the duration of the poll. The thread-local points at it:
/// a poll publishes itself with one thread-local store, and puts back whatever the
/// thread-local held before (the record of the poll it is nested in, or null) with one
/// more when it ends. Nested polls therefore form a linked chain through the stack frames
/// of the polls in progress, and any depth of nesting gives every outer poll back its
/// slot, task and waker.
struct Polled {
    slot: *const WaitSlot,
    /// The polled task's id; 0 for a `block_on` caller.
    task: u64,
    /// The polled task's own waker, to tell it from any other; null for a `block_on`
    /// caller. Borrowed from the caller of [`polling_task`] for the whole poll.
    waker: *const Waker,
}

thread_local! {
    // `const`-initialised and without `Drop`: an access is an `fs`-relative address, with
    // no lazy initialisation, no destructor registration and no "destroyed" state to test.
    // Untagged: a `Polled`. Tagged with `OWNED`: the slot of a task whose identity the
    // word before the slot gives (`polling_owned`).
    static CURRENT: Cell<*const ()> = const { Cell::new(std::ptr::null()) };
}

/// The tag of a `CURRENT` that is a slot published by [`polling_owned`].
const OWNED: usize = 1;

/// How to find the id and own waker of the task a slot belongs to, for an executor that
/// keeps, in the word just before each task's [`WaitSlot`], a pointer to one of these
/// (or to a `#[repr(C)]` struct that starts with one): a poll then publishes the slot
/// alone ([`polling_owned`]), and the rare readers that need the task (lock holders,
/// own-waker checks) ask through it.
#[repr(C)]
pub struct SlotOwner {
    /// The id of the task whose slot is at `slot`.
    pub task: unsafe fn(slot: *const WaitSlot) -> u64,
    /// Whether `waker` is the own waker of the task whose slot is at `slot`.
    pub is_own_waker: unsafe fn(slot: *const WaitSlot, waker: &Waker) -> bool,
}

/// As [`polling_task`], for a task whose id and own waker its slot gives.
///
/// # Safety
/// `slot` is valid for reads for the whole call, with a provenance that also covers the
/// word before it, which holds a `&'static SlotOwner` (see [`SlotOwner`]) whose functions
/// accept `slot` for the whole call.
#[inline]
pub unsafe fn polling_owned<R>(slot: *const WaitSlot, poll: impl FnOnce() -> R) -> R {
    #[cfg(runnel_no_wait_reasons)]
    if true {
        let _ = slot;
        return poll();
    }
    // SAFETY: the caller guarantees `slot` valid for the whole call.
    let s = unsafe { &*slot };
    s.word.store(NONE, Relaxed);
    if !s.on.load(Relaxed).is_null() {
        end_registration(s);
    }
    // A slot is 8-byte aligned, so its low bit is free; the byte offset keeps the
    // pointer's provenance (the readers go back through it to the owner word).
    let tagged = slot.cast::<u8>().wrapping_add(OWNED).cast::<()>();
    let _restore = Restore(CURRENT.with(|c| c.replace(tagged)));
    poll()
}

/// Runs `poll` with `slot` as the current one (`block_on` calls this around each poll of
/// its future). The slot is cleared first: a poll that returns `Pending` without a leaf
/// noting anything waits on something the runtime cannot name. The previous current slot
/// comes back when `poll` returns or unwinds.
#[inline]
pub fn polling<R>(slot: &WaitSlot, poll: impl FnOnce() -> R) -> R {
    polling_with(slot, 0, std::ptr::null(), poll)
}

/// As [`polling`], for a poll of runnel task `task` whose own waker is `waker`: locks taken
/// during the poll name the task as their holder ([`current_task`]), and lock waits
/// register in the slot.
#[inline]
pub fn polling_task<R>(slot: &WaitSlot, task: u64, waker: &Waker, poll: impl FnOnce() -> R) -> R {
    polling_with(slot, task, waker, poll)
}

// Only the closure forms are public: the thread-local keeps a raw pointer to the record on
// this frame until the restoring guard drops, so the record must not outlive the scope
// that publishes it, and scopes must end in LIFO order. A closure guarantees both, on
// every exit including an unwind.
#[inline(always)]
fn polling_with<R>(slot: &WaitSlot, task: u64, waker: *const Waker, poll: impl FnOnce() -> R) -> R {
    // `--cfg runnel_no_wait_reasons` exists only to measure what this module costs
    // (BENCHMARKS.md, "Wait reasons: the per-poll cost"): it turns every poll's
    // bookkeeping and every `note` into nothing, which breaks the dumps, the reports and
    // the wait-for graph. Never build a runtime for use with it.
    #[cfg(runnel_no_wait_reasons)]
    if true {
        let _ = (slot, task, waker);
        return poll();
    }
    // A poll begins: forget the reason (a new poll starts with none). One writer (the
    // thread polling the owner): a plain store. (The executor counts the poll in the
    // task's state word.)
    slot.word.store(NONE, Relaxed);
    // The last poll left a registration: it ends now (rare: the task was queued on a
    // lock or an address-registered primitive).
    if !slot.on.load(Relaxed).is_null() {
        end_registration(slot);
    }
    let polled = Polled { slot, task, waker };
    // Declared after `polled`, so dropped (and the thread-local restored) before it.
    let published = (&polled as *const Polled).cast::<()>();
    let _restore = Restore(CURRENT.with(|c| c.replace(published)));
    poll()
}

/// The rare part of [`polling_with`], out of line.
#[cold]
#[inline(never)]
fn end_registration(slot: &WaitSlot) {
    slot.replace_registration(std::ptr::null_mut());
}

/// Puts back, when dropped, the record the thread-local held before this poll began.
struct Restore(*const ());

impl Drop for Restore {
    #[inline]
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// The poll in progress on this thread.
enum Now<'a> {
    Record(&'a Polled),
    /// A slot published by `polling_owned`, untagged.
    Owned(*const WaitSlot),
}

impl Now<'_> {
    #[inline(always)]
    fn slot(&self) -> &WaitSlot {
        match *self {
            // SAFETY: `polled.slot` came from the `&WaitSlot` that `polling_with` borrows
            // for the whole poll, which is still in progress (see `with_current`).
            Now::Record(polled) => unsafe { &*polled.slot },
            // SAFETY: `polling_owned`'s caller keeps it valid for the poll, still in
            // progress (see `with_current`).
            Now::Owned(slot) => unsafe { &*slot },
        }
    }

    fn owner(slot: *const WaitSlot) -> &'static SlotOwner {
        // SAFETY: `polling_owned`'s caller guarantees the word before the slot holds a
        // `&'static SlotOwner`, readable through the slot pointer's provenance.
        unsafe { *slot.cast::<&'static SlotOwner>().sub(1) }
    }

    fn task(&self) -> u64 {
        match *self {
            Now::Record(polled) => polled.task,
            // SAFETY: the owner accepts the slot for the poll (`polling_owned`).
            Now::Owned(slot) => unsafe { (Self::owner(slot).task)(slot) },
        }
    }

    fn is_own_waker(&self, waker: &Waker) -> bool {
        match *self {
            Now::Record(polled) => {
                // SAFETY: a non-null `polled.waker` came from the `&Waker` that
                // `polling_task` borrows for the whole poll, still in progress.
                let own = unsafe { polled.waker.as_ref() };
                polled.task != 0
                    && own.is_some_and(|own| {
                        own.data() == waker.data() && own.vtable() == waker.vtable()
                    })
            }
            // SAFETY: as in `task`.
            Now::Owned(slot) => unsafe { (Self::owner(slot).is_own_waker)(slot, waker) },
        }
    }
}

/// Runs `f` with the poll in progress on this thread, if there is one.
#[inline(always)]
fn with_current<R>(f: impl FnOnce(Now<'_>) -> R) -> Option<R> {
    let current = CURRENT.with(|c| c.get());
    if current.is_null() {
        return None;
    }
    if current as usize & OWNED != 0 {
        return Some(f(Now::Owned(
            current.cast::<u8>().wrapping_sub(OWNED).cast::<WaitSlot>(),
        )));
    }
    // SAFETY: an untagged non-null pointer was published by `polling_with` from a record
    // on the frame of a poll still in progress on this thread: its `Restore` guard puts
    // back the previous pointer before the record goes out of scope (on return and on
    // unwind), and guards drop in LIFO order, so the pointer stays valid until then; `f`
    // cannot end the poll, and nothing writes the record after it is published.
    Some(f(Now::Record(unsafe { &*current.cast::<Polled>() })))
}

/// Runs `f` with the slot of the poll in progress on this thread, if there is one.
#[inline(always)]
fn with_slot<R>(f: impl FnOnce(&WaitSlot) -> R) -> Option<R> {
    with_current(|now| f(now.slot()))
}

/// Whether `waker` is the own waker of the runnel task whose poll is in progress (always
/// false during a `block_on` poll or outside any poll).
#[inline]
fn is_own_waker(waker: &Waker) -> bool {
    with_current(|now| now.is_own_waker(waker)).unwrap_or(false)
}

/// Records what the task being polled waits on (call it when returning `Pending`). Does
/// nothing outside a runnel poll.
#[inline]
pub fn note(reason: WaitReason) {
    #[cfg(runnel_no_wait_reasons)]
    if true {
        let _ = reason;
        return;
    }
    with_slot(|slot| slot.set(reason));
}

/// The id of the runnel task being polled on this thread; `None` outside a task's poll
/// (a `block_on` future, another executor, a plain thread).
#[inline]
pub fn current_task() -> Option<u64> {
    with_current(|now| now.task()).filter(|&task| task != 0)
}

/// Registers, for the task being polled, that it is queued on the lock whose holders are
/// `holders`, if `waker` is that task's own waker (the one the lock stored): the wait-for
/// graph may then follow the edge. Call it when the acquire future returns `Pending`.
pub fn register_wait(holders: &Arc<Holders>, waker: &Waker) {
    if !is_own_waker(waker) {
        return;
    }
    with_slot(|slot| {
        let ptr = Arc::into_raw(holders.clone()).cast_mut();
        slot.replace_registration(ptr);
    });
}

/// Ends the current task's registration on `holders`, if it has one (the acquire future
/// completed or was dropped during the poll that registered it).
pub fn unregister_wait(holders: &Arc<Holders>) {
    with_slot(|slot| {
        let on = slot.on.load(Relaxed) as usize & !READING;
        if on == Arc::as_ptr(holders) as usize {
            slot.replace_registration(std::ptr::null_mut());
        }
    });
}

/// Registers, for the task being polled, that it waits on the primitive at `at` — one
/// whose waker list now holds `waker` — if `waker` is that task's own waker. The wait-for
/// graph may then conclude that only code able to reach `at` can wake the task (see the
/// module docs). A wait polled with another waker (a combinator's, another executor's)
/// ends a registration of the same address instead. Call it when the waiting future
/// returns `Pending`; `at` must be at least 4-byte aligned (anything else is ignored).
pub fn register_wait_at<T>(at: *const T, waker: &Waker) {
    let at = at as usize;
    if at & (READING | ADDRESS) != 0 || at == 0 {
        return;
    }
    let own = is_own_waker(waker);
    with_slot(|slot| {
        if own {
            slot.replace_registration((at | ADDRESS) as *mut Holders);
        } else if slot.on.load(Relaxed) as usize == at | ADDRESS {
            slot.replace_registration(std::ptr::null_mut());
        }
    });
}

/// Ends the current task's address registration of `at`, if it has one (the waiting
/// future completed or was dropped during the poll that registered it).
pub fn unregister_wait_at<T>(at: *const T) {
    with_slot(|slot| {
        if slot.on.load(Relaxed) as usize == at as usize | ADDRESS {
            slot.replace_registration(std::ptr::null_mut());
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
            WaitReason::Signal { signum: 10 },
            WaitReason::Signal { signum: 64 },
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
        ];
        for reason in reasons {
            let slot = WaitSlot::default();
            slot.set(reason);
            assert_eq!(slot.get(), Some(reason));
        }
        #[cfg(unix)]
        assert_eq!(
            WaitReason::Signal {
                signum: libc::SIGTERM
            }
            .to_string(),
            format!("delivery of signal {} (SIGTERM)", libc::SIGTERM)
        );
        assert_eq!(
            WaitReason::Signal { signum: 64 }.to_string(),
            "delivery of signal 64"
        );
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
    fn note_fills_the_current_slot_only_inside_a_poll() {
        note(WaitReason::Join { task: 1 }); // no slot: nothing happens
        let outer = WaitSlot::default();
        let inner = WaitSlot::default();
        polling(&outer, || {
            note(WaitReason::Readable { fd: 3 });
            polling(&inner, || note(WaitReason::Join { task: 9 }));
            note(WaitReason::Writable { fd: 4 });
        });
        note(WaitReason::Readable { fd: 5 });
        assert_eq!(outer.get(), Some(WaitReason::Writable { fd: 4 }));
        assert_eq!(inner.get(), Some(WaitReason::Join { task: 9 }));
    }

    #[test]
    fn a_poll_clears_the_previous_reason() {
        let slot = WaitSlot::default();
        slot.set(WaitReason::Join { task: 2 });
        polling(&slot, || ());
        assert_eq!(slot.get(), None);
    }

    #[test]
    fn an_unwinding_poll_puts_back_the_outer_poll() {
        let outer = WaitSlot::default();
        let inner = WaitSlot::default();
        let own = futures::task::noop_waker();
        polling_task(&outer, 4, &own, || {
            let unwound = std::panic::catch_unwind(|| {
                polling(&inner, || panic!("the inner poll panics"));
            });
            assert!(unwound.is_err());
            assert_eq!(current_task(), Some(4));
            note(WaitReason::Readable { fd: 6 });
        });
        assert_eq!(current_task(), None);
        assert_eq!(outer.get(), Some(WaitReason::Readable { fd: 6 }));
        assert_eq!(inner.get(), None);
    }

    #[test]
    fn a_nested_poll_gives_back_the_outer_task_and_waker() {
        let outer = WaitSlot::default();
        let inner = WaitSlot::default();
        let block_on = WaitSlot::default();
        let outer_waker = futures::task::noop_waker();
        let inner_waker = Waker::from(Arc::new(Noop));
        let primitive = 0u64;
        let at: *const u64 = &primitive;
        polling_task(&outer, 7, &outer_waker, || {
            // A `block_on` inside the task's poll: no task, no own waker.
            polling(&block_on, || {
                assert_eq!(current_task(), None);
                register_wait_at(at, &outer_waker);
                assert_eq!(block_on.registered_at(), None);
                // A task of the nested runtime, polled by that `block_on`.
                polling_task(&inner, 9, &inner_waker, || {
                    assert_eq!(current_task(), Some(9));
                    register_wait_at(at, &outer_waker);
                    assert_eq!(inner.registered_at(), None, "not the inner task's waker");
                    register_wait_at(at, &inner_waker);
                    note(WaitReason::Join { task: 1 });
                });
                assert_eq!(current_task(), None);
                note(WaitReason::Readable { fd: 2 });
            });
            assert_eq!(current_task(), Some(7));
            register_wait_at(at, &inner_waker);
            assert_eq!(outer.registered_at(), None, "not the outer task's waker");
            register_wait_at(at, &outer_waker);
            note(WaitReason::Writable { fd: 3 });
        });
        assert_eq!(current_task(), None);
        note(WaitReason::Readable { fd: 4 });
        assert_eq!(outer.get(), Some(WaitReason::Writable { fd: 3 }));
        assert_eq!(outer.registered_at(), Some(at as usize));
        assert_eq!(block_on.get(), Some(WaitReason::Readable { fd: 2 }));
        assert_eq!(inner.get(), Some(WaitReason::Join { task: 1 }));
        assert_eq!(inner.registered_at(), Some(at as usize));
    }

    #[test]
    fn polls_nested_at_any_depth_get_back_their_slot_task_and_waker() {
        // Deeper than anything real (a `block_on` in a task, a task of its runtime in
        // that, ...): the records chain through the polls' frames, so depth costs nothing.
        const DEPTH: usize = 12;
        let slots: Vec<WaitSlot> = (0..DEPTH).map(|_| WaitSlot::default()).collect();
        let wakers: Vec<Waker> = (0..DEPTH).map(|_| Waker::from(Arc::new(Noop))).collect();
        fn nest(slots: &[WaitSlot], wakers: &[Waker], depth: usize) {
            let Some(slot) = slots.get(depth) else {
                return;
            };
            let task = depth as u64 + 1;
            polling_task(slot, task, &wakers[depth], || {
                nest(slots, wakers, depth + 1);
                // Back from the nested polls: this poll's slot, task and waker again.
                note(WaitReason::Join { task });
                assert_eq!(current_task(), Some(task), "depth {depth}");
                assert!(is_own_waker(&wakers[depth]), "depth {depth}");
                if let Some(inner) = wakers.get(depth + 1) {
                    assert!(!is_own_waker(inner), "depth {depth}");
                }
            });
        }
        nest(&slots, &wakers, 0);
        assert_eq!(current_task(), None);
        CURRENT.with(|c| assert!(c.get().is_null()));
        for (depth, slot) in slots.iter().enumerate() {
            let task = depth as u64 + 1;
            assert_eq!(slot.get(), Some(WaitReason::Join { task }));
        }
    }

    fn holders() -> Arc<Holders> {
        Arc::new(Holders::new(std::panic::Location::caller()))
    }

    #[test]
    fn a_task_poll_names_its_task_and_registers_its_own_waker_only() {
        let slot = WaitSlot::default();
        let own = futures::task::noop_waker();
        let lock = holders();
        assert_eq!(current_task(), None);
        polling_task(&slot, 7, &own, || {
            assert_eq!(current_task(), Some(7));
            // A different waker (another executor's, a combinator's): no registration.
            let other = Waker::from(Arc::new(Noop));
            register_wait(&lock, &other);
            assert_eq!(slot.read_registration(|_| ()), None);
            register_wait(&lock, &own);
            lock.hold_exclusive();
        });
        assert_eq!(lock.snapshot().tasks, vec![7]);
        assert_eq!(Arc::strong_count(&lock), 2, "the slot holds a reference");
        let created = slot.read_registration(|h| h.created_at().line());
        assert_eq!(created, Some(lock.created_at().line()));
        // The next poll ends the registration and frees the slot's reference.
        polling_task(&slot, 7, &own, || ());
        assert_eq!(slot.read_registration(|_| ()), None);
        assert_eq!(Arc::strong_count(&lock), 1);
    }

    #[test]
    fn unregistering_during_the_poll_and_dropping_the_slot_free_the_reference() {
        let own = futures::task::noop_waker();
        let lock = holders();
        let slot = WaitSlot::default();
        polling_task(&slot, 3, &own, || {
            register_wait(&lock, &own);
            unregister_wait(&lock);
        });
        assert_eq!(Arc::strong_count(&lock), 1);
        polling_task(&slot, 3, &own, || register_wait(&lock, &own));
        drop(slot);
        assert_eq!(Arc::strong_count(&lock), 1);
    }

    #[test]
    fn a_clear_while_the_reader_reads_leaves_the_reference_to_the_reader() {
        let own = futures::task::noop_waker();
        let lock = holders();
        let slot = WaitSlot::default();
        polling_task(&slot, 3, &own, || register_wait(&lock, &own));
        slot.read_registration(|_| {
            // The owner's next poll clears while we read.
            polling_task(&slot, 3, &own, || ());
            assert_eq!(Arc::strong_count(&lock), 2, "not freed under the reader");
        });
        assert_eq!(Arc::strong_count(&lock), 1);
    }

    #[test]
    fn an_address_registration_owns_nothing_and_ends_like_a_lock_registration() {
        let own = futures::task::noop_waker();
        let other = Waker::from(Arc::new(Noop));
        let primitive = 0u64;
        let at: *const u64 = &primitive;
        let lock = holders();
        let slot = WaitSlot::default();
        polling_task(&slot, 5, &own, || {
            register_wait_at(at, &other);
            assert_eq!(slot.registered_at(), None, "not the task's own waker");
            register_wait_at(at, &own);
            assert_eq!(slot.registered_at(), Some(at as usize));
            // Not a lock registration: the lock reader sees nothing to borrow.
            assert_eq!(slot.read_registration(|_| ()), None);
            // Polled again with another waker: the primitive no longer holds ours.
            register_wait_at(at, &other);
            assert_eq!(slot.registered_at(), None);
            register_wait_at(at, &own);
            unregister_wait_at(at);
            assert_eq!(slot.registered_at(), None);
            // A lock registration replaced by an address one frees its reference.
            register_wait(&lock, &own);
            register_wait_at(at, &own);
            assert_eq!(Arc::strong_count(&lock), 1);
        });
        assert_eq!(slot.registered_at(), Some(at as usize));
        // The next poll ends it; outside a task's poll nothing registers.
        polling_task(&slot, 5, &own, || ());
        assert_eq!(slot.registered_at(), None);
        register_wait_at(at, &own);
        polling(&slot, || register_wait_at(at, &own));
        assert_eq!(slot.registered_at(), None);
    }

    /// A task the way `polling_owned` wants it: the owner word just before the slot.
    #[repr(C)]
    struct OwnedTask {
        owner: &'static SlotOwner,
        slot: WaitSlot,
    }

    static TEST_OWNER: SlotOwner = SlotOwner {
        // The id is the slot's address, and the own waker one whose data is the slot.
        task: |slot| slot as usize as u64,
        is_own_waker: |slot, waker| waker.data() == slot.cast(),
    };

    fn waker_for(slot: *const WaitSlot) -> Waker {
        fn vtable() -> &'static std::task::RawWakerVTable {
            &std::task::RawWakerVTable::new(
                |data| std::task::RawWaker::new(data, vtable()),
                |_| {},
                |_| {},
                |_| {},
            )
        }
        // SAFETY: the vtable's functions never touch the data.
        unsafe { Waker::from_raw(std::task::RawWaker::new(slot.cast(), vtable())) }
    }

    #[test]
    fn an_owned_slot_names_its_task_through_its_owner_and_nests_with_records() {
        let task = OwnedTask {
            owner: &TEST_OWNER,
            slot: WaitSlot::default(),
        };
        // Through a pointer to the whole task: the owner word before the slot must be
        // readable with the slot pointer's provenance (a pointer made from `task.slot`
        // alone would cover only the slot).
        let whole: *const OwnedTask = &task;
        // SAFETY: `whole` points to the live `task`.
        let slot = unsafe { std::ptr::addr_of!((*whole).slot) };
        let id = slot as usize as u64;
        let own = waker_for(slot);
        let other = Waker::from(Arc::new(Noop));
        let lock = holders();
        let block_on = WaitSlot::default();
        task.slot.set(WaitReason::Join { task: 3 });
        // SAFETY: `slot` is `task.slot`, with the provenance of the whole `task`, and
        // `task.owner` is the word before it.
        unsafe {
            polling_owned(slot, || {
                assert_eq!(task.slot.get(), None, "the poll cleared the reason");
                assert_eq!(current_task(), Some(id));
                register_wait(&lock, &other);
                assert_eq!(task.slot.read_registration(|_| ()), None);
                polling(&block_on, || {
                    assert_eq!(current_task(), None);
                    note(WaitReason::Readable { fd: 8 });
                });
                assert_eq!(current_task(), Some(id));
                register_wait(&lock, &own);
                lock.hold_exclusive();
                note(WaitReason::Writable { fd: 9 });
            });
        }
        assert_eq!(current_task(), None);
        assert_eq!(task.slot.get(), Some(WaitReason::Writable { fd: 9 }));
        assert_eq!(block_on.get(), Some(WaitReason::Readable { fd: 8 }));
        assert_eq!(lock.snapshot().tasks, vec![id]);
        assert_eq!(Arc::strong_count(&lock), 2, "the slot holds a reference");
        // The next poll, nested in a `block_on`, ends the registration.
        polling(&block_on, || {
            // SAFETY: as above.
            unsafe { polling_owned(slot, || assert_eq!(current_task(), Some(id))) };
            assert_eq!(current_task(), None);
        });
        assert_eq!(Arc::strong_count(&lock), 1);
    }

    struct Noop;
    impl std::task::Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
}
