//! The one abstraction every workload is written against: `Runtime`, with an impl for
//! runnel, tokio (multi-thread) and smol (`async-executor` on N threads + `async-io`).
//!
//! Each impl uses its runtime's own, idiomatic API (runnel's inherent socket methods,
//! tokio's `AsyncReadExt`, smol's `futures-lite` extensions on `Async<TcpStream>`), so a
//! workload measures what a user of that runtime would get. The differences the trait
//! papers over, and how:
//!
//! - **Join handles.** runnel and tokio give `Result<T, JoinError>`, smol gives `T`; the
//!   wrappers below give `T` and panic if the task failed. Dropping a wrapper *detaches*
//!   the task on all three (smol's `Task` would cancel on drop, so its wrapper detaches).
//! - **Spawning from inside a task.** runnel and tokio find the runtime in a thread
//!   local; smol has no such global, so each smol worker thread stores its executor in
//!   `SMOL_EXECUTOR` before running it.
//! - **Timeout.** smol has none: `future::or(inner, timer)`, inner polled first, as
//!   tokio's and runnel's do.
//! - **Waiting from outside.** `run` spawns the future as a task and blocks the calling
//!   thread in `futures::executor::block_on` on its handle, identical for all three, so no
//!   runtime lends the main thread to its workers (a smol `block_on(ex.run(..))` on the
//!   main thread would add a third worker; async-io's `block_on` would add a reactor
//!   driver).
//! - **The `block_on` shape.** `block_on` runs a future in each runtime's own `block_on`
//!   on the calling thread (smol: `async_io::block_on`, with `Smol::spawn` on that thread
//!   going to the executor the workers run), for the workloads that measure a `#[main]`
//!   program's spawner: there the runtime's choice of how its `block_on` thread sleeps and
//!   is woken is part of what is measured.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread;
use std::time::Duration;

/// Which runtime; the order here is the table's column order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Runnel,
    Tokio,
    Smol,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Runnel, Kind::Tokio, Kind::Smol];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Runnel => "runnel",
            Kind::Tokio => "tokio",
            Kind::Smol => "smol",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// A multi-threaded async runtime as the workloads see it. Associated functions without
/// `&self` are called from inside a task of the runtime.
pub trait Runtime: Sized + 'static {
    type Join<T: Send + 'static>: Future<Output = T> + Send + Unpin + 'static;
    type Listener: Send + Sync + 'static;
    type Stream: Send + 'static;

    /// Starts the runtime with `workers` worker threads, ready to run tasks.
    fn start(workers: usize) -> Self;

    /// Spawns from a thread that is not one of the runtime's.
    fn spawn_remote<F>(&self, fut: F) -> Self::Join<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;

    /// Spawns from inside one of the runtime's tasks.
    fn spawn<F>(fut: F) -> Self::Join<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;

    fn yield_now() -> impl Future<Output = ()> + Send;

    fn sleep(d: Duration) -> impl Future<Output = ()> + Send;

    /// `None` if `d` passed before `fut` finished.
    fn timeout<F>(d: Duration, fut: F) -> impl Future<Output = Option<F::Output>> + Send
    where
        F: Future + Send;

    /// Wraps a bound, listening, non-blocking `std` listener (made the same way for every
    /// runtime, so the backlog is the same).
    fn listener(l: std::net::TcpListener) -> io::Result<Self::Listener>;

    fn accept(l: &Self::Listener) -> impl Future<Output = io::Result<Self::Stream>> + Send + '_;

    fn connect(addr: SocketAddr) -> impl Future<Output = io::Result<Self::Stream>> + Send;

    fn set_nodelay(s: &Self::Stream) -> io::Result<()>;

    fn read<'a>(
        s: &'a mut Self::Stream,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a;

    fn read_exact<'a>(
        s: &'a mut Self::Stream,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<()>> + Send + 'a;

    fn write_all<'a>(
        s: &'a mut Self::Stream,
        buf: &'a [u8],
    ) -> impl Future<Output = io::Result<()>> + Send + 'a;

    /// Runs `fut` on this (non-runtime) thread in the runtime's own `block_on` (runnel's
    /// and tokio's `Runtime::block_on`, smol's `async_io::block_on` with this thread's
    /// spawns going to the executor its worker threads run): the `#[main]` shape, where
    /// the spawner is the `block_on` thread and `R::spawn` works inside `fut`.
    fn block_on<F: Future>(&self, fut: F) -> F::Output;

    /// Runs `fut` as a task and blocks this (non-runtime) thread until it finishes.
    fn run<F>(&self, fut: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        futures::executor::block_on(self.spawn_remote(fut))
    }
}

// ---------------------------------------------------------------------------------------
// runnel

pub struct Runnel(runnel::Runtime);

/// With `HARNESS_RUNNEL_METRICS` set, each runnel runtime prints its counters when it
/// stops (polls, steals, parks, wakeups taken from the reactor): for profiling.
impl Drop for Runnel {
    fn drop(&mut self) {
        if std::env::var_os("HARNESS_RUNNEL_METRICS").is_some() {
            eprintln!("runnel metrics: {:?}", self.0.metrics());
        }
    }
}

/// A runnel `JoinHandle` that yields the output and panics if the task failed.
pub struct RunnelJoin<T>(runnel::JoinHandle<T>);

impl<T> Future for RunnelJoin<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.expect("runnel task failed"))
    }
}

impl Runtime for Runnel {
    type Join<T: Send + 'static> = RunnelJoin<T>;
    type Listener = runnel::net::TcpListener;
    type Stream = runnel::net::TcpStream;

    fn start(workers: usize) -> Self {
        Runnel(
            runnel::Builder::new()
                .worker_threads(workers)
                .build()
                .expect("runnel runtime"),
        )
    }

    fn spawn_remote<F>(&self, fut: F) -> RunnelJoin<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        RunnelJoin(self.0.spawn(fut))
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

    fn sleep(d: Duration) -> impl Future<Output = ()> + Send {
        runnel::time::sleep(d)
    }

    async fn timeout<F>(d: Duration, fut: F) -> Option<F::Output>
    where
        F: Future + Send,
    {
        runnel::time::timeout(d, fut).await.ok()
    }

    fn listener(l: std::net::TcpListener) -> io::Result<Self::Listener> {
        runnel::net::TcpListener::from_std(l)
    }

    async fn accept(l: &Self::Listener) -> io::Result<Self::Stream> {
        Ok(l.accept().await?.0)
    }

    fn connect(addr: SocketAddr) -> impl Future<Output = io::Result<Self::Stream>> + Send {
        runnel::net::TcpStream::connect(addr)
    }

    fn set_nodelay(s: &Self::Stream) -> io::Result<()> {
        s.set_nodelay(true)
    }

    fn read<'a>(
        s: &'a mut Self::Stream,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        s.read(buf)
    }

    fn read_exact<'a>(
        s: &'a mut Self::Stream,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<()>> + Send + 'a {
        s.read_exact(buf)
    }

    fn write_all<'a>(
        s: &'a mut Self::Stream,
        buf: &'a [u8],
    ) -> impl Future<Output = io::Result<()>> + Send + 'a {
        s.write_all(buf)
    }
}

// ---------------------------------------------------------------------------------------
// tokio

pub struct Tokio(tokio::runtime::Runtime);

/// A tokio `JoinHandle` that yields the output and panics if the task failed.
pub struct TokioJoin<T>(tokio::task::JoinHandle<T>);

impl<T> Future for TokioJoin<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.expect("tokio task failed"))
    }
}

impl Runtime for Tokio {
    type Join<T: Send + 'static> = TokioJoin<T>;
    type Listener = tokio::net::TcpListener;
    type Stream = tokio::net::TcpStream;

    fn start(workers: usize) -> Self {
        Tokio(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .enable_all()
                .build()
                .expect("tokio runtime"),
        )
    }

    fn spawn_remote<F>(&self, fut: F) -> TokioJoin<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        TokioJoin(self.0.spawn(fut))
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

    fn sleep(d: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(d)
    }

    async fn timeout<F>(d: Duration, fut: F) -> Option<F::Output>
    where
        F: Future + Send,
    {
        tokio::time::timeout(d, fut).await.ok()
    }

    fn listener(l: std::net::TcpListener) -> io::Result<Self::Listener> {
        tokio::net::TcpListener::from_std(l)
    }

    async fn accept(l: &Self::Listener) -> io::Result<Self::Stream> {
        Ok(l.accept().await?.0)
    }

    fn connect(addr: SocketAddr) -> impl Future<Output = io::Result<Self::Stream>> + Send {
        tokio::net::TcpStream::connect(addr)
    }

    fn set_nodelay(s: &Self::Stream) -> io::Result<()> {
        s.set_nodelay(true)
    }

    fn read<'a>(
        s: &'a mut Self::Stream,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        tokio::io::AsyncReadExt::read(s, buf)
    }

    async fn read_exact<'a>(s: &'a mut Self::Stream, buf: &'a mut [u8]) -> io::Result<()> {
        tokio::io::AsyncReadExt::read_exact(s, buf).await.map(drop)
    }

    fn write_all<'a>(
        s: &'a mut Self::Stream,
        buf: &'a [u8],
    ) -> impl Future<Output = io::Result<()>> + Send + 'a {
        tokio::io::AsyncWriteExt::write_all(s, buf)
    }
}

// ---------------------------------------------------------------------------------------
// smol

/// async-executor's `Executor` run by `workers` threads, each in async-io's `block_on`
/// (so an idle worker drives the async-io reactor, smol's own shape).
pub struct Smol {
    executor: Arc<async_executor::Executor<'static>>,
    /// Dropping it closes the channel, which ends every worker's `run`.
    stop: Option<async_channel::Sender<()>>,
    threads: Vec<thread::JoinHandle<()>>,
}

thread_local! {
    /// The executor of the smol worker this thread is, for `Smol::spawn`.
    static SMOL_EXECUTOR: RefCell<Option<Arc<async_executor::Executor<'static>>>> =
        const { RefCell::new(None) };
}

/// A smol `Task` that detaches (instead of cancelling) when dropped, like the others.
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

impl Drop for Smol {
    fn drop(&mut self) {
        drop(self.stop.take());
        for t in self.threads.drain(..) {
            t.join().expect("smol worker panicked");
        }
    }
}

impl Runtime for Smol {
    type Join<T: Send + 'static> = SmolJoin<T>;
    type Listener = async_io::Async<std::net::TcpListener>;
    type Stream = async_io::Async<std::net::TcpStream>;

    fn start(workers: usize) -> Self {
        let executor = Arc::new(async_executor::Executor::new());
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let threads = (0..workers)
            .map(|i| {
                let executor = executor.clone();
                let stopped = stopped.clone();
                thread::Builder::new()
                    .name(format!("smol-{i}"))
                    .spawn(move || {
                        SMOL_EXECUTOR.with(|e| *e.borrow_mut() = Some(executor.clone()));
                        // Err(closed) is the stop signal.
                        let _ = async_io::block_on(executor.run(stopped.recv()));
                        SMOL_EXECUTOR.with(|e| e.borrow_mut().take());
                    })
                    .expect("smol worker thread")
            })
            .collect();
        Smol {
            executor,
            stop: Some(stop),
            threads,
        }
    }

    fn spawn_remote<F>(&self, fut: F) -> SmolJoin<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        SmolJoin(Some(self.executor.spawn(fut)))
    }

    /// async-io's `block_on` (which also drives the reactor while this thread waits);
    /// `Smol::spawn` on this thread meanwhile goes to the executor the workers run, as a
    /// smol program's `main` would call `ex.spawn`.
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        let previous = SMOL_EXECUTOR.with(|e| e.borrow_mut().replace(self.executor.clone()));
        let out = async_io::block_on(fut);
        SMOL_EXECUTOR.with(|e| *e.borrow_mut() = previous);
        out
    }

    fn spawn<F>(fut: F) -> SmolJoin<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        SMOL_EXECUTOR.with(|e| {
            let e = e.borrow();
            let executor = e.as_ref().expect("Smol::spawn outside a smol worker");
            SmolJoin(Some(executor.spawn(fut)))
        })
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        futures_lite::future::yield_now()
    }

    async fn sleep(d: Duration) {
        async_io::Timer::after(d).await;
    }

    async fn timeout<F>(d: Duration, fut: F) -> Option<F::Output>
    where
        F: Future + Send,
    {
        futures_lite::future::or(async { Some(fut.await) }, async {
            async_io::Timer::after(d).await;
            None
        })
        .await
    }

    fn listener(l: std::net::TcpListener) -> io::Result<Self::Listener> {
        async_io::Async::new(l)
    }

    async fn accept(l: &Self::Listener) -> io::Result<Self::Stream> {
        Ok(l.accept().await?.0)
    }

    fn connect(addr: SocketAddr) -> impl Future<Output = io::Result<Self::Stream>> + Send {
        async_io::Async::<std::net::TcpStream>::connect(addr)
    }

    fn set_nodelay(s: &Self::Stream) -> io::Result<()> {
        s.get_ref().set_nodelay(true)
    }

    fn read<'a>(
        s: &'a mut Self::Stream,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        futures_lite::AsyncReadExt::read(s, buf)
    }

    fn read_exact<'a>(
        s: &'a mut Self::Stream,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<()>> + Send + 'a {
        futures_lite::AsyncReadExt::read_exact(s, buf)
    }

    fn write_all<'a>(
        s: &'a mut Self::Stream,
        buf: &'a [u8],
    ) -> impl Future<Output = io::Result<()>> + Send + 'a {
        futures_lite::AsyncWriteExt::write_all(s, buf)
    }
}
