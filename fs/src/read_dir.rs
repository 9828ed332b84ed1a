//! [`read_dir`] and [`ReadDir`]: a directory listing read in batches on the blocking pool.
//!
//! Invariants: at most one batch job is in flight; the `std::fs::ReadDir` iterator lives
//! either in `State::Idle` or inside that job, never both; a dropped `next_entry` leaves
//! the job's handle in `self`, so no batch is lost (cancel-safe).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::{FileType, Metadata};
use std::future::{poll_fn, Future};
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use runnel_executor::JoinHandle;

use crate::blocking::{asyncify, join_error, spawn};

/// Entries read per blocking-pool job: one hand-off per 32 entries, as tokio.
const BATCH: usize = 32;

/// Opens a directory for listing; [`std::fs::read_dir`] on the blocking pool. The
/// entries come from [`ReadDir::next_entry`] (or `ReadDir` as a `Stream`).
///
/// ```
/// # runnel_executor::Runtime::new().unwrap().block_on(async {
/// let mut entries = runnel_fs::read_dir(".").await?;
/// while let Some(entry) = entries.next_entry().await? {
///     println!("{}", entry.path().display());
/// }
/// # std::io::Result::Ok(()) }).unwrap();
/// ```
pub async fn read_dir(path: impl AsRef<Path>) -> io::Result<ReadDir> {
    let path = path.as_ref().to_owned();
    let std = asyncify(move || std::fs::read_dir(path)).await?;
    Ok(ReadDir {
        state: State::Idle(Some(Batch {
            entries: VecDeque::new(),
            std,
            more: true,
        })),
    })
}

/// The entries of a directory, made by [`read_dir`]; std's order (unspecified), without
/// `.` and `..`.
#[derive(Debug)]
pub struct ReadDir {
    state: State,
}

#[derive(Debug)]
enum State {
    /// `None` once the listing ended in a failed job: the listing is over.
    Idle(Option<Batch>),
    Reading(JoinHandle<Batch>),
}

#[derive(Debug)]
struct Batch {
    entries: VecDeque<io::Result<DirEntry>>,
    std: std::fs::ReadDir,
    /// The std iterator may have more entries.
    more: bool,
}

impl ReadDir {
    /// The next entry, or `None` at the end.
    ///
    /// # Cancel safety
    /// Cancel-safe: a batch being read when the future is dropped is kept for the next call.
    pub async fn next_entry(&mut self) -> io::Result<Option<DirEntry>> {
        poll_fn(|cx| self.poll_next_entry(cx)).await
    }

    /// The polling form of [`next_entry`](Self::next_entry).
    pub fn poll_next_entry(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<DirEntry>>> {
        loop {
            match &mut self.state {
                State::Idle(slot) => {
                    let Some(batch) = slot else {
                        return Poll::Ready(Ok(None));
                    };
                    if let Some(entry) = batch.entries.pop_front() {
                        return Poll::Ready(entry.map(Some));
                    }
                    if !batch.more {
                        return Poll::Ready(Ok(None));
                    }
                    let mut batch = slot.take().expect("checked above");
                    self.state = State::Reading(spawn(move || {
                        for _ in 0..BATCH {
                            match batch.std.next() {
                                Some(entry) => batch.entries.push_back(entry.map(DirEntry::new)),
                                None => {
                                    batch.more = false;
                                    break;
                                }
                            }
                        }
                        batch
                    }));
                }
                State::Reading(job) => match ready!(Pin::new(job).poll(cx)) {
                    Ok(batch) => self.state = State::Idle(Some(batch)),
                    Err(e) => {
                        self.state = State::Idle(None);
                        return Poll::Ready(Err(join_error(e)));
                    }
                },
            }
        }
    }
}

impl futures_core::Stream for ReadDir {
    type Item = io::Result<DirEntry>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut()
            .poll_next_entry(cx)
            .map(|entry| entry.transpose())
    }
}

/// One entry of a [`ReadDir`]; cheap to clone.
#[derive(Clone, Debug)]
pub struct DirEntry(Arc<std::fs::DirEntry>);

impl DirEntry {
    fn new(std: std::fs::DirEntry) -> DirEntry {
        DirEntry(Arc::new(std))
    }

    /// The full path: the `read_dir` argument joined with [`file_name`](Self::file_name).
    pub fn path(&self) -> PathBuf {
        self.0.path()
    }

    /// The bare file name, without any leading path.
    pub fn file_name(&self) -> OsString {
        self.0.file_name()
    }

    /// The entry's metadata, not following symlinks; on the blocking pool.
    pub async fn metadata(&self) -> io::Result<Metadata> {
        let entry = self.0.clone();
        asyncify(move || entry.metadata()).await
    }

    /// The entry's file type, not following symlinks; on the blocking pool (on most
    /// platforms std answers from the listing itself, but it may need a `stat`).
    pub async fn file_type(&self) -> io::Result<FileType> {
        let entry = self.0.clone();
        asyncify(move || entry.file_type()).await
    }
}

#[cfg(unix)]
impl DirEntry {
    /// The entry's inode number, from the listing (no system call).
    pub fn ino(&self) -> u64 {
        std::os::unix::fs::DirEntryExt::ino(&*self.0)
    }
}
