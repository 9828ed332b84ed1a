//! `runnel::sync::mpsc`: ordering under concurrency (on runnel and on a foreign executor),
//! backpressure, FIFO service of blocked senders, close, sender drop, and cancel safety
//! of `send` and `recv`. Ordering-sensitive steps are driven by hand with a counting
//! waker (`sync_util::Probe`), so no test sleeps; tests whose failure mode is a hang run in
//! a child process.

mod support;
mod sync_util;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;

use runnel::sync::mpsc::{self, error::TryRecvError, error::TrySendError};
use support::in_child_process;
use sync_util::{assert_pending, expect_ready, Probe};

const PRODUCERS: usize = 4;
const PER_PRODUCER: usize = 10_000;

/// Checks that every producer's messages arrived complete and in order.
fn check_order(received: &[(usize, usize)]) {
    let mut next = [0usize; PRODUCERS];
    for &(producer, seq) in received {
        assert_eq!(seq, next[producer], "producer {producer} out of order");
        next[producer] += 1;
    }
    assert_eq!(
        next, [PER_PRODUCER; PRODUCERS],
        "a producer's messages went missing"
    );
    assert_eq!(received.len(), PRODUCERS * PER_PRODUCER);
}

#[test]
fn bounded_four_producers_keep_order_on_runnel() {
    in_child_process("bounded_four_producers_keep_order_on_runnel", || {
        let rt = support::runtime(2);
        let received = rt.block_on(async {
            // Small buffer: producers block on a full channel most of the time.
            let (tx, mut rx) = mpsc::channel(16);
            for producer in 0..PRODUCERS {
                let tx = tx.clone();
                runnel::spawn(async move {
                    for seq in 0..PER_PRODUCER {
                        tx.send((producer, seq)).await.unwrap();
                    }
                });
            }
            drop(tx);
            let mut received = Vec::new();
            while let Some(message) = rx.recv().await {
                received.push(message);
            }
            received
        });
        check_order(&received);
    });
}

#[test]
fn unbounded_four_producers_keep_order_on_runnel() {
    in_child_process("unbounded_four_producers_keep_order_on_runnel", || {
        let rt = support::runtime(2);
        let received = rt.block_on(async {
            let (tx, mut rx) = mpsc::unbounded_channel();
            for producer in 0..PRODUCERS {
                let tx = tx.clone();
                runnel::spawn(async move {
                    for seq in 0..PER_PRODUCER {
                        tx.send((producer, seq)).unwrap();
                        if seq % 64 == 0 {
                            runnel::task::yield_now().await;
                        }
                    }
                });
            }
            drop(tx);
            let mut received = Vec::new();
            let mut batch = Vec::new();
            // recv_many on the way: it must keep the order too.
            while rx.recv_many(&mut batch, 100).await > 0 {
                received.append(&mut batch);
            }
            received
        });
        check_order(&received);
    });
}

/// The channel knows nothing of runnel: the same workload on `futures::executor`, with
/// producers on plain threads.
#[test]
fn bounded_four_producers_keep_order_on_futures_executor() {
    in_child_process(
        "bounded_four_producers_keep_order_on_futures_executor",
        || {
            let (tx, mut rx) = mpsc::channel(16);
            let producers: Vec<_> = (0..PRODUCERS)
                .map(|producer| {
                    let tx = tx.clone();
                    thread::spawn(move || {
                        futures::executor::block_on(async {
                            for seq in 0..PER_PRODUCER {
                                tx.send((producer, seq)).await.unwrap();
                            }
                        })
                    })
                })
                .collect();
            drop(tx);
            let received = futures::executor::block_on(async {
                let mut received = Vec::new();
                while let Some(message) = rx.recv().await {
                    received.push(message);
                }
                received
            });
            for p in producers {
                p.join().unwrap();
            }
            check_order(&received);
        },
    );
}

#[test]
fn blocking_send_and_recv_across_threads() {
    in_child_process("blocking_send_and_recv_across_threads", || {
        let (tx, mut rx) = mpsc::channel(4);
        let producer = thread::spawn(move || {
            for i in 0..1000 {
                tx.blocking_send(i).unwrap();
            }
        });
        for i in 0..1000 {
            assert_eq!(rx.blocking_recv(), Some(i));
        }
        assert_eq!(rx.blocking_recv(), None);
        producer.join().unwrap();
    });
}

#[test]
fn full_channel_blocks_the_sender_until_a_recv() {
    let probe = Probe::new();
    let (tx, mut rx) = mpsc::channel(2);
    tx.try_send(1).unwrap();
    tx.try_send(2).unwrap();
    assert_eq!(tx.capacity(), 0);
    assert!(matches!(tx.try_send(9), Err(TrySendError::Full(9))));

    let mut send = pin!(tx.send(3));
    assert_pending(&probe, send.as_mut());
    assert_pending(&probe, send.as_mut());
    assert!(!probe.woken());

    assert_eq!(rx.try_recv(), Ok(1));
    assert!(probe.woken(), "a recv must wake the blocked sender");
    expect_ready(&probe, send.as_mut()).unwrap();
    assert_eq!(tx.capacity(), 0);
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Ok(3));
    assert_eq!(tx.capacity(), 2);
}

#[test]
fn backpressure_on_runnel_holds_the_producer_at_the_bound() {
    in_child_process(
        "backpressure_on_runnel_holds_the_producer_at_the_bound",
        || {
            let rt = support::runtime(2);
            rt.block_on(async {
                let (tx, mut rx) = mpsc::channel(4);
                let sent = Arc::new(AtomicUsize::new(0));
                let producer = {
                    let sent = sent.clone();
                    runnel::spawn(async move {
                        for i in 0..100 {
                            tx.send(i).await.unwrap();
                            sent.fetch_add(1, SeqCst);
                        }
                    })
                };
                for i in 0..100 {
                    // Whatever the interleaving, the producer can be at most 4 (the buffer)
                    // ahead of what was received, plus the message it is handing over.
                    assert!(sent.load(SeqCst) <= i + 4, "the producer overran the bound");
                    assert_eq!(rx.recv().await, Some(i));
                }
                producer.await.unwrap();
                assert_eq!(rx.recv().await, None);
            });
        },
    );
}

#[test]
fn blocked_senders_are_served_in_order_and_not_overtaken() {
    let probe = Probe::new();
    let (tx, mut rx) = mpsc::channel(1);
    tx.try_send(0).unwrap();
    let mut a = pin!(tx.send(1));
    let mut b = pin!(tx.send(2));
    let mut c = pin!(tx.send(3));
    assert_pending(&probe, a.as_mut());
    assert_pending(&probe, b.as_mut());
    assert_pending(&probe, c.as_mut());

    assert_eq!(rx.try_recv(), Ok(0));
    // The freed slot went to `a`: a newcomer cannot take it, nor can `c` or `b`.
    assert!(matches!(tx.try_send(99), Err(TrySendError::Full(99))));
    assert_pending(&probe, c.as_mut());
    assert_pending(&probe, b.as_mut());
    expect_ready(&probe, a.as_mut()).unwrap();

    assert_eq!(rx.try_recv(), Ok(1));
    assert_pending(&probe, c.as_mut());
    expect_ready(&probe, b.as_mut()).unwrap();
    assert_eq!(rx.try_recv(), Ok(2));
    expect_ready(&probe, c.as_mut()).unwrap();
    assert_eq!(rx.try_recv(), Ok(3));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn cancelled_send_does_not_send_and_loses_no_capacity() {
    let probe = Probe::new();
    let (tx, mut rx) = mpsc::channel(1);
    tx.try_send(0).unwrap();
    {
        // Cancelled while queued.
        let mut queued = Box::pin(tx.send(10));
        assert_pending(&probe, queued.as_mut());
    }
    let mut granted = Box::pin(tx.send(11));
    let mut next = pin!(tx.send(12));
    assert_pending(&probe, granted.as_mut());
    assert_pending(&probe, next.as_mut());

    assert_eq!(rx.try_recv(), Ok(0));
    // The slot is now granted to `granted`; cancelling it must pass the slot on.
    assert!(probe.woken());
    drop(granted);
    assert!(
        probe.woken(),
        "the next waiter must be woken with the passed-on slot"
    );
    expect_ready(&probe, next.as_mut()).unwrap();

    assert_eq!(rx.try_recv(), Ok(12), "only the uncancelled send arrives");
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(tx.capacity(), tx.max_capacity(), "capacity was lost");

    // Same for a dropped permit and a cancelled reserve.
    let permit = tx.try_reserve().unwrap();
    assert_eq!(tx.capacity(), 0);
    drop(permit);
    assert_eq!(tx.capacity(), 1);
}

#[test]
fn cancelled_recv_loses_no_message() {
    let probe = Probe::new();
    let (tx, mut rx) = mpsc::channel::<u32>(4);
    {
        let mut recv = pin!(rx.recv());
        assert_pending(&probe, recv.as_mut());
        tx.try_send(7).unwrap();
        assert!(probe.woken());
        // Dropped after the wake but before the poll that would take the message.
    }
    assert_eq!(rx.try_recv(), Ok(7));
}

#[test]
fn cancelled_recv_in_a_select_loses_no_message_on_runnel() {
    in_child_process(
        "cancelled_recv_in_a_select_loses_no_message_on_runnel",
        || {
            let rt = support::runtime(2);
            rt.block_on(async {
                let (tx, mut rx) = mpsc::channel(8);
                let producer = runnel::spawn(async move {
                    for i in 0..2000u32 {
                        tx.send(i).await.unwrap();
                    }
                });
                let mut expected = 0;
                let mut cancelled = 0;
                loop {
                    // Races every recv against a yield; the losing recv is dropped.
                    let mut recv = pin!(rx.recv());
                    let outcome = std::future::poll_fn(|cx| match recv.as_mut().poll(cx) {
                        std::task::Poll::Ready(v) => std::task::Poll::Ready(Some(v)),
                        std::task::Poll::Pending => std::task::Poll::Ready(None),
                    })
                    .await;
                    match outcome {
                        Some(Some(v)) => {
                            assert_eq!(v, expected, "a message was lost or reordered");
                            expected += 1;
                        }
                        Some(None) => break,
                        None => {
                            cancelled += 1;
                            runnel::task::yield_now().await;
                        }
                    }
                }
                assert_eq!(expected, 2000);
                producer.await.unwrap();
                println!("cancelled receives: {cancelled}");
            });
        },
    );
}

#[test]
fn close_lets_buffered_messages_and_permits_through() {
    let probe = Probe::new();
    let (tx, mut rx) = mpsc::channel(4);
    tx.try_send(1).unwrap();
    tx.try_send(2).unwrap();
    let permit = tx.try_reserve().unwrap();
    rx.close();
    assert!(tx.is_closed());
    assert!(matches!(tx.try_send(3), Err(TrySendError::Closed(3))));
    assert!(futures::executor::block_on(tx.send(3)).is_err());
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Ok(2));
    // A permit reserved before the close may still send: the receiver waits for it.
    {
        let mut recv = pin!(rx.recv());
        assert_pending(&probe, recv.as_mut());
        permit.send(4);
        assert!(probe.woken());
        assert_eq!(expect_ready(&probe, recv.as_mut()), Some(4));
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    assert_eq!(futures::executor::block_on(rx.recv()), None);
}

#[test]
fn close_fails_waiting_senders_and_returns_granted_slots() {
    let probe = Probe::new();
    let (tx, mut rx) = mpsc::channel(1);
    tx.try_send(0).unwrap();
    let mut a = pin!(tx.send(1));
    let mut b = pin!(tx.send(2));
    assert_pending(&probe, a.as_mut());
    assert_pending(&probe, b.as_mut());
    assert_eq!(rx.try_recv(), Ok(0)); // slot granted to `a`
    rx.close();
    assert!(probe.woken());
    assert_eq!(expect_ready(&probe, a.as_mut()).unwrap_err().0, 1);
    assert_eq!(expect_ready(&probe, b.as_mut()).unwrap_err().0, 2);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
}

#[test]
fn dropping_every_sender_ends_recv() {
    let probe = Probe::new();
    let (tx, mut rx) = mpsc::channel::<u8>(4);
    let tx2 = tx.clone();
    assert!(tx.same_channel(&tx2));
    {
        let mut recv = pin!(rx.recv());
        assert_pending(&probe, recv.as_mut());
        drop(tx);
        assert!(!probe.woken(), "one sender is still alive");
        tx2.try_send(5).unwrap();
        assert!(probe.woken());
        assert_eq!(expect_ready(&probe, recv.as_mut()), Some(5));
    }
    {
        let mut recv = pin!(rx.recv());
        assert_pending(&probe, recv.as_mut());
        drop(tx2);
        assert!(
            probe.woken(),
            "the last sender's drop must wake the receiver"
        );
        assert_eq!(expect_ready(&probe, recv.as_mut()), None);
    }
    assert!(rx.is_closed());
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
}

#[test]
fn dropping_the_receiver_fails_senders_and_completes_closed() {
    let probe = Probe::new();
    let (tx, rx) = mpsc::channel(1);
    tx.try_send(1).unwrap();
    let mut waiting = pin!(tx.send(2));
    let mut closed = pin!(tx.closed());
    assert_pending(&probe, waiting.as_mut());
    assert_pending(&probe, closed.as_mut());
    drop(rx);
    assert!(probe.woken());
    assert_eq!(expect_ready(&probe, waiting.as_mut()).unwrap_err().0, 2);
    expect_ready(&probe, closed.as_mut());
    assert!(tx.is_closed());
    assert!(matches!(tx.try_reserve(), Err(TrySendError::Closed(()))));
}

#[test]
fn owned_permits_move_and_give_the_sender_back() {
    let (tx, mut rx) = mpsc::channel(2);
    let permit = futures::executor::block_on(tx.clone().reserve_owned()).unwrap();
    assert_eq!(tx.capacity(), 1);
    let handle = thread::spawn(move || {
        let sender = permit.send("from a thread");
        sender.max_capacity()
    });
    assert_eq!(handle.join().unwrap(), 2);
    assert_eq!(rx.try_recv(), Ok("from a thread"));
    let permit = tx.clone().try_reserve_owned().unwrap();
    let sender = permit.release();
    assert_eq!(sender.capacity(), 2);
    let _a = tx.try_reserve().unwrap();
    let _b = tx.try_reserve().unwrap();
    assert!(matches!(
        tx.clone().try_reserve_owned(),
        Err(TrySendError::Full(_))
    ));
}

#[test]
fn recv_many_takes_up_to_the_limit_and_frees_slots() {
    let probe = Probe::new();
    let (tx, mut rx) = mpsc::channel(3);
    for i in 0..3 {
        tx.try_send(i).unwrap();
    }
    let mut blocked = pin!(tx.send(3));
    assert_pending(&probe, blocked.as_mut());
    let mut buffer = vec![];
    assert_eq!(futures::executor::block_on(rx.recv_many(&mut buffer, 2)), 2);
    assert_eq!(buffer, [0, 1]);
    expect_ready(&probe, blocked.as_mut()).unwrap();
    assert_eq!(futures::executor::block_on(rx.recv_many(&mut buffer, 0)), 0);
    assert_eq!(
        futures::executor::block_on(rx.recv_many(&mut buffer, 10)),
        2
    );
    assert_eq!(buffer, [0, 1, 2, 3]);
    assert_eq!(rx.len(), 0);
    assert!(rx.is_empty());
}

#[test]
#[should_panic(expected = "mpsc bounded channel requires buffer > 0")]
fn zero_buffer_panics_with_a_clear_message() {
    let _ = mpsc::channel::<()>(0);
}

#[test]
fn unbounded_send_fails_after_close_and_returns_the_message() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    tx.send(1).unwrap();
    rx.close();
    assert_eq!(tx.send(2).unwrap_err().0, 2);
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
}

#[test]
fn messages_left_in_a_dropped_receiver_are_dropped() {
    let drops = Arc::new(AtomicUsize::new(0));
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, SeqCst);
        }
    }
    let (tx, rx) = mpsc::channel(4);
    tx.try_send(Counted(drops.clone())).unwrap();
    tx.try_send(Counted(drops.clone())).unwrap();
    let permit = tx.try_reserve().unwrap();
    drop(rx);
    assert_eq!(drops.load(SeqCst), 2);
    permit.send(Counted(drops.clone()));
    assert_eq!(
        drops.load(SeqCst),
        3,
        "a permit's message after the receiver is gone"
    );
}

/// Senders that give up whenever a send would wait (polling it once, then dropping it),
/// racing a consumer on other workers: every send that completed arrives, no cancelled
/// one does, and no capacity leaks.
#[test]
fn racing_cancelled_sends_leak_no_capacity_on_runnel() {
    in_child_process("racing_cancelled_sends_leak_no_capacity_on_runnel", || {
        let rt = support::runtime(2);
        rt.block_on(async {
            let (tx, mut rx) = mpsc::channel(2);
            let producers: Vec<_> = (0..4u64)
                .map(|producer| {
                    let tx = tx.clone();
                    runnel::spawn(async move {
                        let mut sent = 0u64;
                        for seq in 0..2000u64 {
                            let mut send = pin!(tx.send(producer * 1_000_000 + seq));
                            let done = std::future::poll_fn(|cx| {
                                std::task::Poll::Ready(send.as_mut().poll(cx).is_ready())
                            })
                            .await;
                            if done {
                                sent += 1;
                            } else {
                                runnel::task::yield_now().await;
                            }
                        }
                        sent
                    })
                })
                .collect();
            let consumer = runnel::spawn(async move {
                let mut received = 0u64;
                while rx.recv().await.is_some() {
                    received += 1;
                }
                (received, rx)
            });
            let mut sent = 0;
            for producer in producers {
                sent += producer.await.unwrap();
            }
            drop(tx);
            let (received, rx) = consumer.await.unwrap();
            assert_eq!(received, sent);
            assert_eq!(rx.capacity(), 2, "a cancelled send kept a slot");
            println!("completed sends: {sent} of 8000");
        });
    });
}

#[test]
fn weak_senders_do_not_keep_the_channel_open() {
    let (tx, mut rx) = mpsc::channel::<u8>(1);
    let weak = tx.downgrade();
    assert_eq!(weak.strong_count(), 1);
    let strong = weak.upgrade().expect("a sender is alive");
    assert_eq!(tx.strong_count(), 2);
    strong.try_send(1).unwrap();
    drop(strong);
    drop(tx);
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    assert!(weak.upgrade().is_none(), "no upgrade after the end");

    let (tx, mut rx) = mpsc::unbounded_channel::<u8>();
    let weak = tx.downgrade();
    drop(tx);
    assert!(weak.upgrade().is_none());
    assert_eq!(futures::executor::block_on(rx.recv()), None);
}
