//! The deadlock detector, scenario by scenario (Go's `checkdead` crash tests are the
//! model): what must be reported, with which text; what must never be (each of those
//! checks its output and `deadlock_reports == 0`); the stall report for waits on wakers
//! the runtime cannot see; and `OnDeadlock::{Report, Ignore}`.

mod support;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::time::Duration;

use futures::channel::oneshot;
use futures::StreamExt;
use runnel::{JoinHandle, OnDeadlock, DEADLOCK_MESSAGE};
use support::{panic_message, runtime, wait_until, PATIENCE};

/// Runs `f`, which must panic with a deadlock report; returns the report.
#[track_caller]
fn deadlock_report(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a deadlock report");
    let report = panic_message(&*payload);
    assert!(
        report.starts_with(DEADLOCK_MESSAGE),
        "not a deadlock report:\n{report}"
    );
    report
}

// ---------------------------------------------------------------------------------------
// Reported

#[test]
#[should_panic(expected = "all tasks are asleep - deadlock!")]
fn block_on_pending() {
    let rt = runtime(2);
    rt.block_on(std::future::pending::<()>());
}

#[test]
fn main_awaits_a_task_that_awaits_pending() {
    let rt = runtime(2);
    let mut stuck_id = None;
    let report = deadlock_report(|| {
        rt.block_on(async {
            let stuck = runnel::spawn(std::future::pending::<()>());
            stuck_id = Some(stuck.id());
            stuck.await.unwrap()
        })
    });
    let id = stuck_id.unwrap();
    assert!(
        report.contains("block_on (called at tests/deadlock.rs:"),
        "{report}"
    );
    assert!(
        report.contains(&format!("waits on: join of task {id}")),
        "{report}"
    );
    assert!(
        report.contains(&format!("task {id} (spawned at tests/deadlock.rs:")),
        "names the stuck task and where it was spawned:\n{report}"
    );
    assert!(report.contains("waits on: nothing"), "{report}");
    assert!(rt.metrics().deadlock_reports >= 1);
}

/// Spawns two tasks that await each other's JoinHandles; returns their ids.
fn spawn_mutual_wait(
    spawn: impl Fn(futures::future::BoxFuture<'static, ()>) -> JoinHandle<()>,
) -> (u64, u64) {
    let (tx_a, rx_a) = oneshot::channel::<JoinHandle<()>>();
    let (tx_b, rx_b) = oneshot::channel::<JoinHandle<()>>();
    let a = spawn(Box::pin(async move { rx_b.await.unwrap().await.unwrap() }));
    let b = spawn(Box::pin(async move { rx_a.await.unwrap().await.unwrap() }));
    let ids = (
        a.id().to_string().parse().unwrap(),
        b.id().to_string().parse().unwrap(),
    );
    tx_a.send(a).unwrap();
    tx_b.send(b).unwrap();
    ids
}

#[test]
fn two_tasks_awaiting_each_other() {
    let rt = runtime(2);
    let mut ids = (0, 0);
    let report = deadlock_report(|| {
        rt.block_on(async {
            ids = spawn_mutual_wait(|f| runnel::spawn(f));
            std::future::pending::<()>().await
        })
    });
    let (a, b) = ids;
    assert!(
        report.contains(&format!("task {a} (spawned at")),
        "{report}"
    );
    assert!(
        report.contains(&format!("task {b} (spawned at")),
        "{report}"
    );
    assert!(
        report.contains(&format!("waits on: join of task {b}")),
        "{report}"
    );
    assert!(
        report.contains(&format!("waits on: join of task {a}")),
        "{report}"
    );
}

#[test]
fn not_reported_while_the_runtime_is_held_outside_block_on() {
    // No block_on: the thread that owns the Runtime may still spawn, abort or drop it, so
    // two tasks awaiting each other are not provably stuck (the README's rule). The check
    // runs on every quiet sysmon tick and must conclude "maybe" every time.
    let rt = runtime(2);
    spawn_mutual_wait(|f| rt.spawn(f));
    let checks = rt.metrics().deadlock_checks;
    wait_until("the check ran five more times", || {
        rt.metrics().deadlock_checks >= checks + 5
    });
    assert_no_report(&rt);
    // Dropping the runtime cancels both.
}

// `#[runnel::test]` sets `on_deadlock = "panic"`: a test that would hang fails instead.
#[runnel::test]
#[should_panic(expected = "all tasks are asleep - deadlock!")]
async fn deadlock_after_a_timer_fired() {
    runnel::time::sleep(Duration::from_millis(10)).await;
    std::future::pending::<()>().await
}

#[test]
fn deadlock_after_a_blocking_job_finished() {
    let rt = runtime(2);
    deadlock_report(|| {
        rt.block_on(async {
            runnel::spawn_blocking(|| std::thread::sleep(Duration::from_millis(10)))
                .await
                .unwrap();
            std::future::pending::<()>().await
        })
    });
}

#[test]
fn long_chain_report_is_short() {
    const CHAIN: usize = 1_000;
    let rt = runtime(2);
    let mut ids = Vec::new();
    let report = deadlock_report(|| {
        rt.block_on(async {
            let mut next = runnel::spawn(std::future::pending::<()>());
            ids.push(next.id().to_string());
            for _ in 1..CHAIN {
                let prev = next;
                next = runnel::spawn(async move { prev.await.unwrap() });
                ids.push(next.id().to_string());
            }
            next.await.unwrap()
        })
    });
    assert!(
        report.lines().count() <= 30,
        "{} lines:\n{report}",
        report.lines().count()
    );
    for id in &ids[..10] {
        assert!(
            report.contains(&format!("task {id} (spawned at")),
            "lists task {id}:\n{report}"
        );
    }
    assert!(
        !report.contains(&format!("task {} (spawned at", ids[10])),
        "{report}"
    );
    assert!(
        report.contains(&format!("... and {} more tasks", CHAIN - 10)),
        "{report}"
    );
    // The first listed task waits on nothing; the second on the first.
    assert!(report.contains(&format!("task {} (spawned at", ids[0])));
    assert!(
        report.contains(&format!("waits on: join of task {}", ids[0])),
        "{report}"
    );
    assert!(
        report.contains(&format!("waits on: join of task {}", ids[CHAIN - 1])),
        "main:\n{report}"
    );
}

/// `OnDeadlock::Report` and `Ignore`, acted out in a child process: `block_on` waits on a
/// stuck task, the deadlock is counted (and printed with `Report`) once although the
/// check re-runs, and `block_on` keeps waiting. The observer thread borrows the runtime
/// (`&Runtime` is not counted as a holder: the README's stated limit) and ends the child.
fn deadlock_keeps_waiting(test: &str, action: OnDeadlock) {
    if support::is_child(test) {
        let rt = support::builder(2).on_deadlock(action).build().unwrap();
        let reader = rt.handle().metrics_reader();
        std::thread::scope(|s| {
            s.spawn(move || {
                wait_until("the deadlock is counted", || {
                    reader.snapshot().deadlock_reports >= 1
                });
                let checks = reader.snapshot().deadlock_checks;
                wait_until("five more checks", || {
                    reader.snapshot().deadlock_checks >= checks + 5
                });
                let reports = reader.snapshot().deadlock_reports;
                println!("reports after five more checks: {reports}");
                std::process::exit(if reports == 1 { 0 } else { 1 });
            });
            let _ = rt.block_on(async { runnel::spawn(std::future::pending::<()>()).await });
            println!("block_on returned");
            std::process::exit(2);
        });
    }
    let child = support::run_child(test);
    assert_eq!(child.code, Some(0), "{child:?}");
    assert!(
        child.stdout.contains("reports after five more checks: 1"),
        "{child:?}"
    );
    let printed = child.stderr.contains(DEADLOCK_MESSAGE);
    assert_eq!(printed, action == OnDeadlock::Report, "{child:?}");
}

#[test]
fn on_deadlock_report_counts_and_keeps_waiting() {
    deadlock_keeps_waiting(
        "on_deadlock_report_counts_and_keeps_waiting",
        OnDeadlock::Report,
    );
}

#[test]
fn on_deadlock_ignore_counts_and_keeps_waiting() {
    deadlock_keeps_waiting(
        "on_deadlock_ignore_counts_and_keeps_waiting",
        OnDeadlock::Ignore,
    );
}

#[test]
fn a_deadlock_is_reported_once_until_something_runs() {
    const NAME: &str = "a_deadlock_is_reported_once_until_something_runs";
    if support::is_child(NAME) {
        let rt = support::builder(2)
            .on_deadlock(OnDeadlock::Ignore)
            .build()
            .unwrap();
        let rt = &rt;
        std::thread::scope(|s| {
            s.spawn(move || {
                let m = || rt.metrics();
                wait_until("the deadlock is counted", || m().deadlock_reports >= 1);
                let checks = m().deadlock_checks;
                wait_until("five more checks", || m().deadlock_checks >= checks + 5);
                assert_eq!(m().deadlock_reports, 1, "reported more than once");
                // Progress (a task runs; spawned through `&Runtime`, which the detector
                // cannot see), then quiet again with block_on still stuck: a new report.
                drop(rt.spawn(async {}));
                wait_until("the second deadlock is counted", || {
                    m().deadlock_reports >= 2
                });
                println!("reported again after progress");
                std::process::exit(0);
            });
            rt.block_on(std::future::pending::<()>());
        });
    }
    let child = support::run_child(NAME);
    assert_eq!(child.code, Some(0), "{child:?}");
    assert!(child.stdout.contains("reported again after progress"));
}

#[test]
fn join_across_runtimes_is_not_reported() {
    // block_on of runtime A awaits a stuck task of runtime B. Neither can prove a deadlock:
    // for A, its waker sits in a slot of B (a holder A does not own); for B, the task's
    // JoinHandle is on a thread outside B (A's block_on may abort it), and B's Runtime is
    // held outside any block_on. Dropping B cancels the task and so ends A's wait.
    let a = runtime(1);
    let b = runtime(1);
    let stuck = b.spawn(std::future::pending::<()>());
    let a_handle = a.handle().clone();
    let main = std::thread::spawn(move || a_handle.block_on(stuck));
    for rt in [&a, &b] {
        let checks = rt.metrics().deadlock_checks;
        wait_until("the check ran again", || {
            rt.metrics().deadlock_checks >= checks + 3
        });
    }
    assert_no_report(&a);
    assert_no_report(&b);
    drop(b);
    assert!(main.join().unwrap().unwrap_err().is_cancelled());
    assert_no_report(&a);
}

// ---------------------------------------------------------------------------------------
// Not reported: progress is possible, so the detector must stay quiet.

fn assert_no_report(rt: &runnel::Runtime) {
    let m = rt.metrics();
    assert_eq!(m.deadlock_reports, 0, "{m:?}");
}

#[test]
fn main_awaits_a_sleep() {
    let rt = runtime(2);
    let out = rt.block_on(async {
        runnel::time::sleep(Duration::from_millis(50)).await;
        "slept"
    });
    assert_eq!(out, "slept");
    assert_no_report(&rt);
    // Everything went idle during the sleep: the check ran, saw the timer, stayed quiet.
    assert!(rt.metrics().deadlock_checks >= 1, "{:?}", rt.metrics());
}

#[test]
fn accept_satisfied_by_a_late_client() {
    let rt = runtime(2);
    let (peer, server_side) = rt.block_on(async {
        let listener = runnel::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            let stream = std::net::TcpStream::connect(addr).unwrap();
            stream.local_addr().unwrap()
        });
        let (_stream, peer) = listener.accept().await.unwrap();
        (peer, client.join().unwrap())
    });
    assert_eq!(peer, server_side);
    assert_no_report(&rt);
}

#[test]
fn oneshot_fired_by_a_foreign_thread() {
    let rt = runtime(2);
    let (tx, rx) = oneshot::channel();
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        tx.send(17).unwrap();
    });
    assert_eq!(rt.block_on(rx).unwrap(), 17);
    sender.join().unwrap();
    assert_no_report(&rt);
}

#[test]
fn oneshot_fired_by_a_foreign_thread_awaited_in_a_task() {
    let rt = runtime(2);
    let (tx, rx) = oneshot::channel();
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        tx.send(18).unwrap();
    });
    let out = rt.block_on(async { runnel::spawn(rx).await.unwrap().unwrap() });
    assert_eq!(out, 18);
    sender.join().unwrap();
    assert_no_report(&rt);
}

#[test]
fn slow_blocking_job() {
    let rt = runtime(2);
    let out = rt.block_on(async {
        runnel::spawn_blocking(|| {
            std::thread::sleep(Duration::from_millis(100));
            9
        })
        .await
        .unwrap()
    });
    assert_eq!(out, 9);
    assert_no_report(&rt);
}

#[test]
fn interval_task_beside_main() {
    let rt = runtime(2);
    let ticks = rt.block_on(async {
        let (tx, mut rx) = futures::channel::mpsc::unbounded();
        let ticker = runnel::spawn(async move {
            let mut interval = runnel::time::interval(Duration::from_millis(2));
            for n in 0u32.. {
                interval.tick().await;
                if tx.unbounded_send(n).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        while seen.len() < 20 {
            seen.push(rx.next().await.unwrap());
        }
        ticker.abort();
        assert!(ticker.await.unwrap_err().is_cancelled());
        seen
    });
    assert_eq!(ticks, (0..20).collect::<Vec<_>>());
    assert_no_report(&rt);
}

#[test]
fn task_awaiting_a_sleeping_task() {
    let rt = runtime(2);
    let out = rt.block_on(async {
        let sleeper = runnel::spawn(async {
            runnel::time::sleep(Duration::from_millis(30)).await;
            1
        });
        let waiter = runnel::spawn(async move { sleeper.await.unwrap() + 1 });
        waiter.await.unwrap()
    });
    assert_eq!(out, 2);
    assert_no_report(&rt);
}

// ---------------------------------------------------------------------------------------
// Stall report: main waits on a third-party channel whose sender is alive in a foreign
// thread. Not provably a deadlock (the thread may send), so only a stall report.

#[test]
fn stall_report_after_the_quiet_period() {
    let rt = support::builder(2)
        .stall_report_after(Some(Duration::from_millis(100)))
        .build()
        .unwrap();
    let handle = rt.handle().clone();
    let (tx, rx) = oneshot::channel();
    let sender = std::thread::spawn(move || {
        // Holds the sender, silent, until the runtime printed its stall report.
        wait_until("a stall report", || handle.metrics().stall_reports == 1);
        tx.send("released").unwrap();
    });
    assert_eq!(rt.block_on(rx).unwrap(), "released");
    sender.join().unwrap();
    let m = rt.metrics();
    assert_eq!(m.stall_reports, 1, "{m:?}");
    assert_eq!(m.deadlock_reports, 0, "{m:?}");
}

#[test]
fn no_stall_report_before_the_default_quiet_period() {
    let rt = runtime(2);
    let handle = rt.handle().clone();
    let (tx, rx) = oneshot::channel();
    let (seen_tx, seen_rx) = mpsc::channel();
    let sender = std::thread::spawn(move || {
        // A slow producer: quiet for 300 ms, far less than the 10 s default.
        std::thread::sleep(Duration::from_millis(300));
        seen_tx.send(handle.metrics().stall_reports).unwrap();
        tx.send(()).unwrap();
    });
    rt.block_on(rx).unwrap();
    sender.join().unwrap();
    assert_eq!(seen_rx.recv_timeout(PATIENCE).unwrap(), 0);
    assert_eq!(rt.metrics().stall_reports, 0);
    assert_no_report(&rt);
}

/// `Handle::block_on` inside `spawn_blocking` (the pattern the nesting panic recommends),
/// waiting on a stuck task: the blocking thread is a `block_on` caller, not a running job,
/// so the deadlock is reported (it used to get only a stall report).
#[test]
fn block_on_inside_spawn_blocking_is_a_block_on_caller() {
    let rt = runtime(2);
    let report = deadlock_report(|| {
        rt.block_on(async {
            runnel::spawn_blocking(|| {
                runnel::Handle::current()
                    .block_on(async { runnel::spawn(std::future::pending::<()>()).await })
            })
            .await
        })
        .unwrap()
        .unwrap();
    });
    assert_eq!(
        report.matches("block_on (called at").count(),
        2,
        "both block_on callers are listed: {report}"
    );
}
