//! Every sequence of lifecycle events up to a length, checked against the invariants
//! that hold whatever the order.

use super::*;

#[derive(Clone, Copy, Debug)]
enum Event {
    /// Run the oldest queued task reference.
    Run,
    /// Wake the task through the waker it parked with.
    Wake,
    /// `JoinHandle::abort`.
    Abort,
    /// Poll the `JoinHandle` with a counting waker.
    Join,
    /// Drop the `JoinHandle`.
    DropHandle,
    /// Shut the scheduler down (cancel everything, drop the queue).
    Shutdown,
}

const EVENTS: [Event; 6] = [
    Event::Run,
    Event::Wake,
    Event::Abort,
    Event::Join,
    Event::DropHandle,
    Event::Shutdown,
];

/// Runs one sequence of events on a task that parks once and then completes, then checks
/// the invariants that hold whatever the order.
fn run_sequence(events: &[Event]) {
    let sched = TestScheduler::new();
    let probe = Probe::new();
    let (join_counter, join_waker) = CountingWaker::new();
    let mut handle = Some(sched.spawn(probe.future([Step::Park, Step::Ready])));
    let mut result: Option<Result<Out, JoinError>> = None;
    let mut aborted_before_completion = false;
    for event in events {
        match event {
            Event::Run => {
                sched.run_one();
            }
            Event::Wake => {
                if let Some(w) = probe.slot.lock().unwrap().as_ref() {
                    w.wake_by_ref();
                }
            }
            Event::Abort => {
                if let Some(h) = &handle {
                    aborted_before_completion |= !probe.counts.completed.load(SeqCst);
                    h.abort();
                }
            }
            Event::Join => {
                if let (Some(h), None) = (&mut handle, &result) {
                    if let Poll::Ready(r) = poll_join(h, &join_waker) {
                        result = Some(r);
                    }
                }
            }
            Event::DropHandle => drop(handle.take()),
            Event::Shutdown => sched.shutdown(),
        }
        assert!(sched.queued() <= 1, "queued twice after {events:?}");
        assert!(probe.counts.polls() <= 2, "{events:?}");
    }
    // Wind down: shut down, then read the handle (it must be ready now).
    sched.shutdown();
    if let (Some(h), None) = (&mut handle, &result) {
        result = Some(ready(poll_join(h, &join_waker)));
    }
    let completed = probe.counts.completed.load(SeqCst);
    if let Some(r) = &result {
        assert_eq!(
            r.is_ok(),
            completed,
            "Ok iff the future completed: {events:?}"
        );
        if let Err(e) = r {
            assert!(e.is_cancelled(), "{events:?}");
        }
    }
    if aborted_before_completion {
        assert!(
            !completed,
            "polled to completion after an abort: {events:?}"
        );
    }
    drop(result);
    drop(handle);
    drop(probe.take_waker());
    assert_eq!(
        probe.counts.drops(),
        1,
        "future dropped exactly once: {events:?}"
    );
    assert_eq!(
        probe.out_drops(),
        usize::from(completed),
        "output dropped once iff produced: {events:?}"
    );
    assert_eq!(
        Arc::strong_count(&join_counter),
        2,
        "join waker released: {events:?}"
    );
    sched.finish();
}

#[test]
fn every_sequence_of_lifecycle_events() {
    let len = scaled(6, 3);
    let mut sequence = vec![0usize; len];
    let total = EVENTS.len().pow(len as u32);
    for n in 0..total {
        let mut rest = n;
        for slot in sequence.iter_mut() {
            *slot = rest % EVENTS.len();
            rest /= EVENTS.len();
        }
        let events: Vec<Event> = sequence.iter().map(|&i| EVENTS[i]).collect();
        run_sequence(&events);
    }
}
