//! Completion and the `JoinHandle`: reading the output, waiting, dropping it.

use super::*;

#[test]
fn poll_to_completion_and_read_output() {
    let sched = TestScheduler::new();
    let probe = Probe::new();
    let mut handle = sched.spawn(probe.future([Step::Ready]));
    assert_eq!(sched.queued(), 1, "a new task is queued once");
    assert_eq!(sched.run_all(), 1);
    assert!(handle.is_finished());
    assert_eq!(
        probe.counts.drops(),
        1,
        "the future is dropped at completion"
    );
    let (_, waker) = CountingWaker::new();
    let out = ready(poll_join(&mut handle, &waker)).unwrap();
    assert_eq!(probe.out_drops(), 0);
    drop(out);
    assert_eq!(probe.out_drops(), 1);
    drop(handle);
    assert_eq!(probe.out_drops(), 1, "read once, dropped once");
    sched.finish();
}

#[test]
fn join_handle_waits_and_is_woken() {
    let sched = TestScheduler::new();
    let probe = Probe::new();
    let mut handle = sched.spawn(probe.future([Step::Park, Step::Ready]));
    sched.run_all();
    let (counter, waker) = CountingWaker::new();
    assert!(poll_join(&mut handle, &waker).is_pending());
    assert!(
        poll_join(&mut handle, &waker).is_pending(),
        "same waker: kept, not replaced"
    );
    assert_eq!(
        Arc::strong_count(&counter),
        3,
        "one clone in the join-waker slot"
    );
    probe.take_waker().unwrap().wake();
    sched.run_all();
    assert_eq!(counter.wakes(), 1, "completion wakes the joiner once");
    let out = ready(poll_join(&mut handle, &waker)).unwrap();
    drop((out, handle));
    assert_eq!(
        Arc::strong_count(&counter),
        2,
        "the slot's clone is dropped with the handle"
    );
    assert_eq!(probe.out_drops(), 1);
    sched.finish();
}

#[test]
fn join_waker_replaced_by_a_different_one() {
    let sched = TestScheduler::new();
    let probe = Probe::new();
    let mut handle = sched.spawn(probe.future([Step::Park, Step::Ready]));
    sched.run_all();
    let (first, first_waker) = CountingWaker::new();
    let (second, second_waker) = CountingWaker::new();
    assert!(poll_join(&mut handle, &first_waker).is_pending());
    assert!(poll_join(&mut handle, &second_waker).is_pending());
    assert_eq!(
        Arc::strong_count(&first),
        2,
        "the replaced waker was dropped"
    );
    probe.take_waker().unwrap().wake_by_ref();
    sched.run_all();
    assert_eq!((first.wakes(), second.wakes()), (0, 1));
    assert!(ready(poll_join(&mut handle, &second_waker)).is_ok());
    drop(handle);
    sched.finish();
}

#[test]
fn join_handle_dropped_before_completion() {
    let sched = TestScheduler::new();
    let probe = Probe::new();
    let mut handle = sched.spawn(probe.future([Step::Park, Step::Ready]));
    sched.run_all();
    let (counter, waker) = CountingWaker::new();
    assert!(poll_join(&mut handle, &waker).is_pending());
    drop(handle);
    assert_eq!(
        Arc::strong_count(&counter),
        2,
        "dropping the handle empties its slot"
    );
    probe.take_waker().unwrap().wake();
    sched.run_all();
    assert_eq!(counter.wakes(), 0);
    assert_eq!(
        probe.out_drops(),
        1,
        "with no JoinHandle the completer drops the output"
    );
    assert_eq!(probe.counts.drops(), 1);
    sched.finish();
}

#[test]
fn join_handle_dropped_after_completion() {
    let sched = TestScheduler::new();
    let probe = Probe::new();
    let handle = sched.spawn(probe.future([Step::Ready]));
    sched.run_all();
    assert_eq!(probe.out_drops(), 0, "the output waits for the JoinHandle");
    drop(handle);
    assert_eq!(probe.out_drops(), 1);
    sched.finish();
}

#[test]
fn a_task_joining_another_counts_as_held_by_the_runtime() {
    let sched = TestScheduler::new();
    let probe = Probe::new();
    let inner = sched.spawn(probe.future([Step::Park, Step::Ready]));
    let outer_counts = Arc::new(AtomicUsize::new(0));
    let oc = outer_counts.clone();
    let outer = sched.spawn(async move {
        oc.fetch_add(1, SeqCst);
        inner.await.unwrap().0.load(SeqCst)
    });
    sched.run_all();
    // The outer task's waker sits in the inner task's JoinHandle slot: counted as a hold.
    let mut holds = Vec::new();
    sched.owned.for_each_while(|header, _| {
        holds.push(header.holds.load(SeqCst));
        true
    });
    holds.sort_unstable();
    assert_eq!(holds, [0, 1]);
    probe.take_waker().unwrap().wake();
    sched.run_all();
    assert_eq!(outer_counts.load(SeqCst), 1);
    assert_eq!(sched.owned.len(), 0);
    let (_, waker) = CountingWaker::new();
    let mut outer = outer;
    assert_eq!(ready(poll_join(&mut outer, &waker)).unwrap(), 0);
    drop(outer);
    sched.finish();
}
