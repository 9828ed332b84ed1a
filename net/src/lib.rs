//! runnel's TCP and UDP sockets, built on `runnel_reactor::PollEvented`.
//!
//! | module | owns |
//! | --- | --- |
//! | `tcp::listener` | [`TcpListener`], [`Incoming`] |
//! | `tcp::stream` | [`TcpStream`]: connect, async read/write, options, `AsyncRead`/`AsyncWrite` |
//! | `tcp::split`, `tcp::split_owned` | borrowed and owned halves of a stream |
//! | `tcp::socket` | [`TcpSocket`]: the socket2 builder for options set before bind/connect |
//! | `udp` | [`UdpSocket`] |
//! | `addr` | address resolution shared by all of them |
//!
//! Every socket is registered with the reactor of the runtime current when it is created
//! (sockets accepted by a listener join the listener's reactor) and deregistered on drop.
//! After the runtime shut down, every operation returns the error
//! "the runnel runtime has shut down" — a task blocked on a socket is woken with it.
//!
//! Waiting tasks: a socket keeps one waiting task per direction (read, write). Two tasks
//! waiting in the same direction on one socket (e.g. two `recv`s on a shared `UdpSocket`,
//! two `accept`s on a shared listener) is not supported: the later one's waker replaces
//! the earlier one's, which is then not woken. One reader plus one writer is fine.
//!
//! Addresses: `impl ToSocketAddrs` is `std`'s; resolving a host name blocks the calling
//! thread (IP literals never do).

mod addr;
mod tcp;
mod udp;

pub use tcp::listener::{Incoming, TcpListener};
pub use tcp::socket::TcpSocket;
pub use tcp::split::{ReadHalf, WriteHalf};
pub use tcp::split_owned::{OwnedReadHalf, OwnedWriteHalf, ReuniteError};
pub use tcp::stream::TcpStream;
pub use udp::UdpSocket;
