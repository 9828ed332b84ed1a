//! I/O readiness scenarios: readiness and its clearing, waiter counts, drop, deregister.

mod common;

use std::io::{self, Read, Write};
use std::task::{Context, Poll};
use std::time::Instant;

use common::{drive_until, BackgroundDriver, CountingWaker};
use mio::net::UnixStream;
use mio::Interest;
use runnel_reactor::{Driver, PollEvented, Ready, Waiters};

fn waiters(io: usize, timers: usize) -> Waiters {
    Waiters { io, timers }
}

#[test]
fn readiness_is_set_by_events_and_cleared_only_on_would_block() {
    let (mut driver, handle) = Driver::new().unwrap();
    let _guard = handle.enter();
    let (a, mut b) = UnixStream::pair().unwrap();
    let a = PollEvented::new(a, Interest::READABLE).unwrap();
    let (counter, waker) = CountingWaker::new();
    let mut cx = Context::from_waker(&waker);

    assert!(a.registration().poll_read_ready(&mut cx).is_pending());
    assert_eq!(handle.waiters(), waiters(1, 0));

    b.write_all(b"hello").unwrap();
    drive_until(&mut driver, || counter.wakes() == 1);
    assert_eq!(handle.waiters(), waiters(0, 0), "released after the wake");

    let Poll::Ready(Ok(event)) = a.registration().poll_read_ready(&mut cx) else {
        panic!("readable after the event");
    };
    assert!(event.ready().is_readable());
    let mut buf = [0; 16];
    assert_eq!((&*a).read(&mut buf).unwrap(), 5);
    // Reading everything does not clear readiness: only WouldBlock does.
    assert!(a.registration().poll_read_ready(&mut cx).is_ready());
    assert_eq!(
        (&*a).read(&mut buf).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    a.registration().clear_readiness(event);
    assert!(a.registration().poll_read_ready(&mut cx).is_pending());
    assert_eq!(handle.waiters(), waiters(1, 0));

    // try_io: not ready → WouldBlock without calling f.
    let err = a
        .registration()
        .try_io(Interest::READABLE, || -> io::Result<()> {
            panic!("f must not run while not ready")
        });
    assert_eq!(err.unwrap_err().kind(), io::ErrorKind::WouldBlock);
}

#[test]
fn try_io_clears_readiness_on_would_block() {
    let (mut driver, handle) = Driver::new().unwrap();
    let _guard = handle.enter();
    let (a, mut b) = UnixStream::pair().unwrap();
    let a = PollEvented::new(a, Interest::READABLE).unwrap();
    let (counter, waker) = CountingWaker::new();
    assert!(a
        .registration()
        .poll_read_ready(&mut Context::from_waker(&waker))
        .is_pending());
    b.write_all(b"x").unwrap();
    drive_until(&mut driver, || counter.wakes() == 1);

    let mut buf = [0; 4];
    let n = a
        .registration()
        .try_io(Interest::READABLE, || (&*a).read(&mut buf));
    assert_eq!(n.unwrap(), 1);
    let again = a
        .registration()
        .try_io(Interest::READABLE, || (&*a).read(&mut buf));
    assert_eq!(again.unwrap_err().kind(), io::ErrorKind::WouldBlock);
    let never = a
        .registration()
        .try_io(Interest::READABLE, || (&*a).read(&mut buf));
    assert_eq!(never.unwrap_err().kind(), io::ErrorKind::WouldBlock);
}

#[test]
fn read_closed_is_reported_and_never_cleared() {
    let (mut driver, handle) = Driver::new().unwrap();
    let _guard = handle.enter();
    let (a, b) = UnixStream::pair().unwrap();
    let a = PollEvented::new(a, Interest::READABLE).unwrap();
    let (counter, waker) = CountingWaker::new();
    let mut cx = Context::from_waker(&waker);
    assert!(a.registration().poll_read_ready(&mut cx).is_pending());
    drop(b);
    drive_until(&mut driver, || counter.wakes() == 1);
    let Poll::Ready(Ok(event)) = a.registration().poll_read_ready(&mut cx) else {
        panic!("ready after peer closed");
    };
    assert!(event.ready().is_read_closed());
    a.registration().clear_readiness(event);
    let Poll::Ready(Ok(event)) = a.registration().poll_read_ready(&mut cx) else {
        panic!("closed stays ready");
    };
    assert!(event.ready().contains(Ready::READ_CLOSED));
}

#[test]
fn waiter_counts_go_up_and_down_exactly() {
    let (mut driver, handle) = Driver::new().unwrap();
    let _guard = handle.enter();
    let (mut a, mut b) = UnixStream::pair().unwrap();
    // Fill the socket buffer so it is not writable, then register for both directions.
    let filler = vec![0u8; 1 << 16];
    while a.write(&filler).is_ok() {}
    let a = PollEvented::new(a, Interest::READABLE | Interest::WRITABLE).unwrap();
    let reg = a.registration();
    let (reader, reader_waker) = CountingWaker::new();
    let (other, other_waker) = CountingWaker::new();
    let (writer, writer_waker) = CountingWaker::new();

    assert_eq!(handle.waiters(), waiters(0, 0));
    assert!(reg
        .poll_read_ready(&mut Context::from_waker(&reader_waker))
        .is_pending());
    assert_eq!(handle.waiters(), waiters(1, 0));
    // Same task again: still one waiter. Another stateless poller takes over the slot:
    // still one (many_waiters.rs), and only it will be woken.
    assert!(reg
        .poll_read_ready(&mut Context::from_waker(&reader_waker))
        .is_pending());
    assert_eq!(handle.waiters(), waiters(1, 0));
    assert!(reg
        .poll_read_ready(&mut Context::from_waker(&other_waker))
        .is_pending());
    assert_eq!(handle.waiters(), waiters(1, 0));
    // A keyed waiter of the first task is a second reader.
    let mut keyed = reg.read_waiter();
    assert!(keyed
        .poll_ready(&mut Context::from_waker(&reader_waker))
        .is_pending());
    assert_eq!(handle.waiters(), waiters(2, 0));
    assert!(reg
        .poll_write_ready(&mut Context::from_waker(&writer_waker))
        .is_pending());
    assert_eq!(handle.waiters(), waiters(3, 0));

    // Make a readable; drain takes both readers' wakers but keeps them counted until release.
    b.write_all(b"ping").unwrap();
    let mut wakers = Vec::new();
    let drained = loop {
        driver
            .park(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let drained = driver.drain(Instant::now(), &mut wakers);
        if !drained.is_empty() {
            break drained;
        }
        handle.release(drained);
    };
    assert_eq!((drained.io(), drained.timers()), (2, 0));
    assert_eq!(handle.waiters(), waiters(3, 0), "not released yet");
    wakers.drain(..).for_each(|w| w.wake());
    assert_eq!((reader.wakes(), other.wakes()), (1, 1));
    assert_eq!(handle.waiters(), waiters(3, 0), "still not released");
    handle.release(drained);
    assert_eq!(handle.waiters(), waiters(1, 0), "writer still waits");
    drop(keyed); // its entry was taken by the drain: nothing to release
    assert_eq!(handle.waiters(), waiters(1, 0));

    // Dropping the registration releases the writer's slot without waking it.
    drop(a);
    assert_eq!(handle.waiters(), waiters(0, 0));
    assert_eq!(writer.wakes(), 0);
}

#[test]
fn deregistered_source_errors_and_releases() {
    let (_driver, handle) = Driver::new().unwrap();
    let _guard = handle.enter();
    let (mut a, _b) = UnixStream::pair().unwrap();
    let mut reg = runnel_reactor::Registration::new(&mut a, Interest::READABLE).unwrap();
    let (_c, waker) = CountingWaker::new();
    let mut cx = Context::from_waker(&waker);
    assert!(reg.poll_read_ready(&mut cx).is_pending());
    assert_eq!(handle.waiters(), waiters(1, 0));
    reg.deregister(&mut a).unwrap();
    assert_eq!(handle.waiters(), waiters(0, 0));
    match reg.poll_read_ready(&mut cx) {
        Poll::Ready(Err(e)) => assert!(e.to_string().contains("deregistered"), "{e}"),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn poll_io_moves_data_both_ways_through_would_block() {
    let mut rt = BackgroundDriver::start();
    let (a, b) = UnixStream::pair().unwrap();
    let total = 4 << 20; // far more than a socket buffer: the writer must wait for the reader
    rt.block_on(async {
        let a = PollEvented::new(a, Interest::WRITABLE).unwrap();
        let b = PollEvented::new(b, Interest::READABLE).unwrap();
        let write = async {
            let chunk = vec![7u8; 64 << 10];
            let mut sent = 0;
            while sent < total {
                let n = std::future::poll_fn(|cx| {
                    a.registration()
                        .poll_write_io(cx, || (&*a).write(&chunk[..chunk.len().min(total - sent)]))
                })
                .await
                .unwrap();
                sent += n;
            }
            drop(a); // EOF for the reader
        };
        let read = async {
            let mut buf = vec![0u8; 64 << 10];
            let mut received = 0;
            loop {
                let n = std::future::poll_fn(|cx| {
                    b.registration().poll_read_io(cx, || (&*b).read(&mut buf))
                })
                .await
                .unwrap();
                if n == 0 {
                    break received;
                }
                assert!(buf[..n].iter().all(|&x| x == 7));
                received += n;
            }
        };
        let ((), received) = futures::join!(write, read);
        assert_eq!(received, total);
    });
    assert_eq!(rt.quiesce(), waiters(0, 0));
}

#[test]
fn tcp_accept_and_connect_readiness() {
    let rt = BackgroundDriver::start();
    rt.block_on(async {
        let listener = mio::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let listener = PollEvented::new(listener, Interest::READABLE).unwrap();
        let stream = mio::net::TcpStream::connect(addr).unwrap();
        let stream = PollEvented::new(stream, Interest::READABLE | Interest::WRITABLE).unwrap();
        let (accepted, _) = std::future::poll_fn(|cx| {
            listener
                .registration()
                .poll_read_io(cx, || listener.accept())
        })
        .await
        .unwrap();
        // Connected once writable (mio's documented way to finish a non-blocking connect).
        std::future::poll_fn(|cx| stream.registration().poll_write_ready(cx))
            .await
            .unwrap();
        assert_eq!(stream.peer_addr().unwrap(), addr);
        assert_eq!(accepted.peer_addr().unwrap(), stream.local_addr().unwrap());
    });
}
