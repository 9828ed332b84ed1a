//! Shutdown: a task blocked on I/O or a timer is woken with an error, not left hanging.

mod common;

use std::future::Future;
use std::io::Read;
use std::sync::mpsc;
use std::task::Poll;

use common::BackgroundDriver;
use mio::net::UnixStream;
use mio::Interest;
use runnel_reactor::{is_shutdown_error, PollEvented, Registration, Waiters};

#[test]
fn blocked_reader_gets_the_shutdown_error() {
    let mut rt = BackgroundDriver::start();
    let (a, _b) = UnixStream::pair().unwrap();
    let (pending_tx, pending_rx) = mpsc::channel();
    let handle = rt.handle().clone();
    let shutter = std::thread::spawn(move || {
        pending_rx.recv().unwrap(); // the reader is parked on the socket now
        handle.shutdown();
    });
    let result = rt.block_on(async {
        let a = PollEvented::new(a, Interest::READABLE).unwrap();
        let mut buf = [0; 8];
        let mut told = false;
        std::future::poll_fn(|cx| {
            let poll = a.registration().poll_read_io(cx, || (&*a).read(&mut buf));
            if poll.is_pending() && !told {
                told = true;
                pending_tx.send(()).unwrap();
            }
            poll
        })
        .await
    });
    shutter.join().unwrap();
    let err = result.unwrap_err();
    assert!(is_shutdown_error(&err), "{err}");
    assert_eq!(rt.quiesce(), Waiters::default());

    // Later registrations fail too.
    let (mut c, _d) = UnixStream::pair().unwrap();
    let err = Registration::with_handle(rt.handle(), &mut c, Interest::READABLE).unwrap_err();
    assert_eq!(err.to_string(), "the runnel runtime has shut down");
}

#[test]
fn blocked_sleeper_is_woken_by_shutdown() {
    let mut rt = BackgroundDriver::start();
    let (pending_tx, pending_rx) = mpsc::channel();
    let handle = rt.handle().clone();
    let shutter = std::thread::spawn(move || {
        pending_rx.recv().unwrap();
        handle.shutdown();
    });
    let woken = rt.block_on(async {
        let mut sleep = runnel_reactor::time::sleep(std::time::Duration::from_secs(3600));
        let mut polls = 0;
        std::future::poll_fn(|cx| {
            polls += 1;
            if polls == 1 {
                assert!(Future::poll(std::pin::Pin::new(&mut sleep), cx).is_pending());
                pending_tx.send(()).unwrap();
                Poll::Pending
            } else {
                Poll::Ready(polls) // woken: by shutdown, since the hour has not passed
            }
        })
        .await
    });
    shutter.join().unwrap();
    assert_eq!(woken, 2);
    assert_eq!(rt.quiesce(), Waiters::default());
}
