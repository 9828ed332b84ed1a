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

pub use runnel_executor::{
    spawn, spawn_blocking, AbortHandle, Builder, EnterGuard, Handle, JoinError, JoinHandle,
    MetricsReader, OnDeadlock, Runtime, RuntimeMetrics, TryCurrentError, DEADLOCK_MESSAGE,
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
        spawn, spawn_blocking, yield_now, AbortHandle, Id, JoinError, JoinHandle,
    };
}

pub mod time {
    //! Timers: [`sleep`], [`sleep_until`], [`timeout`], [`interval`].
    pub use runnel_reactor::time::*;
}

pub mod net {
    //! TCP, UDP and (on Unix) Unix domain sockets, and [`lookup_host`], which resolves host
    //! names on the blocking pool so that no worker blocks on DNS.
    pub use runnel_net::*;
}

#[cfg(unix)]
pub mod signal {
    //! Signals: [`ctrl_c`] and [`unix::signal`] (tokio's shapes). A task waiting for a
    //! signal waits on the reactor like a socket read, so the deadlock detector never
    //! reports a server that waits for SIGTERM.
    pub use runnel_reactor::signal::*;
}
