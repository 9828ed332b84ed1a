//! Many tasks waiting in one direction of one source: every one is woken, and the io waiter
//! count is one per stored waker — up when stored, down when withdrawn, dropped with the
//! registration, or released after a drain. Deterministic: the driver runs on the test
//! thread, so every count is read with nothing in flight.

mod common;

use std::future::{poll_fn, Future};
use std::io::{self, Read, Write};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use common::{BackgroundDriver, CountingWaker};
use mio::net::{UnixDatagram, UnixStream};
use mio::Interest;
use runnel_reactor::{Drained, Driver, Handle, PollEvented, Registration, Waiters};

fn io_waiters(handle: &Handle) -> usize {
    let Waiters { io, timers } = handle.waiters();
    assert_eq!(timers, 0);
    io
}

/// Parks until a drain takes something out; returns it with the wakers, not yet woken or
/// released.
fn drain_next(driver: &mut Driver) -> (Drained, Vec<Waker>) {
    let give_up = Instant::now() + Duration::from_secs(10);
    let mut wakers = Vec::new();
    loop {
        assert!(Instant::now() < give_up, "no waker drained in 10 s");
        driver.park(Some(Duration::from_millis(100))).unwrap();
        let drained = driver.drain(Instant::now(), &mut wakers);
        if !drained.is_empty() {
            return (drained, wakers);
        }
        driver.handle().release(drained);
    }
}

/// Drains whatever the driver holds right now (no waiting), waking and releasing it;
/// returns what it took.
fn drain_now(driver: &mut Driver) -> (usize, usize) {
    driver.park(Some(Duration::ZERO)).unwrap();
    let mut wakers = Vec::new();
    let drained = driver.drain(Instant::now(), &mut wakers);
    let taken = counts(&drained);
    wakers.into_iter().for_each(Waker::wake);
    driver.handle().release(drained);
    taken
}

/// (io, timers) of a `Drained`, which is not `Clone`: it must be released exactly once.
fn counts(drained: &Drained) -> (usize, usize) {
    (drained.io(), drained.timers())
}

fn cx(waker: &Waker) -> Context<'_> {
    Context::from_waker(waker)
}

#[test]
fn a_second_stateless_poller_replaces_the_first_and_is_counted_until_release() {
    let (mut driver, handle) = Driver::new().unwrap();
    let _guard = handle.enter();
    let (a, mut b) = UnixStream::pair().unwrap();
    let a = PollEvented::new(a, Interest::READABLE).unwrap();
    let reg = a.registration();
    let (first, first_waker) = CountingWaker::new();
    let (second, second_waker) = CountingWaker::new();

    assert!(reg.poll_read_ready(&mut cx(&first_waker)).is_pending());
    assert_eq!(io_waiters(&handle), 1);
    // The same task again: `will_wake` finds its entry, nothing changes.
    assert!(reg.poll_read_ready(&mut cx(&first_waker)).is_pending());
    assert!(reg
        .poll_read_ready(&mut cx(&first_waker.clone()))
        .is_pending());
    assert_eq!(io_waiters(&handle), 1);
    // Another task: it takes the direction's one anonymous slot (tokio's rule).
    assert!(reg.poll_read_ready(&mut cx(&second_waker)).is_pending());
    assert_eq!(io_waiters(&handle), 1);

    b.write_all(b"x").unwrap();
    let (drained, wakers) = drain_next(&mut driver);
    assert_eq!(counts(&drained), (1, 0), "Drained counts every waker taken");
    assert_eq!(io_waiters(&handle), 1, "drained, not released yet");
    wakers.into_iter().for_each(Waker::wake);
    assert_eq!(
        (first.wakes(), second.wakes()),
        (0, 1),
        "the last poller is woken"
    );
    assert_eq!(io_waiters(&handle), 1, "woken, not released yet");
    handle.release(drained);
    assert_eq!(io_waiters(&handle), 0);
}

/// Regression: a stateless poller with a fresh waker on every poll (or ten thousand
/// pollers that went away) used to add an entry each time, a `will_wake` scan per poll over
/// a list that only grew, and an io count the deadlock detector could not trust. The
/// direction keeps one anonymous entry, counted once, holding the last waker.
#[test]
fn fresh_wakers_on_an_idle_socket_leave_one_anonymous_waiter() {
    const POLLS: usize = 10_000;
    let (mut driver, handle) = Driver::new().unwrap();
    let _guard = handle.enter();
    let (a, mut b) = UnixStream::pair().unwrap();
    let a = PollEvented::new(a, Interest::READABLE).unwrap();
    let reg = a.registration();
    let mut replaced = Vec::new();
    for _ in 0..POLLS - 1 {
        let (count, waker) = CountingWaker::new();
        assert!(reg.poll_read_ready(&mut cx(&waker)).is_pending());
        replaced.push(count);
    }
    let (last, last_waker) = CountingWaker::new();
    assert!(reg.poll_read_ready(&mut cx(&last_waker)).is_pending());
    drop(last_waker);
    assert_eq!(io_waiters(&handle), 1);
    assert!(
        replaced
            .iter()
            .all(|count| std::sync::Arc::strong_count(count) == 1),
        "a replaced waker is dropped, not kept"
    );

    b.write_all(b"x").unwrap();
    let (drained, wakers) = drain_next(&mut driver);
    assert_eq!(counts(&drained), (1, 0), "one entry to take");
    wakers.into_iter().for_each(Waker::wake);
    handle.release(drained);
    assert_eq!(last.wakes(), 1, "the last registered waker is woken");
    assert!(replaced.iter().all(|count| count.wakes() == 0));
    assert_eq!(io_waiters(&handle), 0);
}

#[test]
fn io_waiters_count_one_each_update_in_place_and_withdraw_on_drop() {
    let (mut driver, handle) = Driver::new().unwrap();
    let _guard = handle.enter();
    let (a, mut b) = UnixStream::pair().unwrap();
    let a = PollEvented::new(a, Interest::READABLE).unwrap();
    let reg = a.registration();
    let (first, first_waker) = CountingWaker::new();
    let (second, second_waker) = CountingWaker::new();
    let (moved, moved_waker) = CountingWaker::new();

    let mut one = reg.read_waiter();
    let mut two = reg.read_waiter();
    assert!(one.poll_ready(&mut cx(&first_waker)).is_pending());
    assert!(two.poll_ready(&mut cx(&second_waker)).is_pending());
    assert_eq!(io_waiters(&handle), 2);
    assert!(one.poll_ready(&mut cx(&first_waker)).is_pending());
    // The future moved to another task: its entry now wakes that task, still one entry.
    assert!(one.poll_ready(&mut cx(&moved_waker)).is_pending());
    assert_eq!(io_waiters(&handle), 2);

    drop(two);
    assert_eq!(
        io_waiters(&handle),
        1,
        "a dropped waiter takes its count at once"
    );

    b.write_all(b"x").unwrap();
    let (drained, wakers) = drain_next(&mut driver);
    assert_eq!(counts(&drained), (1, 0));
    wakers.into_iter().for_each(Waker::wake);
    assert_eq!((first.wakes(), second.wakes(), moved.wakes()), (0, 0, 1));
    handle.release(drained);
    assert_eq!(io_waiters(&handle), 0);

    // Woken, it finds readiness; its entry is gone already, so dropping it changes nothing
    // (an underflow would trip the counts' debug assertion).
    assert!(one.poll_ready(&mut cx(&moved_waker)).is_ready());
    drop(one);
    assert_eq!(io_waiters(&handle), 0);
}

#[test]
fn dropped_stateless_waiter_counts_until_the_next_event_for_its_direction() {
    let (mut driver, handle) = Driver::new().unwrap();
    let _guard = handle.enter();
    let (a, mut b) = UnixStream::pair().unwrap();
    let a = PollEvented::new(a, Interest::READABLE | Interest::WRITABLE).unwrap();
    let (stale, stale_waker) = CountingWaker::new();
    {
        let mut read = pin!(poll_fn(|cx| a.registration().poll_read_ready(cx)));
        assert!(read.as_mut().poll(&mut cx(&stale_waker)).is_pending());
    } // dropped: the reactor cannot see it go
    assert_eq!(io_waiters(&handle), 1, "stale entry still counted");

    // The registration's first event is "writable": it takes the writer, not the stale
    // reader.
    let (writer, writer_waker) = CountingWaker::new();
    let mut write = a.registration().write_waiter();
    assert!(write.poll_ready(&mut cx(&writer_waker)).is_pending());
    assert_eq!(io_waiters(&handle), 2);
    let (drained, wakers) = drain_next(&mut driver);
    assert_eq!(counts(&drained), (1, 0), "the writer only");
    wakers.into_iter().for_each(Waker::wake);
    handle.release(drained);
    assert_eq!((writer.wakes(), stale.wakes()), (1, 0));
    assert_eq!(
        io_waiters(&handle),
        1,
        "a write event leaves the read entry"
    );
    assert!(write.poll_ready(&mut cx(&writer_waker)).is_ready());
    drop(write);
    assert_eq!(drain_now(&mut driver), (0, 0), "nothing else happened");
    assert_eq!(io_waiters(&handle), 1, "nor does time");

    // The next read event takes it: counted in that drain, gone at its release.
    b.write_all(b"x").unwrap();
    let (drained, wakers) = drain_next(&mut driver);
    assert_eq!(counts(&drained), (1, 0));
    assert_eq!(io_waiters(&handle), 1);
    wakers.into_iter().for_each(Waker::wake);
    handle.release(drained);
    assert_eq!(io_waiters(&handle), 0);
    assert_eq!(stale.wakes(), 1, "a spurious wake, harmless");
}

#[test]
fn dropped_stateless_waiter_is_released_by_deregistration() {
    let (_driver, handle) = Driver::new().unwrap();
    let _guard = handle.enter();
    let (mut a, _b) = UnixStream::pair().unwrap();
    let mut reg = Registration::new(&mut a, Interest::READABLE).unwrap();
    let (stale, stale_waker) = CountingWaker::new();
    let (_other, other_waker) = CountingWaker::new();
    {
        let mut read = pin!(poll_fn(|cx| reg.poll_read_ready(cx)));
        assert!(read.as_mut().poll(&mut cx(&stale_waker)).is_pending());
        assert!(read.as_mut().poll(&mut cx(&other_waker)).is_pending());
    }
    assert_eq!(
        io_waiters(&handle),
        1,
        "one anonymous slot, the last waker in it"
    );
    reg.deregister(&mut a).unwrap();
    assert_eq!(
        io_waiters(&handle),
        0,
        "deregistration drops the stale entries"
    );
    assert_eq!(stale.wakes(), 0);
}

#[test]
fn dropped_async_wait_releases_at_once() {
    let (_driver, handle) = Driver::new().unwrap();
    let _guard = handle.enter();
    let (a, _b) = UnixStream::pair().unwrap();
    let a = PollEvented::new(a, Interest::READABLE | Interest::WRITABLE).unwrap();
    let reg = a.registration();
    let (_c, waker) = CountingWaker::new();
    let mut buf = [0; 8];
    {
        let mut read = pin!(reg.read_io(|| (&*a).read(&mut buf)));
        let mut readable = pin!(reg.readable());
        assert!(read.as_mut().poll(&mut cx(&waker)).is_pending());
        assert!(readable.as_mut().poll(&mut cx(&waker)).is_pending());
        assert_eq!(
            io_waiters(&handle),
            2,
            "one entry per future, same task or not"
        );
        // A lost `select!`: one branch is dropped, the other still waits.
    }
    assert_eq!(io_waiters(&handle), 0);
}

#[test]
fn a_woken_waiter_that_finds_the_readiness_consumed_waits_again() {
    let (mut driver, handle) = Driver::new().unwrap();
    let _guard = handle.enter();
    let (a, mut b) = UnixStream::pair().unwrap();
    let a = PollEvented::new(a, Interest::READABLE).unwrap();
    let reg = a.registration();
    let (_w1, waker1) = CountingWaker::new();
    let (w2, waker2) = CountingWaker::new();
    let mut buf = [0; 8];
    let mut one = reg.read_waiter();
    let mut two = reg.read_waiter();
    let read = || (&*a).read(&mut [0; 8]);
    assert!(one.poll_io(&mut cx(&waker1), read).is_pending());
    assert!(two.poll_io(&mut cx(&waker2), read).is_pending());

    b.write_all(b"x").unwrap();
    let (drained, wakers) = drain_next(&mut driver);
    assert_eq!(counts(&drained), (2, 0));
    wakers.into_iter().for_each(Waker::wake);
    handle.release(drained);
    assert_eq!(w2.wakes(), 1);

    // Both woken; the first takes the byte, the second finds WouldBlock and waits again.
    let Poll::Ready(Ok(1)) = one.poll_io(&mut cx(&waker1), || (&*a).read(&mut buf)) else {
        panic!("the first waiter reads the byte");
    };
    assert!(two.poll_io(&mut cx(&waker2), read).is_pending());
    assert_eq!(io_waiters(&handle), 1);
    drop(one);
    assert_eq!(io_waiters(&handle), 1);

    b.write_all(b"y").unwrap();
    let (drained, wakers) = drain_next(&mut driver);
    assert_eq!(counts(&drained), (1, 0));
    wakers.into_iter().for_each(Waker::wake);
    handle.release(drained);
    assert_eq!(w2.wakes(), 2);
    let Poll::Ready(Ok(1)) = two.poll_io(&mut cx(&waker2), || (&*a).read(&mut buf)) else {
        panic!("the second waiter reads the second byte");
    };
    drop(two);
    assert_eq!(io_waiters(&handle), 0);
}

#[test]
fn shutdown_wakes_every_waiter_of_every_kind() {
    let (_driver, handle) = Driver::new().unwrap();
    let _guard = handle.enter();
    let (a, _b) = UnixStream::pair().unwrap();
    let a = PollEvented::new(a, Interest::READABLE).unwrap();
    let reg = a.registration();
    let wakers: Vec<_> = (0..3).map(|_| CountingWaker::new()).collect();
    assert!(reg.poll_read_ready(&mut cx(&wakers[0].1)).is_pending());
    // Replaces the first in the anonymous slot (dropped unwoken).
    assert!(reg.poll_read_ready(&mut cx(&wakers[1].1)).is_pending());
    let mut keyed = reg.read_waiter();
    assert!(keyed.poll_ready(&mut cx(&wakers[2].1)).is_pending());
    assert_eq!(io_waiters(&handle), 2);

    handle.shutdown();
    let wakes: Vec<_> = wakers.iter().map(|(count, _)| count.wakes()).collect();
    assert_eq!(wakes, [0, 1, 1]);
    assert_eq!(io_waiters(&handle), 0);
    match keyed.poll_ready(&mut cx(&wakers[2].1)) {
        Poll::Ready(Err(e)) => assert!(runnel_reactor::is_shutdown_error(&e), "{e}"),
        other => panic!("expected the shutdown error, got {other:?}"),
    }
    drop(keyed);
    assert_eq!(io_waiters(&handle), 0);
}

/// Threads (standing in for tasks on workers) each wait for one datagram on one shared
/// socket; every datagram reaches exactly one of them, and the counts settle to zero.
#[test]
fn many_threads_receive_on_one_datagram_socket() {
    const RECEIVERS: usize = 8;
    let mut rt = BackgroundDriver::start();
    let handle = rt.handle().clone();
    let (a, b) = UnixDatagram::pair().unwrap();
    let a = {
        let _guard = handle.enter();
        std::sync::Arc::new(PollEvented::new(a, Interest::READABLE).unwrap())
    };
    let receivers: Vec<_> = (0..RECEIVERS)
        .map(|_| {
            let a = a.clone();
            std::thread::spawn(move || {
                futures::executor::block_on(async {
                    let mut buf = [0; 8];
                    let n = a.registration().read_io(|| a.recv(&mut buf)).await?;
                    Ok::<_, io::Error>(buf[0..n].to_vec())
                })
            })
        })
        .collect();
    // Everyone is waiting (count = stored wakers) before the first datagram goes out.
    let give_up = Instant::now() + Duration::from_secs(10);
    while io_waiters(&handle) < RECEIVERS {
        assert!(Instant::now() < give_up, "receivers never all waited");
        std::thread::sleep(Duration::from_millis(1));
    }
    for i in 0..RECEIVERS {
        b.send(&[i as u8]).unwrap();
    }
    let mut got: Vec<u8> = receivers
        .into_iter()
        .map(|r| r.join().unwrap().unwrap()[0])
        .collect();
    got.sort_unstable();
    assert_eq!(got, (0..RECEIVERS as u8).collect::<Vec<_>>());
    assert_eq!(rt.quiesce(), Waiters::default());
}

/// Figures, not a check: the cost of stateless `poll_read_ready` calls on an idle socket,
/// each with a waker of a different task (a waker nobody deduplicates), and all with the
/// same waker (the common case, a task re-polling its own read). Run with
/// `cargo test --release -p runnel-reactor --test many_waiters -- --ignored --nocapture`.
#[test]
#[ignore = "prints figures; run by hand in release"]
fn measure_stateless_polls_on_an_idle_socket() {
    const POLLS: usize = 10_000;
    let (_driver, handle) = Driver::new().unwrap();
    let _guard = handle.enter();
    let (a, _b) = UnixStream::pair().unwrap();
    let a = PollEvented::new(a, Interest::READABLE).unwrap();
    let reg = a.registration();
    // Made before the clock starts: only the polls are timed.
    let fresh: Vec<Waker> = (0..POLLS).map(|_| CountingWaker::new().1).collect();
    let start = Instant::now();
    for waker in &fresh {
        assert!(reg.poll_read_ready(&mut cx(waker)).is_pending());
    }
    let fresh_time = start.elapsed();
    let fresh_waiters = io_waiters(&handle);
    drop(a);
    drop(fresh);

    let (a, _b) = UnixStream::pair().unwrap();
    let a = PollEvented::new(a, Interest::READABLE).unwrap();
    let (_count, waker) = CountingWaker::new();
    let start = Instant::now();
    for _ in 0..POLLS {
        assert!(a
            .registration()
            .poll_read_ready(&mut cx(&waker))
            .is_pending());
    }
    let same_time = start.elapsed();
    println!(
        "{POLLS} polls, fresh wakers: {fresh_time:?} ({:.1} ns/poll), io waiters after: \
         {fresh_waiters}; same waker: {same_time:?} ({:.1} ns/poll), io waiters after: {}",
        fresh_time.as_nanos() as f64 / POLLS as f64,
        same_time.as_nanos() as f64 / POLLS as f64,
        io_waiters(&handle),
    );
}
