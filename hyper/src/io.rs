//! `RunnelIo`: a futures-io stream as `hyper::rt::{Read, Write}`.
//!
//! No `unsafe`. hyper hands reads a `ReadBufCursor` over uninitialized memory, and a
//! futures-io reader needs an initialized `&mut [u8]`. Writing into the cursor directly
//! would need `unsafe` (`as_mut` + `advance`) *and* a memset of the whole region on every
//! read (hyper starts each read with nothing initialized, and a `&mut [u8]` over
//! uninitialized bytes is undefined behaviour even if the reader only writes). Instead the
//! bytes are read into a per-thread scratch buffer that was initialized once, then copied
//! with `put_slice`: the cost is one copy of the bytes actually read (a ~100-byte request
//! costs ~100 bytes of copy, not an 8 KiB memset), and no memory per connection.
//!
//! The scratch buffer is borrowed only for the duration of the inner `poll_read` call; a
//! reader that re-enters another `RunnelIo` on the same thread gets a stack buffer instead
//! of a panic.

use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

/// The largest read handed to the inner stream at once (the scratch buffer's size). Big
/// enough that a large body moves in few syscalls; small enough to stay cache-resident.
const SCRATCH: usize = 64 * 1024;
/// The fallback buffer for a re-entrant read (rare): on the stack, zeroed per call.
const REENTRANT_SCRATCH: usize = 8 * 1024;

thread_local! {
    static SCRATCH_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

pin_project_lite::pin_project! {
    /// A futures-io stream usable by hyper: `hyper::rt::Read + hyper::rt::Write` over any
    /// `futures_io::AsyncRead + AsyncWrite` (e.g. `runnel::net::TcpStream`).
    ///
    /// Writes go straight through; `poll_shutdown` is futures-io's `poll_close`. Vectored
    /// writes are reported as supported (hyper then queues headers and body and writes them
    /// with one `writev`); for a stream whose `poll_write_vectored` is futures-io's
    /// one-buffer default, [`set_write_vectored(false)`](RunnelIo::set_write_vectored) makes
    /// hyper flatten into one buffer instead.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// use runnel_hyper::{RunnelExecutor, RunnelIo};
    /// let stream = runnel_net::TcpStream::connect("127.0.0.1:8080").await?;
    /// let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, String>(
    ///     RunnelIo::new(stream),
    /// ).await?;
    /// runnel_executor::spawn(conn);
    /// let response = sender.send_request(hyper::Request::new(String::new())).await?;
    /// # let _ = response; Ok(()) }
    /// ```
    #[derive(Debug)]
    pub struct RunnelIo<T> {
        #[pin]
        inner: T,
        vectored: bool,
    }
}

impl<T> RunnelIo<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> RunnelIo<T> {
        RunnelIo {
            inner,
            vectored: true,
        }
    }

    /// Whether hyper should use vectored writes on this stream (default `true`). Set
    /// `false` for a stream that does not implement `poll_write_vectored` itself.
    pub fn set_write_vectored(&mut self, vectored: bool) {
        self.vectored = vectored;
    }

    /// The wrapped stream.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// The wrapped stream, mutably.
    pub fn inner_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Unwraps the stream.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: AsyncRead> hyper::rt::Read for RunnelIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let inner = self.project().inner;
        let want = buf.remaining().min(SCRATCH);
        if want == 0 {
            // hyper never asks for 0 bytes, but a 0-byte read would look like end of file.
            return Poll::Ready(Ok(()));
        }
        SCRATCH_BUF.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => {
                if scratch.len() < SCRATCH {
                    scratch.resize(SCRATCH, 0);
                }
                read_via(inner, cx, &mut scratch[..want], &mut buf)
            }
            Err(_) => {
                let mut stack = [0u8; REENTRANT_SCRATCH];
                let want = want.min(REENTRANT_SCRATCH);
                read_via(inner, cx, &mut stack[..want], &mut buf)
            }
        })
    }
}

/// One read into `scratch`, then the bytes read into hyper's buffer.
fn read_via<T: AsyncRead>(
    inner: Pin<&mut T>,
    cx: &mut Context<'_>,
    scratch: &mut [u8],
    buf: &mut hyper::rt::ReadBufCursor<'_>,
) -> Poll<io::Result<()>> {
    let n = ready!(inner.poll_read(cx, scratch))?;
    buf.put_slice(&scratch[..n]);
    Poll::Ready(Ok(()))
}

impl<T: AsyncWrite> hyper::rt::Write for RunnelIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_close(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.vectored
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;

    /// Reads through hyper's `Read` with a buffer larger than the scratch buffer: every
    /// byte arrives, in order, and end of file is an empty read.
    #[test]
    fn reads_everything_through_the_scratch_buffer() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut io = RunnelIo::new(futures::io::Cursor::new(data.clone()));
        let mut got = Vec::new();
        let mut storage = vec![0u8; 100_000];
        futures::executor::block_on(async {
            loop {
                let mut buf = hyper::rt::ReadBuf::new(&mut storage);
                poll_fn(|cx| hyper::rt::Read::poll_read(Pin::new(&mut io), cx, buf.unfilled()))
                    .await
                    .unwrap();
                assert!(buf.filled().len() <= SCRATCH);
                if buf.filled().is_empty() {
                    break;
                }
                got.extend_from_slice(buf.filled());
            }
        });
        assert_eq!(got, data);
    }

    #[test]
    fn writes_go_through_and_shutdown_closes() {
        let mut io = RunnelIo::new(futures::io::Cursor::new(Vec::new()));
        futures::executor::block_on(async {
            let bufs = [IoSlice::new(b"hello "), IoSlice::new(b"world")];
            // futures' Cursor writes every slice in one call.
            let n =
                poll_fn(|cx| hyper::rt::Write::poll_write_vectored(Pin::new(&mut io), cx, &bufs))
                    .await
                    .unwrap();
            assert_eq!(n, 11);
            poll_fn(|cx| hyper::rt::Write::poll_shutdown(Pin::new(&mut io), cx))
                .await
                .unwrap();
        });
        assert!(hyper::rt::Write::is_write_vectored(&io));
        assert_eq!(io.into_inner().into_inner(), b"hello world");
    }
}
