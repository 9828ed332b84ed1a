//! runnel's synchronisation primitives, with tokio's names and signatures so that code
//! switches by changing the path (`tokio::sync::Mutex` → `runnel::sync::Mutex`).
//!
//! Everything here is runtime-agnostic: only the standard library (and `slab`), plain
//! [`Waker`](std::task::Waker)s, no timers and no thread-locals. The futures work when
//! polled by any executor (`futures::executor::block_on` included).
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
//!
//! Waiting tasks keep their wakers in these primitives, which the runtime cannot see
//! into: for runnel's deadlock detector such a task is woken by an outside holder, so a
//! lock-order deadlock gives a stall report ("maybe"), never a false deadlock report.

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
