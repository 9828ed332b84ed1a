//! The stall report fires only when nothing but holders the runtime cannot see remain, and
//! says what is known. Each "no report" case runs with a 20 ms `stall_report_after` and
//! lasts well past it (at least ten quiet checks and five periods), so a stall report that
//! should not happen has every chance to.

mod support;

use std::time::{Duration, Instant};

use runnel::{OnDeadlock, Runtime};
use support::{run_child, wait_until, Gate};

const PERIOD: Duration = Duration::from_millis(20);

fn runtime() -> Runtime {
    support::builder(2)
        .on_deadlock(OnDeadlock::Panic)
        .stall_report_after(Some(PERIOD))
        .build()
        .unwrap()
}

/// Waits until the runtime ran ten more checks and five stall periods passed.
fn quiet_window(reader: &runnel::MetricsReader) {
    let start = Instant::now();
    let checks = reader.snapshot().deadlock_checks;
    wait_until("ten quiet checks over five periods", || {
        reader.snapshot().deadlock_checks >= checks + 10 && start.elapsed() >= 5 * PERIOD
    });
}

fn assert_silent(rt: &Runtime) {
    let m = rt.metrics();
    assert_eq!(m.stall_reports, 0, "{m:?}");
    assert_eq!(m.deadlock_reports, 0, "{m:?}");
}

#[test]
fn an_idle_server_in_accept() {
    let rt = runtime();
    let listener = rt
        .block_on(runnel::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = rt.handle().metrics_reader();
    let client = std::thread::spawn(move || {
        quiet_window(&reader);
        std::net::TcpStream::connect(addr).unwrap()
    });
    rt.block_on(async { listener.accept().await.unwrap() });
    client.join().unwrap();
    assert_silent(&rt);
}

#[test]
fn only_an_armed_timer() {
    let rt = runtime();
    // Ten stall periods during which nothing runs and the only wait is the timer.
    rt.block_on(runnel::time::sleep(10 * PERIOD));
    assert_silent(&rt);
}

#[test]
fn while_a_blocking_job_runs() {
    let rt = runtime();
    let gate = Gate::new();
    let reader = rt.handle().metrics_reader();
    let start = Instant::now();
    let opener = {
        let gate = gate.clone();
        std::thread::spawn(move || {
            // No check runs while a job does (the runtime is not quiet), so the window is
            // the time alone: ten stall periods with nothing else happening.
            wait_until("ten periods", || start.elapsed() >= 10 * PERIOD);
            drop(reader);
            gate.open(1);
        })
    };
    rt.block_on(rt.spawn_blocking(move || gate.pass())).unwrap();
    opener.join().unwrap();
    assert_silent(&rt);
}

#[test]
fn while_block_on_itself_makes_progress() {
    let rt = runtime();
    let start = Instant::now();
    rt.block_on(async {
        // Only block_on polls: its future wakes itself until the window has passed.
        while start.elapsed() < 10 * PERIOD {
            runnel::task::yield_now().await;
        }
    });
    assert_silent(&rt);
}

/// A task waits on a third-party channel whose sender a foreign thread holds: the report
/// says so, names the task's spawn location and what block_on waits on, and never claims
/// "no waker of it is held anywhere" for a task whose waker is held.
#[test]
fn the_report_says_what_is_known() {
    const NAME: &str = "the_report_says_what_is_known";
    if support::is_child(NAME) {
        let rt = runtime();
        let reader = rt.handle().metrics_reader();
        let (tx, rx) = futures::channel::oneshot::channel::<u32>();
        let sender = std::thread::spawn(move || {
            wait_until("a stall report", || reader.snapshot().stall_reports >= 1);
            tx.send(7).unwrap();
        });
        let got = rt.block_on(async { runnel::spawn(rx).await.unwrap().unwrap() });
        sender.join().unwrap();
        println!("received {got}");
        return;
    }
    let child = run_child(NAME);
    assert_eq!(child.code, Some(0), "{child:?}");
    assert!(child.stdout.contains("received 7"), "{child:?}");
    let report = &child.stderr;
    assert!(report.contains("stall report"), "{report}");
    assert!(
        report.contains("wakers of 1 task(s) held outside the runtime"),
        "{report}"
    );
    assert!(
        report.contains("waits on: a waker held outside the runtime (1 reference)"),
        "{report}"
    );
    assert!(
        report.contains("(spawned at tests/stall_report.rs:"),
        "{report}"
    );
    assert!(
        report.contains("block_on (called at tests/stall_report.rs:"),
        "{report}"
    );
    assert!(report.contains("waits on: join of task"), "{report}");
    assert!(
        !report.contains("no waker of it is held anywhere"),
        "the report contradicts itself: {report}"
    );
}
