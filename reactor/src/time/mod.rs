//! Timers: [`sleep`], [`sleep_until`], [`timeout`], [`interval`].
//!
//! Every timer belongs to the reactor of the handle current when it was created (or, if
//! none was, when it is first polled): its deadline sits in that reactor's timing wheel
//! (`wheel.rs`, millisecond ticks) from the first poll that has to wait until it completes
//! or is dropped. A timer never completes before its deadline; it completes at the first
//! poll at or after it, so a zero or past deadline completes without touching the wheel.
//!
//! ```
//! use std::time::Duration;
//! use runnel_reactor::time::{sleep, timeout};
//!
//! # fn with_runtime<F: std::future::Future>(_: F) {}
//! with_runtime(async {
//!     sleep(Duration::from_millis(10)).await;
//!     let slow = sleep(Duration::from_secs(60));
//!     assert!(timeout(Duration::from_millis(5), slow).await.is_err());
//! });
//! ```

mod interval;
mod sleep;
mod timeout;
pub(crate) mod timers;
mod wheel;

pub use interval::{interval, interval_at, Interval, MissedTickBehavior};
pub use sleep::{sleep, sleep_until, Sleep};
pub use std::time::{Duration, Instant};
pub use timeout::{timeout, timeout_at, Elapsed, Timeout};

/// A deadline so far ahead it is "never" (30 years, as tokio does), for durations whose
/// end does not fit in an `Instant`.
pub(crate) fn far_future(from: Instant) -> Instant {
    from + Duration::from_secs(86_400 * 365 * 30)
}

/// `from + duration`, or [`far_future`] when that overflows.
pub(crate) fn deadline_after(from: Instant, duration: Duration) -> Instant {
    from.checked_add(duration)
        .unwrap_or_else(|| far_future(from))
}

#[cfg(test)]
mod tests;
