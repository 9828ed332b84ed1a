//! Partial deadlocks: a cycle of tasks awaiting each other's `JoinHandle`s is reported
//! while the rest of the runtime keeps serving; near misses (a cycle member that some
//! other holder could still wake) are not.

mod support;

use std::time::{Duration, Instant};

use futures::channel::oneshot;
use runnel::JoinHandle;
use support::wait_until;

/// Two tasks that each await the other's `JoinHandle` (delivered by oneshots). Returns
/// their ids.
fn spawn_mutual_wait() -> (runnel::task::Id, runnel::task::Id) {
    let (tx_a, rx_a) = oneshot::channel::<JoinHandle<()>>();
    let (tx_b, rx_b) = oneshot::channel::<JoinHandle<()>>();
    let a = runnel::spawn(async move {
        let _ = rx_b.await.unwrap().await;
    });
    let b = runnel::spawn(async move {
        let _ = rx_a.await.unwrap().await;
    });
    let ids = (a.id(), b.id());
    tx_a.send(a).unwrap();
    tx_b.send(b).unwrap();
    ids
}

#[test]
fn a_join_cycle_is_reported_while_the_server_keeps_serving() {
    let rt = support::runtime(2);
    let reader = rt.handle().metrics_reader();
    rt.block_on(async move {
        spawn_mutual_wait();
        // The "server": keeps doing work the whole time.
        let mut served = 0u32;
        while reader.snapshot().partial_deadlocks == 0 {
            served += runnel::spawn(async { 1 }).await.unwrap();
            runnel::time::sleep(Duration::from_millis(1)).await;
            assert!(served < 20_000, "no partial deadlock report");
        }
        // And goes on serving after the report.
        assert_eq!(runnel::spawn(async { 7 }).await.unwrap(), 7);
    });
    let m = rt.metrics();
    assert_eq!(m.partial_deadlocks, 1, "reported once: {m:?}");
    assert_eq!(m.deadlock_reports, 0, "{m:?}");
}

/// The report's text, from a child process's stderr.
#[test]
fn the_report_names_the_cycle() {
    const NAME: &str = "the_report_names_the_cycle";
    if support::is_child(NAME) {
        let rt = support::runtime(2);
        let reader = rt.handle().metrics_reader();
        let (a, b) = rt.block_on(async move {
            let ids = spawn_mutual_wait();
            while reader.snapshot().partial_deadlocks == 0 {
                runnel::time::sleep(Duration::from_millis(5)).await;
            }
            ids
        });
        println!("cycle-ids {a} {b}");
        return;
    }
    let child = support::run_child(NAME);
    assert_eq!(child.code, Some(0), "{child:?}");
    let ids = child
        .stdout
        .lines()
        .find_map(|l| l.split_once("cycle-ids ").map(|(_, ids)| ids))
        .expect("the child printed the cycle");
    let mut ids = ids.split_whitespace();
    let (a, b) = (ids.next().unwrap(), ids.next().unwrap());
    let report = &child.stderr;
    assert!(report.contains("partial deadlock: 2 task(s)"), "{report}");
    assert!(
        report.contains(&format!("task {a} (spawned at tests/partial_deadlock.rs:"))
            && report.contains(&format!("waits on: join of task {b}"))
            && report.contains(&format!("waits on: join of task {a}")),
        "cycle {a} {b}: {report}"
    );
}

/// Not a deadlock: one member can still be woken by someone outside the cycle.
#[test]
fn a_cycle_member_with_another_waker_is_not_reported() {
    let rt = support::multi_thread(2);
    rt.block_on(async {
        // B waits on A's join *and* on a channel whose sender we hold: not stuck.
        let (tx_a, rx_a) = oneshot::channel::<JoinHandle<()>>();
        let (release, released) = oneshot::channel::<()>();
        let (tx_b, rx_b) = oneshot::channel::<JoinHandle<()>>();
        let a = runnel::spawn(async move {
            let _ = rx_b.await.unwrap().await;
        });
        let b = runnel::spawn(async move {
            let a = rx_a.await.unwrap();
            futures::pin_mut!(a);
            futures::future::select(a, released).await;
        });
        let abort_b = b.abort_handle();
        tx_a.send(a).unwrap();
        tx_b.send(b).unwrap();
        // Several partial checks (every 250 ms) pass while the near-cycle stands.
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(1200) {
            runnel::time::sleep(Duration::from_millis(20)).await;
        }
        release.send(()).unwrap();
        drop(abort_b);
    });
    let m = rt.metrics();
    assert_eq!(m.partial_deadlocks, 0, "{m:?}");
    wait_until("both tasks end", || rt.metrics().live_tasks == 0);
}
