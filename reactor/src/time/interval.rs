//! `Interval`: a `Sleep` re-armed one period later after each tick.
//!
//! Ticks are scheduled from the previous *scheduled* tick, not from when it was observed,
//! so a periodic task does not drift; what happens after falling behind is the
//! [`MissedTickBehavior`].

use std::future::poll_fn;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use super::sleep::{sleep_until, Sleep};

/// A stream of instants `period` apart; the first tick completes immediately.
///
/// # Panics
///
/// If `period` is zero.
///
/// ```no_run
/// # async fn f() {
/// let mut every = runnel_reactor::time::interval(std::time::Duration::from_millis(10));
/// let first = every.tick().await; // immediately
/// let second = every.tick().await; // 10 ms after `first`
/// assert!(second >= first + std::time::Duration::from_millis(10));
/// # }
/// ```
#[track_caller]
pub fn interval(period: Duration) -> Interval {
    interval_at(Instant::now(), period)
}

/// Like [`interval`], with the first tick at `start`.
///
/// # Panics
///
/// If `period` is zero.
#[track_caller]
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    assert!(period > Duration::ZERO, "`period` must be non-zero");
    Interval {
        delay: sleep_until(start),
        period,
        missed: MissedTickBehavior::default(),
    }
}

/// What an [`Interval`] does when ticks were missed (the task was late by more than a period).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MissedTickBehavior {
    /// Fire the missed ticks back to back until caught up (the default).
    #[default]
    Burst,
    /// Schedule the next tick one period after the late one was observed.
    Delay,
    /// Skip the missed ticks: the next tick is the next multiple of the period after now.
    Skip,
}

/// Stream of ticks returned by [`interval`]; see there.
#[derive(Debug)]
pub struct Interval {
    delay: Sleep,
    period: Duration,
    missed: MissedTickBehavior,
}

impl Interval {
    /// Waits for the next tick and returns its scheduled instant.
    ///
    /// Cancel-safe: dropping the future before it completes loses no tick.
    pub async fn tick(&mut self) -> Instant {
        poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick; on `Ready` the following tick is scheduled.
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        ready!(Pin::new(&mut self.delay).poll(cx));
        let tick = self.delay.deadline();
        let now = Instant::now();
        let next = match self.missed {
            MissedTickBehavior::Burst => super::deadline_after(tick, self.period),
            MissedTickBehavior::Delay if now > super::deadline_after(tick, self.period) => {
                super::deadline_after(now, self.period)
            }
            MissedTickBehavior::Delay => super::deadline_after(tick, self.period),
            MissedTickBehavior::Skip => {
                let period = self.period.as_nanos();
                let missed = now.saturating_duration_since(tick).as_nanos() / period + 1;
                let ahead =
                    u64::try_from(period * missed).map_or(Duration::MAX, Duration::from_nanos);
                super::deadline_after(tick, ahead)
            }
        };
        self.delay.reset(next);
        Poll::Ready(tick)
    }

    /// Restarts the interval: the next tick is one period from now.
    pub fn reset(&mut self) {
        self.delay
            .reset(super::deadline_after(Instant::now(), self.period));
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The behaviour after missed ticks.
    pub fn missed_tick_behavior(&self) -> MissedTickBehavior {
        self.missed
    }

    /// Sets the behaviour after missed ticks.
    pub fn set_missed_tick_behavior(&mut self, behavior: MissedTickBehavior) {
        self.missed = behavior;
    }
}
