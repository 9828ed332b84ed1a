//! `UnixListener`: accepts connections on a path; accepted streams join the listener's
//! reactor. Accept errors are returned as they are (see `TcpListener` on backing off).

use std::fmt;
use std::io;
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_core::Stream;
use mio::Interest;
use runnel_reactor::PollEvented;

use super::stream::UnixStream;

/// A Unix stream socket listening for connections.
///
/// ```
/// # runnel_executor::Runtime::new().unwrap().block_on(async {
/// use runnel_net::{UnixListener, UnixStream};
/// let dir = std::env::temp_dir().join(format!("runnel-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("listener.sock");
/// let _ = std::fs::remove_file(&path);
/// let listener = UnixListener::bind(&path)?;
/// let client = UnixStream::connect(&path).await?;
/// let (server, _peer) = listener.accept().await?;
/// # drop((client, server)); std::fs::remove_dir_all(&dir)?;
/// # std::io::Result::Ok(()) }).unwrap();
/// ```
pub struct UnixListener {
    io: PollEvented<mio::net::UnixListener>,
}

impl UnixListener {
    /// Binds to `path` (which must not exist: remove a stale socket file first).
    ///
    /// # Panics
    ///
    /// When no runtime is entered on this thread.
    #[track_caller]
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        UnixListener::new(mio::net::UnixListener::bind(path)?)
    }

    #[track_caller]
    fn new(io: mio::net::UnixListener) -> io::Result<UnixListener> {
        Ok(UnixListener {
            io: PollEvented::new(io, Interest::READABLE)?,
        })
    }

    /// Waits for a connection and returns it with the peer's (usually unnamed) address.
    ///
    /// Cancel safety: cancel-safe — if the future is dropped, no connection was taken. Any
    /// number of tasks may accept on one listener; each connection goes to one of them.
    pub async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let registration = self.io.registration();
        let (stream, addr) = registration.read_io(|| self.io.accept()).await?;
        Ok((
            UnixStream::with_handle(registration.handle(), stream)?,
            addr,
        ))
    }

    /// Polls for a connection. Stateless: only the task of the most recent `poll_accept`
    /// is woken (several tasks accepting on one listener should use
    /// [`accept`](UnixListener::accept)).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(UnixStream, SocketAddr)>> {
        let registration = self.io.registration();
        let (stream, addr) = ready!(registration.poll_read_io(cx, || self.io.accept()))?;
        Poll::Ready(Ok((
            UnixStream::with_handle(registration.handle(), stream)?,
            addr,
        )))
    }

    /// A stream of accepted connections; it never ends.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// Wraps a listening `std` listener, putting it in non-blocking mode.
    ///
    /// # Panics
    ///
    /// When no runtime is entered on this thread.
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        listener.set_nonblocking(true)?;
        UnixListener::new(mio::net::UnixListener::from_std(listener))
    }

    /// Deregisters the listener and returns it as a `std` listener, still non-blocking.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixListener> {
        Ok(self.io.into_inner()?.into())
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// Takes the pending socket error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.take_error()
    }
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.io.get_ref().fmt(f)
    }
}

/// Stream of connections from [`UnixListener::incoming`].
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct Incoming<'a> {
    listener: &'a UnixListener,
}

impl Stream for Incoming<'_> {
    type Item = io::Result<UnixStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.listener
            .poll_accept(cx)
            .map(|result| Some(result.map(|(stream, _)| stream)))
    }
}
