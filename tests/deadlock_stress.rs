//! The detector must never report while progress is possible. Many rounds of a workload
//! full of the windows where a naive detector fires falsely — wakes from foreign threads
//! (then dropping the waker), timers firing (the poller injecting under its token),
//! blocking jobs ending, JoinHandle chains completing, runtimes starting up — on 2 and 4
//! workers with `OnDeadlock::Panic`: a single false report fails the test (block_on
//! panics), and in debug builds an inconsistent count aborts it.

mod support;

use std::time::Duration;

use futures::channel::oneshot;

const ROUNDS: usize = if cfg!(debug_assertions) { 200 } else { 1_000 };

/// One round's work; returns a checksum.
async fn workload(round: usize) -> usize {
    let mut handles = Vec::new();

    // Foreign threads completing oneshots at various delays (some immediately).
    let mut threads = Vec::new();
    for i in 0..4 {
        let (tx, rx) = oneshot::channel::<usize>();
        threads.push(std::thread::spawn(move || {
            if i % 2 == 1 {
                std::thread::sleep(Duration::from_micros(200 * i as u64));
            }
            let _ = tx.send(i);
        }));
        handles.push(runnel::spawn(async move { rx.await.unwrap() }));
    }

    // Timers, alone and awaited through other tasks.
    for i in 0..4 {
        let sleeper = runnel::spawn(async move {
            runnel::time::sleep(Duration::from_millis((i % 3) as u64)).await;
            i
        });
        handles.push(runnel::spawn(async move { sleeper.await.unwrap() }));
    }

    // Blocking jobs, one awaited at the end of a JoinHandle chain.
    for i in 0..2 {
        handles.push(runnel::spawn_blocking(move || {
            if i == 1 {
                std::thread::sleep(Duration::from_micros(300));
            }
            i
        }));
    }
    let mut chain = runnel::spawn_blocking(|| 1usize);
    for _ in 0..16 {
        let prev = chain;
        chain = runnel::spawn(async move {
            runnel::task::yield_now().await;
            prev.await.unwrap()
        });
    }
    handles.push(chain);

    // A chain ending in a timer, and one ending in a foreign thread's wake.
    let mut chain = runnel::spawn(async {
        runnel::time::sleep(Duration::from_millis(1)).await;
        1usize
    });
    for _ in 0..16 {
        let prev = chain;
        chain = runnel::spawn(async move { prev.await.unwrap() });
    }
    handles.push(chain);
    let (tx, rx) = oneshot::channel::<usize>();
    let mut chain = runnel::spawn(async move { rx.await.unwrap() });
    for _ in 0..16 {
        let prev = chain;
        chain = runnel::spawn(async move { prev.await.unwrap() });
    }
    handles.push(chain);
    threads.push(std::thread::spawn(move || {
        std::thread::sleep(Duration::from_micros(100 * (round % 7) as u64));
        let _ = tx.send(1);
    }));

    let mut sum = 0;
    for h in handles {
        sum += h.await.unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    sum
}

/// 0+1+2+3 (threads) + 0+1+2+3 (timers) + 0+1 (jobs) + 1 + 1 + 1 (chains)
const CHECKSUM: usize = 6 + 6 + 1 + 3;

fn stress(workers: usize) {
    for round in 0..ROUNDS {
        // A fresh runtime every few rounds also covers the start-up window.
        let rt = support::builder(workers).build().unwrap();
        for sub in 0..2 {
            let sum = rt.block_on(workload(round * 2 + sub));
            assert_eq!(sum, CHECKSUM, "round {round}");
        }
        let m = rt.metrics();
        assert_eq!(
            m.deadlock_reports, 0,
            "false deadlock report in round {round}: {m:?}"
        );
    }
}

#[test]
fn no_false_reports_on_two_workers() {
    stress(2);
}

#[test]
fn no_false_reports_on_four_workers() {
    stress(4);
}

/// A thread outside the runtime spawns while every task of the runtime is stuck, so each
/// spawn races with the deadlock check the idle workers run. The check must treat a task
/// that appears in a run queue mid-check as progress (it was spawned), not as the
/// "inconsistent counts" runtime bug (which aborts debug builds).
///
/// For the check to scan the tasks at all, every counted holder must be lent to a
/// `block_on`: the main thread sits in `block_on`, and the spawner borrows the runtime
/// (`&Runtime`, which the detector does not count: the README's stated limit). Acted out
/// in a child process, which the spawner ends.
#[test]
fn foreign_spawns_while_every_task_is_stuck() {
    const NAME: &str = "foreign_spawns_while_every_task_is_stuck";
    const SPAWNS: usize = if cfg!(debug_assertions) {
        5_000
    } else {
        20_000
    };
    if support::is_child(NAME) {
        // No retake: a long scan under a sanitizer would otherwise retake a worker, whose
        // thread may exit as an idle spare before `process::exit` below, and TSan reports a
        // finished, unjoined thread at exit as a leak.
        let rt = support::builder(2)
            .on_deadlock(runnel::OnDeadlock::Ignore)
            .retake_after(None)
            .build()
            .unwrap();
        let rt = &rt;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(move || {
                ready_rx.recv().unwrap();
                for i in 0..SPAWNS {
                    let h = rt.spawn(async move { i });
                    // Awaited with a foreign executor: no block_on registers for it.
                    assert_eq!(futures::executor::block_on(h).unwrap(), i);
                }
                support::wait_until("the stuck tasks are reported", || {
                    rt.metrics().deadlock_reports >= 1
                });
                println!("all {SPAWNS} spawns ran");
                std::process::exit(0);
            });
            rt.block_on(async move {
                // Stuck for good, with JoinHandles inside the runtime: every check between
                // the spawns walks all of them (a long scan, so a spawn often lands in the
                // middle of it).
                let stuck: Vec<_> = (0..2_000)
                    .map(|_| runnel::spawn(std::future::pending::<()>()))
                    .collect();
                ready_tx.send(()).unwrap();
                std::future::pending::<()>().await;
                drop(stuck);
            });
        });
    }
    let child = support::run_child(NAME);
    assert_eq!(child.code, Some(0), "{child:?}");
    assert!(child.stdout.contains("spawns ran"), "{child:?}");
}
