//! Signals, with tokio's shapes: [`ctrl_c`] and, on Unix, [`unix::signal`].
//!
//! | module | owns |
//! | --- | --- |
//! | `globals` | the process-wide part: the handlers pinned for the life of the process, the registration of the async-signal-safe actions (the crate's only `unsafe`) |
//! | `pipe` | a reactor's own signal pipe and per-signal delivery counts; only the reactor's driver reads the pipe, and wakes every waiting `Signal` |
//! | [`unix`] | [`unix::Signal`] streams: the count seen, waiting in the reactor's waiter lists |
//! | `listener` | [`SignalListener`]: a listener on a plain thread, with its own pipe (no task, no waker: invisible to the deadlock detector) |
//!
//! Every listener has a pipe of its own to read (one per reactor, one per
//! `SignalListener`): a wake-up read by two readers is lost by one of them (`pipe.rs`).
//! A task waiting for a signal waits in the reactor's waiter lists like a socket read, so
//! the deadlock detector counts it as waiting for I/O and never reports a server that waits
//! for SIGTERM.

mod globals;
mod listener;
mod pipe;
pub mod unix;

pub use listener::SignalListener;
pub(crate) use pipe::SignalSlot;

use std::io;

/// Completes on the next Ctrl-C (SIGINT) delivered after the future is first polled.
///
/// The first call installs a SIGINT handler for the life of the process: Ctrl-C no longer
/// terminates it (as in tokio), so a program should exit itself once it saw one.
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// runnel_reactor::signal::ctrl_c().await?;
/// println!("Ctrl-C: shutting down");
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// The OS's error if the handler cannot be installed; "the runnel runtime has shut down" if
/// the runtime shut down while waiting.
///
/// # Panics
///
/// When polled where no runtime is entered (see [`Handle::current`](crate::Handle::current)).
pub async fn ctrl_c() -> io::Result<()> {
    let mut interrupts = unix::signal(unix::SignalKind::interrupt())?;
    match interrupts.recv().await {
        Some(()) => Ok(()),
        None => Err(crate::shutdown_error()),
    }
}
