//! The wait-for graph (ARCHITECTURE.md, "The wait-for graph"): lock cycles on
//! `runnel::sync` primitives, mixed join/lock cycles and lost wakers are reported while an
//! echo server on the same runtime keeps answering a client; and healthy programs that
//! look alike for a while (foreign holders, idle pools, slow producers, churn) get no
//! report of any kind.
//!
//! Each deadlock scenario runs in a child process (a missed report would hang it), which
//! prints what it saw on stdout; the parent checks the report on the child's stderr.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex as StdMutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use runnel::net::{TcpListener, TcpStream};
use runnel::sync::{mpsc, Barrier, Mutex, RwLock, Semaphore};
use runnel::{MetricsReader, OnDeadlock, Runtime, RuntimeMetrics};

/// Round trips the client makes after the report, to show the server still answers.
const AFTER_REPORT: usize = 20;

fn runtime(quiet: Duration) -> Runtime {
    support::builder(2)
        .on_partial_deadlock(OnDeadlock::Report)
        .partial_deadlock_after(quiet)
        .build()
        .unwrap()
}

/// An echo server task; returns its address.
async fn echo_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    runnel::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            runnel::spawn(async move {
                let mut buf = [0u8; 8];
                while stream.read_exact(&mut buf).await.is_ok() {
                    if stream.write_all(&buf).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// One echo round trip.
async fn round_trip(stream: &mut TcpStream, n: u64) {
    stream.write_all(&n.to_le_bytes()).await.unwrap();
    let mut back = [0u8; 8];
    stream.read_exact(&mut back).await.unwrap();
    assert_eq!(
        u64::from_le_bytes(back),
        n,
        "the echo server answered wrong"
    );
}

/// Talks to the echo server until `reported` says the report came (bounded by the test
/// patience), then `AFTER_REPORT` more times; prints how many answers came after.
async fn serve_until(reader: &MetricsReader, reported: impl Fn(&RuntimeMetrics) -> bool) {
    let addr = echo_server().await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    let deadline = Instant::now() + support::PATIENCE;
    let mut n = 0;
    while !reported(&reader.snapshot()) {
        assert!(
            Instant::now() < deadline,
            "no report: {:?}",
            reader.snapshot()
        );
        round_trip(&mut client, n).await;
        n += 1;
        runnel::time::sleep(Duration::from_millis(2)).await;
    }
    for i in 0..AFTER_REPORT as u64 {
        round_trip(&mut client, n + i).await;
    }
    println!("answers-before-report {n}");
    println!("answers-after-report {AFTER_REPORT}");
}

/// Runs `scenario` in a child process; returns its stderr after checking it exited well
/// and its client got every answer after the report.
fn in_child(name: &str, scenario: impl FnOnce()) -> String {
    if support::is_child(name) {
        scenario();
        return String::new();
    }
    let child = support::run_child(name);
    assert_eq!(child.code, Some(0), "{child:?}");
    assert!(
        child
            .stdout
            .contains(&format!("answers-after-report {AFTER_REPORT}")),
        "{child:?}"
    );
    child.stderr
}

/// Spawns tasks that each take `locks[i]`, meet at a barrier, then take
/// `locks[(i + 1) % n]`: a lock-order cycle of `n` tasks. Returns their ids.
fn lock_cycle(locks: &[Arc<Mutex<u32>>]) -> Vec<String> {
    let n = locks.len();
    let barrier = Arc::new(Barrier::new(n));
    (0..n)
        .map(|i| {
            let (first, second) = (locks[i].clone(), locks[(i + 1) % n].clone());
            let barrier = barrier.clone();
            runnel::spawn(async move {
                let mut a = first.lock().await; // FIRST_LOCK_LINE
                barrier.wait().await;
                let mut b = second.lock().await;
                *a += 1;
                *b += 1;
            })
            .id()
            .to_string()
        })
        .collect()
}

fn is_child_process() -> bool {
    std::env::var(support::CHILD_ENV).is_ok()
}

#[test]
fn a_two_task_lock_order_inversion_is_reported_while_the_server_answers() {
    let report = in_child(
        "a_two_task_lock_order_inversion_is_reported_while_the_server_answers",
        || {
            let rt = runtime(Duration::from_millis(300));
            let reader = rt.handle().metrics_reader();
            rt.block_on(async move {
                let locks: Vec<_> = (0..2).map(|_| Arc::new(Mutex::new(0))).collect();
                let ids = lock_cycle(&locks);
                println!("cycle {ids:?}");
                serve_until(&reader, |m| m.partial_deadlocks == 1).await;
            });
            let m = rt.metrics();
            assert_eq!((m.partial_deadlocks, m.leaked_tasks), (1, 0), "{m:?}");
        },
    );
    if is_child_process() {
        return;
    }
    assert!(
        report.contains("likely partial deadlock: 2 task(s)"),
        "{report}"
    );
    // Every task, what it waits on (with the mutex's creation site), and who holds what.
    assert_eq!(
        report.matches("waits on: lock of mutex").count(),
        2,
        "{report}"
    );
    assert_eq!(
        report.matches("(created at tests/wait_graph.rs:").count(),
        4,
        "each line names the mutex waited on and the one held: {report}"
    );
    assert_eq!(report.matches("held by task").count(), 2, "{report}");
    assert_eq!(report.matches("; it holds mutex").count(), 2, "{report}");
    // Where each task took the lock it holds: the first `lock()` of `lock_cycle`.
    let taken = format!("; taken at tests/wait_graph.rs:{}:", first_lock_line());
    assert_eq!(report.matches(&taken).count(), 2, "{taken}\n{report}");
}

/// The line of `lock_cycle`'s first `lock()` call.
fn first_lock_line() -> usize {
    include_str!("wait_graph.rs")
        .lines()
        .position(|l| l.contains("first.lock().await; // FIRST_LOCK_LINE"))
        .expect("lock_cycle's first lock")
        + 1
}

#[test]
fn a_three_task_lock_order_cycle_is_reported_while_the_server_answers() {
    let report = in_child(
        "a_three_task_lock_order_cycle_is_reported_while_the_server_answers",
        || {
            let rt = runtime(Duration::from_millis(300));
            let reader = rt.handle().metrics_reader();
            rt.block_on(async move {
                let locks: Vec<_> = (0..3).map(|_| Arc::new(Mutex::new(0))).collect();
                let ids = lock_cycle(&locks);
                println!("cycle {ids:?}");
                serve_until(&reader, |m| m.partial_deadlocks == 1).await;
            });
            assert_eq!(rt.metrics().partial_deadlocks, 1);
        },
    );
    if is_child_process() {
        return;
    }
    assert!(
        report.contains("likely partial deadlock: 3 task(s)"),
        "{report}"
    );
    assert_eq!(
        report.matches("waits on: lock of mutex").count(),
        3,
        "{report}"
    );
    assert_eq!(report.matches("; it holds mutex").count(), 3, "{report}");
}

/// Two readers that both try to upgrade: each write waits for the other's read guard.
#[test]
fn rwlock_readers_that_upgrade_are_reported_while_the_server_answers() {
    let report = in_child(
        "rwlock_readers_that_upgrade_are_reported_while_the_server_answers",
        || {
            let rt = runtime(Duration::from_millis(300));
            let reader = rt.handle().metrics_reader();
            rt.block_on(async move {
                let lock = Arc::new(RwLock::new(0));
                let barrier = Arc::new(Barrier::new(2));
                for _ in 0..2 {
                    let (lock, barrier) = (lock.clone(), barrier.clone());
                    runnel::spawn(async move {
                        let read = lock.read().await;
                        barrier.wait().await;
                        // "Upgrade": take the write lock while still reading.
                        let mut write = lock.write().await;
                        *write += *read;
                    });
                }
                serve_until(&reader, |m| m.partial_deadlocks == 1).await;
            });
            assert_eq!(rt.metrics().partial_deadlocks, 1);
        },
    );
    if is_child_process() {
        return;
    }
    assert!(
        report.contains("likely partial deadlock: 2 task(s)"),
        "{report}"
    );
    assert_eq!(
        report.matches("waits on: write lock of rwlock").count(),
        2,
        "{report}"
    );
    assert_eq!(report.matches("; it holds rwlock").count(), 2, "{report}");
}

/// A pool of two permits, each held by a task that then wants one more.
#[test]
fn a_semaphore_exhaustion_cycle_is_reported_while_the_server_answers() {
    let report = in_child(
        "a_semaphore_exhaustion_cycle_is_reported_while_the_server_answers",
        || {
            let rt = runtime(Duration::from_millis(300));
            let reader = rt.handle().metrics_reader();
            rt.block_on(async move {
                let pool = Arc::new(Semaphore::new(2));
                let barrier = Arc::new(Barrier::new(2));
                for _ in 0..2 {
                    let (pool, barrier) = (pool.clone(), barrier.clone());
                    runnel::spawn(async move {
                        let _first = pool.acquire().await.unwrap();
                        barrier.wait().await;
                        let _second = pool.acquire().await.unwrap();
                    });
                }
                serve_until(&reader, |m| m.partial_deadlocks == 1).await;
            });
            assert_eq!(rt.metrics().partial_deadlocks, 1);
        },
    );
    if is_child_process() {
        return;
    }
    assert!(
        report.contains("likely partial deadlock: 2 task(s)"),
        "{report}"
    );
    assert_eq!(
        report.matches("waits on: permit of semaphore").count(),
        2,
        "{report}"
    );
}

/// Task A holds a mutex and awaits B's completion; B waits for the mutex.
#[test]
fn a_mixed_join_and_lock_cycle_is_reported_while_the_server_answers() {
    let report = in_child(
        "a_mixed_join_and_lock_cycle_is_reported_while_the_server_answers",
        || {
            let rt = runtime(Duration::from_millis(300));
            let reader = rt.handle().metrics_reader();
            rt.block_on(async move {
                let lock = Arc::new(Mutex::new(()));
                let (tx, rx) = futures::channel::oneshot::channel::<runnel::JoinHandle<()>>();
                let held = lock.clone();
                let (taken, is_taken) = futures::channel::oneshot::channel::<()>();
                runnel::spawn(async move {
                    let _guard = held.lock().await;
                    taken.send(()).unwrap();
                    let b = rx.await.unwrap();
                    b.await.unwrap();
                });
                // B only once A holds the lock: were B first, it would take and release
                // the lock and finish, and there would be no cycle to report.
                is_taken.await.unwrap();
                let b = runnel::spawn(async move {
                    drop(lock.lock().await);
                });
                tx.send(b).unwrap();
                serve_until(&reader, |m| m.partial_deadlocks == 1).await;
            });
            assert_eq!(rt.metrics().partial_deadlocks, 1);
        },
    );
    if is_child_process() {
        return;
    }
    assert!(
        report.contains("likely partial deadlock: 2 task(s)"),
        "{report}"
    );
    assert!(report.contains("waits on: join of task"), "{report}");
    assert!(report.contains("waits on: lock of mutex"), "{report}");
    assert!(report.contains("; it holds mutex"), "{report}");
}

/// A future that returns `Pending` without keeping the waker: nothing can wake it.
struct LostWaker;

impl Future for LostWaker {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

#[test]
fn a_lost_waker_is_reported_as_a_leak_while_the_server_answers() {
    let report = in_child(
        "a_lost_waker_is_reported_as_a_leak_while_the_server_answers",
        || {
            let rt = runtime(Duration::from_millis(300));
            let reader = rt.handle().metrics_reader();
            rt.block_on(async move {
                let leaked = runnel::spawn(async {
                    runnel::time::sleep(Duration::from_millis(1)).await;
                    LostWaker.await;
                });
                println!("leaked-task {}", leaked.id());
                serve_until(&reader, |m| m.leaked_tasks == 1).await;
                // Its JoinHandle is still here: a leak is about wakers, not handles.
                drop(leaked);
            });
            let m = rt.metrics();
            assert_eq!((m.leaked_tasks, m.partial_deadlocks), (1, 0), "{m:?}");
        },
    );
    if is_child_process() {
        return;
    }
    assert!(
        report.contains("leaked: it returned Pending and no waker for it exists"),
        "{report}"
    );
    assert!(
        report.contains("spawned at tests/wait_graph.rs:"),
        "{report}"
    );
}

/// `#[runnel::test]` fails with the report instead of hanging (run as a child: the test
/// itself must fail).
#[runnel::test]
#[ignore = "run by under_runnel_test_a_lock_cycle_fails_the_test, in a child process"]
async fn lock_cycle_under_runnel_test() {
    let locks: Vec<_> = (0..2).map(|_| Arc::new(Mutex::new(0))).collect();
    let ids = lock_cycle(&locks);
    // Awaiting the stuck tasks would hang forever without the report.
    let _ = ids;
    futures::future::pending::<()>().await;
}

#[test]
fn under_runnel_test_a_lock_cycle_fails_the_test() {
    let child = support::run_child("lock_cycle_under_runnel_test");
    assert_eq!(child.code, Some(101), "the test must fail: {child:?}");
    let out = format!("{}{}", child.stdout, child.stderr);
    assert!(
        out.contains("likely partial deadlock: 2 task(s)") && out.contains("panicked"),
        "{out}"
    );
}

// ---- no false alarm ---------------------------------------------------------------

/// Asserts the runtime reported nothing of any kind.
fn assert_silent(m: &RuntimeMetrics) {
    assert_eq!(
        (
            m.partial_deadlocks,
            m.leaked_tasks,
            m.deadlock_reports,
            m.stall_reports
        ),
        (0, 0, 0, 0),
        "a healthy program got a report: {m:?}"
    );
}

/// A short quiet period, so that anything these healthy programs are mistaken for would
/// be reported well within their run.
const SENSITIVE: Duration = Duration::from_millis(100);

/// A `std::thread` holds the only `Sender` and sends 300 ms later.
#[test]
fn no_report_a_foreign_thread_sends_later() {
    let rt = runtime(SENSITIVE);
    rt.block_on(async {
        let (tx, mut rx) = mpsc::channel::<u32>(1);
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            tx.blocking_send(7).unwrap();
        });
        let task = runnel::spawn(async move { rx.recv().await });
        assert_eq!(task.await.unwrap(), Some(7));
        thread.join().unwrap();
    });
    assert_silent(&rt.metrics());
}

/// A `std::thread` holds an `OwnedMutexGuard` (taken by the thread, or by a task that
/// handed it over and now awaits the waiter) and releases it 300 ms later. The second
/// case is the presumption at work: the record names the task that took the guard, so
/// the quiet period (default 1 s) is what keeps it from being reported.
#[test]
fn no_report_a_foreign_thread_holds_an_owned_guard() {
    let rt = runtime(SENSITIVE);
    rt.block_on(async {
        let lock = Arc::new(Mutex::new(0));
        let (taken_tx, taken_rx) = std::sync::mpsc::channel();
        let held = lock.clone();
        let thread = std::thread::spawn(move || {
            let guard = held.blocking_lock_owned();
            taken_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            drop(guard);
        });
        runnel::task::spawn_blocking(move || taken_rx.recv().unwrap())
            .await
            .unwrap();
        let waiter = lock.clone();
        runnel::spawn(async move { *waiter.lock().await += 1 })
            .await
            .unwrap();
        thread.join().unwrap();
    });
    assert_silent(&rt.metrics());

    let rt = runtime(Duration::from_secs(1));
    rt.block_on(async {
        let lock = Arc::new(Mutex::new(0));
        let (guard_tx, guard_rx) = std::sync::mpsc::channel::<runnel::sync::OwnedMutexGuard<u32>>();
        let thread = std::thread::spawn(move || {
            let guard = guard_rx.recv().unwrap();
            std::thread::sleep(Duration::from_millis(300));
            drop(guard);
        });
        let waiter_lock = lock.clone();
        let taker = runnel::spawn(async move {
            let guard = lock.lock_owned().await;
            guard_tx.send(guard).unwrap();
            // Now await a task that waits for the lock the thread holds.
            runnel::spawn(async move { *waiter_lock.lock().await += 1 })
                .await
                .unwrap();
        });
        taker.await.unwrap();
        thread.join().unwrap();
    });
    assert_silent(&rt.metrics());
}

/// A worker pool idle for seconds on a shared receiver (the `Mutex<Receiver>` pattern:
/// one worker waits in `recv` holding the mutex, the others wait for the mutex), then
/// served.
#[test]
fn no_report_a_worker_pool_idles_for_seconds() {
    let rt = runtime(SENSITIVE);
    rt.block_on(async {
        let (tx, rx) = mpsc::unbounded_channel::<u64>();
        let rx = Arc::new(Mutex::new(rx));
        let done = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let (rx, done) = (rx.clone(), done.clone());
                runnel::spawn(async move {
                    loop {
                        let job = rx.lock().await.recv().await;
                        match job {
                            Some(_) => done.fetch_add(1, SeqCst),
                            None => break,
                        };
                    }
                })
            })
            .collect();
        // Idle: nothing to do for 2 s (many scans, each far past the quiet period).
        runnel::time::sleep(Duration::from_secs(2)).await;
        for job in 0..100 {
            tx.send(job).unwrap();
        }
        drop(tx);
        for worker in workers {
            worker.await.unwrap();
        }
        assert_eq!(done.load(SeqCst), 100);
    });
    assert_silent(&rt.metrics());
}

/// A consumer fed by a producer task that is merely slow.
#[test]
fn no_report_a_channel_fed_by_a_slow_task() {
    let rt = runtime(SENSITIVE);
    rt.block_on(async {
        let (tx, mut rx) = mpsc::channel::<u32>(1);
        runnel::spawn(async move {
            for i in 0..4 {
                runnel::time::sleep(Duration::from_millis(300)).await;
                tx.send(i).await.unwrap();
            }
        });
        let consumer = runnel::spawn(async move {
            let mut got = Vec::new();
            while let Some(i) = rx.recv().await {
                got.push(i);
            }
            got
        });
        assert_eq!(consumer.await.unwrap(), vec![0, 1, 2, 3]);
    });
    assert_silent(&rt.metrics());
}

/// A waker kept by a `std::thread` that wakes the task 300 ms later: not a leak.
#[test]
fn no_report_a_waker_held_by_a_foreign_thread() {
    let rt = runtime(SENSITIVE);
    rt.block_on(async {
        let slot: Arc<StdMutex<(bool, Option<Waker>)>> = Arc::default();
        let thread_slot = slot.clone();
        let task = runnel::spawn(std::future::poll_fn(move |cx| {
            let mut s = slot.lock().unwrap();
            if s.0 {
                return Poll::Ready(());
            }
            s.1 = Some(cx.waker().clone());
            Poll::Pending
        }));
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let waker = {
                let mut s = thread_slot.lock().unwrap();
                s.0 = true;
                s.1.take()
            };
            if let Some(waker) = waker {
                waker.wake();
            }
        });
        task.await.unwrap();
        thread.join().unwrap();
    });
    assert_silent(&rt.metrics());
}

/// Waits on a `Notify` or `WaitGroup` that someone else can signal, 700 ms later (past the
/// quiet period plus two scans, so a mistaken vertex would be reported first): a
/// sub-future of the same task woken by a timer, a task holding a `WaitGroupToken`, a
/// task sharing the `Notify` through an `Arc`, and a `Notified` dropped in the poll that
/// registered it before the task goes on to wait on a foreign channel (its wait reason
/// still says "notify"; the registration ended with it).
#[test]
fn no_report_a_notify_or_wait_group_signalled_later() {
    let rt = runtime(SENSITIVE);
    rt.block_on(async {
        const LATER: Duration = Duration::from_millis(700);
        let later = || runnel::time::sleep(LATER);
        let own_branch = runnel::spawn(async move {
            let notify = runnel::sync::Notify::new();
            let wg = runnel::sync::WaitGroup::new();
            wg.add(1);
            runnel::join!(notify.notified(), wg.wait(), async {
                later().await;
                notify.notify_one();
                wg.done();
            });
        });
        let token_holder = runnel::spawn(async move {
            let wg = runnel::sync::WaitGroup::new();
            let token = wg.token();
            runnel::spawn(async move {
                later().await;
                drop(token);
            });
            wg.wait().await;
        });
        let shared = Arc::new(runnel::sync::Notify::new());
        let notifier = shared.clone();
        let arc_waiter = runnel::spawn(async move { shared.notified().await });
        runnel::spawn(async move {
            later().await;
            notifier.notify_one();
        });
        let (tx, rx) = futures::channel::oneshot::channel::<u32>();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(LATER);
            tx.send(5).unwrap();
        });
        let stale_reason = runnel::spawn(async move {
            let notify = runnel::sync::Notify::new();
            // Boxed, so that `drop` ends it here (a `pin!`ned one lives to the block's end).
            let mut notified = Box::pin(notify.notified());
            std::future::poll_fn(|cx| {
                assert!(notified.as_mut().poll(cx).is_pending());
                Poll::Ready(())
            })
            .await;
            drop(notified);
            rx.await.unwrap()
        });
        own_branch.await.unwrap();
        token_holder.await.unwrap();
        arc_waiter.await.unwrap();
        assert_eq!(stale_reason.await.unwrap(), 5);
        thread.join().unwrap();
    });
    assert_silent(&rt.metrics());
}

/// Many tasks taking and releasing mutexes, an `RwLock` and a semaphore, holding them
/// across yields and sleeps, for about two seconds.
#[test]
fn no_report_lock_churn() {
    let rt = runtime(SENSITIVE);
    rt.block_on(async {
        let locks: Arc<Vec<Mutex<u64>>> = Arc::new((0..4).map(|_| Mutex::new(0)).collect());
        let table = Arc::new(RwLock::new(0u64));
        let pool = Arc::new(Semaphore::new(3));
        let deadline = Instant::now() + Duration::from_secs(2);
        let tasks: Vec<_> = (0..16)
            .map(|t| {
                let (locks, table, pool) = (locks.clone(), table.clone(), pool.clone());
                runnel::spawn(async move {
                    let mut rounds = 0u64;
                    while Instant::now() < deadline {
                        let _permit = pool.acquire().await.unwrap();
                        // Always in index order: churn, not a deadlock.
                        let (i, j) = (t % 4, (t + 1 + rounds as usize) % 4);
                        let (lo, hi) = (i.min(j), i.max(j));
                        let mut a = locks[lo].lock().await;
                        runnel::task::yield_now().await;
                        if lo != hi {
                            *locks[hi].lock().await += 1;
                        }
                        *a += 1;
                        drop(a);
                        if rounds % 5 == 0 {
                            *table.write().await += 1;
                            runnel::time::sleep(Duration::from_millis(1)).await;
                        } else {
                            let _r = table.read().await;
                            runnel::task::yield_now().await;
                        }
                        rounds += 1;
                    }
                    rounds
                })
            })
            .collect();
        let mut total = 0;
        for task in tasks {
            total += task.await.unwrap();
        }
        assert!(total > 0);
    });
    assert_silent(&rt.metrics());
}

/// The limit, shown: a guard handed to a thread that holds it longer than the quiet
/// period, while the task that took it awaits the lock's waiter, is reported as a likely
/// deadlock although the thread will release it. (The record names the task that took
/// the guard; nothing tells the lock that the guard moved.)
#[test]
fn limit_a_moved_guard_held_past_the_quiet_period_is_reported_as_likely() {
    let rt = runtime(SENSITIVE);
    let reader = rt.handle().metrics_reader();
    rt.block_on(async move {
        let lock = Arc::new(Mutex::new(0));
        let (guard_tx, guard_rx) = std::sync::mpsc::channel::<runnel::sync::OwnedMutexGuard<u32>>();
        let (reported_tx, reported_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let guard = guard_rx.recv().unwrap();
            // Released only once the report is out (the scenario, not a sleep).
            reported_rx.recv().unwrap();
            drop(guard);
        });
        let waiter_lock = lock.clone();
        let taker = runnel::spawn(async move {
            let guard = lock.lock_owned().await;
            guard_tx.send(guard).unwrap();
            runnel::spawn(async move { *waiter_lock.lock().await += 1 })
                .await
                .unwrap();
        });
        let deadline = Instant::now() + support::PATIENCE;
        while reader.snapshot().partial_deadlocks == 0 {
            assert!(Instant::now() < deadline, "no report");
            runnel::time::sleep(Duration::from_millis(10)).await;
        }
        reported_tx.send(()).unwrap();
        taker.await.unwrap();
        thread.join().unwrap();
    });
    assert_eq!(rt.metrics().partial_deadlocks, 1);
}
