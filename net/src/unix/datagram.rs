//! `UnixDatagram`: Unix datagram sockets over the reactor. Like `UdpSocket`, every async
//! operation is one readiness wait plus syscall loop, and a datagram is sent or received
//! whole or not at all, so each is cancel-safe.

use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::task::{Context, Poll};

use mio::Interest;
use runnel_reactor::PollEvented;

/// A Unix datagram socket.
///
/// ```
/// # runnel_executor::Runtime::new().unwrap().block_on(async {
/// use runnel_net::UnixDatagram;
/// let (a, b) = UnixDatagram::pair()?;
/// a.send(b"ping").await?;
/// let mut buf = [0; 16];
/// let n = b.recv(&mut buf).await?;
/// assert_eq!(&buf[..n], b"ping");
/// # std::io::Result::Ok(()) }).unwrap();
/// ```
pub struct UnixDatagram {
    io: PollEvented<mio::net::UnixDatagram>,
}

impl UnixDatagram {
    /// Binds to `path` (which must not exist).
    ///
    /// # Panics
    ///
    /// When no runtime is entered on this thread (for all constructors).
    #[track_caller]
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixDatagram> {
        UnixDatagram::new(mio::net::UnixDatagram::bind(path)?)
    }

    /// A socket bound to no address (it can send, and receive once connected).
    #[track_caller]
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::new(mio::net::UnixDatagram::unbound()?)
    }

    /// A pair of connected, unnamed sockets.
    #[track_caller]
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = mio::net::UnixDatagram::pair()?;
        Ok((UnixDatagram::new(a)?, UnixDatagram::new(b)?))
    }

    #[track_caller]
    fn new(io: mio::net::UnixDatagram) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            io: PollEvented::new(io, Interest::READABLE | Interest::WRITABLE)?,
        })
    }

    /// Wraps a `std` socket, putting it in non-blocking mode.
    #[track_caller]
    pub fn from_std(socket: std::os::unix::net::UnixDatagram) -> io::Result<UnixDatagram> {
        socket.set_nonblocking(true)?;
        UnixDatagram::new(mio::net::UnixDatagram::from_std(socket))
    }

    /// Deregisters the socket and returns it as a `std` socket, still non-blocking.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixDatagram> {
        Ok(self.io.into_inner()?.into())
    }

    /// Sets the default destination of [`send`](UnixDatagram::send) and the only source
    /// [`recv`](UnixDatagram::recv) accepts.
    pub fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        self.io.connect(path)
    }

    /// Sends `buf` to the connected peer.
    ///
    /// Cancel safety: cancel-safe.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.registration().write_io(|| self.io.send(buf)).await
    }

    /// Receives a datagram from the connected peer (excess bytes are discarded).
    ///
    /// Cancel safety: cancel-safe.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.registration().read_io(|| self.io.recv(buf)).await
    }

    /// Sends `buf` to the socket bound at `target`.
    ///
    /// Cancel safety: cancel-safe.
    pub async fn send_to(&self, buf: &[u8], target: impl AsRef<Path>) -> io::Result<usize> {
        let target = target.as_ref();
        self.io
            .registration()
            .write_io(|| self.io.send_to(buf, target))
            .await
    }

    /// Receives a datagram and its sender's address (unnamed for an unbound sender).
    ///
    /// Cancel safety: cancel-safe.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io
            .registration()
            .read_io(|| self.io.recv_from(buf))
            .await
    }

    /// Polls to send to the connected peer. Stateless: of the tasks polling one direction
    /// this way, only the most recent is woken.
    pub fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.io
            .registration()
            .poll_write_io(cx, || self.io.send(buf))
    }

    /// Polls to receive from the connected peer (stateless, like
    /// [`poll_send`](UnixDatagram::poll_send)).
    pub fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.io
            .registration()
            .poll_read_io(cx, || self.io.recv(buf))
    }

    /// Sends without waiting: `WouldBlock` if the socket is not writable.
    pub fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io
            .registration()
            .try_io(Interest::WRITABLE, || self.io.send(buf))
    }

    /// Sends to `target` without waiting.
    pub fn try_send_to(&self, buf: &[u8], target: impl AsRef<Path>) -> io::Result<usize> {
        self.io
            .registration()
            .try_io(Interest::WRITABLE, || self.io.send_to(buf, target))
    }

    /// Receives without waiting: `WouldBlock` if no datagram is ready.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io
            .registration()
            .try_io(Interest::READABLE, || self.io.recv(buf))
    }

    /// Receives a datagram and its sender's address without waiting.
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io
            .registration()
            .try_io(Interest::READABLE, || self.io.recv_from(buf))
    }

    /// Waits until the socket may be readable. Cancel-safe.
    pub async fn readable(&self) -> io::Result<()> {
        self.io.registration().readable().await.map(drop)
    }

    /// Waits until the socket may be writable. Cancel-safe.
    pub async fn writable(&self) -> io::Result<()> {
        self.io.registration().writable().await.map(drop)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.peer_addr()
    }

    /// Shuts down the read, write, or both directions.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.shutdown(how)
    }

    /// Takes the pending socket error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.take_error()
    }
}

impl fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.io.get_ref().fmt(f)
    }
}
