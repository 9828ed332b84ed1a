//! The deadlock detector and `runnel::sync` channels. The channels know nothing of the
//! runtime: a waiting task's waker is held by the channel, which the detector counts as a
//! holder outside the runtime, so it says "maybe". That is always safe: a task waiting on a
//! channel whose sender is on a foreign thread is never reported; the price is that a real
//! deadlock through a channel gets a stall report instead of a deadlock report.

mod support;

use std::time::Duration;

use runnel::sync::{mpsc, oneshot};
use runnel::{OnDeadlock, DEADLOCK_MESSAGE};
use support::{run_child, wait_until};

fn panicking_runtime() -> runnel::Runtime {
    support::builder(2)
        .on_deadlock(OnDeadlock::Panic)
        .stall_report_after(Some(Duration::from_millis(50)))
        .build()
        .unwrap()
}

/// `block_on` and a task wait on channels whose senders a plain thread holds; the thread
/// sends only after the runtime has been quiet long enough to print a stall report. No
/// deadlock may be reported, and both waits must end with the values.
#[test]
fn a_sender_on_a_foreign_thread_is_never_reported() {
    const NAME: &str = "a_sender_on_a_foreign_thread_is_never_reported";
    if support::is_child(NAME) {
        let rt = panicking_runtime();
        let reader = rt.handle().metrics_reader();
        let (tx, mut rx) = mpsc::channel::<u32>(1);
        let (once_tx, once_rx) = oneshot::channel::<u32>();
        let sender = std::thread::spawn(move || {
            wait_until("a stall report", || reader.snapshot().stall_reports >= 1);
            once_tx.send(1).unwrap();
            tx.blocking_send(2).unwrap();
        });
        let sum = rt.block_on(async move {
            let waiter = runnel::spawn(once_rx);
            let second = rx.recv().await.unwrap();
            waiter.await.unwrap().unwrap() + second
        });
        sender.join().unwrap();
        assert_eq!(sum, 3);
        assert_eq!(rt.metrics().deadlock_reports, 0);
        println!("both values arrived");
        return;
    }
    let child = run_child(NAME);
    assert_eq!(child.code, Some(0), "{child:?}");
    assert!(child.stdout.contains("both values arrived"), "{child:?}");
    assert!(!child.stderr.contains(DEADLOCK_MESSAGE), "{child:?}");
}

/// A real deadlock through a channel (`block_on` waits on a receiver whose only sender it
/// holds itself). The detector cannot see into the channel, so it must not claim a
/// deadlock; it prints a stall report naming the waker held outside the runtime.
#[test]
fn a_deadlock_through_a_channel_gets_a_stall_report() {
    const NAME: &str = "a_deadlock_through_a_channel_gets_a_stall_report";
    if support::is_child(NAME) {
        let rt = panicking_runtime();
        let reader = rt.handle().metrics_reader();
        std::thread::spawn(move || {
            wait_until("a stall report", || reader.snapshot().stall_reports >= 1);
            println!("stall reported");
            std::process::exit(0);
        });
        rt.block_on(async {
            let (_tx, mut rx) = mpsc::channel::<()>(1);
            rx.recv().await;
        });
        unreachable!("the receive can never complete");
    }
    let child = run_child(NAME);
    assert_eq!(child.code, Some(0), "{child:?}");
    assert!(child.stdout.contains("stall reported"), "{child:?}");
    assert!(!child.stderr.contains(DEADLOCK_MESSAGE), "{child:?}");
    assert!(
        child.stderr.contains("a waker held outside the runtime"),
        "the stall report says what block_on waits on: {child:?}"
    );
}
