//! Unix domain sockets: [`UnixListener`], [`UnixStream`] (and its halves), [`UnixDatagram`]
//! — tokio's `tokio::net::{UnixListener, UnixStream, UnixDatagram}` and `tokio::net::unix`.
//!
//! Same structure as TCP: a stream's reading and writing are `StreamIo`'s
//! (`stream_io.rs`), its halves come from `stream_halves!` (`halves.rs`), and each socket
//! is a `PollEvented` of the mio socket, registered with the reactor current at creation
//! (accepted streams join the listener's). Addresses are `std`'s [`SocketAddr`] (a path,
//! unnamed, or — on Linux — abstract).

mod datagram;
mod listener;
mod split;
mod stream;

pub use datagram::UnixDatagram;
pub use listener::{Incoming, UnixListener};
pub use split::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, WriteHalf};
pub use std::os::unix::net::SocketAddr;
pub use stream::UnixStream;
