//! TCP scenarios on the reactor (poller stand-in thread + `futures::executor::block_on`).

// The reactor's test driver, shared rather than copied.
#[path = "../../reactor/tests/common/mod.rs"]
mod common;

use std::future::Future;
use std::io::{self, IoSlice};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use common::BackgroundDriver;
use futures::io::{AsyncReadExt, AsyncWriteExt};
use futures::StreamExt;
use runnel_net::{TcpListener, TcpSocket, TcpStream};
use runnel_reactor::{is_shutdown_error, Waiters};

async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, accepted) = futures::join!(TcpStream::connect(addr), listener.accept());
    let (server, peer) = accepted.unwrap();
    let client = client.unwrap();
    assert_eq!(peer, client.local_addr().unwrap());
    assert_eq!(client.peer_addr().unwrap(), addr);
    (client, server)
}

#[test]
fn echo_with_inherent_methods() {
    let mut rt = BackgroundDriver::start();
    rt.block_on(async {
        let (mut client, mut server) = pair().await;
        client.write_all(b"hello runnel").await.unwrap();
        let mut peeked = [0; 5];
        let n = server.peek(&mut peeked).await.unwrap();
        assert_eq!(&peeked[..n], &b"hello"[..n]);
        let mut buf = [0; 12];
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello runnel");
        server.write_all(&buf).await.unwrap();
        let mut back = [0; 12];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"hello runnel");
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(server.read(&mut buf).await.unwrap(), 0, "end of file");
        let err = server.read_exact(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    });
    assert_eq!(rt.quiesce(), Waiters::default());
}

#[test]
fn large_transfer_through_async_read_write_and_borrowed_split() {
    let rt = BackgroundDriver::start();
    rt.block_on(async {
        let (mut client, mut server) = pair().await;
        let total = 8 << 20; // far beyond socket buffers: both sides hit WouldBlock
        let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
        // Path syntax: with futures' AsyncReadExt in scope, `.split()` would pick its
        // by-value split instead of the inherent borrowed one.
        let (mut server_read, mut server_write) = TcpStream::split(&mut server);
        let (mut client_read, mut client_write) = TcpStream::split(&mut client);
        let send = async {
            client_write.write_all(&data).await.unwrap();
            client_write.close().await.unwrap(); // poll_close = shutdown(Write)
        };
        let echo = async {
            let copied = futures::io::copy(&mut server_read, &mut server_write)
                .await
                .unwrap();
            server_write.close().await.unwrap();
            copied
        };
        let receive = async {
            let mut received = Vec::new();
            client_read.read_to_end(&mut received).await.unwrap();
            received
        };
        let ((), copied, received) = futures::join!(send, echo, receive);
        assert_eq!(copied, total as u64);
        assert!(received == data, "echoed bytes differ");
    });
}

/// A short read through `AsyncRead` clears read readiness (so the next read waits for
/// the next event instead of trying the socket): the next message must still wake the
/// reader, every time. A ping-pong of small messages is exactly that pattern.
#[test]
fn short_reads_never_lose_the_next_message() {
    let rt = BackgroundDriver::start();
    rt.block_on(async {
        let (mut client, mut server) = pair().await;
        let mut buf = [0u8; 4096];
        for i in 0u32..2000 {
            client.write_all(&i.to_le_bytes()).await.unwrap();
            let mut got = Vec::new();
            while got.len() < 4 {
                // futures' AsyncReadExt::read: the poll path, with a buffer far larger
                // than what is there, so every read is short.
                let n = AsyncReadExt::read(&mut server, &mut buf).await.unwrap();
                assert!(n > 0, "unexpected end of file");
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(got, i.to_le_bytes());
            AsyncWriteExt::write_all(&mut server, b"k").await.unwrap();
            let n = AsyncReadExt::read(&mut client, &mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"k");
        }
    });
}

#[test]
fn write_vectored_sends_every_slice() {
    let rt = BackgroundDriver::start();
    rt.block_on(async {
        let (mut client, mut server) = pair().await;
        let slices = [
            IoSlice::new(b"ab"),
            IoSlice::new(b"cd"),
            IoSlice::new(b"ef"),
        ];
        let n = client.write_vectored(&slices).await.unwrap();
        assert_eq!(n, 6, "a fresh socket takes 6 bytes at once");
        let mut buf = [0; 6];
        AsyncReadExt::read_exact(&mut server, &mut buf)
            .await
            .unwrap();
        assert_eq!(&buf, b"abcdef");
    });
}

#[test]
fn owned_halves_work_from_two_threads_and_reunite() {
    let rt = BackgroundDriver::start();
    let (client, mut server) = rt.block_on(pair());
    let (mut reader, mut writer) = client.into_split();
    let rounds = 1000u32;
    let writer_thread = rt.spawn(async move {
        for i in 0..rounds {
            writer.write_all(&i.to_be_bytes()).await.unwrap();
        }
        writer
    });
    let reader_thread = rt.spawn(async move {
        for i in 0..rounds {
            let mut buf = [0; 4];
            reader.read_exact(&mut buf).await.unwrap();
            assert_eq!(u32::from_be_bytes(buf), i);
        }
        reader
    });
    rt.block_on(async {
        // The server echoes what the writer sends back to the reader.
        let mut buf = vec![0; 4 * rounds as usize];
        server.read_exact(&mut buf).await.unwrap();
        server.write_all(&buf).await.unwrap();
    });
    let writer = writer_thread.join().unwrap();
    let reader = reader_thread.join().unwrap();
    let stream = reader.reunite(writer).unwrap();

    // Halves of different streams do not reunite.
    let (other, _server2) = rt.block_on(pair());
    let (r1, _w1) = stream.into_split();
    let (_r2, w2) = other.into_split();
    let err = r1.reunite(w2).unwrap_err();
    assert_eq!(
        err.to_string(),
        "tried to reunite halves that are not from the same socket"
    );
}

#[test]
fn dropping_the_owned_write_half_sends_eof() {
    let rt = BackgroundDriver::start();
    rt.block_on(async {
        let (client, mut server) = pair().await;
        let (_reader, writer) = client.into_split();
        drop(writer);
        let mut buf = [0; 1];
        assert_eq!(server.read(&mut buf).await.unwrap(), 0);
    });
}

#[test]
fn connect_tries_each_address_and_returns_the_last_error() {
    let mut rt = BackgroundDriver::start();
    rt.block_on(async {
        // A port nobody listens on: bind, note the port, close.
        let closed: SocketAddr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let err = TcpStream::connect(closed).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();
        let stream = TcpStream::connect(&[closed, open][..]).await.unwrap();
        assert_eq!(stream.peer_addr().unwrap(), open);

        let err = TcpStream::connect(&[][..] as &[SocketAddr])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    });
    assert_eq!(rt.quiesce(), Waiters::default());
}

#[test]
fn bind_ipv6_when_available() {
    let rt = BackgroundDriver::start();
    rt.block_on(async {
        let listener = match TcpListener::bind("[::1]:0").await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("no IPv6 loopback here ({e}); skipping");
                return;
            }
        };
        let addr = listener.local_addr().unwrap();
        assert!(addr.is_ipv6());
        let (client, accepted) = futures::join!(TcpStream::connect(addr), listener.accept());
        assert!(client.unwrap().peer_addr().unwrap().is_ipv6());
        accepted.unwrap();
    });
}

#[test]
fn tcp_socket_builder_listens_and_connects() {
    let rt = BackgroundDriver::start();
    rt.block_on(async {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        assert!(socket.reuseaddr().unwrap());
        socket.set_reuseport(true).unwrap();
        assert!(socket.reuseport().unwrap());
        socket.set_send_buffer_size(64 << 10).unwrap();
        socket.set_recv_buffer_size(64 << 10).unwrap();
        assert!(socket.send_buffer_size().unwrap() >= 64 << 10);
        assert!(socket.recv_buffer_size().unwrap() >= 64 << 10);
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = socket.local_addr().unwrap();
        let listener = socket.listen(128).unwrap();
        assert_eq!(listener.local_addr().unwrap(), addr);

        let client = TcpSocket::new_v4().unwrap();
        client.set_nodelay(true).unwrap();
        let (stream, accepted) = futures::join!(client.connect(addr), listener.accept());
        let stream = stream.unwrap();
        assert!(stream.nodelay().unwrap());
        assert_eq!(accepted.unwrap().1, stream.local_addr().unwrap());

        if let Ok(v6) = TcpSocket::new_v6() {
            v6.set_only_v6(true).unwrap();
        }
    });
}

#[test]
fn tcp_socket_connect_to_closed_port_fails() {
    let rt = BackgroundDriver::start();
    rt.block_on(async {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let err = TcpSocket::new_v4()
            .unwrap()
            .connect(closed)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    });
}

#[test]
fn stream_options_round_trip() {
    let rt = BackgroundDriver::start();
    rt.block_on(async {
        let (client, _server) = pair().await;
        client.set_nodelay(true).unwrap();
        assert!(client.nodelay().unwrap());
        client.set_linger(Some(Duration::from_secs(1))).unwrap();
        assert_eq!(client.linger().unwrap(), Some(Duration::from_secs(1)));
        client.set_linger(None).unwrap();
        client.set_keepalive(true).unwrap();
        assert!(client.keepalive().unwrap());
        client.set_ttl(42).unwrap();
        assert_eq!(client.ttl().unwrap(), 42);
        assert!(client.take_error().unwrap().is_none());
    });
}

#[test]
fn std_conversions_round_trip() {
    let rt = BackgroundDriver::start();
    rt.block_on(async {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std_listener.local_addr().unwrap();
        let listener = TcpListener::from_std(std_listener).unwrap();
        let std_client = std::net::TcpStream::connect(addr).unwrap(); // backlog accepts it
        let mut client = TcpStream::from_std(std_client).unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let std_listener = listener.into_std().unwrap();
        assert_eq!(std_listener.local_addr().unwrap(), addr);

        let mut server = server.into_std().unwrap();
        server.set_nonblocking(false).unwrap();
        std::io::Write::write_all(&mut server, b"from std").unwrap();
        let mut buf = [0; 8];
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"from std");
    });
}

#[test]
fn incoming_yields_connections() {
    let rt = BackgroundDriver::start();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let clients = async {
            let mut streams = Vec::new();
            for _ in 0..3 {
                streams.push(TcpStream::connect(addr).await.unwrap());
            }
            streams
        };
        let accepted = listener.incoming().take(3).collect::<Vec<_>>();
        let (clients, accepted) = futures::join!(clients, accepted);
        assert_eq!(clients.len(), 3);
        assert!(accepted.iter().all(Result::is_ok));
    });
}

#[test]
fn try_read_and_try_write_do_not_wait() {
    let rt = BackgroundDriver::start();
    rt.block_on(async {
        let (client, server) = pair().await;
        let mut buf = [0; 4];
        assert_eq!(
            server.try_read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        client.writable().await.unwrap();
        assert_eq!(client.try_write(b"ping").unwrap(), 4);
        server.readable().await.unwrap();
        assert_eq!(server.try_read(&mut buf).unwrap(), 4);
    });
}

#[test]
fn dropping_a_stream_with_a_waiting_reader_releases_the_waiter() {
    let mut rt = BackgroundDriver::start();
    let (client, _server) = rt.block_on(async {
        let (mut client, server) = pair().await;
        let mut buf = [0; 1];
        // Poll a read once through the stateless `AsyncRead`: nothing was sent, so it
        // stores its waker, which stays after the caller stops polling.
        let polled = std::future::poll_fn(|cx| {
            let read =
                futures::io::AsyncRead::poll_read(std::pin::Pin::new(&mut client), cx, &mut buf);
            std::task::Poll::Ready(read.is_pending())
        })
        .await;
        assert!(polled);
        (client, server)
    });
    assert_eq!(rt.quiesce(), Waiters { io: 1, timers: 0 });
    drop(client);
    assert_eq!(rt.handle().waiters(), Waiters::default());
}

#[test]
fn a_dropped_read_future_withdraws_its_waiter_at_once() {
    let mut rt = BackgroundDriver::start();
    let (_client, _server) = rt.block_on(async {
        let (mut client, server) = pair().await;
        let mut buf = [0; 1];
        {
            let mut read = std::pin::pin!(client.read(&mut buf));
            assert!(futures::poll!(read.as_mut()).is_pending());
            let mut readable = std::pin::pin!(server.readable());
            assert!(futures::poll!(readable.as_mut()).is_pending());
        } // both lose a `select!`
        (client, server)
    });
    assert_eq!(rt.quiesce(), Waiters::default());
}

#[test]
fn two_tasks_accept_on_one_listener_both_get_a_connection() {
    let mut rt = BackgroundDriver::start();
    let listener = Arc::new(rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap());
    let addr = listener.local_addr().unwrap();
    let acceptors: Vec<_> = (0..2)
        .map(|_| {
            let listener = listener.clone();
            rt.spawn(async move { listener.accept().await.unwrap().1 })
        })
        .collect();
    wait_for_io_waiters(rt.handle(), 2);
    let clients: Vec<_> = (0..2)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    let mut peers: Vec<SocketAddr> = acceptors.into_iter().map(|a| a.join().unwrap()).collect();
    let mut expected: Vec<_> = clients.iter().map(|c| c.local_addr().unwrap()).collect();
    peers.sort_unstable();
    expected.sort_unstable();
    assert_eq!(peers, expected, "each connection accepted once");
    assert_eq!(rt.quiesce(), Waiters::default());
}

#[test]
fn two_tasks_await_readable_on_one_stream() {
    let mut rt = BackgroundDriver::start();
    let (mut client, server) = rt.block_on(pair());
    let server = Arc::new(server);
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let server = server.clone();
            rt.spawn(async move { server.readable().await })
        })
        .collect();
    wait_for_io_waiters(rt.handle(), 2);
    rt.block_on(client.write_all(b"x")).unwrap();
    for waiter in waiters {
        waiter.join().unwrap().unwrap();
    }
    assert_eq!(rt.quiesce(), Waiters::default());
}

/// Waits until exactly `n` wakers wait on I/O (fails after 10 s rather than hanging).
fn wait_for_io_waiters(handle: &runnel_reactor::Handle, n: usize) {
    let give_up = std::time::Instant::now() + Duration::from_secs(10);
    while handle.waiters().io != n {
        assert!(
            std::time::Instant::now() < give_up,
            "io waiters stayed {:?}, expected {n}",
            handle.waiters()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn reader_blocked_at_shutdown_gets_an_error() {
    let rt = BackgroundDriver::start();
    let (mut client, _server) = rt.block_on(pair());
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = rt.handle().clone();
    let shutter = std::thread::spawn(move || {
        rx.recv().unwrap();
        handle.shutdown();
    });
    let err = rt.block_on(async {
        let mut buf = [0; 1];
        let mut read = std::pin::pin!(client.read(&mut buf));
        let mut told = false;
        std::future::poll_fn(|cx| {
            let poll = read.as_mut().poll(cx);
            if poll.is_pending() && !told {
                told = true;
                tx.send(()).unwrap();
            }
            poll
        })
        .await
        .unwrap_err()
    });
    shutter.join().unwrap();
    assert!(is_shutdown_error(&err), "{err}");
    let bind = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap_err();
    assert!(is_shutdown_error(&bind), "{bind}");
}

#[test]
fn try_read_vectored_and_poll_peek() {
    let mut rt = BackgroundDriver::start();
    rt.block_on(async {
        let (client, server) = pair().await;
        let mut buf = [0; 8];
        let peeked = std::future::poll_fn(|cx| {
            // Nothing sent yet: pending (the waker is stored), then the write wakes it.
            let poll = server.poll_peek(cx, &mut buf);
            if poll.is_pending() {
                client.try_write(b"abcdef").unwrap();
            }
            poll
        })
        .await
        .unwrap();
        assert_eq!(&buf[..peeked], &b"abcdef"[..peeked]);
        let (mut head, mut tail) = ([0; 2], [0; 8]);
        let mut bufs = [
            io::IoSliceMut::new(&mut head),
            io::IoSliceMut::new(&mut tail),
        ];
        // peek left the bytes queued: the vectored read gets all six.
        assert_eq!(server.try_read_vectored(&mut bufs).unwrap(), 6);
        assert_eq!((&head, &tail[..4]), (b"ab", &b"cdef"[..]));
        let mut bufs = [io::IoSliceMut::new(&mut head)];
        let err = server.try_read_vectored(&mut bufs).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        let sent = client
            .try_write_vectored(&[IoSlice::new(b"x"), IoSlice::new(b"yz")])
            .unwrap();
        assert_eq!(sent, 3);
    });
    assert_eq!(rt.quiesce(), Waiters::default());
}
