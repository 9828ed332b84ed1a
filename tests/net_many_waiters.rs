//! Many tasks waiting on one socket, on the full runtime: two `recv_from`s on one
//! `Arc<UdpSocket>`, two `accept`s on one `Arc<TcpListener>`, `readable()` in two tasks —
//! each is woken, none hangs. And a wait that lost a `timeout` does not keep the deadlock
//! detector from reporting: its waker left the reactor with its future.

mod support;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use runnel::net::{TcpListener, TcpStream, UdpSocket};
use runnel::time::{sleep, timeout};
use runnel::DEADLOCK_MESSAGE;
use support::{panic_message, runtime, PATIENCE};

/// Waits (in the runtime) until exactly `n` wakers wait on I/O, so the test exercises
/// several tasks stored in one direction, not one task after another.
async fn io_waiters_reach(n: usize) {
    let reactor = runnel_reactor::Handle::current();
    let deadline = Instant::now() + PATIENCE;
    while reactor.waiters().io != n {
        assert!(
            Instant::now() < deadline,
            "io waiters stayed {:?}, expected {n}",
            reactor.waiters()
        );
        sleep(Duration::from_millis(1)).await;
    }
}

#[runnel::test]
async fn two_tasks_recv_from_one_udp_socket_both_get_a_datagram() {
    let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = socket.local_addr().unwrap();
    let receivers: Vec<_> = (0..2)
        .map(|_| {
            let socket = socket.clone();
            runnel::spawn(async move {
                let mut buf = [0; 16];
                let (n, _) = socket.recv_from(&mut buf).await.unwrap();
                buf[..n].to_vec()
            })
        })
        .collect();
    io_waiters_reach(2).await;
    let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sender.send_to(b"one", addr).await.unwrap();
    sender.send_to(b"two", addr).await.unwrap();
    let mut got = Vec::new();
    for r in receivers {
        got.push(r.await.unwrap());
    }
    got.sort();
    assert_eq!(got, [b"one".to_vec(), b"two".to_vec()]);
}

#[test]
fn two_tasks_accept_on_one_listener_both_get_a_connection() {
    let rt = runtime(2);
    rt.block_on(async {
        let listener = Arc::new(TcpListener::bind("127.0.0.1:0").await.unwrap());
        let addr = listener.local_addr().unwrap();
        let acceptors: Vec<_> = (0..2)
            .map(|_| {
                let listener = listener.clone();
                runnel::spawn(async move { listener.accept().await.unwrap().1 })
            })
            .collect();
        io_waiters_reach(2).await;
        let a = TcpStream::connect(addr).await.unwrap();
        let b = TcpStream::connect(addr).await.unwrap();
        let mut peers = Vec::new();
        for acceptor in acceptors {
            peers.push(acceptor.await.unwrap());
        }
        peers.sort_unstable();
        let mut expected = [a.local_addr().unwrap(), b.local_addr().unwrap()];
        expected.sort_unstable();
        assert_eq!(peers, expected, "each connection accepted once");
    });
}

#[test]
fn two_tasks_await_readable_on_one_stream() {
    let rt = runtime(2);
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let server = Arc::new(listener.accept().await.unwrap().0);
        let waiting: Vec<_> = (0..2)
            .map(|_| {
                let server = server.clone();
                runnel::spawn(async move { server.readable().await.unwrap() })
            })
            .collect();
        io_waiters_reach(2).await;
        client.write_all(b"x").await.unwrap();
        for w in waiting {
            w.await.unwrap();
        }
    });
}

/// Many receivers, most of their waits cancelled by short timeouts, on one socket: every
/// datagram is received exactly once and nothing stays waiting at the end.
#[test]
fn many_receivers_with_timeouts_share_one_socket() {
    const RECEIVERS: usize = 16;
    const TOTAL: u32 = 800;
    let rt = runtime(2);
    rt.block_on(async {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = socket.local_addr().unwrap();
        let received = Arc::new(AtomicU32::new(0));
        let receivers: Vec<_> = (0..RECEIVERS)
            .map(|r| {
                let (socket, received) = (socket.clone(), received.clone());
                runnel::spawn(async move {
                    let mut got = Vec::new();
                    let mut buf = [0; 8];
                    let limit = Duration::from_micros(200 + 150 * r as u64);
                    while received.load(SeqCst) < TOTAL {
                        if let Ok(n) = timeout(limit, socket.recv(&mut buf)).await {
                            let n = n.unwrap();
                            got.push(u32::from_le_bytes(buf[..n].try_into().unwrap()));
                            received.fetch_add(1, SeqCst);
                        }
                    }
                    got
                })
            })
            .collect();
        // In batches, each received before the next is sent: the socket's receive buffer
        // never overflows (a dropped datagram would fail the test, not hang it).
        let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for i in 0..TOTAL {
            sender.send_to(&i.to_le_bytes(), addr).await.unwrap();
            if i % RECEIVERS as u32 == RECEIVERS as u32 - 1 || i == TOTAL - 1 {
                let deadline = Instant::now() + PATIENCE;
                while received.load(SeqCst) <= i {
                    assert!(Instant::now() < deadline, "datagram {i} never received");
                    sleep(Duration::from_millis(1)).await;
                }
            }
        }
        let mut all = Vec::new();
        for r in receivers {
            all.extend(r.await.unwrap());
        }
        all.sort_unstable();
        assert_eq!(all, (0..TOTAL).collect::<Vec<_>>());
        io_waiters_reach(0).await;
    });
}

/// A `recv` that lost its `timeout` leaves no waker behind, so when the task then waits on
/// nothing, the detector reports instead of the runtime hanging (the socket is still open).
#[test]
fn a_timed_out_recv_does_not_keep_the_deadlock_detector_quiet() {
    // On its own thread: if the report never came, the test fails instead of hanging.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = runtime(2);
        let result = catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(async {
                let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                let mut buf = [0; 8];
                let waited = timeout(Duration::from_millis(20), socket.recv(&mut buf)).await;
                assert!(waited.is_err(), "nobody sends");
                std::future::pending::<()>().await;
                drop(socket);
            })
        }));
        let _ = tx.send(result.map_err(|payload| panic_message(&*payload)));
    });
    let result = rx
        .recv_timeout(PATIENCE)
        .expect("no deadlock report: a cancelled recv kept an io waiter counted");
    let report = result.expect_err("block_on must panic with the deadlock report");
    assert!(report.starts_with(DEADLOCK_MESSAGE), "{report}");
}
