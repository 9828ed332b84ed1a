//! Unix domain sockets on a full runtime (deadlock detector on, so a lost wakeup fails
//! the test with the report instead of hanging): a listener in a temporary directory,
//! pairs, datagrams, halves in two tasks, end of file from a dropped peer.
#![cfg(unix)]

use std::io;
use std::net::Shutdown;
use std::path::PathBuf;

use futures::io::{AsyncReadExt, AsyncWriteExt};
use futures::StreamExt;
use runnel_executor::{spawn, Runtime};
use runnel_net::{UnixDatagram, UnixListener, UnixStream};

fn runtime() -> Runtime {
    runnel_executor::Builder::new()
        .worker_threads(2)
        .build()
        .unwrap()
}

/// A fresh directory for one test's socket files, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("runnel-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn echo_over_a_listener_in_a_temp_dir() {
    let dir = TempDir::new("echo");
    let path = dir.path("echo.sock");
    runtime().block_on(async move {
        let listener = UnixListener::bind(&path).unwrap();
        assert_eq!(listener.local_addr().unwrap().as_pathname(), Some(&*path));
        let server = spawn(async move {
            let mut connections = listener.incoming();
            for _ in 0..2 {
                let mut stream = connections.next().await.unwrap().unwrap();
                let mut buf = [0; 64];
                loop {
                    let n = stream.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break; // the client shut down writing
                    }
                    stream.write_all(&buf[..n]).await.unwrap();
                }
            }
        });
        for round in 0..2 {
            let mut client = UnixStream::connect(&path).await.unwrap();
            assert_eq!(client.peer_addr().unwrap().as_pathname(), Some(&*path));
            let msg = format!("hello over a unix socket, round {round}");
            client.write_all(msg.as_bytes()).await.unwrap();
            client.shutdown(Shutdown::Write).unwrap();
            let mut back = String::new();
            AsyncReadExt::read_to_string(&mut client, &mut back)
                .await
                .unwrap();
            assert_eq!(back, msg);
        }
        server.await.unwrap();
    });
}

#[test]
fn connect_to_a_missing_path_fails() {
    let dir = TempDir::new("missing");
    runtime().block_on(async move {
        let err = UnixStream::connect(dir.path("nobody.sock"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    });
}

#[test]
fn pair_round_trip_through_async_read_write() {
    runtime().block_on(async {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        AsyncWriteExt::write_all(&mut a, b"ping").await.unwrap();
        let mut buf = [0; 4];
        AsyncReadExt::read_exact(&mut b, &mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        b.write_all(b"pong").await.unwrap();
        a.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong");
        assert!(a.local_addr().unwrap().is_unnamed());
        // Borrowed halves, both directions at once in one task.
        let (mut read, mut write) = UnixStream::split(&mut a);
        let (wrote, got) = futures::join!(write.write_all(b"x"), async {
            let mut one = [0; 1];
            b.read_exact(&mut one).await.map(|()| one)
        });
        wrote.unwrap();
        assert_eq!(got.unwrap(), *b"x");
        b.write_all(b"y").await.unwrap();
        let mut one = [0; 1];
        read.read_exact(&mut one).await.unwrap();
        assert_eq!(&one, b"y");
    });
}

#[test]
fn a_dropped_peer_gives_end_of_file() {
    runtime().block_on(async {
        let (mut a, b) = UnixStream::pair().unwrap();
        let reader = spawn(async move {
            let mut buf = [0; 8];
            a.read(&mut buf).await
        });
        drop(b);
        assert_eq!(reader.await.unwrap().unwrap(), 0);
    });
}

#[test]
fn into_split_halves_in_two_tasks() {
    const TOTAL: usize = 1 << 20;
    runtime().block_on(async {
        let (client, mut echo) = UnixStream::pair().unwrap();
        let echo = spawn(async move {
            let (mut read, mut write) = UnixStream::split(&mut echo);
            futures::io::copy(&mut read, &mut write).await.unwrap()
        });
        let (mut read, mut write) = client.into_split();
        let writer = spawn(async move {
            let chunk = vec![7u8; 4096];
            for _ in 0..TOTAL / chunk.len() {
                write.write_all(&chunk).await.unwrap();
            }
            // Dropping the write half shuts down writing: the echo sees end of file.
        });
        let reader = spawn(async move {
            let mut got = 0;
            let mut buf = vec![0; 8192];
            loop {
                let n = read.read(&mut buf).await.unwrap();
                if n == 0 {
                    return got;
                }
                assert!(buf[..n].iter().all(|&b| b == 7));
                got += n;
            }
        });
        writer.await.unwrap();
        assert_eq!(echo.await.unwrap(), TOTAL as u64);
        assert_eq!(reader.await.unwrap(), TOTAL);
    });
}

#[test]
fn owned_halves_reunite_only_with_their_own() {
    runtime().block_on(async {
        let (a, b) = UnixStream::pair().unwrap();
        let (a_read, a_write) = a.into_split();
        let (b_read, b_write) = b.into_split();
        let err = a_read.reunite(b_write).unwrap_err();
        let (a_read, b_write) = (err.0, err.1);
        let mut a = a_read.reunite(a_write).unwrap();
        let mut b = b_write.reunite(b_read).unwrap();
        a.write_all(b"still whole").await.unwrap();
        let mut buf = [0; 11];
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"still whole");
    });
}

#[test]
fn datagrams_send_to_and_recv_from() {
    let dir = TempDir::new("dgram");
    runtime().block_on(async move {
        let server_path = dir.path("server.sock");
        let client_path = dir.path("client.sock");
        let server = UnixDatagram::bind(&server_path).unwrap();
        let client = UnixDatagram::bind(&client_path).unwrap();
        let receiver = spawn(async move {
            let mut buf = [0; 64];
            let (n, from) = server.recv_from(&mut buf).await.unwrap();
            server
                .send_to(&buf[..n], from.as_pathname().unwrap())
                .await
                .unwrap();
            (buf[..n].to_vec(), from.as_pathname().map(PathBuf::from))
        });
        client.send_to(b"datagram", &server_path).await.unwrap();
        let mut buf = [0; 64];
        let (n, from) = client.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"datagram");
        assert_eq!(from.as_pathname(), Some(&*server_path));
        let (got, sender) = receiver.await.unwrap();
        assert_eq!(got, b"datagram");
        assert_eq!(sender.as_deref(), Some(&*client_path));

        // Unbound sender, connected receiver; and a pair.
        let unbound = UnixDatagram::unbound().unwrap();
        unbound.send_to(b"anon", &client_path).await.unwrap();
        let (n, from) = client.recv_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..n], from.is_unnamed()), (&b"anon"[..], true));
        // The server's socket is closed (its file remains): connecting is refused.
        unbound.connect(&server_path).unwrap_err();
        let (a, b) = UnixDatagram::pair().unwrap();
        a.send(b"one").await.unwrap();
        a.send(b"two").await.unwrap();
        assert_eq!(b.recv(&mut buf).await.unwrap(), 3);
        assert_eq!(&buf[..3], b"one");
        let (n, from) = b.recv_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..n], from.is_unnamed()), (&b"two"[..], true));
        let err = b.try_recv(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    });
}

#[test]
fn poll_ready_then_try_io() {
    runtime().block_on(async {
        let (a, b) = UnixStream::pair().unwrap();
        std::future::poll_fn(|cx| a.poll_write_ready(cx))
            .await
            .unwrap();
        assert_eq!(a.try_write(b"ready").unwrap(), 5);
        std::future::poll_fn(|cx| b.poll_read_ready(cx))
            .await
            .unwrap();
        let mut buf = [0; 8];
        assert_eq!(b.try_read(&mut buf).unwrap(), 5);
        let err = b.try_read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        let mut read_ready = std::pin::pin!(std::future::poll_fn(|cx| b.poll_read_ready(cx)));
        assert!(
            futures::poll!(read_ready.as_mut()).is_pending(),
            "readiness was cleared"
        );
    });
}
