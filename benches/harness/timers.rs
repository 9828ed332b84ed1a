//! Timer workloads: many concurrent random sleeps, and many timeouts cancelled before
//! they fire.

use std::time::{Duration, Instant};

use crate::rt::Runtime;
use crate::support::SplitMix64;

/// Longest random sleep, in microseconds (10 ms).
const MAX_SLEEP_US: u64 = 10_000;
/// Every runtime sleeps the same sequence.
const SEED: u64 = 0x5EED_0F51_3395;

/// The sleep durations: the same for every runtime and round.
pub fn sleep_plan(n: usize) -> Vec<Duration> {
    let mut rng = SplitMix64::new(SEED);
    (0..n)
        .map(|_| Duration::from_micros(rng.below_or_eq(MAX_SLEEP_US)))
        .collect()
}

/// `plan.len()` tasks, each sleeping its planned duration. Returns the wall time (ms)
/// and the p50/p99 lateness (µs past the planned duration). Asserts no sleep woke early.
pub fn random_sleeps<R: Runtime>(rt: &R, plan: &[Duration]) -> [f64; 3] {
    let plan = plan.to_vec();
    let (elapsed, mut late) = rt.run(async move {
        let start = Instant::now();
        let handles: Vec<_> = plan
            .iter()
            .map(|&d| {
                R::spawn(async move {
                    let t = Instant::now();
                    R::sleep(d).await;
                    let slept = t.elapsed();
                    assert!(slept >= d, "woke after {slept:?} from a {d:?} sleep");
                    (slept - d).as_nanos() as u64
                })
            })
            .collect();
        let mut late = Vec::with_capacity(handles.len());
        for h in handles {
            late.push(h.await);
        }
        (start.elapsed(), late)
    });
    late.sort_unstable();
    [
        elapsed.as_secs_f64() * 1e3,
        crate::report::percentile(&late, 0.50) / 1e3,
        crate::report::percentile(&late, 0.99) / 1e3,
    ]
}

/// `tasks` tasks each run `per_task` timeouts (10 s) around a future that finishes
/// after one yield, so every timer is armed on the first poll and cancelled on the
/// second. Returns the wall time (ms); asserts none fired.
pub fn cancelled_timeouts<R: Runtime>(rt: &R, tasks: usize, per_task: usize) -> f64 {
    rt.run(async move {
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                R::spawn(async move {
                    let mut ok = 0;
                    for _ in 0..per_task {
                        let r = R::timeout(Duration::from_secs(10), R::yield_now()).await;
                        ok += usize::from(r.is_some());
                    }
                    ok
                })
            })
            .collect();
        let mut ok = 0;
        for h in handles {
            ok += h.await;
        }
        let elapsed = start.elapsed().as_secs_f64() * 1e3;
        assert_eq!(ok, tasks * per_task, "a 10 s timeout fired");
        elapsed
    })
}
