//! Test support until the executor lands: a poller stand-in thread (park → drain → wake →
//! release) and `futures::executor::block_on` with the reactor entered.

#![allow(dead_code)] // each test binary uses a different subset

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Waker;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use runnel_reactor::{Driver, Handle};

pub struct BackgroundDriver {
    handle: Handle,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl BackgroundDriver {
    pub fn start() -> BackgroundDriver {
        let (mut driver, handle) = Driver::new().expect("create reactor");
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (handle, stop) = (handle.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut wakers = Vec::new();
                while !stop.load(Ordering::Acquire) {
                    driver.park(Some(Duration::from_millis(50))).expect("park");
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
