//! A single-producer, multi-consumer channel that keeps only the latest value, with tokio's
//! API (`tokio::sync::watch`). Receivers see the newest value, not every value.
//!
//! Invariants: the value lives in an `RwLock`; `state.version` counts changes and is bumped
//! while the value's write lock is held, so a reader holding the read lock sees the version
//! that belongs to the value it reads (lock order: value, then state). A receiver remembers
//! the version it last saw; `changed` completes when they differ. The channel is closed
//! for receivers once every sender is dropped, and for senders once every receiver is.
//!
//! Task dumps and reports: the channel's wait record (`crate::wait_record`: where it was
//! created, how many senders and receivers are alive) is made under the state lock by the
//! first `changed` or `closed` that returns `Pending`, and updated under it whenever an end
//! is made or dropped.
//!
//! Deadlock detector: a task in `changed` or `closed` has its waker held by the channel, so
//! the detector says "maybe" (never a false report).

use std::fmt;
use std::future::poll_fn;
use std::ops::Deref;
use std::panic::Location;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};
use std::task::{Poll, Waker};

use crate::wait_record::WaitRecord;
use crate::wake_list::{wake_all, WakeList};
use crate::SyncKind;

pub mod error {
    //! Errors of the watch channel (`tokio::sync::watch::error`).

    use std::fmt;

    /// Every receiver is dropped: the value was not stored and is returned.
    #[derive(PartialEq, Eq, Clone, Copy)]
    pub struct SendError<T>(pub T);

    impl<T> fmt::Debug for SendError<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("SendError").finish_non_exhaustive()
        }
    }

    impl<T> fmt::Display for SendError<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("channel closed")
        }
    }

    impl<T> std::error::Error for SendError<T> {}

    /// Every sender is dropped: no new value will come.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct RecvError(pub(super) ());

    impl fmt::Display for RecvError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("channel closed")
        }
    }

    impl std::error::Error for RecvError {}
}

use error::{RecvError, SendError};

/// A version no real version reaches: a receiver that "saw" it sees any value as new.
const UNSEEN: u64 = u64::MAX;

struct Shared<T> {
    value: RwLock<T>,
    state: Mutex<State>,
    record: WaitRecord,
}

struct State {
    version: u64,
    senders: usize,
    receivers: usize,
    /// Receivers in `changed`.
    changed: WakeList,
    /// Senders in `closed`.
    closed: WakeList,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No user code runs under this lock.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A wait returns `Pending` (under the state lock): names it and registers the wait
    /// record.
    fn note_pending(&self, state: &State, kind: SyncKind, waker: &Waker) {
        let ends = || (state.senders, state.receivers);
        self.record.note_pending(kind, self, ends, waker);
    }

    /// Under the state lock: an end was made or dropped.
    fn publish_ends(&self, state: &State) {
        self.record.publish_ends(state.senders, state.receivers);
    }

    fn read(&self) -> RwLockReadGuard<'_, T> {
        // A panic inside `send_modify` may leave a half-modified value; the value is still
        // a valid `T`, which is all tokio promises too.
        self.value.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `modify` on the value under the write lock; if it reports a change, bumps the
    /// version and wakes every waiting receiver.
    fn modify<R>(&self, modify: impl FnOnce(&mut T) -> (bool, R)) -> R {
        let mut value = self.value.write().unwrap_or_else(PoisonError::into_inner);
        let (changed, out) = modify(&mut value);
        if !changed {
            return out;
        }
        let wakers = {
            let mut state = self.lock();
            state.version += 1;
            state.changed.take_all()
        };
        drop(value);
        wake_all(wakers);
        out
    }

    /// Reads the value with the version that belongs to it.
    fn read_versioned(&self) -> (RwLockReadGuard<'_, T>, u64) {
        let guard = self.read();
        let version = self.lock().version;
        (guard, version)
    }
}

/// A borrow of the channel's value. Holding it blocks senders (it is a read lock), so keep
/// it short and never hold it across an `.await`.
pub struct Ref<'a, T> {
    guard: RwLockReadGuard<'a, T>,
    has_changed: bool,
}

impl<T> Ref<'_, T> {
    /// Whether the value was new to the receiver that borrowed it; always `false` for a
    /// borrow from [`Sender::borrow`].
    pub fn has_changed(&self) -> bool {
        self.has_changed
    }
}

impl<T> Deref for Ref<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T: fmt::Debug> fmt::Debug for Ref<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

/// Creates a watch channel holding `init`. The receiver starts with `init` marked as seen.
///
/// ```
/// # futures::executor::block_on(async {
/// let (tx, mut rx) = runnel_sync::watch::channel("idle");
/// tx.send("busy").unwrap();
/// rx.changed().await.unwrap();
/// assert_eq!(*rx.borrow_and_update(), "busy");
/// # });
/// ```
#[track_caller]
pub fn channel<T>(init: T) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        value: RwLock::new(init),
        state: Mutex::new(State {
            version: 0,
            senders: 1,
            receivers: 1,
            changed: WakeList::new(),
            closed: WakeList::new(),
        }),
        record: WaitRecord::new(Location::caller()),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared, seen: 0 },
    )
}

/// Publishes new values. Cloning makes another sender; receivers see the channel closed
/// once every sender is dropped.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// Observes the latest value. Cloning makes a receiver that has seen what this one has.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    /// The version this receiver last marked as seen.
    seen: u64,
}

impl<T> Sender<T> {
    /// Creates a channel holding `init` with no receiver yet; make them with
    /// [`subscribe`](Self::subscribe).
    #[track_caller]
    pub fn new(init: T) -> Self {
        let (tx, _) = channel(init);
        tx
    }

    /// Stores `value` and notifies the receivers. Fails, returning the value without
    /// storing it, if every receiver is dropped (use [`send_replace`](Self::send_replace)
    /// to store regardless).
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        if self.shared.lock().receivers == 0 {
            return Err(SendError(value));
        }
        self.send_replace(value);
        Ok(())
    }

    /// Modifies the value in place and notifies the receivers, even if there are none.
    /// The value is write-locked while `modify` runs: do not borrow the channel in it.
    pub fn send_modify<F: FnOnce(&mut T)>(&self, modify: F) {
        self.shared.modify(|value| {
            modify(value);
            (true, ())
        });
    }

    /// Modifies the value in place and notifies the receivers only if `modify` returns
    /// `true`. Returns what `modify` returned.
    pub fn send_if_modified<F: FnOnce(&mut T) -> bool>(&self, modify: F) -> bool {
        self.shared.modify(|value| {
            let changed = modify(value);
            (changed, changed)
        })
    }

    /// Stores `value`, notifies the receivers (even if there are none) and returns the
    /// previous value.
    pub fn send_replace(&self, value: T) -> T {
        self.shared
            .modify(|old| (true, std::mem::replace(old, value)))
    }

    /// Borrows the current value.
    pub fn borrow(&self) -> Ref<'_, T> {
        Ref {
            guard: self.shared.read(),
            has_changed: false,
        }
    }

    /// Whether every receiver is dropped.
    pub fn is_closed(&self) -> bool {
        self.receiver_count() == 0
    }

    /// Completes once every receiver is dropped.
    ///
    /// Cancel safety: cancel-safe.
    pub async fn closed(&self) {
        let mut key = None;
        let mut guard = RemoveOnDrop {
            shared: &self.shared,
            key: &mut key,
            closed_list: true,
        };
        poll_fn(|cx| {
            let mut state = guard.shared.lock();
            if state.receivers == 0 {
                return Poll::Ready(());
            }
            state.closed.register(guard.key, cx.waker());
            guard
                .shared
                .note_pending(&state, SyncKind::ChannelClosed, cx.waker());
            Poll::Pending
        })
        .await;
        guard.remove();
    }

    /// Creates a receiver that has seen the current value. It also reopens a channel whose
    /// receivers were all dropped.
    pub fn subscribe(&self) -> Receiver<T> {
        let mut state = self.shared.lock();
        state.receivers += 1;
        self.shared.publish_ends(&state);
        Receiver {
            shared: self.shared.clone(),
            seen: state.version,
        }
    }

    /// The number of live receivers.
    pub fn receiver_count(&self) -> usize {
        self.shared.lock().receivers
    }

    /// The number of live senders.
    pub fn sender_count(&self) -> usize {
        self.shared.lock().senders
    }

    /// Whether both senders belong to the same channel.
    pub fn same_channel(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        let mut state = self.shared.lock();
        state.senders += 1;
        self.shared.publish_ends(&state);
        drop(state);
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let wakers = {
            let mut state = self.shared.lock();
            state.senders -= 1;
            self.shared.publish_ends(&state);
            if state.senders == 0 {
                state.changed.take_all()
            } else {
                Vec::new()
            }
        };
        wake_all(wakers);
    }
}

impl<T: fmt::Debug> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("value", &*self.borrow())
            .finish()
    }
}

impl<T> Receiver<T> {
    /// Borrows the current value without marking it seen. [`Ref::has_changed`] says
    /// whether it is new to this receiver.
    pub fn borrow(&self) -> Ref<'_, T> {
        let (guard, version) = self.shared.read_versioned();
        Ref {
            guard,
            has_changed: version != self.seen,
        }
    }

    /// Borrows the current value and marks it seen, so [`changed`](Self::changed) waits
    /// for a newer one.
    pub fn borrow_and_update(&mut self) -> Ref<'_, T> {
        let (guard, version) = self.shared.read_versioned();
        let has_changed = version != self.seen;
        self.seen = version;
        Ref { guard, has_changed }
    }

    /// Whether a value this receiver has not seen is stored. Fails once every sender is
    /// dropped (as tokio's does, even if an unseen value remains).
    pub fn has_changed(&self) -> Result<bool, RecvError> {
        let state = self.shared.lock();
        if state.senders == 0 {
            return Err(RecvError(()));
        }
        Ok(state.version != self.seen)
    }

    /// Makes the current value count as unseen.
    pub fn mark_changed(&mut self) {
        self.seen = UNSEEN;
    }

    /// Makes the current value count as seen.
    pub fn mark_unchanged(&mut self) {
        self.seen = self.shared.lock().version;
    }

    /// Waits for a value this receiver has not seen, and marks it seen (read it with
    /// [`borrow`](Self::borrow)). Returns at once if one is already stored; fails once
    /// every sender is dropped and no unseen value remains.
    ///
    /// Cancel safety: cancel-safe: the version is marked seen only when the future
    /// completes.
    pub async fn changed(&mut self) -> Result<(), RecvError> {
        changed(&self.shared, &mut self.seen).await
    }

    /// Waits until `f` accepts the value, checking the current value first, and returns a
    /// borrow of the accepted value (marked seen). Fails if every sender is dropped and the
    /// last value is not accepted.
    ///
    /// Cancel safety: cancel-safe; the receiver may have marked intermediate values seen.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let (tx, mut rx) = runnel_sync::watch::channel(0);
    /// std::thread::spawn(move || for i in 1..=5 { tx.send(i).unwrap() });
    /// // The sender may be dropped before `rx` looks again; the last value is still checked.
    /// assert_eq!(*rx.wait_for(|&v| v == 5).await.unwrap(), 5);
    /// # });
    /// ```
    pub async fn wait_for(
        &mut self,
        mut f: impl FnMut(&T) -> bool,
    ) -> Result<Ref<'_, T>, RecvError> {
        // Split borrows: the returned guard borrows `shared` while the loop updates `seen`.
        let shared: &Shared<T> = &self.shared;
        let seen = &mut self.seen;
        loop {
            {
                // Scoped so the read lock is released before waiting.
                let (guard, version) = shared.read_versioned();
                let has_changed = version != *seen;
                *seen = version;
                if f(&guard) {
                    return Ok(Ref { guard, has_changed });
                }
            }
            // `changed` reports a value sent just before the last sender went before it
            // reports the end, so the final value is always checked.
            changed(shared, seen).await?;
        }
    }

    /// Whether every sender is dropped.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().senders == 0
    }

    /// Whether both receivers belong to the same channel.
    pub fn same_channel(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

async fn changed<T>(shared: &Shared<T>, seen: &mut u64) -> Result<(), RecvError> {
    let mut key = None;
    let mut guard = RemoveOnDrop {
        shared,
        key: &mut key,
        closed_list: false,
    };
    let result = poll_fn(|cx| {
        let mut state = guard.shared.lock();
        if state.version != *seen {
            *seen = state.version;
            return Poll::Ready(Ok(()));
        }
        if state.senders == 0 {
            return Poll::Ready(Err(RecvError(())));
        }
        state.changed.register(guard.key, cx.waker());
        guard
            .shared
            .note_pending(&state, SyncKind::ChannelRecv, cx.waker());
        Poll::Pending
    })
    .await;
    guard.remove();
    result
}

/// Removes a waiting future's wake-list entry, and ends a registration of the wait record
/// made in the current poll, when it completes or is dropped.
struct RemoveOnDrop<'a, T> {
    shared: &'a Shared<T>,
    key: &'a mut Option<usize>,
    closed_list: bool,
}

impl<T> RemoveOnDrop<'_, T> {
    fn remove(&mut self) {
        if self.key.is_none() {
            return;
        }
        let mut state = self.shared.lock();
        self.shared.record.unregister();
        if self.closed_list {
            state.closed.remove(self.key);
        } else {
            state.changed.remove(self.key);
        }
    }
}

impl<T> Drop for RemoveOnDrop<'_, T> {
    fn drop(&mut self) {
        self.remove();
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        let mut state = self.shared.lock();
        state.receivers += 1;
        self.shared.publish_ends(&state);
        drop(state);
        Receiver {
            shared: self.shared.clone(),
            seen: self.seen,
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let wakers = {
            let mut state = self.shared.lock();
            state.receivers -= 1;
            self.shared.publish_ends(&state);
            if state.receivers == 0 {
                state.closed.take_all()
            } else {
                Vec::new()
            }
        };
        wake_all(wakers);
    }
}

impl<T: fmt::Debug> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("value", &*self.borrow())
            .finish()
    }
}
