//! Shutdown of queued, idle, running and complete tasks; spawning after it.

use super::*;

#[test]
fn shutdown_cancels_queued_idle_and_leaves_complete_tasks() {
    let sched = TestScheduler::new();
    let queued = Probe::new();
    let idle = Probe::new();
    let detached_idle = Probe::new();
    let complete = Probe::new();
    let mut h_complete = sched.spawn(complete.future([Step::Ready]));
    let mut h_idle = sched.spawn(idle.future([Step::Park]));
    drop(sched.spawn(detached_idle.future([Step::Park])));
    sched.run_all();
    let mut h_queued = sched.spawn(queued.future([Step::Ready]));
    sched.shutdown();
    for p in [&queued, &idle, &detached_idle, &complete] {
        assert_eq!(p.counts.drops(), 1);
    }
    assert_eq!(queued.counts.polls(), 0);
    let (_, waker) = CountingWaker::new();
    assert!(ready(poll_join(&mut h_queued, &waker))
        .unwrap_err()
        .is_cancelled());
    assert!(ready(poll_join(&mut h_idle, &waker))
        .unwrap_err()
        .is_cancelled());
    assert!(ready(poll_join(&mut h_complete, &waker)).is_ok());
    drop((h_queued, h_idle, h_complete));
    drop((idle.take_waker(), detached_idle.take_waker()));
    assert_eq!(complete.out_drops(), 1);
    sched.finish();
}

/// Runs the scheduler's shutdown from inside its own poll, then returns `Pending`.
struct ShutsDownDuringPoll {
    sched: Option<Arc<TestScheduler>>,
    drops: Arc<AtomicUsize>,
}

impl Future for ShutsDownDuringPoll {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        // Take the scheduler out so the future does not keep it alive once dropped.
        self.sched.take().unwrap().owned.close_and_shutdown_all();
        Poll::Pending
    }
}

impl Drop for ShutsDownDuringPoll {
    fn drop(&mut self) {
        self.drops.fetch_add(1, SeqCst);
    }
}

#[test]
fn shutdown_while_running_cancels_after_the_poll() {
    let sched = TestScheduler::new();
    let drops = Arc::new(AtomicUsize::new(0));
    let mut handle = sched.spawn(ShutsDownDuringPoll {
        sched: Some(sched.clone()),
        drops: drops.clone(),
    });
    sched.run_all();
    assert_eq!(
        drops.load(SeqCst),
        1,
        "the worker cancelled it when the poll returned"
    );
    let (_, waker) = CountingWaker::new();
    assert!(ready(poll_join(&mut handle, &waker))
        .unwrap_err()
        .is_cancelled());
    drop(handle);
    sched.finish();
}

#[test]
fn spawn_after_shutdown_is_cancelled_at_once() {
    let sched = TestScheduler::new();
    sched.shutdown();
    let probe = Probe::new();
    let mut handle = sched.spawn(probe.future([Step::Ready]));
    assert_eq!(sched.queued(), 0);
    assert_eq!(probe.counts.drops(), 1);
    assert_eq!(probe.counts.polls(), 0);
    let (_, waker) = CountingWaker::new();
    assert!(ready(poll_join(&mut handle, &waker))
        .unwrap_err()
        .is_cancelled());
    drop(handle);
    sched.finish();
}
