//! Scheduler benchmarks: the same workloads on runnel and on tokio's multi-thread runtime,
//! with the same worker count, in one criterion run.
//!
//! Run: `cargo bench --bench scheduler` (the README's table comes from it).
//! Shapes follow tokio's own `rt_multi_threaded` benches so the numbers compare directly.
//! Completion is signalled over `std::sync::mpsc`, which neither runtime owns.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{mpsc, Arc};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

const WORKERS: usize = 2;
const NUM_SPAWN: usize = 10_000;
const PING_PONG: usize = 1_000;
const YIELD_TASKS: usize = 200;
const YIELDS: usize = 1_000;
const CHAIN: usize = 1_000;

/// One workload written once, instantiated per runtime (identical code shape).
macro_rules! workloads {
    ($modname:ident, $spawn:path, $yield_now:path) => {
        mod $modname {
            use super::*;

            pub fn spawn_many_local(run: &dyn Fn(Box<dyn FnOnce() + Send>)) {
                let (tx, rx) = mpsc::sync_channel(1);
                let rem = Arc::new(AtomicUsize::new(NUM_SPAWN));
                run(Box::new(move || {
                    for _ in 0..NUM_SPAWN {
                        let tx = tx.clone();
                        let rem = rem.clone();
                        $spawn(async move {
                            if rem.fetch_sub(1, Relaxed) == 1 {
                                tx.send(()).unwrap();
                            }
                        });
                    }
                }));
                rx.recv().unwrap();
            }

            pub fn spawn_many_remote<
                F: Fn(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>),
            >(
                spawn: F,
            ) {
                let (tx, rx) = mpsc::sync_channel(1);
                let rem = Arc::new(AtomicUsize::new(NUM_SPAWN));
                for _ in 0..NUM_SPAWN {
                    let tx = tx.clone();
                    let rem = rem.clone();
                    spawn(Box::pin(async move {
                        if rem.fetch_sub(1, Relaxed) == 1 {
                            tx.send(()).unwrap();
                        }
                    }));
                }
                rx.recv().unwrap();
            }

            pub fn ping_pong(run: &dyn Fn(Box<dyn FnOnce() + Send>)) {
                let (done_tx, done_rx) = mpsc::sync_channel(1);
                let rem = Arc::new(AtomicUsize::new(PING_PONG));
                run(Box::new(move || {
                    for _ in 0..PING_PONG {
                        let rem = rem.clone();
                        let done_tx = done_tx.clone();
                        $spawn(async move {
                            let (tx1, rx1) = futures::channel::oneshot::channel();
                            let (tx2, rx2) = futures::channel::oneshot::channel();
                            $spawn(async move {
                                rx1.await.unwrap();
                                tx2.send(()).unwrap();
                            });
                            tx1.send(()).unwrap();
                            rx2.await.unwrap();
                            if rem.fetch_sub(1, Relaxed) == 1 {
                                done_tx.send(()).unwrap();
                            }
                        });
                    }
                }));
                done_rx.recv().unwrap();
            }

            pub fn yield_many(run: &dyn Fn(Box<dyn FnOnce() + Send>)) {
                let (tx, rx) = mpsc::sync_channel(YIELD_TASKS);
                run(Box::new(move || {
                    for _ in 0..YIELD_TASKS {
                        let tx = tx.clone();
                        $spawn(async move {
                            for _ in 0..YIELDS {
                                $yield_now().await;
                            }
                            tx.send(()).unwrap();
                        });
                    }
                }));
                for _ in 0..YIELD_TASKS {
                    rx.recv().unwrap();
                }
            }

            pub fn chained_spawn(run: &dyn Fn(Box<dyn FnOnce() + Send>)) {
                fn iter(done: mpsc::SyncSender<()>, n: usize) {
                    if n == 0 {
                        done.send(()).unwrap();
                    } else {
                        $spawn(async move { iter(done, n - 1) });
                    }
                }
                let (done_tx, done_rx) = mpsc::sync_channel(1);
                run(Box::new(move || iter(done_tx, CHAIN)));
                done_rx.recv().unwrap();
            }
        }
    };
}

workloads!(on_runnel, runnel::spawn, runnel::task::yield_now);
workloads!(on_tokio, tokio::spawn, tokio::task::yield_now);

fn runnel_rt() -> runnel::Runtime {
    runnel::Builder::new()
        .worker_threads(WORKERS)
        .build()
        .unwrap()
}

/// The same runtime with the deadlock check off: the difference is the detector's cost.
fn runnel_nocheck_rt() -> runnel::Runtime {
    runnel::Builder::new()
        .worker_threads(WORKERS)
        .disable_deadlock_check_for_benchmarks()
        .build()
        .unwrap()
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let rn = runnel_rt();
    let rn_off = runnel_nocheck_rt();
    let tk = tokio_rt();
    // `run` executes the closure on a worker (a task), as the "local" workloads need.
    let run_rn = |f: Box<dyn FnOnce() + Send>| {
        rn.spawn(async move { f() });
    };
    let run_rn_off = |f: Box<dyn FnOnce() + Send>| {
        rn_off.spawn(async move { f() });
    };
    let run_tk = |f: Box<dyn FnOnce() + Send>| {
        tk.spawn(async move { f() });
    };
    type Workload = fn(&dyn Fn(Box<dyn FnOnce() + Send>));
    let local: [(&str, Workload, Workload); 4] = [
        (
            "spawn_many_local",
            on_runnel::spawn_many_local,
            on_tokio::spawn_many_local,
        ),
        ("ping_pong", on_runnel::ping_pong, on_tokio::ping_pong),
        ("yield_many", on_runnel::yield_many, on_tokio::yield_many),
        (
            "chained_spawn",
            on_runnel::chained_spawn,
            on_tokio::chained_spawn,
        ),
    ];
    for (name, on_rn, on_tk) in local {
        let mut group = c.benchmark_group(name);
        group.bench_function(BenchmarkId::new("runnel", WORKERS), |b| {
            b.iter(|| on_rn(&run_rn))
        });
        group.bench_function(BenchmarkId::new("runnel-nocheck", WORKERS), |b| {
            b.iter(|| on_rn(&run_rn_off))
        });
        group.bench_function(BenchmarkId::new("tokio", WORKERS), |b| {
            b.iter(|| on_tk(&run_tk))
        });
        group.finish();
    }
    let mut group = c.benchmark_group("spawn_many_remote");
    group.bench_function(BenchmarkId::new("runnel", WORKERS), |b| {
        b.iter(|| {
            on_runnel::spawn_many_remote(|f| {
                rn.spawn(f);
            })
        })
    });
    group.bench_function(BenchmarkId::new("runnel-nocheck", WORKERS), |b| {
        b.iter(|| {
            on_runnel::spawn_many_remote(|f| {
                rn_off.spawn(f);
            })
        })
    });
    group.bench_function(BenchmarkId::new("tokio", WORKERS), |b| {
        b.iter(|| {
            on_tokio::spawn_many_remote(|f| {
                tk.spawn(f);
            })
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
