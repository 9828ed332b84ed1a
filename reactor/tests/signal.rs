//! Signals on a bare reactor (a driver thread that parks until an event, no timeout, so a
//! lost wake-up hangs instead of being rescued by a periodic poll): each delivery sent by
//! another thread completes exactly one `recv`, and the waiter count is exact.
//!
//! The handler this installs stays for the life of this test binary; only SIGUSR2 is used.
#![cfg(unix)]

mod common;

use std::pin::pin;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::BackgroundDriver;
use futures::poll;
use runnel_reactor::signal::unix::{signal, SignalKind};
use runnel_reactor::Waiters;

/// A thread that sends SIGUSR2 to this process once per message; dropping the sender stops it.
fn killer() -> (mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (go, orders) = mpsc::channel::<()>();
    let pid = std::process::id() as libc::pid_t;
    let thread = std::thread::spawn(move || {
        for () in orders {
            // SAFETY: kill(2) on our own pid with a signal whose handler is installed.
            assert_eq!(unsafe { libc::kill(pid, libc::SIGUSR2) }, 0);
        }
    });
    (go, thread)
}

/// `rounds` deliveries, each sent only while `recv` is parked (its waker stored), each
/// completing exactly one `recv`. Returns the time per round.
fn round_trips(rounds: u32) -> Duration {
    let mut rt = BackgroundDriver::with_park_timeout(None);
    let (go, thread) = killer();
    let elapsed = rt.block_on(async {
        let mut usr2 = signal(SignalKind::user_defined2()).unwrap();
        let start = Instant::now();
        for _ in 0..rounds {
            let mut recv = pin!(usr2.recv());
            assert!(poll!(recv.as_mut()).is_pending(), "nothing was sent");
            go.send(()).unwrap();
            assert_eq!(recv.await, Some(()));
        }
        let elapsed = start.elapsed();
        assert!(
            poll!(pin!(usr2.recv())).is_pending(),
            "one recv per delivery"
        );
        elapsed
    });
    drop(go);
    thread.join().unwrap();
    assert_eq!(rt.quiesce(), Waiters::default());
    elapsed / rounds
}

#[test]
fn each_delivery_from_another_thread_completes_one_recv() {
    round_trips(200);
}

/// `cargo test --release -p runnel-reactor --test signal -- --ignored --nocapture`.
#[test]
#[ignore = "prints figures; run by hand in release"]
fn measure_signal_round_trip() {
    const ROUNDS: u32 = 20_000;
    let per_round = round_trips(ROUNDS);
    println!(
        "{ROUNDS} rounds (mpsc to a thread, kill(2), handler, epoll wake, recv): \
         {per_round:?} per round"
    );
}
