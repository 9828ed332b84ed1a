//! What the deadlock detector's bookkeeping costs, in instructions (deterministic, unlike
//! time on a shared machine). Runs the scheduler workloads once; run it under callgrind and
//! compare the inclusive cost of the detector's functions with the total:
//!
//! ```text
//! cargo bench --bench detector_cost --no-run
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out target/release/deps/detector_cost-* [--nocheck]
//! callgrind_annotate --inclusive=yes /tmp/cg.out | grep -E 'PROGRAM TOTALS|deadlock::check|JoinWaker|wait_record_of'
//! ```
//!
//! Without valgrind it just runs the workloads and prints the wall time.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::time::Instant;

fn main() {
    let nocheck = std::env::args().any(|a| a == "--nocheck");
    let mut builder = runnel::Builder::new();
    builder.worker_threads(2);
    if nocheck {
        builder.disable_deadlock_check_for_benchmarks();
    }
    let rt = builder.build().unwrap();
    let start = Instant::now();
    for _ in 0..3 {
        // spawn_many + join: JoinHandle slots exercise JoinWaker's hold counting.
        let sum = rt.block_on(async {
            let handles: Vec<_> = (0..10_000u64)
                .map(|i| runnel::spawn(async move { i }))
                .collect();
            let mut sum = 0;
            for h in handles {
                sum += h.await.unwrap();
            }
            sum
        });
        assert_eq!(sum, (0..10_000u64).sum());
        // ping_pong: wakes across tasks, workers going idle between rounds (checks run).
        let (tx, rx) = mpsc::sync_channel(1);
        let rem = Arc::new(AtomicUsize::new(1_000));
        for _ in 0..1_000 {
            let (rem, tx) = (rem.clone(), tx.clone());
            rt.spawn(async move {
                let (tx1, rx1) = futures::channel::oneshot::channel();
                let (tx2, rx2) = futures::channel::oneshot::channel();
                runnel::spawn(async move {
                    rx1.await.unwrap();
                    tx2.send(()).unwrap();
                });
                tx1.send(()).unwrap();
                rx2.await.unwrap();
                if rem.fetch_sub(1, Relaxed) == 1 {
                    tx.send(()).unwrap();
                }
            });
        }
        rx.recv().unwrap();
        // yield_many.
        rt.block_on(async {
            let hs: Vec<_> = (0..200)
                .map(|_| {
                    runnel::spawn(async {
                        for _ in 0..1_000 {
                            runnel::task::yield_now().await;
                        }
                    })
                })
                .collect();
            for h in hs {
                h.await.unwrap();
            }
        });
    }
    println!(
        "detector {}: {:.1} ms, {:?}",
        if nocheck { "off" } else { "on" },
        start.elapsed().as_secs_f64() * 1e3,
        rt.metrics()
    );
}
