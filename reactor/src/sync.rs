//! Lock helper shared by the reactor's modules.
//!
//! Every mutex in the reactor guards plain bookkeeping (slab entries, waker slots, timer
//! lists) that is consistent between statements, so a panic on another thread while it held
//! the lock leaves nothing half-updated that matters. Poisoning would turn one panicking
//! task into a reactor that panics on every later operation, so we ignore it.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, ignoring poisoning (see the module header for why that is sound here).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
