//! `JoinHandle::abort` before the first poll, while idle, during a poll, after completion.

use super::*;

#[test]
fn abort_before_the_first_poll() {
    let sched = TestScheduler::new();
    let probe = Probe::new();
    let mut handle = sched.spawn(probe.future([Step::Ready]));
    handle.abort();
    assert_eq!(sched.queued(), 1, "still queued once");
    sched.run_all();
    assert_eq!(probe.counts.polls(), 0);
    assert_eq!(probe.counts.drops(), 1);
    let (_, waker) = CountingWaker::new();
    assert!(ready(poll_join(&mut handle, &waker))
        .unwrap_err()
        .is_cancelled());
    drop(handle);
    sched.finish();
}

#[test]
fn abort_while_idle_submits_and_cancels() {
    let sched = TestScheduler::new();
    let probe = Probe::new();
    let mut handle = sched.spawn(probe.future([Step::Park, Step::Ready]));
    sched.run_all();
    handle.abort();
    handle.abort();
    assert_eq!(sched.queued(), 1, "an idle aborted task is submitted once");
    probe.waker().wake_by_ref();
    assert_eq!(sched.queued(), 1);
    sched.run_all();
    assert_eq!(probe.counts.polls(), 1, "cancelled, not polled");
    assert_eq!(probe.counts.drops(), 1);
    let (_, waker) = CountingWaker::new();
    assert!(ready(poll_join(&mut handle, &waker))
        .unwrap_err()
        .is_cancelled());
    drop((handle, probe.take_waker()));
    sched.finish();
}

/// Aborts its own task (through the handle in `slot`) during its poll.
struct AbortsItself {
    slot: Arc<Mutex<Option<JoinHandle<u32>>>>,
    then_ready: bool,
    drops: Arc<AtomicUsize>,
}

impl Future for AbortsItself {
    type Output = u32;
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<u32> {
        self.slot.lock().unwrap().as_ref().unwrap().abort();
        if self.then_ready {
            Poll::Ready(5)
        } else {
            Poll::Pending
        }
    }
}

impl Drop for AbortsItself {
    fn drop(&mut self) {
        self.drops.fetch_add(1, SeqCst);
    }
}

#[test]
fn abort_while_running() {
    for then_ready in [false, true] {
        let sched = TestScheduler::new();
        let slot = Arc::new(Mutex::new(None));
        let drops = Arc::new(AtomicUsize::new(0));
        let handle = sched.spawn(AbortsItself {
            slot: slot.clone(),
            then_ready,
            drops: drops.clone(),
        });
        *slot.lock().unwrap() = Some(handle);
        sched.run_all();
        assert_eq!(drops.load(SeqCst), 1);
        assert_eq!(sched.queued(), 0);
        let mut handle = slot.lock().unwrap().take().unwrap();
        let (_, waker) = CountingWaker::new();
        let result = ready(poll_join(&mut handle, &waker));
        if then_ready {
            assert_eq!(result.unwrap(), 5, "a poll that completes keeps its output");
        } else {
            assert!(result.unwrap_err().is_cancelled());
        }
        drop(handle);
        sched.finish();
    }
}

#[test]
fn abort_after_completion_keeps_the_output() {
    let sched = TestScheduler::new();
    let probe = Probe::new();
    let mut handle = sched.spawn(probe.future([Step::Ready]));
    sched.run_all();
    handle.abort();
    assert_eq!(sched.queued(), 0);
    let (_, waker) = CountingWaker::new();
    assert!(ready(poll_join(&mut handle, &waker)).is_ok());
    drop(handle);
    assert_eq!(probe.out_drops(), 1);
    sched.finish();
}
