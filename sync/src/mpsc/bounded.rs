//! The bounded channel's handles: [`Sender`], [`Receiver`], [`Permit`], [`OwnedPermit`].
//! All the state and its invariants live in [`Chan`](super::chan); these types only count
//! senders and turn the channel's poll functions into tokio-shaped methods.

use std::fmt;
use std::panic::Location;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::chan::Chan;
use super::error::{SendError, TryRecvError, TrySendError};
use super::wait::{Closed, Recv, RecvMany, ReserveSlot, SendValue};
use crate::block_on::block_on;

/// The largest buffer a bounded channel accepts (tokio's limit too).
const MAX_BUFFER: usize = usize::MAX >> 3;

/// Creates a bounded channel holding at most `buffer` messages; a sender waits while it is
/// full.
///
/// # Panics
///
/// If `buffer` is 0 (a rendezvous channel is not supported: use `channel(1)`), or larger
/// than `usize::MAX >> 3`.
///
/// ```
/// # futures::executor::block_on(async {
/// let (tx, mut rx) = runnel_sync::mpsc::channel(16);
/// tx.send("hello").await.unwrap();
/// assert_eq!(rx.recv().await, Some("hello"));
/// # });
/// ```
#[track_caller]
pub fn channel<T>(buffer: usize) -> (Sender<T>, Receiver<T>) {
    assert!(
        buffer > 0,
        "mpsc bounded channel requires buffer > 0 (use a buffer of at least 1)"
    );
    assert!(
        buffer <= MAX_BUFFER,
        "mpsc bounded channel buffer of {buffer} is too large (at most usize::MAX >> 3)"
    );
    let chan = Arc::new(Chan::new(buffer, Location::caller()));
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// Sends messages to the [`Receiver`] of a bounded channel. Cloning makes another sender;
/// the channel ends for the receiver once every sender is dropped.
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

/// Receives the messages of a bounded channel, in the order they were sent.
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

/// A reserved slot: [`send`](Permit::send) cannot fail or wait. Dropping it unused returns
/// the slot.
pub struct Permit<'a, T> {
    chan: &'a Chan<T>,
}

/// A reserved slot that owns its [`Sender`] (from [`Sender::reserve_owned`]), so it can be
/// moved into another task.
pub struct OwnedPermit<T> {
    sender: Option<Sender<T>>,
}

impl<T> Sender<T> {
    /// Sends `value`, waiting for a free slot while the channel is full. Waiting senders
    /// are served in the order they started waiting. Fails (returning `value`) if the
    /// receiver is closed or dropped.
    ///
    /// Cancel safety: cancel-safe in the sense that dropping the future never sends and
    /// loses no capacity (a slot granted to it is passed on), but `value` is dropped with
    /// it and the sender's place in the queue is lost. To keep the value, wait with
    /// [`reserve`](Self::reserve) and then send on the permit.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let (tx, mut rx) = runnel_sync::mpsc::channel(1);
    /// tx.send(1).await.unwrap();
    /// drop(rx);
    /// assert_eq!(tx.send(2).await.unwrap_err().0, 2);
    /// # });
    /// ```
    pub async fn send(&self, value: T) -> Result<(), SendError<T>> {
        SendValue {
            chan: &self.chan,
            key: None,
            value: Some(value),
        }
        .await
    }

    /// Sends `value` if a slot is free now: [`TrySendError::Full`] if not (also when other
    /// senders are already waiting), [`TrySendError::Closed`] if the receiver is gone.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.chan.try_send(value)
    }

    /// Sends from synchronous code, parking the calling thread while the channel is full.
    ///
    /// Blocks the thread: do not call it from async code (a runtime worker would stop
    /// running other tasks); use [`send`](Self::send) there, or call it inside
    /// `spawn_blocking`.
    pub fn blocking_send(&self, value: T) -> Result<(), SendError<T>> {
        block_on(self.send(value))
    }

    /// Waits for a free slot and reserves it; the returned [`Permit`] sends without
    /// waiting. Fails if the receiver is closed or dropped.
    ///
    /// Cancel safety: cancel-safe. Dropping the future gives up the sender's place in the
    /// queue; a slot already granted to it is passed to the next waiter.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let (tx, mut rx) = runnel_sync::mpsc::channel(1);
    /// let permit = tx.reserve().await.unwrap();
    /// assert_eq!(tx.capacity(), 0);
    /// permit.send(7);
    /// assert_eq!(rx.recv().await, Some(7));
    /// # });
    /// ```
    pub async fn reserve(&self) -> Result<Permit<'_, T>, SendError<()>> {
        ReserveSlot {
            chan: &self.chan,
            key: None,
        }
        .await?;
        Ok(Permit { chan: &self.chan })
    }

    /// Reserves a slot if one is free now.
    pub fn try_reserve(&self) -> Result<Permit<'_, T>, TrySendError<()>> {
        self.chan.try_reserve()?;
        Ok(Permit { chan: &self.chan })
    }

    /// Like [`reserve`](Self::reserve), but the permit owns this sender and can be moved.
    ///
    /// Cancel safety: as [`reserve`](Self::reserve); the sender is dropped with the future.
    pub async fn reserve_owned(self) -> Result<OwnedPermit<T>, SendError<()>> {
        ReserveSlot {
            chan: &self.chan,
            key: None,
        }
        .await?;
        Ok(OwnedPermit { sender: Some(self) })
    }

    /// Like [`try_reserve`](Self::try_reserve), but the permit owns this sender. On
    /// failure the sender is returned inside the error.
    pub fn try_reserve_owned(self) -> Result<OwnedPermit<T>, TrySendError<Self>> {
        match self.chan.try_reserve() {
            Ok(()) => Ok(OwnedPermit { sender: Some(self) }),
            Err(TrySendError::Full(())) => Err(TrySendError::Full(self)),
            Err(TrySendError::Closed(())) => Err(TrySendError::Closed(self)),
        }
    }

    /// Completes when the receiver is closed or dropped.
    ///
    /// Cancel safety: cancel-safe.
    pub async fn closed(&self) {
        Closed {
            chan: &self.chan,
            key: None,
        }
        .await
    }

    /// Whether the receiver is closed or dropped (every send would fail).
    pub fn is_closed(&self) -> bool {
        self.chan.is_closed()
    }

    /// The number of free slots now: the buffer size minus buffered messages and
    /// outstanding permits.
    pub fn capacity(&self) -> usize {
        self.chan.capacity()
    }

    /// The buffer size the channel was created with.
    pub fn max_capacity(&self) -> usize {
        self.chan.bound()
    }

    /// Whether both senders belong to the same channel.
    pub fn same_channel(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }

    /// Makes a sender that does not keep the channel open: the receiver sees the end once
    /// every strong sender is dropped, whatever weak senders remain.
    pub fn downgrade(&self) -> WeakSender<T> {
        WeakSender {
            chan: self.chan.clone(),
        }
    }

    /// The number of live (strong) senders.
    pub fn strong_count(&self) -> usize {
        self.chan.sender_count()
    }
}

/// A sender that does not keep the channel open (from [`Sender::downgrade`]);
/// [`upgrade`](Self::upgrade) it to send.
pub struct WeakSender<T> {
    chan: Arc<Chan<T>>,
}

impl<T> WeakSender<T> {
    /// A sender, if any sender is still alive (otherwise the channel has ended).
    pub fn upgrade(&self) -> Option<Sender<T>> {
        self.chan.try_add_sender().then(|| Sender {
            chan: self.chan.clone(),
        })
    }

    /// The number of live (strong) senders.
    pub fn strong_count(&self) -> usize {
        self.chan.sender_count()
    }
}

impl<T> Clone for WeakSender<T> {
    fn clone(&self) -> Self {
        WeakSender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> fmt::Debug for WeakSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakSender").finish_non_exhaustive()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.add_sender();
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.chan.drop_sender();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("capacity", &self.capacity())
            .field("max_capacity", &self.max_capacity())
            .finish()
    }
}

impl<T> Permit<'_, T> {
    /// Sends `value` in the reserved slot. If the receiver was dropped meanwhile, the value
    /// is dropped (as in tokio); after `Receiver::close` it is still delivered.
    pub fn send(self, value: T) {
        let chan = self.chan;
        std::mem::forget(self);
        drop(chan.send_reserved(value));
    }
}

impl<T> Drop for Permit<'_, T> {
    fn drop(&mut self) {
        self.chan.release();
    }
}

impl<T> fmt::Debug for Permit<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").finish_non_exhaustive()
    }
}

impl<T> OwnedPermit<T> {
    /// Sends `value` in the reserved slot and gives the sender back.
    pub fn send(mut self, value: T) -> Sender<T> {
        let sender = self.sender.take().expect("permit not yet used");
        drop(sender.chan.send_reserved(value));
        sender
    }

    /// Returns the slot unused and gives the sender back.
    pub fn release(mut self) -> Sender<T> {
        let sender = self.sender.take().expect("permit not yet used");
        sender.chan.release();
        sender
    }
}

impl<T> Drop for OwnedPermit<T> {
    fn drop(&mut self) {
        if let Some(sender) = &self.sender {
            sender.chan.release();
        }
    }
}

impl<T> fmt::Debug for OwnedPermit<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPermit").finish_non_exhaustive()
    }
}

impl<T> Receiver<T> {
    /// Receives the next message, waiting while the channel is empty. Returns `None` once
    /// the channel is empty and can get no more messages: every sender is dropped, or
    /// [`close`](Self::close) was called and no permit is outstanding.
    ///
    /// Cancel safety: cancel-safe. A message is taken only when the future completes, so
    /// dropping it (say, in a `select!` whose other branch won) loses no message.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let (tx, mut rx) = runnel_sync::mpsc::channel(4);
    /// tx.send(1).await.unwrap();
    /// drop(tx);
    /// assert_eq!(rx.recv().await, Some(1));
    /// assert_eq!(rx.recv().await, None);
    /// # });
    /// ```
    pub async fn recv(&mut self) -> Option<T> {
        Recv {
            chan: &self.chan,
            waiting: false,
        }
        .await
    }

    /// Waits for at least one message, then appends up to `limit` buffered messages to
    /// `buffer` and returns how many. Returns 0 when `limit` is 0, or when the channel has
    /// ended (as [`recv`](Self::recv) returning `None`).
    ///
    /// Cancel safety: cancel-safe, as [`recv`](Self::recv).
    pub async fn recv_many(&mut self, buffer: &mut Vec<T>, limit: usize) -> usize {
        RecvMany {
            chan: &self.chan,
            buffer,
            limit,
            waiting: false,
        }
        .await
    }

    /// Receives a message if one is buffered now.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.chan.try_recv()
    }

    /// Receives from synchronous code, parking the calling thread while the channel is
    /// empty.
    ///
    /// Blocks the thread: do not call it from async code; use [`recv`](Self::recv) there.
    pub fn blocking_recv(&mut self) -> Option<T> {
        block_on(self.recv())
    }

    /// Polls for the next message: the building block of [`recv`](Self::recv) for manual
    /// `Future` or `Stream` implementations. Only the waker of the latest call is woken.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.chan.poll_recv(cx)
    }

    /// Closes the channel for sending: senders fail from now on (waiting ones too), while
    /// the messages already buffered and those of outstanding permits can still be
    /// received.
    pub fn close(&mut self) {
        self.chan.close_rx();
    }

    /// Whether the channel is closed: every sender is dropped or [`close`](Self::close) was
    /// called. Buffered messages may remain.
    pub fn is_closed(&self) -> bool {
        self.chan.is_rx_side_closed()
    }

    /// The number of buffered messages.
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// Whether no message is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of free slots now.
    pub fn capacity(&self) -> usize {
        self.chan.capacity()
    }

    /// The buffer size the channel was created with.
    pub fn max_capacity(&self) -> usize {
        self.chan.bound()
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.chan.drop_rx();
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("len", &self.len())
            .field("max_capacity", &self.max_capacity())
            .finish()
    }
}
