//! Wakes by value and by reference while idle, running and complete; wakers outliving
//! everything; wakes from other threads.

use super::*;

#[test]
fn wakes_while_idle_submit_once() {
    let sched = TestScheduler::new();
    let probe = Probe::new();
    let handle = sched.spawn(probe.future([Step::Park, Step::Park, Step::Ready]));
    sched.run_all();
    let waker = probe.take_waker().unwrap();
    waker.wake_by_ref();
    waker.wake_by_ref();
    waker.clone().wake();
    assert_eq!(
        sched.queued(),
        1,
        "three wakes of an idle task queue it once"
    );
    sched.run_all();
    assert_eq!(probe.counts.polls(), 2);
    // By value, consuming the last outside reference.
    drop(waker);
    probe.take_waker().unwrap().wake();
    assert_eq!(sched.queued(), 1);
    sched.run_all();
    assert_eq!(probe.counts.polls(), 3);
    assert!(handle.is_finished());
    drop(handle);
    sched.finish();
}

#[test]
fn wake_during_poll_resubmits_once() {
    for step in [Step::WakeByRef, Step::WakeByVal] {
        let sched = TestScheduler::new();
        let probe = Probe::new();
        let handle = sched.spawn(probe.future([step, Step::Ready]));
        assert!(sched.run_one());
        assert_eq!(sched.queued(), 1, "resubmitted after the poll");
        assert_eq!(sched.yields.load(SeqCst), 1, "through Schedule::yield_now");
        assert!(sched.run_one());
        assert!(!sched.run_one());
        assert_eq!(probe.counts.polls(), 2);
        drop(handle);
        sched.finish();
    }
}

#[test]
fn wake_after_completion_does_nothing() {
    let sched = TestScheduler::new();
    let probe = Probe::new();
    let handle = sched.spawn(probe.future([Step::Park, Step::Ready]));
    sched.run_all();
    let waker = probe.take_waker().unwrap();
    let spare = waker.clone();
    waker.wake_by_ref();
    sched.run_all();
    assert!(handle.is_finished());
    spare.wake_by_ref();
    spare.wake();
    assert_eq!(sched.queued(), 0);
    drop(handle);
    sched.shutdown();
    // The last reference is a waker: waking it by value frees the task.
    waker.wake();
    assert_eq!(Arc::strong_count(&sched), 1);
    sched.finish();
}

#[test]
fn wakers_outlive_the_join_handle_and_shutdown() {
    let sched = TestScheduler::new();
    let probe = Probe::new();
    let handle = sched.spawn(probe.future([Step::Park, Step::Ready]));
    sched.run_all();
    let waker = probe.take_waker().unwrap();
    let clones: Vec<_> = (0..3).map(|_| waker.clone()).collect();
    drop(handle);
    sched.shutdown();
    assert_eq!(probe.counts.drops(), 1, "shutdown dropped the future");
    assert_eq!(
        Arc::strong_count(&sched),
        2,
        "the wakers keep the allocation (and its Arc)"
    );
    for w in &clones {
        w.wake_by_ref();
    }
    assert_eq!(sched.queued(), 0, "a cancelled task is never queued again");
    drop(clones);
    drop(waker);
    sched.finish();
}

#[test]
fn wakes_from_other_threads_race_with_polls() {
    let threads = scaled(4, 2);
    let wakes = scaled(500, 4);
    let sched = TestScheduler::new();
    let probe = Probe::new();
    let steps = (0..threads * wakes * 2).map(|_| Step::Park);
    let handle = sched.spawn(probe.future(steps.chain([Step::Ready])));
    sched.run_all();
    let waker = probe.waker();
    let wakers: Vec<_> = (0..threads).map(|_| waker.clone()).collect();
    let joins: Vec<_> = wakers
        .into_iter()
        .enumerate()
        .map(|(i, w)| {
            std::thread::spawn(move || {
                for _ in 0..wakes {
                    if i % 2 == 0 {
                        w.wake_by_ref();
                    } else {
                        w.clone().wake();
                    }
                }
            })
        })
        .collect();
    while joins.iter().any(|j| !j.is_finished()) {
        assert!(sched.queued() <= 1, "queued twice");
        sched.run_one();
        std::thread::yield_now();
    }
    for j in joins {
        j.join().unwrap();
    }
    sched.run_all();
    assert!(!handle.is_finished());
    assert!(probe.counts.polls() <= 1 + threads * wakes);
    drop((handle, waker, probe.take_waker()));
    sched.finish();
    assert_eq!(probe.counts.drops(), 1);
}

#[test]
fn completion_on_another_thread_wakes_the_joiner() {
    let rounds = scaled(200, 3);
    for _ in 0..rounds {
        let sched = TestScheduler::new();
        let probe = Probe::new();
        let mut handle = sched.spawn(probe.future([Step::Park, Step::Ready]));
        sched.run_all();
        let waker = probe.take_waker().unwrap();
        let s = sched.clone();
        let runner = std::thread::spawn(move || {
            waker.wake();
            s.run_all();
        });
        let (counter, join_waker) = CountingWaker::new();
        // Either ready now, or the completion must wake us: never a lost wakeup.
        let result = loop {
            let seen = counter.wakes();
            match poll_join(&mut handle, &join_waker) {
                Poll::Ready(result) => break result,
                Poll::Pending => loop {
                    if counter.wakes() != seen {
                        break;
                    }
                    if runner.is_finished() {
                        assert_ne!(
                            counter.wakes(),
                            seen,
                            "lost wakeup: completed without waking the joiner"
                        );
                        break;
                    }
                    std::thread::yield_now();
                },
            }
        };
        runner.join().unwrap();
        assert!(result.is_ok());
        drop((result, handle));
        sched.finish();
    }
}

/// The scheduler is borrowed from the task's own cell when a waker submits the task: a
/// scheduler that runs the task to completion inside `schedule` (as another worker may,
/// between the queue push and the end of `schedule`) must still be able to use `self`
/// afterwards. Under Miri this failed as a use-after-free before `Wake::Submit` kept a
/// reference for the caller (by value and by reference, from outside and from a yield).
#[test]
fn scheduler_outlives_a_task_that_completes_inside_schedule() {
    for step in [Step::WakeByRef, Step::WakeByVal] {
        // A wake from outside the task, with the JoinHandle gone: the waker's reference
        // and the owned list's are the last ones.
        let sched = TestScheduler::new();
        let probe = Probe::new();
        drop(sched.spawn(probe.future([Step::Park, Step::Ready])));
        sched.run_all();
        let waker = probe.take_waker().unwrap();
        sched.run_inline.store(true, SeqCst);
        match step {
            Step::WakeByVal => waker.wake(),
            _ => {
                waker.wake_by_ref();
                drop(waker);
            }
        }
        assert_eq!(sched.inline_runs.load(SeqCst), 1);
        assert_eq!(
            probe.counts.polls(),
            2,
            "the wake ran the task to completion"
        );

        // A task that wakes itself during its poll (a yield): the resubmit runs it again,
        // to completion, before `yield_now` returns.
        let probe = Probe::new();
        sched.run_inline.store(false, SeqCst);
        drop(sched.spawn(probe.future([step, Step::Ready])));
        sched.run_inline.store(true, SeqCst);
        assert!(sched.run_one());
        assert_eq!(probe.counts.polls(), 2);
        assert_eq!(sched.inline_runs.load(SeqCst), 2);
        sched.finish();
    }
}
