//! Go's `TestTCPStress` (net/tcpsock_test.go), ported: the test that found the false
//! deadlock runnel's design is built around.
//!
//! Shape: a listener on 127.0.0.1:0; each accepted connection reads exactly 512 bytes and
//! writes them back, `msgs` times; `conns` clients each write 512 bytes and read 512 back,
//! `msgs` times. runnel's version runs with the deadlock detector set to panic, checks every
//! echoed byte against a per-message pattern, and asserts from the metrics that no deadlock
//! was reported and that the poller injected wakeups (so the window the pretend-running
//! token protects was really exercised).

use runnel::net::{TcpListener, TcpStream};
use runnel::{OnDeadlock, RuntimeMetrics};

mod support;

const MSG: usize = 512;

/// The bytes of message `msg` of connection `conn`: distinct per message and position, so
/// a lost, duplicated, reordered or torn message fails the comparison.
fn pattern(conn: usize, msg: usize, buf: &mut [u8; MSG]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (conn.wrapping_mul(31) ^ msg.wrapping_mul(17) ^ i.wrapping_mul(7)) as u8;
    }
    buf[..8].copy_from_slice(&(msg as u64).to_le_bytes());
}

fn echo_stress(workers: usize, conns: usize, msgs: usize) -> RuntimeMetrics {
    let rt = support::builder(workers)
        .on_deadlock(OnDeadlock::Panic)
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = runnel::spawn(async move {
            let mut echoers = Vec::with_capacity(conns);
            for _ in 0..conns {
                let (mut stream, _) = listener.accept().await.unwrap();
                echoers.push(runnel::spawn(async move {
                    let mut buf = [0u8; MSG];
                    for _ in 0..msgs {
                        stream.read_exact(&mut buf).await.unwrap();
                        stream.write_all(&buf).await.unwrap();
                    }
                }));
            }
            for echoer in echoers {
                echoer.await.unwrap();
            }
        });
        let clients: Vec<_> = (0..conns)
            .map(|conn| {
                runnel::spawn(async move {
                    let mut stream = TcpStream::connect(addr).await.unwrap();
                    let (mut sent, mut echoed) = ([0u8; MSG], [0u8; MSG]);
                    for msg in 0..msgs {
                        pattern(conn, msg, &mut sent);
                        stream.write_all(&sent).await.unwrap();
                        stream.read_exact(&mut echoed).await.unwrap();
                        assert!(
                            sent == echoed,
                            "connection {conn}: message {msg} came back different"
                        );
                    }
                })
            })
            .collect();
        for client in clients {
            client.await.unwrap();
        }
        server.await.unwrap();
    });
    let metrics = rt.metrics();
    assert_eq!(
        metrics.deadlock_reports, 0,
        "a false deadlock was reported: {metrics:?}"
    );
    // Every echo waits on socket readiness: the wakes must have come out of the reactor.
    // (The token window itself is exercised deterministically in tests/token.rs.)
    assert!(
        metrics.reactor_wakeups >= 2 * conns as u64,
        "too few wakers came out of the reactor: {metrics:?}"
    );
    metrics
}

#[test]
fn go_shape_2_conns_10000_msgs() {
    echo_stress(2, 2, 10_000);
}

#[test]
fn wide_64_conns_1000_msgs() {
    echo_stress(2, 64, 1_000);
}

#[test]
fn one_worker_16_conns() {
    // A single worker: it polls the reactor itself when idle, the poller when it is busy.
    echo_stress(1, 16, 1_000);
}

/// Manual soak: `cargo test --release --test tcp_stress -- --ignored`.
#[test]
#[ignore = "heavy soak; run manually with --release -- --ignored"]
fn soak_256_conns_10000_msgs_repeated() {
    for round in 0..5 {
        let m = echo_stress(4, 256, 10_000);
        eprintln!("round {round}: {m:?}");
    }
}
