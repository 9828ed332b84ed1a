//! `runnel::sync::watch`: receivers see the latest value (not every value), `changed`
//! wakes every receiver, the end of the channel in both directions, and the `send`
//! variants.

mod support;
mod sync_util;

use std::pin::pin;
use std::thread;

use runnel::sync::watch;
use support::in_child_process;
use sync_util::{assert_pending, expect_ready, Probe};

#[test]
fn receiver_sees_the_latest_value_once() {
    let probe = Probe::new();
    let (tx, mut rx) = watch::channel(0);
    assert!(!rx.has_changed().unwrap());
    for v in 1..=3 {
        tx.send(v).unwrap();
    }
    assert!(rx.has_changed().unwrap());
    assert!(rx.borrow().has_changed());
    expect_ready(&probe, pin!(rx.changed())).unwrap();
    assert_eq!(*rx.borrow(), 3);
    // Seen: the next `changed` waits for a new value.
    let mut changed = pin!(rx.changed());
    assert_pending(&probe, changed.as_mut());
    tx.send(4).unwrap();
    assert!(probe.woken());
    expect_ready(&probe, changed.as_mut()).unwrap();
}

#[runnel::test]
async fn every_receiver_is_woken_on_runnel() {
    let (tx, rx) = watch::channel(0u32);
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let mut rx = rx.clone();
            runnel::spawn(async move {
                rx.changed().await.unwrap();
                *rx.borrow_and_update()
            })
        })
        .collect();
    assert_eq!(tx.receiver_count(), 5);
    // Whether a waiter looks before or after the send, it sees the change (its clone has
    // seen only the initial value).
    let mut rx = rx;
    tx.send(7).unwrap();
    for waiter in waiters {
        assert_eq!(waiter.await.unwrap(), 7);
    }
    rx.changed().await.unwrap();
    assert_eq!(*rx.borrow(), 7);
}

#[test]
fn producer_stream_is_observed_monotonically_to_the_last_value() {
    in_child_process(
        "producer_stream_is_observed_monotonically_to_the_last_value",
        || {
            let rt = support::runtime(2);
            rt.block_on(async {
                let (tx, mut rx) = watch::channel(0u32);
                runnel::spawn(async move {
                    for v in 1..=10_000 {
                        tx.send(v).unwrap();
                        if v % 100 == 0 {
                            runnel::task::yield_now().await;
                        }
                    }
                });
                let mut last = 0;
                while rx.changed().await.is_ok() {
                    let v = *rx.borrow_and_update();
                    assert!(v > last, "watch went backwards: {v} after {last}");
                    last = v;
                }
                // The sender is gone; the final value is still there.
                assert_eq!(*rx.borrow(), 10_000);
            });
        },
    );
}

#[test]
fn dropped_sender_ends_changed_but_keeps_the_value() {
    let probe = Probe::new();
    let (tx, mut rx) = watch::channel("a");
    {
        let mut changed = pin!(rx.changed());
        assert_pending(&probe, changed.as_mut());
        drop(tx);
        assert!(probe.woken());
        assert!(expect_ready(&probe, changed.as_mut()).is_err());
    }
    assert!(rx.has_changed().is_err());
    assert!(rx.is_closed());
    assert_eq!(*rx.borrow(), "a");

    // An unseen value sent before the drop is still reported by `changed`.
    let (tx, mut rx) = watch::channel(1);
    tx.send(2).unwrap();
    drop(tx);
    assert!(expect_ready(&probe, pin!(rx.changed())).is_ok());
    assert!(expect_ready(&probe, pin!(rx.changed())).is_err());
}

#[test]
fn wait_for_checks_the_current_value_then_waits() {
    let probe = Probe::new();
    let (tx, mut rx) = watch::channel(1);
    assert_eq!(
        *expect_ready(&probe, pin!(rx.wait_for(|&v| v == 1))).unwrap(),
        1
    );
    {
        let mut wait = pin!(rx.wait_for(|&v| v >= 3));
        assert_pending(&probe, wait.as_mut());
        tx.send(2).unwrap();
        assert!(probe.woken());
        assert_pending(&probe, wait.as_mut());
        tx.send(3).unwrap();
        let seen = expect_ready(&probe, wait.as_mut()).unwrap();
        assert_eq!(*seen, 3);
    }
    // The sender goes: the final value is checked once more, then the wait fails.
    tx.send(9).unwrap();
    drop(tx);
    assert!(expect_ready(&probe, pin!(rx.wait_for(|&v| v == 9))).is_ok());
    assert!(expect_ready(&probe, pin!(rx.wait_for(|&v| v == 10))).is_err());
}

#[test]
fn send_needs_a_receiver_but_send_replace_and_modify_do_not() {
    let (tx, rx) = watch::channel(1);
    drop(rx);
    assert!(tx.is_closed());
    assert_eq!(tx.send(2).unwrap_err().0, 2);
    assert_eq!(*tx.borrow(), 1, "a failed send must not store the value");
    assert_eq!(tx.send_replace(3), 1);
    tx.send_modify(|v| *v += 1);
    assert_eq!(*tx.borrow(), 4);

    // `subscribe` reopens the channel; the new receiver has seen the current value.
    let mut rx = tx.subscribe();
    assert!(!tx.is_closed());
    assert!(!rx.has_changed().unwrap());
    assert!(!tx.send_if_modified(|_| false));
    assert!(
        !rx.has_changed().unwrap(),
        "an unmodified value is no change"
    );
    assert!(tx.send_if_modified(|v| {
        *v = 5;
        true
    }));
    assert!(rx.has_changed().unwrap());
    let seen = rx.borrow_and_update();
    assert!(seen.has_changed());
    assert_eq!(*seen, 5);
    drop(seen);
    assert!(!rx.has_changed().unwrap());
    rx.mark_changed();
    assert!(rx.has_changed().unwrap());
    rx.mark_unchanged();
    assert!(!rx.has_changed().unwrap());

    let tx = watch::Sender::new(0);
    assert_eq!(tx.receiver_count(), 0);
    assert!(tx.send(1).is_err());
    assert_eq!(*tx.subscribe().borrow(), 0);
}

#[test]
fn closed_completes_when_the_last_receiver_goes() {
    let probe = Probe::new();
    let (tx, rx) = watch::channel(());
    let rx2 = rx.clone();
    let mut closed = pin!(tx.closed());
    assert_pending(&probe, closed.as_mut());
    drop(rx);
    assert!(!probe.woken());
    drop(rx2);
    assert!(probe.woken());
    expect_ready(&probe, closed.as_mut());
}

#[test]
fn works_on_futures_executor_across_threads() {
    in_child_process("works_on_futures_executor_across_threads", || {
        let (tx, mut rx) = watch::channel(0u32);
        let producer = thread::spawn(move || {
            for v in 1..=1000 {
                tx.send(v).unwrap();
            }
        });
        let last = futures::executor::block_on(async {
            while rx.changed().await.is_ok() {}
            *rx.borrow()
        });
        producer.join().unwrap();
        assert_eq!(last, 1000);
    });
}
