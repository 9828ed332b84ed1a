//! Test futures and helpers shared by the integration tests: futures that count their
//! polls and drops, outputs that count their drops, a gate to release blocked jobs, and a
//! bounded wait-for-condition loop.
//!
//! Each test file uses `mod support;` and only some of these, hence the `allow`.
#![allow(dead_code)]

use std::future::Future;
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
    builder(workers).build().unwrap()
}

/// A multi-thread runtime whatever [`FLAVOR_ENV`] says: for tests whose tasks must run
/// while no thread is in `block_on` (a task polled while the test thread waits on a
/// std channel), which a current-thread runtime cannot do by design.
pub fn multi_thread(workers: usize) -> runnel::Runtime {
    runnel::Builder::new()
        .worker_threads(workers)
        .build()
        .unwrap()
}

/// Set to `current_thread` to run every suite that builds its runtime with [`builder`] or
/// [`runtime`] on a current-thread runtime instead (`.ci/run` runs those suites both ways).
pub const FLAVOR_ENV: &str = "RUNNEL_TEST_FLAVOR";

/// Whether this run uses current-thread runtimes (see [`FLAVOR_ENV`]).
pub fn current_thread() -> bool {
    std::env::var(FLAVOR_ENV).is_ok_and(|v| v == "current_thread")
}

/// A builder with `workers` worker threads, or a current-thread builder (see
/// [`FLAVOR_ENV`]; `workers` is then ignored).
pub fn builder(workers: usize) -> runnel::Builder {
    if current_thread() {
        return runnel::Builder::new_current_thread();
    }
    let mut builder = runnel::Builder::new();
    builder.worker_threads(workers);
    builder
}

/// The environment variable that tells a test binary it runs as a child (its value is the
/// name of the test to act out).
pub const CHILD_ENV: &str = "RUNNEL_TEST_CHILD";

/// Whether this process is the child acting out test `name` (see [`run_child`]).
pub fn is_child(name: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == name)
}

/// What a child process did.
#[derive(Debug)]
pub struct ChildOutput {
    /// `None`: killed after [`child_patience`] (it hung).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs test `name` of this test binary again in a child process, with [`CHILD_ENV`] set
/// so the test acts out its scenario instead of supervising it. A child still running
/// after [`child_patience`] is killed (`code: None`): a hang fails the test instead of the
/// suite.
pub fn run_child(name: &str) -> ChildOutput {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(std::env::current_exe().unwrap())
        // `--include-ignored`: a child-only scenario may be an ignored test of its own.
        .args([
            name,
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "--include-ignored",
        ])
        .env(CHILD_ENV, name)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read both pipes on threads: a child blocked on a full pipe would look hung.
    let collect = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = collect(Box::new(child.stdout.take().unwrap()));
    let stderr = collect(Box::new(child.stderr.take().unwrap()));
    // A bounded wait (like `wait_until`): `Child` offers no wait with a timeout.
    let deadline = Instant::now() + child_patience();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    ChildOutput {
        code,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// How long a child may run before it counts as hung: twice [`PATIENCE`], times
/// `RUNNEL_TEST_SLOWDOWN` (a whole number; `.ci/sanitize` sets it, since a sanitizer makes
/// the same work several times slower).
pub fn child_patience() -> Duration {
    let slowdown: u32 = std::env::var("RUNNEL_TEST_SLOWDOWN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    2 * PATIENCE * slowdown.max(1)
}

/// Runs `scenario` in a child process (see [`run_child`]; `test_name` must be the calling
/// test's name), so that a scenario whose failure mode is a hang fails the test instead of
/// hanging the suite. In the child, it runs `scenario` directly; the parent asserts the
/// child passed and prints its output.
#[track_caller]
pub fn in_child_process(test_name: &str, scenario: impl FnOnce()) {
    if is_child(test_name) {
        scenario();
        return;
    }
    let child = run_child(test_name);
    println!(
        "child stdout:\n{}\nchild stderr:\n{}",
        child.stdout, child.stderr
    );
    let code = child.code.unwrap_or_else(|| {
        panic!(
            "the child running {test_name} hung: killed after {:?}",
            child_patience()
        )
    });
    assert_eq!(code, 0, "the child running {test_name} failed");
    assert!(
        child.stdout.contains("1 passed"),
        "the child did not run {test_name}"
    );
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
