//! `runnel::sync::oneshot`: delivery across tasks and threads, the sender dropped (→
//! `RecvError`), the receiver closed or dropped (→ send fails, `closed()` completes), and
//! cancel safety of awaiting the receiver.

mod support;
mod sync_util;

use std::pin::pin;
use std::thread;

use runnel::sync::oneshot::{self, error::TryRecvError};
use support::in_child_process;
use sync_util::{assert_pending, expect_ready, Probe};

#[runnel::test]
async fn value_crosses_tasks() {
    let (tx, rx) = oneshot::channel();
    runnel::spawn(async move { tx.send(String::from("done")).unwrap() });
    assert_eq!(rx.await.unwrap(), "done");
}

#[runnel::test]
async fn dropped_sender_gives_recv_error() {
    let (tx, rx) = oneshot::channel::<u32>();
    let dropper = runnel::spawn(async move { drop(tx) });
    assert!(rx.await.is_err());
    dropper.await.unwrap();
}

#[runnel::test]
async fn dropped_receiver_completes_closed_and_fails_send() {
    let (mut tx, rx) = oneshot::channel::<u32>();
    let watcher = runnel::spawn(async move {
        tx.closed().await;
        assert!(tx.is_closed());
        tx.send(5)
    });
    drop(rx);
    assert_eq!(watcher.await.unwrap(), Err(5));
}

#[test]
fn try_recv_reports_empty_value_then_closed() {
    let (tx, mut rx) = oneshot::channel();
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert!(rx.is_empty());
    tx.send(1).unwrap();
    assert!(!rx.is_empty());
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    assert!(rx.is_terminated());

    let (tx, mut rx) = oneshot::channel::<()>();
    drop(tx);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn close_fails_later_sends_but_keeps_an_earlier_value() {
    let (tx, mut rx) = oneshot::channel();
    rx.close();
    assert!(tx.is_closed());
    assert_eq!(tx.send(1), Err(1));

    let (tx, mut rx) = oneshot::channel();
    tx.send(2).unwrap();
    rx.close();
    assert_eq!(rx.try_recv(), Ok(2));
}

#[test]
fn cancelled_wait_keeps_the_value() {
    let probe = Probe::new();
    let (tx, mut rx) = oneshot::channel();
    {
        let mut wait = pin!(&mut rx);
        assert_pending(&probe, wait.as_mut());
        tx.send(3).unwrap();
        assert!(probe.woken());
        // Dropped without the poll that would take the value.
    }
    let mut wait = pin!(rx);
    assert_eq!(expect_ready(&probe, wait.as_mut()), Ok(3));
}

#[test]
#[should_panic(expected = "oneshot::Receiver polled after it completed")]
fn polling_after_completion_panics_with_a_clear_message() {
    let probe = Probe::new();
    let (tx, rx) = oneshot::channel();
    tx.send(()).unwrap();
    let mut rx = pin!(rx);
    let _ = expect_ready(&probe, rx.as_mut());
    let _ = probe.poll(rx.as_mut());
}

#[test]
fn blocking_recv_and_futures_executor() {
    in_child_process("blocking_recv_and_futures_executor", || {
        let (tx, rx) = oneshot::channel();
        let sender = thread::spawn(move || tx.send(8).unwrap());
        assert_eq!(rx.blocking_recv(), Ok(8));
        sender.join().unwrap();

        let (tx, rx) = oneshot::channel::<u8>();
        let dropper = thread::spawn(move || drop(tx));
        assert!(futures::executor::block_on(rx).is_err());
        dropper.join().unwrap();
    });
}
