//! The halves of a byte stream, written once for `TcpStream` and `UnixStream`:
//! `stream_halves!(Stream, Addr)` defines, in the module that invokes it, the borrowed
//! `ReadHalf`/`WriteHalf` (`Stream::split`), the owned `OwnedReadHalf`/`OwnedWriteHalf`
//! (`Stream::into_split`), `ReuniteError`, and the `split`/`split_owned` constructors.
//!
//! A macro rather than generic types: the halves are public types that users name
//! (`tcp::OwnedReadHalf`, `unix::OwnedReadHalf`, as in tokio), and generics over a
//! crate-private stream trait would leak that trait into the public API.
//!
//! Invariants: a half only uses its own direction's waiter list of the stream's one
//! registration; an owned write half shuts the write direction down when dropped (the peer
//! sees end of file while the read half lives on) unless `reunite` consumed it; the owned
//! halves share the stream through an `Arc`, so the registration lives until both are gone.
//!
//! The stream type must have `stream_io()` (the shared `StreamIo`), `shutdown`,
//! `local_addr` and `peer_addr`.

macro_rules! stream_halves {
    ($stream:ident, $addr:ty) => {
        use std::io::IoSlice;
        use std::net::Shutdown;
        use std::pin::Pin;
        use std::sync::Arc;
        use std::task::{Context, Poll};

        use futures_io::{AsyncRead, AsyncWrite};

        #[doc = concat!("The reading half of a borrowed split; see [`", stringify!($stream), "::split`].")]
        #[derive(Debug)]
        pub struct ReadHalf<'a>(&'a $stream);

        #[doc = concat!("The writing half of a borrowed split; see [`", stringify!($stream), "::split`].")]
        #[derive(Debug)]
        pub struct WriteHalf<'a>(&'a $stream);

        pub(crate) fn split(stream: &mut $stream) -> (ReadHalf<'_>, WriteHalf<'_>) {
            (ReadHalf(stream), WriteHalf(stream))
        }

        impl ReadHalf<'_> {
            #[doc = concat!("Like [`", stringify!($stream), "::read`] (cancel-safe).")]
            pub async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.0.stream_io().read(buf).await
            }

            #[doc = concat!("Like [`", stringify!($stream), "::read_exact`] (not cancel-safe).")]
            pub async fn read_exact(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
                self.0.stream_io().read_exact(buf).await
            }

            /// The local address.
            pub fn local_addr(&self) -> std::io::Result<$addr> {
                self.0.local_addr()
            }

            /// The peer's address.
            pub fn peer_addr(&self) -> std::io::Result<$addr> {
                self.0.peer_addr()
            }
        }

        impl WriteHalf<'_> {
            #[doc = concat!("Like [`", stringify!($stream), "::write`] (cancel-safe).")]
            pub async fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.stream_io().write(buf).await
            }

            #[doc = concat!("Like [`", stringify!($stream), "::write_all`] (not cancel-safe).")]
            pub async fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
                self.0.stream_io().write_all(buf).await
            }

            /// The local address.
            pub fn local_addr(&self) -> std::io::Result<$addr> {
                self.0.local_addr()
            }

            /// The peer's address.
            pub fn peer_addr(&self) -> std::io::Result<$addr> {
                self.0.peer_addr()
            }
        }

        impl AsyncRead for ReadHalf<'_> {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<std::io::Result<usize>> {
                self.0.stream_io().poll_read(cx, buf)
            }
        }

        impl AsyncWrite for WriteHalf<'_> {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<std::io::Result<usize>> {
                self.0.stream_io().poll_write(cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<std::io::Result<usize>> {
                self.0.stream_io().poll_write_vectored(cx, bufs)
            }

            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            /// Shuts down the write direction.
            fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
                Poll::Ready(self.0.shutdown(Shutdown::Write))
            }
        }

        #[doc = concat!("The reading half of [`", stringify!($stream), "::into_split`].")]
        #[derive(Debug)]
        pub struct OwnedReadHalf {
            inner: Arc<$stream>,
        }

        #[doc = concat!("The writing half of [`", stringify!($stream), "::into_split`]. Dropping it shuts down writing.")]
        #[derive(Debug)]
        pub struct OwnedWriteHalf {
            inner: Arc<$stream>,
            shutdown_on_drop: bool,
        }

        pub(crate) fn split_owned(stream: $stream) -> (OwnedReadHalf, OwnedWriteHalf) {
            let inner = Arc::new(stream);
            (
                OwnedReadHalf {
                    inner: inner.clone(),
                },
                OwnedWriteHalf {
                    inner,
                    shutdown_on_drop: true,
                },
            )
        }

        /// The halves passed to [`OwnedReadHalf::reunite`] came from different streams.
        #[derive(Debug)]
        pub struct ReuniteError(pub OwnedReadHalf, pub OwnedWriteHalf);

        impl std::fmt::Display for ReuniteError {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("tried to reunite halves that are not from the same socket")
            }
        }

        impl std::error::Error for ReuniteError {}

        impl OwnedReadHalf {
            #[doc = concat!("Puts the halves of one [`", stringify!($stream), "::into_split`] back together.")]
            pub fn reunite(self, mut other: OwnedWriteHalf) -> Result<$stream, ReuniteError> {
                if !Arc::ptr_eq(&self.inner, &other.inner) {
                    return Err(ReuniteError(self, other));
                }
                other.shutdown_on_drop = false;
                drop(other);
                Ok(Arc::try_unwrap(self.inner).expect("both halves were given back"))
            }

            #[doc = concat!("Like [`", stringify!($stream), "::read`] (cancel-safe).")]
            pub async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.inner.stream_io().read(buf).await
            }

            #[doc = concat!("Like [`", stringify!($stream), "::read_exact`] (not cancel-safe).")]
            pub async fn read_exact(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
                self.inner.stream_io().read_exact(buf).await
            }

            /// The local address.
            pub fn local_addr(&self) -> std::io::Result<$addr> {
                self.inner.local_addr()
            }

            /// The peer's address.
            pub fn peer_addr(&self) -> std::io::Result<$addr> {
                self.inner.peer_addr()
            }
        }

        impl OwnedWriteHalf {
            /// Like [`OwnedReadHalf::reunite`].
            pub fn reunite(self, other: OwnedReadHalf) -> Result<$stream, ReuniteError> {
                other.reunite(self)
            }

            #[doc = concat!("Like [`", stringify!($stream), "::write`] (cancel-safe).")]
            pub async fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.inner.stream_io().write(buf).await
            }

            #[doc = concat!("Like [`", stringify!($stream), "::write_all`] (not cancel-safe).")]
            pub async fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
                self.inner.stream_io().write_all(buf).await
            }

            /// The local address.
            pub fn local_addr(&self) -> std::io::Result<$addr> {
                self.inner.local_addr()
            }

            /// The peer's address.
            pub fn peer_addr(&self) -> std::io::Result<$addr> {
                self.inner.peer_addr()
            }
        }

        impl Drop for OwnedWriteHalf {
            fn drop(&mut self) {
                if self.shutdown_on_drop {
                    // The peer may already be gone (ENOTCONN): nothing to do about it.
                    let _ = self.inner.shutdown(Shutdown::Write);
                }
            }
        }

        impl AsyncRead for OwnedReadHalf {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<std::io::Result<usize>> {
                self.inner.stream_io().poll_read(cx, buf)
            }
        }

        impl AsyncWrite for OwnedWriteHalf {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<std::io::Result<usize>> {
                self.inner.stream_io().poll_write(cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<std::io::Result<usize>> {
                self.inner.stream_io().poll_write_vectored(cx, bufs)
            }

            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            /// Shuts down the write direction.
            fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
                Poll::Ready(self.inner.shutdown(Shutdown::Write))
            }
        }
    };
}

pub(crate) use stream_halves;
