//! `Builder::dump_on_signal`: `kill -QUIT` prints the task dump on stderr and the process
//! keeps running (a `Signal` stream for the same signal still sees the delivery); with it
//! on, a deadlock is still reported (the listener is a plain thread, not an I/O waiter);
//! a signal that cannot be handled fails the build; the thread ends with the runtime.
#![cfg(unix)]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use runnel::signal::unix::{signal, SignalKind};
use runnel::{OnDeadlock, DEADLOCK_MESSAGE};
use support::{child_patience, is_child, CHILD_ENV};

/// Lines of a child's pipe, read on a thread so that a silent child fails the test at the
/// deadline instead of blocking the read.
fn lines_of(pipe: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        BufReader::new(pipe)
            .lines()
            .map_while(Result::ok)
            .try_for_each(|l| tx.send(l))
    });
    rx
}

/// Collects lines from `lines` into `seen` until one satisfies `until`; kills the child and
/// fails the test at `deadline` (or if the pipe ends first), showing `other`'s lines too.
fn read_until(
    child: &mut Child,
    lines: &Receiver<String>,
    seen: &mut Vec<String>,
    other: &Receiver<String>,
    deadline: Instant,
    what: &str,
    until: impl Fn(&str) -> bool,
) {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                let done = until(&line);
                seen.push(line);
                if done {
                    return;
                }
            }
            Err(e) => {
                let _ = child.kill();
                let other: Vec<_> = other.try_iter().collect();
                panic!("waiting for {what}: {e}; so far: {seen:#?}\nother pipe: {other:#?}");
            }
        }
    }
}

/// The child: a runtime with `dump_on_signal(SIGQUIT)`, a task waiting on a channel (its
/// spawn site must appear in the dump), a task listening for SIGQUIT itself, and
/// `block_on` waiting for a line on stdin, which the parent sends once it has seen the
/// dump. The parent sends SIGQUIT from outside (`kill(2)` on the child's pid).
#[test]
fn sigquit_prints_the_dump_and_the_process_keeps_running() {
    const NAME: &str = "sigquit_prints_the_dump_and_the_process_keeps_running";
    if is_child(NAME) {
        let rt = runnel::Builder::new()
            .worker_threads(2)
            .on_deadlock(OnDeadlock::Panic)
            .thread_name("sigquit-child")
            .dump_on_signal(Some(SignalKind::quit()))
            .build()
            .unwrap();
        // A thread names itself once it runs (the kernel truncates names to 15 bytes).
        support::wait_until("the dump thread runs", || {
            support::threads_named("sigquit-child-d") == 1
        });
        rt.block_on(async {
            let (tx, rx) = runnel::sync::oneshot::channel::<u32>();
            let line = line!() + 1;
            let waiter = runnel::spawn(async move { rx.await.unwrap() });
            let mut quits = signal(SignalKind::quit()).unwrap();
            let listener = runnel::spawn(async move { quits.recv().await });
            let handle = runnel::Handle::current();
            support::wait_until("the waiter waits", || {
                handle.dump().to_string().contains("recv on channel")
            });
            println!("waiter spawned at line {line}");
            println!("ready");
            // Blocks (on the blocking pool) until the parent saw the dump.
            let go = runnel::spawn_blocking(|| {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line).unwrap();
                line
            });
            assert_eq!(go.await.unwrap().trim(), "go on");
            assert_eq!(
                listener.await.unwrap(),
                Some(()),
                "the Signal saw SIGQUIT too"
            );
            tx.send(7).unwrap();
            assert_eq!(waiter.await.unwrap(), 7);
        });
        assert_eq!(rt.metrics().deadlock_reports, 0);
        drop(rt);
        assert_eq!(
            support::threads_named("sigquit-child-d"),
            0,
            "ends with the runtime"
        );
        println!("finished normally");
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, NAME)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + child_patience();
    let stdout = lines_of(child.stdout.take().unwrap());
    let stderr = lines_of(child.stderr.take().unwrap());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    read_until(
        &mut child,
        &stdout,
        &mut out,
        &stderr,
        deadline,
        "ready",
        |l| l.ends_with("ready"),
    );
    let line: u32 = out
        .iter()
        .find_map(|l| l.split("waiter spawned at line ").nth(1))
        .expect("the spawn line")
        .trim()
        .parse()
        .unwrap();
    // SAFETY: kill(2) on our own child's pid (not yet reaped, so not reused).
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGQUIT) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    let site = format!("(spawned at tests/dump_on_signal.rs:{line}:");
    read_until(
        &mut child,
        &stderr,
        &mut err,
        &stdout,
        deadline,
        "the dump",
        |l| l.contains(&site),
    );
    let header = format!("runnel: signal {}: task dump", libc::SIGQUIT);
    assert!(err.iter().any(|l| l.starts_with(&header)), "{err:#?}");
    assert!(
        err.iter().any(|l| l.starts_with("runnel task dump: ")),
        "{err:#?}"
    );
    let waiter = err.iter().find(|l| l.contains(&site)).unwrap();
    assert!(waiter.contains("waits on: recv on channel 0x"), "{waiter}");
    // Still running: it answers, then exits normally.
    writeln!(child.stdin.as_mut().unwrap(), "go on").unwrap();
    read_until(
        &mut child,
        &stdout,
        &mut out,
        &stderr,
        deadline,
        "the end",
        |l| l.contains("finished normally"),
    );
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("the child did not exit: {out:#?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    err.extend(stderr.iter());
    assert!(status.success(), "{status}: {out:#?}\n{err:#?}");
    assert!(
        !err.iter().any(|l| l.contains(DEADLOCK_MESSAGE)),
        "{err:#?}"
    );
}

/// The point of the plain-thread listener: with `dump_on_signal` on, a deadlocked program
/// is still reported (a task listening for the signal would be an I/O waiter and hide it).
#[test]
fn a_deadlock_is_still_reported_with_dump_on_signal() {
    support::in_child_process("a_deadlock_is_still_reported_with_dump_on_signal", || {
        let rt = runnel::Builder::new()
            .worker_threads(2)
            .on_deadlock(OnDeadlock::Panic)
            .dump_on_signal(Some(SignalKind::quit()))
            .build()
            .unwrap();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(async {
                let worker = runnel::spawn(async {
                    let inner = runnel::spawn(std::future::pending::<()>());
                    inner.await.unwrap();
                });
                worker.await.unwrap();
            })
        }));
        let report = support::panic_message(&*caught.expect_err("a deadlock report"));
        assert!(report.starts_with(DEADLOCK_MESSAGE), "{report}");
        assert_eq!(rt.metrics().deadlock_reports, 1);
    });
}

#[test]
fn a_signal_that_cannot_be_handled_fails_the_build() {
    for refused in [libc::SIGKILL, libc::SIGSTOP, 0] {
        let err = runnel::Builder::new()
            .worker_threads(1)
            .dump_on_signal(Some(SignalKind::from_raw(refused)))
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
    }
}
