//! Panics in a poll and in a `Drop` (while cancelling, at shutdown).

use super::*;

#[test]
fn panic_in_poll_becomes_the_join_error() {
    let sched = TestScheduler::new();
    let probe = Probe::new();
    let mut handle = sched.spawn(probe.future([Step::Panic]));
    let id = handle.id();
    sched.run_all();
    assert_eq!(probe.counts.drops(), 1);
    let (_, waker) = CountingWaker::new();
    let err = ready(poll_join(&mut handle, &waker)).unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.id(), id);
    assert_eq!(
        *err.into_panic().downcast::<&str>().unwrap(),
        "scripted panic"
    );
    drop(handle);
    sched.finish();
}

/// Panics when dropped.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("drop panic");
    }
}

#[test]
fn panic_in_drop_while_cancelling() {
    let sched = TestScheduler::new();
    let bomb = PanicOnDrop;
    let mut handle = sched.spawn(async move {
        let _bomb = bomb;
        std::future::pending::<()>().await;
    });
    sched.run_all();
    handle.abort();
    sched.run_all();
    let (_, waker) = CountingWaker::new();
    let err = ready(poll_join(&mut handle, &waker)).unwrap_err();
    assert_eq!(*err.into_panic().downcast::<&str>().unwrap(), "drop panic");
    drop(handle);
    sched.finish();
}

#[test]
fn panic_in_drop_at_shutdown_is_contained() {
    let sched = TestScheduler::new();
    let bomb = PanicOnDrop;
    let mut handle = sched.spawn(async move {
        let _bomb = bomb;
        std::future::pending::<()>().await;
    });
    sched.run_all();
    sched.shutdown();
    let (_, waker) = CountingWaker::new();
    assert!(ready(poll_join(&mut handle, &waker))
        .unwrap_err()
        .is_panic());
    drop(handle);
    sched.finish();
}
