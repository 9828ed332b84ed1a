//! Retake (issue 7): a worker blocked inside a task never strands the work queued behind
//! it. Timing is never asserted directly: each test compares the order of events against
//! a blocking duration (1 s) that is 100 times the retake threshold (10 ms).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use runnel::Builder;

mod support;
use support::{wait_until, PATIENCE};

const BLOCK: Duration = Duration::from_secs(1);

/// A spawns B (B lands in the worker's LIFO slot, the case tokio strands: tokio #4941),
/// then blocks its only worker for 1 s. Returns whether B finished while A still blocked.
fn lifo_task_runs_while_worker_blocked(retake_after: Option<Duration>) -> bool {
    let rt = Builder::new()
        .worker_threads(1)
        .retake_after(retake_after)
        .build()
        .unwrap();
    let a_done = Arc::new(AtomicBool::new(false));
    let b_finished_first = rt.block_on({
        let a_done = a_done.clone();
        async move {
            let (b_tx, b_rx) = futures::channel::oneshot::channel::<bool>();
            let a = runnel::spawn({
                let a_done = a_done.clone();
                async move {
                    let a_done_for_b = a_done.clone();
                    let _b = runnel::spawn(async move {
                        let _ = b_tx.send(!a_done_for_b.load(SeqCst));
                    });
                    std::thread::sleep(BLOCK); // blocking code in an async task
                    a_done.store(true, SeqCst);
                }
            });
            let b_first = b_rx.await.unwrap();
            a.await.unwrap();
            b_first
        }
    });
    assert!(a_done.load(SeqCst));
    b_finished_first
}

#[test]
fn retake_runs_the_lifo_task_of_a_blocked_worker() {
    assert!(
        lifo_task_runs_while_worker_blocked(Some(Duration::from_millis(10))),
        "the task queued behind a blocked worker waited for the blocking call to end"
    );
}

#[test]
fn without_retake_the_lifo_task_waits_for_the_blocked_worker() {
    // The control experiment: shows the test above can fail.
    assert!(!lifo_task_runs_while_worker_blocked(None));
}

/// How long the computing task spins: 20 times the retake threshold.
const COMPUTE: Duration = Duration::from_millis(200);

/// A spawns B (into its worker's LIFO slot), then computes — on a CPU, not blocked — for
/// `COMPUTE`. Returns whether B ran meanwhile, and the runtime's retake count.
fn lifo_task_runs_while_worker_computes(workers: usize) -> (bool, u64) {
    let rt = Builder::new().worker_threads(workers).build().unwrap();
    let b_ran_first = rt.block_on(async {
        runnel::spawn(async {
            let b_ran = Arc::new(AtomicBool::new(false));
            let _b = runnel::spawn({
                let b_ran = b_ran.clone();
                async move { b_ran.store(true, SeqCst) }
            });
            let start = Instant::now();
            while start.elapsed() < COMPUTE {
                std::hint::spin_loop();
            }
            b_ran.load(SeqCst)
        })
        .await
        .unwrap()
    });
    (b_ran_first, rt.metrics().retakes)
}

#[cfg(target_os = "linux")]
#[test]
fn a_computing_worker_keeps_its_role_and_a_free_worker_takes_its_lifo_task() {
    // A replacement thread would only compete with the computing one for the CPUs; the
    // other worker is free, and sysmon wakes it to take the stranded task.
    let (b_ran_first, retakes) = lifo_task_runs_while_worker_computes(2);
    assert!(
        b_ran_first,
        "the LIFO task waited for the computing poll to end"
    );
    assert_eq!(
        retakes, 0,
        "a computing worker was retaken while another was free"
    );
}

#[test]
fn a_computing_worker_is_retaken_when_no_other_worker_is_free() {
    let (b_ran_first, retakes) = lifo_task_runs_while_worker_computes(1);
    assert!(
        b_ran_first,
        "the LIFO task waited for the computing poll to end"
    );
    assert!(retakes >= 1);
}

#[test]
fn blocked_worker_counts_running_and_work_progresses() {
    let rt = Builder::new().worker_threads(2).build().unwrap();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let done = Arc::new(AtomicUsize::new(0));
    rt.block_on({
        let done = done.clone();
        async move {
            // Blocks its worker until the test releases it: no deadlock may be reported
            // meanwhile, whatever the other tasks do.
            let blocker = runnel::spawn(async move {
                release_rx.recv().unwrap();
            });
            let tasks: Vec<_> = (0..2_000)
                .map(|_| {
                    let done = done.clone();
                    runnel::spawn(async move {
                        runnel::task::yield_now().await;
                        done.fetch_add(1, SeqCst);
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            assert_eq!(done.load(SeqCst), 2_000);
            // Main now waits only on the blocked task: the runtime is quiet but a thread
            // is inside a poll, so this is not a deadlock.
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                release_tx.send(()).unwrap();
            });
            blocker.await.unwrap();
        }
    });
    let m = rt.metrics();
    assert_eq!(m.deadlock_reports, 0, "{m:?}");
}

#[test]
fn thread_count_returns_to_rest_after_blocking() {
    let rt = Builder::new()
        .worker_threads(2)
        .thread_keep_alive(Duration::from_millis(50))
        .build()
        .unwrap();
    rt.block_on(async {
        let blockers: Vec<_> = (0..2)
            .map(|_| runnel::spawn(async { std::thread::sleep(Duration::from_millis(300)) }))
            .collect();
        // Work queued behind the blockers still runs.
        let quick: Vec<_> = (0..100).map(|i| runnel::spawn(async move { i })).collect();
        let mut sum = 0;
        for q in quick {
            sum += q.await.unwrap();
        }
        assert_eq!(sum, (0..100).sum());
        for b in blockers {
            b.await.unwrap();
        }
    });
    let m = rt.metrics();
    assert!(
        m.retakes >= 1,
        "two 300 ms blocking polls were not retaken: {m:?}"
    );
    // Spares without a role exit after the keep-alive: wait for it, with a generous deadline.
    let deadline = Instant::now() + Duration::from_secs(10);
    while rt.metrics().worker_threads != 2 {
        assert!(
            Instant::now() < deadline,
            "threads never returned to rest: {:?}",
            rt.metrics()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn retake_stress_every_task_runs_once() {
    for round in 0..20 {
        let rt = Builder::new()
            .worker_threads(2)
            .retake_after(Some(Duration::from_millis(1)))
            .max_spare_threads(2)
            .build()
            .unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        rt.block_on({
            let runs = runs.clone();
            async move {
                let mut handles = Vec::new();
                for i in 0..400usize {
                    let runs = runs.clone();
                    handles.push(runnel::spawn(async move {
                        if i % 50 == round % 50 {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        let inner = runnel::spawn(async move { i });
                        runnel::task::yield_now().await;
                        runs.fetch_add(1, SeqCst);
                        inner.await.unwrap()
                    }));
                }
                let mut sum = 0;
                for h in handles {
                    sum += h.await.unwrap();
                }
                assert_eq!(sum, (0..400).sum());
            }
        });
        assert_eq!(runs.load(SeqCst), 400);
        assert_eq!(rt.metrics().deadlock_reports, 0);
    }
}

/// Hardening issue, A: a retake whose replacement thread cannot be started must give the
/// stuck role back to its thread. Before, the role stayed `RETAKEN`: when the blocking call
/// returned its thread gave the role up, and with one worker nothing ran any more. Thread
/// creation fails for real here (the address-space limit is lowered below what a thread
/// stack needs), so this runs in a child process; its failure mode is a hang.
#[test]
fn failed_retake_keeps_the_stuck_role() {
    let child = support::run_child(FAILED_RETAKE_CHILD);
    let passed = child.code == Some(0);
    let output = format!("{}{}", child.stdout, child.stderr);
    assert!(passed, "the child failed:\n{output}");
    assert!(
        output.contains("could not retake worker 0")
            && output.contains("a thread could not be started"),
        "no line on stderr named the failed retake:\n{output}"
    );
    assert_eq!(
        output.matches("could not retake worker").count(),
        1,
        "one line per blocked poll, however often sysmon retries:\n{output}"
    );
}

const FAILED_RETAKE_CHILD: &str = "child_failed_retake_keeps_the_stuck_role";

/// Lowers `RLIMIT_AS` to the current address-space size plus `margin` until dropped.
struct AddressSpaceLimit(libc::rlimit);

impl AddressSpaceLimit {
    fn lower(margin: u64) -> AddressSpaceLimit {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let vm_kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmSize:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmSize in /proc/self/status");
        let mut old = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `old` is a valid `rlimit` for getrlimit to fill in.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut old) }, 0);
        let low = libc::rlimit {
            rlim_cur: vm_kb * 1024 + margin,
            rlim_max: old.rlim_max,
        };
        // SAFETY: a valid `rlimit`; lowering the soft limit only makes later mappings fail.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &low) }, 0);
        AddressSpaceLimit(old)
    }
}

impl Drop for AddressSpaceLimit {
    fn drop(&mut self) {
        // SAFETY: restores the soft limit read in `lower` (at most the hard limit).
        unsafe { libc::setrlimit(libc::RLIMIT_AS, &self.0) };
    }
}

#[test]
#[ignore = "child process of failed_retake_keeps_the_stuck_role"]
fn child_failed_retake_keeps_the_stuck_role() {
    if !support::is_child(FAILED_RETAKE_CHILD) {
        return;
    }
    const STACK: usize = 256 << 20;
    let rt = Builder::new()
        .worker_threads(1)
        // A replacement thread needs 256 MiB of address space for its stack; the limit
        // below leaves 16 MiB, enough for the small allocations meanwhile.
        .thread_stack_size(STACK)
        .build()
        .unwrap();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (c_tx, c_rx) = mpsc::channel::<()>();
    // The poller (sysmon, which retakes) starts on the first spawn: start it before
    // thread creation is made to fail.
    rt.block_on(rt.spawn(async {})).unwrap();
    let limit = AddressSpaceLimit::lower(16 << 20);
    assert!(
        std::thread::Builder::new()
            .stack_size(STACK)
            .spawn(|| {})
            .is_err(),
        "the lowered limit does not stop a thread from starting"
    );
    let blocker = rt.spawn(async move {
        started_tx.send(()).unwrap();
        release_rx.recv().unwrap(); // blocks the only worker
    });
    started_rx.recv_timeout(PATIENCE).unwrap();
    wait_until("a retake failed", || rt.metrics().failed_retakes >= 1);
    // The blocking call returns while no thread can be started: the worker must still
    // have a role (its own, given back, or the replacement handed to it).
    release_tx.send(()).unwrap();
    rt.block_on(blocker).unwrap();
    drop(limit);
    let _c = rt.spawn(async move { c_tx.send(()).unwrap() });
    assert!(
        c_rx.recv_timeout(PATIENCE).is_ok(),
        "a task spawned after the failed retake never ran: {:?}",
        rt.metrics()
    );
}

/// Hardening issue, B: a retake that fails (here: the only spare slot serves another
/// blocked worker) is retried, so once the slot frees up the work queued behind the
/// blocked worker runs while it is still blocked. Before, sysmon recorded the attempt and
/// never retried that poll.
#[test]
fn failed_retake_is_retried_when_a_spare_slot_frees() {
    let rt = Builder::new()
        .worker_threads(1)
        .max_spare_threads(1)
        .build()
        .unwrap();
    let (started_tx, started_rx) = mpsc::channel::<&str>();
    let (a_release_tx, a_release_rx) = mpsc::channel::<()>();
    let (b_release_tx, b_release_rx) = mpsc::channel::<()>();
    let _a = rt.spawn({
        let started_tx = started_tx.clone();
        async move {
            started_tx.send("A").unwrap();
            a_release_rx.recv().unwrap();
        }
    });
    assert_eq!(started_rx.recv_timeout(PATIENCE), Ok("A"));
    wait_until("A's worker was retaken", || rt.metrics().retakes >= 1);
    // B blocks the replacement thread; the only spare slot is A's (its thread is still
    // stuck in A), so B's retake fails.
    let b_blocked = Arc::new(AtomicBool::new(true));
    let _b = rt.spawn({
        let b_blocked = b_blocked.clone();
        async move {
            started_tx.send("B").unwrap();
            b_release_rx.recv().unwrap();
            b_blocked.store(false, SeqCst);
        }
    });
    assert_eq!(started_rx.recv_timeout(PATIENCE), Ok("B"));
    wait_until("B's retake failed", || rt.metrics().failed_retakes >= 1);
    let (c_tx, c_rx) = mpsc::channel::<bool>();
    let _c = rt.spawn(async move { c_tx.send(b_blocked.load(SeqCst)).unwrap() });
    // A's slot frees up: its thread leaves it and waits as a spare.
    a_release_tx.send(()).unwrap();
    let c_ran = c_rx.recv_timeout(PATIENCE);
    b_release_tx.send(()).unwrap();
    assert_eq!(
        c_ran,
        Ok(true),
        "the task queued behind B waited for B's blocking call to end: {:?}",
        rt.metrics()
    );
}

/// Hardening issue, C: dropping a runtime while sysmon retakes a blocked worker joins
/// every worker thread (a retake in the shutdown window used to start a thread after
/// shutdown had taken the handles to join). In a child process, so that the thread count
/// read from /proc is this runtime's alone.
#[test]
fn drop_while_retaking_joins_every_worker_thread() {
    let child = support::run_child(DROP_CHILD);
    let passed = child.code == Some(0);
    let output = format!("{}{}", child.stdout, child.stderr);
    assert!(passed, "the child failed:\n{output}");
}

const DROP_CHILD: &str = "child_drop_while_retaking_joins_every_worker_thread";

#[test]
#[ignore = "child process of drop_while_retaking_joins_every_worker_thread"]
fn child_drop_while_retaking_joins_every_worker_thread() {
    if !support::is_child(DROP_CHILD) {
        return;
    }
    for round in 0..100u64 {
        let rt = Builder::new()
            .worker_threads(1)
            .thread_name("rt-drop")
            .thread_keep_alive(Duration::from_secs(3600))
            // Zero: sysmon retakes any poll it sees running, so the wake-up the drop
            // sends it finds one to retake while shutdown is joining the threads.
            .retake_after(Some(Duration::ZERO))
            .build()
            .unwrap();
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let _blocker = rt.spawn(async move {
            started_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_micros(100 * (round % 10)));
        });
        started_rx.recv_timeout(PATIENCE).unwrap();
        drop(rt);
        // A joined thread can still be listed in /proc for a moment (the kernel wakes the
        // joiner before it releases the task), so wait for the list to empty, boundedly.
        // A thread left unjoined would wait as a spare for the hour-long keep-alive.
        wait_until("every thread of the dropped runtime is gone", || {
            support::threads_named("rt-drop-") == 0
        });
    }
}

/// A task that blocks its worker for longer than a second is named on stderr with where it
/// was spawned (sysmon finds the site in the owned list by the task's id: the task header
/// does not keep it). In a child process, to read its stderr.
#[test]
fn a_task_blocking_its_worker_is_named_with_its_spawn_site() {
    let child = support::run_child(BLOCKING_REPORT_CHILD);
    let output = format!("{}{}", child.stdout, child.stderr);
    assert_eq!(child.code, Some(0), "the child failed:\n{output}");
    let line = include_str!("retake.rs")
        .lines()
        .position(|l| l.ends_with("// THE BLOCKING SPAWN"))
        .expect("the spawn line")
        + 1;
    let report = output
        .lines()
        .find(|l| l.contains("has blocked its worker thread"))
        .unwrap_or_else(|| panic!("no blocking report:\n{output}"));
    assert!(
        report.contains(&format!("(spawned at tests/retake.rs:{line}:")),
        "{report}"
    );
}

const BLOCKING_REPORT_CHILD: &str = "child_a_task_blocking_its_worker_is_named_with_its_spawn_site";

#[test]
#[ignore = "child process of a_task_blocking_its_worker_is_named_with_its_spawn_site"]
fn child_a_task_blocking_its_worker_is_named_with_its_spawn_site() {
    if !support::is_child(BLOCKING_REPORT_CHILD) {
        return;
    }
    let rt = Builder::new().worker_threads(2).build().unwrap();
    rt.block_on(async {
        // Blocking is the behaviour under test: the report comes after 1 s of it.
        let blocker = runnel::spawn(async { std::thread::sleep(Duration::from_millis(1600)) }); // THE BLOCKING SPAWN
        blocker.await.unwrap();
    });
}
