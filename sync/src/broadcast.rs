//! A multi-producer, multi-consumer channel where every receiver sees every value, with
//! tokio's API (`tokio::sync::broadcast`).
//!
//! The channel keeps the last `capacity` values (rounded up to a power of two, as tokio
//! does) in a ring under one mutex. Positions count up forever: `tail` is the position of
//! the next value, the ring holds positions `tail - ring.len() .. tail`, and each receiver
//! keeps the position it reads next. A receiver whose position fell out of the ring has
//! lagged: its next receive reports how many values it lost (`Lagged(n)`) and moves it to
//! the oldest value still held. Each slot counts the receivers that have still to read it;
//! the last one takes the value out instead of cloning it, so values are freed as soon as
//! everyone has seen them (and `len` counts exactly those still owed to someone).
//!
//! Task dumps and reports: the channel's wait record (`crate::wait_record`: where it was
//! created, how many senders and receivers are alive) is made under the lock by the first
//! `recv` that returns `Pending`, and updated under it whenever an end is made or dropped.
//!
//! Deadlock detector: a task in `recv` has its waker held by the channel, so the detector
//! says "maybe" (never a false report).

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use crate::wait_record::WaitRecord;
use crate::wake_list::{wake_all, WakeList};
use crate::SyncKind;

pub mod error {
    //! Errors of the broadcast channel (`tokio::sync::broadcast::error`).

    use std::fmt;

    /// There is no receiver: the value was not sent and is returned.
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

    /// Why [`recv`](super::Receiver::recv) returned no value.
    #[derive(Debug, PartialEq, Eq, Clone)]
    pub enum RecvError {
        /// Every sender is dropped and this receiver has read every value it can.
        Closed,
        /// The receiver fell more than the capacity behind and lost this many of the oldest
        /// values; its next receive returns the oldest value still held.
        Lagged(u64),
    }

    impl fmt::Display for RecvError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                RecvError::Closed => f.write_str("channel closed"),
                RecvError::Lagged(n) => write!(f, "channel lagged by {n}"),
            }
        }
    }

    impl std::error::Error for RecvError {}

    /// Why [`try_recv`](super::Receiver::try_recv) returned no value.
    #[derive(Debug, PartialEq, Eq, Clone)]
    pub enum TryRecvError {
        /// No value to read now; a sender may still send.
        Empty,
        /// Every sender is dropped and this receiver has read every value it can.
        Closed,
        /// The receiver lost this many of the oldest values (see [`RecvError::Lagged`]).
        Lagged(u64),
    }

    impl fmt::Display for TryRecvError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                TryRecvError::Empty => f.write_str("channel empty"),
                TryRecvError::Closed => f.write_str("channel closed"),
                TryRecvError::Lagged(n) => write!(f, "channel lagged by {n}"),
            }
        }
    }

    impl std::error::Error for TryRecvError {}
}

use error::{RecvError, SendError, TryRecvError};

struct Shared<T> {
    state: Mutex<State<T>>,
    capacity: usize,
    record: WaitRecord,
}

struct State<T> {
    ring: VecDeque<Slot<T>>,
    /// Position of the next value sent.
    tail: u64,
    senders: usize,
    receivers: usize,
    /// Slots whose value is still owed to some receiver.
    queued: usize,
    waiting: WakeList,
}

struct Slot<T> {
    /// `None` once every receiver that was subscribed when it was sent has read it.
    value: Option<T>,
    /// Receivers that have still to read this slot.
    remaining: usize,
}

impl<T> State<T> {
    fn head(&self) -> u64 {
        self.tail - self.ring.len() as u64
    }

    /// Marks the slots from `pos` to the tail as read by one receiver that goes away, so
    /// its share of them is freed. Returns the values nobody else needs, to be dropped
    /// after unlocking.
    fn forget_reader(&mut self, pos: u64) -> Vec<T> {
        let start = pos.max(self.head());
        let offset = (start - self.head()) as usize;
        let mut freed = Vec::new();
        for slot in self.ring.iter_mut().skip(offset) {
            if slot.value.is_some() {
                slot.remaining -= 1;
                if slot.remaining == 0 {
                    freed.extend(slot.value.take());
                }
            }
        }
        self.queued -= freed.len();
        freed
    }
}

/// Creates a broadcast channel keeping the last `capacity` values (rounded up to a power
/// of two) for receivers that are behind.
///
/// # Panics
///
/// If `capacity` is 0 or larger than `usize::MAX / 2`.
///
/// ```
/// # futures::executor::block_on(async {
/// let (tx, mut rx1) = runnel_sync::broadcast::channel(16);
/// let mut rx2 = tx.subscribe();
/// tx.send(10).unwrap();
/// assert_eq!(rx1.recv().await, Ok(10));
/// assert_eq!(rx2.recv().await, Ok(10));
/// # });
/// ```
#[track_caller]
pub fn channel<T: Clone>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(
        capacity > 0,
        "broadcast channel capacity cannot be zero (use a capacity of at least 1)"
    );
    assert!(
        capacity <= usize::MAX >> 1,
        "broadcast channel capacity {capacity} exceeds the maximum of usize::MAX / 2"
    );
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            ring: VecDeque::new(),
            tail: 0,
            senders: 1,
            receivers: 1,
            queued: 0,
            waiting: WakeList::new(),
        }),
        capacity: capacity.next_power_of_two(),
        record: WaitRecord::new(Location::caller()),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared, next: 0 },
    )
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // No user code runs under the lock (values are cloned under it, though: a panicking
        // `Clone` leaves the state as it was before the read).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Under the lock: an end was made or dropped.
    fn publish_ends(&self, state: &State<T>) {
        self.record.publish_ends(state.senders, state.receivers);
    }

    fn new_receiver(self: &Arc<Self>, state: &mut State<T>) -> Receiver<T> {
        state.receivers += 1;
        self.publish_ends(state);
        Receiver {
            shared: self.clone(),
            next: state.tail,
        }
    }
}

/// Sends values to every receiver. Cloning makes another sender; receivers see the channel
/// closed once every sender is dropped.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// Receives every value sent after it subscribed, unless it falls more than the capacity
/// behind.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    /// Position of the next value to read.
    next: u64,
}

impl<T: Clone> Sender<T> {
    /// Creates a channel with no receiver yet (see [`channel`] for `capacity`); make them
    /// with [`subscribe`](Self::subscribe).
    ///
    /// # Panics
    ///
    /// As [`channel`].
    #[track_caller]
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = channel(capacity);
        tx
    }
}

impl<T> Sender<T> {
    /// Sends `value` to every current receiver and returns how many there are. Never waits:
    /// when the ring is full the oldest value is dropped, and receivers that had not read
    /// it will be told they lagged. Fails, returning the value, if there is no receiver.
    pub fn send(&self, value: T) -> Result<usize, SendError<T>> {
        let (wakers, evicted, receivers) = {
            let mut state = self.shared.lock();
            if state.receivers == 0 {
                return Err(SendError(value));
            }
            let evicted = if state.ring.len() == self.shared.capacity {
                let oldest = state.ring.pop_front().expect("a full ring has a front");
                if oldest.value.is_some() {
                    state.queued -= 1;
                }
                oldest.value
            } else {
                None
            };
            let remaining = state.receivers;
            state.ring.push_back(Slot {
                value: Some(value),
                remaining,
            });
            state.queued += 1;
            state.tail += 1;
            (state.waiting.take_all(), evicted, remaining)
        };
        drop(evicted);
        wake_all(wakers);
        Ok(receivers)
    }

    /// Creates a receiver that gets every value sent from now on.
    pub fn subscribe(&self) -> Receiver<T> {
        let mut state = self.shared.lock();
        self.shared.new_receiver(&mut state)
    }

    /// The number of live receivers.
    pub fn receiver_count(&self) -> usize {
        self.shared.lock().receivers
    }

    /// The number of values some receiver has still to read.
    pub fn len(&self) -> usize {
        self.shared.lock().queued
    }

    /// Whether every receiver has read every value still held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
                state.waiting.take_all()
            } else {
                Vec::new()
            }
        };
        wake_all(wakers);
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

impl<T: Clone> Receiver<T> {
    /// Receives the next value, waiting while there is none. Fails with
    /// [`RecvError::Lagged`] if values were lost (the next call returns the oldest value
    /// still held), and with [`RecvError::Closed`] once every sender is dropped and every
    /// held value is read.
    ///
    /// Cancel safety: cancel-safe: a value is read only when the future completes.
    pub async fn recv(&mut self) -> Result<T, RecvError> {
        Recv {
            shared: &self.shared,
            next: &mut self.next,
            key: None,
        }
        .await
    }

    /// Receives the next value if there is one now.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut state = self.shared.lock();
        read(&mut self.next, &mut state)
    }

    /// Receives from synchronous code, parking the calling thread while there is no value.
    /// Blocks the thread: use [`recv`](Self::recv) in async code.
    pub fn blocking_recv(&mut self) -> Result<T, RecvError> {
        crate::block_on::block_on(self.recv())
    }
}

/// The future of [`Receiver::recv`]; its wake-list entry goes when it completes or drops.
struct Recv<'a, T> {
    shared: &'a Shared<T>,
    next: &'a mut u64,
    key: Option<usize>,
}

impl<T: Clone> Future for Recv<'_, T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut state = this.shared.lock();
        let result = match read(this.next, &mut state) {
            Err(TryRecvError::Empty) => {
                state.waiting.register(&mut this.key, cx.waker());
                let ends = || (state.senders, state.receivers);
                let shared = this.shared;
                shared
                    .record
                    .note_pending(SyncKind::ChannelRecv, shared, ends, cx.waker());
                return Poll::Pending;
            }
            Ok(value) => Ok(value),
            Err(TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
            Err(TryRecvError::Closed) => Err(RecvError::Closed),
        };
        state.waiting.remove(&mut this.key);
        Poll::Ready(result)
    }
}

impl<T> Drop for Recv<'_, T> {
    fn drop(&mut self) {
        if self.key.is_some() {
            let mut state = self.shared.lock();
            self.shared.record.unregister();
            state.waiting.remove(&mut self.key);
        }
    }
}

/// Reads the value at `*next` for one receiver, or says why it cannot.
fn read<T: Clone>(next: &mut u64, state: &mut State<T>) -> Result<T, TryRecvError> {
    let head = state.head();
    if *next < head {
        let lost = head - *next;
        *next = head;
        return Err(TryRecvError::Lagged(lost));
    }
    if *next == state.tail {
        return Err(if state.senders == 0 {
            TryRecvError::Closed
        } else {
            TryRecvError::Empty
        });
    }
    let slot = &mut state.ring[(*next - head) as usize];
    let value = if slot.remaining == 1 {
        state.queued -= 1;
        slot.value.take()
    } else {
        slot.value.clone()
    };
    slot.remaining -= 1;
    *next += 1;
    Ok(value.expect("a slot owed to a receiver holds its value"))
}

impl<T> Receiver<T> {
    /// Creates a receiver that gets every value sent from now on (not the values this one
    /// has still to read).
    pub fn resubscribe(&self) -> Self {
        let mut state = self.shared.lock();
        self.shared.new_receiver(&mut state)
    }

    /// The number of values this receiver has still to read (including values it lost by
    /// lagging, which its next receive reports).
    pub fn len(&self) -> usize {
        (self.shared.lock().tail - self.next) as usize
    }

    /// Whether this receiver has nothing to read now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let freed = {
            let mut state = self.shared.lock();
            state.receivers -= 1;
            self.shared.publish_ends(&state);
            state.forget_reader(self.next)
        };
        drop(freed);
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}
