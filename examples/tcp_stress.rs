//! The TCP echo stress demo: Go's `TestTCPStress` load on runnel, with figures.
//!
//! ```text
//! cargo run --release --example tcp_stress -- --conns 64 --msgs 10000 [--workers N] [--compare]
//! ```
//!
//! Each of `conns` clients writes a 512-byte message and reads the echo back, `msgs` times;
//! every echoed byte is checked. Prints a progress line, then messages/s, round-trip latency
//! (p50/p99/max), the wakeups the poller injected, and the deadlock checks run and
//! reports made (0). `--compare` runs the same load on tokio afterwards, in the same process.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MSG: usize = 512;

struct Args {
    conns: usize,
    msgs: usize,
    workers: usize,
    compare: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        conns: 64,
        msgs: 10_000,
        workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
        compare: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a positive number, e.g. {name} 64"))
        };
        match flag.as_str() {
            "--conns" => args.conns = value("--conns"),
            "--msgs" => args.msgs = value("--msgs"),
            "--workers" => args.workers = value("--workers"),
            "--compare" => args.compare = true,
            "-h" | "--help" => {
                println!("usage: tcp_stress [--conns N] [--msgs N] [--workers N] [--compare]");
                std::process::exit(0);
            }
            other => panic!("unknown argument {other:?}; try --help"),
        }
    }
    assert!(
        args.conns > 0 && args.msgs > 0 && args.workers > 0,
        "--conns, --msgs and --workers must be at least 1"
    );
    args
}

fn pattern(conn: usize, msg: usize, buf: &mut [u8; MSG]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (conn.wrapping_mul(31) ^ msg.wrapping_mul(17) ^ i.wrapping_mul(7)) as u8;
    }
    buf[..8].copy_from_slice(&(msg as u64).to_le_bytes());
}

/// What one run measured.
struct Run {
    elapsed: Duration,
    /// Round-trip times in nanoseconds, all messages of all connections.
    rtts: Vec<u64>,
}

/// The echo load, written once for both runtimes.
macro_rules! echo_load {
    ($args:expr, $done:expr, $spawn:path, $listener:ty, $stream:ty, $read_exact:ident, $write_all:ident) => {{
        let (conns, msgs, done) = ($args.conns, $args.msgs, $done.clone());
        async move {
            let listener = <$listener>::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = $spawn(async move {
                let mut echoers = Vec::new();
                for _ in 0..conns {
                    let (mut stream, _) = listener.accept().await.unwrap();
                    echoers.push($spawn(async move {
                        let mut buf = [0u8; MSG];
                        for _ in 0..msgs {
                            stream.$read_exact(&mut buf).await.unwrap();
                            stream.$write_all(&buf).await.unwrap();
                        }
                    }));
                }
                for e in echoers {
                    e.await.unwrap();
                }
            });
            let start = Instant::now();
            let clients: Vec<_> = (0..conns)
                .map(|conn| {
                    let done = done.clone();
                    $spawn(async move {
                        let mut stream = <$stream>::connect(addr).await.unwrap();
                        stream.set_nodelay(true).unwrap();
                        let (mut sent, mut echoed) = ([0u8; MSG], [0u8; MSG]);
                        let mut rtts = Vec::with_capacity(msgs);
                        for msg in 0..msgs {
                            pattern(conn, msg, &mut sent);
                            let t = Instant::now();
                            stream.$write_all(&sent).await.unwrap();
                            stream.$read_exact(&mut echoed).await.unwrap();
                            rtts.push(t.elapsed().as_nanos() as u64);
                            assert!(
                                sent == echoed,
                                "connection {conn}: message {msg} came back different"
                            );
                            done.fetch_add(1, Relaxed);
                        }
                        rtts
                    })
                })
                .collect();
            let mut rtts = Vec::with_capacity(conns * msgs);
            for c in clients {
                rtts.extend(c.await.unwrap());
            }
            let elapsed = start.elapsed();
            server.await.unwrap();
            Run { elapsed, rtts }
        }
    }};
}

/// Prints a progress line every 500 ms until `finished`.
fn progress(
    name: &'static str,
    total: u64,
    done: Arc<AtomicU64>,
    finished: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let start = Instant::now();
        while !finished.load(Relaxed) {
            std::thread::park_timeout(Duration::from_millis(500));
            let n = done.load(Relaxed);
            eprint!(
                "\r{name}: {n}/{total} messages echoed ({:.0}%), {:.1} s   ",
                100.0 * n as f64 / total as f64,
                start.elapsed().as_secs_f64()
            );
        }
        eprintln!();
    })
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn report(name: &str, args: &Args, mut run: Run) -> f64 {
    run.rtts.sort_unstable();
    let total = run.rtts.len() as f64;
    let rate = total / run.elapsed.as_secs_f64();
    println!(
        "{name}: {} conns x {} msgs of {MSG} B in {:.2} s: {:.0} msgs/s; round trip p50 {:.1} us, p99 {:.1} us, max {:.1} us",
        args.conns,
        args.msgs,
        run.elapsed.as_secs_f64(),
        rate,
        percentile(&run.rtts, 0.50),
        percentile(&run.rtts, 0.99),
        percentile(&run.rtts, 1.0),
    );
    rate
}

fn main() {
    let args = parse_args();
    let total = (args.conns * args.msgs) as u64;
    println!(
        "TCP echo stress (Go's TestTCPStress shape): {} workers, deadlock detector: panic",
        args.workers
    );

    let rt = runnel::Builder::new()
        .worker_threads(args.workers)
        .on_deadlock(runnel::OnDeadlock::Panic)
        .build()
        .expect("failed to build the runnel runtime");
    let (done, finished) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let bar = progress("runnel", total, done.clone(), finished.clone());
    let run = rt.block_on(echo_load!(
        args,
        done,
        runnel::spawn,
        runnel::net::TcpListener,
        runnel::net::TcpStream,
        read_exact,
        write_all
    ));
    finished.store(true, Relaxed);
    bar.thread().unpark();
    bar.join().unwrap();
    let runnel_rate = report("runnel", &args, run);
    let m = rt.metrics();
    println!(
        "runnel: reactor wakeups {} ({} drains by the poller under the token), polls {}, steals {}, parks {}, deadlock checks {}, deadlock reports {}",
        m.reactor_wakeups, m.token_drains, m.polls, m.steals, m.parks, m.deadlock_checks, m.deadlock_reports
    );
    assert_eq!(m.deadlock_reports, 0, "false deadlock report");
    drop(rt);

    if args.compare {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.workers)
            .enable_all()
            .build()
            .unwrap();
        let (done, finished) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let bar = progress("tokio", total, done.clone(), finished.clone());
        let run = rt.block_on(echo_load!(
            args,
            done,
            tokio::spawn,
            tokio::net::TcpListener,
            tokio::net::TcpStream,
            read_exact,
            write_all
        ));
        finished.store(true, Relaxed);
        bar.thread().unpark();
        bar.join().unwrap();
        let tokio_rate = report("tokio", &args, run);
        println!(
            "runnel/tokio throughput ratio: {:.2}",
            runnel_rate / tokio_rate
        );
    }
}
