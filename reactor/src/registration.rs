//! `Registration`: one I/O source's link to the reactor, the type `net` builds sockets on.
//!
//! Owns a slab slot (see `sources.rs`) and the shared readiness/waker state of the source.
//! Invariants:
//! - while `registered`, the slot holds this registration's `ScheduledIo`;
//! - dropping (or `deregister`) frees the slot, closes the state, and releases the waiter
//!   count of every waker still stored, so a dropped socket never keeps the deadlock
//!   detector from firing;
//! - readiness is cleared only on `WouldBlock` (`clear_readiness`, `try_io`, `poll_*_io`).
//!
//! Two ways to wait (see `scheduled_io.rs`): the stateless `poll_*_ready(cx)` /
//! `poll_*_io(cx)`, which share one anonymous entry per direction (the last poller's waker,
//! kept until the next event for the direction), and an [`IoWaiter`] (`read_waiter`,
//! `read_io`, `readable`, …), owned by the waiting future, whose entry goes when the future
//! does; any number of `IoWaiter`s may wait in one direction, and each is woken.
//!
//! A registration does not own the OS source, so it cannot deregister it from mio on drop;
//! closing the fd does that. `PollEvented` owns both and deregisters explicitly.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::task::{ready, Context, Poll, Waker};

use mio::event::Source;
use mio::Interest;

use crate::coop;
use crate::handle::Handle;
use crate::io_waiter::IoWaiter;
use crate::readiness::{Closed, Direction, Observed, Ready, ReadyEvent};
use crate::scheduled_io::{ScheduledIo, Waiting};
use crate::wait::{self, WaitReason};

/// A source registered with the reactor: readiness plus the tasks waiting on it.
///
/// Any number of tasks may wait in each direction (reading, writing) through the async
/// methods or an [`IoWaiter`]; an event wakes every task waiting in the directions it makes
/// ready.
///
/// Prefer the async methods ([`read_io`](Registration::read_io),
/// [`readable`](Registration::readable), …) or an [`IoWaiter`] where the caller is a
/// future: a cancelled wait then withdraws its waker at once. The `poll_*` methods keep no
/// state: each direction has one slot for them, holding the waker of the most recent
/// stateless poll only (as tokio's `poll_read_ready`), which stays (counted as one waiter)
/// until the next event for its direction or this registration's drop, even if the future
/// that polled is gone.
pub struct Registration {
    handle: Handle,
    pub(crate) shared: Arc<ScheduledIo>,
    registered: bool,
    /// The source's descriptor, named in wait reasons (fits the struct's padding).
    fd: RawFd,
}

impl Registration {
    /// Registers `source` with the current reactor ([`Handle::current`]).
    ///
    /// # Panics
    ///
    /// When no runtime is entered on this thread (see [`Handle::current`]).
    #[track_caller]
    pub fn new(
        source: &mut (impl Source + AsRawFd),
        interest: Interest,
    ) -> io::Result<Registration> {
        Registration::with_handle(&Handle::current(), source, interest)
    }

    /// Registers `source` with the reactor of `handle`.
    ///
    /// Fails with "the runnel runtime has shut down" after [`Handle::shutdown`].
    pub fn with_handle(
        handle: &Handle,
        source: &mut (impl Source + AsRawFd),
        interest: Interest,
    ) -> io::Result<Registration> {
        let fd = source.as_raw_fd();
        let shared = handle.inner.sources.insert()?;
        // Registered outside the slab lock: epoll_ctl is a syscall, and no event can
        // arrive for the token before this call anyway.
        if let Err(e) = handle
            .inner
            .registry
            .register(source, shared.token(), interest)
        {
            handle.inner.sources.remove(&shared);
            return Err(e);
        }
        Ok(Registration {
            handle: handle.clone(),
            shared,
            registered: true,
            fd,
        })
    }

    /// The reactor this source is registered with.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The mio token this source is registered under.
    #[cfg(test)]
    pub(crate) fn token(&self) -> mio::Token {
        self.shared.token()
    }

    /// Ready when the source may be read (or is read-closed, or has an error); otherwise
    /// stores the task's waker in the read direction's one stateless slot, replacing the
    /// waker an earlier `poll_read_ready` / `poll_read_io` left there: **only the waker of
    /// the most recent call is woken**, so two tasks must not wait on one direction this
    /// way (use [`read_io`](Registration::read_io) or [`read_waiter`] for that). Errors once
    /// the runtime shut down or after `deregister`. Consumes one unit of the task's
    /// cooperative budget.
    ///
    /// Stateless: the stored waker stays until the next read event or this registration's
    /// drop, even if the caller stops polling (see [`read_waiter`] for a wait that can be
    /// withdrawn).
    ///
    /// [`read_waiter`]: Registration::read_waiter
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<ReadyEvent>> {
        self.poll_ready(Direction::Read, cx)
    }

    /// Like [`poll_read_ready`](Registration::poll_read_ready), for writing.
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<ReadyEvent>> {
        self.poll_ready(Direction::Write, cx)
    }

    fn poll_ready(
        &self,
        direction: Direction,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<ReadyEvent>> {
        ready!(coop::poll_proceed(cx));
        let poll = self.shared.poll_ready(
            direction,
            cx.waker(),
            Waiting::Anonymous,
            &self.handle.inner.counts,
        );
        if poll.is_pending() {
            self.note_wait(direction);
        }
        poll
    }

    /// Records what the polling task now waits on (see `wait`).
    pub(crate) fn note_wait(&self, direction: Direction) {
        let fd = self.fd;
        wait::note(match direction {
            Direction::Read => WaitReason::Readable { fd },
            Direction::Write => WaitReason::Writable { fd },
        });
    }

    /// A waiter for read readiness that withdraws its waker when dropped (see [`IoWaiter`]).
    pub fn read_waiter(&self) -> IoWaiter<'_> {
        IoWaiter::new(self, Direction::Read)
    }

    /// A waiter for write readiness that withdraws its waker when dropped.
    pub fn write_waiter(&self) -> IoWaiter<'_> {
        IoWaiter::new(self, Direction::Write)
    }

    /// Waits until the source may be read (as [`poll_read_ready`]); dropping the future
    /// withdraws its waker.
    ///
    /// [`poll_read_ready`]: Registration::poll_read_ready
    pub async fn readable(&self) -> io::Result<ReadyEvent> {
        self.read_waiter().ready().await
    }

    /// Waits until the source may be written; dropping the future withdraws its waker.
    pub async fn writable(&self) -> io::Result<ReadyEvent> {
        self.write_waiter().ready().await
    }

    /// Waits for read readiness and runs `f` until it does not return `WouldBlock` (as
    /// [`poll_read_io`](Registration::poll_read_io)); dropping the future withdraws its
    /// waker. `f` must be a non-blocking operation.
    pub async fn read_io<R>(&self, f: impl FnMut() -> io::Result<R>) -> io::Result<R> {
        self.read_waiter().io(f).await
    }

    /// Like [`read_io`](Registration::read_io), for writing.
    pub async fn write_io<R>(&self, f: impl FnMut() -> io::Result<R>) -> io::Result<R> {
        self.write_waiter().io(f).await
    }

    /// The operation that `event` allowed returned `WouldBlock`: forget that readiness
    /// (unless a newer event arrived meanwhile).
    pub fn clear_readiness(&self, event: ReadyEvent) {
        self.shared.readiness.clear(event);
    }

    /// Runs `f` if the source is ready for `interest` now, without waiting. Returns
    /// `WouldBlock` without calling `f` when it is not; clears readiness when `f` returns
    /// `WouldBlock`.
    pub fn try_io<R>(
        &self,
        interest: Interest,
        f: impl FnOnce() -> io::Result<R>,
    ) -> io::Result<R> {
        let event = match self.shared.observe(Ready::mask_of(interest)) {
            Observed::Ready(event) => event,
            Observed::NotReady => return Err(io::ErrorKind::WouldBlock.into()),
            Observed::Closed(closed) => return Err(closed.to_error()),
        };
        let result = f();
        if is_would_block(&result) {
            self.clear_readiness(event);
        }
        result
    }

    /// Waits for read readiness and runs `f`, looping while `f` returns `WouldBlock`
    /// (clearing the readiness it had each time). `f` must be a non-blocking operation.
    /// Waits like [`poll_read_ready`](Registration::poll_read_ready): only the most recent
    /// stateless poller of the direction is woken.
    pub fn poll_read_io<R>(
        &self,
        cx: &mut Context<'_>,
        mut f: impl FnMut() -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        loop {
            let event = ready!(self.poll_read_ready(cx))?;
            let result = f();
            if !is_would_block(&result) {
                return Poll::Ready(result);
            }
            self.clear_readiness(event);
        }
    }

    /// Like [`poll_read_io`](Registration::poll_read_io), for writing.
    pub fn poll_write_io<R>(
        &self,
        cx: &mut Context<'_>,
        mut f: impl FnMut() -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        loop {
            let event = ready!(self.poll_write_ready(cx))?;
            let result = f();
            if !is_would_block(&result) {
                return Poll::Ready(result);
            }
            self.clear_readiness(event);
        }
    }

    /// Deregisters `source` from mio and frees this registration's slot now (instead of on
    /// drop). Later polls return an error.
    pub fn deregister(&mut self, source: &mut impl Source) -> io::Result<()> {
        let result = if self.registered {
            self.handle.inner.registry.deregister(source)
        } else {
            Ok(())
        };
        self.release(Closed::Deregistered);
        result
    }

    /// Frees the slot and drops the stored wakers, releasing their waiter counts.
    fn release(&mut self, why: Closed) {
        if !self.registered {
            return;
        }
        self.registered = false;
        let inner = &self.handle.inner;
        inner.sources.remove(&self.shared);
        // No task waits on a registration that is being dropped or deregistered through
        // `&mut self`: these wakers are leftovers of futures that stopped polling. Drop them.
        let mut wakers: Vec<Waker> = Vec::new();
        let taken = self.shared.close(why, &mut wakers);
        drop(wakers);
        inner.counts.sub_io(taken);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.release(Closed::Deregistered);
    }
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("token", &self.shared.token())
            .field("registered", &self.registered)
            .finish_non_exhaustive()
    }
}

pub(crate) fn is_would_block<R>(result: &io::Result<R>) -> bool {
    matches!(result, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}
