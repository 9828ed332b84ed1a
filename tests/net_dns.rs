//! Name resolution on a runnel runtime: host names go to the blocking pool, IP literals
//! never do, and every socket constructor and `send_to` accepts a name. Only `localhost`
//! and an `.invalid` name (RFC 6761: never resolves) are looked up. Which thread a lookup
//! runs on, and that the worker stays free meanwhile, is tested in `runnel-net`'s unit
//! tests (`addr::tests`), where a fake resolver can hold a lookup in flight.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use runnel::net::{lookup_host, TcpListener, TcpStream, UdpSocket};
use runnel::Runtime;

/// Blocking-pool threads live for an hour, so `blocking_threads` counts every thread the
/// test ever started.
fn runtime() -> Runtime {
    runnel::Builder::new()
        .worker_threads(2)
        .thread_keep_alive(Duration::from_secs(3600))
        .build()
        .unwrap()
}

#[test]
fn lookup_host_localhost_is_loopback_and_uses_the_blocking_pool() {
    let rt = runtime();
    assert_eq!(rt.metrics().blocking_threads, 0);
    let addrs: Vec<SocketAddr> = rt
        .block_on(async { lookup_host("localhost:4321").await })
        .unwrap()
        .collect();
    assert!(!addrs.is_empty());
    for addr in &addrs {
        assert!(addr.ip().is_loopback(), "{addr}");
        assert_eq!(addr.port(), 4321);
    }
    assert_eq!(rt.metrics().blocking_threads, 1);
}

#[test]
fn ip_literals_do_not_touch_the_blocking_pool() {
    let rt = runtime();
    rt.block_on(async {
        let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, 53));
        for addrs in [
            lookup_host("127.0.0.1:53")
                .await
                .unwrap()
                .collect::<Vec<_>>(),
            lookup_host(("127.0.0.1", 53)).await.unwrap().collect(),
            lookup_host((Ipv4Addr::LOCALHOST, 53))
                .await
                .unwrap()
                .collect(),
            lookup_host(v4).await.unwrap().collect(),
            lookup_host(&[v4][..]).await.unwrap().collect(),
        ] {
            assert_eq!(addrs, [v4]);
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = futures::join!(
            TcpStream::connect(("127.0.0.1", addr.port())),
            listener.accept()
        );
        client.unwrap();
        accepted.unwrap();

        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let to = b.local_addr().unwrap();
        a.send_to(b"x", format!("127.0.0.1:{}", to.port()))
            .await
            .unwrap();
        a.send_to(b"y", to).await.unwrap();
        a.connect(to).await.unwrap();
        let mut buf = [0; 1];
        b.recv_from(&mut buf).await.unwrap();
        b.recv_from(&mut buf).await.unwrap();
    });
    assert_eq!(rt.metrics().blocking_threads, 0);
}

#[test]
fn an_unresolvable_name_is_an_error() {
    let rt = runtime();
    rt.block_on(async {
        let host = "no-such-host.invalid:80";
        assert!(lookup_host(host).await.is_err());
        assert!(TcpStream::connect(host).await.is_err());
        assert!(TcpListener::bind(host).await.is_err());
        assert!(UdpSocket::bind(host).await.is_err());
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        assert!(socket.send_to(b"x", host).await.is_err());
        assert!(socket.connect(host).await.is_err());
    });
}

#[test]
fn tcp_connect_by_name() {
    let rt = runtime();
    rt.block_on(async {
        let listener = TcpListener::bind("localhost:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // `localhost` may also resolve to the other family, where nothing listens on this
        // port: connect tries each address in turn.
        let server = runnel::spawn(async move { listener.accept().await.map(|(_, peer)| peer) });
        let client = TcpStream::connect(format!("localhost:{}", addr.port()))
            .await
            .unwrap();
        assert_eq!(client.peer_addr().unwrap(), addr);
        assert_eq!(server.await.unwrap().unwrap(), client.local_addr().unwrap());
    });
}

#[test]
fn udp_send_to_by_name() {
    let rt = runtime();
    rt.block_on(async {
        // Both bound by name: the resolver's first answer is the same for both, so the
        // families match even where `localhost` is also `::1`.
        let receiver = UdpSocket::bind("localhost:0").await.unwrap();
        let sender = UdpSocket::bind("localhost:0").await.unwrap();
        let port = receiver.local_addr().unwrap().port();
        for i in 0..3u8 {
            // Each call resolves the name again (tokio does the same).
            sender.send_to(&[i], ("localhost", port)).await.unwrap();
            let mut buf = [0; 1];
            let (n, from) = receiver.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], [i]);
            assert_eq!(from, sender.local_addr().unwrap());
        }
    });
}
