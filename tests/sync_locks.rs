//! `runnel::sync` locks on the runnel runtime (2 workers, deadlock detector set to panic):
//! random cancellation loses no permit, mutual exclusion under stress, FIFO hand-over,
//! writer preference, Notify and Barrier with real tasks; and once on foreign executors
//! (`futures::executor`) to show the primitives are runtime-agnostic. A lost wakeup or
//! permit shows as a hang, so every scenario runs in a child process with a kill timeout.

mod support;

/// Each scenario below can only fail by hanging if a wakeup or a permit is lost, so the
/// test of the same name runs it in a child process that is killed if it hangs.
macro_rules! in_child {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run_scenario(concat!("scenario_", stringify!($name)));
            }
        )*
    };
}

in_child!(
    semaphore_random_cancellation_loses_no_permit,
    mutex_counter_is_exact_under_contention,
    cancelled_lock_passes_the_unlock_on,
    mutex_is_fifo,
    owned_guard_moves_into_another_task,
    blocking_lock_from_a_blocking_thread,
    rwlock_queued_writer_blocks_later_readers,
    rwlock_cancelled_writer_lets_readers_in,
    rwlock_stress_readers_and_writers,
    notify_enable_then_check_loses_no_wakeup,
    notify_waiters_wakes_every_registered_task,
    barrier_has_one_leader_per_round,
);

fn run_scenario(name: &str) {
    let child = support::run_child(name);
    println!(
        "child stdout:\n{}\nchild stderr:\n{}",
        child.stdout, child.stderr
    );
    let code = child.code.unwrap_or_else(|| {
        panic!(
            "{name} hung (a lost wakeup or permit): killed after {:?}",
            2 * support::PATIENCE
        )
    });
    assert_eq!(code, 0, "{name} failed");
    assert!(
        child.stdout.contains("1 passed"),
        "the child did not run {name}"
    );
}

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::channel::oneshot;
use runnel::sync::{Barrier, Mutex, Notify, RwLock, Semaphore};
use runnel::task::yield_now;

/// Polls `inner` at most `polls` times, then drops it (a cancellation at a chosen point).
struct CancelAfter<F> {
    inner: Pin<Box<F>>,
    polls: u32,
}

impl<F: Future> Future for CancelAfter<F> {
    type Output = Option<F::Output>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.polls == 0 {
            return Poll::Ready(None);
        }
        self.polls -= 1;
        match self.inner.as_mut().poll(cx) {
            Poll::Ready(v) => Poll::Ready(Some(v)),
            // Wake ourselves so the next "poll budget" is spent soon: the cancellation
            // then lands anywhere in the waiter's life (queued, partially assigned,
            // granted but not yet polled).
            Poll::Pending => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
}

fn cancel_after<F: Future>(polls: u32, inner: F) -> CancelAfter<F> {
    CancelAfter {
        inner: Box::pin(inner),
        polls,
    }
}

/// Pending once (waking itself), then ready: a yield that any executor understands.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// xorshift: reproducible "random" choices per task.
fn next(seed: &mut u32) -> u32 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 17;
    *seed ^= *seed << 5;
    *seed
}

#[runnel::test]
#[ignore = "a scenario: run in a child process by the test of the same name"]
async fn scenario_semaphore_random_cancellation_loses_no_permit() {
    const PERMITS: usize = 5;
    let sem = Arc::new(Semaphore::new(PERMITS));
    let in_use = Arc::new(AtomicUsize::new(0));
    let acquired = Arc::new(AtomicUsize::new(0));
    let cancelled = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..24u32)
        .map(|t| {
            let (sem, in_use) = (sem.clone(), in_use.clone());
            let (acquired, cancelled) = (acquired.clone(), cancelled.clone());
            runnel::spawn(async move {
                let mut seed = 0x2545_F491 ^ (t + 1).wrapping_mul(0x9E37_79B9);
                for _ in 0..1000 {
                    let r = next(&mut seed);
                    let n = r % 3 + 1;
                    let permit = match r >> 8 & 3 {
                        // Cancelled by a timer, wherever the waiter is at that moment.
                        0 => {
                            let wait = Duration::from_micros(u64::from(r >> 12 & 511));
                            runnel::time::timeout(wait, sem.acquire_many(n)).await.ok()
                        }
                        // Cancelled after a few polls.
                        1 | 2 => cancel_after(r >> 12 & 3, sem.acquire_many(n)).await,
                        _ => Some(sem.acquire_many(n).await),
                    };
                    let Some(permit) = permit else {
                        cancelled.fetch_add(1, SeqCst);
                        continue;
                    };
                    let permit = permit.unwrap();
                    let now = in_use.fetch_add(n as usize, SeqCst) + n as usize;
                    assert!(now <= PERMITS, "{now} permits in use out of {PERMITS}");
                    acquired.fetch_add(1, SeqCst);
                    if r & 1 == 0 {
                        yield_now().await;
                    }
                    in_use.fetch_sub(n as usize, SeqCst);
                    drop(permit);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(sem.available_permits(), PERMITS);
    assert!(
        sem.try_acquire_many(PERMITS as u32).is_ok(),
        "queue left empty"
    );
    // Both outcomes happened, or the test proved nothing.
    assert!(acquired.load(SeqCst) > 0 && cancelled.load(SeqCst) > 0);
}

#[runnel::test]
#[ignore = "a scenario: run in a child process by the test of the same name"]
async fn scenario_mutex_counter_is_exact_under_contention() {
    const TASKS: u64 = 16;
    const ROUNDS: u64 = 500;
    let counter = Arc::new(Mutex::new(0u64));
    let inside = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let (counter, inside) = (counter.clone(), inside.clone());
            runnel::spawn(async move {
                for i in 0..ROUNDS {
                    let mut n = counter.lock().await;
                    assert!(!inside.swap(true, SeqCst), "two holders at once");
                    let seen = *n;
                    if (i + t) % 4 == 0 {
                        yield_now().await; // hold it across a suspension
                    }
                    *n = seen + 1;
                    inside.store(false, SeqCst);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*counter.lock().await, TASKS * ROUNDS);
}

#[runnel::test]
#[ignore = "a scenario: run in a child process by the test of the same name"]
async fn scenario_cancelled_lock_passes_the_unlock_on() {
    let m = Arc::new(Mutex::new(0));
    let guard = m.lock().await;
    // A queued `lock` future, dropped after the unlock handed it the lock.
    let mut doomed = Box::pin(m.lock());
    assert!(futures::poll!(doomed.as_mut()).is_pending());
    let (tx, rx) = oneshot::channel();
    let m2 = m.clone();
    let waiter = runnel::spawn(async move {
        let mut lock = pin!(m2.lock());
        // Registered before we report, so it is queued behind `doomed`.
        assert!(futures::poll!(lock.as_mut()).is_pending());
        tx.send(()).unwrap();
        *lock.await += 1;
    });
    rx.await.unwrap();
    drop(guard); // handed to `doomed`...
    drop(doomed); // ...which gives it on to `waiter`
    waiter.await.unwrap();
    assert_eq!(*m.lock().await, 1);
    assert!(m.try_lock().is_ok());
}

#[runnel::test]
#[ignore = "a scenario: run in a child process by the test of the same name"]
async fn scenario_mutex_is_fifo() {
    let m = Arc::new(Mutex::new(Vec::new()));
    let guard = m.lock().await;
    let mut waiters = Vec::new();
    for i in 0..8 {
        let (tx, rx) = oneshot::channel();
        let m = m.clone();
        waiters.push(runnel::spawn(async move {
            let mut lock = pin!(m.lock());
            assert!(futures::poll!(lock.as_mut()).is_pending());
            tx.send(()).unwrap();
            lock.await.push(i);
        }));
        rx.await.unwrap(); // waiter i is queued before i + 1 starts
    }
    assert!(m.try_lock().is_err(), "queued waiters come first");
    drop(guard);
    for w in waiters {
        w.await.unwrap();
    }
    assert_eq!(*m.lock().await, (0..8).collect::<Vec<_>>());
}

#[runnel::test]
#[ignore = "a scenario: run in a child process by the test of the same name"]
async fn scenario_owned_guard_moves_into_another_task() {
    let m = Arc::new(Mutex::new(String::new()));
    let mut guard = m.clone().lock_owned().await;
    guard.push('a');
    let t = runnel::spawn(async move {
        guard.push('b');
    });
    t.await.unwrap();
    assert_eq!(*m.lock().await, "ab");
    assert!(m.clone().try_lock_owned().is_ok());
}

#[runnel::test]
#[ignore = "a scenario: run in a child process by the test of the same name"]
async fn scenario_blocking_lock_from_a_blocking_thread() {
    let m = Arc::new(Mutex::new(0));
    let guard = m.lock().await;
    let m2 = m.clone();
    let (tx, rx) = oneshot::channel();
    let job = runnel::spawn_blocking(move || {
        tx.send(()).unwrap();
        *m2.blocking_lock() += 1; // parks until the task below unlocks
    });
    rx.await.unwrap();
    drop(guard);
    job.await.unwrap();
    assert_eq!(*m.lock().await, 1);
}

#[runnel::test]
#[ignore = "a scenario: run in a child process by the test of the same name"]
async fn scenario_rwlock_queued_writer_blocks_later_readers() {
    let lock = Arc::new(RwLock::new(0));
    let r1 = lock.read().await;
    let mut writer = Box::pin(lock.write());
    assert!(futures::poll!(writer.as_mut()).is_pending());
    assert!(
        lock.try_read().is_err(),
        "a reader may not overtake a queued writer"
    );
    let mut reader = Box::pin(lock.read());
    assert!(futures::poll!(reader.as_mut()).is_pending());
    drop(r1);
    let mut w = writer.await;
    *w = 7;
    assert!(
        futures::poll!(reader.as_mut()).is_pending(),
        "writer holds it"
    );
    drop(w);
    assert_eq!(*reader.await, 7);
}

#[runnel::test]
#[ignore = "a scenario: run in a child process by the test of the same name"]
async fn scenario_rwlock_cancelled_writer_lets_readers_in() {
    let lock = RwLock::with_max_readers(0, 4);
    let r1 = lock.read().await;
    let mut writer = Box::pin(lock.write()); // collects 3 of 4 permits, waits for r1's
    assert!(futures::poll!(writer.as_mut()).is_pending());
    assert!(lock.try_read().is_err());
    drop(writer);
    let r2 = lock
        .try_read()
        .expect("the cancelled writer gave its permits back");
    drop((r1, r2));
    assert!(lock.try_write().is_ok());
}

#[runnel::test]
#[ignore = "a scenario: run in a child process by the test of the same name"]
async fn scenario_rwlock_stress_readers_and_writers() {
    let lock = Arc::new(RwLock::with_max_readers((0u64, 0u64), 8));
    let tasks: Vec<_> = (0..12u64)
        .map(|t| {
            let lock = lock.clone();
            runnel::spawn(async move {
                for i in 0..200u64 {
                    if (t + i) % 3 == 0 {
                        let mut w = lock.write().await;
                        w.0 += 1;
                        yield_now().await;
                        w.1 += 1;
                    } else {
                        let r = lock.read().await;
                        assert_eq!(r.0, r.1, "a reader saw a half-done write");
                        if i % 2 == 0 {
                            yield_now().await;
                        }
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let expected = (0..12u64)
        .map(|t| (0..200u64).filter(|i| (t + i) % 3 == 0).count() as u64)
        .sum::<u64>();
    assert_eq!(*lock.read().await, (expected, expected));
}

#[runnel::test]
#[ignore = "a scenario: run in a child process by the test of the same name"]
async fn scenario_notify_enable_then_check_loses_no_wakeup() {
    // A consumer that checks a flag between `enable` and `await` must see every item.
    let notify = Arc::new(Notify::new());
    let items = Arc::new(AtomicUsize::new(0));
    let consumer = {
        let (notify, items) = (notify.clone(), items.clone());
        runnel::spawn(async move {
            let mut seen = 0;
            while seen < 1000 {
                let mut notified = pin!(notify.notified());
                notified.as_mut().enable();
                let now = items.load(SeqCst);
                if now > seen {
                    seen = now;
                    continue;
                }
                notified.await;
            }
            seen
        })
    };
    for _ in 0..1000 {
        items.fetch_add(1, SeqCst);
        notify.notify_one();
        if items.load(SeqCst) % 7 == 0 {
            yield_now().await;
        }
    }
    assert_eq!(consumer.await.unwrap(), 1000);
}

#[runnel::test]
#[ignore = "a scenario: run in a child process by the test of the same name"]
async fn scenario_notify_waiters_wakes_every_registered_task() {
    let notify = Arc::new(Notify::new());
    let registered = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (notify, registered) = (notify.clone(), registered.clone());
            runnel::spawn(async move {
                let notified = notify.notified(); // counts from creation
                registered.fetch_add(1, SeqCst);
                notified.await;
            })
        })
        .collect();
    while registered.load(SeqCst) < 10 {
        yield_now().await;
    }
    notify.notify_waiters();
    for t in tasks {
        t.await.unwrap();
    }
}

#[runnel::test]
#[ignore = "a scenario: run in a child process by the test of the same name"]
async fn scenario_barrier_has_one_leader_per_round() {
    const N: usize = 6;
    const ROUNDS: usize = 20;
    let barrier = Arc::new(Barrier::new(N));
    let leaders = Arc::new(AtomicUsize::new(0));
    let arrived = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..N)
        .map(|_| {
            let (barrier, leaders, arrived) = (barrier.clone(), leaders.clone(), arrived.clone());
            runnel::spawn(async move {
                for round in 0..ROUNDS {
                    arrived.fetch_add(1, SeqCst);
                    let leader = barrier.wait().await.is_leader();
                    // Nobody passes round r before all N arrived in it.
                    assert!(arrived.load(SeqCst) >= (round + 1) * N);
                    if leader {
                        leaders.fetch_add(1, SeqCst);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(leaders.load(SeqCst), ROUNDS);
}

/// The same primitives on foreign executors: several threads, each with its own
/// `futures` LocalPool, contend on one Mutex and one Semaphore (wakes cross executors).
#[test]
fn runtime_agnostic_on_futures_executor() {
    support::in_child_process("runtime_agnostic_on_futures_executor", agnostic_scenario);
}

fn agnostic_scenario() {
    use futures::executor::LocalPool;
    use futures::task::LocalSpawnExt;

    let counter = Arc::new(Mutex::new(0u64));
    let sem = Arc::new(Semaphore::new(2));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (counter, sem) = (counter.clone(), sem.clone());
            std::thread::spawn(move || {
                let mut pool = LocalPool::new();
                for t in 0..8u32 {
                    let (counter, sem) = (counter.clone(), sem.clone());
                    pool.spawner()
                        .spawn_local(async move {
                            for i in 0..200u32 {
                                let _permit = sem.acquire().await.unwrap();
                                let mut n = counter.lock().await;
                                if (i + t) % 5 == 0 {
                                    YieldOnce(false).await; // hold it across a suspension
                                }
                                *n += 1;
                            }
                        })
                        .unwrap();
                }
                pool.run();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(*futures::executor::block_on(counter.lock()), 4 * 8 * 200);
    assert_eq!(sem.available_permits(), 2);
}

/// Two tasks taking two mutexes in opposite order can never finish. The detector cannot
/// prove it (the waiting tasks' wakers sit in the mutexes' queues, which it cannot see
/// into), so under the rule this is "maybe": a stall report, never a deadlock report.
/// Naming it a deadlock needs a wait-for graph (who holds each lock), a follow-up.
#[test]
fn lock_order_inversion_gives_a_stall_report_not_a_deadlock_report() {
    let rt = support::builder(2)
        .on_deadlock(runnel::OnDeadlock::Panic)
        .stall_report_after(Some(Duration::from_millis(20)))
        .build()
        .unwrap();
    let reader = rt.handle().metrics_reader();
    let (give_up, gave_up) = oneshot::channel::<()>();
    let watcher = std::thread::spawn(move || {
        support::wait_until("a stall report", || reader.snapshot().stall_reports >= 1);
        drop(give_up); // ends block_on below (and, if the wait failed, after the panic)
    });
    rt.block_on(async {
        let (a, b) = (Arc::new(Mutex::new(())), Arc::new(Mutex::new(())));
        let barrier = Arc::new(Barrier::new(2));
        let take = |first: Arc<Mutex<()>>, second: Arc<Mutex<()>>, barrier: Arc<Barrier>| {
            runnel::spawn(async move {
                let _first = first.lock().await;
                barrier.wait().await; // both hold their first lock now
                let _second = second.lock().await;
            })
        };
        let _t1 = take(a.clone(), b.clone(), barrier.clone());
        let _t2 = take(b, a, barrier);
        let _ = gave_up.await;
    });
    watcher.join().unwrap();
    let m = rt.metrics();
    assert_eq!(m.deadlock_reports, 0, "{m:?}");
    assert!(m.stall_reports >= 1, "{m:?}");
    drop(rt); // cancels the two stuck tasks; their lock futures leave the queues
}
