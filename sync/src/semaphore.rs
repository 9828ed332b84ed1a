//! [`Semaphore`]: a fair (FIFO) async counting semaphore, the base of every lock here.
//!
//! State: one atomic word `permits << 2 | WAITERS | CLOSED`, and a mutex-guarded
//! `Waitlist` of queued acquirers. Invariants:
//!
//! - `WAITERS` is set exactly while the waitlist is non-empty, and is changed only under
//!   the waitlist lock. While it is set the word holds **zero** permits: a waiter that
//!   queues takes every available permit first (a partial assignment), and a release
//!   that sees `WAITERS` hands its permits to the queue under the lock instead of to the
//!   word. So a newcomer's lock-free fast path cannot overtake a queued waiter (FIFO).
//! - Permits reach waiters strictly in order: only the head holds a partial assignment;
//!   the next waiter gets anything only once the head is satisfied.
//! - A dropped acquire future gives back whatever was assigned to it (partial or whole)
//!   through the same release path, so the next waiter is served and nothing is lost.
//! - Wakers are woken after the lock is released (`WakeList`).
//! - Every queued waiter draws a ticket, under the lock, in queue order; a release that
//!   satisfies the head unlinks it, frees its slot and stores its ticket in `granted`
//!   (Release, still under the lock). Since only the head is ever satisfied, waiters are
//!   granted in ticket order, so `granted >= ticket` says "granted" for good: a woken
//!   waiter reads that without the lock (Acquire, pairing with the store, which hands it
//!   the previous holder's writes), and never touches its freed slot again, which may
//!   already be another waiter's. A waiter that is not granted still owns its slot (only
//!   it frees a `Queued` or `Closed` node). Model-checked with loom
//!   (`semaphore/loom_tests.rs`).
//!
//! Holders (for runnel's wait-for graph, `runnel_reactor::wait::Holders`): the guard
//! layer (`SemaphorePermit`, the `Mutex` and `RwLock` guards) records which task holds
//! permits, in a record allocated once, on the first hold or tracked wait; the channels,
//! which use raw permits, never create it. Under the waitlist lock the record also learns
//! which queued task holds a partial assignment (`publish_partial`), since it holds
//! permits too. A tracked acquire future registers its wait in the polled task's slot
//! (`wait::register_wait`) when it queues, and ends it when it completes or is dropped.

pub(crate) mod waitlist;
mod wake_list;

pub(crate) use crate::block_on::block_on;
pub(crate) use wake_list::WakeList;

use crate::loom::atomic::Ordering::{AcqRel, Acquire as AcquireOrd, Relaxed, Release};
use crate::loom::atomic::{AtomicU64, AtomicUsize};
use crate::loom::{Mutex, MutexGuard};
use crate::SyncKind;
use runnel_reactor::wait::{self, HoldSlot, Holders};
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

type Waitlist = waitlist::Waitlist<NodeState>;

/// Where a semaphore waiter is in its life, while it has a slot. Only `Queued` nodes are
/// in the list, and only the head may hold a partial assignment (`assigned > 0`). A
/// granted waiter has no node: its slot is freed as it is granted (see `granted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeState {
    /// In the queue, still owed `needed` permits, with `assigned` already handed over;
    /// `task` is the runnel task that queued it (0: none); `ticket` its place in line.
    Queued {
        needed: usize,
        assigned: usize,
        task: u64,
        ticket: u64,
    },
    /// Out of the queue because the semaphore closed; it holds no permits.
    Closed,
}

const CLOSED: usize = 1;
const WAITERS: usize = 2;
const SHIFT: usize = 2;

/// A counting semaphore: an async pool of permits, handed out in FIFO order.
///
/// A request for many permits that cannot be met yet blocks later, smaller requests
/// (tokio's fairness): permits go to waiters in the order they asked.
///
/// ```
/// use std::sync::Arc;
/// use runnel_sync::Semaphore;
///
/// # futures::executor::block_on(async {
/// let sem = Arc::new(Semaphore::new(2));
/// let a = sem.acquire().await.unwrap();
/// let _b = sem.clone().acquire_owned().await.unwrap();
/// assert_eq!(sem.available_permits(), 0);
/// assert!(sem.try_acquire().is_err());
/// drop(a);
/// assert_eq!(sem.available_permits(), 1);
/// # });
/// ```
pub struct Semaphore {
    state: AtomicUsize,
    waiters: Mutex<Waitlist>,
    /// The ticket of the last waiter granted (0: none yet); see the module docs. Written
    /// only under the waitlist lock.
    granted: AtomicU64,
    /// The last ticket drawn; read and written only under the waitlist lock (an atomic
    /// only so that it can sit outside the lock's data, next to `granted`).
    tickets: AtomicU64,
    /// Who holds permits (see the module docs); made on first need.
    holders: OnceLock<Arc<Holders>>,
    created_at: &'static Location<'static>,
    /// The permits given at creation: the record starts its count of permits in
    /// circulation (shown in dumps) from it; `add_permits` and forgets then go through the
    /// record, off the hot path.
    created_permits: usize,
}

/// The semaphore was closed ([`Semaphore::close`]) before a permit could be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquireError(());

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("semaphore closed")
    }
}

impl std::error::Error for AcquireError {}

/// Why a `try_acquire*` call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TryAcquireError {
    /// The semaphore was closed.
    Closed,
    /// Not enough permits right now (or others queued first).
    NoPermits,
}

impl TryAcquireError {
    /// Whether the semaphore was closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, TryAcquireError::Closed)
    }
    /// Whether there were not enough permits.
    pub fn is_no_permits(&self) -> bool {
        matches!(self, TryAcquireError::NoPermits)
    }
}

impl fmt::Display for TryAcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryAcquireError::Closed => f.write_str("semaphore closed"),
            TryAcquireError::NoPermits => f.write_str("no permits available"),
        }
    }
}

impl std::error::Error for TryAcquireError {}

impl Semaphore {
    /// The most permits a semaphore can hold (tokio's value).
    pub const MAX_PERMITS: usize = usize::MAX >> 3;

    /// A semaphore with `permits` permits.
    ///
    /// # Panics
    ///
    /// If `permits` exceeds [`Semaphore::MAX_PERMITS`].
    #[track_caller]
    pub fn new(permits: usize) -> Semaphore {
        Semaphore::const_new(permits)
    }

    crate::loom::const_unless_loom! {
        /// Like [`new`](Self::new), usable in a `static`.
        ///
        /// ```
        /// static LIMIT: runnel_sync::Semaphore = runnel_sync::Semaphore::const_new(10);
        /// assert_eq!(LIMIT.available_permits(), 10);
        /// ```
        #[track_caller]
        pub fn const_new(permits: usize) -> Semaphore {
            assert!(
                permits <= Semaphore::MAX_PERMITS,
                "a semaphore holds at most Semaphore::MAX_PERMITS permits"
            );
            Semaphore {
                state: AtomicUsize::new(permits << SHIFT),
                waiters: Mutex::new(Waitlist::new()),
                granted: AtomicU64::new(0),
                tickets: AtomicU64::new(0),
                holders: OnceLock::new(),
                created_at: Location::caller(),
                created_permits: permits,
            }
        }
    }

    /// Permits available right now (0 while anyone is queued).
    pub fn available_permits(&self) -> usize {
        self.state.load(AcquireOrd) >> SHIFT
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.state.load(AcquireOrd) & CLOSED != 0
    }

    /// Adds `n` permits, serving queued waiters first, in order.
    ///
    /// # Panics
    ///
    /// If the total would exceed [`Semaphore::MAX_PERMITS`].
    pub fn add_permits(&self, n: usize) {
        // Permits that no holder gave back: holders no longer explain the waiters' wakes.
        let holders = self.holders();
        holders.mark_open();
        holders.add_permits(n);
        self.release(n);
    }

    /// Removes up to `n` available permits; returns how many were removed.
    pub fn forget_permits(&self, n: usize) -> usize {
        let mut cur = self.state.load(AcquireOrd);
        loop {
            let take = n.min(cur >> SHIFT);
            match self
                .state
                .compare_exchange_weak(cur, cur - (take << SHIFT), AcqRel, AcquireOrd)
            {
                Ok(_) => {
                    if take > 0 {
                        self.holders().forget_permits(take);
                    }
                    return take;
                }
                Err(actual) => cur = actual,
            }
        }
    }

    /// Closes the semaphore: every queued and future `acquire` fails with
    /// [`AcquireError`], `try_acquire` with [`TryAcquireError::Closed`]. Permits already
    /// handed out stay valid and come back when dropped.
    pub fn close(&self) {
        self.holders().mark_open();
        let mut list = self.lock_waiters();
        self.state.fetch_or(CLOSED, AcqRel);
        let mut wakers = WakeList::new();
        let mut returned = 0;
        while let Some(head) = list.head() {
            if !wakers.can_push() {
                drop(list);
                wakers.wake_all();
                list = self.lock_waiters();
                continue;
            }
            list.unlink(head);
            let node = list.node_mut(head);
            if let NodeState::Queued { assigned, .. } = node.state {
                returned += assigned;
            }
            node.state = NodeState::Closed;
            wakers.push(node.waker.take());
        }
        self.settle_empty(returned);
        self.publish_partial(&list);
        drop(list);
        wakers.wake_all();
    }

    /// Waits for one permit.
    ///
    /// **Cancel safety:** cancel-safe. Dropping the future gives back anything assigned
    /// to it and keeps its place from blocking others; it loses no wakeup.
    ///
    /// # Errors
    ///
    /// [`AcquireError`] if the semaphore is closed.
    pub async fn acquire(&self) -> Result<SemaphorePermit<'_>, AcquireError> {
        self.acquire_many(1).await
    }

    /// Waits for `n` permits at once. While it waits, later requests queue behind it.
    ///
    /// **Cancel safety:** cancel-safe, as [`acquire`](Self::acquire): a partial
    /// assignment is given back on drop.
    ///
    /// # Errors
    ///
    /// [`AcquireError`] if the semaphore is closed.
    pub async fn acquire_many(&self, n: u32) -> Result<SemaphorePermit<'_>, AcquireError> {
        self.acquire_tracked(n as usize, SyncKind::SemaphoreAcquire)
            .await?;
        Ok(SemaphorePermit::new(self, n))
    }

    /// [`acquire`](Self::acquire) for an `Arc<Semaphore>`; the permit owns the `Arc`.
    ///
    /// **Cancel safety:** cancel-safe.
    ///
    /// # Errors
    ///
    /// [`AcquireError`] if the semaphore is closed.
    pub async fn acquire_owned(self: Arc<Self>) -> Result<OwnedSemaphorePermit, AcquireError> {
        self.acquire_many_owned(1).await
    }

    /// [`acquire_many`](Self::acquire_many) for an `Arc<Semaphore>`.
    ///
    /// **Cancel safety:** cancel-safe.
    ///
    /// # Errors
    ///
    /// [`AcquireError`] if the semaphore is closed.
    pub async fn acquire_many_owned(
        self: Arc<Self>,
        n: u32,
    ) -> Result<OwnedSemaphorePermit, AcquireError> {
        self.acquire_tracked(n as usize, SyncKind::SemaphoreAcquire)
            .await?;
        Ok(OwnedSemaphorePermit::new(self, n))
    }

    /// Takes one permit if one is free and nobody is queued.
    ///
    /// # Errors
    ///
    /// [`TryAcquireError::Closed`] or [`TryAcquireError::NoPermits`].
    pub fn try_acquire(&self) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        self.try_acquire_many(1)
    }

    /// Takes `n` permits if that many are free and nobody is queued.
    ///
    /// # Errors
    ///
    /// [`TryAcquireError::Closed`] or [`TryAcquireError::NoPermits`].
    pub fn try_acquire_many(&self, n: u32) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        self.try_acquire_permits(n as usize)?;
        Ok(SemaphorePermit::new(self, n))
    }

    /// [`try_acquire`](Self::try_acquire) for an `Arc<Semaphore>`.
    ///
    /// # Errors
    ///
    /// [`TryAcquireError::Closed`] or [`TryAcquireError::NoPermits`].
    pub fn try_acquire_owned(self: Arc<Self>) -> Result<OwnedSemaphorePermit, TryAcquireError> {
        self.try_acquire_many_owned(1)
    }

    /// [`try_acquire_many`](Self::try_acquire_many) for an `Arc<Semaphore>`.
    ///
    /// # Errors
    ///
    /// [`TryAcquireError::Closed`] or [`TryAcquireError::NoPermits`].
    pub fn try_acquire_many_owned(
        self: Arc<Self>,
        n: u32,
    ) -> Result<OwnedSemaphorePermit, TryAcquireError> {
        self.try_acquire_permits(n as usize)?;
        Ok(OwnedSemaphorePermit::new(self, n))
    }

    // ---- crate-wide raw interface (channels and locks build on these) ----

    #[cfg(test)]
    /// A future for `n` raw permits. On `Ok(())` the caller owns `n` permits and must
    /// give them back with [`release`](Self::release) (or keep them forever). Dropping
    /// the future before it completes gives back anything assigned to it.
    pub(crate) fn acquire_permits(&self, n: usize) -> Acquire<'_> {
        self.acquire_permits_as(n, SyncKind::SemaphoreAcquire)
    }

    /// As `acquire_permits`, naming the wait `kind` (a mutex's lock, a read lock, ...) in
    /// runnel's task dumps and reports.
    pub(crate) fn acquire_permits_as(&self, n: usize, kind: SyncKind) -> Acquire<'_> {
        Acquire {
            sem: self,
            wanted: n,
            state: AcquireState::Init,
            kind,
            tracked: false,
        }
    }

    /// As `acquire_permits_as`, for a guard that records its holder: while queued, the
    /// waiting task registers the wait, so the wait-for graph can follow it to the
    /// holders.
    pub(crate) fn acquire_tracked(&self, n: usize, kind: SyncKind) -> Acquire<'_> {
        let mut acquire = self.acquire_permits_as(n, kind);
        acquire.tracked = true;
        acquire
    }

    /// Clears the exclusive holder, then gives back `n` permits (a `Mutex` or `RwLock`
    /// write guard's drop).
    pub(crate) fn unlock_exclusive(&self, n: usize) {
        self.holders().release_exclusive();
        self.release(n);
    }

    /// Forgets a shared hold, then gives back one permit (a read guard's drop).
    pub(crate) fn unlock_shared(&self, hold: HoldSlot) {
        self.holders().release_shared(hold);
        self.release(1);
    }

    /// The holder record (made on first need).
    pub(crate) fn holders(&self) -> &Arc<Holders> {
        self.holders
            .get_or_init(|| Arc::new(Holders::with_permits(self.created_at, self.created_permits)))
    }

    /// Under the waitlist lock: tells the holder record (if any) which queued task holds
    /// a partial assignment. Only the head can.
    fn publish_partial(&self, list: &Waitlist) {
        let Some(holders) = self.holders.get() else {
            return;
        };
        let task = match list.head().map(|head| list.node(head).state) {
            Some(NodeState::Queued { assigned, task, .. }) if assigned > 0 => task,
            _ => 0,
        };
        holders.set_partial(task);
    }

    /// Takes `n` raw permits without waiting; the caller owns them on `Ok`.
    pub(crate) fn try_acquire_permits(&self, n: usize) -> Result<(), TryAcquireError> {
        let mut cur = self.state.load(AcquireOrd);
        loop {
            if cur & CLOSED != 0 {
                return Err(TryAcquireError::Closed);
            }
            if cur >> SHIFT < n {
                return Err(TryAcquireError::NoPermits);
            }
            match self
                .state
                .compare_exchange_weak(cur, cur - (n << SHIFT), AcqRel, AcquireOrd)
            {
                Ok(_) => return Ok(()),
                Err(actual) => cur = actual,
            }
        }
    }

    /// Gives `n` raw permits back, serving queued waiters first.
    pub(crate) fn release(&self, n: usize) {
        if n == 0 {
            return;
        }
        let mut cur = self.state.load(AcquireOrd);
        while cur & WAITERS == 0 {
            let total = (cur >> SHIFT).checked_add(n);
            let new = match total {
                Some(total) if total <= Semaphore::MAX_PERMITS => cur + (n << SHIFT),
                _ => panic!(
                    "adding {n} permits would exceed Semaphore::MAX_PERMITS ({})",
                    Semaphore::MAX_PERMITS
                ),
            };
            match self
                .state
                .compare_exchange_weak(cur, new, AcqRel, AcquireOrd)
            {
                Ok(_) => return,
                Err(actual) => cur = actual,
            }
        }
        let list = self.lock_waiters();
        self.release_and_unlock(list, n);
    }

    fn lock_waiters(&self) -> MutexGuard<'_, Waitlist> {
        // The lock is never held across user code (wakers run after it is released), so
        // poisoning can only come from an internal panic; the list stays consistent
        // between statements, so carry on.
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands `n` permits to the queue in order, then drops the lock and wakes whoever was
    /// satisfied. With the queue empty, the rest goes to the word and `WAITERS` is cleared.
    fn release_and_unlock<'a>(&'a self, mut list: MutexGuard<'a, Waitlist>, mut n: usize) {
        let mut wakers = WakeList::new();
        while n > 0 {
            let Some(head) = list.head() else { break };
            if !wakers.can_push() {
                drop(list);
                wakers.wake_all();
                list = self.lock_waiters();
                continue;
            }
            let node = list.node_mut(head);
            let NodeState::Queued {
                needed,
                assigned,
                task,
                ticket,
            } = node.state
            else {
                unreachable!("a node in the queue is always Queued")
            };
            let give = n.min(needed);
            n -= give;
            if give == needed {
                list.unlink(head);
                let node = list.free(head);
                // Release: the waiter that reads this owns the permits, and the writes
                // of whoever gave them back (see the module docs).
                self.granted.store(ticket, Release);
                wakers.push(node.waker);
            } else {
                node.state = NodeState::Queued {
                    needed: needed - give,
                    assigned: assigned + give,
                    task,
                    ticket,
                };
            }
        }
        if list.is_empty() {
            self.settle_empty(n);
        }
        self.publish_partial(&list);
        drop(list);
        wakers.wake_all();
    }

    /// Whether the waiter holding `ticket` was granted (see the module docs). Once true,
    /// true for good; needs no lock.
    fn is_granted(&self, ticket: u64) -> bool {
        self.granted.load(AcquireOrd) >= ticket
    }

    /// Under the waitlist lock: the next waiter's ticket.
    fn draw_ticket(&self) -> u64 {
        // Relaxed: only ever touched under the lock, which orders it.
        let ticket = self.tickets.load(Relaxed) + 1;
        self.tickets.store(ticket, Relaxed);
        ticket
    }

    /// With the lock held and the queue empty: clear `WAITERS` and store `n` permits.
    fn settle_empty(&self, n: usize) {
        let mut cur = self.state.load(AcquireOrd);
        loop {
            let total = (cur >> SHIFT).checked_add(n);
            if !matches!(total, Some(t) if t <= Semaphore::MAX_PERMITS) {
                panic!(
                    "adding {n} permits would exceed Semaphore::MAX_PERMITS ({})",
                    Semaphore::MAX_PERMITS
                );
            }
            let new = (cur & !WAITERS) + (n << SHIFT);
            match self
                .state
                .compare_exchange_weak(cur, new, AcqRel, AcquireOrd)
            {
                Ok(_) => return,
                Err(actual) => cur = actual,
            }
        }
    }
}

impl Default for Semaphore {
    /// A semaphore with no permits.
    fn default() -> Semaphore {
        Semaphore::new(0)
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.load(AcquireOrd);
        f.debug_struct("Semaphore")
            .field("permits", &(state >> SHIFT))
            .field("waiters", &(state & WAITERS != 0))
            .field("closed", &(state & CLOSED != 0))
            .finish()
    }
}

enum AcquireState {
    Init,
    /// In the waitlist at `index` (until granted: see the module docs), in line as
    /// `ticket`.
    Queued {
        index: usize,
        ticket: u64,
    },
    Done,
}

/// The future of [`Semaphore::acquire_permits`]: `Ok(())` means the caller now owns the
/// permits it asked for.
#[must_use = "futures do nothing unless polled"]
pub(crate) struct Acquire<'a> {
    sem: &'a Semaphore,
    wanted: usize,
    state: AcquireState,
    /// What the waiting task is said to wait on (see `crate::note_wait`).
    kind: SyncKind,
    /// A guard's acquire: register the wait for the wait-for graph (see the module docs).
    tracked: bool,
}

impl Future for Acquire<'_> {
    type Output = Result<(), AcquireError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match this.state {
            AcquireState::Init => this.poll_first(cx),
            AcquireState::Queued { index, ticket } => {
                // The woken waiter's path: no lock (see the module docs).
                if this.sem.is_granted(ticket) {
                    this.finish();
                    return Poll::Ready(Ok(()));
                }
                let mut list = this.sem.lock_waiters();
                if this.sem.is_granted(ticket) {
                    // Granted since the check: the slot is no longer ours.
                    drop(list);
                    this.finish();
                    return Poll::Ready(Ok(()));
                }
                let node = list.node_mut(index);
                match node.state {
                    NodeState::Queued { .. } => {
                        match &node.waker {
                            Some(w) if w.will_wake(cx.waker()) => {}
                            _ => node.waker = Some(cx.waker().clone()),
                        }
                        drop(list);
                        this.note_pending(cx);
                        Poll::Pending
                    }
                    NodeState::Closed => {
                        list.free(index);
                        drop(list);
                        this.finish();
                        Poll::Ready(Err(AcquireError(())))
                    }
                }
            }
            AcquireState::Done => panic!("runnel_sync: acquire future polled after completion"),
        }
    }
}

impl Acquire<'_> {
    /// Returning `Pending`, queued: say what the task waits on, and register a tracked
    /// wait (after the waitlist lock is released: registering may free an older one).
    fn note_pending(&self, cx: &Context<'_>) {
        crate::note_wait(self.kind, self.sem);
        if self.tracked {
            wait::register_wait(self.sem.holders(), cx.waker());
        }
    }

    /// Leaving the queue (granted, closed or dropped): a wait registered during this poll
    /// no longer stands.
    fn finish(&mut self) {
        self.state = AcquireState::Done;
        if self.tracked {
            if let Some(holders) = self.sem.holders.get() {
                wait::unregister_wait(holders);
            }
        }
    }

    fn poll_first(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), AcquireError>> {
        match self.sem.try_acquire_permits(self.wanted) {
            Ok(()) => {
                self.state = AcquireState::Done;
                return Poll::Ready(Ok(()));
            }
            Err(TryAcquireError::Closed) => {
                self.state = AcquireState::Done;
                return Poll::Ready(Err(AcquireError(())));
            }
            Err(TryAcquireError::NoPermits) => {}
        }
        let sem = self.sem;
        let mut list = sem.lock_waiters();
        // Under the lock nobody else moves permits between the word and the queue, so
        // what we see here decides: enough and nobody queued → take; else take what is
        // there (partial assignment), set WAITERS, and queue.
        let mut cur = sem.state.load(AcquireOrd);
        let taken = loop {
            if cur & CLOSED != 0 {
                self.state = AcquireState::Done;
                return Poll::Ready(Err(AcquireError(())));
            }
            let available = cur >> SHIFT;
            let new = if available >= self.wanted {
                cur - (self.wanted << SHIFT)
            } else {
                (cur & CLOSED) | WAITERS
            };
            if new == cur {
                // Others queued already (so the word is empty): nothing to write. The
                // compare-exchange would still take the line exclusive, away from the
                // releases that read it, once per queued acquire.
                break available.min(self.wanted);
            }
            match sem
                .state
                .compare_exchange_weak(cur, new, AcqRel, AcquireOrd)
            {
                Ok(_) => break available.min(self.wanted),
                Err(actual) => cur = actual,
            }
        };
        if taken == self.wanted {
            self.state = AcquireState::Done;
            return Poll::Ready(Ok(()));
        }
        let ticket = sem.draw_ticket();
        let index = list.push_back(
            NodeState::Queued {
                needed: self.wanted - taken,
                assigned: taken,
                task: wait::current_task().unwrap_or(0),
                ticket,
            },
            Some(cx.waker().clone()),
        );
        self.state = AcquireState::Queued { index, ticket };
        if taken > 0 {
            sem.publish_partial(&list);
        }
        drop(list);
        self.note_pending(cx);
        Poll::Pending
    }
}

impl Drop for Acquire<'_> {
    #[inline]
    fn drop(&mut self) {
        // Inline, so that a completed acquire (nearly all of them) costs one compare here
        // rather than an out-of-line call (~17 instructions per hand-over, callgrind).
        if let AcquireState::Queued { index, ticket } = self.state {
            self.cancel(index, ticket);
        }
    }
}

impl Acquire<'_> {
    /// Dropped while queued: leave the queue, giving back whatever was assigned.
    #[inline(never)]
    fn cancel(&mut self, index: usize, ticket: u64) {
        self.finish();
        if self.sem.is_granted(ticket) {
            // Granted but never polled: the permits are ours to give back, the slot is
            // not ours any more.
            self.sem.release(self.wanted);
            return;
        }
        let mut list = self.sem.lock_waiters();
        let give_back = if self.sem.is_granted(ticket) {
            self.wanted
        } else {
            let give_back = match list.node(index).state {
                NodeState::Queued { assigned, .. } => {
                    list.unlink(index);
                    assigned
                }
                NodeState::Closed => 0,
            };
            list.free(index);
            give_back
        };
        // Even with nothing to give back this matters: it clears WAITERS if we were the
        // last waiter, and a head that leaves unblocks nobody else only because the word
        // holds no permits while anyone waits.
        self.sem.release_and_unlock(list, give_back);
    }
}

/// Records the current task as a holder of `permits` permits of `sem` (none for zero).
fn hold(sem: &Semaphore, permits: u32) -> Option<HoldSlot> {
    (permits > 0).then(|| sem.holders().hold_shared())
}

/// Forgets a hold recorded by `hold`.
fn unhold(sem: &Semaphore, hold: &mut Option<HoldSlot>) {
    if let Some(slot) = hold.take() {
        sem.holders().release_shared(slot);
    }
}

/// Permits borrowed from a [`Semaphore`]; dropping it gives them back.
#[must_use = "dropping a permit gives it back at once"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
    permits: u32,
    /// Where the holder is recorded (see the module docs).
    hold: Option<HoldSlot>,
}

impl<'a> SemaphorePermit<'a> {
    fn new(sem: &'a Semaphore, permits: u32) -> SemaphorePermit<'a> {
        SemaphorePermit {
            sem,
            permits,
            hold: hold(sem, permits),
        }
    }

    /// Keeps the permits out of the semaphore for good.
    pub fn forget(mut self) {
        self.sem.holders().forget_permits(self.permits as usize);
        self.permits = 0;
        unhold(self.sem, &mut self.hold);
    }

    /// How many permits this holds.
    pub fn num_permits(&self) -> usize {
        self.permits as usize
    }

    /// Moves `other`'s permits into this one.
    ///
    /// # Panics
    ///
    /// If they come from different semaphores.
    pub fn merge(&mut self, mut other: SemaphorePermit<'a>) {
        assert!(
            std::ptr::eq(self.sem, other.sem),
            "merging permits of different semaphores"
        );
        self.permits += other.permits;
        other.permits = 0;
        if self.hold.is_none() {
            std::mem::swap(&mut self.hold, &mut other.hold);
        }
    }

    /// Splits `n` permits off into a new permit; `None` if this holds fewer than `n`.
    pub fn split(&mut self, n: usize) -> Option<SemaphorePermit<'a>> {
        let n = u32::try_from(n).ok()?;
        if n > self.permits {
            return None;
        }
        self.permits -= n;
        if self.permits == 0 {
            unhold(self.sem, &mut self.hold);
        }
        Some(SemaphorePermit::new(self.sem, n))
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        unhold(self.sem, &mut self.hold);
        self.sem.release(self.permits as usize);
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit")
            .field("permits", &self.permits)
            .finish()
    }
}

/// Permits owned from an `Arc<Semaphore>`; dropping it gives them back.
#[must_use = "dropping a permit gives it back at once"]
pub struct OwnedSemaphorePermit {
    sem: Arc<Semaphore>,
    permits: u32,
    /// Where the holder is recorded (see the module docs).
    hold: Option<HoldSlot>,
}

impl OwnedSemaphorePermit {
    fn new(sem: Arc<Semaphore>, permits: u32) -> OwnedSemaphorePermit {
        let hold = hold(&sem, permits);
        OwnedSemaphorePermit { sem, permits, hold }
    }

    /// Keeps the permits out of the semaphore for good.
    pub fn forget(mut self) {
        self.sem.holders().forget_permits(self.permits as usize);
        self.permits = 0;
        unhold(&self.sem, &mut self.hold);
    }

    /// How many permits this holds.
    pub fn num_permits(&self) -> usize {
        self.permits as usize
    }

    /// The semaphore these permits belong to.
    pub fn semaphore(&self) -> &Arc<Semaphore> {
        &self.sem
    }

    /// Moves `other`'s permits into this one.
    ///
    /// # Panics
    ///
    /// If they come from different semaphores.
    pub fn merge(&mut self, mut other: OwnedSemaphorePermit) {
        assert!(
            Arc::ptr_eq(&self.sem, &other.sem),
            "merging permits of different semaphores"
        );
        self.permits += other.permits;
        other.permits = 0;
        if self.hold.is_none() {
            std::mem::swap(&mut self.hold, &mut other.hold);
        }
    }

    /// Splits `n` permits off into a new permit; `None` if this holds fewer than `n`.
    pub fn split(&mut self, n: usize) -> Option<OwnedSemaphorePermit> {
        let n = u32::try_from(n).ok()?;
        if n > self.permits {
            return None;
        }
        self.permits -= n;
        if self.permits == 0 {
            unhold(&self.sem, &mut self.hold);
        }
        Some(OwnedSemaphorePermit::new(self.sem.clone(), n))
    }
}

impl Drop for OwnedSemaphorePermit {
    fn drop(&mut self) {
        unhold(&self.sem, &mut self.hold);
        self.sem.release(self.permits as usize);
    }
}

impl fmt::Debug for OwnedSemaphorePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedSemaphorePermit")
            .field("permits", &self.permits)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;
