//! The futures behind the async methods of both mpsc flavours. Each one undoes its
//! registration when dropped mid-wait, which is what makes the methods cancel-safe and
//! keeps the channel from holding the waker of a task that stopped waiting.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::chan::Chan;
use super::error::SendError;

/// Waits for a free slot (in FIFO order with other waiting senders) and reserves it.
pub(super) struct ReserveSlot<'a, T> {
    pub(super) chan: &'a Chan<T>,
    pub(super) key: Option<usize>,
}

impl<T> Future for ReserveSlot<'_, T> {
    type Output = Result<(), SendError<()>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.chan.poll_reserve(&mut this.key, cx)
    }
}

impl<T> Drop for ReserveSlot<'_, T> {
    fn drop(&mut self) {
        self.chan.cancel_reserve(&mut self.key);
    }
}

/// Sends one message on a bounded channel: a free slot now, else a place in the FIFO of
/// waiting senders. Dropped while waiting, it leaves the queue (passing on a slot granted
/// to it) and drops its value unsent.
pub(super) struct SendValue<'a, T> {
    pub(super) chan: &'a Chan<T>,
    pub(super) key: Option<usize>,
    pub(super) value: Option<T>,
}

// The value is never pinned: it is moved out by value when the send completes.
impl<T> Unpin for SendValue<'_, T> {}

impl<T> Future for SendValue<'_, T> {
    type Output = Result<(), SendError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.chan.poll_send(&mut this.key, &mut this.value, cx)
    }
}

impl<T> Drop for SendValue<'_, T> {
    fn drop(&mut self) {
        // Checked here, inline: nearly every send completes, and an out-of-line call per
        // message that finds nothing to undo cost ~20 instructions (callgrind, fan-in).
        if self.key.is_some() {
            self.chan.cancel_reserve(&mut self.key);
        }
    }
}

/// Receives one message.
pub(super) struct Recv<'a, T> {
    pub(super) chan: &'a Chan<T>,
    pub(super) waiting: bool,
}

impl<T> Future for Recv<'_, T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        let poll = this.chan.poll_recv(cx);
        this.waiting = poll.is_pending();
        poll
    }
}

impl<T> Drop for Recv<'_, T> {
    fn drop(&mut self) {
        if self.waiting {
            self.chan.cancel_recv();
        }
    }
}

/// Receives up to `limit` messages at once, appending them to `buffer`.
pub(super) struct RecvMany<'a, T> {
    pub(super) chan: &'a Chan<T>,
    pub(super) buffer: &'a mut Vec<T>,
    pub(super) limit: usize,
    pub(super) waiting: bool,
}

impl<T> Future for RecvMany<'_, T> {
    type Output = usize;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        let this = self.get_mut();
        if this.limit == 0 {
            return Poll::Ready(0);
        }
        let poll = this.chan.poll_recv_into(cx, this.buffer, this.limit);
        this.waiting = poll.is_pending();
        poll
    }
}

impl<T> Drop for RecvMany<'_, T> {
    fn drop(&mut self) {
        if self.waiting {
            self.chan.cancel_recv();
        }
    }
}

/// Waits until the receiver is closed or dropped.
pub(super) struct Closed<'a, T> {
    pub(super) chan: &'a Chan<T>,
    pub(super) key: Option<usize>,
}

impl<T> Future for Closed<'_, T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.chan.poll_closed(&mut this.key, cx)
    }
}

impl<T> Drop for Closed<'_, T> {
    fn drop(&mut self) {
        self.chan.cancel_closed(&mut self.key);
    }
}
