//! mpsc throughput, `runnel::sync::mpsc` vs `tokio::sync::mpsc`: a bounded channel of 1024,
//! one producer task, one consumer (in `block_on`), 1 000 000 `u64` messages, 2 workers.
//! Each channel runs on its own runtime and, to separate channel cost from scheduler cost,
//! runnel's channel also runs on tokio's runtime. Median of `ROUNDS` runs.
//!
//! Run: `cargo bench --bench sync_mpsc` (prints a markdown table; `-- --smoke` for one
//! round of 100 000 messages).

use std::time::{Duration, Instant};

const CAPACITY: usize = 1024;
const ROUNDS: usize = 7;

/// One producer, one consumer; returns the time from the first send to the last receive.
macro_rules! workload {
    ($rt:expr, $spawn:path, $channel:path, $messages:expr) => {{
        let messages: u64 = $messages;
        $rt.block_on(async move {
            let (tx, mut rx) = $channel(CAPACITY);
            let start = Instant::now();
            let producer = $spawn(async move {
                for i in 0..messages {
                    tx.send(i).await.unwrap();
                }
            });
            let mut sum = 0u64;
            while let Some(v) = rx.recv().await {
                sum += v;
            }
            let elapsed = start.elapsed();
            producer.await.unwrap();
            assert_eq!(sum, messages * (messages - 1) / 2);
            elapsed
        })
    }};
}

fn runnel_rt() -> runnel::Runtime {
    runnel::Builder::new().worker_threads(2).build().unwrap()
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let (rounds, messages) = if smoke {
        (1, 100_000)
    } else {
        (ROUNDS, 1_000_000)
    };
    let runnel_rt = runnel_rt();
    let tokio_rt = tokio_rt();

    let mut runnel_on_runnel = Vec::new();
    let mut tokio_on_tokio = Vec::new();
    let mut runnel_on_tokio = Vec::new();
    for _ in 0..rounds {
        // Interleaved, so machine noise hits all three alike.
        runnel_on_runnel.push(workload!(
            runnel_rt,
            runnel::spawn,
            runnel::sync::mpsc::channel,
            messages
        ));
        tokio_on_tokio.push(workload!(
            tokio_rt,
            tokio::spawn,
            tokio::sync::mpsc::channel,
            messages
        ));
        runnel_on_tokio.push(workload!(
            tokio_rt,
            tokio::spawn,
            runnel::sync::mpsc::channel,
            messages
        ));
    }
    let per_msg = |d: Duration| d.as_nanos() as f64 / messages as f64;
    let tokio_ref = median(tokio_on_tokio.clone());
    println!("mpsc bounded({CAPACITY}), 1 producer, 1 consumer, {messages} messages, 2 workers, median of {rounds}");
    println!();
    println!("| channel on runtime | total | ns/message | vs tokio on tokio |");
    println!("| --- | --- | --- | --- |");
    for (name, runs) in [
        ("runnel mpsc on runnel", runnel_on_runnel),
        ("tokio mpsc on tokio", tokio_on_tokio),
        ("runnel mpsc on tokio", runnel_on_tokio),
    ] {
        let m = median(runs);
        println!(
            "| {name} | {:.1} ms | {:.1} | {:.2} |",
            m.as_secs_f64() * 1e3,
            per_msg(m),
            m.as_secs_f64() / tokio_ref.as_secs_f64()
        );
    }
}
