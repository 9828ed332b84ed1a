//! The cooperative budget: a task whose leaf futures are always ready is forced to yield
//! after `runnel_reactor::coop::BUDGET` operations, so it cannot starve the other tasks on
//! its worker.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use support::{runtime, PATIENCE};

/// A leaf that is always ready, but spends budget like a socket read that has data.
struct AlwaysReady;

impl Future for AlwaysReady {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        runnel_reactor::coop::poll_proceed(cx)
    }
}

/// What the hog saw: iterations, and whether it gave up because nobody stopped it.
struct HogReport {
    iterations: usize,
    gave_up: bool,
}

/// Runs a hog (looping on `leaf` until `stop`) and a second task on one worker; returns
/// the hog's report once the second task stopped it.
fn hog_vs_other<L, F>(leaf: L) -> HogReport
where
    L: Fn() -> F + Send + 'static,
    F: Future<Output = ()> + Send,
{
    let rt = runtime(1);
    let stop = Arc::new(AtomicBool::new(false));
    let hog_polls = Arc::new(AtomicUsize::new(0));
    let (s1, s2, polls) = (stop.clone(), stop.clone(), hog_polls.clone());
    let report = rt.block_on(async move {
        runnel::spawn(async move {
            // The hog is spawned from the only worker and this task then yields, so the hog
            // runs first; the other task is spawned only when this task runs again, which
            // (one worker) needs the hog to yield.
            let hog = runnel::spawn(async move {
                let deadline = Instant::now() + PATIENCE;
                let mut iterations = 0;
                while !s1.load(SeqCst) {
                    leaf().await;
                    iterations += 1;
                    if iterations % 1024 == 0 && Instant::now() > deadline {
                        return HogReport {
                            iterations,
                            gave_up: true,
                        };
                    }
                }
                HogReport {
                    iterations,
                    gave_up: false,
                }
            });
            runnel::task::yield_now().await;
            let other = runnel::spawn(async move {
                polls.fetch_add(1, SeqCst);
                s2.store(true, SeqCst);
            });
            other.await.unwrap();
            hog.await.unwrap()
        })
        .await
        .unwrap()
    });
    assert!(stop.load(SeqCst));
    assert_eq!(hog_polls.load(SeqCst), 1);
    report
}

#[test]
fn always_ready_leaf_does_not_starve_a_sibling() {
    let report = hog_vs_other(|| AlwaysReady);
    assert!(
        !report.gave_up,
        "the other task never ran: the hog was not forced to yield"
    );
    assert!(
        report.iterations >= runnel_reactor::coop::BUDGET as usize,
        "the hog spent its budget before yielding ({} iterations)",
        report.iterations
    );
}

#[test]
fn elapsed_sleep_in_a_loop_does_not_starve_a_sibling() {
    // A zero sleep is ready at once, like AlwaysReady, and spends budget.
    let report = hog_vs_other(|| runnel::time::sleep(Duration::ZERO));
    assert!(!report.gave_up, "the other task never ran");
}

#[test]
fn awaiting_finished_join_handles_spends_budget() {
    // JoinHandles of finished tasks are always ready: a task awaiting thousands of them
    // yields along the way, letting a sibling run in between.
    let rt = runtime(1);
    let sibling_ran_at = Arc::new(AtomicUsize::new(usize::MAX));
    let s = sibling_ran_at.clone();
    rt.block_on(async move {
        runnel::spawn(async move {
            let done: Vec<_> = (0..4 * runnel_reactor::coop::BUDGET)
                .map(|_| runnel::spawn(async {}))
                .collect();
            // Let the finished tasks run first: they are queued ahead of us.
            runnel::task::yield_now().await;
            let progress = Arc::new(AtomicUsize::new(0));
            let p = progress.clone();
            let joiner = runnel::spawn(async move {
                for h in done {
                    h.await.unwrap();
                    p.fetch_add(1, SeqCst);
                }
            });
            // The joiner runs now; we run again only when it yields.
            runnel::task::yield_now().await;
            let sibling = runnel::spawn(async move {
                s.store(progress.load(SeqCst), SeqCst);
            });
            sibling.await.unwrap();
            joiner.await.unwrap();
        })
        .await
        .unwrap()
    });
    let at = sibling_ran_at.load(SeqCst);
    assert!(
        at < 4 * runnel_reactor::coop::BUDGET as usize,
        "the sibling ran only after the joiner had awaited every handle ({at})"
    );
}
