//! Timer scenarios against a manually driven reactor: `drain` is called with chosen
//! instants, so firing order and "never before the deadline" are checked without relying
//! on how fast the machine is.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::*;
use crate::tests::counting_waker;
use crate::{Driver, Waiters};

/// The wheel's resolution: a timer fires at the first tick at or after its deadline.
const TICK: Duration = Duration::from_millis(1);

fn poll<F: Future + Unpin>(future: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(waker))
}

#[test]
fn sleep_registers_lazily_and_drop_cancels() {
    let (driver, handle) = Driver::new().unwrap();
    let _guard = handle.enter();
    let mut s = sleep(Duration::from_secs(60));
    assert_eq!(
        handle.waiters().timers,
        0,
        "not armed before the first poll"
    );
    assert!(poll(&mut s, Waker::noop()).is_pending());
    assert_eq!(handle.waiters().timers, 1);
    assert!(driver.next_timer_deadline().is_some());
    drop(s);
    assert_eq!(handle.waiters(), Waiters::default());
    assert!(driver.next_timer_deadline().is_none());
}

#[test]
fn zero_and_past_sleeps_complete_without_arming() {
    let (_driver, handle) = Driver::new().unwrap();
    let _guard = handle.enter();
    assert!(poll(&mut sleep(Duration::ZERO), Waker::noop()).is_ready());
    let past = Instant::now() - Duration::from_millis(5);
    assert!(poll(&mut sleep_until(past), Waker::noop()).is_ready());
    assert_eq!(handle.waiters().timers, 0);
}

#[test]
fn timers_fire_in_deadline_order_and_never_early() {
    let (mut driver, handle) = Driver::new().unwrap();
    let _guard = handle.enter();
    let start = Instant::now();
    let offsets_ms = [300u64, 10, 5_000, 70, 1, 4_096, 65];
    let mut sleeps: Vec<_> = offsets_ms
        .iter()
        .map(|&ms| sleep_until(start + Duration::from_millis(ms)))
        .collect();
    let counters: Vec<_> = sleeps
        .iter_mut()
        .map(|s| {
            let (count, waker) = counting_waker();
            assert!(poll(s, &waker).is_pending());
            count
        })
        .collect();
    assert_eq!(handle.waiters().timers, offsets_ms.len());

    let mut order: Vec<u64> = offsets_ms.to_vec();
    order.sort_unstable();
    let mut wakers = Vec::new();
    for (fired_so_far, &ms) in order.iter().enumerate() {
        let deadline = start + Duration::from_millis(ms);
        // Just before the deadline nothing new fires...
        let before = driver.drain(deadline - Duration::from_micros(1), &mut wakers);
        assert_eq!(before.timers(), 0, "fired before {ms} ms");
        handle.release(before);
        // ...one tick (1 ms) after it, exactly this one has.
        let at = driver.drain(deadline + TICK, &mut wakers);
        assert_eq!(at.timers(), 1, "at {ms} ms");
        assert_eq!(
            handle.waiters().timers,
            offsets_ms.len() - fired_so_far,
            "held until release"
        );
        wakers.drain(..).for_each(Waker::wake);
        handle.release(at);
        assert_eq!(handle.waiters().timers, offsets_ms.len() - fired_so_far - 1);
        let i = offsets_ms.iter().position(|&o| o == ms).unwrap();
        assert_eq!(counters[i].load(Ordering::SeqCst), 1);
    }
    assert!(driver.next_timer_deadline().is_none());
}

#[test]
fn reset_moves_an_armed_timer_and_rearms_a_fired_one() {
    let (mut driver, handle) = Driver::new().unwrap();
    let _guard = handle.enter();
    let start = Instant::now();
    let mut s = sleep_until(start + Duration::from_secs(3600));
    let (count, waker) = counting_waker();
    assert!(poll(&mut s, &waker).is_pending());
    s.reset(start + Duration::from_secs(7200));
    let d = driver.drain(start + Duration::from_secs(3600) + TICK, &mut Vec::new());
    assert!(d.is_empty(), "moved later: not due at the old deadline");
    handle.release(d);
    // (Drain instants only move forward, like the clock.)
    s.reset(start + Duration::from_secs(3700));
    let mut wakers = Vec::new();
    let d = driver.drain(start + Duration::from_secs(3700) + TICK, &mut wakers);
    assert_eq!(d.timers(), 1, "moved earlier: due at the new deadline");
    wakers.drain(..).for_each(Waker::wake);
    handle.release(d);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    // A fired entry whose deadline moved ahead again re-arms on the next poll.
    s.reset(Instant::now() + Duration::from_secs(60));
    assert!(poll(&mut s, &waker).is_pending());
    assert_eq!(handle.waiters().timers, 1);
    drop(s);
    assert_eq!(handle.waiters().timers, 0);
}

#[test]
fn a_million_cancelled_timeouts_leave_no_timer_and_no_memory() {
    let (driver, handle) = Driver::new().unwrap();
    let _guard = handle.enter();
    for _ in 0..1_000_000 {
        let mut t = timeout(Duration::from_secs(3600), std::future::pending::<()>());
        assert!(poll(&mut t, Waker::noop()).is_pending());
    }
    assert_eq!(handle.waiters(), Waiters::default());
    assert!(driver.next_timer_deadline().is_none());
    assert!(
        handle.inner.timers.capacity() <= 16,
        "wheel grew to {} slots",
        handle.inner.timers.capacity()
    );
}

#[test]
fn arming_an_earlier_deadline_unparks_a_sleeping_driver() {
    let (mut driver, handle) = Driver::new().unwrap();
    let poller = std::thread::spawn(move || {
        // No timer, no timeout: only an unpark can end this park.
        driver.park(None).unwrap();
        driver
    });
    let _guard = handle.enter();
    let mut s = sleep(Duration::from_millis(1));
    assert!(poll(&mut s, Waker::noop()).is_pending());
    // If the poller was asleep, arming unparked it; if it had not parked yet, it saw the
    // timer and parks at most ~1 ms. Either way this join returns.
    let _driver = poller.join().unwrap();
}

#[test]
fn timeout_passes_the_inner_output_through() {
    let (_driver, handle) = Driver::new().unwrap();
    let _guard = handle.enter();
    let mut t = timeout(Duration::from_secs(1), std::future::ready(5));
    assert_eq!(poll(&mut t, Waker::noop()), Poll::Ready(Ok(5)));
    let mut late = timeout_at(Instant::now(), std::future::pending::<()>());
    let Poll::Ready(Err(elapsed)) = poll(&mut late, Waker::noop()) else {
        panic!("a past deadline elapses at once");
    };
    assert_eq!(elapsed.to_string(), "deadline has elapsed");
    let io: std::io::Error = elapsed.into();
    assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
}

/// Regression: an inner future that spends the whole cooperative budget on every poll
/// (`sleep(ZERO)` in a loop: ready each time, one unit each) left the delay's own
/// `poll_proceed` nothing, so the deadline was never looked at and the timeout never fired.
/// One poll inside a task's budget must now report the passed deadline.
#[test]
fn timeout_fires_when_the_inner_future_spends_the_whole_budget() {
    let (_driver, handle) = Driver::new().unwrap();
    let _guard = handle.enter();
    let (wakes, waker) = counting_waker();
    let mut spins = 0usize;
    let mut t = timeout_at(Instant::now(), async {
        loop {
            sleep(Duration::ZERO).await;
            spins += 1;
        }
    });
    let polled = crate::coop::with_budget(|| {
        let polled = poll(&mut t, &waker);
        assert!(
            !crate::coop::has_budget_remaining(),
            "the inner loop spent the budget"
        );
        polled
    });
    assert!(
        matches!(polled, Poll::Ready(Err(_))),
        "deadline passed, got {polled:?}"
    );
    drop(t);
    assert_eq!(spins, crate::coop::BUDGET as usize);
    // The inner loop's last sleep asked to be polled again (budget spent): harmless.
    assert_eq!(wakes.load(Ordering::SeqCst), 1);
    assert_eq!(handle.waiters(), Waiters::default());
}

/// The other half of the rule: when the inner future spends nothing (it is just pending),
/// the delay spends a unit like any leaf, so a loop of elapsed timeouts still yields.
#[test]
fn elapsed_timeouts_around_a_pending_future_still_spend_the_budget() {
    let (_driver, handle) = Driver::new().unwrap();
    let _guard = handle.enter();
    crate::coop::with_budget(|| {
        for _ in 0..crate::coop::BUDGET {
            let mut t = timeout(Duration::ZERO, std::future::pending::<()>());
            assert!(poll(&mut t, Waker::noop()).is_ready());
        }
        let mut t = timeout(Duration::ZERO, std::future::pending::<()>());
        assert!(
            poll(&mut t, Waker::noop()).is_pending(),
            "budget spent: the task must yield"
        );
    });
}

#[test]
fn shutdown_wakes_timers_and_polling_after_it_panics() {
    let (_driver, handle) = Driver::new().unwrap();
    let _guard = handle.enter();
    let mut s = sleep(Duration::from_secs(60));
    let (count, waker) = counting_waker();
    assert!(poll(&mut s, &waker).is_pending());
    handle.shutdown();
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(handle.waiters(), Waiters::default());
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = poll(&mut s, Waker::noop());
    }))
    .unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(
        message.contains("the runnel runtime has shut down"),
        "{message}"
    );
}

#[test]
fn sleep_without_runtime_panics_with_a_clear_message() {
    let panic = std::panic::catch_unwind(|| {
        let mut s = sleep(Duration::from_millis(1));
        let _ = poll(&mut s, Waker::noop());
    })
    .unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert_eq!(
        message,
        "there is no runnel runtime here: call this inside Runtime::block_on, a spawned task, \
         or #[runnel::main]"
    );
}

/// Timers armed on several threads land in different shards (`timers.rs`); the driver
/// sees the earliest of them, fires every due one, and a sleep moved to another thread
/// still cancels its own entry with its count.
#[test]
fn timers_armed_on_many_threads_fire_and_cancel_across_shards() {
    let (mut driver, handle) = Driver::new().unwrap();
    let start = Instant::now();
    let offsets_ms = [40u64, 10, 30, 20, 3_600_000];
    let sleeps: Vec<Sleep> = std::thread::scope(|scope| {
        let threads: Vec<_> = offsets_ms
            .iter()
            .map(|&ms| {
                let handle = handle.clone();
                scope.spawn(move || {
                    let _guard = handle.enter();
                    let mut s = sleep_until(start + Duration::from_millis(ms));
                    assert!(poll(&mut s, Waker::noop()).is_pending());
                    s
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(handle.waiters().timers, offsets_ms.len());
    let next = driver.next_timer_deadline().unwrap();
    assert!(
        next <= start + Duration::from_millis(10) + TICK,
        "the earliest, on any shard"
    );
    let mut wakers = Vec::new();
    let d = driver.drain(
        start + Duration::from_millis(10) - Duration::from_micros(1),
        &mut wakers,
    );
    assert_eq!(d.timers(), 0, "none is due yet");
    handle.release(d);
    let d = driver.drain(start + Duration::from_millis(40) + TICK, &mut wakers);
    assert_eq!(d.timers(), 4, "every due timer, whichever shard holds it");
    handle.release(d);
    assert_eq!(handle.waiters().timers, 1);
    drop(sleeps); // the far one is cancelled from this thread
    assert_eq!(handle.waiters(), Waiters::default());
    assert!(driver.next_timer_deadline().is_none());
}
