//! What a task dump (`Handle::dump`) of 100 000 tasks costs, and how long it can hold up
//! the workers meanwhile.
//!
//! 1. 100 000 tasks each wait on a `runnel::sync::oneshot` receiver; `dump()` is timed
//!    (wall time on the calling thread) over several rounds.
//! 2. The workers' view: `block_on` spawns and awaits an empty task in a loop (each round
//!    trip links and unlinks a task in the owned list and wakes a worker: the shard locks
//!    and the scheduler lock a dump also takes), first with no dump running, then while
//!    another thread dumps back to back. The worst round trip during dumps bounds how long
//!    a dump stopped a worker.
//!
//! Run: `cargo bench --bench dump` (`-- --smoke` for a short run, `-- --tasks N` to change
//! the task count).

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use runnel::sync::oneshot;

const WORKERS: usize = 2;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

/// Round trips (spawn + await an empty task) from `block_on` for `run`: sorted latencies.
fn probe(rt: &runnel::Runtime, run: Duration) -> Vec<Duration> {
    let mut latencies = rt.block_on(async move {
        let mut latencies = Vec::new();
        let end = Instant::now() + run;
        while Instant::now() < end {
            let start = Instant::now();
            runnel::spawn(async {}).await.unwrap();
            latencies.push(start.elapsed());
        }
        latencies
    });
    latencies.sort();
    latencies
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    let tasks: usize = args
        .iter()
        .position(|a| a == "--tasks")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let rounds = if smoke { 3 } else { 15 };
    let probe_for = if smoke {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(3)
    };

    let rt = runnel::Builder::new()
        .worker_threads(WORKERS)
        .build()
        .unwrap();
    let senders = rt.block_on(async {
        let mut senders = Vec::with_capacity(tasks);
        for _ in 0..tasks {
            let (tx, rx) = oneshot::channel::<()>();
            runnel::spawn(async move {
                let _ = rx.await;
            });
            senders.push(tx);
        }
        senders
    });
    // Every task has polled once and waits (the dump says so for each).
    let handle = rt.handle().clone();
    loop {
        let text = handle.dump().to_string();
        if text.matches("waits on: recv on channel").count() == tasks {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }

    let mut times = Vec::new();
    let mut walks = Vec::new();
    let mut bytes = 0;
    for _ in 0..rounds {
        let start = Instant::now();
        let dump = handle.dump();
        times.push(start.elapsed());
        walks.push(dump.walk_time());
        assert_eq!(dump.tasks().len(), tasks);
        bytes = dump.to_string().len();
    }
    times.sort();
    walks.sort();
    println!(
        "dump of {tasks} waiting tasks ({WORKERS} workers, {rounds} rounds): min {}, median {}, max {}; {:.1} MB of text",
        ms(times[0]),
        ms(percentile(&times, 0.5)),
        ms(*times.last().unwrap()),
        bytes as f64 / 1e6
    );
    println!(
        "  of which the walk under shard locks (one {}-task shard at a time): min {}, median {}, max {}",
        // `OwnedTasks::new(4 * workers)`: shards are a power of two.
        tasks / (4 * WORKERS).next_power_of_two(),
        ms(walks[0]),
        ms(percentile(&walks, 0.5)),
        ms(*walks.last().unwrap()),
    );

    let quiet = probe(&rt, probe_for);
    let stop = Arc::new(AtomicBool::new(false));
    let dumper = {
        let (stop, handle) = (stop.clone(), handle.clone());
        std::thread::spawn(move || {
            let mut dumps = 0u32;
            while !stop.load(SeqCst) {
                std::hint::black_box(handle.dump());
                dumps += 1;
            }
            dumps
        })
    };
    let during = probe(&rt, probe_for);
    stop.store(true, SeqCst);
    let dumps = dumper.join().unwrap();
    println!(
        "spawn + await round trips from block_on, {} each:",
        ms(probe_for)
    );
    for (name, l) in [("no dump", &quiet), ("dumping back to back", &during)] {
        println!(
            "  {name:<22} n = {:>7}  p50 {:>6}  p99 {:>6}  p99.9 {:>7}  max {:>8}",
            l.len(),
            us(percentile(l, 0.5)),
            us(percentile(l, 0.99)),
            us(percentile(l, 0.999)),
            us(*l.last().unwrap()),
        );
    }
    println!("  ({dumps} dumps ran during the second probe)");
    drop(handle);
    drop(senders);
}
