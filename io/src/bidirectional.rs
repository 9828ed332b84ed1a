//! [`copy_bidirectional`]: two copies, `a → b` and `b → a`, driven by one future.
//!
//! Invariants: each direction owns one buffer; a byte counts as copied only once the
//! writer accepted it; a direction whose reader reached end of file flushes, then closes
//! its writer (a TCP write half-close), and is then done while the other direction goes on.
//! The future finishes when both directions are done, or at the first error.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

/// Per-direction buffer size, as tokio's.
const BUF_SIZE: usize = 8 * 1024;

/// Copies data both ways between `a` and `b` until both reach end of file, and returns
/// `(bytes a → b, bytes b → a)`, as tokio's `copy_bidirectional`.
///
/// When one side's reader reaches end of file, the other side's writer is flushed and
/// closed ([`AsyncWrite::poll_close`], a write shutdown on a TCP stream), so a half-close
/// passes through while data keeps flowing the other way.
///
/// # Cancel safety
///
/// Not cancel-safe: dropping the future loses bytes read from one side and not yet
/// written to the other (at most 8 KiB per direction).
///
/// # Errors
///
/// The first error from either side ends the copy; a writer accepting 0 bytes is
/// [`io::ErrorKind::WriteZero`].
///
/// ```
/// # futures::executor::block_on(async {
/// // A proxy's inner loop: `client` and `upstream` are any AsyncRead + AsyncWrite + Unpin.
/// async fn proxy<C, U>(mut client: C, mut upstream: U) -> std::io::Result<()>
/// where
///     C: runnel_io::AsyncRead + runnel_io::AsyncWrite + Unpin,
///     U: runnel_io::AsyncRead + runnel_io::AsyncWrite + Unpin,
/// {
///     let (up, down) = runnel_io::copy_bidirectional(&mut client, &mut upstream).await?;
///     println!("{up} bytes up, {down} bytes down");
///     Ok(())
/// }
/// # let _ = proxy::<runnel_io::Cursor<Vec<u8>>, runnel_io::Cursor<Vec<u8>>>;
/// # });
/// ```
pub async fn copy_bidirectional<A, B>(a: &mut A, b: &mut B) -> io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let mut a_to_b = Direction::new();
    let mut b_to_a = Direction::new();
    poll_fn(|cx| {
        // Poll both every time: each registers its own interest, and a pending one must
        // not keep the other from progressing.
        let ab = a_to_b.poll(cx, Pin::new(&mut *a), Pin::new(&mut *b))?;
        let ba = b_to_a.poll(cx, Pin::new(&mut *b), Pin::new(&mut *a))?;
        match (ab, ba) {
            (Poll::Ready(ab), Poll::Ready(ba)) => Poll::Ready(Ok((ab, ba))),
            _ => Poll::Pending,
        }
    })
    .await
}

enum Direction {
    Copying(Transfer),
    Closing(u64),
    Done(u64),
}

impl Direction {
    fn new() -> Direction {
        Direction::Copying(Transfer {
            buf: vec![0; BUF_SIZE].into_boxed_slice(),
            pos: 0,
            end: 0,
            copied: 0,
            eof: false,
            unflushed: false,
        })
    }

    fn poll<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        reader: Pin<&mut R>,
        mut writer: Pin<&mut W>,
    ) -> Poll<io::Result<u64>>
    where
        R: AsyncRead + ?Sized,
        W: AsyncWrite + ?Sized,
    {
        match self {
            Direction::Copying(transfer) => {
                let copied = ready!(transfer.poll(cx, reader, writer.as_mut()))?;
                *self = Direction::Closing(copied);
                self.poll_closing(cx, writer)
            }
            Direction::Closing(_) => self.poll_closing(cx, writer),
            Direction::Done(copied) => Poll::Ready(Ok(*copied)),
        }
    }

    fn poll_closing<W: AsyncWrite + ?Sized>(
        &mut self,
        cx: &mut Context<'_>,
        writer: Pin<&mut W>,
    ) -> Poll<io::Result<u64>> {
        let Direction::Closing(copied) = *self else {
            unreachable!("poll_closing outside the closing state")
        };
        ready!(writer.poll_close(cx))?;
        *self = Direction::Done(copied);
        Poll::Ready(Ok(copied))
    }
}

/// One direction's copy loop: read into `buf[..end]`, write out `buf[pos..end]`.
struct Transfer {
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    copied: u64,
    eof: bool,
    /// Bytes were written since the last flush: flush before waiting on the reader, so a
    /// buffering writer does not sit on a request while the peer waits for it.
    unflushed: bool,
}

impl Transfer {
    /// Ready with the byte count once the reader hit end of file and the writer flushed.
    fn poll<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        mut reader: Pin<&mut R>,
        mut writer: Pin<&mut W>,
    ) -> Poll<io::Result<u64>>
    where
        R: AsyncRead + ?Sized,
        W: AsyncWrite + ?Sized,
    {
        loop {
            if self.pos == self.end && !self.eof {
                match reader.as_mut().poll_read(cx, &mut self.buf) {
                    Poll::Ready(Ok(0)) => self.eof = true,
                    Poll::Ready(Ok(n)) => {
                        self.pos = 0;
                        self.end = n;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {
                        if self.unflushed {
                            ready!(writer.as_mut().poll_flush(cx))?;
                            self.unflushed = false;
                        }
                        return Poll::Pending;
                    }
                }
            }
            while self.pos < self.end {
                let n = ready!(writer
                    .as_mut()
                    .poll_write(cx, &self.buf[self.pos..self.end]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "copy_bidirectional: the writer accepted 0 bytes",
                    )));
                }
                self.pos += n;
                self.copied += n as u64;
                self.unflushed = true;
            }
            if self.eof {
                ready!(writer.as_mut().poll_flush(cx))?;
                return Poll::Ready(Ok(self.copied));
            }
        }
    }
}
