//! Sync-primitive workloads (issue 11): `runnel::sync` against `tokio::sync` and smol's
//! `async-lock` / `async-channel`, in the harness's three columns.
//!
//! **What the columns mean here.** In these rows the *runnel*, *tokio* and *smol* columns
//! are the primitive families: `runnel::sync`, `tokio::sync`, and `async-lock` +
//! `async-channel` (smol's). Where each family runs is the row's prefix:
//!
//! - `sync/own rt:` each family on its own runtime (runnel's, tokio's multi-thread,
//!   smol's `async-executor`), `--workers` threads each: what a user of that stack gets;
//! - `sync/tokio rt:` and `sync/runnel rt:` all three families on the *same* runtime, so
//!   the primitive's cost is separated from the scheduler's. Only on runnel's runtime does
//!   `runnel::sync` do its wait-for-graph bookkeeping (holder records, wait
//!   registrations, `wait::note`): elsewhere those are thread-local reads that find no
//!   poll in progress. And only on tokio's does `tokio::sync` spend tokio's cooperative
//!   budget (every 128 operations a task is made to yield).
//!
//! Ids start with `sync_` (`--only sync` selects them all, `--only sync_on` the
//! same-runtime rows). The metric is wall time per operation (ns) of the measured part
//! (spawning the workload's tasks included, the runtime's start excluded), plus the usual
//! cost columns per operation. Each workload asserts its result (counts, sums, the
//! semaphore's concurrency bound), so a broken primitive cannot post a number.
//!
//! Shapes, all with `u64` values:
//!
//! | id | shape | one operation |
//! | --- | --- | --- |
//! | `mutex_uncontended` | one task locks, increments, unlocks | lock + unlock |
//! | `mutex_contended` | 4 tasks increment one counter, nothing awaited while held | lock + unlock |
//! | `mutex_hold_yield` | 4 tasks, each holding the lock across a `yield_now` (so nearly every lock queues) | lock + yield + unlock |
//! | `mpsc_bounded_1to1` | one producer task, the consumer in the root task, capacity 128 | one message |
//! | `mpsc_bounded_8to1` | 8 producer tasks, one consumer, capacity 128 | one message |
//! | `mpsc_unbounded_1to1` | as 1→1 on an unbounded channel | one message |
//! | `oneshot_round_trip` | one task: create, send, await (never waits) | one channel |
//! | `oneshot_ping_pong` | two tasks pass the turn through two oneshots per round (both sides wait) | one round (2 channels) |
//! | `semaphore` | 16 tasks share 4 permits, each holding one across a `yield_now` | acquire + yield + release |
//! | `rwlock_read_heavy` | 4 tasks, 15 reads to 1 write (nothing awaited while held) | one read or write |
//!
//! smol has no oneshot of its own: its column uses `async_channel::bounded(1)`, what
//! smol's documentation suggests. async-channel's unbounded send is `try_send` (it never
//! fails for room), the counterpart of tokio's and runnel's synchronous `send`.

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use crate::report::Metric;
use crate::rt::{self, Kind, Runtime};
use crate::{on_fresh, with_costs, Sizes, Workload};

/// Tasks in the contended mutex and rwlock shapes.
const TASKS: usize = 4;
/// Bounded channel capacity.
const CAPACITY: usize = 128;
/// Producers in the fan-in channel shape.
const PRODUCERS: usize = 8;
/// Permits and tasks of the semaphore shape.
const PERMITS: usize = 4;
const SEM_TASKS: usize = 16;
/// One operation in this many is a write in the rwlock shape.
const WRITE_EVERY: usize = 16;

/// Printed above the table when sync rows ran.
pub const COLUMNS_NOTE: &str = "In the `sync/` rows the runnel, tokio and smol columns are \
    the primitive families `runnel::sync`, `tokio::sync` and `async-lock`/`async-channel`; \
    `own rt` runs each on its own runtime, `tokio rt` and `runnel rt` all three on that one \
    (benches/harness/sync.rs).\n\n";

// ---------------------------------------------------------------------------------------
// The three families

/// One family of primitives, specialised to `u64` values. Every future is `Send`, so the
/// workloads can spawn it on any of the runtimes.
pub trait Family: 'static {
    type Mutex: Send + Sync + 'static;
    type MutexGuard<'a>: DerefMut<Target = u64> + Send + 'a;
    fn mutex() -> Self::Mutex;
    fn lock(m: &Self::Mutex) -> impl Future<Output = Self::MutexGuard<'_>> + Send + '_;

    type RwLock: Send + Sync + 'static;
    type ReadGuard<'a>: Deref<Target = u64> + Send + 'a;
    type WriteGuard<'a>: DerefMut<Target = u64> + Send + 'a;
    fn rwlock() -> Self::RwLock;
    fn read(l: &Self::RwLock) -> impl Future<Output = Self::ReadGuard<'_>> + Send + '_;
    fn write(l: &Self::RwLock) -> impl Future<Output = Self::WriteGuard<'_>> + Send + '_;

    type Semaphore: Send + Sync + 'static;
    type Permit<'a>: Send + 'a;
    fn semaphore(permits: usize) -> Self::Semaphore;
    fn acquire(s: &Self::Semaphore) -> impl Future<Output = Self::Permit<'_>> + Send + '_;

    type Tx: Clone + Send + Sync + 'static;
    type Rx: Send + 'static;
    fn bounded(capacity: usize) -> (Self::Tx, Self::Rx);
    fn send(tx: &Self::Tx, v: u64) -> impl Future<Output = ()> + Send + '_;
    fn recv(rx: &mut Self::Rx) -> impl Future<Output = Option<u64>> + Send + '_;

    type UTx: Send + 'static;
    type URx: Send + 'static;
    fn unbounded() -> (Self::UTx, Self::URx);
    fn send_unbounded(tx: &Self::UTx, v: u64);
    fn recv_unbounded(rx: &mut Self::URx) -> impl Future<Output = Option<u64>> + Send + '_;

    type OTx: Send + 'static;
    type ORx: Send + 'static;
    fn oneshot() -> (Self::OTx, Self::ORx);
    fn send_oneshot(tx: Self::OTx, v: u64);
    fn recv_oneshot(rx: Self::ORx) -> impl Future<Output = Option<u64>> + Send;
}

/// `runnel::sync`.
pub struct RunnelSync;

impl Family for RunnelSync {
    type Mutex = runnel::sync::Mutex<u64>;
    type MutexGuard<'a> = runnel::sync::MutexGuard<'a, u64>;
    fn mutex() -> Self::Mutex {
        runnel::sync::Mutex::new(0)
    }
    fn lock(m: &Self::Mutex) -> impl Future<Output = Self::MutexGuard<'_>> + Send + '_ {
        m.lock()
    }

    type RwLock = runnel::sync::RwLock<u64>;
    type ReadGuard<'a> = runnel::sync::RwLockReadGuard<'a, u64>;
    type WriteGuard<'a> = runnel::sync::RwLockWriteGuard<'a, u64>;
    fn rwlock() -> Self::RwLock {
        runnel::sync::RwLock::new(0)
    }
    fn read(l: &Self::RwLock) -> impl Future<Output = Self::ReadGuard<'_>> + Send + '_ {
        l.read()
    }
    fn write(l: &Self::RwLock) -> impl Future<Output = Self::WriteGuard<'_>> + Send + '_ {
        l.write()
    }

    type Semaphore = runnel::sync::Semaphore;
    type Permit<'a> = runnel::sync::SemaphorePermit<'a>;
    fn semaphore(permits: usize) -> Self::Semaphore {
        runnel::sync::Semaphore::new(permits)
    }
    async fn acquire(s: &Self::Semaphore) -> Self::Permit<'_> {
        s.acquire().await.expect("runnel semaphore closed")
    }

    type Tx = runnel::sync::mpsc::Sender<u64>;
    type Rx = runnel::sync::mpsc::Receiver<u64>;
    fn bounded(capacity: usize) -> (Self::Tx, Self::Rx) {
        runnel::sync::mpsc::channel(capacity)
    }
    async fn send(tx: &Self::Tx, v: u64) {
        tx.send(v).await.expect("runnel receiver gone");
    }
    fn recv(rx: &mut Self::Rx) -> impl Future<Output = Option<u64>> + Send + '_ {
        rx.recv()
    }

    type UTx = runnel::sync::mpsc::UnboundedSender<u64>;
    type URx = runnel::sync::mpsc::UnboundedReceiver<u64>;
    fn unbounded() -> (Self::UTx, Self::URx) {
        runnel::sync::mpsc::unbounded_channel()
    }
    fn send_unbounded(tx: &Self::UTx, v: u64) {
        tx.send(v).expect("runnel receiver gone");
    }
    fn recv_unbounded(rx: &mut Self::URx) -> impl Future<Output = Option<u64>> + Send + '_ {
        rx.recv()
    }

    type OTx = runnel::sync::oneshot::Sender<u64>;
    type ORx = runnel::sync::oneshot::Receiver<u64>;
    fn oneshot() -> (Self::OTx, Self::ORx) {
        runnel::sync::oneshot::channel()
    }
    fn send_oneshot(tx: Self::OTx, v: u64) {
        tx.send(v).expect("runnel oneshot receiver gone");
    }
    async fn recv_oneshot(rx: Self::ORx) -> Option<u64> {
        rx.await.ok()
    }
}

/// `tokio::sync`.
pub struct TokioSync;

impl Family for TokioSync {
    type Mutex = tokio::sync::Mutex<u64>;
    type MutexGuard<'a> = tokio::sync::MutexGuard<'a, u64>;
    fn mutex() -> Self::Mutex {
        tokio::sync::Mutex::new(0)
    }
    fn lock(m: &Self::Mutex) -> impl Future<Output = Self::MutexGuard<'_>> + Send + '_ {
        m.lock()
    }

    type RwLock = tokio::sync::RwLock<u64>;
    type ReadGuard<'a> = tokio::sync::RwLockReadGuard<'a, u64>;
    type WriteGuard<'a> = tokio::sync::RwLockWriteGuard<'a, u64>;
    fn rwlock() -> Self::RwLock {
        tokio::sync::RwLock::new(0)
    }
    fn read(l: &Self::RwLock) -> impl Future<Output = Self::ReadGuard<'_>> + Send + '_ {
        l.read()
    }
    fn write(l: &Self::RwLock) -> impl Future<Output = Self::WriteGuard<'_>> + Send + '_ {
        l.write()
    }

    type Semaphore = tokio::sync::Semaphore;
    type Permit<'a> = tokio::sync::SemaphorePermit<'a>;
    fn semaphore(permits: usize) -> Self::Semaphore {
        tokio::sync::Semaphore::new(permits)
    }
    async fn acquire(s: &Self::Semaphore) -> Self::Permit<'_> {
        s.acquire().await.expect("tokio semaphore closed")
    }

    type Tx = tokio::sync::mpsc::Sender<u64>;
    type Rx = tokio::sync::mpsc::Receiver<u64>;
    fn bounded(capacity: usize) -> (Self::Tx, Self::Rx) {
        tokio::sync::mpsc::channel(capacity)
    }
    async fn send(tx: &Self::Tx, v: u64) {
        tx.send(v).await.expect("tokio receiver gone");
    }
    fn recv(rx: &mut Self::Rx) -> impl Future<Output = Option<u64>> + Send + '_ {
        rx.recv()
    }

    type UTx = tokio::sync::mpsc::UnboundedSender<u64>;
    type URx = tokio::sync::mpsc::UnboundedReceiver<u64>;
    fn unbounded() -> (Self::UTx, Self::URx) {
        tokio::sync::mpsc::unbounded_channel()
    }
    fn send_unbounded(tx: &Self::UTx, v: u64) {
        tx.send(v).expect("tokio receiver gone");
    }
    fn recv_unbounded(rx: &mut Self::URx) -> impl Future<Output = Option<u64>> + Send + '_ {
        rx.recv()
    }

    type OTx = tokio::sync::oneshot::Sender<u64>;
    type ORx = tokio::sync::oneshot::Receiver<u64>;
    fn oneshot() -> (Self::OTx, Self::ORx) {
        tokio::sync::oneshot::channel()
    }
    fn send_oneshot(tx: Self::OTx, v: u64) {
        tx.send(v).expect("tokio oneshot receiver gone");
    }
    async fn recv_oneshot(rx: Self::ORx) -> Option<u64> {
        rx.await.ok()
    }
}

/// smol's: `async-lock` and `async-channel`.
pub struct SmolSync;

impl Family for SmolSync {
    type Mutex = async_lock::Mutex<u64>;
    type MutexGuard<'a> = async_lock::MutexGuard<'a, u64>;
    fn mutex() -> Self::Mutex {
        async_lock::Mutex::new(0)
    }
    fn lock(m: &Self::Mutex) -> impl Future<Output = Self::MutexGuard<'_>> + Send + '_ {
        m.lock()
    }

    type RwLock = async_lock::RwLock<u64>;
    type ReadGuard<'a> = async_lock::RwLockReadGuard<'a, u64>;
    type WriteGuard<'a> = async_lock::RwLockWriteGuard<'a, u64>;
    fn rwlock() -> Self::RwLock {
        async_lock::RwLock::new(0)
    }
    fn read(l: &Self::RwLock) -> impl Future<Output = Self::ReadGuard<'_>> + Send + '_ {
        l.read()
    }
    fn write(l: &Self::RwLock) -> impl Future<Output = Self::WriteGuard<'_>> + Send + '_ {
        l.write()
    }

    type Semaphore = async_lock::Semaphore;
    type Permit<'a> = async_lock::SemaphoreGuard<'a>;
    fn semaphore(permits: usize) -> Self::Semaphore {
        async_lock::Semaphore::new(permits)
    }
    fn acquire(s: &Self::Semaphore) -> impl Future<Output = Self::Permit<'_>> + Send + '_ {
        s.acquire()
    }

    type Tx = async_channel::Sender<u64>;
    type Rx = async_channel::Receiver<u64>;
    fn bounded(capacity: usize) -> (Self::Tx, Self::Rx) {
        async_channel::bounded(capacity)
    }
    async fn send(tx: &Self::Tx, v: u64) {
        tx.send(v).await.expect("async-channel receiver gone");
    }
    async fn recv(rx: &mut Self::Rx) -> Option<u64> {
        rx.recv().await.ok()
    }

    type UTx = async_channel::Sender<u64>;
    type URx = async_channel::Receiver<u64>;
    fn unbounded() -> (Self::UTx, Self::URx) {
        async_channel::unbounded()
    }
    fn send_unbounded(tx: &Self::UTx, v: u64) {
        tx.try_send(v).expect("async-channel receiver gone");
    }
    async fn recv_unbounded(rx: &mut Self::URx) -> Option<u64> {
        rx.recv().await.ok()
    }

    type OTx = async_channel::Sender<u64>;
    type ORx = async_channel::Receiver<u64>;
    fn oneshot() -> (Self::OTx, Self::ORx) {
        async_channel::bounded(1)
    }
    fn send_oneshot(tx: Self::OTx, v: u64) {
        tx.try_send(v).expect("async-channel receiver gone");
    }
    async fn recv_oneshot(rx: Self::ORx) -> Option<u64> {
        rx.recv().await.ok()
    }
}

// ---------------------------------------------------------------------------------------
// Workloads: each returns ns per operation, from just before its tasks are spawned to
// just after the last one finished.

fn ns_per_op(start: Instant, ops: usize) -> f64 {
    start.elapsed().as_nanos() as f64 / ops as f64
}

fn mutex_uncontended<R: Runtime, F: Family>(rt: &R, n: usize) -> f64 {
    rt.run(async move {
        let m = F::mutex();
        let start = Instant::now();
        for _ in 0..n {
            *F::lock(&m).await += 1;
        }
        let ns = ns_per_op(start, n);
        assert_eq!(*F::lock(&m).await, n as u64, "mutex: lost increments");
        ns
    })
}

/// `TASKS` tasks × `per` increments of one counter; `hold_yield`: yield while holding.
fn mutex_contended<R: Runtime, F: Family>(rt: &R, per: usize, hold_yield: bool) -> f64 {
    rt.run(async move {
        let m = Arc::new(F::mutex());
        let start = Instant::now();
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let m = m.clone();
                R::spawn(async move {
                    for _ in 0..per {
                        let mut g = F::lock(&m).await;
                        *g += 1;
                        if hold_yield {
                            R::yield_now().await;
                        }
                        drop(g);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await;
        }
        let ns = ns_per_op(start, TASKS * per);
        assert_eq!(
            *F::lock(&m).await,
            (TASKS * per) as u64,
            "mutex: lost increments"
        );
        ns
    })
}

/// `producers` tasks send `per` values each through a channel of `CAPACITY`; the root
/// task receives them all.
fn mpsc_bounded<R: Runtime, F: Family>(rt: &R, producers: usize, per: usize) -> f64 {
    rt.run(async move {
        let (tx, mut rx) = F::bounded(CAPACITY);
        let start = Instant::now();
        for p in 0..producers {
            let tx = tx.clone();
            drop(R::spawn(async move {
                for i in 0..per {
                    F::send(&tx, (p * per + i) as u64).await;
                }
            }));
        }
        drop(tx);
        let (mut count, mut sum) = (0usize, 0u64);
        while let Some(v) = F::recv(&mut rx).await {
            count += 1;
            sum += v;
        }
        let n = producers * per;
        let ns = ns_per_op(start, n);
        assert_eq!(
            (count, sum),
            (n, (n * n.saturating_sub(1) / 2) as u64),
            "mpsc"
        );
        ns
    })
}

fn mpsc_unbounded<R: Runtime, F: Family>(rt: &R, n: usize) -> f64 {
    rt.run(async move {
        let (tx, mut rx) = F::unbounded();
        let start = Instant::now();
        drop(R::spawn(async move {
            for i in 0..n {
                F::send_unbounded(&tx, i as u64);
            }
        }));
        let (mut count, mut sum) = (0usize, 0u64);
        while let Some(v) = F::recv_unbounded(&mut rx).await {
            count += 1;
            sum += v;
        }
        let ns = ns_per_op(start, n);
        assert_eq!(
            (count, sum),
            (n, (n * n.saturating_sub(1) / 2) as u64),
            "mpsc"
        );
        ns
    })
}

fn oneshot_round_trip<R: Runtime, F: Family>(rt: &R, n: usize) -> f64 {
    rt.run(async move {
        let start = Instant::now();
        let mut sum = 0u64;
        for i in 0..n {
            let (tx, rx) = F::oneshot();
            F::send_oneshot(tx, i as u64);
            sum += F::recv_oneshot(rx).await.expect("oneshot value");
        }
        let ns = ns_per_op(start, n);
        assert_eq!(sum, (n * n.saturating_sub(1) / 2) as u64, "oneshot");
        ns
    })
}

/// `n` rounds: the root sends a ping on round `i`'s oneshot and waits for the pong on
/// another; a second task does the reverse. Both sides wait every round.
fn oneshot_ping_pong<R: Runtime, F: Family>(rt: &R, n: usize) -> f64 {
    rt.run(async move {
        let start = Instant::now();
        let (mut mine, mut theirs) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for _ in 0..n {
            let (ping_tx, ping_rx) = F::oneshot();
            let (pong_tx, pong_rx) = F::oneshot();
            mine.push((ping_tx, pong_rx));
            theirs.push((ping_rx, pong_tx));
        }
        let other = R::spawn(async move {
            for (ping_rx, pong_tx) in theirs {
                let v = F::recv_oneshot(ping_rx).await.expect("ping");
                F::send_oneshot(pong_tx, v + 1);
            }
        });
        let mut sum = 0u64;
        for (i, (ping_tx, pong_rx)) in mine.into_iter().enumerate() {
            F::send_oneshot(ping_tx, i as u64);
            sum += F::recv_oneshot(pong_rx).await.expect("pong");
        }
        other.await;
        let ns = ns_per_op(start, n);
        assert_eq!(sum, (n * (n + 1) / 2) as u64, "oneshot ping-pong");
        ns
    })
}

/// `SEM_TASKS` tasks × `per` acquisitions of one of `PERMITS` permits, each held across
/// a yield. Asserts no more than `PERMITS` holders at once.
fn semaphore<R: Runtime, F: Family>(rt: &R, per: usize) -> f64 {
    rt.run(async move {
        let sem = Arc::new(F::semaphore(PERMITS));
        let inside = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let tasks: Vec<_> = (0..SEM_TASKS)
            .map(|_| {
                let (sem, inside) = (sem.clone(), inside.clone());
                R::spawn(async move {
                    let mut done = 0;
                    for _ in 0..per {
                        let permit = F::acquire(&sem).await;
                        let now = inside.fetch_add(1, Relaxed) + 1;
                        assert!(now <= PERMITS, "{now} holders of {PERMITS} permits");
                        R::yield_now().await;
                        inside.fetch_sub(1, Relaxed);
                        drop(permit);
                        done += 1;
                    }
                    done
                })
            })
            .collect();
        let mut done = 0;
        for t in tasks {
            done += t.await;
        }
        let ns = ns_per_op(start, SEM_TASKS * per);
        assert_eq!(done, SEM_TASKS * per, "semaphore: lost acquisitions");
        ns
    })
}

/// `TASKS` tasks × `per` operations on one `RwLock`, one in `WRITE_EVERY` a write
/// (increment), the rest reads. Asserts every write landed and reads never went back.
fn rwlock_read_heavy<R: Runtime, F: Family>(rt: &R, per: usize) -> f64 {
    rt.run(async move {
        let l = Arc::new(F::rwlock());
        let start = Instant::now();
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let l = l.clone();
                R::spawn(async move {
                    let mut last = 0;
                    for i in 0..per {
                        if i % WRITE_EVERY == 0 {
                            *F::write(&l).await += 1;
                        } else {
                            let v = *F::read(&l).await;
                            assert!(v >= last, "a read saw {v} after {last}");
                            last = v;
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await;
        }
        let ns = ns_per_op(start, TASKS * per);
        let writes = TASKS * per.div_ceil(WRITE_EVERY);
        assert_eq!(*F::read(&l).await, writes as u64, "rwlock: lost writes");
        ns
    })
}

// ---------------------------------------------------------------------------------------
// Registration

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    MutexUncontended,
    MutexContended,
    MutexHoldYield,
    MpscBounded1to1,
    MpscBounded8to1,
    MpscUnbounded1to1,
    OneshotRoundTrip,
    OneshotPingPong,
    Semaphore,
    RwLockReadHeavy,
}

impl Shape {
    const ALL: [Shape; 10] = [
        Shape::MutexUncontended,
        Shape::MutexContended,
        Shape::MutexHoldYield,
        Shape::MpscBounded1to1,
        Shape::MpscBounded8to1,
        Shape::MpscUnbounded1to1,
        Shape::OneshotRoundTrip,
        Shape::OneshotPingPong,
        Shape::Semaphore,
        Shape::RwLockReadHeavy,
    ];

    /// Also run with every family on one runtime (the primitive's cost alone).
    const SAME_RUNTIME: [Shape; 6] = [
        Shape::MutexContended,
        Shape::MutexHoldYield,
        Shape::MpscBounded1to1,
        Shape::MpscBounded8to1,
        Shape::OneshotPingPong,
        Shape::Semaphore,
    ];

    fn id(self) -> &'static str {
        match self {
            Shape::MutexUncontended => "mutex_uncontended",
            Shape::MutexContended => "mutex_contended",
            Shape::MutexHoldYield => "mutex_hold_yield",
            Shape::MpscBounded1to1 => "mpsc_bounded_1to1",
            Shape::MpscBounded8to1 => "mpsc_bounded_8to1",
            Shape::MpscUnbounded1to1 => "mpsc_unbounded_1to1",
            Shape::OneshotRoundTrip => "oneshot_round_trip",
            Shape::OneshotPingPong => "oneshot_ping_pong",
            Shape::Semaphore => "semaphore",
            Shape::RwLockReadHeavy => "rwlock_read_heavy",
        }
    }

    /// Tasks the operations are split over (each does `ops / tasks`).
    fn tasks(self) -> usize {
        match self {
            Shape::MutexContended | Shape::MutexHoldYield | Shape::RwLockReadHeavy => TASKS,
            Shape::MpscBounded8to1 => PRODUCERS,
            Shape::Semaphore => SEM_TASKS,
            _ => 1,
        }
    }

    /// Operations per sample, from the size `base` (100 000 in a full run): about 5–20 ms
    /// each on the machine this was tuned on.
    fn ops(self, base: usize) -> usize {
        let total = match self {
            Shape::MutexUncontended
            | Shape::MpscBounded1to1
            | Shape::MpscBounded8to1
            | Shape::MpscUnbounded1to1
            | Shape::OneshotRoundTrip => 2 * base,
            Shape::MutexContended | Shape::RwLockReadHeavy => base,
            Shape::MutexHoldYield | Shape::Semaphore => base / 5,
            Shape::OneshotPingPong => base / 10,
        };
        let per = (total / self.tasks()).max(1);
        per * self.tasks()
    }

    fn title(self, ops: usize) -> String {
        let per = ops / self.tasks();
        match self {
            Shape::MutexUncontended => format!("Mutex uncontended ({ops} lock/unlock, 1 task)"),
            Shape::MutexContended => format!("Mutex contended ({TASKS} tasks × {per})"),
            Shape::MutexHoldYield => {
                format!("Mutex held across yield ({TASKS} tasks × {per})")
            }
            Shape::MpscBounded1to1 => format!("mpsc bounded({CAPACITY}) 1→1 ({ops} msgs)"),
            Shape::MpscBounded8to1 => {
                format!("mpsc bounded({CAPACITY}) {PRODUCERS}→1 ({PRODUCERS} × {per} msgs)")
            }
            Shape::MpscUnbounded1to1 => format!("mpsc unbounded 1→1 ({ops} msgs)"),
            Shape::OneshotRoundTrip => {
                format!("oneshot create+send+await ({ops}, 1 task)")
            }
            Shape::OneshotPingPong => format!("oneshot ping-pong ({ops} rounds, 2 tasks)"),
            Shape::Semaphore => {
                format!("Semaphore({PERMITS}) held across yield ({SEM_TASKS} tasks × {per})")
            }
            Shape::RwLockReadHeavy => {
                format!("RwLock read-heavy ({TASKS} tasks × {per}, 1 write in {WRITE_EVERY})")
            }
        }
    }
}

/// Where a row's families run.
#[derive(Clone, Copy, Debug)]
enum Host {
    /// Each family on its own runtime.
    Own,
    /// Every family on this runtime.
    On(Kind),
}

/// One row's parameters: everything `run` needs, `Copy` so the row's closure can own it.
#[derive(Clone, Copy)]
struct Job {
    shape: Shape,
    ops: usize,
    workers: usize,
    warm: usize,
    iters: usize,
}

impl Job {
    /// One round: a fresh `R`, `warm` unmeasured and `iters` measured samples.
    fn run<R: Runtime, F: Family>(self) -> Vec<Vec<f64>> {
        on_fresh::<R>(
            self.workers,
            self.warm,
            self.iters,
            |_| self.ops as f64,
            |rt| vec![self.once::<R, F>(rt)],
        )
    }

    fn once<R: Runtime, F: Family>(self, rt: &R) -> f64 {
        let per = self.ops / self.shape.tasks();
        match self.shape {
            Shape::MutexUncontended => mutex_uncontended::<R, F>(rt, self.ops),
            Shape::MutexContended => mutex_contended::<R, F>(rt, per, false),
            Shape::MutexHoldYield => mutex_contended::<R, F>(rt, per, true),
            Shape::MpscBounded1to1 => mpsc_bounded::<R, F>(rt, 1, self.ops),
            Shape::MpscBounded8to1 => mpsc_bounded::<R, F>(rt, PRODUCERS, per),
            Shape::MpscUnbounded1to1 => mpsc_unbounded::<R, F>(rt, self.ops),
            Shape::OneshotRoundTrip => oneshot_round_trip::<R, F>(rt, self.ops),
            Shape::OneshotPingPong => oneshot_ping_pong::<R, F>(rt, self.ops),
            Shape::Semaphore => semaphore::<R, F>(rt, per),
            Shape::RwLockReadHeavy => rwlock_read_heavy::<R, F>(rt, per),
        }
    }

    /// Every family on runtime `R`; `family` picks the column.
    fn on<R: Runtime>(self, family: Kind) -> Vec<Vec<f64>> {
        match family {
            Kind::Runnel => self.run::<R, RunnelSync>(),
            Kind::Tokio => self.run::<R, TokioSync>(),
            Kind::Smol => self.run::<R, SmolSync>(),
        }
    }

    fn dispatch(self, host: Host, family: Kind) -> Vec<Vec<f64>> {
        match (host, family) {
            (Host::Own, Kind::Runnel) => self.run::<rt::Runnel, RunnelSync>(),
            (Host::Own, Kind::Tokio) => self.run::<rt::Tokio, TokioSync>(),
            (Host::Own, Kind::Smol) => self.run::<rt::Smol, SmolSync>(),
            (Host::On(Kind::Runnel), _) => self.on::<rt::Runnel>(family),
            (Host::On(Kind::Tokio), _) => self.on::<rt::Tokio>(family),
            (Host::On(Kind::Smol), _) => self.on::<rt::Smol>(family),
        }
    }
}

/// The sync rows: every shape with each family on its own runtime, then the
/// `SAME_RUNTIME` shapes with all families on tokio's runtime and on runnel's.
pub fn workloads(s: &Sizes, workers: usize) -> Vec<Workload> {
    // (rounds, warm-up iterations, measured iterations per round).
    let (rounds, warm, iters) = if s.full { (8, 1, 5) } else { (1, 0, 1) };
    let mut w = Vec::new();
    let rows = Shape::ALL.iter().map(|&shape| (Host::Own, shape)).chain(
        [Kind::Tokio, Kind::Runnel]
            .into_iter()
            .flat_map(|k| Shape::SAME_RUNTIME.map(|shape| (Host::On(k), shape))),
    );
    for (host, shape) in rows {
        let ops = shape.ops(s.sync);
        let job = Job {
            shape,
            ops,
            workers,
            warm,
            iters,
        };
        let (id, prefix) = match host {
            Host::Own => (format!("sync_{}", shape.id()), "own rt".to_owned()),
            Host::On(k) => (
                format!("sync_on_{}_{}", k.name(), shape.id()),
                format!("{} rt", k.name()),
            ),
        };
        w.push(Workload {
            // Built once per process: leaking the few ids is simpler than owning them.
            id: Box::leak(id.into_boxed_str()),
            title: format!("sync/{prefix}: {}", shape.title(ops)),
            metrics: with_costs(vec![Metric::lower("time per op", "ns")]),
            rounds,
            run: Box::new(move |family| job.dispatch(host, family)),
        });
    }
    w
}
