//! The one way this crate reaches the blocking pool: [`spawn`] on the current runtime,
//! with a panic naming `runnel::fs` when there is none, and [`asyncify`] to await a job.

use std::io;

use runnel_executor::{Handle, JoinHandle};

/// Starts `f` on the current runtime's blocking pool.
///
/// # Panics
/// Outside a runnel runtime, with a message saying how to fix the call site.
pub(crate) fn spawn<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    match Handle::try_current() {
        // The Handle is a temporary: it is dropped before the caller awaits, so it never
        // counts as an outside holder while anything waits.
        Ok(handle) => handle.spawn_blocking(f),
        Err(_) => panic!(
            "runnel::fs used outside a runnel runtime: file operations run on the runtime's \
             blocking pool. Call them from code running inside Runtime::block_on, a spawned \
             task, or a #[runnel::main] / #[runnel::test] function (or enter a runtime with \
             Runtime::enter); under another executor, use std::fs in its own blocking pool"
        ),
    }
}

/// Runs `f` on the blocking pool and returns its result.
pub(crate) async fn asyncify<F, T>(f: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    spawn(f).await.unwrap_or_else(|e| Err(join_error(e)))
}

/// A blocking job that did not return: it panicked, or the runtime shut down first.
pub(crate) fn join_error(e: runnel_executor::JoinError) -> io::Error {
    if e.is_panic() {
        io::Error::other(format!(
            "runnel::fs: the blocking file operation panicked: {e}"
        ))
    } else {
        io::Error::other("runnel::fs: the runtime shut down before the file operation ran")
    }
}
