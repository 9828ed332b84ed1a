//! In-crate scenarios that need to see internals (slab keys, tokens).

use std::future::Future;
use std::io::Write;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use mio::net::UnixStream;
use mio::Interest;

use crate::*;

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn public_types_are_send_and_sync() {
    assert_send_sync::<Handle>();
    assert_send_sync::<Registration>();
    assert_send_sync::<PollEvented<mio::net::TcpStream>>();
    assert_send_sync::<time::Sleep>();
    assert_send_sync::<IoWaiter<'static>>();
    assert_send_sync::<Driver>();
    #[cfg(unix)]
    assert_send_sync::<signal::unix::Signal>();
}

#[test]
fn shutdown_error_is_recognisable() {
    assert!(is_shutdown_error(&shutdown_error()));
    assert!(!is_shutdown_error(&std::io::Error::other("other")));
}

/// Parks until the driver holds an event (a write makes the peer readable).
fn park_until_pending(driver: &mut Driver) {
    let give_up = Instant::now() + Duration::from_secs(10);
    while !driver.has_pending(Instant::now()) {
        assert!(Instant::now() < give_up, "no event in 10 s");
        driver.park(Some(Duration::from_millis(100))).unwrap();
    }
}

#[test]
fn event_for_a_freed_and_reused_slot_is_dropped() {
    let (mut driver, handle) = Driver::new().unwrap();
    let _guard = handle.enter();

    let (a1, mut b1) = UnixStream::pair().unwrap();
    let old = PollEvented::new(a1, Interest::READABLE).unwrap();
    let old_token = old.registration().token();
    b1.write_all(b"for the old registration").unwrap();
    park_until_pending(&mut driver); // the event is stored, not applied

    drop(old);
    assert_eq!(handle.inner.sources.len(), 0);
    let (a2, _b2) = UnixStream::pair().unwrap();
    let new = PollEvented::new(a2, Interest::READABLE).unwrap();
    let new_token = new.registration().token();
    assert_eq!(token::key(new_token), token::key(old_token), "slot reused");
    assert_ne!(new_token, old_token, "with a new generation");

    let (counter, waker) = crate::tests::counting_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(new.registration().poll_read_ready(&mut cx).is_pending());

    let mut wakers = Vec::new();
    let drained = driver.drain(Instant::now(), &mut wakers);
    assert!(drained.is_empty(), "stale event took a waker: {drained:?}");
    assert!(wakers.is_empty());
    handle.release(drained);
    assert_eq!(counter.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert!(
        new.registration().poll_read_ready(&mut cx).is_pending(),
        "stale event set readiness"
    );
    assert_eq!(handle.waiters(), Waiters { io: 1, timers: 0 });
}

#[test]
fn has_pending_sees_stored_events_and_due_timers() {
    let (mut driver, handle) = Driver::new().unwrap();
    let _guard = handle.enter();
    let now = Instant::now();
    assert!(!driver.has_pending(now));

    let mut sleep = time::sleep(Duration::from_secs(3600));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(std::pin::Pin::new(&mut sleep).poll(&mut cx).is_pending());
    assert!(!driver.has_pending(now));
    let later = sleep.deadline() + Duration::from_millis(1);
    assert!(driver.has_pending(later), "due one tick after its deadline");
    // A lower bound: the wheel may wake the poller early to cascade, never late.
    assert!(driver.next_timer_deadline().unwrap() <= later);

    let (a, mut b) = UnixStream::pair().unwrap();
    let _a = PollEvented::new(a, Interest::READABLE).unwrap();
    b.write_all(b"x").unwrap();
    park_until_pending(&mut driver);
    assert!(driver.has_pending(now));
    let drained = driver.drain(now, &mut Vec::new());
    handle.release(drained);
    assert!(!driver.has_pending(now));
}

#[test]
fn registration_after_shutdown_fails_and_polls_error() {
    let (_driver, handle) = Driver::new().unwrap();
    let _guard = handle.enter();
    let (a, _b) = UnixStream::pair().unwrap();
    let a = PollEvented::new(a, Interest::READABLE).unwrap();
    handle.shutdown();
    let mut cx = Context::from_waker(Waker::noop());
    match a.registration().poll_read_ready(&mut cx) {
        Poll::Ready(Err(e)) => assert!(is_shutdown_error(&e), "{e}"),
        other => panic!("expected the shutdown error, got {other:?}"),
    }
    let (c, _d) = UnixStream::pair().unwrap();
    let err = PollEvented::new(c, Interest::READABLE).unwrap_err();
    assert_eq!(err.to_string(), "the runnel runtime has shut down");
}

pub(crate) fn counting_waker() -> (std::sync::Arc<std::sync::atomic::AtomicUsize>, Waker) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    struct Count(Arc<AtomicUsize>);
    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let count = Arc::new(AtomicUsize::new(0));
    (count.clone(), Waker::from(Arc::new(Count(count))))
}
