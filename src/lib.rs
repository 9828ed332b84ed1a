//! runnel: a work-stealing async runtime for network servers that reports deadlocks
//! instead of hanging.
//!
//! - A multi-worker executor with tokio's API shape: [`Runtime`], [`Builder`],
//!   [`spawn`], [`spawn_blocking`], [`JoinHandle`].
//! - An epoll/kqueue reactor that an idle worker sleeps in (Go's netpoll shape; the
//!   `sysmon` thread polls it only when every worker is busy), with [`net`] sockets and
//!   [`time`] utilities.
//! - Go's guarantee: when no task can ever make progress, `block_on` panics with
//!   `all tasks are asleep - deadlock!` and the list of stuck tasks, instead of hanging.
//!   Anything outside the runtime that may still spawn or wake (a [`Handle`] held outside
//!   `block_on`, a waker held by a foreign thread, an [`AbortHandle`]) means "maybe": no
//!   report, only a stall report after a quiet period. The README states the rule.
//!
//! ```
//! let rt = runnel::Runtime::new().unwrap();
//! let sum = rt.block_on(async {
//!     let a = runnel::spawn(async { 20 });
//!     let b = runnel::spawn(async { 22 });
//!     a.await.unwrap() + b.await.unwrap()
//! });
//! assert_eq!(sum, 42);
//! ```
//!
//! A deadlock is reported, not hung on:
//!
//! ```should_panic
//! let rt = runnel::Runtime::new().unwrap();
//! rt.block_on(async {
//!     let stuck = runnel::spawn(std::future::pending::<()>());
//!     stuck.await.unwrap(); // panics: all tasks are asleep - deadlock!
//! });
//! ```

pub use runnel_executor::task_local;
mod select;

pub use runnel_executor::{
    spawn, spawn_blocking, AbortHandle, Builder, EnterGuard, Handle, JoinError, JoinHandle,
    MetricsReader, OnDeadlock, Runtime, RuntimeMetrics, TaskDump, TryCurrentError, UnhandledPanic,
    DEADLOCK_MESSAGE,
};

/// Runs an `async fn main` on a new runnel runtime.
///
/// Arguments: `worker_threads = N` (default: one per CPU), `on_deadlock = "panic" |
/// "report" | "ignore"` (default `"panic"`), `crate = "path"` (where runnel is, if
/// re-exported).
///
/// ```
/// #[runnel::main(worker_threads = 2, on_deadlock = "panic")]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let listener = runnel::net::TcpListener::bind("127.0.0.1:0").await?;
///     let answer = runnel::spawn(async { 6 * 7 }).await?;
///     println!("{answer}, listening on {}", listener.local_addr()?);
///     Ok(())
/// }
/// ```
pub use runnel_macros::main;

/// Runs an `async fn` test on its own runnel runtime (2 workers by default, so tests
/// exercise stealing; `on_deadlock = "panic"`, so a test that would hang fails at once
/// with the deadlock report). Takes the same arguments as [`main`](macro@main).
///
/// ```no_run
/// #[runnel::test]
/// async fn adds() {
///     let sum = runnel::spawn(async { 1 + 1 }).await.unwrap();
///     assert_eq!(sum, 2);
/// }
///
/// #[runnel::test(worker_threads = 4)]
/// #[should_panic(expected = "all tasks are asleep - deadlock!")]
/// async fn hangs_forever() {
///     std::future::pending::<()>().await;
/// }
/// ```
pub use runnel_macros::test;

pub mod task {
    //! Tasks: spawning, joining, yielding.
    pub use runnel_executor::task::{
        futures, spawn_local, task_local, AccessError, JoinSet, LocalEnterGuard, LocalJoinHandle,
        LocalKey, LocalSet, TaskLocalFuture,
    };
    pub use runnel_executor::task::{
        spawn, spawn_blocking, yield_now, AbortHandle, Id, JoinError, JoinHandle,
    };
}

pub mod dump {
    //! Task dumps as data ([`Handle::dump`](crate::Handle::dump)): each task's id, spawn
    //! site, poll count, and whether it runs (on which worker), is queued, or waits (on
    //! what, who could wake it, and for how long at least).
    pub use runnel_executor::dump::*;
}

pub mod time {
    //! Timers: [`sleep`], [`sleep_until`], [`timeout`], [`interval`].
    pub use runnel_reactor::time::*;
}

pub mod sync {
    //! Async locks and channels with tokio's names: [`Mutex`], [`RwLock`], [`Semaphore`],
    //! [`Notify`], [`Barrier`], [`WaitGroup`] (Go's), and the channels [`mpsc`],
    //! [`oneshot`], [`watch`], [`broadcast`]. Runtime-agnostic (any executor may poll them); see `runnel-sync`.
    pub use runnel_sync::*;
}

pub mod net {
    //! TCP, UDP and (on Unix) Unix domain sockets, and [`lookup_host`], which resolves host
    //! names on the blocking pool so that no worker blocks on DNS.
    pub use runnel_net::*;
}

pub mod io {
    //! I/O traits and utilities over `futures-io` (the traits runnel's sockets and files
    //! implement): extension traits, [`BufReader`], [`BufWriter`], [`copy`],
    //! [`copy_bidirectional`], [`split`], [`empty`], [`sink`], [`repeat`].
    //!
    //! Cancel safety (whether dropping a future early, e.g. in [`select!`](crate::select),
    //! loses data): `read`, `write`, `flush`, `close` and `fill_buf` are cancel-safe;
    //! `read_exact`, `read_to_end`, `read_to_string`, `read_line`, `read_until`,
    //! `write_all`, `seek`, [`copy`] and [`copy_bidirectional`] are not. The `runnel-io`
    //! crate's documentation has the full table.
    pub use runnel_io::*;
}

pub mod fs {
    //! Files and directories, tokio's `fs` API: each call is a `std::fs` call run on the
    //! runtime's **blocking pool** (`spawn_blocking`), so a slow disk never stalls a
    //! worker. [`File`] implements the `futures-io` read, write and seek traits (one
    //! blocking job in flight per file, with an internal buffer: flush to see write
    //! errors). Outside a runtime the calls panic, saying so. A dropped future does not stop
    //! its `std::fs` call, which completes on the pool; [`ReadDir::next_entry`] is
    //! cancel-safe.
    pub use runnel_fs::*;
}

/// Waits for all the futures, concurrently on the calling task, and returns their outputs
/// as a tuple (`futures-util`'s `join!`; same semantics as tokio's).
///
/// ```
/// # runnel::Runtime::new().unwrap().block_on(async {
/// let (a, b) = runnel::join!(async { 1 }, async { "two" });
/// assert_eq!((a, b), (1, "two"));
/// # });
/// ```
pub use futures_util::join;

/// Like [`join!`] for futures returning `Result`s with one error type: returns `Ok` of
/// all the values, or the first `Err` at once, dropping (cancelling) the futures still
/// running (`futures-util`'s `try_join!`; same semantics as tokio's).
///
/// ```
/// # runnel::Runtime::new().unwrap().block_on(async {
/// let r: Result<(u8, u8), &str> = runnel::try_join!(async { Ok(1) }, async { Err("no") });
/// assert_eq!(r, Err("no"));
/// # });
/// ```
pub use futures_util::try_join;

#[doc(hidden)]
pub mod __private {
    //! Support for the expansions of runnel's macros; not a public API.
    pub use crate::select::select_start;
    pub use core::future::poll_fn;
    pub use runnel_macros::select_impl;
}

#[cfg(unix)]
pub mod signal {
    //! Signals: [`ctrl_c`] and [`unix::signal`] (tokio's shapes). A task waiting for a
    //! signal waits on the reactor like a socket read, so the deadlock detector never
    //! reports a server that waits for SIGTERM.
    pub use runnel_reactor::signal::*;
}
