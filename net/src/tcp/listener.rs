//! `TcpListener`: accepts connections; accepted streams join the listener's reactor.
//!
//! Accept errors are returned as they are, readiness untouched: only `WouldBlock` clears
//! readiness (reactor rule), so after `EMFILE` the next `accept` retries at once. A server
//! loop must therefore back off on such errors instead of spinning (see `accept`'s docs).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_core::Stream;
use mio::Interest;
use runnel_reactor::PollEvented;

use super::stream::TcpStream;
use crate::ToSocketAddrs;

/// A TCP socket listening for connections.
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// use runnel_net::TcpListener;
/// let listener = TcpListener::bind("127.0.0.1:0").await?;
/// println!("listening on {}", listener.local_addr()?);
/// let (stream, peer) = listener.accept().await?;
/// # drop((stream, peer)); Ok(()) }
/// ```
pub struct TcpListener {
    io: PollEvented<mio::net::TcpListener>,
}

impl TcpListener {
    /// Binds to `addr` (IPv4 or IPv6), trying each address it resolves to in turn; returns
    /// the last error if none works. Sets `SO_REUSEADDR` (on Unix) and a backlog of 1024, as
    /// mio does; use [`TcpSocket`](crate::TcpSocket) for other options. A host name is
    /// resolved on the blocking pool (see [`lookup_host`](crate::lookup_host)).
    ///
    /// Cancel safety: cancel-safe. With an IP address it completes on its first poll; with
    /// a host name, dropping the future before the lookup finished binds nothing.
    ///
    /// # Panics
    ///
    /// When no runtime is entered on this thread.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        crate::addr::try_each(addr, |addr| {
            TcpListener::new(mio::net::TcpListener::bind(addr)?)
        })
        .await
    }

    pub(crate) fn new(io: mio::net::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener {
            io: PollEvented::new(io, Interest::READABLE)?,
        })
    }

    /// Waits for a connection and returns it with the peer's address.
    ///
    /// Cancel safety: cancel-safe — if the future is dropped, no connection was taken.
    ///
    /// Any number of tasks may accept on one listener (share it in an `Arc`); each
    /// connection goes to one of them.
    ///
    /// # Errors and backing off
    ///
    /// Errors from `accept(2)` are returned unchanged. Some of them concern the process,
    /// not the connection: `EMFILE`/`ENFILE` (out of file descriptors), `ENOBUFS`/`ENOMEM`.
    /// The pending connection stays in the backlog and the listener stays ready, so a loop
    /// that retries at once spins at full CPU. Back off instead, e.g.:
    ///
    /// ```no_run
    /// # async fn f(listener: runnel_net::TcpListener) {
    /// use std::time::Duration;
    /// use runnel_reactor::time::sleep;
    ///
    /// fn is_resource_exhaustion(e: &std::io::Error) -> bool {
    ///     // EMFILE, ENFILE, ENOBUFS, ENOMEM (Linux numbering; use libc's constants)
    ///     matches!(e.raw_os_error(), Some(24 | 23 | 105 | 12))
    /// }
    ///
    /// let mut backoff = Duration::from_millis(1);
    /// loop {
    ///     match listener.accept().await {
    ///         Ok((stream, _)) => {
    ///             backoff = Duration::from_millis(1);
    ///             drop(stream); // hand it to a task
    ///         }
    ///         Err(e) if is_resource_exhaustion(&e) => {
    ///             sleep(backoff).await; // let connections close, fds come back
    ///             backoff = (backoff * 2).min(Duration::from_secs(1));
    ///         }
    ///         Err(e) => eprintln!("accept: {e}"), // per-connection error: just go on
    ///     }
    /// }
    /// # }
    /// ```
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let registration = self.io.registration();
        let (stream, addr) = registration.read_io(|| self.io.accept()).await?;
        Ok((TcpStream::with_handle(registration.handle(), stream)?, addr))
    }

    /// Polls for a connection (see [`accept`](TcpListener::accept)). Stateless: if the
    /// caller stops polling, its waker stays stored until the listener's next event. Only
    /// the task of the most recent `poll_accept` is woken (several tasks accepting on one
    /// listener should use [`accept`](TcpListener::accept)).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let registration = self.io.registration();
        let (stream, addr) = ready!(registration.poll_read_io(cx, || self.io.accept()))?;
        Poll::Ready(Ok((
            TcpStream::with_handle(registration.handle(), stream)?,
            addr,
        )))
    }

    /// A stream of accepted connections; it never ends. Same error rules as
    /// [`accept`](TcpListener::accept): back off on resource exhaustion.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// Wraps a listening `std` listener, putting it in non-blocking mode.
    ///
    /// # Panics
    ///
    /// When no runtime is entered on this thread.
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        TcpListener::new(mio::net::TcpListener::from_std(listener))
    }

    /// Deregisters the listener and returns it as a `std` listener, still non-blocking.
    pub fn into_std(self) -> io::Result<std::net::TcpListener> {
        Ok(self.io.into_inner()?.into())
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// Sets `IP_TTL` for accepted connections.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.set_ttl(ttl)
    }

    /// `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.ttl()
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.io.get_ref().fmt(f)
    }
}

/// Stream of connections from [`TcpListener::incoming`].
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Stream for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.listener
            .poll_accept(cx)
            .map(|result| Some(result.map(|(stream, _)| stream)))
    }
}
