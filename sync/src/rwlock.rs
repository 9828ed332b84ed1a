//! [`RwLock`]: an async reader-writer lock on a [`Semaphore`] of `max_readers` permits.
//!
//! A reader takes one permit, a writer takes all of them. Because the semaphore is FIFO,
//! a queued writer blocks every reader that arrives after it (write-preferring, no writer
//! starvation), as in tokio. Invariant: a write guard holds all `max_readers` permits, so
//! while it lives no read guard exists; read guards hold one each, so no writer holds all.
//!
//! Holders: a write guard records its task in the semaphore's exclusive holder slot, a
//! read guard in a shared one (kept in the guard; a downgraded writer keeps the exclusive
//! slot), each cleared before the permits go back, for runnel's wait-for graph.

use std::cell::UnsafeCell;
use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::sync::Arc;

use crate::mutex::TryLockError;
use crate::semaphore::{block_on, Semaphore, TryAcquireError};
use runnel_reactor::wait::HoldSlot;

/// The most concurrent readers an [`RwLock`] allows (tokio's value).
const MAX_READS: u32 = u32::MAX >> 3;

/// An async reader-writer lock: many readers or one writer, served in FIFO order.
///
/// ```
/// # futures::executor::block_on(async {
/// let lock = runnel_sync::RwLock::new(5);
/// {
///     let r1 = lock.read().await;
///     let r2 = lock.read().await;
///     assert_eq!(*r1 + *r2, 10);
/// }
/// *lock.write().await += 1;
/// assert_eq!(*lock.read().await, 6);
/// # });
/// ```
pub struct RwLock<T: ?Sized> {
    max_readers: u32,
    sem: Semaphore,
    cell: UnsafeCell<T>,
}

// SAFETY: readers on several threads share `&T` (needs T: Sync); a writer on any thread
// gets `&mut T` (needs T: Send). Same bounds as std's RwLock.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}
// SAFETY: moving the lock moves the T it owns.
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}

impl<T> RwLock<T> {
    /// A new, unlocked lock allowing up to `u32::MAX >> 3` concurrent readers.
    #[track_caller]
    pub fn new(value: T) -> RwLock<T> {
        RwLock::with_max_readers(value, MAX_READS)
    }

    crate::loom::const_unless_loom! {
        /// Like [`new`](Self::new), usable in a `static`.
        #[track_caller]
        pub fn const_new(value: T) -> RwLock<T> {
            RwLock::const_with_max_readers(value, MAX_READS)
        }
    }

    /// A new lock allowing at most `max_reads` concurrent readers.
    ///
    /// # Panics
    ///
    /// If `max_reads` is 0 or above `u32::MAX >> 3`.
    #[track_caller]
    pub fn with_max_readers(value: T, max_reads: u32) -> RwLock<T> {
        RwLock::const_with_max_readers(value, max_reads)
    }

    crate::loom::const_unless_loom! {
        /// Like [`with_max_readers`](Self::with_max_readers), usable in a `static`.
        #[track_caller]
        pub fn const_with_max_readers(value: T, max_reads: u32) -> RwLock<T> {
            assert!(
                max_reads > 0 && max_reads <= MAX_READS,
                "RwLock max_reads must be between 1 and u32::MAX >> 3"
            );
            RwLock {
                max_readers: max_reads,
                sem: Semaphore::const_new(max_reads as usize),
                cell: UnsafeCell::new(value),
            }
        }
    }

    /// Consumes the lock and returns the value.
    pub fn into_inner(self) -> T {
        self.cell.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Waits for shared read access. Queues behind any writer that asked first.
    ///
    /// **Cancel safety:** cancel-safe: a dropped `read` future keeps no place in the
    /// queue and gives back anything handed to it.
    #[track_caller]
    pub fn read(&self) -> impl Future<Output = RwLockReadGuard<'_, T>> + '_ {
        let at = Location::caller();
        async move {
            self.acquire(1).await;
            RwLockReadGuard {
                lock: self,
                hold: self.sem.holders().hold_shared_at(at),
            }
        }
    }

    /// [`read`](Self::read) for an `Arc<RwLock<T>>`; the guard owns the `Arc`.
    ///
    /// **Cancel safety:** cancel-safe.
    #[track_caller]
    pub fn read_owned(self: Arc<Self>) -> impl Future<Output = OwnedRwLockReadGuard<T>> {
        let at = Location::caller();
        async move {
            self.acquire(1).await;
            let hold = self.sem.holders().hold_shared_at(at);
            OwnedRwLockReadGuard { lock: self, hold }
        }
    }

    /// Waits for exclusive write access (all reader permits).
    ///
    /// **Cancel safety:** cancel-safe: a dropped `write` future returns the reader
    /// permits already collected for it, so readers behind it proceed.
    #[track_caller]
    pub fn write(&self) -> impl Future<Output = RwLockWriteGuard<'_, T>> + '_ {
        let at = Location::caller();
        async move {
            self.acquire(self.max_readers).await;
            self.sem.holders().hold_exclusive_at(at);
            RwLockWriteGuard { lock: self }
        }
    }

    /// [`write`](Self::write) for an `Arc<RwLock<T>>`; the guard owns the `Arc`.
    ///
    /// **Cancel safety:** cancel-safe.
    #[track_caller]
    pub fn write_owned(self: Arc<Self>) -> impl Future<Output = OwnedRwLockWriteGuard<T>> {
        let at = Location::caller();
        async move {
            self.acquire(self.max_readers).await;
            self.sem.holders().hold_exclusive_at(at);
            OwnedRwLockWriteGuard { lock: self }
        }
    }

    /// Read access if no writer holds or waits for the lock.
    ///
    /// # Errors
    ///
    /// [`TryLockError`] if a writer holds or waits for it.
    #[track_caller]
    pub fn try_read(&self) -> Result<RwLockReadGuard<'_, T>, TryLockError> {
        self.try_acquire(1)?;
        Ok(RwLockReadGuard {
            lock: self,
            hold: self.sem.holders().hold_shared_at(Location::caller()),
        })
    }

    /// [`try_read`](Self::try_read) for an `Arc<RwLock<T>>`.
    ///
    /// # Errors
    ///
    /// [`TryLockError`] if a writer holds or waits for it.
    #[track_caller]
    pub fn try_read_owned(self: Arc<Self>) -> Result<OwnedRwLockReadGuard<T>, TryLockError> {
        self.try_acquire(1)?;
        let hold = self.sem.holders().hold_shared_at(Location::caller());
        Ok(OwnedRwLockReadGuard { lock: self, hold })
    }

    /// Write access if nobody holds or waits for the lock.
    ///
    /// # Errors
    ///
    /// [`TryLockError`] if it is held or waited for.
    #[track_caller]
    pub fn try_write(&self) -> Result<RwLockWriteGuard<'_, T>, TryLockError> {
        self.try_acquire(self.max_readers)?;
        self.sem.holders().hold_exclusive_at(Location::caller());
        Ok(RwLockWriteGuard { lock: self })
    }

    /// [`try_write`](Self::try_write) for an `Arc<RwLock<T>>`.
    ///
    /// # Errors
    ///
    /// [`TryLockError`] if it is held or waited for.
    #[track_caller]
    pub fn try_write_owned(self: Arc<Self>) -> Result<OwnedRwLockWriteGuard<T>, TryLockError> {
        self.try_acquire(self.max_readers)?;
        self.sem.holders().hold_exclusive_at(Location::caller());
        Ok(OwnedRwLockWriteGuard { lock: self })
    }

    /// Read access from synchronous code, parking the thread (see
    /// [`Mutex::blocking_lock`](crate::Mutex::blocking_lock) for where to call it).
    #[track_caller]
    pub fn blocking_read(&self) -> RwLockReadGuard<'_, T> {
        block_on(self.read())
    }

    /// Write access from synchronous code, parking the thread (see
    /// [`Mutex::blocking_lock`](crate::Mutex::blocking_lock) for where to call it).
    #[track_caller]
    pub fn blocking_write(&self) -> RwLockWriteGuard<'_, T> {
        block_on(self.write())
    }

    /// The value, through exclusive access to the lock (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.cell.get_mut()
    }

    async fn acquire(&self, n: u32) {
        // One permit is a read lock; a writer takes them all.
        let kind = if n == 1 && self.max_readers != 1 {
            crate::SyncKind::RwLockRead
        } else {
            crate::SyncKind::RwLockWrite
        };
        if self.sem.acquire_tracked(n as usize, kind).await.is_err() {
            unreachable!("an RwLock's semaphore is never closed");
        }
    }

    fn try_acquire(&self, n: u32) -> Result<(), TryLockError> {
        match self.sem.try_acquire_permits(n as usize) {
            Ok(()) => Ok(()),
            Err(TryAcquireError::NoPermits) => Err(TryLockError(())),
            Err(TryAcquireError::Closed) => unreachable!("an RwLock's semaphore is never closed"),
        }
    }
}

impl<T: Default> Default for RwLock<T> {
    #[track_caller]
    fn default() -> RwLock<T> {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    #[track_caller]
    fn from(value: T) -> RwLock<T> {
        RwLock::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Ok(guard) => d.field("data", &&*guard),
            Err(_) => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

/// Shared read access to an [`RwLock`]'s value; releases its permit when dropped.
#[must_use = "dropping the guard releases the lock at once"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    hold: HoldSlot,
}

/// Exclusive write access to an [`RwLock`]'s value; unlocks when dropped.
#[must_use = "dropping the guard releases the lock at once"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
}

/// [`RwLockReadGuard`] owning an `Arc<RwLock<T>>`.
#[must_use = "dropping the guard releases the lock at once"]
pub struct OwnedRwLockReadGuard<T: ?Sized> {
    lock: Arc<RwLock<T>>,
    hold: HoldSlot,
}

/// [`RwLockWriteGuard`] owning an `Arc<RwLock<T>>`.
#[must_use = "dropping the guard releases the lock at once"]
pub struct OwnedRwLockWriteGuard<T: ?Sized> {
    lock: Arc<RwLock<T>>,
}

// SAFETY: a shared guard only gives out `&T` (so T: Sync), as std's guards; the same
// holds for the three below (the owned ones also carry the Arc, hence T: Send).
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}
// SAFETY: see above.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}
// SAFETY: see above.
unsafe impl<T: ?Sized + Send + Sync> Sync for OwnedRwLockReadGuard<T> {}
// SAFETY: see above.
unsafe impl<T: ?Sized + Send + Sync> Sync for OwnedRwLockWriteGuard<T> {}

impl<'a, T: ?Sized> RwLockWriteGuard<'a, T> {
    /// Turns write access into read access without letting another writer in between;
    /// readers queued behind are let in.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let lock = runnel_sync::RwLock::new(1);
    /// let mut w = lock.write().await;
    /// *w = 2;
    /// let r = w.downgrade();
    /// assert_eq!(*lock.try_read().unwrap(), 2);
    /// assert!(lock.try_write().is_err());
    /// drop(r);
    /// # });
    /// ```
    pub fn downgrade(self) -> RwLockReadGuard<'a, T> {
        let lock = self.lock;
        std::mem::forget(self); // we keep one permit and give the rest back
        lock.sem.release(lock.max_readers as usize - 1);
        // The same task still holds: the exclusive slot now stands for the read hold.
        RwLockReadGuard {
            lock,
            hold: HoldSlot::EXCLUSIVE,
        }
    }
}

impl<T: ?Sized> OwnedRwLockWriteGuard<T> {
    /// [`RwLockWriteGuard::downgrade`] for the owned guard.
    pub fn downgrade(self) -> OwnedRwLockReadGuard<T> {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so the Arc is moved out once.
        let lock = unsafe { std::ptr::read(&this.lock) };
        lock.sem.release(lock.max_readers as usize - 1);
        OwnedRwLockReadGuard {
            lock,
            hold: HoldSlot::EXCLUSIVE,
        }
    }
}

macro_rules! guard_impls {
    ($guard:ident $(<$lt:lifetime>)?, release: |$g:ident| $release:expr, mut: $mutable:tt) => {
        impl<$($lt,)? T: ?Sized> Deref for $guard<$($lt,)? T> {
            type Target = T;
            fn deref(&self) -> &T {
                // SAFETY: the guard holds at least one permit, so no writer (which needs
                // all of them) has `&mut T`.
                unsafe { &*self.lock.cell.get() }
            }
        }

        impl<$($lt,)? T: ?Sized> Drop for $guard<$($lt,)? T> {
            fn drop(&mut self) {
                let $g = &*self;
                $release;
            }
        }

        impl<$($lt,)? T: ?Sized + fmt::Debug> fmt::Debug for $guard<$($lt,)? T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&**self, f)
            }
        }

        impl<$($lt,)? T: ?Sized + fmt::Display> fmt::Display for $guard<$($lt,)? T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&**self, f)
            }
        }

        guard_impls!(@mut $mutable $guard $(<$lt>)?);
    };
    (@mut true $guard:ident $(<$lt:lifetime>)?) => {
        impl<$($lt,)? T: ?Sized> DerefMut for $guard<$($lt,)? T> {
            fn deref_mut(&mut self) -> &mut T {
                // SAFETY: a write guard holds every permit, so no other guard exists;
                // `&mut self` makes this access unique.
                unsafe { &mut *self.lock.cell.get() }
            }
        }
    };
    (@mut false $guard:ident $(<$lt:lifetime>)?) => {};
}

// Each drop clears its holder record before giving its permits back.
guard_impls!(RwLockReadGuard<'a>, release: |g| g.lock.sem.unlock_shared(g.hold), mut: false);
guard_impls!(OwnedRwLockReadGuard, release: |g| g.lock.sem.unlock_shared(g.hold), mut: false);
guard_impls!(RwLockWriteGuard<'a>, release: |g| g.lock.sem.unlock_exclusive(g.lock.max_readers as usize), mut: true);
guard_impls!(OwnedRwLockWriteGuard, release: |g| g.lock.sem.unlock_exclusive(g.lock.max_readers as usize), mut: true);
