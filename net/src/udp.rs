//! `UdpSocket`: datagrams over the reactor.
//!
//! Every async operation is one readiness wait plus syscall loop (`Registration::read_io` /
//! `write_io`): a datagram is sent or received whole or not at all, so each is cancel-safe.
//! Any number of tasks may send and receive on one socket (share it in an `Arc`); each
//! datagram goes to one of the receivers.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::task::{Context, Poll};

use mio::Interest;
use runnel_reactor::PollEvented;

use crate::ToSocketAddrs;

/// A UDP socket.
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// use runnel_net::UdpSocket;
/// let socket = UdpSocket::bind("127.0.0.1:0").await?;
/// socket.send_to(b"ping", "127.0.0.1:9000").await?;
/// let mut buf = [0; 1500];
/// let (n, from) = socket.recv_from(&mut buf).await?;
/// # drop((n, from)); Ok(()) }
/// ```
pub struct UdpSocket {
    io: PollEvented<mio::net::UdpSocket>,
}

impl UdpSocket {
    /// Binds to `addr`, trying each address it resolves to in turn. A host name is resolved
    /// on the blocking pool (see [`lookup_host`](crate::lookup_host)).
    ///
    /// Cancel safety: cancel-safe. With an IP address it completes on its first poll; with
    /// a host name, dropping the future before the lookup finished binds nothing.
    ///
    /// # Panics
    ///
    /// When no runtime is entered on this thread.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        crate::addr::try_each(addr, |addr| {
            UdpSocket::new(mio::net::UdpSocket::bind(addr)?)
        })
        .await
    }

    fn new(io: mio::net::UdpSocket) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            io: PollEvented::new(io, Interest::READABLE | Interest::WRITABLE)?,
        })
    }

    /// Wraps a bound `std` socket, putting it in non-blocking mode.
    ///
    /// # Panics
    ///
    /// When no runtime is entered on this thread.
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        socket.set_nonblocking(true)?;
        UdpSocket::new(mio::net::UdpSocket::from_std(socket))
    }

    /// Deregisters the socket and returns it as a `std` socket, still non-blocking.
    pub fn into_std(self) -> io::Result<std::net::UdpSocket> {
        Ok(self.io.into_inner()?.into())
    }

    /// Sets the default destination of [`send`](UdpSocket::send) and the only source
    /// [`recv`](UdpSocket::recv) accepts, trying each resolved address in turn. A host name
    /// is resolved on the blocking pool (see [`lookup_host`](crate::lookup_host)).
    ///
    /// Cancel safety: cancel-safe. With an IP address it completes on its first poll; with
    /// a host name, dropping the future before the lookup finished leaves the socket as it
    /// was.
    pub async fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        crate::addr::try_each(addr, |addr| self.io.connect(addr)).await
    }

    /// Sends `buf` to the connected peer.
    ///
    /// Cancel safety: cancel-safe.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.registration().write_io(|| self.io.send(buf)).await
    }

    /// Polls to send `buf` to the connected peer.
    ///
    /// Stateless: of the tasks polling one direction this way, only the task of the most
    /// recent call is woken (several tasks should use the async methods).
    pub fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.io
            .registration()
            .poll_write_io(cx, || self.io.send(buf))
    }

    /// Receives a datagram from the connected peer (excess bytes are discarded).
    ///
    /// Cancel safety: cancel-safe.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.registration().read_io(|| self.io.recv(buf)).await
    }

    /// Polls to receive a datagram from the connected peer.
    ///
    /// Stateless: of the tasks polling one direction this way, only the task of the most
    /// recent call is woken (several tasks should use the async methods).
    pub fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.io
            .registration()
            .poll_read_io(cx, || self.io.recv(buf))
    }

    /// Sends `buf` to `target` (its first resolved address).
    ///
    /// A `SocketAddr` or IP literal is used as it is. A host name is resolved on every call,
    /// on the blocking pool (see [`lookup_host`](crate::lookup_host)), as tokio does: to
    /// send many datagrams to a named peer, resolve it once and pass the `SocketAddr`.
    ///
    /// Cancel safety: cancel-safe.
    pub async fn send_to(&self, buf: &[u8], target: impl ToSocketAddrs) -> io::Result<usize> {
        let target = crate::addr::resolve(target).await?.next();
        let target = target.expect("resolve returns at least one address");
        self.io
            .registration()
            .write_io(|| self.io.send_to(buf, target))
            .await
    }

    /// Polls to send `buf` to `target`.
    ///
    /// Stateless: of the tasks polling one direction this way, only the task of the most
    /// recent call is woken (several tasks should use the async methods).
    pub fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        self.io
            .registration()
            .poll_write_io(cx, || self.io.send_to(buf, target))
    }

    /// Receives a datagram and its sender's address.
    ///
    /// Cancel safety: cancel-safe.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io
            .registration()
            .read_io(|| self.io.recv_from(buf))
            .await
    }

    /// Polls to receive a datagram and its sender's address.
    ///
    /// Stateless: of the tasks polling one direction this way, only the task of the most
    /// recent call is woken (several tasks should use the async methods).
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        self.io
            .registration()
            .poll_read_io(cx, || self.io.recv_from(buf))
    }

    /// Like [`recv_from`](UdpSocket::recv_from), leaving the datagram queued.
    ///
    /// Cancel safety: cancel-safe.
    pub async fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io
            .registration()
            .read_io(|| self.io.peek_from(buf))
            .await
    }

    /// Sends without waiting: `WouldBlock` if the socket is not writable.
    pub fn try_send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<usize> {
        self.io
            .registration()
            .try_io(Interest::WRITABLE, || self.io.send_to(buf, target))
    }

    /// Receives without waiting: `WouldBlock` if no datagram is ready.
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io
            .registration()
            .try_io(Interest::READABLE, || self.io.recv_from(buf))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.peer_addr()
    }

    /// Sets `SO_BROADCAST`.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.io.set_broadcast(on)
    }

    /// `SO_BROADCAST`.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.io.broadcast()
    }

    /// Joins IPv4 multicast group `multiaddr` on the interface with address `interface`
    /// (`Ipv4Addr::UNSPECIFIED`: the system's choice).
    pub fn join_multicast_v4(&self, multiaddr: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        self.io.join_multicast_v4(&multiaddr, &interface)
    }

    /// Leaves an IPv4 multicast group.
    pub fn leave_multicast_v4(&self, multiaddr: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        self.io.leave_multicast_v4(&multiaddr, &interface)
    }

    /// Joins IPv6 multicast group `multiaddr` on interface index `interface` (0: any).
    pub fn join_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.io.join_multicast_v6(multiaddr, interface)
    }

    /// Leaves an IPv6 multicast group.
    pub fn leave_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.io.leave_multicast_v6(multiaddr, interface)
    }

    /// Sets `IP_MULTICAST_LOOP`.
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.io.set_multicast_loop_v4(on)
    }

    /// `IP_MULTICAST_LOOP`.
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.io.multicast_loop_v4()
    }

    /// Sets `IPV6_MULTICAST_LOOP`.
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        self.io.set_multicast_loop_v6(on)
    }

    /// Sets `IP_MULTICAST_TTL`.
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.io.set_multicast_ttl_v4(ttl)
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
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.io.get_ref().fmt(f)
    }
}
