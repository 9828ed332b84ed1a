//! What signal streams cost, runnel vs tokio (same process, same run):
//!
//! 1. `make+drop`: make a `Signal` and drop it, in a task — what `select! { _ =
//!    ctrl_c() => .., .. }` in a loop pays per iteration — alone, and with 1 000 other
//!    `Signal`s of the same signal alive (a per-connection `ctrl_c`).
//! 2. `delivery`: one task loops on `recv` and acknowledges over a std channel; the bench
//!    thread raises the signal and waits for the acknowledgement. Round trip per delivery
//!    (the handler, the reactor's wake-up, the task's poll, the acknowledgement).
//!
//! runnel listens for SIGUSR1 and tokio for SIGUSR2, so neither runtime's handler work
//! lands in the other's figures (each library's action stays installed for good).
//!
//! Run: `cargo bench --bench signal` (`-- --smoke` for a short run).

use std::sync::mpsc;
use std::time::{Duration, Instant};

const WORKERS: usize = 2;

fn raise(signum: i32) {
    // SAFETY: raise(3) with a valid signal number whose handler is installed.
    assert_eq!(unsafe { libc::raise(signum) }, 0);
}

fn ns(total: Duration, ops: usize) -> f64 {
    total.as_secs_f64() * 1e9 / ops as f64
}

/// Median of `rounds` timings of `ops` operations each, in ns per operation.
fn median(mut per_op: Vec<f64>) -> f64 {
    per_op.sort_by(f64::total_cmp);
    per_op[per_op.len() / 2]
}

/// Times `rounds` rounds of `ops` calls of `op` inside a task, awaiting `breathe()` between
/// rounds (a round is one long poll: let the worker breathe); median ns per call.
async fn timed_rounds<Y: std::future::Future<Output = ()>>(
    ops: usize,
    rounds: usize,
    mut op: impl FnMut(),
    breathe: impl Fn() -> Y,
) -> f64 {
    let mut per_op = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        for _ in 0..ops {
            op();
        }
        per_op.push(ns(start.elapsed(), ops));
        breathe().await;
    }
    median(per_op)
}

fn runnel_make_drop(rt: &runnel::Runtime, others: usize, ops: usize, rounds: usize) -> f64 {
    use runnel::signal::unix::{signal, SignalKind};
    rt.block_on(async move {
        runnel::spawn(async move {
            let _others: Vec<_> = (0..others)
                .map(|_| signal(SignalKind::user_defined1()).unwrap())
                .collect();
            let make_drop = || {
                drop(std::hint::black_box(
                    signal(SignalKind::user_defined1()).unwrap(),
                ))
            };
            timed_rounds(ops, rounds, make_drop, runnel::task::yield_now).await
        })
        .await
        .unwrap()
    })
}

fn tokio_make_drop(rt: &tokio::runtime::Runtime, others: usize, ops: usize, rounds: usize) -> f64 {
    use tokio::signal::unix::{signal, SignalKind};
    rt.block_on(async move {
        tokio::spawn(async move {
            let _others: Vec<_> = (0..others)
                .map(|_| signal(SignalKind::user_defined2()).unwrap())
                .collect();
            let make_drop = || {
                drop(std::hint::black_box(
                    signal(SignalKind::user_defined2()).unwrap(),
                ))
            };
            timed_rounds(ops, rounds, make_drop, tokio::task::yield_now).await
        })
        .await
        .unwrap()
    })
}

/// Raises `signum` `ops` times per round, each time waiting for the listener's
/// acknowledgement; ns per round trip (median of the rounds).
fn deliveries(signum: i32, acks: &mpsc::Receiver<()>, ops: usize, rounds: usize) -> f64 {
    let mut per_op = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        for _ in 0..ops {
            raise(signum);
            acks.recv_timeout(Duration::from_secs(10))
                .expect("a delivery was not acknowledged");
        }
        per_op.push(ns(start.elapsed(), ops));
    }
    median(per_op)
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let (ops, rounds, deliveries_per_round) = if smoke {
        (200, 3, 50)
    } else {
        (20_000, 15, 2_000)
    };

    let runnel_rt = runnel::Builder::new()
        .worker_threads(WORKERS)
        .build()
        .unwrap();
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .unwrap();

    println!("signal streams, {WORKERS} workers; ns per operation, median of {rounds} rounds");
    for others in [0, 1_000] {
        let r = runnel_make_drop(&runnel_rt, others, ops, rounds);
        let t = tokio_make_drop(&tokio_rt, others, ops, rounds);
        println!(
            "make+drop, {others:>5} others alive: runnel {r:>9.0} ns  tokio {t:>9.0} ns  ratio {:.2}",
            r / t
        );
    }

    let (runnel_tx, runnel_acks) = mpsc::channel();
    let (ready_tx, ready) = mpsc::channel();
    runnel_rt.spawn(async move {
        use runnel::signal::unix::{signal, SignalKind};
        let mut usr1 = signal(SignalKind::user_defined1()).unwrap();
        ready_tx.send(()).unwrap();
        while usr1.recv().await.is_some() {
            if runnel_tx.send(()).is_err() {
                break;
            }
        }
    });
    ready.recv().unwrap();
    let (tokio_tx, tokio_acks) = mpsc::channel();
    let (ready_tx, ready) = mpsc::channel();
    tokio_rt.spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut usr2 = signal(SignalKind::user_defined2()).unwrap();
        ready_tx.send(()).unwrap();
        while usr2.recv().await.is_some() {
            if tokio_tx.send(()).is_err() {
                break;
            }
        }
    });
    ready.recv().unwrap();
    let r = deliveries(libc::SIGUSR1, &runnel_acks, deliveries_per_round, rounds);
    let t = deliveries(libc::SIGUSR2, &tokio_acks, deliveries_per_round, rounds);
    println!(
        "delivery round trip:           runnel {r:>9.0} ns  tokio {t:>9.0} ns  ratio {:.2}",
        r / t
    );
}
