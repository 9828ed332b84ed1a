//! `task_local!`: values scoped to a future rather than to a thread (tokio's semantics).
//!
//! Each key is a thread-local `RefCell<Option<T>>`. `LocalKey::scope` returns a future that
//! owns the value and, around every poll of the wrapped future, swaps the value into the
//! thread-local and back out. So the value is visible exactly while the scoped future (or
//! the `sync_scope` closure) runs on this thread, wherever the task migrates between polls.
//!
//! Invariants:
//! - The swap back out is done by a guard's `Drop`, so it happens on every exit from the
//!   poll: return or panic. Nested scopes of one key restore in stack order.
//! - The `RefCell` is borrowed mutably only for the two swaps; `with` borrows it shared for
//!   the duration of its closure, so entering a scope of the same key inside `with` is the
//!   one misuse, and it panics with a message saying so.
//! - Spawned tasks do not inherit the value: a spawned future is polled by the runtime,
//!   outside the spawner's scope.

use std::cell::RefCell;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Declares task-local keys: each `static NAME: Type;` becomes a [`LocalKey<Type>`] whose
/// value is set by [`LocalKey::scope`] for one future (or [`LocalKey::sync_scope`] for one
/// closure).
///
/// ```
/// runnel_executor::task_local! {
///     static REQUEST_ID: u64;
/// }
///
/// # runnel_executor::Runtime::new().unwrap().block_on(async {
/// REQUEST_ID
///     .scope(7, async {
///         runnel_executor::task::yield_now().await;
///         assert_eq!(REQUEST_ID.get(), 7);
///     })
///     .await;
/// assert!(REQUEST_ID.try_with(|_| ()).is_err());
/// # });
/// ```
#[macro_export]
macro_rules! task_local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty; $($rest:tt)*) => {
        $crate::__runnel_task_local_inner!($(#[$attr])* $vis $name, $t);
        $crate::task_local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty) => {
        $crate::__runnel_task_local_inner!($(#[$attr])* $vis $name, $t);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __runnel_task_local_inner {
    ($(#[$attr:meta])* $vis:vis $name:ident, $t:ty) => {
        $(#[$attr])*
        $vis static $name: $crate::task::LocalKey<$t> = {
            ::std::thread_local! {
                static __RUNNEL_TASK_LOCAL: ::std::cell::RefCell<::std::option::Option<$t>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }
            $crate::task::LocalKey { inner: __RUNNEL_TASK_LOCAL }
        };
    };
}

/// A key for task-local data, made by [`task_local!`](crate::task_local). The value is set
/// only while a future scoped with [`scope`](LocalKey::scope) is being polled (or a
/// [`sync_scope`](LocalKey::sync_scope) closure runs); it is not inherited by spawned
/// tasks.
pub struct LocalKey<T: 'static> {
    #[doc(hidden)]
    pub inner: std::thread::LocalKey<RefCell<Option<T>>>,
}

/// Returned by [`LocalKey::try_with`] outside a scope of the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessError {
    _private: (),
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task-local value not set (not inside a `LocalKey::scope` of this key)")
    }
}

impl Error for AccessError {}

/// Why a scope could not be entered.
enum ScopeError {
    /// Inside `with`/`try_with` of the same key on this thread.
    Borrowed,
    /// The thread-local was destroyed (thread exit).
    Destroyed,
}

impl ScopeError {
    #[track_caller]
    fn panic(self) -> ! {
        match self {
            ScopeError::Borrowed => panic!(
                "cannot enter a task-local scope while the same key's value is borrowed: \
                 `scope`/`sync_scope` (or polling a scoped future) was called inside \
                 `LocalKey::with`/`try_with` of the same key; finish the `with` first"
            ),
            ScopeError::Destroyed => panic!(
                "cannot enter a task-local scope: the thread-local storage behind it was \
                 destroyed (this thread is exiting)"
            ),
        }
    }
}

impl<T: 'static> LocalKey<T> {
    /// Runs `future` with the key set to `value` during each of its polls; the returned
    /// future gives `future`'s output. The value is dropped with the returned future.
    ///
    /// # Panics
    /// Polling the returned future inside [`with`](LocalKey::with) of the same key.
    pub fn scope<F: Future>(&'static self, value: T, future: F) -> TaskLocalFuture<T, F> {
        TaskLocalFuture {
            local: self,
            slot: Some(value),
            future: Some(future),
        }
    }

    /// Runs `f` with the key set to `value`, and returns its result.
    ///
    /// # Panics
    /// When called inside [`with`](LocalKey::with) of the same key.
    #[track_caller]
    pub fn sync_scope<F, R>(&'static self, value: T, f: F) -> R
    where
        F: FnOnce() -> R,
    {
        let mut slot = Some(value);
        self.scope_inner(&mut slot, f).unwrap_or_else(|e| e.panic())
    }

    /// Swaps `slot` into the thread-local for the duration of `f`, and back out on any exit.
    fn scope_inner<F, R>(&'static self, slot: &mut Option<T>, f: F) -> Result<R, ScopeError>
    where
        F: FnOnce() -> R,
    {
        struct Restore<'a, T: 'static> {
            local: &'static LocalKey<T>,
            slot: &'a mut Option<T>,
        }
        impl<T: 'static> Drop for Restore<'_, T> {
            fn drop(&mut self) {
                // The swap in succeeded, and every borrow made inside the scope has ended
                // (they are scoped to `with` closures), so this borrow cannot fail.
                let _ = self.local.inner.try_with(|cell| {
                    std::mem::swap(self.slot, &mut *cell.borrow_mut());
                });
            }
        }
        self.inner
            .try_with(|cell| {
                cell.try_borrow_mut()
                    .map(|mut current| std::mem::swap(slot, &mut *current))
                    .map_err(|_| ScopeError::Borrowed)
            })
            .map_err(|_| ScopeError::Destroyed)??;
        let restore = Restore { local: self, slot };
        let out = f();
        drop(restore);
        Ok(out)
    }

    /// Runs `f` with a reference to the current value.
    ///
    /// # Panics
    /// Outside a scope of this key (see [`try_with`](LocalKey::try_with)).
    #[track_caller]
    pub fn with<F, R>(&'static self, f: F) -> R
    where
        F: FnOnce(&T) -> R,
    {
        match self.try_with(f) {
            Ok(out) => out,
            Err(_) => panic!(
                "task-local value not set: `LocalKey::with`/`get` was called outside a \
                 `LocalKey::scope` (or `sync_scope`) of this key. The value is set only while \
                 the scoped future is being polled, and tasks spawned inside a scope do not \
                 inherit it: wrap the spawned future in its own `scope`, or use `try_with`"
            ),
        }
    }

    /// Runs `f` with a reference to the current value, or returns an error outside a scope
    /// of this key.
    pub fn try_with<F, R>(&'static self, f: F) -> Result<R, AccessError>
    where
        F: FnOnce(&T) -> R,
    {
        let out = self.inner.try_with(|cell| {
            // A shared borrow fails only while a scope swaps the value, which never runs
            // user code: treat it as unset rather than panic.
            let value = cell.try_borrow().ok()?;
            value.as_ref().map(f)
        });
        match out {
            Ok(Some(out)) => Ok(out),
            _ => Err(AccessError { _private: () }),
        }
    }
}

impl<T: Clone + 'static> LocalKey<T> {
    /// A clone of the current value.
    ///
    /// # Panics
    /// Outside a scope of this key, as [`with`](LocalKey::with).
    #[track_caller]
    pub fn get(&'static self) -> T {
        self.with(T::clone)
    }
}

impl<T: 'static> fmt::Debug for LocalKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LocalKey { .. }")
    }
}

/// The future returned by [`LocalKey::scope`].
pub struct TaskLocalFuture<T: 'static, F> {
    local: &'static LocalKey<T>,
    /// The value, while the future is not being polled (during a poll it is in the
    /// thread-local).
    slot: Option<T>,
    /// Structurally pinned: never moved while `Some`; dropped in place.
    future: Option<F>,
}

impl<T: 'static, F> TaskLocalFuture<T, F> {
    /// Takes the value out (`None` if taken already). Later polls run without it.
    pub fn take_value(self: Pin<&mut Self>) -> Option<T> {
        // SAFETY: `slot` is not structurally pinned (only `future` is), so moving its value
        // out through the mutable reference is fine; `future` is not touched.
        unsafe { self.get_unchecked_mut() }.slot.take()
    }
}

impl<T: 'static, F: Future> Future for TaskLocalFuture<T, F> {
    type Output = F::Output;

    #[track_caller]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: only `future` is structurally pinned, and below it is pinned in place
        // (never moved) and dropped in place; `slot` and `local` are not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        let future = &mut this.future;
        let polled = this.local.scope_inner(&mut this.slot, || {
            let pinned = future.as_mut().map(|f| {
                // SAFETY: `f` lives inside the pinned `TaskLocalFuture` and is never moved
                // out of it (see the struct's field docs).
                unsafe { Pin::new_unchecked(f) }
            });
            let poll = pinned
                .expect("`TaskLocalFuture` polled after it returned `Ready`")
                .poll(cx);
            if poll.is_ready() {
                // Dropped in place, inside the scope: its destructors see the value.
                *future = None;
            }
            poll
        });
        polled.unwrap_or_else(|e| e.panic())
    }
}

impl<T: 'static, F> Drop for TaskLocalFuture<T, F> {
    fn drop(&mut self) {
        if self.future.is_some() {
            let future = &mut self.future;
            // Dropped inside the scope, so the future's destructors see the value (as in
            // tokio). If the scope cannot be entered, the field drop below drops it.
            let _ = self.local.scope_inner(&mut self.slot, || *future = None);
        }
    }
}

impl<T: 'static + fmt::Debug, F> fmt::Debug for TaskLocalFuture<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskLocalFuture")
            .field("value", &self.slot)
            .finish_non_exhaustive()
    }
}
