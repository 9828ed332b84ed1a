//! `runnel::sync::broadcast`: every receiver gets every value, tokio's lag semantics (a slow
//! receiver loses the oldest values and is told exactly how many — checked against tokio
//! itself), the end of the channel, `resubscribe`, `len`, and cancel safety of `recv`.

mod support;
mod sync_util;

use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use runnel::sync::broadcast::{
    self,
    error::{RecvError, TryRecvError},
};
use support::in_child_process;
use sync_util::{assert_pending, expect_ready, Probe};

#[runnel::test]
async fn every_receiver_gets_every_value() {
    let (tx, rx) = broadcast::channel(16);
    let receivers: Vec<_> = (0..3)
        .map(|_| {
            let mut rx = rx.resubscribe();
            runnel::spawn(async move {
                let mut got = Vec::new();
                while let Ok(v) = rx.recv().await {
                    got.push(v);
                }
                got
            })
        })
        .collect();
    drop(rx);
    for v in 0..10 {
        assert_eq!(tx.send(v).unwrap(), 3);
    }
    drop(tx);
    for receiver in receivers {
        assert_eq!(receiver.await.unwrap(), (0..10).collect::<Vec<_>>());
    }
}

#[test]
fn lagging_receiver_is_told_exactly_how_many_it_lost() {
    let (tx, mut rx) = broadcast::channel(4);
    for v in 0..10 {
        tx.send(v).unwrap();
    }
    assert_eq!(rx.len(), 10);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Lagged(6)));
    for v in 6..10 {
        assert_eq!(rx.try_recv(), Ok(v));
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));

    // Through `recv` too.
    for v in 10..15 {
        tx.send(v).unwrap();
    }
    let probe = Probe::new();
    assert_eq!(
        expect_ready(&probe, pin!(rx.recv())),
        Err(RecvError::Lagged(1))
    );
    assert_eq!(expect_ready(&probe, pin!(rx.recv())), Ok(11));
}

/// Runs one send/receive script on both runnel's and tokio's broadcast channel and
/// compares every outcome, so lag counts, capacity rounding and the end of the channel
/// match tokio's exactly.
#[test]
fn lag_semantics_match_tokio() {
    #[derive(Debug, PartialEq)]
    enum Seen {
        Value(u32),
        Lagged(u64),
        Empty,
        Closed,
    }
    // (capacity, sends before the first read, reads, sends, reads)
    let scripts = [
        (1, 3, 2, 2, 3),
        (3, 7, 3, 9, 7),
        (4, 4, 1, 5, 6),
        (5, 20, 10, 0, 2),
    ];
    for (capacity, first, reads, second, last_reads) in scripts {
        let ours = {
            let (tx, mut rx) = broadcast::channel(capacity);
            let mut seen = Vec::new();
            let read = |rx: &mut broadcast::Receiver<u32>, n: usize, seen: &mut Vec<_>| {
                for _ in 0..n {
                    seen.push(match rx.try_recv() {
                        Ok(v) => Seen::Value(v),
                        Err(TryRecvError::Lagged(n)) => Seen::Lagged(n),
                        Err(TryRecvError::Empty) => Seen::Empty,
                        Err(TryRecvError::Closed) => Seen::Closed,
                    });
                }
            };
            (0..first).for_each(|v| {
                tx.send(v).unwrap();
            });
            read(&mut rx, reads, &mut seen);
            (first..first + second).for_each(|v| {
                tx.send(v).unwrap();
            });
            drop(tx);
            read(&mut rx, last_reads, &mut seen);
            seen
        };
        let theirs = {
            use tokio::sync::broadcast::{self, error::TryRecvError};
            let (tx, mut rx) = broadcast::channel(capacity);
            let mut seen = Vec::new();
            let read = |rx: &mut broadcast::Receiver<u32>, n: usize, seen: &mut Vec<_>| {
                for _ in 0..n {
                    seen.push(match rx.try_recv() {
                        Ok(v) => Seen::Value(v),
                        Err(TryRecvError::Lagged(n)) => Seen::Lagged(n),
                        Err(TryRecvError::Empty) => Seen::Empty,
                        Err(TryRecvError::Closed) => Seen::Closed,
                    });
                }
            };
            (0..first).for_each(|v| {
                tx.send(v).unwrap();
            });
            read(&mut rx, reads, &mut seen);
            (first..first + second).for_each(|v| {
                tx.send(v).unwrap();
            });
            drop(tx);
            read(&mut rx, last_reads, &mut seen);
            seen
        };
        assert_eq!(ours, theirs, "capacity {capacity}: runnel vs tokio");
    }
}

#[test]
fn closed_after_the_held_values_are_read() {
    let (tx, mut rx) = broadcast::channel(4);
    tx.send(1).unwrap();
    let tx2 = tx.clone();
    drop(tx);
    assert!(!rx.is_closed());
    drop(tx2);
    assert!(rx.is_closed());
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    assert_eq!(
        futures::executor::block_on(rx.recv()),
        Err(RecvError::Closed)
    );
}

#[test]
fn send_without_receivers_fails_and_returns_the_value() {
    let (tx, rx) = broadcast::channel(2);
    drop(rx);
    assert_eq!(tx.receiver_count(), 0);
    assert_eq!(tx.send("lost").unwrap_err().0, "lost");
    let mut rx = tx.subscribe();
    assert_eq!(tx.send("kept").unwrap(), 1);
    assert_eq!(rx.try_recv(), Ok("kept"));

    let tx = broadcast::Sender::<u8>::new(2);
    assert_eq!(tx.receiver_count(), 0);
    assert!(tx.send(1).is_err());
}

#[test]
fn resubscribe_starts_at_the_tail() {
    let (tx, mut rx) = broadcast::channel(8);
    tx.send(1).unwrap();
    let mut late = rx.resubscribe();
    assert!(late.same_channel(&rx));
    tx.send(2).unwrap();
    assert_eq!(late.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Ok(2));
}

#[test]
fn values_are_freed_once_every_receiver_has_them() {
    struct Counted(Arc<AtomicUsize>);
    impl Clone for Counted {
        fn clone(&self) -> Self {
            Counted(self.0.clone())
        }
    }
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, mut a) = broadcast::channel(8);
    let mut b = tx.subscribe();
    tx.send(Counted(drops.clone())).map_err(|_| ()).unwrap();
    tx.send(Counted(drops.clone())).map_err(|_| ()).unwrap();
    assert_eq!(tx.len(), 2);
    drop(a.try_recv().map_err(|_| ()).unwrap()); // a clone
    assert_eq!(drops.load(SeqCst), 1);
    assert_eq!(tx.len(), 2, "b still needs both");
    drop(b.try_recv().map_err(|_| ()).unwrap()); // the original, moved out
    assert_eq!(drops.load(SeqCst), 2);
    assert_eq!(tx.len(), 1);
    drop(b); // b's share of the second value is released with it
    assert_eq!(tx.len(), 1, "a still needs the second");
    drop(a);
    assert_eq!(drops.load(SeqCst), 3);
    assert!(tx.is_empty());
}

#[test]
fn cancelled_recv_loses_no_value() {
    let probe = Probe::new();
    let (tx, mut rx) = broadcast::channel(2);
    {
        let mut recv = pin!(rx.recv());
        assert_pending(&probe, recv.as_mut());
        tx.send(5).unwrap();
        assert!(probe.woken());
    }
    assert_eq!(rx.try_recv(), Ok(5));
}

#[test]
#[should_panic(expected = "broadcast channel capacity cannot be zero")]
fn zero_capacity_panics_with_a_clear_message() {
    let _ = broadcast::channel::<()>(0);
}

#[test]
fn slow_receiver_under_load_sees_lag_plus_values_equal_to_sent() {
    in_child_process(
        "slow_receiver_under_load_sees_lag_plus_values_equal_to_sent",
        || {
            let rt = support::runtime(2);
            rt.block_on(async {
                let (tx, mut rx) = broadcast::channel(8);
                let producer = runnel::spawn(async move {
                    for v in 0..5000u32 {
                        tx.send(v).unwrap();
                        if v % 16 == 0 {
                            runnel::task::yield_now().await;
                        }
                    }
                });
                let (mut values, mut lost, mut last) = (0u64, 0u64, None);
                loop {
                    match rx.recv().await {
                        Ok(v) => {
                            assert!(last.is_none_or(|l| v > l), "out of order");
                            last = Some(v);
                            values += 1;
                        }
                        Err(RecvError::Lagged(n)) => lost += n,
                        Err(RecvError::Closed) => break,
                    }
                }
                producer.await.unwrap();
                assert_eq!(
                    values + lost,
                    5000,
                    "every value is either received or counted"
                );
                assert_eq!(last, Some(4999));
            });
        },
    );
}
