//! runnel's file system API, tokio's shape: each call runs the matching `std::fs` call as
//! one job on the current runtime's **blocking pool** (`spawn_blocking`), so a slow disk
//! never stalls a worker thread.
//!
//! Operating systems offer no portable readiness for regular files, so this is what
//! tokio does too. Each call costs a hand-off to a pool thread and back: for many small
//! operations, batch them into one [`spawn_blocking`](runnel_executor::spawn_blocking) of
//! your own. The deadlock detector counts a running blocking job as progress, so a task
//! waiting on a file operation is never reported as stuck.
//!
//! Invariants: every function here either completes its `std::fs` call on a pool thread
//! or panics before starting it (outside a runtime); a dropped future never cancels a job
//! already started (the call runs to completion in the background, as a `std` call would).
//!
//! # Outside a runtime
//!
//! These functions need the blocking pool of a current runnel runtime. Polled outside one
//! (e.g. under another executor), they **panic** with a message saying so, as tokio's do:
//! that is a program error, not an I/O condition to handle.
//!
//! # Cancel safety
//!
//! Dropping any of these futures before completion does not stop the `std::fs` call: it
//! still runs on the pool, and its result is discarded. So a dropped [`write()`] may still
//! write the file, a dropped [`rename`] may still rename it. [`ReadDir::next_entry`] is
//! cancel-safe (a dropped call's batch is kept for the next one).
//!
//! ```
//! # runnel_executor::Runtime::new().unwrap().block_on(async {
//! let dir = std::env::temp_dir().join(format!("runnel-fs-doc-{}", std::process::id()));
//! runnel_fs::create_dir_all(&dir).await?;
//! runnel_fs::write(dir.join("hello.txt"), "hello").await?;
//! assert_eq!(runnel_fs::read_to_string(dir.join("hello.txt")).await?, "hello");
//! runnel_fs::remove_dir_all(&dir).await?;
//! # std::io::Result::Ok(()) }).unwrap();
//! ```

mod blocking;
mod file;
mod open_options;
mod read_dir;

use std::fs::{Metadata, Permissions};
use std::io;
use std::path::{Path, PathBuf};

use blocking::asyncify;

pub use file::File;
pub use open_options::OpenOptions;
pub use read_dir::{read_dir, DirEntry, ReadDir};

/// Reads a whole file into a `Vec`; [`std::fs::read`] on the blocking pool.
pub async fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let path = path.as_ref().to_owned();
    asyncify(move || std::fs::read(path)).await
}

/// Reads a whole UTF-8 file into a `String`; [`std::fs::read_to_string`] on the blocking
/// pool.
pub async fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    let path = path.as_ref().to_owned();
    asyncify(move || std::fs::read_to_string(path)).await
}

/// Creates or truncates a file and writes `contents`; [`std::fs::write`] on the blocking
/// pool. The contents are copied once, to move them to the pool thread.
pub async fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    let contents = contents.as_ref().to_owned();
    asyncify(move || std::fs::write(path, contents)).await
}

/// Creates a directory; [`std::fs::create_dir`] on the blocking pool.
pub async fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    asyncify(move || std::fs::create_dir(path)).await
}

/// Creates a directory and all missing parents; [`std::fs::create_dir_all`] on the
/// blocking pool.
pub async fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    asyncify(move || std::fs::create_dir_all(path)).await
}

/// Removes a file; [`std::fs::remove_file`] on the blocking pool.
pub async fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    asyncify(move || std::fs::remove_file(path)).await
}

/// Removes an empty directory; [`std::fs::remove_dir`] on the blocking pool.
pub async fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    asyncify(move || std::fs::remove_dir(path)).await
}

/// Removes a directory and everything in it; [`std::fs::remove_dir_all`] on the blocking
/// pool (one job for the whole tree).
pub async fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    asyncify(move || std::fs::remove_dir_all(path)).await
}

/// Renames a file or directory, replacing `to` if it exists; [`std::fs::rename`] on the
/// blocking pool.
pub async fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let (from, to) = (from.as_ref().to_owned(), to.as_ref().to_owned());
    asyncify(move || std::fs::rename(from, to)).await
}

/// Copies a file's contents and permissions; [`std::fs::copy`] on the blocking pool.
pub async fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<u64> {
    let (from, to) = (from.as_ref().to_owned(), to.as_ref().to_owned());
    asyncify(move || std::fs::copy(from, to)).await
}

/// A path's metadata, following symlinks; [`std::fs::metadata`] on the blocking pool.
pub async fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    let path = path.as_ref().to_owned();
    asyncify(move || std::fs::metadata(path)).await
}

/// A path's metadata, not following symlinks; [`std::fs::symlink_metadata`] on the
/// blocking pool.
pub async fn symlink_metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    let path = path.as_ref().to_owned();
    asyncify(move || std::fs::symlink_metadata(path)).await
}

/// Whether a path exists, with errors other than "not found" reported;
/// [`std::fs::exists`]'s behaviour on the blocking pool.
pub async fn try_exists(path: impl AsRef<Path>) -> io::Result<bool> {
    let path = path.as_ref().to_owned();
    asyncify(move || match std::fs::metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    })
    .await
}

/// The absolute path with symlinks resolved; [`std::fs::canonicalize`] on the blocking
/// pool.
pub async fn canonicalize(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    let path = path.as_ref().to_owned();
    asyncify(move || std::fs::canonicalize(path)).await
}

/// Sets a path's permissions; [`std::fs::set_permissions`] on the blocking pool.
pub async fn set_permissions(path: impl AsRef<Path>, perm: Permissions) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    asyncify(move || std::fs::set_permissions(path, perm)).await
}
