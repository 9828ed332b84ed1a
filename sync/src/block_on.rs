//! A minimal thread-parking `block_on` for the `blocking_*` methods, so that synchronous
//! code outside any runtime can use a channel. It polls one future on the calling thread
//! and parks between polls; a wake unparks the thread.
//!
//! Calling it on a runtime worker blocks that worker (as any synchronous wait would): the
//! `blocking_*` methods say so and point to the async ones.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        // A spurious unpark only costs one extra poll.
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        thread::park();
    }
}
