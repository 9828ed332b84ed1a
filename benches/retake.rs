//! The blocking-worker benchmark of issue 7: one task blocks its worker with
//! `std::thread::sleep(50 ms)` in a loop (at most 20 times: 1 s) right after spawning
//! 10_000 short tasks onto the same worker. Measured: the time until every short task has
//! run, on runnel with retake on, with retake off, and on tokio — 1 and 2 workers.
//!
//! Run: `cargo bench --bench retake` (prints a markdown table; `-- --smoke` for one round).

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const SHORT_TASKS: usize = 10_000;
const BLOCK: Duration = Duration::from_millis(50);
const MAX_BLOCKS: usize = 20;

/// The workload, identical on each runtime: returns how long the short tasks took.
macro_rules! blocking_workload {
    ($spawn:path) => {{
        let (tx, rx) = mpsc::channel();
        let done = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        $spawn(async move {
            for _ in 0..SHORT_TASKS {
                let done = done.clone();
                let tx = tx.clone();
                $spawn(async move {
                    if done.fetch_add(1, SeqCst) + 1 == SHORT_TASKS {
                        tx.send(start.elapsed()).unwrap();
                    }
                });
            }
            // Blocking code in an async task, holding its worker.
            for _ in 0..MAX_BLOCKS {
                if done.load(SeqCst) == SHORT_TASKS {
                    break;
                }
                std::thread::sleep(BLOCK);
            }
        });
        rx
    }};
}

fn runnel_run(workers: usize, retake: bool) -> Duration {
    let rt = runnel::Builder::new()
        .worker_threads(workers)
        .retake_after(retake.then_some(Duration::from_millis(10)))
        .build()
        .unwrap();
    let _enter = rt.enter();
    let rx = blocking_workload!(runnel::spawn);
    rx.recv().unwrap()
}

fn tokio_run(workers: usize) -> Duration {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap();
    let _enter = rt.enter();
    let rx = blocking_workload!(tokio::spawn);
    rx.recv().unwrap()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let rounds = if smoke { 1 } else { 5 };
    println!("| workers | runnel, retake on | runnel, retake off | tokio | on/off | on/tokio |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for workers in [1, 2] {
        let (mut on, mut off, mut tk) = (Vec::new(), Vec::new(), Vec::new());
        // Alternate runtimes round by round so machine noise hits all of them alike.
        for _ in 0..rounds {
            on.push(runnel_run(workers, true));
            off.push(runnel_run(workers, false));
            tk.push(tokio_run(workers));
        }
        let (on, off, tk) = (median(on), median(off), median(tk));
        println!(
            "| {workers} | {:.1} ms | {:.1} ms | {:.1} ms | {:.3} | {:.3} |",
            on.as_secs_f64() * 1e3,
            off.as_secs_f64() * 1e3,
            tk.as_secs_f64() * 1e3,
            on.as_secs_f64() / off.as_secs_f64(),
            on.as_secs_f64() / tk.as_secs_f64()
        );
    }
}
