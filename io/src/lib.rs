//! runnel's I/O utilities, over the `futures-io` traits that runnel's sockets and files
//! implement ([`AsyncRead`], [`AsyncWrite`], [`AsyncBufRead`], [`AsyncSeek`]).
//!
//! This crate owns no runtime state: everything here is a plain adapter or future that
//! works on any executor. What `futures-util` already provides is re-exported as is (the
//! extension traits, [`BufReader`], [`BufWriter`], [`copy`], [`empty`], [`sink`],
//! [`repeat`], [`split`]'s halves); only what it lacks is written here:
//! [`copy_bidirectional`] (for proxies) and the free function [`split`] (tokio's shape).
//!
//! ```
//! use runnel_io::{AsyncReadExt, AsyncWriteExt, BufReader, AsyncBufReadExt};
//! # futures::executor::block_on(async {
//! let mut out = Vec::new();
//! out.write_all(b"hello\nworld\n").await?;
//! let mut lines = BufReader::new(&out[..]);
//! let mut first = String::new();
//! lines.read_line(&mut first).await?;
//! assert_eq!(first, "hello\n");
//! let mut rest = String::new();
//! lines.read_to_string(&mut rest).await?;
//! assert_eq!(rest, "world\n");
//! # std::io::Result::Ok(()) }).unwrap();
//! ```
//!
//! # Names that differ from tokio
//!
//! The extension traits are `futures-util`'s, so a few methods have its names:
//! tokio's `shutdown()` is [`AsyncWriteExt::close`] (on a TCP stream it shuts down the
//! write half); `read_buf` and the `read_u32`-style helpers do not exist (use
//! [`AsyncReadExt::read_exact`] into an array and `u32::from_be_bytes`).
//!
//! # Cancel safety
//!
//! A future is *cancel-safe* when dropping it before it completes (a `select!` branch
//! that lost, a `timeout` that fired) loses nothing: calling it again later behaves as
//! if the first call never happened.
//!
//! | future | cancel-safe | if dropped early |
//! | --- | --- | --- |
//! | [`AsyncReadExt::read`], [`AsyncReadExt::read_vectored`] | yes | no byte was consumed |
//! | [`AsyncReadExt::read_exact`] | no | the bytes read so far are in the buffer, but how many is unknown |
//! | [`AsyncReadExt::read_to_end`], [`AsyncReadExt::read_to_string`] | no | the bytes read so far stay appended to the buffer (for `read_to_string`, only if they were valid UTF-8 up to then) |
//! | [`AsyncBufReadExt::fill_buf`] | yes | data stays in the reader's buffer |
//! | [`AsyncBufReadExt::read_line`], [`AsyncBufReadExt::read_until`] | no | `read_line` leaves the `String` empty: its old contents and the partial line are lost; `read_until` keeps the partial line in the buffer |
//! | [`AsyncWriteExt::write`], [`AsyncWriteExt::write_vectored`] | yes | nothing was written |
//! | [`AsyncWriteExt::write_all`] | no | an unknown prefix was written |
//! | [`AsyncWriteExt::flush`], [`AsyncWriteExt::close`] | yes | call it again to finish |
//! | [`AsyncSeekExt::seek`] | no | the position may or may not have moved |
//! | [`copy`], [`copy_buf`], [`copy_bidirectional`] | no | bytes read but not yet written are lost |
//!
//! A stream returned by [`AsyncBufReadExt::lines`] is cancel-safe between items: dropping
//! a `next()` future keeps the partial line inside the `Lines` stream.

mod bidirectional;
mod split;

pub use bidirectional::copy_bidirectional;
pub use split::split;

pub use futures_io::{AsyncBufRead, AsyncRead, AsyncSeek, AsyncWrite};
pub use futures_util::io::{
    copy, copy_buf, empty, repeat, sink, AllowStdIo, AsyncBufReadExt, AsyncReadExt, AsyncSeekExt,
    AsyncWriteExt, BufReader, BufWriter, Chain, Cursor, Empty, LineWriter, Lines, ReadHalf, Repeat,
    ReuniteError, Sink, Take, WriteHalf,
};
pub use std::io::{Error, ErrorKind, IoSlice, IoSliceMut, Result, SeekFrom};
