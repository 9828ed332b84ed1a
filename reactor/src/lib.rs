//! runnel's reactor: mio registrations, readiness and timers.
//!
//! The reactor knows nothing about the executor: it stores `std::task::Waker`s and hands
//! them to whoever drives it. Its parts:
//!
//! | module | owns |
//! | --- | --- |
//! | `driver` | [`Driver`]: the `mio::Poll`, used by the poller thread only (park, drain) |
//! | `handle` | [`Handle`]: shared state, the thread-local current handle, shutdown |
//! | `waiters` | [`Waiters`], [`Drained`]: the counts the deadlock detector reads |
//! | `sources` | the slab of registered sources, generation-checked tokens (`token`) |
//! | `scheduled_io`, `readiness` | per-source readiness word and waiter lists |
//! | `registration`, `poll_evented` | [`Registration`], [`PollEvented`]: what `net` builds on |
//! | `io_waiter` | [`IoWaiter`]: a future's own, withdrawable place in a waiter list |
//! | [`time`] | timing wheel, [`time::sleep`], [`time::timeout`], [`time::interval`] |
//! | [`coop`] | the cooperative budget leaf futures consume |
//!
//! The poller thread's loop and why it is three calls is in `driver.rs`; the waiter-count
//! invariants the deadlock detector relies on are in `waiters.rs`.

pub mod coop;
mod driver;
mod handle;
mod io_waiter;
mod poll_evented;
mod readiness;
mod registration;
mod scheduled_io;
mod sources;
mod sync;
pub mod time;
mod token;
mod waiters;

pub use driver::Driver;
pub use handle::{EnterGuard, Handle};
pub use io_waiter::IoWaiter;
pub use poll_evented::PollEvented;
pub use readiness::{Ready, ReadyEvent};
pub use registration::Registration;
pub use waiters::{Drained, Waiters};

/// The error every I/O operation returns once the runtime shut down.
pub(crate) fn shutdown_error() -> std::io::Error {
    std::io::Error::other("the runnel runtime has shut down")
}

/// Whether `error` is the one I/O returns after [`Handle::shutdown`].
pub fn is_shutdown_error(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::Other
        && error
            .get_ref()
            .is_some_and(|e| e.to_string() == "the runnel runtime has shut down")
}

#[cfg(test)]
mod tests;
