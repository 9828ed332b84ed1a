//! Accept under file-descriptor exhaustion: `accept` returns `EMFILE` (it does not hang), and
//! a server loop that backs off with `sleep` makes a bounded number of attempts.
//!
//! The scenario lowers `RLIMIT_NOFILE`, which would starve every other test of this binary,
//! so it runs in a child process: the test re-executes its own binary, filtered to itself,
//! with `RUNNEL_EMFILE_CHILD` set.

// The reactor's test driver, shared rather than copied.
#[path = "../../reactor/tests/common/mod.rs"]
mod common;

use std::io;
use std::time::{Duration, Instant};

use common::BackgroundDriver;
use runnel_net::{TcpListener, TcpStream};
use runnel_reactor::time::sleep;

const CHILD_ENV: &str = "RUNNEL_EMFILE_CHILD";
const TEST_NAME: &str = "accept_reports_emfile_and_backoff_bounds_retries";

#[test]
fn accept_reports_emfile_and_backoff_bounds_retries() {
    if std::env::var_os(CHILD_ENV).is_some() {
        child();
        return;
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("child stdout:\n{stdout}\nchild stderr:\n{stderr}");
    assert!(output.status.success(), "child failed: {}", output.status);
    assert!(
        stdout.contains("1 passed"),
        "the child did not run the scenario"
    );
}

fn is_emfile(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EMFILE)
}

fn child() {
    let rt = BackgroundDriver::start();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // A client whose connection waits in the backlog: the listener is readable.
        let client = std::net::TcpStream::connect(addr).unwrap();

        lower_fd_limit(64);
        let mut hoard = Vec::new();
        loop {
            match std::fs::File::open("/dev/null") {
                Ok(file) => hoard.push(file),
                Err(e) if is_emfile(&e) => break,
                Err(e) => panic!("unexpected error filling the fd table: {e}"),
            }
        }

        // 1. accept reports the exhaustion instead of hanging or spinning inside.
        let err = listener.accept().await.unwrap_err();
        assert!(is_emfile(&err), "expected EMFILE, got {err}");

        // 2. A loop that backs off between retries makes few attempts per period.
        let period = Duration::from_millis(200);
        let start = Instant::now();
        let mut attempts = 0u32;
        while start.elapsed() < period {
            match listener.accept().await {
                Err(e) if is_emfile(&e) => {
                    attempts += 1;
                    sleep(Duration::from_millis(10)).await;
                }
                other => panic!("fds are still exhausted, got {other:?}"),
            }
        }
        println!("backoff loop: {attempts} accept attempts in {period:?}");
        assert!(attempts >= 2, "the loop did retry");
        assert!(attempts < 1000, "{attempts} attempts: the loop spins");

        // For comparison (printed, not asserted: it depends on machine speed): no backoff.
        let spin_start = Instant::now();
        let mut spins = 0u32;
        while spin_start.elapsed() < Duration::from_millis(20) {
            assert!(is_emfile(&listener.accept().await.unwrap_err()));
            spins += 1;
        }
        println!("spinning loop: {spins} accept attempts in 20ms");

        // 3. Once descriptors come back, the same pending connection is accepted.
        drop(hoard);
        let (stream, peer): (TcpStream, _) = listener.accept().await.unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        drop(stream);
    });
}

fn lower_fd_limit(soft: libc::rlim_t) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: 1. `limit` is a valid, writable `rlimit` for the duration of the call;
    // 2. getrlimit only writes into it.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(rc, 0, "getrlimit: {}", io::Error::last_os_error());
    limit.rlim_cur = soft.min(limit.rlim_max);
    // SAFETY: 1. `limit` is a valid `rlimit` that setrlimit only reads; 2. lowering the soft
    // limit of this (child) process affects no memory, only later fd allocations.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    assert_eq!(rc, 0, "setrlimit: {}", io::Error::last_os_error());
}
