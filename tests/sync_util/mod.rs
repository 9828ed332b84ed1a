//! Helpers for the `sync_*` tests: a probe that polls a future by hand with a waker that
//! counts its wakes, so a test can assert "this send is blocked" and "this recv woke it"
//! deterministically, without sleeps.
#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// A waker that counts its wakes, and polls futures with it.
pub struct Probe {
    count: Arc<Count>,
    waker: Waker,
}

impl Probe {
    pub fn new() -> Probe {
        let count = Arc::new(Count::default());
        Probe {
            waker: Waker::from(count.clone()),
            count,
        }
    }

    /// Polls `future` once with this probe's waker.
    pub fn poll<F: Future + ?Sized>(&self, future: Pin<&mut F>) -> Poll<F::Output> {
        future.poll(&mut Context::from_waker(&self.waker))
    }

    /// Whether the waker was woken since the last call (and resets the count).
    pub fn woken(&self) -> bool {
        self.count.0.swap(0, SeqCst) > 0
    }
}

/// Asserts that polling gives `Pending`.
#[track_caller]
pub fn assert_pending<F: Future + ?Sized>(probe: &Probe, future: Pin<&mut F>) {
    assert!(
        probe.poll(future).is_pending(),
        "expected the future to wait"
    );
}

/// Polls, expecting `Ready`, and returns the output.
#[track_caller]
pub fn expect_ready<F: Future + ?Sized>(probe: &Probe, future: Pin<&mut F>) -> F::Output {
    match probe.poll(future) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("expected the future to be ready"),
    }
}
