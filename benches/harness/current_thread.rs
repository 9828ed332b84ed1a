//! Current-thread workloads: the scheduler shapes that make sense on one thread, on
//! runnel's `Builder::new_current_thread()`, tokio's `Builder::new_current_thread()` and
//! smol's single-thread executor (`async_executor::LocalExecutor` run by
//! `async_io::block_on`, which is `smol::block_on`). Every task runs on the thread that
//! called `block_on`; the measured future is that `block_on`'s, so each runtime's
//! choice of where a spawn from it goes and how the thread sleeps and wakes is measured.
//!
//! Workload ids start with `current_thread_` (`--only current_thread` selects them all).
//! The rows sit in the same table as the multi-thread ones, in the same columns
//! (runnel, tokio, smol), and follow the same alternation: a fresh runtime per round,
//! the order rotating each round.
//!
//! `spawn_remote` (a thread outside the runtime spawning into it while `block_on`
//! waits) has no smol figure: a `LocalExecutor` cannot be reached from another thread.
//!
//! Each workload asserts its result, as the multi-thread ones do.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::channel::oneshot;

use crate::report::Metric;
use crate::rt::Kind;
use crate::support::{index_sum, Countdown};
use crate::{costed, with_costs, Sizes, Workload};

/// A runtime that runs every task on the thread in `block_on`. `spawn` and `yield_now`
/// are called from inside `block_on` (its future or a task).
pub trait Local: Sized + 'static {
    type Join<T: 'static>: Future<Output = T> + Unpin + 'static;

    fn start() -> Self;

    fn block_on<F: Future>(&self, fut: F) -> F::Output;

    fn spawn<F>(fut: F) -> Self::Join<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;

    fn yield_now() -> impl Future<Output = ()> + Send;

    /// Spawns `n` tasks from a new thread (outside the runtime) while this thread waits
    /// in `block_on` for all of them; the wall time in ms. `None`: no such path.
    fn spawn_remote(&self, n: usize) -> Option<f64>;
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

// ---------------------------------------------------------------------------------------
// The three runtimes

pub struct Runnel(runnel::Runtime);

pub struct RunnelJoin<T>(runnel::JoinHandle<T>);

impl<T> Future for RunnelJoin<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.expect("runnel task failed"))
    }
}

impl Local for Runnel {
    type Join<T: 'static> = RunnelJoin<T>;

    fn start() -> Self {
        Runnel(
            runnel::Builder::new_current_thread()
                .build()
                .expect("runnel current-thread runtime"),
        )
    }

    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.0.block_on(fut)
    }

    fn spawn<F>(fut: F) -> RunnelJoin<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        RunnelJoin(runnel::spawn(fut))
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        runnel::task::yield_now()
    }

    fn spawn_remote(&self, n: usize) -> Option<f64> {
        let handle = self.0.handle().clone();
        Some(remote(self, n, move |f| drop(handle.spawn(f))))
    }
}

/// With `HARNESS_RUNNEL_METRICS` set, as for the multi-thread runtime.
impl Drop for Runnel {
    fn drop(&mut self) {
        if std::env::var_os("HARNESS_RUNNEL_METRICS").is_some() {
            eprintln!("runnel (current thread) metrics: {:?}", self.0.metrics());
        }
    }
}

pub struct Tokio(tokio::runtime::Runtime);

pub struct TokioJoin<T>(tokio::task::JoinHandle<T>);

impl<T> Future for TokioJoin<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.expect("tokio task failed"))
    }
}

impl Local for Tokio {
    type Join<T: 'static> = TokioJoin<T>;

    fn start() -> Self {
        Tokio(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio current-thread runtime"),
        )
    }

    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.0.block_on(fut)
    }

    fn spawn<F>(fut: F) -> TokioJoin<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        TokioJoin(tokio::spawn(fut))
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        tokio::task::yield_now()
    }

    fn spawn_remote(&self, n: usize) -> Option<f64> {
        let handle = self.0.handle().clone();
        Some(remote(self, n, move |f| drop(handle.spawn(f))))
    }
}

/// smol's single-thread executor. `spawn` finds it in a thread-local set by `block_on`.
pub struct Smol(Rc<async_executor::LocalExecutor<'static>>);

thread_local! {
    static SMOL_LOCAL: RefCell<Option<Rc<async_executor::LocalExecutor<'static>>>> =
        const { RefCell::new(None) };
}

/// A smol `Task` that detaches (instead of cancelling) when dropped, as the others do.
pub struct SmolJoin<T>(Option<async_executor::Task<T>>);

impl<T> Future for SmolJoin<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let task = self.0.as_mut().expect("SmolJoin polled after completion");
        let out = Pin::new(task).poll(cx);
        if out.is_ready() {
            self.0 = None;
        }
        out
    }
}

impl<T> Drop for SmolJoin<T> {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.detach();
        }
    }
}

impl Local for Smol {
    type Join<T: 'static> = SmolJoin<T>;

    fn start() -> Self {
        Smol(Rc::new(async_executor::LocalExecutor::new()))
    }

    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        let previous = SMOL_LOCAL.with(|e| e.borrow_mut().replace(self.0.clone()));
        let out = async_io::block_on(self.0.run(fut));
        SMOL_LOCAL.with(|e| *e.borrow_mut() = previous);
        out
    }

    fn spawn<F>(fut: F) -> SmolJoin<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        SMOL_LOCAL.with(|e| {
            let e = e.borrow();
            let executor = e.as_ref().expect("Smol::spawn outside its block_on");
            SmolJoin(Some(executor.spawn(fut)))
        })
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        futures_lite::future::yield_now()
    }

    fn spawn_remote(&self, _n: usize) -> Option<f64> {
        None
    }
}

// ---------------------------------------------------------------------------------------
// Workloads

/// `n` tasks spawned by `block_on`'s own future; their completion awaited there.
pub fn spawn_many<R: Local>(rt: &R, n: usize) -> f64 {
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
        assert_eq!(sum, index_sum(n), "spawn_many: a task ran twice or never");
        elapsed
    })
}

/// `n` tasks spawned by a task (the root), which `block_on` awaits.
pub fn spawn_many_in_task<R: Local>(rt: &R, n: usize) -> f64 {
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
            "spawn_many_in_task: a task ran twice or never"
        );
        elapsed
    })
}

/// The body of `Local::spawn_remote`: a thread spawns `n` tasks through `spawn` while
/// this one waits in `block_on`. Timed from before the thread starts to the last arrival.
fn remote<R: Local>(
    rt: &R,
    n: usize,
    spawn: impl Fn(Pin<Box<dyn Future<Output = ()> + Send>>) + Send + 'static,
) -> f64 {
    let start = Instant::now();
    let (countdown, done) = Countdown::new(n);
    let spawner = std::thread::spawn(move || {
        for i in 0..n {
            let countdown = countdown.clone();
            spawn(Box::pin(async move { countdown.arrive(i) }));
        }
    });
    let sum = rt.block_on(done).expect("countdown dropped");
    let elapsed = ms(start);
    spawner.join().expect("spawner thread");
    assert_eq!(sum, index_sum(n), "spawn_remote: a task ran twice or never");
    elapsed
}

/// `n` pairs of tasks; each pair passes a message there and back over oneshots.
pub fn ping_pong<R: Local>(rt: &R, n: usize) -> f64 {
    rt.block_on(async move {
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

/// `tasks` tasks each yielding `yields` times, joined by `block_on`'s future.
pub fn yield_many<R: Local>(rt: &R, tasks: usize, yields: usize) -> f64 {
    rt.block_on(async move {
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
pub fn chained_spawn<R: Local>(rt: &R, n: usize) -> f64 {
    fn link<R: Local>(done: oneshot::Sender<usize>, left: usize, depth: usize) {
        if left == 0 {
            done.send(depth).expect("chain's end");
        } else {
            drop(R::spawn(
                async move { link::<R>(done, left - 1, depth + 1) },
            ));
        }
    }
    rt.block_on(async move {
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
/// one collector task.
pub fn fan_in<R: Local>(rt: &R, n: usize) -> f64 {
    rt.block_on(async move {
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

// ---------------------------------------------------------------------------------------
// Registration

/// Starts `R`, runs `warmup` unmeasured then `iters` measured iterations of `f` (each a
/// sample of one time in ms, `ops` operations, plus the cost columns), stops it. An `f`
/// returning `None` (the runtime has no such path) gives no sample.
fn on_fresh<R: Local>(
    warmup: usize,
    iters: usize,
    ops: f64,
    f: impl Fn(&R) -> Option<f64>,
) -> Vec<Vec<f64>> {
    let rt = R::start();
    for _ in 0..warmup {
        f(&rt);
    }
    let mut samples = Vec::new();
    for _ in 0..iters {
        let mut time = None;
        let sample = costed(
            |_| ops,
            || {
                time = f(&rt);
                vec![time.unwrap_or(0.0)]
            },
        );
        if time.is_some() {
            samples.push(sample);
        }
    }
    drop(rt);
    samples
}

/// Runs `$body` (an expression using the type `$r: Local`) for the `Kind` given.
macro_rules! per_local {
    (|$r:ident| $body:expr) => {
        Box::new(move |kind: Kind| -> Vec<Vec<f64>> {
            match kind {
                Kind::Runnel => {
                    type $r = Runnel;
                    $body
                }
                Kind::Tokio => {
                    type $r = Tokio;
                    $body
                }
                Kind::Smol => {
                    type $r = Smol;
                    $body
                }
            }
        })
    };
}

/// The current-thread workloads, at the sizes of their multi-thread counterparts.
pub fn workloads(s: &Sizes) -> Vec<Workload> {
    // (rounds, warm-up iterations, measured iterations per round), as main.rs's light and
    // medium weights.
    let (light, medium) = if s.full {
        ((10, 2, 10), (10, 1, 3))
    } else {
        ((1, 0, 1), (1, 0, 1))
    };
    let ms = || with_costs(vec![Metric::lower("time", "ms")]);
    let mut w = Vec::new();
    let ((rounds, warm, iters), n) = (light, s.spawn);
    w.push(Workload {
        id: "current_thread_spawn_many",
        title: format!("current_thread: spawn_many ({n} tasks from block_on)"),
        metrics: ms(),
        rounds,
        run: per_local!(|R| on_fresh::<R>(warm, iters, n as f64, |rt| Some(spawn_many(rt, n)))),
    });
    w.push(Workload {
        id: "current_thread_spawn_many_in_task",
        title: format!("current_thread: spawn_many_in_task ({n} tasks)"),
        metrics: ms(),
        rounds,
        run: per_local!(
            |R| on_fresh::<R>(warm, iters, n as f64, |rt| Some(spawn_many_in_task(rt, n)))
        ),
    });
    w.push(Workload {
        id: "current_thread_spawn_remote",
        title: format!("current_thread: spawn_remote ({n} tasks from another thread)"),
        metrics: ms(),
        rounds,
        run: per_local!(|R| on_fresh::<R>(warm, iters, n as f64, |rt| rt.spawn_remote(n))),
    });
    let n = s.ping_pong;
    w.push(Workload {
        id: "current_thread_ping_pong",
        title: format!("current_thread: ping_pong ({n} pairs)"),
        metrics: ms(),
        rounds,
        run: per_local!(|R| on_fresh::<R>(warm, iters, n as f64, |rt| Some(ping_pong(rt, n)))),
    });
    let (tasks, yields) = (s.yield_tasks, s.yields);
    w.push(Workload {
        id: "current_thread_yield_many",
        title: format!("current_thread: yield_many ({tasks} × {yields})"),
        metrics: ms(),
        rounds,
        run: per_local!(
            |R| on_fresh::<R>(warm, iters, (tasks * yields) as f64, |rt| {
                Some(yield_many(rt, tasks, yields))
            })
        ),
    });
    let n = s.chain;
    w.push(Workload {
        id: "current_thread_chained_spawn",
        title: format!("current_thread: chained_spawn ({n})"),
        metrics: ms(),
        rounds,
        run: per_local!(|R| on_fresh::<R>(warm, iters, n as f64, |rt| Some(chained_spawn(rt, n)))),
    });
    let ((rounds, warm, iters), n) = (medium, s.fan_in);
    w.push(Workload {
        id: "current_thread_fan_in",
        title: format!("current_thread: fan_in ({n} tasks → 1 channel)"),
        metrics: ms(),
        rounds,
        run: per_local!(|R| on_fresh::<R>(warm, iters, n as f64, |rt| Some(fan_in(rt, n)))),
    });
    w
}
