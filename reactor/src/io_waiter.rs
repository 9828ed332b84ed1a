//! `IoWaiter`: one future's own place in a source's waiter list for one direction.
//!
//! The stateless `Registration::poll_*_ready(cx)` cannot tell when the future that polled
//! goes away, so its entry (and its waiter count) stays until the next event or the
//! source's close, and there is one such entry per direction: a second stateless poller
//! replaces the first. An `IoWaiter` lives inside the future instead, holds the key of its
//! entry (`scheduled_io.rs`), and removes the entry when it finds readiness or is dropped.
//! That keeps the io waiter count exact for a cancelled operation (a lost `select!`, an
//! expired `timeout`), so the deadlock detector can still fire afterwards.
//!
//! Invariants:
//! - `key` is `Some` while this waiter may have an entry that nobody else will take out
//!   (the driver may have taken it since: removal is by key and does nothing then); it is
//!   `None` once the waiter has no entry, or once the driver is bound to take it
//!   ("forgetting an entry" in `scheduled_io.rs`);
//! - the waiter borrows its `Registration`, so the registration (and with it the slab slot
//!   and the counts) outlives every entry a waiter can remove.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::task::{ready, Context, Poll};

use crate::coop;
use crate::readiness::{Direction, ReadyEvent};
use crate::registration::{is_would_block, Registration};
use crate::scheduled_io::{WaiterKey, Waiting};

/// Waits for one direction of a [`Registration`]; any number of waiters may wait at once
/// and each is woken. Dropping it withdraws its waker (and its waiter count) at once.
///
/// Made by [`Registration::read_waiter`] / [`Registration::write_waiter`]; the async
/// [`Registration::read_io`] and friends use one for the length of the call.
///
/// ```
/// use std::task::{Context, Waker};
/// use runnel_reactor::{Driver, PollEvented};
///
/// let (_driver, handle) = Driver::new()?;
/// let _guard = handle.enter();
/// let (a, _b) = mio::net::UnixStream::pair()?;
/// let a = PollEvented::new(a, mio::Interest::READABLE)?;
/// let mut cx = Context::from_waker(Waker::noop());
/// let mut first = a.registration().read_waiter();
/// let mut second = a.registration().read_waiter();
/// assert!(first.poll_ready(&mut cx).is_pending());
/// assert!(second.poll_ready(&mut cx).is_pending());
/// assert_eq!(handle.waiters().io, 2); // both are stored, both would be woken
/// drop(first);
/// assert_eq!(handle.waiters().io, 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[must_use = "a waiter does nothing unless polled"]
pub struct IoWaiter<'a> {
    registration: &'a Registration,
    direction: Direction,
    key: Option<WaiterKey>,
}

impl<'a> IoWaiter<'a> {
    pub(crate) fn new(registration: &'a Registration, direction: Direction) -> IoWaiter<'a> {
        IoWaiter {
            registration,
            direction,
            key: None,
        }
    }

    /// Ready when the source is ready in this waiter's direction (see
    /// [`Registration::poll_read_ready`] for what that means); otherwise stores or updates
    /// this waiter's waker. Consumes one unit of the task's cooperative budget.
    #[inline]
    pub fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<ReadyEvent>> {
        ready!(coop::poll_proceed(cx));
        let poll = self.registration.shared.poll_ready(
            self.direction,
            cx.waker(),
            Waiting::Keyed(&mut self.key),
            &self.registration.handle().inner.counts,
        );
        if poll.is_pending() {
            self.registration.note_wait(self.direction);
        }
        poll
    }

    /// Waits for readiness and runs `f`, looping while `f` returns `WouldBlock` (clearing
    /// the readiness it had each time), like [`Registration::poll_read_io`].
    pub fn poll_io<R>(
        &mut self,
        cx: &mut Context<'_>,
        mut f: impl FnMut() -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        loop {
            let event = ready!(self.poll_ready(cx))?;
            let result = f();
            if !is_would_block(&result) {
                return Poll::Ready(result);
            }
            self.registration.clear_readiness(event);
        }
    }

    /// Waits for readiness (async form of [`poll_ready`](IoWaiter::poll_ready)).
    pub async fn ready(&mut self) -> io::Result<ReadyEvent> {
        poll_fn(|cx| self.poll_ready(cx)).await
    }

    /// Waits and runs `f` (async form of [`poll_io`](IoWaiter::poll_io)).
    pub async fn io<R>(&mut self, mut f: impl FnMut() -> io::Result<R>) -> io::Result<R> {
        poll_fn(|cx| self.poll_io(cx, &mut f)).await
    }
}

impl Drop for IoWaiter<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.registration.shared.remove_waiter(
                self.direction,
                key,
                &self.registration.handle().inner.counts,
            );
        }
    }
}

impl fmt::Debug for IoWaiter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoWaiter")
            .field("registration", self.registration)
            .field("direction", &self.direction)
            .field("key", &self.key)
            .finish()
    }
}
