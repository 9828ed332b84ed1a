//! A micro-benchmark (an ignored test; it prints, it asserts no speed) of the
//! lock-protected idle transition: the scheduler lock taken to count a worker parked
//! (`worker_idle`), then either taken again to un-idle itself (`unidle`) or taken by a
//! waker that claims it (`claim_sleeper`). No thread really sleeps, so this is the lock and
//! the shared counts alone, at their worst: every thread does nothing else.
//!
//! Run: `cargo test -p runnel-executor --release --lib transition_bench -- --ignored
//! --nocapture`. With more threads than cores, a thread preempted while it holds the lock
//! stalls all the others (a real worker parks at most once per idle spell, and a futex
//! sleep sits between two transitions), so the 16- and 64-thread figures exaggerate the
//! contention real workers would see; they show the trend, not a prediction.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use super::Idle;
use crate::detector::Check;

/// Park/unpark cycles per worker thread and the wall time they took; claims by the waker.
fn run(workers: usize, cycles: usize) -> (Duration, usize) {
    let idle = Arc::new(Idle::new(workers));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(workers + 2));
    // The waker: what `notify_parked` does for every wake that finds a sleeper.
    let waker = {
        let (idle, stop, start) = (idle.clone(), stop.clone(), start.clone());
        std::thread::spawn(move || {
            start.wait();
            let mut claims = 0;
            while !stop.load(Relaxed) {
                if idle.should_notify() {
                    let mut counts = idle.lock();
                    if idle.num_searching() == 0 && idle.claim_sleeper(&mut counts).is_some() {
                        claims += 1;
                    }
                }
                std::hint::spin_loop();
            }
            claims
        })
    };
    let threads: Vec<_> = (0..workers)
        .map(|index| {
            let (idle, start) = (idle.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let began = Instant::now();
                for _ in 0..cycles {
                    {
                        let mut counts = idle.lock();
                        // The real worker runs the deadlock check on `Run`; with the waker
                        // and the others around it never is quiet for long.
                        let _: Check = idle.worker_idle(&mut counts, index);
                    }
                    if !idle.unidle(index) {
                        // Claimed: the claimer counted us searching; we found "work".
                        idle.stop_searching();
                    }
                }
                (began, Instant::now())
            })
        })
        .collect();
    start.wait();
    // From the first thread's start to the last one's end (this thread may be scheduled
    // after the others have run, so it cannot time them itself).
    let spans: Vec<(Instant, Instant)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let first = spans.iter().map(|s| s.0).min().unwrap();
    let last = spans.iter().map(|s| s.1).max().unwrap();
    let elapsed = last - first;
    stop.store(true, Relaxed);
    (elapsed, waker.join().unwrap())
}

#[test]
#[ignore = "a micro-benchmark: run with --ignored --nocapture"]
fn transition_bench() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("idle transition (park + unpark under the scheduler lock), {cores} cores:");
    for workers in [2, 16, 64] {
        let cycles = 200_000 / workers;
        let mut per_cycle: Vec<f64> = (0..5)
            .map(|_| {
                let (elapsed, _) = run(workers, cycles);
                elapsed.as_nanos() as f64 / (workers * cycles) as f64
            })
            .collect();
        per_cycle.sort_by(f64::total_cmp);
        let (_, claims) = run(workers, cycles);
        println!(
            "  {workers:>2} worker threads: median {:.0} ns per transition pair, all threads together (best {:.0}), \
             {:.1} % claimed by the waker",
            per_cycle[2],
            per_cycle[0],
            100.0 * claims as f64 / (workers * cycles) as f64
        );
    }
}
