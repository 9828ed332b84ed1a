//! Measurement, not a demo: the harness's `timer_sleeps` shape (a root task spawns N tasks
//! in one poll, each sleeping a random 0–10 ms) on runnel alone, with what the harness
//! does not show: how long the spawning poll took, when the tasks were first polled, the
//! lateness of the sleeps that came due after the spawning ended, and the retakes. With
//! `BINS=1`, the lateness per 5 ms of deadline. BENCHMARKS.md, "Timers and start-up".
//!
//! ```text
//! cargo run --release --example timer_lateness            # N=100000 RUNS=5
//! RETAKE_OFF=1 BINS=1 N=100000 RUNS=3 cargo run --release --example timer_lateness
//! ```
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let retake_off = std::env::var_os("RETAKE_OFF").is_some();
    let mut rng = 0x5EED_0F51_3395u64;
    let plan: Vec<Duration> = (0..n)
        .map(|_| {
            rng = rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = rng;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            Duration::from_micros(z % 10_001)
        })
        .collect();
    let plan = Arc::new(plan);
    for _ in 0..runs {
        let mut b = runnel::Builder::new();
        b.worker_threads(2);
        if retake_off {
            b.retake_after(None);
        }
        let rt = b.build().unwrap();
        let plan2 = plan.clone();
        let h = rt.spawn(async move {
            let start = Instant::now();
            let handles: Vec<_> = plan2
                .iter()
                .map(|&d| {
                    runnel::spawn(async move {
                        let t = Instant::now();
                        runnel::time::sleep(d).await;
                        let woke = Instant::now();
                        (t, d, woke)
                    })
                })
                .collect();
            let spawned = start.elapsed();
            let mut out = Vec::with_capacity(handles.len());
            for h in handles {
                out.push(h.await.unwrap());
            }
            (start, spawned, start.elapsed(), out)
        });
        let (start, spawned, total, out) = futures::executor::block_on(h).unwrap();
        let mut late: Vec<u64> = out
            .iter()
            .map(|(t, d, w)| (*w - *t - *d).as_micros() as u64)
            .collect();
        let mut first: Vec<u64> = out
            .iter()
            .map(|(t, _, _)| (*t - start).as_micros() as u64)
            .collect();
        late.sort_unstable();
        first.sort_unstable();
        let p = |v: &[u64], q: f64| v[((v.len() - 1) as f64 * q) as usize];
        // Lateness of tasks whose deadline fell after the spawn loop ended.
        let mut late_after: Vec<u64> = out
            .iter()
            .filter(|(t, d, _)| *t + *d > start + spawned)
            .map(|(t, d, w)| (*w - *t - *d).as_micros() as u64)
            .collect();
        late_after.sort_unstable();
        if std::env::var_os("BINS").is_some() {
            let mut bins: Vec<Vec<u64>> = vec![Vec::new(); 40];
            for (t, d, w) in &out {
                let due = (*t + *d - start).as_millis() as usize / 5;
                bins[due.min(39)].push((*w - *t - *d).as_micros() as u64);
            }
            for (i, b) in bins.iter_mut().enumerate() {
                if b.is_empty() {
                    continue;
                }
                b.sort_unstable();
                println!(
                    "  due {:3}-{:3} ms: {:6} tasks late p50 {:6} p99 {:6} max {:6}",
                    i * 5,
                    i * 5 + 5,
                    b.len(),
                    p(b, 0.5),
                    p(b, 0.99),
                    b[b.len() - 1]
                );
            }
        }
        let m = rt.metrics();
        println!(
            "total {:6.1} ms  spawn loop {:5.1} ms  first-poll p50 {:6} p99 {:6} µs  late p50 {:6} p99 {:6} µs  (deadline after spawn loop: {} tasks, late p50 {})  retakes {} parks {} steals {} threads {}",
            total.as_secs_f64() * 1e3,
            spawned.as_secs_f64() * 1e3,
            p(&first, 0.5),
            p(&first, 0.99),
            p(&late, 0.5),
            p(&late, 0.99),
            late_after.len(),
            if late_after.is_empty() { 0 } else { p(&late_after, 0.5) },
            m.retakes,
            m.parks,
            m.steals,
            m.worker_threads,
        );
    }
}
