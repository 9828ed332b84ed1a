//! Who holds a lock: the holder record of a `runnel-sync` `Mutex`, `RwLock` or
//! `Semaphore`, which the executor's wait-for graph reads to draw "waits on a lock held by
//! task M" edges. The same record, made with [`Holders::channel`], describes a channel
//! (mpsc, oneshot, watch, broadcast) to task dumps and reports (where it was created, how
//! many ends are alive); the graph never follows a channel's record (ARCHITECTURE.md, "Why
//! channel waits are not followed").
//!
//! A lock allocates its [`Holders`] once (behind an `Arc`, on its first acquire), and each
//! guard writes its holder into it: the id of the runnel task being polled when the lock
//! was taken ([`super::current_task`]), or [`OUTSIDE`] when it was taken anywhere else (a
//! `std::thread`, another executor, `block_on`), with when (the coarse clock of
//! `clock.rs`: one relaxed load) and, for `Mutex` and `RwLock`, where (`lock()`'s caller,
//! by `#[track_caller]`). Taking costs three stores (the exclusive slot) or a
//! compare-and-swap and two stores (a shared slot), releasing one store; no allocation,
//! no lock.
//!
//! The record is a *presumption*: a guard can move to another task or thread without the
//! lock seeing it, so "held by task M" means "taken while task M was polled, and not
//! released since". What a waiter may conclude from it is up to the reader (see the
//! executor's `detector/graph.rs`): every holder that is not a runnel task, and every hold
//! the record could not keep (more concurrent holders than slots), makes it "unknown".
//!
//! Invariants:
//! - slot 0 is the exclusive slot (a `Mutex`'s or an `RwLock` writer's): written only by
//!   whoever holds every permit, so a plain store suffices; shared holders (readers,
//!   semaphore permits) claim any free slot with a CAS, or count as `untracked`;
//! - a slot is cleared before the permits it stands for are released, so the next holder
//!   finds it free;
//! - `open` is sticky: once permits were added from outside the guards (`add_permits`,
//!   `close`), holders no longer explain who can wake a waiter.
//! - `permits` (a semaphore's permits in circulation) and the channel ends change only on
//!   cold paths (`add_permits`, a forget; an end's clone or drop, under the channel's
//!   lock, or for a `oneshot` each side storing its own count): diagnostics for dumps,
//!   never read by the graph.

use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::Relaxed};

/// How many holders a record names; more concurrent holders are counted, not named.
pub const HOLDER_SLOTS: usize = 4;

/// The holder id of a lock taken outside any runnel task.
pub const OUTSIDE: u64 = u64::MAX;

/// Where a shared hold was recorded (returned by [`Holders::hold_shared`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HoldSlot(u8);

impl HoldSlot {
    /// The exclusive slot (a write guard downgraded to a read guard keeps it).
    pub const EXCLUSIVE: HoldSlot = HoldSlot(0);
    /// Not in a slot: counted in `untracked`.
    const UNTRACKED: HoldSlot = HoldSlot(u8::MAX);
}

/// The holders of one lock (see the module docs).
#[derive(Debug)]
pub struct Holders {
    slots: [AtomicU64; HOLDER_SLOTS],
    /// Per slot: when its hold began, by the coarse clock (`clock.rs`; 0: not known).
    since: [AtomicU64; HOLDER_SLOTS],
    /// Per slot: where its hold was taken (`lock()`'s caller; null: not known).
    taken_at: [AtomicPtr<Location<'static>>; HOLDER_SLOTS],
    /// Holds not in a slot (all slots taken).
    untracked: AtomicUsize,
    /// The task at the head of the wait queue while it holds part of what it asked for
    /// (a writer collecting reader permits): it holds permits too.
    partial: AtomicU64,
    /// Permits were added or the lock closed by a call no guard made.
    open: AtomicBool,
    created_at: &'static Location<'static>,
    /// A channel's record (never a lock edge), or a lock's.
    channel: bool,
    /// A lock's permits in circulation (given at creation, plus added, less forgotten);
    /// a channel's live senders.
    count: AtomicUsize,
    /// A channel's live receivers (0 or 1 for mpsc and oneshot).
    receivers: AtomicUsize,
    /// Where the channel lives (it never moves: it is behind an `Arc`), to tell its wait
    /// reason from another channel's; 0 for a lock.
    addr: u64,
}

/// What kind of primitive a [`Holders`] record describes, as read by [`Holders::snapshot`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordOf {
    /// A lock (`Mutex`, `RwLock`, `Semaphore`).
    Lock {
        /// Permits in circulation: given at creation, plus added, less forgotten.
        permits: usize,
    },
    /// A channel: never followed by the wait-for graph.
    Channel {
        /// Where the channel lives (low 48 bits, as in its wait reason).
        addr: u64,
        /// Live senders.
        senders: usize,
        /// Live receivers.
        receivers: usize,
    },
}

/// What a [`Holders`] record said when read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldersSnapshot {
    /// Runnel tasks holding permits (slots and the partial head), each once.
    pub tasks: Vec<u64>,
    /// For each of `tasks` (same index): how long ago its hold began, to the runtime's
    /// coarse clock (`None`: not known, e.g. the queue head's partial assignment).
    pub held_for: Vec<Option<std::time::Duration>>,
    /// For each of `tasks` (same index): where it took the lock (`None`: not noted — a
    /// semaphore permit, or the queue head's partial assignment).
    pub taken_at: Vec<Option<&'static Location<'static>>>,
    /// Some holder is not a runnel task, or was not recorded: who can release is unknown.
    pub unknown: bool,
    /// Permits may come from `add_permits` or `close` rather than a holder.
    pub open: bool,
    /// Where the lock (or channel) was created.
    pub created_at: &'static Location<'static>,
    /// What the record describes.
    pub of: RecordOf,
}

impl Holders {
    /// An empty record for a lock created at `created_at`.
    pub fn new(created_at: &'static Location<'static>) -> Holders {
        Holders {
            slots: Default::default(),
            since: Default::default(),
            taken_at: Default::default(),
            untracked: AtomicUsize::new(0),
            partial: AtomicU64::new(0),
            open: AtomicBool::new(false),
            created_at,
            channel: false,
            count: AtomicUsize::new(0),
            receivers: AtomicUsize::new(0),
            addr: 0,
        }
    }

    /// The record of a semaphore created at `created_at` that has `permits` in
    /// circulation.
    pub fn with_permits(created_at: &'static Location<'static>, permits: usize) -> Holders {
        let holders = Holders::new(created_at);
        holders.count.store(permits, Relaxed);
        holders
    }

    /// The record of a channel living at `addr`, created at `created_at`, with these live
    /// ends. Registered by its waits for dumps only: the wait-for graph ignores it.
    pub fn channel<T: ?Sized>(
        created_at: &'static Location<'static>,
        addr: *const T,
        senders: usize,
        receivers: usize,
    ) -> Holders {
        let mut holders = Holders::new(created_at);
        holders.channel = true;
        holders.addr = addr.cast::<()>() as usize as u64 & 0xffff_ffff_ffff;
        holders.set_ends(senders, receivers);
        holders
    }

    /// Whether this is a channel's record (see [`channel`](Self::channel)).
    pub fn is_channel(&self) -> bool {
        self.channel
    }

    /// A channel's live ends changed (call under the channel's lock, so stores land in
    /// order).
    pub fn set_ends(&self, senders: usize, receivers: usize) {
        self.count.store(senders, Relaxed);
        self.receivers.store(receivers, Relaxed);
    }

    /// `n` permits were added to the lock's circulation (`add_permits`).
    pub fn add_permits(&self, n: usize) {
        let _ = self
            .count
            .fetch_update(Relaxed, Relaxed, |c| Some(c.saturating_add(n)));
    }

    /// `n` permits left the lock's circulation for good (a forget).
    pub fn forget_permits(&self, n: usize) {
        let _ = self
            .count
            .fetch_update(Relaxed, Relaxed, |c| Some(c.saturating_sub(n)));
    }

    /// Where the lock was created.
    pub fn created_at(&self) -> &'static Location<'static> {
        self.created_at
    }

    /// Records the current task (or [`OUTSIDE`]) as the exclusive holder, with no note of
    /// where it took the lock. Call right after taking every permit.
    pub fn hold_exclusive(&self) {
        self.hold_exclusive_where(std::ptr::null_mut());
    }

    /// [`hold_exclusive`](Self::hold_exclusive), noting that the lock was taken at `at`
    /// (the `lock()` call a report names).
    pub fn hold_exclusive_at(&self, at: &'static Location<'static>) {
        self.hold_exclusive_where(location_ptr(at));
    }

    fn hold_exclusive_where(&self, at: *mut Location<'static>) {
        // Relaxed: the permit hand-over (AcqRel on the semaphore word) orders these stores
        // after the previous holder's clear; the reader tolerates a stale view (it only
        // concludes after the tasks involved stayed quiet, see the executor's graph). The
        // stamp and site first: a reader that sees the new holder usually sees them too (a
        // reading racing a hand-over may pair a holder with its predecessor's; they are
        // diagnostics, never read by the graph).
        self.since[0].store(super::clock::stamp(), Relaxed);
        self.taken_at[0].store(at, Relaxed);
        self.slots[0].store(holder_id(), Relaxed);
    }

    /// Clears the exclusive holder. Call right before releasing the permits.
    pub fn release_exclusive(&self) {
        self.slots[0].store(0, Relaxed);
    }

    /// Records the current task (or [`OUTSIDE`]) as a shared holder, with no note of where
    /// it took its share; keep the returned slot for
    /// [`release_shared`](Self::release_shared).
    pub fn hold_shared(&self) -> HoldSlot {
        self.hold_shared_where(std::ptr::null_mut())
    }

    /// [`hold_shared`](Self::hold_shared), noting that the share was taken at `at`.
    pub fn hold_shared_at(&self, at: &'static Location<'static>) -> HoldSlot {
        self.hold_shared_where(location_ptr(at))
    }

    fn hold_shared_where(&self, at: *mut Location<'static>) -> HoldSlot {
        let id = holder_id();
        for (i, slot) in self.slots.iter().enumerate() {
            if slot.load(Relaxed) == 0 && slot.compare_exchange(0, id, Relaxed, Relaxed).is_ok() {
                self.since[i].store(super::clock::stamp(), Relaxed);
                self.taken_at[i].store(at, Relaxed);
                return HoldSlot(i as u8);
            }
        }
        self.untracked.fetch_add(1, Relaxed);
        HoldSlot::UNTRACKED
    }

    /// Forgets a shared hold recorded by [`hold_shared`](Self::hold_shared).
    pub fn release_shared(&self, slot: HoldSlot) {
        match self.slots.get(usize::from(slot.0)) {
            Some(slot) => slot.store(0, Relaxed),
            None => {
                self.untracked.fetch_sub(1, Relaxed);
            }
        }
    }

    /// Records which queued task holds a partial assignment (0: none). Called by the lock
    /// under its wait-queue lock.
    pub fn set_partial(&self, task: u64) {
        if self.partial.load(Relaxed) != task {
            self.partial.store(task, Relaxed);
        }
    }

    /// Permits were added, or the lock closed, by a call no guard made: from now on the
    /// holders do not explain who can wake a waiter.
    pub fn mark_open(&self) {
        if !self.open.load(Relaxed) {
            self.open.store(true, Relaxed);
        }
    }

    /// The record as it is now (each field read once; see the module docs for what it
    /// can and cannot say).
    pub fn snapshot(&self) -> HoldersSnapshot {
        let mut tasks = Vec::new();
        let mut held_for = Vec::new();
        let mut taken_at = Vec::new();
        let mut unknown = self.untracked.load(Relaxed) != 0;
        let partial = self.partial.load(Relaxed);
        let slots = self.slots.iter().zip(&self.since).zip(&self.taken_at);
        for (id, since, at) in slots
            .map(|((s, t), at)| (s.load(Relaxed), t.load(Relaxed), at.load(Relaxed)))
            .chain(std::iter::once((partial, 0, std::ptr::null_mut())))
        {
            match id {
                0 => {}
                OUTSIDE => unknown = true,
                id if !tasks.contains(&id) => {
                    tasks.push(id);
                    held_for.push(super::clock::age(since));
                    // SAFETY: a non-null pointer here came from a `&'static Location` in
                    // `location_ptr`, and is only ever read.
                    taken_at.push(unsafe { at.as_ref() });
                }
                _ => {}
            }
        }
        HoldersSnapshot {
            tasks,
            held_for,
            taken_at,
            unknown,
            open: self.open.load(Relaxed),
            created_at: self.created_at,
            of: if self.channel {
                RecordOf::Channel {
                    addr: self.addr,
                    senders: self.count.load(Relaxed),
                    receivers: self.receivers.load(Relaxed),
                }
            } else {
                RecordOf::Lock {
                    permits: self.count.load(Relaxed),
                }
            },
        }
    }
}

/// A `&'static Location` as the pointer an `AtomicPtr` keeps (never written through).
fn location_ptr(at: &'static Location<'static>) -> *mut Location<'static> {
    (at as *const Location<'static>).cast_mut()
}

fn holder_id() -> u64 {
    super::current_task().unwrap_or(OUTSIDE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_a_task_holders_are_unknown() {
        let h = Holders::new(Location::caller());
        h.hold_exclusive();
        let s = h.snapshot();
        assert!(s.unknown && s.tasks.is_empty(), "{s:?}");
        h.release_exclusive();
        assert!(!h.snapshot().unknown);
    }

    #[test]
    fn a_channel_record_counts_its_ends_and_a_lock_its_permits() {
        let at = 0x1000usize as *const u8;
        let chan = Holders::channel(Location::caller(), at, 1, 1);
        assert!(chan.is_channel());
        chan.set_ends(4, 1);
        chan.set_ends(3, 0);
        let expected = RecordOf::Channel {
            addr: 0x1000,
            senders: 3,
            receivers: 0,
        };
        assert_eq!(chan.snapshot().of, expected);

        let lock = Holders::with_permits(Location::caller(), 2);
        assert!(!lock.is_channel());
        lock.add_permits(3);
        lock.forget_permits(1);
        assert_eq!(lock.snapshot().of, RecordOf::Lock { permits: 4 });
        lock.forget_permits(10);
        assert_eq!(lock.snapshot().of, RecordOf::Lock { permits: 0 });
    }

    #[test]
    fn shared_holds_fill_slots_then_count() {
        let h = Holders::new(Location::caller());
        let slots: Vec<_> = (0..HOLDER_SLOTS + 2).map(|_| h.hold_shared()).collect();
        assert_eq!(h.untracked.load(Relaxed), 2);
        for slot in slots {
            h.release_shared(slot);
        }
        let s = h.snapshot();
        assert!(!s.unknown && s.tasks.is_empty(), "{s:?}");
    }
}
