//! `TcpStream`: a connected TCP socket registered with the reactor.
//!
//! All I/O goes through the `*_priv` methods (shared with the split halves): wait for
//! readiness, try the syscall, clear readiness on `WouldBlock` and wait again. The async
//! ones wait through an `IoWaiter` (`Registration::read_io`), which withdraws its waker when
//! the future is dropped; the `poll_*` ones (behind `AsyncRead`/`AsyncWrite`) keep no state.
//! The halves only borrow or share the stream; reading and writing use separate waiter
//! lists of the one registration, so a reader task and a writer task never disturb each
//! other.

use std::fmt;
use std::future::poll_fn;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures_io::{AsyncRead, AsyncWrite};
use mio::Interest;
use runnel_reactor::{Handle, PollEvented, Ready};
use socket2::SockRef;

use super::split::{self, ReadHalf, WriteHalf};
use super::split_owned::{self, OwnedReadHalf, OwnedWriteHalf};
use crate::ToSocketAddrs;

/// A TCP connection.
///
/// Read and write with the inherent async methods or through `futures_io::AsyncRead` /
/// `AsyncWrite` (so `futures::io::AsyncReadExt` and friends work). To read in one task and
/// write in another, [`split`](TcpStream::split) or [`into_split`](TcpStream::into_split).
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// use runnel_net::TcpStream;
/// let mut stream = TcpStream::connect("127.0.0.1:8080").await?;
/// stream.write_all(b"hello").await?;
/// let mut buf = [0; 5];
/// stream.read_exact(&mut buf).await?;
/// # Ok(()) }
/// ```
pub struct TcpStream {
    io: PollEvented<mio::net::TcpStream>,
}

impl TcpStream {
    /// Connects to `addr`, trying each address it resolves to in turn (like
    /// `std::net::TcpStream::connect`); returns the last error if none accepts. A host name
    /// is resolved on the blocking pool (see [`lookup_host`](crate::lookup_host)).
    ///
    /// Cancel safety: dropping the future abandons the attempt and closes its socket.
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let mut last = None;
        for addr in crate::addr::resolve(addr).await? {
            let attempt = async {
                let stream = TcpStream::new(mio::net::TcpStream::connect(addr)?)?;
                stream.wait_connected().await?;
                Ok(stream)
            };
            match attempt.await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("resolve returns at least one address"))
    }

    /// Registers a (connected or connecting, non-blocking) mio stream with the current
    /// reactor.
    pub(crate) fn new(io: mio::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream {
            io: PollEvented::new(io, Interest::READABLE | Interest::WRITABLE)?,
        })
    }

    /// Registers a mio stream with the reactor of `handle`.
    pub(crate) fn with_handle(handle: &Handle, io: mio::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream {
            io: PollEvented::with_handle(handle, io, Interest::READABLE | Interest::WRITABLE)?,
        })
    }

    /// Waits until a non-blocking connect finished: writable, then no pending error and a
    /// peer address (mio's documented procedure; a writable event can be spurious).
    pub(crate) async fn wait_connected(&self) -> io::Result<()> {
        let mut waiter = self.io.registration().write_waiter();
        poll_fn(|cx| loop {
            let event = ready!(waiter.poll_ready(cx))?;
            if let Some(e) = self.io.take_error()? {
                return Poll::Ready(Err(e));
            }
            match self.io.peer_addr() {
                Ok(_) => return Poll::Ready(Ok(())),
                // Spurious wakeup: still connecting. But a closed or failed socket will never
                // connect, and its closed flag is never cleared: report instead of looping.
                Err(e)
                    if e.kind() == io::ErrorKind::NotConnected
                        && !event.ready().is_write_closed()
                        && !event.ready().is_error() =>
                {
                    self.io.registration().clear_readiness(event);
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        })
        .await
    }

    /// Wraps a connected `std` stream, putting it in non-blocking mode.
    ///
    /// # Panics
    ///
    /// When no runtime is entered on this thread.
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        TcpStream::new(mio::net::TcpStream::from_std(stream))
    }

    /// Deregisters the stream and returns it as a `std` stream, still in non-blocking mode
    /// (call `set_nonblocking(false)` for blocking use).
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        Ok(self.io.into_inner()?.into())
    }

    /// Reads into `buf`; `Ok(0)` means end of file (or an empty `buf`).
    ///
    /// Cancel safety: cancel-safe — if the future is dropped before completing, no data
    /// was read.
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_priv(buf).await
    }

    /// Reads exactly `buf.len()` bytes; `UnexpectedEof` if the stream ends first.
    ///
    /// Cancel safety: **not** cancel-safe — bytes read before cancellation are lost.
    pub fn read_exact<'a>(&'a mut self, buf: &'a mut [u8]) -> ReadExact<'a> {
        read_exact(self, buf)
    }

    /// Reads into `buf` without removing the data from the socket's receive queue.
    ///
    /// Cancel safety: cancel-safe.
    pub async fn peek(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.peek_priv(buf).await
    }

    /// Writes some of `buf`, returning how many bytes were written.
    ///
    /// Cancel safety: cancel-safe — if the future is dropped before completing, no data
    /// was written.
    pub async fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_priv(buf).await
    }

    /// Writes all of `buf`.
    ///
    /// Cancel safety: **not** cancel-safe — part of `buf` may have been written.
    pub fn write_all<'a>(&'a mut self, buf: &'a [u8]) -> WriteAll<'a> {
        write_all(self, buf)
    }

    /// Waits until the stream may be readable (it may still return `WouldBlock`). Any
    /// number of tasks may wait at once; all are woken.
    ///
    /// Cancel safety: cancel-safe.
    pub async fn readable(&self) -> io::Result<()> {
        self.io.registration().readable().await.map(drop)
    }

    /// Waits until the stream may be writable. Any number of tasks may wait at once.
    ///
    /// Cancel safety: cancel-safe.
    pub async fn writable(&self) -> io::Result<()> {
        self.io.registration().writable().await.map(drop)
    }

    /// Reads without waiting: `WouldBlock` if no data is ready.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io
            .registration()
            .try_io(Interest::READABLE, || (&*self.io).read(buf))
    }

    /// Writes without waiting: `WouldBlock` if the send buffer is full.
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.io
            .registration()
            .try_io(Interest::WRITABLE, || (&*self.io).write(buf))
    }

    /// Shuts down the read, write, or both halves (like `std`; it never blocks).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.shutdown(how)
    }

    /// Borrows the stream as a read half and a write half, usable concurrently (e.g. in
    /// `futures::join!`) within one task.
    ///
    /// With `futures::io::AsyncReadExt` in scope, `stream.split()` resolves to that trait's
    /// by-value `split` (method lookup tries by-value receivers first); write
    /// `TcpStream::split(&mut stream)` to get this one.
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        split::split(self)
    }

    /// Splits the stream into halves that can move to different tasks. Dropping the write
    /// half shuts down the write direction; [`OwnedReadHalf::reunite`] puts them back.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        split_owned::split(self)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.peer_addr()
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm when `true`).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.io.set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.nodelay()
    }

    /// Sets `SO_LINGER`. Note that with a linger time, closing the socket may block the
    /// closing thread in the kernel for that long.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        SockRef::from(&*self.io).set_linger(linger)
    }

    /// `SO_LINGER`.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        SockRef::from(&*self.io).linger()
    }

    /// Sets `SO_KEEPALIVE` (the OS default idle time and interval apply).
    pub fn set_keepalive(&self, keepalive: bool) -> io::Result<()> {
        SockRef::from(&*self.io).set_keepalive(keepalive)
    }

    /// Whether `SO_KEEPALIVE` is set.
    pub fn keepalive(&self) -> io::Result<bool> {
        SockRef::from(&*self.io).keepalive()
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.set_ttl(ttl)
    }

    /// `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.ttl()
    }

    /// Takes the pending socket error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.take_error()
    }

    pub(crate) async fn read_priv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io
            .registration()
            .read_io(|| (&*self.io).read(buf))
            .await
    }

    pub(crate) async fn peek_priv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.registration().read_io(|| self.io.peek(buf)).await
    }

    pub(crate) async fn write_priv(&self, buf: &[u8]) -> io::Result<usize> {
        self.io
            .registration()
            .write_io(|| (&*self.io).write(buf))
            .await
    }

    /// A read that filled less than `buf` drained the socket's receive queue, so it also
    /// clears read readiness: the caller's next poll (hyper reads again after every
    /// request) then waits for the next edge instead of paying a `recvfrom` that returns
    /// `WouldBlock`. Sound because mio's epoll/kqueue registration is edge-triggered:
    /// data arriving after the read raises a new event, which `clear_readiness` never
    /// erases (it clears only if no event arrived since `event` was observed; see
    /// reactor/src/readiness.rs). Only a plain `READABLE` is cleared this way: an error or
    /// a closed read half must still reach the next read.
    pub(crate) fn poll_read_priv(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let registration = self.io.registration();
        loop {
            let event = ready!(registration.poll_read_ready(cx))?;
            match (&*self.io).read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    registration.clear_readiness(event);
                }
                Ok(n) if n > 0 && n < buf.len() && event.ready() == Ready::READABLE => {
                    registration.clear_readiness(event);
                    return Poll::Ready(Ok(n));
                }
                result => return Poll::Ready(result),
            }
        }
    }

    pub(crate) fn poll_write_priv(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.io
            .registration()
            .poll_write_io(cx, || (&*self.io).write(buf))
    }

    pub(crate) fn poll_write_vectored_priv(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.io
            .registration()
            .poll_write_io(cx, || (&*self.io).write_vectored(bufs))
    }
}

/// `read_exact` for the stream and its halves: one `IoWaiter` for the whole call, so a
/// cancelled call withdraws its waker. A hand-written future (56 bytes) rather than
/// nested `async fn`s (200 bytes): it sits in every task parked on a read.
pub(crate) fn read_exact<'a>(stream: &'a TcpStream, buf: &'a mut [u8]) -> ReadExact<'a> {
    ReadExact {
        stream,
        buf,
        waiter: stream.io.registration().read_waiter(),
    }
}

/// The future of [`TcpStream::read_exact`].
#[must_use = "futures do nothing unless polled"]
pub struct ReadExact<'a> {
    stream: &'a TcpStream,
    buf: &'a mut [u8],
    waiter: runnel_reactor::IoWaiter<'a>,
}

impl std::future::Future for ReadExact<'_> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while !this.buf.is_empty() {
            let (stream, buf) = (this.stream, &mut *this.buf);
            let n = ready!(this.waiter.poll_io(cx, || (&*stream.io).read(buf)))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
            let buf = std::mem::take(&mut this.buf);
            this.buf = &mut buf[n..];
        }
        Poll::Ready(Ok(()))
    }
}

/// `write_all` for the stream and its halves (one `IoWaiter`, like `read_exact`).
pub(crate) fn write_all<'a>(stream: &'a TcpStream, buf: &'a [u8]) -> WriteAll<'a> {
    WriteAll {
        stream,
        buf,
        waiter: stream.io.registration().write_waiter(),
    }
}

/// The future of [`TcpStream::write_all`].
#[must_use = "futures do nothing unless polled"]
pub struct WriteAll<'a> {
    stream: &'a TcpStream,
    buf: &'a [u8],
    waiter: runnel_reactor::IoWaiter<'a>,
}

impl std::future::Future for WriteAll<'_> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while !this.buf.is_empty() {
            let (stream, buf) = (this.stream, this.buf);
            let n = ready!(this.waiter.poll_io(cx, || (&*stream.io).write(buf)))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            this.buf = &this.buf[n..];
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_read_priv(cx, buf)
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_priv(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored_priv(cx, bufs)
    }

    /// TCP has no user-space buffer here: always ready.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Shuts down the write direction (the peer reads end of file).
    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.shutdown(Shutdown::Write))
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.io.get_ref().fmt(f)
    }
}
