//! runnel's reactor: mio registrations, readiness and timers.
//!
//! The reactor knows nothing about the executor: it stores `std::task::Waker`s and hands
//! them to whoever drives it. Its parts:
//!
//! | module | owns |
//! | --- | --- |
//! | `driver` | [`Driver`]: the `mio::Poll` (park, drain), used by one thread at a time |
//! | `handle` | [`Handle`]: shared state, the thread-local current handle, shutdown |
//! | `waiters` | [`Waiters`], [`Drained`]: the counts the deadlock detector reads |
//! | `sources` | the slab of registered sources, generation-checked tokens (`token`) |
//! | `scheduled_io`, `readiness` | per-source readiness word and waiter lists |
//! | `registration`, `poll_evented` | [`Registration`], [`PollEvented`]: what `net` builds on |
//! | `io_waiter` | [`IoWaiter`]: a future's own, withdrawable place in a waiter list |
//! | [`time`] | timing wheel, [`time::sleep`], [`time::timeout`], [`time::interval`] |
//! | [`coop`] | the cooperative budget leaf futures consume |
//! | [`signal`] | [`signal::ctrl_c`], [`signal::unix::signal`]: signals as reactor I/O (Unix) |
//!
//! Who drives the reactor is the executor's choice (ARCHITECTURE.md, "Who polls the
//! reactor"): an idle worker sleeps in the driver's poll (Go's netpoll shape), a busy worker
//! polls it without blocking every 61st tick while anything waits on I/O or a timer, and the
//! poller (sysmon) thread polls it only when no worker has for 1 ms. Whoever it is holds the
//! `Driver` exclusively (`&mut`) for the park and the drain. The driving loop and why it is
//! three calls is in `driver.rs`; the waiter-count invariants the deadlock detector relies
//! on are in `waiters.rs`.

pub mod coop;
mod driver;
mod handle;
mod io_waiter;
mod poll_evented;
mod readiness;
mod registration;
mod scheduled_io;
#[cfg(unix)]
pub mod signal;
mod sources;
mod sync;
pub mod time;
mod token;
pub mod wait;
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
