//! `Timeout`: a future raced against a `Sleep`.
//!
//! The deadline must be seen even when the inner future spends the whole cooperative
//! budget on every poll (a read loop on a peer that always has data, `sleep(ZERO)` in a
//! loop): `Sleep` spends a unit before looking at the clock, so after such an inner poll it
//! would return `Pending` for ever and the timeout would never fire. So when the inner
//! future is what spent the last unit, the delay is polled without the budget
//! (`coop::unconstrained`); otherwise it spends one like any leaf, so a loop of timeouts
//! whose inner futures spend nothing still yields.
//!
//! The inner future is boxed so `Timeout` can poll it through a plain `Pin<Box<F>>`: the
//! reactor stays free of `unsafe` pin projection (one allocation per timeout, measured
//! against nothing yet: revisit with the benchmarks).

use std::error::Error;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::sleep::{sleep_until, Sleep};
use crate::coop;

/// Runs `future` for at most `duration`: `Ok(output)` if it completes first, else
/// `Err(Elapsed)` (and the future is dropped when the `Timeout` is).
///
/// The inner future is polled first, so a future that is ready at the deadline wins.
///
/// ```no_run
/// # async fn f() {
/// use std::time::Duration;
/// use runnel_reactor::time::{sleep, timeout};
/// let slow = sleep(Duration::from_secs(10));
/// let err = timeout(Duration::from_millis(10), slow).await.unwrap_err();
/// assert_eq!(err.to_string(), "deadline has elapsed");
/// # }
/// ```
pub fn timeout<F: IntoFuture>(duration: Duration, future: F) -> Timeout<F::IntoFuture> {
    timeout_at(super::deadline_after(Instant::now(), duration), future)
}

/// Like [`timeout`], with an absolute deadline.
pub fn timeout_at<F: IntoFuture>(deadline: Instant, future: F) -> Timeout<F::IntoFuture> {
    Timeout {
        future: Box::pin(future.into_future()),
        delay: sleep_until(deadline),
    }
}

/// Future returned by [`timeout`] and [`timeout_at`].
#[must_use = "futures do nothing unless polled"]
pub struct Timeout<F> {
    future: Pin<Box<F>>,
    delay: Sleep,
}

impl<F> Timeout<F> {
    /// The wrapped future.
    pub fn get_ref(&self) -> &F {
        &self.future
    }

    /// The deadline.
    pub fn deadline(&self) -> Instant {
        self.delay.deadline()
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let had_budget = coop::has_budget_remaining();
        if let Poll::Ready(output) = self.future.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        let delay = Pin::new(&mut self.delay);
        let elapsed = if had_budget && !coop::has_budget_remaining() {
            // The inner future spent the last unit (module header): check the deadline
            // anyway. If it has not passed, the inner future's leaf already woke the task.
            coop::unconstrained(|| delay.poll(cx))
        } else {
            delay.poll(cx)
        };
        elapsed.map(|()| Err(Elapsed(())))
    }
}

impl<F> fmt::Debug for Timeout<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("delay", &self.delay)
            .finish_non_exhaustive()
    }
}

/// The error of a [`Timeout`] whose deadline passed first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(elapsed: Elapsed) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::TimedOut, elapsed)
    }
}
