//! Test support: a stand-in for the executor's threads that drive the reactor, so the
//! reactor (and `net`, which includes this file) can be tested with
//! `futures::executor::block_on`, independently of the executor.

#![allow(dead_code)] // each test binary uses a different subset

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Wake, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use runnel_reactor::{Driver, Handle};

/// A thread looping park → drain → wake → release, like the executor's driving threads do.
pub struct BackgroundDriver {
    handle: Handle,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl BackgroundDriver {
    /// Parks for at most 1 ms at a time.
    pub fn start() -> BackgroundDriver {
        BackgroundDriver::with_park_timeout(Some(Duration::from_millis(1)))
    }

    /// Parks for at most `park_timeout` (`None`: until an event, a timer, or an unpark).
    pub fn with_park_timeout(park_timeout: Option<Duration>) -> BackgroundDriver {
        let (mut driver, handle) = Driver::new().expect("create reactor");
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (handle, stop) = (handle.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut wakers = Vec::new();
                while !stop.load(Ordering::Acquire) {
                    driver.park(park_timeout).expect("park");
                    let drained = driver.drain(Instant::now(), &mut wakers);
                    wakers.drain(..).for_each(Waker::wake);
                    handle.release(drained);
                }
            })
        };
        BackgroundDriver {
            handle,
            stop,
            thread: Some(thread),
        }
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Runs `future` to completion on this thread with the reactor entered.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let _guard = self.handle.enter();
        futures::executor::block_on(future)
    }

    /// Runs `future` on a new thread (a second "task" on another worker).
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handle = self.handle.clone();
        std::thread::spawn(move || {
            let _guard = handle.enter();
            futures::executor::block_on(future)
        })
    }
}

impl BackgroundDriver {
    /// Stops the driver thread and returns the waiter counts once settled. While the thread
    /// runs, the counts may over-count for a moment (a drained waker is released only after
    /// it was woken), so exact checks must come after this.
    pub fn quiesce(&mut self) -> runnel_reactor::Waiters {
        self.stop.store(true, Ordering::Release);
        self.handle.unpark();
        if let Some(thread) = self.thread.take() {
            let result = thread.join();
            if !std::thread::panicking() {
                result.expect("driver thread panicked");
            }
        }
        self.handle.waiters()
    }
}

impl Drop for BackgroundDriver {
    fn drop(&mut self) {
        self.quiesce();
        self.handle.shutdown(); // breaks waker ↔ registration cycles
    }
}

/// A waker that counts its wakes.
#[derive(Default)]
pub struct CountingWaker(AtomicUsize);

impl CountingWaker {
    pub fn new() -> (Arc<CountingWaker>, Waker) {
        let counter = Arc::new(CountingWaker::default());
        let waker = Waker::from(counter.clone());
        (counter, waker)
    }

    pub fn wakes(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Parks and drains `driver` (waking and releasing) until `done()` holds. Each park waits
/// for a real event, so this is event-driven, not a sleep; it gives up after 10 s.
pub fn drive_until(driver: &mut Driver, mut done: impl FnMut() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(10);
    let mut wakers = Vec::new();
    while !done() {
        assert!(Instant::now() < give_up, "condition not reached in 10 s");
        driver.park(Some(Duration::from_millis(100))).expect("park");
        let drained = driver.drain(Instant::now(), &mut wakers);
        wakers.drain(..).for_each(Waker::wake);
        driver.handle().release(drained);
    }
}
