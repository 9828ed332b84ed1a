//! The unbounded channel's handles: [`UnboundedSender`] (sending never waits) and
//! [`UnboundedReceiver`]. Same shared state as the bounded channel, with an unreachable
//! bound, so no sender ever waits and no permit is ever handed out.

use std::fmt;
use std::panic::Location;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::chan::Chan;
use super::error::{SendError, TryRecvError};
use super::wait::{Closed, Recv, RecvMany};
use crate::block_on::block_on;

/// Creates a channel with no bound: sending never waits, so memory grows as long as the
/// receiver falls behind.
///
/// ```
/// # futures::executor::block_on(async {
/// let (tx, mut rx) = runnel_sync::mpsc::unbounded_channel();
/// tx.send(1).unwrap();
/// tx.send(2).unwrap();
/// assert_eq!(rx.recv().await, Some(1));
/// # });
/// ```
#[track_caller]
pub fn unbounded_channel<T>() -> (UnboundedSender<T>, UnboundedReceiver<T>) {
    let chan = Arc::new(Chan::new(usize::MAX, Location::caller()));
    (
        UnboundedSender { chan: chan.clone() },
        UnboundedReceiver { chan },
    )
}

/// Sends messages to an [`UnboundedReceiver`] without waiting.
pub struct UnboundedSender<T> {
    chan: Arc<Chan<T>>,
}

/// Receives the messages of an unbounded channel, in the order they were sent.
pub struct UnboundedReceiver<T> {
    chan: Arc<Chan<T>>,
}

impl<T> UnboundedSender<T> {
    /// Sends `value` at once. Fails (returning it) if the receiver is closed or dropped.
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.chan.send_unbounded(value)
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

    /// Whether the receiver is closed or dropped.
    pub fn is_closed(&self) -> bool {
        self.chan.is_closed()
    }

    /// Whether both senders belong to the same channel.
    pub fn same_channel(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }

    /// Makes a sender that does not keep the channel open: the receiver sees the end once
    /// every strong sender is dropped, whatever weak senders remain.
    pub fn downgrade(&self) -> WeakUnboundedSender<T> {
        WeakUnboundedSender {
            chan: self.chan.clone(),
        }
    }

    /// The number of live (strong) senders.
    pub fn strong_count(&self) -> usize {
        self.chan.sender_count()
    }
}

/// A sender that does not keep the channel open (from [`UnboundedSender::downgrade`]);
/// [`upgrade`](Self::upgrade) it to send.
pub struct WeakUnboundedSender<T> {
    chan: Arc<Chan<T>>,
}

impl<T> WeakUnboundedSender<T> {
    /// A sender, if any sender is still alive (otherwise the channel has ended).
    pub fn upgrade(&self) -> Option<UnboundedSender<T>> {
        self.chan.try_add_sender().then(|| UnboundedSender {
            chan: self.chan.clone(),
        })
    }

    /// The number of live (strong) senders.
    pub fn strong_count(&self) -> usize {
        self.chan.sender_count()
    }
}

impl<T> Clone for WeakUnboundedSender<T> {
    fn clone(&self) -> Self {
        WeakUnboundedSender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> fmt::Debug for WeakUnboundedSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakUnboundedSender")
            .finish_non_exhaustive()
    }
}

impl<T> Clone for UnboundedSender<T> {
    fn clone(&self) -> Self {
        self.chan.add_sender();
        UnboundedSender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for UnboundedSender<T> {
    fn drop(&mut self) {
        self.chan.drop_sender();
    }
}

impl<T> fmt::Debug for UnboundedSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnboundedSender").finish_non_exhaustive()
    }
}

impl<T> UnboundedReceiver<T> {
    /// Receives the next message, waiting while the channel is empty; `None` once it is
    /// empty and every sender is dropped (or [`close`](Self::close) was called).
    ///
    /// Cancel safety: cancel-safe: a message is taken only when the future completes.
    pub async fn recv(&mut self) -> Option<T> {
        Recv {
            chan: &self.chan,
            waiting: false,
        }
        .await
    }

    /// Waits for at least one message, then appends up to `limit` of them to `buffer` and
    /// returns how many; 0 when `limit` is 0 or the channel has ended.
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
    /// empty. Blocks the thread: use [`recv`](Self::recv) in async code.
    pub fn blocking_recv(&mut self) -> Option<T> {
        block_on(self.recv())
    }

    /// Polls for the next message (see [`Receiver::poll_recv`](super::Receiver::poll_recv)).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.chan.poll_recv(cx)
    }

    /// Closes the channel for sending; buffered messages can still be received.
    pub fn close(&mut self) {
        self.chan.close_rx();
    }

    /// Whether every sender is dropped or [`close`](Self::close) was called.
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
}

impl<T> Drop for UnboundedReceiver<T> {
    fn drop(&mut self) {
        self.chan.drop_rx();
    }
}

impl<T> fmt::Debug for UnboundedReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnboundedReceiver")
            .field("len", &self.len())
            .finish()
    }
}
