//! `UnixStream`: a connected Unix stream socket registered with the reactor. Reading and
//! writing are `StreamIo`'s (`stream_io.rs`); this file adds connecting, pairs and options.

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::Shutdown;
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};
use runnel_reactor::Handle;

use super::split::{self, OwnedReadHalf, OwnedWriteHalf, ReadHalf, WriteHalf};
use crate::stream_io::{ReadExact, StreamIo, WriteAll};

/// A connected Unix stream socket.
///
/// Read and write with the inherent async methods or through `futures_io::AsyncRead` /
/// `AsyncWrite`; to read in one task and write in another,
/// [`into_split`](UnixStream::into_split).
///
/// ```
/// # runnel_executor::Runtime::new().unwrap().block_on(async {
/// use runnel_net::UnixStream;
/// let (mut a, mut b) = UnixStream::pair()?;
/// a.write_all(b"ping").await?;
/// let mut buf = [0; 4];
/// b.read_exact(&mut buf).await?;
/// assert_eq!(&buf, b"ping");
/// # std::io::Result::Ok(()) }).unwrap();
/// ```
pub struct UnixStream {
    io: StreamIo<mio::net::UnixStream>,
}

impl UnixStream {
    /// Connects to the socket bound at `path`.
    ///
    /// Cancel safety: dropping the future abandons the attempt and closes its socket.
    ///
    /// # Panics
    ///
    /// When no runtime is entered on this thread.
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let stream = UnixStream::new(mio::net::UnixStream::connect(path)?)?;
        // A Unix connect usually completes at once; when the listener's backlog is full
        // it completes once the socket is writable, with any error in SO_ERROR.
        stream.io.registration().writable().await?;
        match stream.io.take_error()? {
            Some(e) => Err(e),
            None => Ok(stream),
        }
    }

    /// A pair of connected, unnamed sockets.
    ///
    /// # Panics
    ///
    /// When no runtime is entered on this thread.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = mio::net::UnixStream::pair()?;
        Ok((UnixStream::new(a)?, UnixStream::new(b)?))
    }

    #[track_caller]
    fn new(io: mio::net::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream {
            io: StreamIo::new(io)?,
        })
    }

    /// Registers an accepted stream with the listener's reactor.
    pub(crate) fn with_handle(handle: &Handle, io: mio::net::UnixStream) -> io::Result<Self> {
        Ok(UnixStream {
            io: StreamIo::with_handle(handle, io)?,
        })
    }

    /// Wraps a connected `std` stream, putting it in non-blocking mode.
    ///
    /// # Panics
    ///
    /// When no runtime is entered on this thread.
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        stream.set_nonblocking(true)?;
        UnixStream::new(mio::net::UnixStream::from_std(stream))
    }

    /// Deregisters the stream and returns it as a `std` stream, still in non-blocking mode.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixStream> {
        Ok(self.io.into_inner()?.into())
    }

    /// Reads into `buf`; `Ok(0)` means end of file (or an empty `buf`).
    ///
    /// Cancel safety: cancel-safe.
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read(buf).await
    }

    /// Reads exactly `buf.len()` bytes; `UnexpectedEof` if the stream ends first.
    ///
    /// Cancel safety: **not** cancel-safe — bytes read before cancellation are lost.
    pub fn read_exact<'a>(&'a mut self, buf: &'a mut [u8]) -> ReadExact<'a> {
        self.io.read_exact(buf)
    }

    /// Writes some of `buf`, returning how many bytes were written.
    ///
    /// Cancel safety: cancel-safe.
    pub async fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.io.write(buf).await
    }

    /// Writes all of `buf`.
    ///
    /// Cancel safety: **not** cancel-safe — part of `buf` may have been written.
    pub fn write_all<'a>(&'a mut self, buf: &'a [u8]) -> WriteAll<'a> {
        self.io.write_all(buf)
    }

    /// Waits until the stream may be readable. Any number of tasks may wait at once.
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

    /// Reads into several buffers without waiting.
    pub fn try_read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.io.try_read_vectored(bufs)
    }

    /// Writes without waiting: `WouldBlock` if the send buffer is full.
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.try_write(buf)
    }

    /// Writes from several buffers without waiting.
    pub fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.io.try_write_vectored(bufs)
    }

    /// Shuts down the read, write, or both halves (never blocks).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.shutdown(how)
    }

    /// Borrows the stream as a read half and a write half, usable concurrently within one
    /// task. With `futures::io::AsyncReadExt` in scope write `UnixStream::split(&mut s)`.
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

    /// Takes the pending socket error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.take_error()
    }

    pub(crate) fn stream_io(&self) -> &StreamIo<mio::net::UnixStream> {
        &self.io
    }
}

impl AsyncRead for UnixStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.io.poll_read(cx, buf)
    }
}

impl AsyncWrite for UnixStream {
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

    /// No user-space buffer here: always ready.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Shuts down the write direction (the peer reads end of file).
    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.shutdown(Shutdown::Write))
    }
}

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.io.get_ref().fmt(f)
    }
}
