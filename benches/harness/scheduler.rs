//! Scheduler workloads: shapes from tokio's `rt_multi_threaded` benches, plus a fan-in
//! through a channel. Each returns its wall time in milliseconds, measured inside the
//! root task (or on the spawning thread for `spawn_many_remote`), and asserts its result
//! (every task ran exactly once, the sums add up).

use std::time::Instant;

use futures::channel::oneshot;

use crate::rt::Runtime;
use crate::support::{index_sum, Countdown};

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// `n` tasks spawned from inside a task (so onto a worker's own queue).
pub fn spawn_many_local<R: Runtime>(rt: &R, n: usize) -> f64 {
    rt.run(async move {
        let start = Instant::now();
        let (countdown, done) = Countdown::new(n);
        for i in 0..n {
            let countdown = countdown.clone();
            drop(R::spawn(async move { countdown.arrive(i) }));
        }
        drop(countdown);
        let sum = done.await.expect("countdown dropped");
        let elapsed = ms(start);
        assert_eq!(
            sum,
            index_sum(n),
            "spawn_many_local: a task ran twice or never"
        );
        elapsed
    })
}

/// `n` tasks spawned from a thread outside the runtime (so through its global queue).
pub fn spawn_many_remote<R: Runtime>(rt: &R, n: usize) -> f64 {
    let start = Instant::now();
    let (countdown, done) = Countdown::new(n);
    for i in 0..n {
        let countdown = countdown.clone();
        drop(rt.spawn_remote(async move { countdown.arrive(i) }));
    }
    drop(countdown);
    let sum = futures::executor::block_on(done).expect("countdown dropped");
    let elapsed = ms(start);
    assert_eq!(
        sum,
        index_sum(n),
        "spawn_many_remote: a task ran twice or never"
    );
    elapsed
}

/// `n` tasks spawned by the future the runtime's own `block_on` runs on this thread
/// (the `#[main]` shape: the spawner is not a worker, so every spawn goes through the
/// runtime's global queue and wakes a worker), completion awaited in that `block_on`.
pub fn block_on_spawn_remote<R: Runtime>(rt: &R, n: usize) -> f64 {
    rt.block_on(async move {
        let start = Instant::now();
        let (countdown, done) = Countdown::new(n);
        for i in 0..n {
            let countdown = countdown.clone();
            drop(R::spawn(async move { countdown.arrive(i) }));
        }
        drop(countdown);
        let sum = done.await.expect("countdown dropped");
        let elapsed = ms(start);
        assert_eq!(
            sum,
            index_sum(n),
            "block_on_spawn_remote: a task ran twice or never"
        );
        elapsed
    })
}

/// As `block_on_spawn_remote`, but the `block_on` future spawns one root task that
/// spawns the `n` (onto a worker's own queue) and awaits it.
pub fn block_on_spawn_local<R: Runtime>(rt: &R, n: usize) -> f64 {
    rt.block_on(async move {
        let start = Instant::now();
        let root = R::spawn(async move {
            let (countdown, done) = Countdown::new(n);
            for i in 0..n {
                let countdown = countdown.clone();
                drop(R::spawn(async move { countdown.arrive(i) }));
            }
            drop(countdown);
            done.await.expect("countdown dropped")
        });
        let sum = root.await;
        let elapsed = ms(start);
        assert_eq!(
            sum,
            index_sum(n),
            "block_on_spawn_local: a task ran twice or never"
        );
        elapsed
    })
}

/// `n` pairs of tasks; each pair passes a message there and back over oneshots.
pub fn ping_pong<R: Runtime>(rt: &R, n: usize) -> f64 {
    rt.run(async move {
        let start = Instant::now();
        let (countdown, done) = Countdown::new(n);
        for i in 0..n {
            let countdown = countdown.clone();
            drop(R::spawn(async move {
                let (ping_tx, ping_rx) = oneshot::channel::<usize>();
                let (pong_tx, pong_rx) = oneshot::channel::<usize>();
                drop(R::spawn(async move {
                    let v = ping_rx.await.expect("ping");
                    pong_tx.send(v + 1).expect("pong");
                }));
                ping_tx.send(i).expect("ping");
                let v = pong_rx.await.expect("pong");
                countdown.arrive(v - 1);
            }));
        }
        drop(countdown);
        let sum = done.await.expect("countdown dropped");
        let elapsed = ms(start);
        assert_eq!(sum, index_sum(n), "ping_pong: a pair lost its message");
        elapsed
    })
}

/// `tasks` tasks each yielding `yields` times.
pub fn yield_many<R: Runtime>(rt: &R, tasks: usize, yields: usize) -> f64 {
    rt.run(async move {
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                R::spawn(async move {
                    let mut n = 0;
                    for _ in 0..yields {
                        R::yield_now().await;
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut total = 0;
        for h in handles {
            total += h.await;
        }
        let elapsed = ms(start);
        assert_eq!(total, tasks * yields, "yield_many: yields lost");
        elapsed
    })
}

/// A chain of `n` tasks, each spawning the next.
pub fn chained_spawn<R: Runtime>(rt: &R, n: usize) -> f64 {
    fn link<R: Runtime>(done: oneshot::Sender<usize>, left: usize, depth: usize) {
        if left == 0 {
            done.send(depth).expect("chain's end");
        } else {
            drop(R::spawn(
                async move { link::<R>(done, left - 1, depth + 1) },
            ));
        }
    }
    rt.run(async move {
        let start = Instant::now();
        let (tx, rx) = oneshot::channel();
        link::<R>(tx, n, 0);
        let depth = rx.await.expect("chain broke");
        let elapsed = ms(start);
        assert_eq!(depth, n, "chained_spawn: wrong depth");
        elapsed
    })
}

/// `n` tiny tasks each send their index into one unbounded `async-channel`, drained by
/// one collector task; the channel closes when the last sender is dropped.
pub fn fan_in<R: Runtime>(rt: &R, n: usize) -> f64 {
    rt.run(async move {
        let start = Instant::now();
        let (tx, rx) = async_channel::unbounded::<usize>();
        let collector = R::spawn(async move {
            let (mut count, mut sum) = (0, 0);
            while let Ok(v) = rx.recv().await {
                count += 1;
                sum += v;
            }
            (count, sum)
        });
        for i in 0..n {
            let tx = tx.clone();
            drop(R::spawn(async move {
                tx.send(i).await.expect("collector gone");
            }));
        }
        drop(tx);
        let (count, sum) = collector.await;
        let elapsed = ms(start);
        assert_eq!((count, sum), (n, index_sum(n)), "fan_in: messages lost");
        elapsed
    })
}
