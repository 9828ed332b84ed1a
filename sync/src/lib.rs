//! runnel's synchronisation primitives, with tokio's names and signatures so that code
//! switches by changing the path (`tokio::sync::Mutex` → `runnel::sync::Mutex`).
//!
//! Everything here is runtime-agnostic: only the standard library (and `slab`), plain
//! [`Waker`](std::task::Waker)s, no timers. The futures work when polled by any executor
//! (`futures::executor::block_on` included); the only thread-local they read is
//! `runnel_reactor::wait`'s, which is empty outside a runnel poll.
//!
//! | module | owns |
//! | --- | --- |
//! | `semaphore` | [`Semaphore`]: the FIFO permit queue every lock is built on |
//! | `mutex` | [`Mutex`] (one permit) |
//! | `rwlock` | [`RwLock`] (readers take one permit, a writer takes them all) |
//! | `notify` | [`Notify`] |
//! | `barrier` | [`Barrier`] |
//! | `wait_group` | [`WaitGroup`] (Go's `sync.WaitGroup`) and its RAII [`WaitGroupToken`] |
//! | `mpsc`, `oneshot`, `watch`, `broadcast` | the channels |
//! | `wait_record` | the dump record of a `watch` or `broadcast` wait |
//!
//! Waiting tasks keep their wakers in these primitives, which the runtime cannot see
//! into: for runnel's global deadlock check such a task is woken by an outside holder
//! ("maybe"), never a false deadlock report. For the wait-for graph (partial deadlocks,
//! found while the rest of the runtime runs) `Mutex`, `RwLock` and `Semaphore` permits
//! record which runnel task holds them (a task id stored on acquire, cleared on release;
//! "outside" when not taken on a runnel task), and their creation site
//! (`#[track_caller]`); a lock wait registers itself in the waiting task's wait slot.
//! A guard can move to another task or thread without the lock seeing it, so a cycle
//! through locks is reported as *likely* (see ARCHITECTURE.md, "The wait-for graph").
//! A `Notify` wait (a `Barrier`'s included) and a `WaitGroup` wait with no token out
//! register the primitive's address instead: one that lives inside the waiting task's own
//! future can only be signalled by that task, so such a wait is reported as certain.
//! Channel waits are not followed: a channel end moves freely (into a task, a registry, a
//! thread), and nothing records where it went. A channel wait registers the channel's
//! record for dumps only: its creation site (`#[track_caller]` on the constructors) and
//! live ends (`wait_record`, and mpsc's own); a `oneshot` wait names only its address
//! (a record would cost each waited-on oneshot an allocation).

pub mod barrier;
pub use barrier::{Barrier, BarrierWaitResult};
pub mod mutex;
pub use mutex::{MappedMutexGuard, Mutex, MutexGuard, OwnedMutexGuard, TryLockError};
pub mod notify;
pub use notify::{Notified, Notify};
pub mod rwlock;
pub use rwlock::{
    OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
};
pub mod wait_group;
pub use wait_group::{WaitGroup, WaitGroupToken};
pub mod semaphore;
pub use semaphore::{
    AcquireError, OwnedSemaphorePermit, Semaphore, SemaphorePermit, TryAcquireError,
};

pub mod broadcast;
pub mod mpsc;
pub mod oneshot;
pub mod watch;

mod block_on;
mod loom;
mod wait_record;
mod wake_list;

pub use runnel_reactor::wait::SyncKind;

/// Records, for runnel's task dumps and reports, that the task being polled waits on the
/// primitive at `at` (a no-op when not polled by a runnel runtime).
pub(crate) fn note_wait<T: ?Sized>(kind: SyncKind, at: *const T) {
    runnel_reactor::wait::note(runnel_reactor::wait::WaitReason::Sync {
        kind,
        addr: at.cast::<()>() as usize as u64,
    });
}
