//! Signals, with tokio's shapes: [`ctrl_c`] and, on Unix, [`unix::signal`].
//!
//! | module | owns |
//! | --- | --- |
//! | `globals` | the process-wide self-pipe, per-signal delivery counts, the installed handlers (the crate's only `unsafe`) |
//! | [`unix`] | [`unix::Signal`] streams: a descriptor of the pipe registered with the reactor, and the count seen |
//! | `listener` | [`SignalListener`]: a listener on a plain thread, with its own pipe (no task, no waker: invisible to the deadlock detector) |
//!
//! A task waiting for a signal waits on a reactor registration like a socket read, so the
//! deadlock detector counts it as waiting for I/O and never reports a server that waits for
//! SIGTERM.

mod globals;
mod listener;
pub mod unix;

pub use listener::SignalListener;

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
