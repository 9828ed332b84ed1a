//! `runnel::sync::Mutex` against `tokio::sync::Mutex`, same process, same executor per
//! row, so only the lock differs.
//!
//! Run: `cargo bench --bench sync`. Rows:
//! - `uncontended/*`: 1 000 lock/unlock pairs in one future under
//!   `futures::executor::block_on` (no runtime at all: the pure lock cost).
//! - `contended_2_tasks/*`: two tasks each doing 5 000 lock/increment/unlock on one
//!   mutex, on a 2-worker runtime; rows for runnel's runtime and tokio's, each with both
//!   locks.
//! - `contended_hold_yield/*`: as above but holding the lock across a `yield_now`, so
//!   every lock after the first waits in the queue (the slow path every time).
//! - `notify_ping_pong/*`: two tasks on a runnel current-thread runtime (one thread, so
//!   no cross-thread wake noise) passing the turn 2 000 times through two `Notify`s,
//!   runnel's and tokio's: every `notified()` waits (registers its waker, and on runnel
//!   its address for the wait-for graph).

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};

const UNCONTENDED: u64 = 1_000;
const PER_TASK: u64 = 5_000;

fn uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("uncontended");
    let runnel_m = runnel::sync::Mutex::new(0u64);
    g.bench_function("runnel", |b| {
        b.iter(|| {
            futures::executor::block_on(async {
                for _ in 0..UNCONTENDED {
                    *runnel_m.lock().await += 1;
                }
            })
        })
    });
    let tokio_m = tokio::sync::Mutex::new(0u64);
    g.bench_function("tokio", |b| {
        b.iter(|| {
            futures::executor::block_on(async {
                for _ in 0..UNCONTENDED {
                    *tokio_m.lock().await += 1;
                }
            })
        })
    });
    g.finish();
}

/// Two tasks hammering one mutex; `$yield` is awaited while holding it (or not).
macro_rules! two_tasks {
    ($spawn:path, $yield_now:expr, $mutex:ty, $hold_yield:expr) => {
        async {
            let m = Arc::new(<$mutex>::new(0u64));
            let tasks: Vec<_> = (0..2)
                .map(|_| {
                    let m = m.clone();
                    $spawn(async move {
                        for _ in 0..PER_TASK {
                            let mut g = m.lock().await;
                            *g += 1;
                            if $hold_yield {
                                $yield_now.await;
                            }
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            assert_eq!(*m.lock().await, 2 * PER_TASK);
        }
    };
}

fn contended(c: &mut Criterion) {
    let rn = runnel::Builder::new().worker_threads(2).build().unwrap();
    let tk = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    for (group, hold) in [("contended_2_tasks", false), ("contended_hold_yield", true)] {
        let mut g = c.benchmark_group(group);
        g.sample_size(30);
        g.bench_function("runnel_rt/runnel_mutex", |b| {
            b.iter(|| {
                rn.block_on(two_tasks!(
                    runnel::spawn,
                    runnel::task::yield_now(),
                    runnel::sync::Mutex<u64>,
                    hold
                ))
            })
        });
        g.bench_function("runnel_rt/tokio_mutex", |b| {
            b.iter(|| {
                rn.block_on(two_tasks!(
                    runnel::spawn,
                    runnel::task::yield_now(),
                    tokio::sync::Mutex<u64>,
                    hold
                ))
            })
        });
        g.bench_function("tokio_rt/runnel_mutex", |b| {
            b.iter(|| {
                tk.block_on(two_tasks!(
                    tokio::spawn,
                    tokio::task::yield_now(),
                    runnel::sync::Mutex<u64>,
                    hold
                ))
            })
        });
        g.bench_function("tokio_rt/tokio_mutex", |b| {
            b.iter(|| {
                tk.block_on(two_tasks!(
                    tokio::spawn,
                    tokio::task::yield_now(),
                    tokio::sync::Mutex<u64>,
                    hold
                ))
            })
        });
        g.finish();
    }
}

const ROUNDS: u64 = 2_000;

/// Two tasks taking turns through two `Notify`s of type `$notify`.
macro_rules! ping_pong {
    ($notify:ty) => {
        async {
            let ping = Arc::new(<$notify>::new());
            let pong = Arc::new(<$notify>::new());
            let (their_ping, their_pong) = (ping.clone(), pong.clone());
            let other = runnel::spawn(async move {
                for _ in 0..ROUNDS {
                    their_ping.notified().await;
                    their_pong.notify_one();
                }
            });
            for _ in 0..ROUNDS {
                ping.notify_one();
                pong.notified().await;
            }
            other.await.unwrap();
        }
    };
}

fn notify_ping_pong(c: &mut Criterion) {
    let rn = runnel::Builder::new_current_thread().build().unwrap();
    let mut g = c.benchmark_group("notify_ping_pong");
    g.sample_size(30);
    g.bench_function("runnel_rt/runnel_notify", |b| {
        b.iter(|| rn.block_on(ping_pong!(runnel::sync::Notify)))
    });
    g.bench_function("runnel_rt/tokio_notify", |b| {
        b.iter(|| rn.block_on(ping_pong!(tokio::sync::Notify)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = uncontended, contended, notify_ping_pong
}
criterion_main!(benches);
