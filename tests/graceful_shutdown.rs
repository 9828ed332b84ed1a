//! The graceful-shutdown example's server (`examples/graceful_shutdown/server.rs`, the same
//! file): connections in flight at the signal are still served and complete, new ones are
//! refused, and a connection still open at the drain deadline is aborted.

mod support;

#[path = "../examples/graceful_shutdown/server.rs"]
mod server;

use std::io::ErrorKind;
use std::time::Duration;

use futures::channel::oneshot;
use runnel::net::{TcpListener, TcpStream};
use server::Report;
use support::{runtime, wait_until};

async fn echo_once(client: &mut TcpStream, msg: &[u8]) {
    client.write_all(msg).await.unwrap();
    let mut buf = vec![0u8; msg.len()];
    client.read_exact(&mut buf).await.unwrap();
    assert_eq!(buf, msg);
}

/// Blocks (on the blocking pool) until connecting to `addr` is refused.
async fn until_refused(addr: std::net::SocketAddr) {
    runnel::spawn_blocking(move || {
        wait_until("new connections are refused", || {
            matches!(
                std::net::TcpStream::connect(addr),
                Err(e) if e.kind() == ErrorKind::ConnectionRefused
            )
        })
    })
    .await
    .unwrap();
}

#[test]
fn in_flight_connections_complete_and_new_ones_are_refused() {
    let rt = runtime(2);
    let report = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stop_rx) = oneshot::channel::<()>();
        // A long deadline: this test must end by the clients closing, not by the deadline.
        let server = runnel::spawn(server::serve(listener, stop_rx, Duration::from_secs(60)));
        let mut a = TcpStream::connect(addr).await.unwrap();
        let mut b = TcpStream::connect(addr).await.unwrap();
        echo_once(&mut a, b"a1").await;
        echo_once(&mut b, b"b1").await;

        stop.send(()).unwrap();
        until_refused(addr).await;

        // Both connections are still served after the listener closed...
        echo_once(&mut a, b"a2").await;
        echo_once(&mut b, b"b2").await;
        drop(a);
        echo_once(&mut b, b"b3").await;
        assert!(
            !server.is_finished(),
            "the drain waits for the last connection"
        );
        drop(b);
        // ...and the server returns once they have closed.
        server.await.unwrap().unwrap()
    });
    assert_eq!(
        report,
        Report {
            accepted: 2,
            completed: 2,
            aborted: 0
        }
    );
}

#[test]
fn a_connection_open_at_the_drain_deadline_is_aborted() {
    let rt = runtime(2);
    let (report, after) = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stop_rx) = oneshot::channel::<()>();
        let server = runnel::spawn(server::serve(listener, stop_rx, Duration::from_millis(50)));
        let mut idle = TcpStream::connect(addr).await.unwrap();
        echo_once(&mut idle, b"hi").await;
        stop.send(()).unwrap();
        // The client never closes: only the deadline ends the drain.
        let report = server.await.unwrap().unwrap();
        // The aborted connection task dropped its socket: the client sees the end.
        let mut buf = [0u8; 1];
        let after = idle.read(&mut buf).await;
        (report, after)
    });
    assert_eq!(
        report,
        Report {
            accepted: 1,
            completed: 0,
            aborted: 1
        }
    );
    assert!(
        matches!(after, Ok(0)) || after.is_err(),
        "the aborted connection is closed: {after:?}"
    );
}
