//! `RunnelTimer`: hyper's `Timer` over runnel's timer wheel.
//!
//! hyper wants `Pin<Box<dyn Sleep>>`; runnel's `Sleep` is already `Unpin`, `Send` and
//! `Sync`, so the box holds it directly, and `reset` re-arms it in place instead of
//! allocating a new one.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// hyper's timer on runnel: `sleep`/`sleep_until` are `runnel::time::sleep`/`sleep_until`
/// (1 ms resolution, never early).
///
/// Like those, a sleep belongs to the runtime current where it is created (or first
/// polled); hyper creates its timers inside the connection future, so give the timer to
/// the builder (`builder.timer(RunnelTimer)`) and drive the connection on runnel.
///
/// ```
/// use hyper::rt::Timer;
/// let rt = runnel_executor::Runtime::new().unwrap();
/// rt.block_on(async {
///     let start = std::time::Instant::now();
///     runnel_hyper::RunnelTimer.sleep(std::time::Duration::from_millis(5)).await;
///     assert!(start.elapsed() >= std::time::Duration::from_millis(5));
/// });
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct RunnelTimer;

impl hyper::rt::Timer for RunnelTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(RunnelSleep(runnel_reactor::time::sleep(duration)))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(RunnelSleep(runnel_reactor::time::sleep_until(deadline)))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<RunnelSleep>() {
            Some(mut ours) => ours.0.reset(new_deadline),
            // A sleep from another timer (a builder given two timers): replace it.
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

/// The sleep [`RunnelTimer`] hands to hyper: a `runnel::time::Sleep`.
#[derive(Debug)]
pub struct RunnelSleep(runnel_reactor::time::Sleep);

impl Future for RunnelSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl hyper::rt::Sleep for RunnelSleep {}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Timer;

    /// A sleep from some other timer, pending forever.
    struct Foreign;

    impl Future for Foreign {
        type Output = ();
        fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
            Poll::Pending
        }
    }

    impl hyper::rt::Sleep for Foreign {}

    #[test]
    fn reset_rearms_ours_in_place_and_replaces_a_foreign_sleep() {
        let rt = runnel_executor::Runtime::new().unwrap();
        rt.block_on(async {
            let hang_guard = Duration::from_secs(30);
            let mut sleep = RunnelTimer.sleep(Duration::from_secs(3600));
            let target = Instant::now() + Duration::from_millis(2);
            RunnelTimer.reset(&mut sleep, target);
            assert!(sleep.is::<RunnelSleep>());
            runnel_reactor::time::timeout(hang_guard, sleep)
                .await
                .expect("the reset sleep still waits for the old deadline");
            assert!(Instant::now() >= target, "woke before the deadline");

            let mut sleep: Pin<Box<dyn hyper::rt::Sleep>> = Box::pin(Foreign);
            RunnelTimer.reset(&mut sleep, Instant::now());
            assert!(sleep.is::<RunnelSleep>());
            runnel_reactor::time::timeout(hang_guard, sleep)
                .await
                .expect("a foreign sleep was not replaced");
        });
    }
}
