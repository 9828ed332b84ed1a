//! `PollEvented`: a mio source together with its `Registration`.
//!
//! Invariant: while a `PollEvented` holds its io, the io is registered with the reactor;
//! `into_inner` and `Drop` deregister it from mio before handing it out or closing it, so a
//! dup'ed fd can never keep delivering events for a freed slot.

use std::fmt;
use std::io;
use std::ops::Deref;
use std::os::fd::AsRawFd;

use mio::event::Source;
use mio::Interest;

use crate::handle::Handle;
use crate::registration::Registration;

/// An owned mio source registered with the reactor.
///
/// Dereferences to the io, so `net` can call `&mio::net::TcpStream` methods inside
/// [`Registration::poll_read_io`] and friends:
///
/// ```
/// use std::io::Read;
/// use std::task::Context;
/// use runnel_reactor::{Driver, PollEvented};
///
/// let (_driver, handle) = Driver::new()?;
/// let _guard = handle.enter();
/// let (a, _b) = mio::net::UnixStream::pair()?;
/// let a = PollEvented::new(a, mio::Interest::READABLE | mio::Interest::WRITABLE)?;
/// let mut buf = [0; 16];
/// let mut cx = Context::from_waker(std::task::Waker::noop());
/// // Nothing was written yet: the read is pending (and the waker is stored).
/// assert!(a.registration().poll_read_io(&mut cx, || (&*a).read(&mut buf)).is_pending());
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct PollEvented<E: Source> {
    io: Option<E>,
    registration: Registration,
}

impl<E: Source + AsRawFd> PollEvented<E> {
    /// Registers `io` with the current reactor.
    ///
    /// # Panics
    ///
    /// When no runtime is entered on this thread (see [`Handle::current`]).
    #[track_caller]
    pub fn new(io: E, interest: Interest) -> io::Result<PollEvented<E>> {
        PollEvented::with_handle(&Handle::current(), io, interest)
    }

    /// Registers `io` with the reactor of `handle`.
    pub fn with_handle(
        handle: &Handle,
        mut io: E,
        interest: Interest,
    ) -> io::Result<PollEvented<E>> {
        let registration = Registration::with_handle(handle, &mut io, interest)?;
        Ok(PollEvented {
            io: Some(io),
            registration,
        })
    }
}

impl<E: Source> PollEvented<E> {
    /// The registration, for readiness polling.
    pub fn registration(&self) -> &Registration {
        &self.registration
    }

    /// The io.
    pub fn get_ref(&self) -> &E {
        self.io
            .as_ref()
            .expect("io is present until into_inner or drop")
    }

    /// Deregisters the io and returns it.
    pub fn into_inner(mut self) -> io::Result<E> {
        let mut io = self
            .io
            .take()
            .expect("io is present until into_inner or drop");
        self.registration.deregister(&mut io)?;
        Ok(io)
    }
}

impl<E: Source> Deref for PollEvented<E> {
    type Target = E;
    fn deref(&self) -> &E {
        self.get_ref()
    }
}

impl<E: Source> Drop for PollEvented<E> {
    fn drop(&mut self) {
        if let Some(mut io) = self.io.take() {
            // Nothing to report an error to; closing the fd below removes it from epoll anyway.
            let _ = self.registration.deregister(&mut io);
        }
    }
}

impl<E: Source + fmt::Debug> fmt::Debug for PollEvented<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PollEvented")
            .field("io", &self.io)
            .field("registration", &self.registration)
            .finish()
    }
}
