//! [`Mutex`]: an async mutual-exclusion lock on a one-permit [`Semaphore`].
//!
//! Invariant: whoever holds the semaphore's single permit (a guard) has exclusive access
//! to the cell; the permit is released exactly once, when the guard drops. Fairness and
//! cancel safety come from the semaphore (FIFO, a dropped `lock` future loses nothing).
//!
//! Every guard records its holder in the semaphore's exclusive holder slot when the lock
//! is taken and clears it before the permit is released (see `semaphore.rs`), so runnel's
//! wait-for graph can name who holds a mutex another task waits on.

use std::cell::UnsafeCell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::sync::Arc;

use crate::semaphore::{block_on, Semaphore, TryAcquireError};

/// An async mutex: [`lock`](Self::lock) waits (without blocking the thread) until the
/// value is free. Lock waiters are served in FIFO order.
///
/// Prefer `std::sync::Mutex` when the lock is never held across an `.await`; use this one
/// when it is.
///
/// ```
/// use std::sync::Arc;
/// use runnel_sync::Mutex;
///
/// # futures::executor::block_on(async {
/// let count = Arc::new(Mutex::new(0));
/// {
///     let mut n = count.lock().await;
///     *n += 1;
/// } // unlocked here
/// assert_eq!(*count.lock().await, 1);
/// # });
/// ```
pub struct Mutex<T: ?Sized> {
    sem: Semaphore,
    cell: UnsafeCell<T>,
}

// SAFETY: the Mutex hands out `&mut T` to one guard at a time, so sharing it between
// threads only ever moves access to T between threads: T: Send suffices (as std's).
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}
// SAFETY: moving the Mutex moves the T it owns.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}

/// `try_lock` found the mutex (or `RwLock`) locked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TryLockError(pub(crate) ());

impl fmt::Display for TryLockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("operation would block")
    }
}

impl std::error::Error for TryLockError {}

impl<T> Mutex<T> {
    /// A new, unlocked mutex holding `value`. Where it is called is the mutex's creation
    /// site in runnel's deadlock reports.
    #[track_caller]
    pub fn new(value: T) -> Mutex<T> {
        Mutex::const_new(value)
    }

    crate::loom::const_unless_loom! {
        /// Like [`new`](Self::new), usable in a `static`.
        #[track_caller]
        pub fn const_new(value: T) -> Mutex<T> {
            Mutex {
                sem: Semaphore::const_new(1),
                cell: UnsafeCell::new(value),
            }
        }
    }

    /// Consumes the mutex and returns the value.
    pub fn into_inner(self) -> T {
        self.cell.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Waits for the lock.
    ///
    /// **Cancel safety:** cancel-safe. A dropped `lock` future keeps no place in the
    /// queue and loses no unlock: if the lock was handed to it just before it was
    /// dropped, it passes to the next waiter.
    #[track_caller]
    pub fn lock(&self) -> impl Future<Output = MutexGuard<'_, T>> + '_ {
        let at = Location::caller();
        async move {
            self.acquire(at).await;
            MutexGuard { lock: self }
        }
    }

    /// [`lock`](Self::lock) for an `Arc<Mutex<T>>`: the guard owns the `Arc`, so it can
    /// be moved into another task.
    ///
    /// **Cancel safety:** cancel-safe, as [`lock`](Self::lock).
    #[track_caller]
    pub fn lock_owned(self: Arc<Self>) -> impl Future<Output = OwnedMutexGuard<T>> {
        let at = Location::caller();
        async move {
            self.acquire(at).await;
            OwnedMutexGuard { lock: self }
        }
    }

    /// Locks from synchronous code, parking the thread until the lock is free.
    ///
    /// For threads outside any async task (`std::thread`, `spawn_blocking`). Calling it
    /// inside a task blocks that task's worker thread; on runnel the worker's other tasks
    /// are moved to a spare thread (retake), on other runtimes they may stall.
    ///
    /// ```
    /// let m = runnel_sync::Mutex::new(1);
    /// *m.blocking_lock() += 1;
    /// assert_eq!(m.into_inner(), 2);
    /// ```
    #[track_caller]
    pub fn blocking_lock(&self) -> MutexGuard<'_, T> {
        block_on(self.lock())
    }

    /// [`blocking_lock`](Self::blocking_lock) for an `Arc<Mutex<T>>`.
    #[track_caller]
    pub fn blocking_lock_owned(self: Arc<Self>) -> OwnedMutexGuard<T> {
        block_on(self.lock_owned())
    }

    /// Takes the lock if it is free and nobody is queued for it.
    ///
    /// # Errors
    ///
    /// [`TryLockError`] if it is held or waited for.
    #[track_caller]
    pub fn try_lock(&self) -> Result<MutexGuard<'_, T>, TryLockError> {
        self.try_acquire()?;
        Ok(MutexGuard { lock: self })
    }

    /// [`try_lock`](Self::try_lock) for an `Arc<Mutex<T>>`.
    ///
    /// # Errors
    ///
    /// [`TryLockError`] if it is held or waited for.
    #[track_caller]
    pub fn try_lock_owned(self: Arc<Self>) -> Result<OwnedMutexGuard<T>, TryLockError> {
        self.try_acquire()?;
        Ok(OwnedMutexGuard { lock: self })
    }

    /// The value, through exclusive access to the mutex (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.cell.get_mut()
    }

    async fn acquire(&self, at: &'static Location<'static>) {
        // The semaphore of a mutex is never closed, so acquiring cannot fail.
        if self
            .sem
            .acquire_tracked(1, crate::SyncKind::MutexLock)
            .await
            .is_err()
        {
            unreachable!("a mutex's semaphore is never closed");
        }
        self.sem.holders().hold_exclusive_at(at);
    }

    #[track_caller]
    fn try_acquire(&self) -> Result<(), TryLockError> {
        match self.sem.try_acquire_permits(1) {
            Ok(()) => {
                self.sem.holders().hold_exclusive_at(Location::caller());
                Ok(())
            }
            Err(TryAcquireError::NoPermits) => Err(TryLockError(())),
            Err(TryAcquireError::Closed) => unreachable!("a mutex's semaphore is never closed"),
        }
    }
}

impl<T: Default> Default for Mutex<T> {
    #[track_caller]
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    #[track_caller]
    fn from(value: T) -> Mutex<T> {
        Mutex::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Ok(guard) => d.field("data", &&*guard),
            Err(_) => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

/// Exclusive access to a [`Mutex`]'s value; unlocks when dropped.
#[must_use = "dropping the guard unlocks the mutex at once"]
pub struct MutexGuard<'a, T: ?Sized> {
    lock: &'a Mutex<T>,
}

// SAFETY: a shared `&MutexGuard` only gives out `&T` (unlocking and `&mut T` need the
// guard itself), so sharing it needs exactly T: Sync, as for std's guard.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// The mutex this guard locks.
    pub fn mutex(this: &Self) -> &'a Mutex<T> {
        this.lock
    }

    /// Narrows the guard to a part of the value; the lock stays held by the new guard.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let m = runnel_sync::Mutex::new((1, String::from("a")));
    /// let mut s = runnel_sync::MutexGuard::map(m.lock().await, |v| &mut v.1);
    /// s.push('b');
    /// drop(s);
    /// assert_eq!(m.lock().await.1, "ab");
    /// # });
    /// ```
    pub fn map<U: ?Sized, F>(this: Self, f: F) -> MappedMutexGuard<'a, U>
    where
        F: FnOnce(&mut T) -> &mut U,
    {
        let lock = this.lock;
        // SAFETY: `this` holds the mutex's permit, so no other reference to the value
        // exists. If `f` panics, `this` is dropped and unlocks.
        let data: *mut U = f(unsafe { &mut *lock.cell.get() });
        std::mem::forget(this); // the permit moves to the mapped guard
        MappedMutexGuard {
            sem: &lock.sem,
            data,
            marker: PhantomData,
        }
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the permit, so no `&mut T` exists elsewhere.
        unsafe { &*self.lock.cell.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the only permit; `&mut self` makes this access unique.
        unsafe { &mut *self.lock.cell.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.sem.unlock_exclusive(1);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// A [`MutexGuard`] narrowed by [`MutexGuard::map`]; unlocks when dropped.
#[must_use = "dropping the guard unlocks the mutex at once"]
pub struct MappedMutexGuard<'a, T: ?Sized> {
    sem: &'a Semaphore,
    data: *mut T,
    marker: PhantomData<&'a mut T>,
}

// SAFETY: the mapped guard is a unique borrow of part of the locked value: sending it
// sends `&mut T` (needs T: Send), sharing it shares `&T` (needs T: Sync).
unsafe impl<T: ?Sized + Send> Send for MappedMutexGuard<'_, T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Sync> Sync for MappedMutexGuard<'_, T> {}

impl<T: ?Sized> Deref for MappedMutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: `data` points into the locked value, valid for 'a, and the permit this
        // guard holds excludes every other access.
        unsafe { &*self.data }
    }
}

impl<T: ?Sized> DerefMut for MappedMutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes the access unique.
        unsafe { &mut *self.data }
    }
}

impl<T: ?Sized> Drop for MappedMutexGuard<'_, T> {
    fn drop(&mut self) {
        self.sem.unlock_exclusive(1);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MappedMutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// Exclusive access to an `Arc<Mutex<T>>`'s value, owning the `Arc` (`'static` if `T`
/// is); unlocks when dropped.
#[must_use = "dropping the guard unlocks the mutex at once"]
pub struct OwnedMutexGuard<T: ?Sized> {
    lock: Arc<Mutex<T>>,
}

// SAFETY: sharing the guard shares `&T`.
unsafe impl<T: ?Sized + Send + Sync> Sync for OwnedMutexGuard<T> {}

impl<T: ?Sized> OwnedMutexGuard<T> {
    /// The mutex this guard locks.
    pub fn mutex(this: &Self) -> &Arc<Mutex<T>> {
        &this.lock
    }
}

impl<T: ?Sized> Deref for OwnedMutexGuard<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the permit, so no `&mut T` exists elsewhere.
        unsafe { &*self.lock.cell.get() }
    }
}

impl<T: ?Sized> DerefMut for OwnedMutexGuard<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the only permit; `&mut self` makes this access unique.
        unsafe { &mut *self.lock.cell.get() }
    }
}

impl<T: ?Sized> Drop for OwnedMutexGuard<T> {
    fn drop(&mut self) {
        self.lock.sem.unlock_exclusive(1);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for OwnedMutexGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for OwnedMutexGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
