//! UDP scenarios on the reactor.

// The reactor's test driver, shared rather than copied.
#[path = "../../reactor/tests/common/mod.rs"]
mod common;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::BackgroundDriver;
use runnel_net::UdpSocket;
use runnel_reactor::Waiters;

#[test]
fn send_to_and_recv_from() {
    let mut rt = BackgroundDriver::start();
    rt.block_on(async {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b_addr = b.local_addr().unwrap();
        let mut buf = [0; 64];
        // b waits first, then a sends: the wake path, not just the ready path.
        let (sent, received) = futures::join!(
            async { a.send_to(b"datagram", b_addr).await.unwrap() },
            b.recv_from(&mut buf)
        );
        assert_eq!(sent, 8);
        let (n, from) = received.unwrap();
        assert_eq!(&buf[..n], b"datagram");
        assert_eq!(from, a.local_addr().unwrap());
    });
    assert_eq!(rt.quiesce(), Waiters::default());
}

#[test]
fn connect_send_recv_and_peek() {
    let rt = BackgroundDriver::start();
    rt.block_on(async {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        a.connect(b.local_addr().unwrap()).await.unwrap();
        b.connect(a.local_addr().unwrap()).await.unwrap();
        assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
        a.send(b"one").await.unwrap();
        let mut buf = [0; 8];
        let (n, from) = b.peek_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..n], from), (&b"one"[..], a.local_addr().unwrap()));
        let n = b.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"one", "peek left the datagram queued");
        assert_eq!(
            b.try_recv_from(&mut buf).unwrap_err().kind(),
            std::io::ErrorKind::WouldBlock
        );
    });
}

#[test]
fn options_and_multicast() {
    let rt = BackgroundDriver::start();
    rt.block_on(async {
        let socket = UdpSocket::bind("0.0.0.0:0").await.unwrap();
        socket.set_broadcast(true).unwrap();
        assert!(socket.broadcast().unwrap());
        socket.set_ttl(7).unwrap();
        assert_eq!(socket.ttl().unwrap(), 7);
        socket.set_multicast_loop_v4(false).unwrap();
        assert!(!socket.multicast_loop_v4().unwrap());
        socket.set_multicast_ttl_v4(2).unwrap();
        let group = Ipv4Addr::new(239, 255, 77, 1);
        // Join on loopback, which exists even in a container without a default route.
        match socket.join_multicast_v4(group, Ipv4Addr::LOCALHOST) {
            Ok(()) => socket
                .leave_multicast_v4(group, Ipv4Addr::LOCALHOST)
                .unwrap(),
            Err(e) => eprintln!("no IPv4 multicast here ({e}); skipping join/leave"),
        }
        if let Ok(v6) = UdpSocket::bind("[::1]:0").await {
            v6.set_multicast_loop_v6(true).unwrap();
            let group: Ipv6Addr = "ff02::1:3".parse().unwrap();
            if v6.join_multicast_v6(&group, 0).is_ok() {
                v6.leave_multicast_v6(&group, 0).unwrap();
            }
        }
    });
}

#[test]
fn from_std_and_into_std() {
    let rt = BackgroundDriver::start();
    rt.block_on(async {
        let std_socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = std_socket.local_addr().unwrap();
        let socket = UdpSocket::from_std(std_socket).unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sender.send_to(b"hi", addr).unwrap();
        let mut buf = [0; 2];
        assert_eq!(socket.recv_from(&mut buf).await.unwrap().0, 2);
        assert_eq!(socket.into_std().unwrap().local_addr().unwrap(), addr);
    });
}

#[test]
fn two_tasks_recv_from_one_socket_both_get_a_datagram() {
    let mut rt = BackgroundDriver::start();
    let (socket, sender) = rt.block_on(async {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        (
            Arc::new(socket),
            UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        )
    });
    let addr = socket.local_addr().unwrap();
    let receivers: Vec<_> = (0..2)
        .map(|_| {
            let socket = socket.clone();
            rt.spawn(async move {
                let mut buf = [0; 16];
                let (n, _) = socket.recv_from(&mut buf).await.unwrap();
                buf[..n].to_vec()
            })
        })
        .collect();
    // Both wait (one waker each) before the first datagram goes out.
    let give_up = Instant::now() + Duration::from_secs(10);
    while rt.handle().waiters().io != 2 {
        assert!(Instant::now() < give_up, "{:?}", rt.handle().waiters());
        std::thread::sleep(Duration::from_millis(1));
    }
    rt.block_on(async {
        sender.send_to(b"one", addr).await.unwrap();
        sender.send_to(b"two", addr).await.unwrap();
    });
    let mut got: Vec<_> = receivers.into_iter().map(|r| r.join().unwrap()).collect();
    got.sort();
    assert_eq!(got, [b"one".to_vec(), b"two".to_vec()]);
    assert_eq!(rt.quiesce(), Waiters::default());
}

#[test]
fn a_dropped_recv_withdraws_its_waiter_at_once() {
    let mut rt = BackgroundDriver::start();
    let socket = rt.block_on(async {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (mut buf, mut other) = ([0; 16], [0; 16]);
        {
            let mut first = std::pin::pin!(socket.recv_from(&mut other));
            let mut second = std::pin::pin!(socket.recv(&mut buf));
            assert!(futures::poll!(first.as_mut()).is_pending());
            assert!(futures::poll!(second.as_mut()).is_pending());
        } // lost a `select!`, or timed out
        socket
    });
    assert_eq!(
        rt.quiesce(),
        Waiters::default(),
        "with the socket still open"
    );
    drop(socket);
}
