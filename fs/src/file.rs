//! [`File`]: an open file driven through the blocking pool, tokio's design.
//!
//! Invariants:
//! - At most one blocking job per `File` is in flight (`State::Busy`); it owns the buffer
//!   while it runs and hands it back with its result, so no byte is shared between
//!   threads without a hand-off.
//! - In `State::Idle`, the buffer holds either nothing, or bytes read ahead and not yet
//!   returned (`pos..end`): the OS file position is then `remaining()` bytes past the
//!   position the user sees. A write, seek or `set_len` first moves it back.
//! - A write is accepted (copied into the buffer) before it reaches the OS; its error, if
//!   any, is kept in `write_error` and returned by the next write, flush or close.

use std::fmt;
use std::fs::{Metadata, Permissions};
use std::future::{poll_fn, Future};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use futures_io::{AsyncRead, AsyncSeek, AsyncWrite};
use runnel_executor::JoinHandle;

use crate::blocking::{asyncify, join_error, spawn};
use crate::OpenOptions;

/// The largest chunk one blocking job reads or writes, as tokio's default.
const DEFAULT_MAX_BUF_SIZE: usize = 2 * 1024 * 1024;

/// An open file, tokio's `fs::File` for the `futures-io` traits: it implements
/// [`AsyncRead`], [`AsyncWrite`] and [`AsyncSeek`], so `runnel::io`'s extension traits
/// (`read_to_end`, `write_all`, `seek`, `BufReader`, ...) work on it.
///
/// # How it works: the blocking pool
///
/// Each read, write or seek is a job on the runtime's blocking pool, with at most one in
/// flight per file and an internal buffer of up to 2 MiB
/// ([`set_max_buf_size`](Self::set_max_buf_size)) moved to the pool thread and back:
///
/// - a **read** asks the OS for up to the caller's buffer length (capped at the maximum)
///   and returns what came back;
/// - a **write** copies the caller's bytes into the buffer and returns `Ok(n)` at once;
///   the OS write happens in the background. **Call `flush()` (`AsyncWriteExt::flush`; or
///   [`sync_all`](Self::sync_all)) before relying on the data or dropping the file**: a
///   write error is only seen by a later write or flush, and a file dropped with a write
///   in flight finishes it in the background with nobody to tell of an error;
/// - a **seek** waits for the job in flight, then runs on the pool.
///
/// Calling `flush` does not `fsync`: [`sync_all`](Self::sync_all) and
/// [`sync_data`](Self::sync_data) do, after flushing.
///
/// Unlike tokio's, the methods that must first finish the job in flight
/// (`sync_all`, `sync_data`, `set_len`) take `&mut self`.
///
/// ```
/// use runnel_io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, SeekFrom};
/// # runnel_executor::Runtime::new().unwrap().block_on(async {
/// let path = std::env::temp_dir().join(format!("runnel-file-doc-{}", std::process::id()));
/// let mut file = runnel_fs::File::create(&path).await?;
/// file.write_all(b"hello, world").await?;
/// file.flush().await?; // reports a failed background write, if any
///
/// let mut file = runnel_fs::File::open(&path).await?;
/// file.seek(SeekFrom::Start(7)).await?;
/// let mut word = String::new();
/// file.read_to_string(&mut word).await?;
/// assert_eq!(word, "world");
/// runnel_fs::remove_file(&path).await?;
/// # std::io::Result::Ok(()) }).unwrap();
/// ```
pub struct File {
    std: Arc<std::fs::File>,
    state: State,
    /// A background write's error, for the next write, flush or close to return.
    write_error: Option<io::Error>,
    /// The target of a seek started by `poll_seek` whose result was not yet returned.
    seeking: Option<SeekFrom>,
    max_buf_size: usize,
}

enum State {
    /// `None` only while a method moves the buffer into a new job.
    Idle(Option<Buf>),
    Busy(JoinHandle<(Op, Buf)>),
}

/// What a finished job did.
enum Op {
    Read(io::Result<()>),
    Write(io::Result<()>),
    Seek(io::Result<u64>),
}

/// Bytes moved between the caller and a pool thread: `data[pos..end]` not yet consumed.
/// `data` only grows (zeroed once, when it does), so a read job does not clear
/// megabytes of memory each time.
#[derive(Default)]
struct Buf {
    data: Vec<u8>,
    pos: usize,
    end: usize,
}

impl Buf {
    fn remaining(&self) -> usize {
        self.end - self.pos
    }

    fn copy_to(&mut self, dst: &mut [u8]) -> usize {
        let n = dst.len().min(self.remaining());
        dst[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        if self.pos == self.end {
            self.clear();
        }
        n
    }

    fn copy_from(&mut self, src: &[u8], max: usize) -> usize {
        debug_assert_eq!(self.remaining(), 0, "copy_from over unread data");
        let n = src.len().min(max);
        self.grow(n);
        self.data[..n].copy_from_slice(&src[..n]);
        self.pos = 0;
        self.end = n;
        n
    }

    fn grow(&mut self, len: usize) {
        if self.data.len() < len {
            self.data.resize(len, 0);
        }
    }

    fn clear(&mut self) {
        self.pos = 0;
        self.end = 0;
    }

    /// Drops the read-ahead bytes; returns how far the OS position is ahead (negated).
    fn discard_read(&mut self) -> i64 {
        let ahead = self.remaining() as i64;
        self.clear();
        -ahead
    }

    /// On a pool thread: one `read` of up to `len` bytes.
    fn read_from(&mut self, mut file: &std::fs::File, len: usize) -> io::Result<()> {
        self.grow(len);
        self.clear();
        let n = loop {
            match file.read(&mut self.data[..len]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        self.end = n;
        Ok(())
    }

    /// On a pool thread: writes all of the buffer.
    fn write_to(&mut self, mut file: &std::fs::File) -> io::Result<()> {
        let result = file.write_all(&self.data[self.pos..self.end]);
        self.clear();
        result
    }
}

impl File {
    /// Opens a file for reading, as [`std::fs::File::open`].
    ///
    /// # Errors
    /// The `std::fs` error, e.g. [`io::ErrorKind::NotFound`].
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path).await
    }

    /// Opens a file for writing, creating or truncating it, as [`std::fs::File::create`].
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .await
    }

    /// Creates a new file for reading and writing, failing if it exists, as
    /// [`std::fs::File::create_new`].
    pub async fn create_new(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .await
    }

    /// A blank [`OpenOptions`], as [`std::fs::File::options`].
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Wraps an open `std` file.
    pub fn from_std(std: std::fs::File) -> File {
        File {
            std: Arc::new(std),
            state: State::Idle(Some(Buf::default())),
            write_error: None,
            seeking: None,
            max_buf_size: DEFAULT_MAX_BUF_SIZE,
        }
    }

    /// Sets the largest chunk one blocking job reads or writes (default 2 MiB).
    ///
    /// # Panics
    /// If `max_buf_size` is 0: no read or write could progress.
    pub fn set_max_buf_size(&mut self, max_buf_size: usize) {
        assert!(
            max_buf_size > 0,
            "File::set_max_buf_size(0): the buffer must hold at least one byte"
        );
        self.max_buf_size = max_buf_size;
    }

    /// Finishes the write in flight, then `fsync`s data and metadata
    /// ([`std::fs::File::sync_all`]).
    pub async fn sync_all(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_settle(cx)).await?;
        let std = self.std.clone();
        asyncify(move || std.sync_all()).await
    }

    /// Finishes the write in flight, then `fdatasync`s ([`std::fs::File::sync_data`]).
    pub async fn sync_data(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_settle(cx)).await?;
        let std = self.std.clone();
        asyncify(move || std.sync_data()).await
    }

    /// Finishes the job in flight, then truncates or extends the file to `size` bytes
    /// ([`std::fs::File::set_len`]). The position does not move.
    pub async fn set_len(&mut self, size: u64) -> io::Result<()> {
        poll_fn(|cx| self.poll_settle(cx)).await?;
        let back = self.idle_buf().discard_read();
        let std = self.std.clone();
        asyncify(move || {
            if back != 0 {
                (&*std).seek(SeekFrom::Current(back))?;
            }
            std.set_len(size)
        })
        .await
    }

    /// The file's metadata ([`std::fs::File::metadata`]); a write still in flight may not
    /// be reflected in its length: flush first.
    pub async fn metadata(&self) -> io::Result<Metadata> {
        let std = self.std.clone();
        asyncify(move || std.metadata()).await
    }

    /// Changes the file's permissions ([`std::fs::File::set_permissions`]).
    pub async fn set_permissions(&self, perm: Permissions) -> io::Result<()> {
        let std = self.std.clone();
        asyncify(move || std.set_permissions(perm)).await
    }

    /// A new `File` for the same open file description ([`std::fs::File::try_clone`]).
    pub async fn try_clone(&self) -> io::Result<File> {
        let std = self.std.clone();
        asyncify(move || std.try_clone()).await.map(File::from_std)
    }

    /// Finishes the job in flight (ignoring a write error, as tokio), and returns the
    /// `std` file. Read-ahead bytes are given back by seeking the position back.
    pub async fn into_std(mut self) -> std::fs::File {
        let _ = poll_fn(|cx| self.poll_settle(cx)).await;
        let back = self.idle_buf().discard_read();
        let std = Arc::try_unwrap(self.std)
            .expect("no blocking job holds the file once the job in flight has finished");
        if back != 0 {
            let _ = (&std).seek(SeekFrom::Current(back));
        }
        std
    }

    /// The `std` file if no job is in flight and nothing was read ahead, else `self`.
    pub fn try_into_std(self) -> Result<std::fs::File, File> {
        match &self.state {
            State::Idle(Some(buf)) if buf.remaining() == 0 => {
                let File { std, state, .. } = self;
                Arc::try_unwrap(std).map_err(|std| File {
                    std,
                    state,
                    write_error: None,
                    seeking: None,
                    max_buf_size: DEFAULT_MAX_BUF_SIZE,
                })
            }
            _ => Err(self),
        }
    }

    fn idle_buf(&mut self) -> &mut Buf {
        match &mut self.state {
            State::Idle(Some(buf)) => buf,
            _ => unreachable!("File: buffer asked for while a job is in flight"),
        }
    }

    /// Waits for the job in flight and takes its result back into `self`.
    ///
    /// Returns the finished operation. A seek not asked for by the pending `poll_seek`
    /// target, and a read nobody consumed, only update the state.
    fn poll_job(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Op>> {
        let State::Busy(job) = &mut self.state else {
            unreachable!("File::poll_job while idle")
        };
        let result = ready!(Pin::new(job).poll(cx));
        match result {
            Ok((op, buf)) => {
                self.state = State::Idle(Some(buf));
                Poll::Ready(Ok(op))
            }
            Err(e) => {
                // The runtime shut down (or the job panicked): the buffer is gone with it.
                self.state = State::Idle(Some(Buf::default()));
                self.seeking = None;
                Poll::Ready(Err(join_error(e)))
            }
        }
    }

    /// Finishes the job in flight; Ready with the first write error since the last report.
    fn poll_settle(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let State::Busy(_) = self.state {
            match ready!(self.poll_job(cx))? {
                Op::Write(Err(e)) => self.write_error = Some(e),
                Op::Seek(_) => self.seeking = None,
                Op::Read(_) | Op::Write(Ok(())) => {}
            }
        }
        match self.write_error.take() {
            Some(e) => Poll::Ready(Err(e)),
            None => Poll::Ready(Ok(())),
        }
    }

    fn start(&mut self, job: impl FnOnce(&std::fs::File, &mut Buf) -> Op + Send + 'static) {
        let mut buf = match &mut self.state {
            State::Idle(buf) => buf.take().expect("File: idle without its buffer"),
            State::Busy(_) => unreachable!("File: a second job while one is in flight"),
        };
        let std = self.std.clone();
        self.state = State::Busy(spawn(move || {
            let op = job(&std, &mut buf);
            (op, buf)
        }));
    }
}

impl AsyncRead for File {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        dst: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        loop {
            match &mut me.state {
                State::Idle(buf) => {
                    let buf = buf.as_mut().expect("File: idle without its buffer");
                    if buf.remaining() > 0 || dst.is_empty() {
                        return Poll::Ready(Ok(buf.copy_to(dst)));
                    }
                    let len = dst.len().min(me.max_buf_size);
                    me.start(move |file, buf| Op::Read(buf.read_from(file, len)));
                }
                State::Busy(_) => match ready!(me.poll_job(cx))? {
                    Op::Read(Ok(())) => {
                        // May be 0 bytes: end of file, returned as such (never re-read here).
                        let buf = me.idle_buf();
                        return Poll::Ready(Ok(buf.copy_to(dst)));
                    }
                    Op::Read(Err(e)) => return Poll::Ready(Err(e)),
                    Op::Write(Err(e)) => me.write_error = Some(e),
                    Op::Seek(_) => me.seeking = None,
                    Op::Write(Ok(())) => {}
                },
            }
        }
    }
}

impl AsyncWrite for File {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        src: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if let Some(e) = me.write_error.take() {
            return Poll::Ready(Err(e));
        }
        loop {
            match &mut me.state {
                State::Idle(_) => {
                    if src.is_empty() {
                        return Poll::Ready(Ok(0));
                    }
                    let max = me.max_buf_size;
                    let buf = me.idle_buf();
                    // Read-ahead bytes put the OS position past the user's: go back first.
                    let back = buf.discard_read();
                    let n = buf.copy_from(src, max);
                    me.start(move |mut file, buf| {
                        if back != 0 {
                            if let Err(e) = file.seek(SeekFrom::Current(back)) {
                                buf.clear();
                                return Op::Write(Err(e));
                            }
                        }
                        Op::Write(buf.write_to(file))
                    });
                    return Poll::Ready(Ok(n));
                }
                State::Busy(_) => match ready!(me.poll_job(cx))? {
                    Op::Write(Err(e)) => return Poll::Ready(Err(e)),
                    Op::Seek(_) => me.seeking = None,
                    // A read nobody consumed: its bytes are read-ahead, undone above.
                    Op::Read(_) | Op::Write(Ok(())) => {}
                },
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_settle(cx)
    }

    /// A file has no write shutdown: closing is flushing. The file itself closes on drop.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_settle(cx)
    }
}

impl AsyncSeek for File {
    /// Waits for the job in flight, then seeks on the pool. If a previous seek's future
    /// was dropped before it finished, a call with the same target returns that seek's
    /// result instead of seeking again; a different target seeks from where it left.
    fn poll_seek(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        pos: SeekFrom,
    ) -> Poll<io::Result<u64>> {
        let me = self.get_mut();
        loop {
            match &mut me.state {
                State::Idle(_) => {
                    let back = me.idle_buf().discard_read();
                    let target = match pos {
                        SeekFrom::Current(offset) => {
                            SeekFrom::Current(offset.checked_add(back).ok_or_else(|| {
                                io::Error::new(
                                    io::ErrorKind::InvalidInput,
                                    "File::seek: offset out of range",
                                )
                            })?)
                        }
                        other => other,
                    };
                    me.seeking = Some(pos);
                    me.start(move |mut file, _| Op::Seek(file.seek(target)));
                }
                State::Busy(_) => match ready!(me.poll_job(cx))? {
                    Op::Seek(result) => {
                        if me.seeking.take() == Some(pos) {
                            return Poll::Ready(result);
                        }
                    }
                    Op::Write(Err(e)) => me.write_error = Some(e),
                    Op::Read(_) | Op::Write(Ok(())) => {}
                },
            }
        }
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File")
            .field("std", &self.std)
            .field("busy", &matches!(self.state, State::Busy(_)))
            .finish()
    }
}

impl From<std::fs::File> for File {
    fn from(std: std::fs::File) -> File {
        File::from_std(std)
    }
}

#[cfg(unix)]
impl std::os::fd::AsRawFd for File {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.std.as_raw_fd()
    }
}

#[cfg(unix)]
impl std::os::fd::AsFd for File {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.std.as_fd()
    }
}

#[cfg(test)]
mod tests {
    //! The read-ahead invariant, set up directly: a read that completed on the pool after
    //! its future was dropped leaves bytes in the buffer, and the OS position past them.

    use super::*;
    use futures_util::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

    /// Removes the test's file even when an assertion fails.
    struct Remove(std::path::PathBuf);

    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// A file holding `abcdef` whose last read fetched `abcd` that nobody consumed.
    fn with_read_ahead(name: &str) -> (File, Remove) {
        let path =
            std::env::temp_dir().join(format!("runnel-fs-unit-{name}-{}", std::process::id()));
        std::fs::write(&path, "abcdef").unwrap();
        let std = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        (&std).seek(SeekFrom::Start(4)).unwrap();
        let mut file = File::from_std(std);
        file.state = State::Idle(Some(Buf {
            data: b"abcd".to_vec(),
            pos: 0,
            end: 4,
        }));
        (file, Remove(path))
    }

    fn run<T>(f: impl Future<Output = T>) -> T {
        runnel_executor::Runtime::new().unwrap().block_on(f)
    }

    #[test]
    fn write_after_read_ahead_lands_at_the_users_position() {
        let (mut file, path) = with_read_ahead("write");
        run(async {
            let mut two = [0u8; 2];
            file.read_exact(&mut two).await.unwrap(); // from the buffer
            assert_eq!(&two, b"ab");
            file.write_all(b"XY").await.unwrap();
            file.flush().await.unwrap();
        });
        assert_eq!(std::fs::read_to_string(&path.0).unwrap(), "abXYef");
    }

    #[test]
    fn relative_seek_after_read_ahead_counts_from_the_users_position() {
        let (mut file, _path) = with_read_ahead("seek");
        let pos = run(async { file.seek(SeekFrom::Current(1)).await.unwrap() });
        assert_eq!(pos, 1);
    }

    #[test]
    fn into_std_gives_back_the_read_ahead() {
        let (file, _path) = with_read_ahead("into-std");
        let mut std = run(file.into_std());
        assert_eq!(std.stream_position().unwrap(), 0);
    }
}
