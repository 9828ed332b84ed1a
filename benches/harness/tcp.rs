//! TCP workloads over loopback: Go's `TestTCPStress` echo shape (latency-bound round
//! trips) and a streaming throughput run.
//!
//! The listener is made the same way for every runtime (`listen`: std + socket2, backlog
//! 4096) and handed to the runtime, so no runtime's default backlog decides a result.
//!
//! `echo_threads` is the echo without a runtime: one blocking OS thread per connection on
//! each side, the classic design an async runtime has to beat on CPU per message. It
//! shares the listener, the messages, the check and the figures with `echo`.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::rt::Runtime;

/// Go's TestTCPStress message size.
pub const MSG: usize = 512;
/// Write size of the streaming run.
pub const CHUNK: usize = 64 * 1024;

/// A non-blocking loopback listener with a 4096 backlog, bound to a fresh port.
pub fn listen() -> io::Result<TcpListener> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    socket.listen(4096)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// The bytes of message `msg` on connection `conn` (its index in the first 8 bytes), so
/// a reordered, lost or corrupted echo is caught.
fn pattern(conn: usize, msg: usize, buf: &mut [u8; MSG]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (conn.wrapping_mul(31) ^ msg.wrapping_mul(17) ^ i.wrapping_mul(7)) as u8;
    }
    buf[..8].copy_from_slice(&(msg as u64).to_le_bytes());
}

/// Fails the run if message `msg` of connection `conn` came back different.
fn check_echo(conn: usize, msg: usize, sent: &[u8; MSG], echoed: &[u8; MSG]) {
    assert!(
        sent == echoed,
        "conn {conn}: message {msg} came back different"
    );
}

/// `conns` clients each send `msgs` messages of 512 bytes, one at a time, and check the
/// echo. Returns messages/s and the p50/p99 round trip in µs.
pub fn echo<R: Runtime>(rt: &R, conns: usize, msgs: usize) -> [f64; 3] {
    let std_listener = listen().expect("listen");
    let addr = std_listener.local_addr().expect("local_addr");
    let (elapsed, rtts) = rt.run(async move {
        let listener = R::listener(std_listener).expect("listener");
        let server = R::spawn(async move {
            let mut echoers = Vec::with_capacity(conns);
            for _ in 0..conns {
                let mut s = R::accept(&listener).await.expect("accept");
                R::set_nodelay(&s).expect("nodelay");
                echoers.push(R::spawn(async move {
                    let mut buf = [0u8; MSG];
                    for _ in 0..msgs {
                        R::read_exact(&mut s, &mut buf).await.expect("server read");
                        R::write_all(&mut s, &buf).await.expect("server write");
                    }
                    msgs
                }));
            }
            let mut echoed = 0;
            for e in echoers {
                echoed += e.await;
            }
            echoed
        });
        let start = Instant::now();
        let clients: Vec<_> = (0..conns)
            .map(|conn| {
                R::spawn(async move {
                    let mut s = R::connect(addr).await.expect("connect");
                    R::set_nodelay(&s).expect("nodelay");
                    let (mut sent, mut echoed) = ([0u8; MSG], [0u8; MSG]);
                    let mut rtts = Vec::with_capacity(msgs);
                    for msg in 0..msgs {
                        pattern(conn, msg, &mut sent);
                        let t = Instant::now();
                        R::write_all(&mut s, &sent).await.expect("client write");
                        R::read_exact(&mut s, &mut echoed)
                            .await
                            .expect("client read");
                        rtts.push(t.elapsed().as_nanos() as u64);
                        check_echo(conn, msg, &sent, &echoed);
                    }
                    rtts
                })
            })
            .collect();
        let mut rtts = Vec::with_capacity(conns * msgs);
        for c in clients {
            rtts.extend(c.await);
        }
        let elapsed = start.elapsed();
        assert_eq!(
            server.await,
            conns * msgs,
            "server echoed a different count"
        );
        (elapsed, rtts)
    });
    echo_figures(elapsed, rtts, conns * msgs)
}

/// Messages/s and the p50/p99 round trip in µs, from every round trip of a run.
fn echo_figures(elapsed: Duration, mut rtts: Vec<u64>, expected: usize) -> [f64; 3] {
    assert_eq!(rtts.len(), expected);
    rtts.sort_unstable();
    [
        rtts.len() as f64 / elapsed.as_secs_f64(),
        crate::report::percentile(&rtts, 0.50) / 1e3,
        crate::report::percentile(&rtts, 0.99) / 1e3,
    ]
}

/// `echo` with no runtime: a blocking `std::net` server that starts one OS thread per
/// accepted connection, and one blocking client thread per connection. Threads are
/// started inside the measured part, as `echo` spawns its tasks there; that is ~130
/// thread starts against tens of thousands of round trips.
pub fn echo_threads(conns: usize, msgs: usize) -> [f64; 3] {
    let listener = listen().expect("listen");
    listener.set_nonblocking(false).expect("blocking listener");
    let addr = listener.local_addr().expect("local_addr");
    let server = thread::spawn(move || {
        let echoers: Vec<_> = (0..conns)
            .map(|_| {
                let (mut s, _) = listener.accept().expect("accept");
                s.set_nodelay(true).expect("nodelay");
                thread::spawn(move || {
                    let mut buf = [0u8; MSG];
                    for _ in 0..msgs {
                        s.read_exact(&mut buf).expect("server read");
                        s.write_all(&buf).expect("server write");
                    }
                    msgs
                })
            })
            .collect();
        echoers
            .into_iter()
            .map(|e| e.join().expect("echo thread panicked"))
            .sum::<usize>()
    });
    let start = Instant::now();
    let clients: Vec<_> = (0..conns)
        .map(|conn| {
            thread::spawn(move || {
                let mut s = TcpStream::connect(addr).expect("connect");
                s.set_nodelay(true).expect("nodelay");
                let (mut sent, mut echoed) = ([0u8; MSG], [0u8; MSG]);
                let mut rtts = Vec::with_capacity(msgs);
                for msg in 0..msgs {
                    pattern(conn, msg, &mut sent);
                    let t = Instant::now();
                    s.write_all(&sent).expect("client write");
                    s.read_exact(&mut echoed).expect("client read");
                    rtts.push(t.elapsed().as_nanos() as u64);
                    check_echo(conn, msg, &sent, &echoed);
                }
                rtts
            })
        })
        .collect();
    let mut rtts = Vec::with_capacity(conns * msgs);
    for c in clients {
        rtts.extend(c.join().expect("client thread panicked"));
    }
    let elapsed = start.elapsed();
    let echoed = server.join().expect("server thread panicked");
    assert_eq!(echoed, conns * msgs, "server echoed a different count");
    echo_figures(elapsed, rtts, conns * msgs)
}

/// Byte `offset` of connection `conn`'s stream. 64 KiB is a multiple of 256, so every
/// chunk a client writes is the same buffer; the reader checks the first and last byte
/// of every read against its running offset, and the totals must match.
fn stream_byte(conn: usize, offset: u64) -> u8 {
    (offset as u8) ^ (conn as u8).wrapping_mul(37)
}

/// `conns` clients stream 64 KiB writes for `duration` into sink servers. Returns GB/s
/// (10^9 bytes) received over the whole run.
pub fn stream<R: Runtime>(rt: &R, conns: usize, duration: Duration) -> f64 {
    let std_listener = listen().expect("listen");
    let addr = std_listener.local_addr().expect("local_addr");
    let (elapsed, received, sent) = rt.run(async move {
        let listener = R::listener(std_listener).expect("listener");
        let server = R::spawn(async move {
            let mut sinks = Vec::with_capacity(conns);
            for _ in 0..conns {
                let mut s = R::accept(&listener).await.expect("accept");
                sinks.push(R::spawn(async move {
                    let mut buf = vec![0u8; CHUNK];
                    // The client sends its index first, so the sink knows its pattern.
                    let mut id = [0u8; 8];
                    R::read_exact(&mut s, &mut id).await.expect("sink read id");
                    let conn = u64::from_le_bytes(id) as usize;
                    let mut offset = 0u64;
                    loop {
                        let n = R::read(&mut s, &mut buf).await.expect("sink read");
                        if n == 0 {
                            return offset;
                        }
                        assert_eq!(buf[0], stream_byte(conn, offset), "conn {conn}: bad byte");
                        let last = offset + n as u64 - 1;
                        assert_eq!(buf[n - 1], stream_byte(conn, last), "conn {conn}: bad byte");
                        offset += n as u64;
                    }
                }));
            }
            let mut total = 0;
            for s in sinks {
                total += s.await;
            }
            total
        });
        let start = Instant::now();
        let deadline = start + duration;
        let clients: Vec<_> = (0..conns)
            .map(|conn| {
                R::spawn(async move {
                    let mut s = R::connect(addr).await.expect("connect");
                    R::write_all(&mut s, &(conn as u64).to_le_bytes())
                        .await
                        .expect("client write id");
                    let chunk: Vec<u8> = (0..CHUNK as u64).map(|o| stream_byte(conn, o)).collect();
                    let mut sent = 0u64;
                    while Instant::now() < deadline {
                        R::write_all(&mut s, &chunk).await.expect("client write");
                        sent += CHUNK as u64;
                    }
                    sent
                })
            })
            .collect();
        let mut sent = 0;
        for c in clients {
            sent += c.await;
        }
        let received = server.await;
        (start.elapsed(), received, sent)
    });
    assert_eq!(received, sent, "bytes lost in the stream");
    received as f64 / elapsed.as_secs_f64() / 1e9
}
