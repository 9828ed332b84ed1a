//! Memory and start-up: bytes per idle task, bytes per idle TCP connection, and the time
//! from nothing to a runtime that has run its first task.
//!
//! **Why child processes.** An RSS delta taken in a process whose allocator already
//! held 100_000 tasks of another runtime (an earlier round) measures free-list reuse,
//! not memory: the delta would be near zero. So each memory sample runs in a fresh copy
//! of this binary (`--child mem-task|mem-tcp RUNTIME N`), which reports one number on
//! stdout; the parent alternates runtimes round by round as for every other workload.
//!
//! The heap is trimmed (`malloc_trim`) before both readings, so freed blocks (a vector
//! that grew by doubling leaves its old buffers behind) do not count as live memory.
//!
//! **What is counted.** Idle task: a spawned, detached task parked on a `Gate` (its
//! future holds an `Arc` and an index; its waker sits in a vector reserved and touched
//! before the baseline). Idle connection: one accepted socket registered with the
//! runtime plus the task parked in a 1-byte `read_exact` on it. The client ends live in
//! the parent process (plain blocking `std` sockets), so they neither count nor take
//! the child's file descriptors. Kernel socket memory is not in RSS and is not counted.

use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::pin::Pin;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::rt::{Kind, Runtime};
use crate::support::{index_sum, rss_bytes, trim_heap, Countdown, Gate};

/// How long a child may take before the parent gives up on it.
const CHILD_DEADLINE: Duration = Duration::from_secs(120);
/// Client source ports are bound from here up (below Linux's ephemeral range, 32768+,
/// so they do not compete with ports the kernel hands out).
const FIRST_CLIENT_PORT: u16 = 10_000;

/// Runs one memory sample in a child process; returns bytes per item.
pub fn sample_in_child(what: &str, kind: Kind, n: usize, workers: usize) -> f64 {
    let exe = std::env::current_exe().expect("current_exe");
    let mut child = Command::new(exe)
        .args(["--child", what, kind.name(), &n.to_string()])
        .args(["--workers", &workers.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn memory child");
    let mut lines = BufReader::new(child.stdout.take().expect("child stdout")).lines();
    let mut next = |expect: &str| -> String {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("memory child ended before {expect}"))
            .expect("read child");
        let rest = line
            .strip_prefix(expect)
            .unwrap_or_else(|| panic!("memory child said {line:?}, expected {expect}"));
        rest.trim().to_owned()
    };
    let bytes_per_item = match what {
        "mem-task" => next("BYTES").parse::<f64>().expect("BYTES value"),
        "mem-tcp" => {
            let addr: std::net::SocketAddr = next("LISTEN").parse().expect("LISTEN addr");
            let clients = connect_clients(addr, n);
            let bytes = next("BYTES").parse::<f64>().expect("BYTES value");
            // Wake every reader with one byte; the child checks all of them arrived.
            for mut c in &clients {
                c.write_all(&[1]).expect("client write");
            }
            assert_eq!(next("OK"), "", "child did not confirm");
            drop(clients);
            bytes
        }
        other => panic!("unknown memory sample {other}"),
    };
    let status = child.wait().expect("wait child");
    assert!(status.success(), "memory child failed: {status}");
    bytes_per_item
}

/// Blocking connects from this process; SO_LINGER 0 so closing them leaves no
/// TIME_WAIT behind to eat the next round's ports. Each client binds its own source
/// port first: letting `connect` pick one costs a scan of the ephemeral range that grows
/// with the ports in use (~300 µs per connect at 19_000 connections), binding costs one
/// hash lookup.
fn connect_clients(addr: std::net::SocketAddr, n: usize) -> Vec<TcpStream> {
    let deadline = Instant::now() + CHILD_DEADLINE;
    let mut port = FIRST_CLIENT_PORT;
    (0..n)
        .map(|_| loop {
            assert!(Instant::now() < deadline, "connecting took too long");
            assert!(port < u16::MAX, "ran out of client ports");
            port += 1;
            let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                .expect("client socket");
            s.set_reuse_address(true).expect("SO_REUSEADDR");
            let local = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            if s.bind(&local.into()).is_err() {
                continue; // in use by someone else
            }
            if s.connect(&addr.into()).is_err() {
                continue; // this 4-tuple is still in TIME_WAIT
            }
            s.set_linger(Some(Duration::ZERO)).expect("linger");
            break TcpStream::from(s);
        })
        .collect()
}

/// Waits (polling every millisecond) until `done()`, or panics after the deadline.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + CHILD_DEADLINE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Child side of `mem-task`: prints `BYTES <per task>`.
pub fn child_idle_tasks<R: Runtime>(n: usize, workers: usize) {
    let rt = R::start(workers);
    let gate = Arc::new(Gate::new(n));
    // Warm up: threads started, thread-locals and lazy statics in place.
    rt.run(async {});
    trim_heap();
    let before = rss_bytes();
    let (countdown, done) = Countdown::new(n);
    let spawner = gate.clone();
    rt.run(async move {
        for i in 0..n {
            let gate = spawner.clone();
            let countdown = countdown.clone();
            drop(R::spawn(async move {
                gate.wait().await;
                countdown.arrive(i);
            }));
        }
    });
    wait_until("idle tasks to park", || gate.waiting() == n);
    trim_heap();
    let after = rss_bytes();
    println!("BYTES {}", after.saturating_sub(before) as f64 / n as f64);
    gate.open();
    let sum = futures::executor::block_on(done).expect("countdown dropped");
    assert_eq!(sum, index_sum(n), "an idle task did not finish");
}

/// Child side of `mem-tcp`: prints `LISTEN <addr>`, then `BYTES <per connection>` once
/// `n` connections are accepted and their readers parked, then `OK` once every reader
/// got its byte.
pub fn child_idle_tcp<R: Runtime>(n: usize, workers: usize) {
    crate::support::raise_fd_limit();
    let rt = R::start(workers);
    let std_listener = crate::tcp::listen().expect("listen");
    let addr = std_listener.local_addr().expect("local_addr");
    let parked = Arc::new(AtomicUsize::new(0));
    let (countdown, done) = Countdown::new(n);
    let counter = parked.clone();
    drop(rt.spawn_remote(async move {
        let listener = R::listener(std_listener).expect("listener");
        for _ in 0..n {
            let mut s = R::accept(&listener).await.expect("accept");
            let parked = counter.clone();
            let countdown = countdown.clone();
            drop(R::spawn(async move {
                let mut byte = [0u8; 1];
                {
                    let read = std::pin::pin!(R::read_exact(&mut s, &mut byte));
                    let first = FirstPending {
                        inner: read,
                        counter: &parked,
                        counted: false,
                    };
                    first.await.expect("read");
                }
                countdown.arrive(usize::from(byte[0]));
            }));
        }
    }));
    // Let the acceptor register and park before the baseline.
    std::thread::sleep(Duration::from_millis(50));
    trim_heap();
    let before = rss_bytes();
    println!("LISTEN {addr}");
    wait_until("connections to be accepted and parked", || {
        parked.load(Acquire) == n
    });
    trim_heap();
    let after = rss_bytes();
    println!("BYTES {}", after.saturating_sub(before) as f64 / n as f64);
    let sum = futures::executor::block_on(done).expect("countdown dropped");
    assert_eq!(sum, n, "a reader got the wrong byte");
    println!("OK");
}

/// Counts the first time the wrapped future returns `Pending` (it is then parked).
struct FirstPending<'a, F> {
    inner: F,
    counter: &'a AtomicUsize,
    counted: bool,
}

impl<F: Future + Unpin> Future for FirstPending<'_, F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let out = Pin::new(&mut self.inner).poll(cx);
        if out.is_pending() && !self.counted {
            self.counted = true;
            self.counter.fetch_add(1, Release);
        }
        out
    }
}

/// Start-up: `Runtime::start` plus one spawned task run to completion, in µs.
pub fn startup<R: Runtime>(workers: usize) -> f64 {
    let t = Instant::now();
    let rt = R::start(workers);
    let v = rt.run(async { 42 });
    let elapsed = t.elapsed().as_secs_f64() * 1e6;
    assert_eq!(v, 42);
    drop(rt);
    elapsed
}

/// Build, run a ready future in the runtime's own `block_on`, drop (µs): what a program
/// whose `main` is `block_on` pays before its first line runs, and after its last.
pub fn startup_block_on<R: Runtime>(workers: usize) -> f64 {
    let t = Instant::now();
    let rt = R::start(workers);
    let v = rt.block_on(async { 42 });
    drop(rt);
    let elapsed = t.elapsed().as_secs_f64() * 1e6;
    assert_eq!(v, 42);
    elapsed
}
