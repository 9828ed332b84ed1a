//! Loom models of the oneshot protocol: every interleaving of the sender's completion
//! with the receiver's wait, waker replacement, close and drop. Each model checks that
//! nothing is lost (a waiting side is always woken: loom reports a deadlock otherwise),
//! that the value is delivered or returned consistently, and that it is dropped once.

use super::*;
use loom::future::block_on;
use loom::thread;
use std::sync::atomic::{AtomicUsize as StdAtomic, Ordering::SeqCst};
use std::sync::Arc as StdArc;
use std::task::Context;

/// A value that counts its drops (a plain std counter: read only after every thread
/// was joined).
struct Counted(StdArc<StdAtomic>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

#[test]
fn loom_send_races_the_wait() {
    loom::model(|| {
        let (tx, rx) = channel::<u32>();
        let sender = thread::spawn(move || tx.send(7).unwrap());
        assert_eq!(block_on(rx), Ok(7));
        sender.join().unwrap();
    });
}

#[test]
fn loom_sender_drop_races_the_wait() {
    loom::model(|| {
        let (tx, rx) = channel::<u32>();
        let sender = thread::spawn(move || drop(tx));
        assert!(block_on(rx).is_err());
        sender.join().unwrap();
    });
}

#[test]
fn loom_send_races_a_waker_replacement() {
    loom::model(|| {
        let (tx, mut rx) = channel::<u32>();
        let noop = futures::task::noop_waker();
        let first = Pin::new(&mut rx).poll(&mut Context::from_waker(&noop));
        let sender = thread::spawn(move || tx.send(9).unwrap());
        let got = match first {
            Poll::Ready(v) => v,
            // Polled again with block_on's own waker: the replacement path.
            Poll::Pending => block_on(&mut rx),
        };
        assert_eq!(got, Ok(9));
        sender.join().unwrap();
    });
}

#[test]
fn loom_receiver_drop_races_send_and_the_value_drops_once() {
    loom::model(|| {
        let drops = StdArc::new(StdAtomic::new(0));
        let (tx, mut rx) = channel::<Counted>();
        let noop = futures::task::noop_waker();
        // A published receiver waker makes the drop reclaim it while the send races.
        let _ = Pin::new(&mut rx).poll(&mut Context::from_waker(&noop));
        let value = Counted(drops.clone());
        let sender = thread::spawn(move || drop(tx.send(value)));
        drop(rx);
        sender.join().unwrap();
        assert_eq!(drops.load(SeqCst), 1, "the value is dropped exactly once");
    });
}

#[test]
fn loom_close_races_send_consistently() {
    loom::model(|| {
        let (tx, mut rx) = channel::<u32>();
        let sender = thread::spawn(move || tx.send(1).is_ok());
        rx.close();
        let received = block_on(&mut rx);
        let sent = sender.join().unwrap();
        assert_eq!(
            received.is_ok(),
            sent,
            "a send succeeds iff its value is received"
        );
    });
}

#[test]
fn loom_receiver_drop_wakes_closed() {
    loom::model(|| {
        let (mut tx, rx) = channel::<u32>();
        let receiver = thread::spawn(move || drop(rx));
        block_on(tx.closed());
        assert!(tx.is_closed());
        assert_eq!(tx.send(2), Err(2));
        receiver.join().unwrap();
    });
}

#[test]
fn loom_close_races_a_closed_waker_replacement() {
    loom::model(|| {
        let (mut tx, mut rx) = channel::<u32>();
        let noop = futures::task::noop_waker();
        let first = tx.poll_closed(&mut Context::from_waker(&noop));
        let receiver = thread::spawn(move || rx.close());
        if first.is_pending() {
            block_on(tx.closed());
        }
        assert!(tx.is_closed());
        receiver.join().unwrap();
    });
}
