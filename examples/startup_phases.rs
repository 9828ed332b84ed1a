//! Measurement, not a demo: where start-up time goes — `build`, the first task (spawned
//! from this thread and awaited with `futures::executor::block_on`, or with `MODE=block_on`
//! a ready future in the runtime's own `block_on`), and the drop — runnel against tokio,
//! medians of `N` (300) start-ups, three rounds. BENCHMARKS.md, "Timers and start-up".
//!
//! ```text
//! cargo run --release --example startup_phases             # RT=runnel|tokio|both
//! MODE=block_on cargo run --release --example startup_phases
//! ```
use std::time::Instant;

fn med(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Medians of `n` start-ups of one runtime: build, first task (`run`), drop.
fn phases<R>(name: &str, round: usize, n: usize, build: impl Fn() -> R, run: impl Fn(&R) -> i32) {
    let (mut b, mut t, mut d) = (vec![], vec![], vec![]);
    for _ in 0..n {
        let t0 = Instant::now();
        let rt = build();
        let t1 = Instant::now();
        assert_eq!(run(&rt), 42);
        let t2 = Instant::now();
        drop(rt);
        let t3 = Instant::now();
        b.push((t1 - t0).as_secs_f64() * 1e6);
        t.push((t2 - t1).as_secs_f64() * 1e6);
        d.push((t3 - t2).as_secs_f64() * 1e6);
    }
    println!(
        "{round} {name:6} build {:6.1} run {:6.1} drop {:6.1} µs",
        med(&mut b),
        med(&mut t),
        med(&mut d)
    );
}

fn main() {
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let which = std::env::var("RT").unwrap_or_else(|_| "both".into());
    let task = std::env::var("MODE").unwrap_or_else(|_| "task".into()) == "task";
    for round in 0..3 {
        if which == "both" || which == "runnel" {
            phases(
                "runnel",
                round,
                n,
                || runnel::Builder::new().worker_threads(2).build().unwrap(),
                |rt| {
                    if task {
                        futures::executor::block_on(rt.spawn(async { 42 })).unwrap()
                    } else {
                        rt.block_on(async { 42 })
                    }
                },
            );
        }
        if which == "both" || which == "tokio" {
            phases(
                "tokio",
                round,
                n,
                || {
                    tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .enable_all()
                        .build()
                        .unwrap()
                },
                |rt| {
                    if task {
                        futures::executor::block_on(rt.spawn(async { 42 })).unwrap()
                    } else {
                        rt.block_on(async { 42 })
                    }
                },
            );
        }
    }
}
