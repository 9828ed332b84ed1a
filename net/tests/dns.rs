//! Host names on the reactor alone (no runnel runtime current): lookups run on a thread of
//! their own (see `addr`'s unit tests for which thread), and every socket constructor and
//! `send_to` accepts a name. Only `localhost` and an `.invalid` name (RFC 6761: never
//! resolves) are looked up.

// The reactor's test driver, shared rather than copied.
#[path = "../../reactor/tests/common/mod.rs"]
mod common;

use std::io;

use common::BackgroundDriver;
use runnel_net::{lookup_host, TcpListener, TcpStream, UdpSocket};
use runnel_reactor::Waiters;

#[test]
fn lookup_host_localhost_is_loopback() {
    let rt = BackgroundDriver::start();
    rt.block_on(async {
        let addrs: Vec<_> = lookup_host("localhost:4321").await.unwrap().collect();
        assert!(!addrs.is_empty());
        for addr in addrs {
            assert!(addr.ip().is_loopback(), "{addr}");
            assert_eq!(addr.port(), 4321);
        }
        let addrs: Vec<_> = lookup_host(("localhost", 99)).await.unwrap().collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 99));
    });
}

#[test]
fn an_unresolvable_name_is_an_error() {
    let rt = BackgroundDriver::start();
    rt.block_on(async {
        assert!(lookup_host("no-such-host.invalid:80").await.is_err());
        assert!(TcpStream::connect("no-such-host.invalid:80").await.is_err());
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        assert!(socket
            .send_to(b"x", ("no-such-host.invalid", 80))
            .await
            .is_err());
        // Not even a "host:port" string: std's resolver rejects it, off this thread too.
        let err = lookup_host("no port").await.map(drop).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    });
}

#[test]
fn connect_and_bind_by_name() {
    let mut rt = BackgroundDriver::start();
    rt.block_on(async {
        let listener = TcpListener::bind("localhost:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(addr.ip().is_loopback());
        // `localhost` may also resolve to the other family, where nothing listens on this
        // port: connect tries each address in turn, so it reaches the listener either way.
        let (client, accepted) = futures::join!(
            TcpStream::connect(format!("localhost:{}", addr.port())),
            listener.accept()
        );
        let client = client.unwrap();
        let (_server, peer) = accepted.unwrap();
        assert_eq!(client.peer_addr().unwrap(), addr);
        assert_eq!(peer, client.local_addr().unwrap());
    });
    assert_eq!(rt.quiesce(), Waiters::default());
}

#[test]
fn udp_bind_connect_and_send_to_by_name() {
    let mut rt = BackgroundDriver::start();
    rt.block_on(async {
        // Both bound by name: the resolver's first answer is the same for both, so the
        // sender's family matches the receiver's even where `localhost` is also `::1`.
        let receiver = UdpSocket::bind("localhost:0").await.unwrap();
        let sender = UdpSocket::bind("localhost:0").await.unwrap();
        let to = receiver.local_addr().unwrap();
        assert!(to.ip().is_loopback());
        let mut buf = [0; 16];

        let sent = sender
            .send_to(b"by name", format!("localhost:{}", to.port()))
            .await
            .unwrap();
        assert_eq!(sent, 7);
        let (n, from) = receiver.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"by name");
        assert_eq!(from, sender.local_addr().unwrap());

        sender.connect(("localhost", to.port())).await.unwrap();
        assert_eq!(sender.peer_addr().unwrap(), to);
        sender.send(b"connected").await.unwrap();
        let n = receiver.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"connected");
    });
    assert_eq!(rt.quiesce(), Waiters::default());
}
