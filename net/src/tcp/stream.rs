//! `TcpStream`: a connected TCP socket registered with the reactor.
//!
//! Reading and writing are `StreamIo`'s (`stream_io.rs`, shared with `UnixStream` and the
//! halves); this file adds connecting, `peek` and the TCP socket options.

use std::fmt;
use std::future::poll_fn;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures_io::{AsyncRead, AsyncWrite};
use runnel_reactor::Handle;
use socket2::SockRef;

use super::split::{self, OwnedReadHalf, OwnedWriteHalf, ReadHalf, WriteHalf};
use crate::stream_io::{ReadExact, StreamIo, WriteAll};
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
    io: StreamIo<mio::net::TcpStream>,
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
            io: StreamIo::new(io)?,
        })
    }

    /// Registers a mio stream with the reactor of `handle`.
    pub(crate) fn with_handle(handle: &Handle, io: mio::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream {
            io: StreamIo::with_handle(handle, io)?,
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
        self.io.read(buf).await
    }

    /// Reads exactly `buf.len()` bytes; `UnexpectedEof` if the stream ends first.
    ///
    /// Cancel safety: **not** cancel-safe — bytes read before cancellation are lost.
    pub fn read_exact<'a>(&'a mut self, buf: &'a mut [u8]) -> ReadExact<'a> {
        self.io.read_exact(buf)
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
        self.io.write(buf).await
    }

    /// Writes all of `buf`.
    ///
    /// Cancel safety: **not** cancel-safe — part of `buf` may have been written.
    pub fn write_all<'a>(&'a mut self, buf: &'a [u8]) -> WriteAll<'a> {
        self.io.write_all(buf)
    }

    /// Waits until the stream may be readable (it may still return `WouldBlock`). Any
    /// number of tasks may wait at once; all are woken.
    ///
    /// Cancel safety: cancel-safe.
    pub async fn readable(&self) -> io::Result<()> {
        self.io.readable().await
    }

    /// Waits until the stream may be writable. Any number of tasks may wait at once.
    ///
    /// Cancel safety: cancel-safe.
    pub async fn writable(&self) -> io::Result<()> {
        self.io.writable().await
    }

    /// Polls for read readiness (it may still return `WouldBlock`; `try_read` clears it
    /// then). Stateless: only the most recent stateless reader of the stream is woken, and
    /// its waker stays stored until the next read event.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_read_ready(cx)
    }

    /// Polls for write readiness (stateless, like `poll_read_ready`).
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_write_ready(cx)
    }

    /// Reads without waiting: `WouldBlock` if no data is ready.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.try_read(buf)
    }

    /// Reads into several buffers without waiting: `WouldBlock` if no data is ready.
    pub fn try_read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.io.try_read_vectored(bufs)
    }

    /// Writes without waiting: `WouldBlock` if the send buffer is full.
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.try_write(buf)
    }

    /// Writes from several buffers without waiting: `WouldBlock` if the send buffer is
    /// full.
    pub fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.io.try_write_vectored(bufs)
    }

    /// Polls to peek (see [`peek`](TcpStream::peek)); returns how many bytes were copied.
    /// Stateless: only the most recent stateless reader of the stream is woken.
    pub fn poll_peek(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.io
            .registration()
            .poll_read_io(cx, || self.io.peek(buf))
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
        split::split_owned(self)
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
        SockRef::from(self.io.get_ref()).set_linger(linger)
    }

    /// `SO_LINGER`.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        SockRef::from(self.io.get_ref()).linger()
    }

    /// Sets `SO_KEEPALIVE` (the OS default idle time and interval apply).
    pub fn set_keepalive(&self, keepalive: bool) -> io::Result<()> {
        SockRef::from(self.io.get_ref()).set_keepalive(keepalive)
    }

    /// Whether `SO_KEEPALIVE` is set.
    pub fn keepalive(&self) -> io::Result<bool> {
        SockRef::from(self.io.get_ref()).keepalive()
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

    /// The shared read/write machinery, for the halves.
    pub(crate) fn stream_io(&self) -> &StreamIo<mio::net::TcpStream> {
        &self.io
    }

    pub(crate) async fn peek_priv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.registration().read_io(|| self.io.peek(buf)).await
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.io.poll_read(cx, buf)
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.io.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.io.poll_write_vectored(cx, bufs)
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
