//! Workloads for counting the instructions the wait-reason bookkeeping costs
//! (`runnel_reactor::wait`, issue 11): run under `valgrind --tool=callgrind` at two sizes,
//! with and without `--cfg runnel_no_wait_reasons`, and take differences (BENCHMARKS.md,
//! "Wait reasons: the per-poll cost").
//!
//! ```sh
//! cargo bench --bench wait_cost --no-run          # then run the binary it names:
//! valgrind --tool=callgrind --separate-threads=yes <bin> yield 20000
//! ```
//!
//! `<bin> WORKLOAD N [WORKERS]`: `yield` (10 tasks each yielding N/10 times), `spawn` (N tasks
//! spawned from a root task and joined), `echo` (one connection, N round trips of 512
//! bytes, client and server tasks on the same runtime). Everything runs on a
//! current-thread runtime, so all polls happen on the main thread: read that thread's
//! counts (`--separate-threads=yes`) and sysmon's ticks, which depend on wall time, stay
//! out of the figure. With `WORKERS`, a multi-thread runtime runs the tasks on that many
//! workers (read the sum over threads: sysmon's share then varies a little with wall
//! time). Each run checks its result.

use std::net::SocketAddr;
use std::time::Instant;

const MSG: usize = 512;

fn yield_many(rt: &runnel::Runtime, n: usize) -> usize {
    const TASKS: usize = 10;
    rt.block_on(async move {
        let handles: Vec<_> = (0..TASKS)
            .map(|_| {
                runnel::spawn(async move {
                    for _ in 0..n / TASKS {
                        runnel::task::yield_now().await;
                    }
                    n / TASKS
                })
            })
            .collect();
        let mut total = 0;
        for h in handles {
            total += h.await.expect("yielder");
        }
        assert_eq!(total, n / TASKS * TASKS, "yields lost");
        total
    })
}

fn spawn_join(rt: &runnel::Runtime, n: usize) -> usize {
    rt.block_on(async move {
        runnel::spawn(async move {
            let handles: Vec<_> = (0..n).map(|i| runnel::spawn(async move { i })).collect();
            let mut sum = 0;
            for h in handles {
                sum += h.await.expect("spawned task");
            }
            assert_eq!(sum, n * n.saturating_sub(1) / 2, "a task's output lost");
            n
        })
        .await
        .expect("root task")
    })
}

fn echo(rt: &runnel::Runtime, n: usize) -> usize {
    rt.block_on(async move {
        let listener = runnel::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        let server = runnel::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            s.set_nodelay(true).expect("nodelay");
            let mut buf = [0u8; MSG];
            for _ in 0..n {
                s.read_exact(&mut buf).await.expect("server read");
                s.write_all(&buf).await.expect("server write");
            }
        });
        let client = runnel::spawn(async move {
            let mut s = runnel::net::TcpStream::connect(addr)
                .await
                .expect("connect");
            s.set_nodelay(true).expect("nodelay");
            let mut sent = [0u8; MSG];
            let mut echoed = [0u8; MSG];
            for i in 0..n {
                sent[..8].copy_from_slice(&(i as u64).to_le_bytes());
                s.write_all(&sent).await.expect("client write");
                s.read_exact(&mut echoed).await.expect("client read");
                assert_eq!(sent, echoed, "echo differs");
            }
            n
        });
        server.await.expect("server");
        client.await.expect("client")
    })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let workload = args.next().unwrap_or_else(|| "yield".to_owned());
    let n: usize = args
        .next()
        .map(|s| s.parse().expect("N: a count"))
        .unwrap_or(10_000);
    // An optional third argument: a multi-thread runtime with that many workers instead
    // (the tasks then run on the workers: read the sum over threads).
    let rt = match args
        .next()
        .map(|s| s.parse::<usize>().expect("WORKERS: a count"))
    {
        Some(workers) => runnel::Builder::new()
            .worker_threads(workers)
            .build()
            .expect("multi-thread runtime"),
        None => runnel::Builder::new_current_thread()
            .build()
            .expect("current-thread runtime"),
    };
    let start = Instant::now();
    let done = match workload.as_str() {
        "yield" => yield_many(&rt, n),
        "spawn" => spawn_join(&rt, n),
        "echo" => echo(&rt, n),
        // `cargo bench` runs every bench with `--bench`: do a short run of each.
        "--bench" => {
            let done = yield_many(&rt, 1_000) + spawn_join(&rt, 1_000) + echo(&rt, 100);
            println!("yield 1000, spawn 1000, echo 100: {done} ops");
            return;
        }
        other => panic!("unknown workload {other:?} (yield, spawn, echo)"),
    };
    let elapsed = start.elapsed();
    println!(
        "{workload} {n}: {done} ops in {:.3} ms ({:.1} ns/op; wait reasons {})",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_nanos() as f64 / done.max(1) as f64,
        if cfg!(runnel_no_wait_reasons) {
            "compiled out"
        } else {
            "on"
        }
    );
}
