//! Test futures and helpers shared by the integration tests: futures that count their
//! polls and drops, outputs that count their drops, a gate to release blocked jobs, and a
//! bounded wait-for-condition loop.
//!
//! Each test file uses `mod support;` and only some of these, hence the `allow`.
#![allow(dead_code)]

use std::future::Future;
use std::io::Read;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, Once};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// How long any wait-for-condition may take before the test fails instead of hanging.
/// Generous: the machine is shared and the tests run in debug builds.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Polls and drops of one or more [`Tracked`] futures.
#[derive(Default, Debug)]
pub struct Counts {
    pub polls: AtomicUsize,
    pub drops: AtomicUsize,
}

impl Counts {
    pub fn new() -> Arc<Counts> {
        Arc::new(Counts::default())
    }
    pub fn polls(&self) -> usize {
        self.polls.load(SeqCst)
    }
    pub fn drops(&self) -> usize {
        self.drops.load(SeqCst)
    }
}

/// Wraps a future, counting its polls and its drop.
pub struct Tracked<F> {
    inner: Pin<Box<F>>,
    counts: Arc<Counts>,
}

pub fn tracked<F: Future>(counts: &Arc<Counts>, inner: F) -> Tracked<F> {
    Tracked {
        inner: Box::pin(inner),
        counts: counts.clone(),
    }
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.counts.polls.fetch_add(1, SeqCst);
        self.inner.as_mut().poll(cx)
    }
}

impl<F> Drop for Tracked<F> {
    fn drop(&mut self) {
        self.counts.drops.fetch_add(1, SeqCst);
    }
}

/// A task output that counts its drops.
#[derive(Debug)]
pub struct Out {
    pub value: usize,
    drops: Arc<AtomicUsize>,
}

impl Out {
    pub fn new(value: usize, drops: &Arc<AtomicUsize>) -> Out {
        Out {
            value,
            drops: drops.clone(),
        }
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        self.drops.fetch_add(1, SeqCst);
    }
}

/// Waits (polling every millisecond) until `cond` holds; fails the test after
/// [`PATIENCE`]. For conditions no channel can signal (a metric, a thread count).
#[track_caller]
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A counting gate: `pass` blocks until a permit is available; `open(n)` adds n permits.
#[derive(Default)]
pub struct Gate {
    permits: Mutex<usize>,
    cvar: Condvar,
}

impl Gate {
    pub fn new() -> Arc<Gate> {
        Arc::new(Gate::default())
    }
    pub fn open(&self, n: usize) {
        *self.permits.lock().unwrap() += n;
        self.cvar.notify_all();
    }
    /// Blocks for a permit; fails after [`PATIENCE`] so a broken test does not hang.
    pub fn pass(&self) {
        let mut permits = self.permits.lock().unwrap();
        let deadline = Instant::now() + PATIENCE;
        while *permits == 0 {
            let left = deadline
                .checked_duration_since(Instant::now())
                .expect("gate never opened");
            permits = self.cvar.wait_timeout(permits, left).unwrap().0;
        }
        *permits -= 1;
    }
}

/// Marks a panic a test provokes on purpose: the hook installed by
/// [`silence_expected_panics`] does not print it.
pub const EXPECTED: &str = "(expected test panic)";

/// Installs (once per test binary) a panic hook that stays quiet for panics whose message
/// contains [`EXPECTED`] or whose payload is an [`ExpectedPayload`], and prints the rest
/// as usual.
pub fn silence_expected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let msg = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
            let expected =
                msg.is_some_and(|m| m.contains(EXPECTED)) || payload.is::<ExpectedPayload>();
            if !expected {
                default(info);
            }
        }));
    });
}

/// A custom panic payload (for `std::panic::panic_any`).
#[derive(Debug, PartialEq, Eq)]
pub struct ExpectedPayload(pub u32);

/// The message of a caught panic payload (`&str` or `String`).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "<non-string payload>".to_owned())
}

pub fn runtime(workers: usize) -> runnel::Runtime {
    runnel::Builder::new()
        .worker_threads(workers)
        .build()
        .unwrap()
}

/// The environment variable that tells a child test (see [`run_child`]) it was started by
/// its parent, so `cargo test -- --ignored` run by hand does not run its body in a shared
/// test process (the children change process-wide state such as resource limits).
pub const CHILD_ENV: &str = "RUNNEL_TEST_CHILD";

/// Whether this process is the child started by [`run_child`] for `test`.
pub fn is_child(test: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == test)
}

/// Runs the `#[ignore]`d test `test` of this test binary alone in a child process, killing
/// it after `timeout` (its failure mode may be a hang). Returns whether it passed (false
/// on a kill), with its stdout and stderr.
pub fn run_child(test: &str, timeout: Duration) -> (bool, String) {
    let mut child = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            test,
            "--exact",
            "--ignored",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(CHILD_ENV, test)
        .env("RUST_BACKTRACE", "0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the child test process");
    // Read both pipes on threads so a chatty child cannot block on a full pipe.
    let mut readers = [
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .map(|pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    })
    .collect::<Vec<_>>();
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stderr = readers.pop().unwrap().join().unwrap();
    let stdout = readers.pop().unwrap().join().unwrap();
    let ran = stdout.contains("running 1 test");
    assert!(
        ran,
        "the child did not run exactly `{test}`:\n{stdout}\n{stderr}"
    );
    let passed = status.is_some_and(|s| s.success());
    let killed = if status.is_none() {
        format!("(killed after {timeout:?})\n")
    } else {
        String::new()
    };
    (passed, format!("{killed}{stdout}\n{stderr}"))
}

/// Worker threads of this process whose name (`/proc/self/task/*/comm`, truncated by the
/// kernel to 15 bytes) starts with `prefix`.
pub fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end().starts_with(prefix))
        .count()
}
