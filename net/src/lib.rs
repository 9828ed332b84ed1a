//! runnel's TCP and UDP sockets, built on `runnel_reactor::PollEvented`.
//!
//! | module | owns |
//! | --- | --- |
//! | `tcp::listener` | [`TcpListener`], [`Incoming`] |
//! | `tcp::stream` | [`TcpStream`]: connect, async read/write, options, `AsyncRead`/`AsyncWrite` |
//! | `tcp::split`, `tcp::split_owned` | borrowed and owned halves of a stream |
//! | `tcp::socket` | [`TcpSocket`]: the socket2 builder for options set before bind/connect |
//! | `udp` | [`UdpSocket`] |
//! | `addr` | [`ToSocketAddrs`], [`lookup_host`]: address resolution shared by all of them |
//!
//! Every socket is registered with the reactor of the runtime current when it is created
//! (sockets accepted by a listener join the listener's reactor) and deregistered on drop.
//! After the runtime shut down, every operation returns the error
//! "the runnel runtime has shut down" — a task blocked on a socket is woken with it.
//!
//! Waiting tasks: any number of tasks may wait on one socket, in either direction — two
//! `recv_from`s on an `Arc<UdpSocket>`, several tasks `accept`ing on one
//! `Arc<TcpListener>`, `readable()` awaited by two tasks. When the socket becomes ready,
//! every task waiting in that direction is woken and retries; those that find nothing left
//! wait again. The `async` methods withdraw their waker when their future is dropped (a
//! lost `select!`, an expired timeout), so a cancelled wait does not keep the deadlock
//! detector from firing; the `poll_*` methods and the `AsyncRead`/`AsyncWrite` impls keep
//! no state, so their waker stays until the socket's next event in that direction or its
//! drop.
//!
//! Addresses: every address argument is an `impl` [`ToSocketAddrs`] (tokio's set of types).
//! IP addresses and literals are used at once; a host name is resolved by [`lookup_host`]
//! on the runtime's blocking pool, so no worker thread ever blocks on DNS.

mod addr;
mod tcp;
mod udp;

pub use addr::{lookup_host, ToSocketAddrs};
pub use tcp::listener::{Incoming, TcpListener};
pub use tcp::socket::TcpSocket;
pub use tcp::split::{ReadHalf, WriteHalf};
pub use tcp::split_owned::{OwnedReadHalf, OwnedWriteHalf, ReuniteError};
pub use tcp::stream::{ReadExact, TcpStream, WriteAll};
pub use udp::UdpSocket;
