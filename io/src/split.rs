//! [`split`]: tokio's free-function shape over `futures-util`'s lock-based halves.
//!
//! The halves share the stream behind a `BiLock`: a read and a write may be in flight at
//! once, each takes the lock only for the duration of one `poll_*` call.

use futures_io::{AsyncRead, AsyncWrite};
use futures_util::io::{AsyncReadExt, ReadHalf, WriteHalf};

/// Splits any reader-writer into a read half and a write half that can be moved to
/// different tasks. [`ReadHalf::reunite`] puts them back together.
///
/// For runnel's `TcpStream`, prefer its own
/// `split`/`into_split`, which need no lock.
///
/// ```
/// use runnel_io::{split, AsyncReadExt, AsyncWriteExt, Cursor};
/// # futures::executor::block_on(async {
/// let (mut rd, mut wr) = split(Cursor::new(vec![0u8; 5]));
/// wr.write_all(b"hi").await?;
/// let mut rest = Vec::new();
/// rd.read_to_end(&mut rest).await?;
/// assert_eq!(rest, [0, 0, 0]); // the cursor moved past what was written
/// assert_eq!(rd.reunite(wr).unwrap().into_inner(), [b'h', b'i', 0, 0, 0]);
/// # std::io::Result::Ok(()) }).unwrap();
/// ```
pub fn split<T>(stream: T) -> (ReadHalf<T>, WriteHalf<T>)
where
    T: AsyncRead + AsyncWrite,
{
    AsyncReadExt::split(stream)
}
