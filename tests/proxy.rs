//! `examples/proxy.rs` run as a user runs it: the test builds the example with cargo,
//! starts it as a child process between the test's clients and an echo upstream (plain
//! threads and `std` sockets here, so nothing on the test side depends on runnel), pushes
//! byte patterns through it, and stops it with `kill -INT`.
//!
//! Each client sends an 8-byte seed, then `len` bytes of the seed's pattern, then closes
//! its write side. The upstream checks every byte it receives against the pattern and
//! echoes it; the client checks every byte it gets back, and that the echo ends (the
//! upstream's close, passed on by the proxy) right after the last one. A lost, repeated,
//! reordered or corrupted chunk fails one of the two checks.
//!
//! Synchronisation is by the child's stdout lines (read through a channel with a
//! deadline) and by the clients' own reads: no sleeps.
#![cfg(unix)]

mod support;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::Instant;

use support::PATIENCE;

// ---------------------------------------------------------------------------------------
// The byte pattern

/// Byte `i` of the pattern for `seed`: a hash of (seed, i / 8), so the stream has no
/// period a misplaced chunk could hide in.
fn pattern_word(seed: u64, word: u64) -> [u8; 8] {
    // splitmix64's finaliser over the seed and the word index.
    let mut z = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(word.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)).to_le_bytes()
}

/// Fills `buf` with the pattern's bytes from `offset` on.
fn fill(seed: u64, offset: u64, buf: &mut [u8]) {
    for (k, b) in buf.iter_mut().enumerate() {
        let i = offset + k as u64;
        *b = pattern_word(seed, i / 8)[(i % 8) as usize];
    }
}

/// Panics at the first byte of `got` (at `offset` in the stream) that is not the pattern's.
#[track_caller]
fn check(seed: u64, offset: u64, got: &[u8], who: &str) {
    let mut want = vec![0u8; got.len()];
    fill(seed, offset, &mut want);
    if let Some(k) = got.iter().zip(&want).position(|(g, w)| g != w) {
        panic!(
            "{who} (seed {seed}): byte {} is {:#04x}, the pattern has {:#04x}",
            offset + k as u64,
            got[k],
            want[k]
        );
    }
}

const CHUNK: usize = 64 * 1024;

// ---------------------------------------------------------------------------------------
// The echo upstream

/// What the upstream saw on one connection: its seed and the pattern bytes it checked.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    seed: u64,
    bytes: u64,
}

/// An echo server on its own threads that checks the pattern of everything it echoes.
/// Each connection's summary arrives on `seen` when the proxy closed its write side.
struct Upstream {
    addr: SocketAddr,
    seen: Receiver<Seen>,
}

fn upstream() -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, seen) = mpsc::channel();
    // The accept thread ends when the test process does (it blocks in accept).
    thread::spawn(move || {
        for conn in listener.incoming() {
            let conn = conn.expect("upstream accept");
            let tx = tx.clone();
            thread::spawn(move || {
                if let Some(seen) = echo_and_check(conn) {
                    let _ = tx.send(seen);
                }
            });
        }
    });
    Upstream { addr, seen }
}

/// Echoes until end of file, checking the seed's pattern; `None` if the connection ended
/// without a seed (a client that never sent one, an aborted connection).
fn echo_and_check(mut conn: TcpStream) -> Option<Seen> {
    let mut seed = [0u8; 8];
    conn.read_exact(&mut seed).ok()?;
    conn.write_all(&seed).ok()?;
    let seed = u64::from_le_bytes(seed);
    let mut buf = vec![0u8; CHUNK];
    let mut offset = 0u64;
    loop {
        let n = match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            // An aborted proxy connection resets: nothing to report.
            Err(_) => return None,
        };
        check(seed, offset, &buf[..n], "upstream received");
        offset += n as u64;
        conn.write_all(&buf[..n]).ok()?;
    }
    // Closing our side is the end of the echo the client waits for.
    conn.shutdown(Shutdown::Write).ok()?;
    Some(Seen {
        seed,
        bytes: offset,
    })
}

// ---------------------------------------------------------------------------------------
// Clients

/// Sends the seed and `len` pattern bytes through `addr`, closes its write side, and
/// checks the echo (every byte, then end of file). A writer thread sends while this
/// thread reads, so a transfer larger than the socket buffers cannot stall. Returns the
/// bytes sent (seed included), which is also what came back.
fn round_trip(addr: SocketAddr, seed: u64, len: u64) -> u64 {
    let conn = TcpStream::connect(addr).expect("connect to the proxy");
    round_trip_on(conn, seed, len)
}

fn round_trip_on(mut conn: TcpStream, seed: u64, len: u64) -> u64 {
    let mut writer = conn.try_clone().unwrap();
    let sender = thread::spawn(move || {
        writer.write_all(&seed.to_le_bytes()).unwrap();
        let mut buf = vec![0u8; CHUNK];
        let mut offset = 0;
        while offset < len {
            let n = (len - offset).min(CHUNK as u64) as usize;
            fill(seed, offset, &mut buf[..n]);
            writer.write_all(&buf[..n]).unwrap();
            offset += n as u64;
        }
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut echoed_seed = [0u8; 8];
    conn.read_exact(&mut echoed_seed).unwrap();
    assert_eq!(u64::from_le_bytes(echoed_seed), seed, "the seed came back");
    let mut buf = vec![0u8; CHUNK];
    let mut offset = 0u64;
    loop {
        let n = conn.read(&mut buf).expect("read the echo");
        if n == 0 {
            break;
        }
        assert!(
            offset + n as u64 <= len,
            "seed {seed}: more bytes came back than were sent"
        );
        check(seed, offset, &buf[..n], "client received");
        offset += n as u64;
    }
    assert_eq!(offset, len, "seed {seed}: the echo ended early");
    sender.join().unwrap();
    8 + len
}

/// Echoes `msg` once on an open connection (proving the proxy forwards it now).
fn echo_once(conn: &mut TcpStream, msg: &[u8]) {
    conn.write_all(msg).unwrap();
    let mut buf = vec![0u8; msg.len()];
    conn.read_exact(&mut buf).unwrap();
    assert_eq!(buf, msg);
}

// ---------------------------------------------------------------------------------------
// The proxy process

/// Builds `examples/proxy.rs` with the cargo running this test, in this test's profile,
/// and returns the binary's path (`target/<profile>/examples/proxy`). `cargo test` builds
/// the examples anyway; this also makes `cargo test --test proxy` alone work, and a stale
/// binary impossible.
fn proxy_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/proxy-<hash>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary lives in target/<profile>/deps");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(other) => other,
        None => panic!("unexpected test binary path {}", exe.display()),
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--example",
            "proxy",
            "--profile",
            profile,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo to build the proxy example");
    assert!(status.success(), "cargo build --example proxy: {status}");
    let binary = profile_dir.join("examples").join("proxy");
    assert!(
        binary.exists(),
        "cargo built the example but {} is not there (a --target build?)",
        binary.display()
    );
    binary
}

/// The proxy child: its stdout lines arrive through a thread, so a silent child fails the
/// test at the deadline instead of blocking it. Killed on drop if still running.
struct Proxy {
    child: Child,
    lines: Receiver<String>,
    output: Vec<String>,
    deadline: Instant,
}

impl Proxy {
    fn start(upstream: SocketAddr, options: &[&str]) -> (Proxy, SocketAddr) {
        let mut child = Command::new(proxy_binary())
            .arg("127.0.0.1:0")
            .arg(upstream.to_string())
            .args(options)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the proxy example");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            stdout
                .lines()
                .map_while(Result::ok)
                .try_for_each(|l| tx.send(l))
        });
        let mut proxy = Proxy {
            child,
            lines,
            output: Vec::new(),
            deadline: Instant::now() + 3 * PATIENCE,
        };
        let line = proxy.line_starting("listening on ");
        let addr = line["listening on ".len()..]
            .split(',')
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|e| panic!("no address in {line:?}: {e}"));
        (proxy, addr)
    }

    /// Waits for the next line starting with `prefix` (earlier lines are kept in
    /// `output`).
    fn line_starting(&mut self, prefix: &str) -> String {
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.output.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("the proxy never printed {prefix:?}: {:?}", self.output)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().unwrap();
                    panic!(
                        "the proxy exited ({status}) before printing {prefix:?}: {:?}",
                        self.output
                    )
                }
            }
        }
    }

    fn interrupt(&self) {
        // SAFETY: kill(2) on our own child's pid (not yet reaped, so not reused).
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        assert_eq!(rc, 0, "kill -INT: {}", std::io::Error::last_os_error());
    }

    /// Waits for the process to exit; returns its status and every line it printed.
    fn exit(mut self) -> (ExitStatus, Vec<String>) {
        // The child's stdout closes when it exits (nothing else holds it): the line
        // channel disconnecting is the exit, observed without polling.
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.output.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("the proxy did not exit: {:?}", self.output)
                }
            }
        }
        let status = self.child.wait().unwrap();
        (status, std::mem::take(&mut self.output))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Asserts that connecting to `addr` is refused (the proxy closed its listener).
fn assert_refused(addr: SocketAddr) {
    match TcpStream::connect(addr) {
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
        other => panic!("a connection after the shutdown signal: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Tests

/// Several connections at once, one of 16 MiB, carried intact both ways; then a
/// connection open at SIGINT is still served during the drain (2 MiB more), a new one is
/// refused, the drain ends when the open one closes, and the proxy exits 0 saying so,
/// with byte counts equal to what the clients sent.
#[test]
fn carries_patterns_and_drains_open_connections_on_sigint() {
    let upstream = upstream();
    let (mut proxy, addr) = Proxy::start(upstream.addr, &["--drain-ms", "120000"]);

    let sizes: [u64; 5] = [16 << 20, (3 << 20) + 17, 100_000, 1, 0];
    let clients: Vec<_> = sizes
        .iter()
        .enumerate()
        .map(|(i, &len)| thread::spawn(move || round_trip(addr, i as u64 + 1, len)))
        .collect();
    let mut sent: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();

    // A connection open when the signal comes; the echo proves the proxy has set it up.
    let held_seed = 99;
    let mut held = TcpStream::connect(addr).unwrap();
    echo_once(&mut held, &u64::to_le_bytes(held_seed));
    proxy.interrupt();
    let line = proxy.line_starting("SIGINT: ");
    // The held connection is open; a finished one may not have been reaped yet (on the
    // multi-thread runtime its task can complete a moment after its client saw the end),
    // so the count is 1 or a little more, and the drain must account for each of them.
    let open: usize = line
        .strip_prefix("SIGINT: stopped accepting; draining ")
        .and_then(|rest| rest.strip_suffix(" open connections for at most 120000 ms"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected shutdown line {line:?}"));
    assert!((1..=6).contains(&open), "{line}");
    assert_refused(addr);

    // Still served while the proxy drains (the seed was already sent and echoed).
    let len = 2 << 20;
    let writer = held.try_clone().unwrap();
    let tail = thread::spawn(move || {
        // The seed went through above: continue with the pattern's bytes from 0.
        let mut writer = writer;
        let mut buf = vec![0u8; CHUNK];
        let mut offset = 0;
        while offset < len {
            let n = (len - offset).min(CHUNK as u64) as usize;
            fill(held_seed, offset, &mut buf[..n]);
            writer.write_all(&buf[..n]).unwrap();
            offset += n as u64;
        }
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut got = 0u64;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = held.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        check(held_seed, got, &buf[..n], "held client received");
        got += n as u64;
    }
    tail.join().unwrap();
    assert_eq!(got, len, "the held connection's echo ended early");
    sent += 8 + len;

    let (status, output) = proxy.exit();
    assert!(status.success(), "proxy exit: {status}; output: {output:?}");
    let drained = format!("drained {open} connections, aborted 0");
    assert!(output.contains(&drained), "want {drained:?} in {output:?}");
    let served = format!("served 6 connections (0 failed): {sent} bytes up, {sent} bytes down");
    assert!(output.contains(&served), "want {served:?} in {output:?}");

    // The upstream checked every connection's bytes against its seed.
    let mut seen: Vec<Seen> = (0..6)
        .map(|_| {
            upstream
                .seen
                .recv_timeout(PATIENCE)
                .expect("upstream summary")
        })
        .collect();
    seen.sort();
    let mut want: Vec<Seen> = sizes
        .iter()
        .enumerate()
        .map(|(i, &len)| Seen {
            seed: i as u64 + 1,
            bytes: len,
        })
        .chain([Seen {
            seed: held_seed,
            bytes: len,
        }])
        .collect();
    want.sort();
    assert_eq!(seen, want);
}

/// On the current-thread runtime: a connection still open at the drain deadline is
/// aborted (its client sees the connection end), and the proxy still exits 0, counting it.
#[test]
fn aborts_connections_open_at_the_deadline_on_a_current_thread_runtime() {
    let upstream = upstream();
    let (mut proxy, addr) = Proxy::start(upstream.addr, &["--current-thread", "--drain-ms", "200"]);
    let sent = round_trip(addr, 7, 1 << 20);

    let mut idle = TcpStream::connect(addr).unwrap();
    echo_once(&mut idle, &u64::to_le_bytes(8));
    proxy.interrupt();
    let line = proxy.line_starting("SIGINT: ");
    assert_eq!(
        line,
        "SIGINT: stopped accepting; draining 1 open connections for at most 200 ms"
    );
    // The client never closes: only the deadline ends the drain.
    let (status, output) = proxy.exit();
    assert!(status.success(), "proxy exit: {status}; output: {output:?}");
    assert!(
        output
            .iter()
            .any(|l| l == "drained 0 connections, aborted 1"),
        "output: {output:?}"
    );
    let served = format!("served 2 connections (0 failed): {sent} bytes up, {sent} bytes down");
    assert!(output.contains(&served), "want {served:?} in {output:?}");
    // The aborted connection's sockets were closed.
    let mut buf = [0u8; 1];
    let after = idle.read(&mut buf);
    assert!(
        matches!(after, Ok(0)) || after.is_err(),
        "the aborted connection is closed: {after:?}"
    );
    assert_refused(addr);
    // The upstream checked the completed connection's bytes. (The aborted one may report
    // too, with what it saw before the abort: skipped.)
    let seven = loop {
        let seen = upstream
            .seen
            .recv_timeout(PATIENCE)
            .expect("upstream summary");
        if seen.seed == 7 {
            break seen;
        }
    };
    assert_eq!(seven.bytes, 1 << 20);
}
