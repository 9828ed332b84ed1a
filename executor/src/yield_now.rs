//! `yield_now`: give the worker to the other runnable tasks once.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Yields to the scheduler: the task goes to the back of its worker's run queue and
/// continues after the tasks queued before it had their turn.
///
/// ```
/// # runnel_executor::Runtime::new().unwrap().block_on(async {
/// for _ in 0..3 {
///     runnel_executor::task::yield_now().await;
/// }
/// # });
/// ```
pub async fn yield_now() {
    YieldNow { yielded: false }.await
}

struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        // A wake during our own poll: the worker resubmits us behind the queue after the
        // poll returns (Schedule::yield_now).
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
