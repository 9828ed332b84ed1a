//! `StreamIo`: the byte-stream machinery shared by `TcpStream` and `UnixStream` — a
//! registered mio stream and its read/write operations.
//!
//! Every operation waits for readiness, tries the syscall, clears readiness on
//! `WouldBlock` and waits again. The async ones wait through an `IoWaiter`
//! (`Registration::read_io`), which withdraws its waker when the future is dropped; the
//! `poll_*` ones (behind `AsyncRead`/`AsyncWrite`) keep no state. Reading and writing use
//! separate waiter lists of the one registration, so a reader task and a writer task (the
//! halves of a split) never disturb each other.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::ops::Deref;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use mio::event::Source;
use mio::Interest;
use runnel_reactor::{Handle, IoWaiter, PollEvented, Ready};

/// A registered stream socket (mio's `TcpStream` or `UnixStream`).
pub(crate) struct StreamIo<E: Source> {
    io: PollEvented<E>,
}

/// The syscalls `ReadExact`/`WriteAll` need, object-safe so that those futures are one
/// (non-generic) type for every kind of stream.
pub(crate) trait ByteIo: Sync {
    fn read_some(&self, buf: &mut [u8]) -> io::Result<usize>;
    fn write_some(&self, buf: &[u8]) -> io::Result<usize>;
}

impl<E: Sync> ByteIo for E
where
    for<'a> &'a E: Read + Write,
{
    fn read_some(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
    fn write_some(&self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }
}

impl<E> StreamIo<E>
where
    E: Source + Sync,
    for<'a> &'a E: Read + Write,
{
    /// Registers a (connected or connecting, non-blocking) stream with the current reactor.
    #[track_caller]
    pub(crate) fn new(io: E) -> io::Result<StreamIo<E>>
    where
        E: std::os::fd::AsRawFd,
    {
        StreamIo::with_handle(&Handle::current(), io)
    }

    /// Registers a stream with the reactor of `handle`.
    pub(crate) fn with_handle(handle: &Handle, io: E) -> io::Result<StreamIo<E>>
    where
        E: std::os::fd::AsRawFd,
    {
        let interest = Interest::READABLE | Interest::WRITABLE;
        Ok(StreamIo {
            io: PollEvented::with_handle(handle, io, interest)?,
        })
    }

    /// Deregisters the stream and returns it.
    pub(crate) fn into_inner(self) -> io::Result<E> {
        self.io.into_inner()
    }

    pub(crate) async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io
            .registration()
            .read_io(|| self.io.read_some(buf))
            .await
    }

    pub(crate) async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        self.io
            .registration()
            .write_io(|| self.io.write_some(buf))
            .await
    }

    /// One `IoWaiter` for the whole call, so a cancelled call withdraws its waker.
    pub(crate) fn read_exact<'a>(&'a self, buf: &'a mut [u8]) -> ReadExact<'a> {
        ReadExact {
            io: self.io.get_ref(),
            buf,
            waiter: self.io.registration().read_waiter(),
        }
    }

    /// One `IoWaiter` for the whole call, like `read_exact`.
    pub(crate) fn write_all<'a>(&'a self, buf: &'a [u8]) -> WriteAll<'a> {
        WriteAll {
            io: self.io.get_ref(),
            buf,
            waiter: self.io.registration().write_waiter(),
        }
    }

    pub(crate) async fn readable(&self) -> io::Result<()> {
        self.io.registration().readable().await.map(drop)
    }

    pub(crate) async fn writable(&self) -> io::Result<()> {
        self.io.registration().writable().await.map(drop)
    }

    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.try_io(Interest::READABLE, || self.io.read_some(buf))
    }

    pub(crate) fn try_read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.try_io(Interest::READABLE, || self.io.get_ref().read_vectored(bufs))
    }

    pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.try_io(Interest::WRITABLE, || self.io.write_some(buf))
    }

    pub(crate) fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.try_io(Interest::WRITABLE, || {
            self.io.get_ref().write_vectored(bufs)
        })
    }

    /// Runs a non-blocking `f` if the stream is ready for `interest` (`WouldBlock`
    /// otherwise; readiness is cleared if `f` finds none).
    pub(crate) fn try_io<R>(
        &self,
        interest: Interest,
        f: impl FnOnce() -> io::Result<R>,
    ) -> io::Result<R> {
        self.io.registration().try_io(interest, f)
    }

    pub(crate) fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.registration().poll_read_ready(cx).map_ok(drop)
    }

    pub(crate) fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.registration().poll_write_ready(cx).map_ok(drop)
    }

    /// A read that filled less than `buf` drained the socket's receive queue, so it also
    /// clears read readiness: the caller's next poll (hyper reads again after every
    /// request) then waits for the next edge instead of paying a `recvfrom` that returns
    /// `WouldBlock`. Sound because mio's epoll/kqueue registration is edge-triggered:
    /// data arriving after the read raises a new event, which `clear_readiness` never
    /// erases (it clears only if no event arrived since `event` was observed; see
    /// reactor/src/readiness.rs). Only a plain `READABLE` is cleared this way: an error or
    /// a closed read half must still reach the next read.
    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let registration = self.io.registration();
        loop {
            let event = ready!(registration.poll_read_ready(cx))?;
            match self.io.read_some(buf) {
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

    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.io
            .registration()
            .poll_write_io(cx, || self.io.write_some(buf))
    }

    pub(crate) fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.io
            .registration()
            .poll_write_io(cx, || self.io.get_ref().write_vectored(bufs))
    }
}

/// Dereferences to the registered io (`PollEvented`, which dereferences to the mio stream),
/// for the socket options and addresses each stream type adds.
impl<E: Source> Deref for StreamIo<E> {
    type Target = PollEvented<E>;
    fn deref(&self) -> &PollEvented<E> {
        &self.io
    }
}

/// The future of `read_exact` on a stream or its read half. A hand-written future (one
/// waiter for the whole call) rather than nested `async fn`s: it sits in every task parked
/// on a read. 64 bytes (nested `async fn`s: 200); the `&dyn ByteIo` that lets TCP and Unix
/// streams share it costs 8 bytes over the 56 of a `&TcpStream`.
#[must_use = "futures do nothing unless polled"]
pub struct ReadExact<'a> {
    io: &'a dyn ByteIo,
    buf: &'a mut [u8],
    waiter: IoWaiter<'a>,
}

impl std::future::Future for ReadExact<'_> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while !this.buf.is_empty() {
            let (io, buf) = (this.io, &mut *this.buf);
            let n = ready!(this.waiter.poll_io(cx, || io.read_some(buf)))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
            let buf = std::mem::take(&mut this.buf);
            this.buf = &mut buf[n..];
        }
        Poll::Ready(Ok(()))
    }
}

impl std::fmt::Debug for ReadExact<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadExact")
            .field("left", &self.buf.len())
            .finish_non_exhaustive()
    }
}

/// The future of `write_all` on a stream or its write half (one waiter, like
/// [`ReadExact`]).
#[must_use = "futures do nothing unless polled"]
pub struct WriteAll<'a> {
    io: &'a dyn ByteIo,
    buf: &'a [u8],
    waiter: IoWaiter<'a>,
}

impl std::future::Future for WriteAll<'_> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while !this.buf.is_empty() {
            let (io, buf) = (this.io, this.buf);
            let n = ready!(this.waiter.poll_io(cx, || io.write_some(buf)))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            this.buf = &this.buf[n..];
        }
        Poll::Ready(Ok(()))
    }
}

impl std::fmt::Debug for WriteAll<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteAll")
            .field("left", &self.buf.len())
            .finish_non_exhaustive()
    }
}
