//! The README's rule for holders outside the runtime, each tried as an ordinary program
//! would: a thread holding a `Handle`, a `JoinHandle` made or kept outside, an
//! `AbortHandle` on a foreign thread. None of these is a deadlock (the holder may still
//! spawn or abort), so none may be reported; the scenarios that can only end by exiting
//! the process run in a child process.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use runnel::{OnDeadlock, DEADLOCK_MESSAGE};
use support::{run_child, wait_until};

/// Pending forever; prints `marker` and exits the process with 0 when dropped (a task
/// aborted or cancelled drops its future on a worker).
struct ExitOnDrop(&'static str);

impl Future for ExitOnDrop {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

impl Drop for ExitOnDrop {
    fn drop(&mut self) {
        println!("{}", self.0);
        std::process::exit(0);
    }
}

fn panicking_runtime() -> runnel::Runtime {
    panicking(support::builder(2))
}

fn panicking(mut builder: runnel::Builder) -> runnel::Runtime {
    builder
        .on_deadlock(OnDeadlock::Panic)
        .stall_report_after(Some(std::time::Duration::from_millis(50)))
        .build()
        .unwrap()
}

/// The daemon pattern from the hardening issue: `block_on(pending())` while a thread holds
/// a `Handle` and later spawns the task that ends the program. It used to panic "all tasks
/// are asleep" within milliseconds.
#[test]
fn a_thread_holding_a_handle_may_still_spawn() {
    const NAME: &str = "a_thread_holding_a_handle_may_still_spawn";
    if support::is_child(NAME) {
        let rt = panicking_runtime();
        let handle = rt.handle().clone();
        let reader = rt.handle().metrics_reader();
        std::thread::spawn(move || {
            // Let the check conclude "maybe" a few times while only the Handle is out.
            let checks = reader.snapshot().deadlock_checks;
            wait_until("five checks", || {
                reader.snapshot().deadlock_checks >= checks + 5
            });
            handle.spawn(async {
                println!("spawned by the daemon thread");
                std::process::exit(0)
            });
        });
        rt.block_on(std::future::pending::<()>());
    }
    let child = run_child(NAME);
    assert_eq!(child.code, Some(0), "{child:?}");
    assert!(
        child.stdout.contains("spawned by the daemon thread"),
        "{child:?}"
    );
    assert!(!child.stderr.contains(DEADLOCK_MESSAGE), "{child:?}");
}

/// No `block_on` at all: the main thread keeps a `JoinHandle` (and the `Runtime`) and
/// aborts the task later. It used to be "reported" at spawn time.
#[test]
fn a_join_handle_kept_by_the_main_thread_without_block_on() {
    // Multi-thread only: the task must run (and the checks happen) with no `block_on`.
    let mut builder = runnel::Builder::new();
    builder.worker_threads(2);
    let rt = panicking(builder);
    let stuck = rt.spawn(std::future::pending::<()>());
    let checks = rt.metrics().deadlock_checks;
    wait_until("five checks", || rt.metrics().deadlock_checks >= checks + 5);
    assert_eq!(rt.metrics().deadlock_reports, 0, "{:?}", rt.metrics());
    stuck.abort();
    let result = futures::executor::block_on(stuck);
    assert!(result.unwrap_err().is_cancelled());
    assert_eq!(rt.metrics().deadlock_reports, 0);
}

/// A `JoinHandle` made on a foreign thread (through a `Handle` it then drops) while
/// `block_on` waits: the thread may abort the task at any time. Only a stall report, which
/// names the holder; then the abort ends the program.
#[test]
fn a_join_handle_made_outside_may_abort() {
    const NAME: &str = "a_join_handle_made_outside_may_abort";
    if support::is_child(NAME) {
        let rt = panicking_runtime();
        let handle = rt.handle().clone();
        let reader = rt.handle().metrics_reader();
        std::thread::spawn(move || {
            let task = handle.spawn(ExitOnDrop("aborted from outside"));
            drop(handle);
            wait_until("a stall report", || reader.snapshot().stall_reports >= 1);
            task.abort();
        });
        rt.block_on(std::future::pending::<()>());
    }
    let child = run_child(NAME);
    assert_eq!(child.code, Some(0), "{child:?}");
    assert!(child.stdout.contains("aborted from outside"), "{child:?}");
    assert!(!child.stderr.contains(DEADLOCK_MESSAGE), "{child:?}");
    assert!(
        child.stderr.contains("stall report")
            && child
                .stderr
                .contains("its JoinHandle, held outside the runtime"),
        "the stall report names the JoinHandle outside: {child:?}"
    );
}

/// An `AbortHandle` given to a foreign thread: the task is not stuck while it exists.
#[test]
fn an_abort_handle_on_a_foreign_thread_may_abort() {
    let rt = panicking_runtime();
    let reader = rt.handle().metrics_reader();
    let result = rt.block_on(async move {
        let task = runnel::spawn(std::future::pending::<()>());
        let abort = task.abort_handle();
        let aborter = std::thread::spawn(move || {
            wait_until("a stall report", || reader.snapshot().stall_reports >= 1);
            abort.abort();
        });
        let result = task.await;
        aborter.join().unwrap();
        result
    });
    assert!(result.unwrap_err().is_cancelled());
    let m = rt.metrics();
    assert_eq!(m.deadlock_reports, 0, "{m:?}");
    assert_eq!(m.stall_reports, 1, "{m:?}");
}

/// The rule still reports what is certain: with every holder lent to `block_on`, a task
/// whose `JoinHandle` was made outside but is now awaited inside is stuck.
#[test]
fn a_join_handle_awaited_inside_is_inside_again() {
    let rt = panicking_runtime();
    let stuck = rt.spawn(std::future::pending::<()>());
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(stuck)))
        .expect_err("a certain deadlock must be reported");
    let report = support::panic_message(&*payload);
    assert!(report.starts_with(DEADLOCK_MESSAGE), "{report}");
}

/// A waker stashed in a static is a holder the runtime cannot see: no report while it is
/// there, and a wake through it (from a thread that never held a `Handle`) completes the
/// program.
#[test]
fn a_waker_stashed_in_a_static_may_still_wake() {
    support::in_child_process("a_waker_stashed_in_a_static_may_still_wake", || {
        use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
        use std::sync::Mutex;
        use std::task::Waker;

        static STASH: Mutex<Option<Waker>> = Mutex::new(None);
        static WOKEN: AtomicBool = AtomicBool::new(false);

        let rt = panicking_runtime();
        let reader = rt.handle().metrics_reader();
        let waker_thread = std::thread::spawn(move || {
            wait_until("a stall report", || reader.snapshot().stall_reports >= 1);
            WOKEN.store(true, SeqCst);
            let waker = STASH
                .lock()
                .unwrap()
                .take()
                .expect("the task stashed its waker");
            waker.wake();
        });
        rt.block_on(async {
            runnel::spawn(std::future::poll_fn(|cx| {
                if WOKEN.load(SeqCst) {
                    return Poll::Ready(());
                }
                *STASH.lock().unwrap() = Some(cx.waker().clone());
                Poll::Pending
            }))
            .await
            .unwrap()
        });
        waker_thread.join().unwrap();
        let m = rt.metrics();
        assert_eq!(m.deadlock_reports, 0, "{m:?}");
        assert_eq!(m.stall_reports, 1, "{m:?}");
    });
}
