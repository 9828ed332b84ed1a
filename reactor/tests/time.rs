//! Timers end to end: a background driver thread (the poller stand-in) fires them while
//! `futures::executor::block_on` runs the futures. Timing is only checked one way: nothing
//! completes before its deadline.

mod common;

use std::future::Future;
use std::time::{Duration, Instant};

use common::BackgroundDriver;
use runnel_reactor::time::{self, MissedTickBehavior};
use runnel_reactor::Waiters;

#[test]
fn sleep_completes_not_before_its_deadline() {
    let mut rt = BackgroundDriver::start();
    for ms in [0, 1, 2, 15] {
        let start = Instant::now();
        rt.block_on(time::sleep(Duration::from_millis(ms)));
        assert!(start.elapsed() >= Duration::from_millis(ms));
    }
    assert_eq!(rt.quiesce(), Waiters::default());
}

#[test]
fn sleep_is_woken_by_a_driver_that_parks_without_timeout() {
    // The driver only wakes for the timer itself (or the unpark that arming it sends).
    let rt = BackgroundDriver::with_park_timeout(None);
    let deadline = Instant::now() + Duration::from_millis(20);
    rt.block_on(time::sleep_until(deadline));
    assert!(Instant::now() >= deadline);
}

#[test]
fn many_concurrent_sleeps_all_complete() {
    let mut rt = BackgroundDriver::with_park_timeout(None);
    let start = Instant::now();
    let sleeps = (0..200u64).map(|i| async move {
        let d = Duration::from_micros(i * 150);
        time::sleep(d).await;
        assert!(start.elapsed() >= d);
    });
    rt.block_on(futures::future::join_all(sleeps));
    assert_eq!(rt.quiesce(), Waiters::default());
}

#[test]
fn timeout_elapses_for_a_slow_future_and_not_for_a_fast_one() {
    let mut rt = BackgroundDriver::start();
    rt.block_on(async {
        let start = Instant::now();
        let slow = time::timeout(Duration::from_millis(10), std::future::pending::<()>()).await;
        assert_eq!(slow.unwrap_err().to_string(), "deadline has elapsed");
        assert!(start.elapsed() >= Duration::from_millis(10));
        let fast = time::timeout(
            Duration::from_secs(60),
            time::sleep(Duration::from_millis(1)),
        );
        assert!(fast.await.is_ok());
    });
    assert_eq!(rt.quiesce(), Waiters::default());
}

#[test]
fn interval_ticks_are_a_period_apart_and_the_first_is_immediate() {
    let rt = BackgroundDriver::start();
    rt.block_on(async {
        let period = Duration::from_millis(5);
        let start = Instant::now();
        let mut every = time::interval(period);
        assert_eq!(every.missed_tick_behavior(), MissedTickBehavior::Burst);
        let first = every.tick().await;
        assert!(first <= Instant::now() && first >= start);
        let mut previous = first;
        for _ in 0..5 {
            let tick = every.tick().await;
            assert_eq!(tick, previous + period, "scheduled from the previous tick");
            assert!(Instant::now() >= tick, "never early");
            previous = tick;
        }
    });
}

#[test]
fn interval_skip_and_delay_do_not_burst() {
    let rt = BackgroundDriver::start();
    rt.block_on(async {
        let period = Duration::from_millis(2);
        for behavior in [MissedTickBehavior::Skip, MissedTickBehavior::Delay] {
            let mut every = time::interval(period);
            every.set_missed_tick_behavior(behavior);
            every.tick().await;
            // Fall behind by several periods (a timer, not a blocking sleep).
            time::sleep(period * 5).await;
            let late = every.tick().await; // the overdue tick fires at once
            let next = every.tick().await;
            assert!(
                next > late + period,
                "{behavior:?} burst: {late:?} then {next:?}"
            );
            assert!(Instant::now() >= next);
        }
    });
}

#[test]
fn dropping_pending_sleeps_releases_their_counts() {
    let mut rt = BackgroundDriver::start();
    let long = rt.block_on(async {
        let mut long = time::sleep(Duration::from_secs(3600));
        std::future::poll_fn(|cx| {
            assert!(std::pin::Pin::new(&mut long).poll(cx).is_pending());
            std::task::Poll::Ready(())
        })
        .await;
        time::sleep(Duration::from_millis(1)).await;
        Some(long) // (not the bare future: clippy::async_yields_async)
    });
    let armed = Waiters { io: 0, timers: 1 };
    assert_eq!(rt.quiesce(), armed, "only the hour-long sleep is armed");
    drop(long);
    assert_eq!(rt.handle().waiters(), Waiters::default());
}
