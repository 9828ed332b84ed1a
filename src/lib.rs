//! runnel: a work-stealing async runtime for network servers that reports deadlocks
//! instead of hanging.
//!
//! - A multi-worker executor with tokio's API shape: [`Runtime`], [`Builder`],
//!   [`spawn`], [`spawn_blocking`], [`JoinHandle`].
//! - An epoll/kqueue reactor drained by a dedicated poller thread, with [`net`] sockets
//!   and [`time`] utilities.
//! - Go's guarantee: when no task can ever make progress, `block_on` panics with
//!   `all tasks are asleep - deadlock!` and the list of stuck tasks, instead of hanging.
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
    spawn, spawn_blocking, Builder, EnterGuard, Handle, JoinError, JoinHandle, OnDeadlock, Runtime,
    RuntimeMetrics, TryCurrentError, DEADLOCK_MESSAGE,
};

pub mod task {
    //! Tasks: spawning, joining, yielding.
    pub use runnel_executor::task::{spawn, spawn_blocking, yield_now, Id, JoinError, JoinHandle};
}

pub mod time {
    //! Timers: [`sleep`], [`sleep_until`], [`timeout`], [`interval`].
    pub use runnel_reactor::time::*;
}

pub mod net {
    //! TCP and UDP sockets.
    pub use runnel_net::*;
}
