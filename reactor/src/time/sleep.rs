//! `Sleep`: a future that completes at a deadline.
//!
//! State: the deadline, the reactor handle (resolved at creation, else at first poll), and
//! the key of this sleep's wheel entry once it had to wait. The entry belongs to this
//! `Sleep` alone from insert until it is removed (on completion, reset-after-fire re-arms
//! it in place, drop cancels it), so the key is valid for as long as it is held. The key
//! names the wheel shard the entry was armed in (`timers.rs`); the entry stays there even
//! if the task moves to another worker.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use super::timers::{Polled, TimerKey};
use crate::coop;
use crate::handle::Handle;

/// Waits until `duration` has elapsed.
///
/// The sleep uses the current runtime's reactor; it panics (at creation or first poll) with
/// "there is no runnel runtime here: ..." if there is none.
///
/// ```no_run
/// # async fn f() {
/// runnel_reactor::time::sleep(std::time::Duration::from_millis(100)).await;
/// # }
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(super::deadline_after(Instant::now(), duration))
}

/// Waits until `deadline`.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        handle: Handle::try_current(),
        entry: None,
    }
}

/// Future returned by [`sleep`] and [`sleep_until`]. `Unpin`.
///
/// Dropping it cancels its timer.
#[must_use = "futures do nothing unless polled"]
pub struct Sleep {
    deadline: Instant,
    handle: Option<Handle>,
    /// Key of this sleep's wheel entry, once it had to wait.
    entry: Option<TimerKey>,
}

impl Sleep {
    /// When the sleep completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Changes the deadline. A task waiting on this sleep is woken at the new deadline
    /// (right away if it has passed), even if the sleep had already completed.
    pub fn reset(&mut self, deadline: Instant) {
        self.deadline = deadline;
        if let (Some(key), Some(handle)) = (self.entry, &self.handle) {
            if handle.inner.timers.reset(key, deadline) {
                handle.unpark();
            }
        }
    }

    fn cancel(&mut self) {
        if let (Some(key), Some(handle)) = (self.entry.take(), &self.handle) {
            handle.inner.timers.cancel(key, &handle.inner.counts);
        }
    }
}

const SHUT_DOWN: &str = "the runnel runtime has shut down: a timer cannot be polled after it";

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let handle = this.handle.get_or_insert_with(Handle::current);
        // Budget before the clock, as tokio does: an elapsed sleep is "ready over and over"
        // (`sleep(ZERO)` in a loop) and must make its task yield. A `Timeout` whose inner
        // future spent the budget polls its delay unconstrained (`timeout.rs`).
        ready!(coop::poll_proceed(cx));
        if Instant::now() >= this.deadline {
            this.cancel();
            return Poll::Ready(());
        }
        let inner = &handle.inner;
        let unpark = match this.entry {
            None => match inner.timers.arm(this.deadline, cx.waker(), &inner.counts) {
                Ok(armed) => {
                    this.entry = Some(armed.key);
                    armed.unpark
                }
                Err(_) => panic!("{SHUT_DOWN}"),
            },
            Some(key) => match inner
                .timers
                .poll(key, this.deadline, cx.waker(), &inner.counts)
            {
                Polled::Elapsed => {
                    this.entry = None; // removed by `poll`
                    return Poll::Ready(());
                }
                Polled::Waiting { unpark } => unpark,
                Polled::ShutDown => panic!("{SHUT_DOWN}"),
            },
        };
        if unpark {
            handle.unpark();
        }
        inner.counts.waiter_stored();
        crate::wait::note(crate::wait::WaitReason::Timer {
            deadline: this.deadline,
        });
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .field("armed", &self.entry.is_some())
            .finish()
    }
}
