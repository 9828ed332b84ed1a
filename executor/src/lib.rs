//! runnel's executor: tasks, the work-stealing scheduler, the poller thread (runnel's
//! `sysmon`), the deadlock detector, the blocking pool and the `Runtime` API.
//!
//! Most users depend on the `runnel` facade, which re-exports this crate.
//!
//! | module | owns |
//! | --- | --- |
//! | `task` | the task allocation, its state word, `JoinHandle`, the owned-task list |
//! | `scheduler` | run queues, workers, the scheduler lock and idle accounting |
//! | `poller` | the poller thread: reactor draining under the token, sysmon duties |
//! | `detector` | the deadlock detector: its counts, the check, the deadlock and stall reports |
//! | `block_on` | driving a future on the caller's thread |
//! | `blocking` | the `spawn_blocking` pool |
//! | `runtime` | `Builder`, `Runtime`, `Handle`, `spawn`, `spawn_blocking` |
//! | `signal_dump` | `Builder::dump_on_signal`'s listener thread (invisible to the detector) |
//! | `context` | the thread-local "current runtime" |
//! | `metrics` | counters |
//!
//! The architecture and its invariants are described in the repository's
//! `ARCHITECTURE.md`.

mod block_on;
mod blocking;
mod context;
mod detector;
pub mod dump;
mod loom;
mod metrics;
mod poller;
mod runtime;
mod scheduler;
#[cfg(unix)]
mod signal_dump;
mod yield_now;

pub mod task {
    //! Task handles and task-level utilities.
    //!
    //! ```
    //! # runnel_executor::Runtime::new().unwrap().block_on(async {
    //! use runnel_executor::task;
    //! let handle = task::spawn(async { task::yield_now().await; 5 });
    //! assert_eq!(handle.await.unwrap(), 5);
    //! # });
    //! ```
    mod imp;
    mod join_set;
    mod local;
    mod task_local;
    pub(crate) use imp::*;
    pub use imp::{AbortHandle, Id, JoinError, JoinHandle};
    pub use join_set::JoinSet;
    pub use local::{spawn_local, LocalEnterGuard, LocalJoinHandle, LocalSet};
    pub use task_local::{AccessError, LocalKey, TaskLocalFuture};

    pub use crate::task_local;

    pub mod futures {
        //! Futures returned by task utilities (tokio's `task::futures`).
        pub use super::task_local::TaskLocalFuture;
    }

    pub use crate::runtime::{spawn, spawn_blocking};
    pub use crate::yield_now::yield_now;
}

pub use detector::DEADLOCK_MESSAGE;
pub use dump::TaskDump;
pub use metrics::RuntimeMetrics;
pub use runtime::{
    spawn, spawn_blocking, Builder, EnterGuard, Handle, MetricsReader, OnDeadlock, Runtime,
    TryCurrentError, UnhandledPanic,
};
pub use task::{AbortHandle, JoinError, JoinHandle};
