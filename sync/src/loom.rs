//! The one place that chooses between `std` and `loom` primitives for the lock-free code
//! of this crate (the oneshot channel, and the semaphore's lock-free grant check with the
//! lock it pairs with), so the same code runs under the model checker when built with
//! `RUSTFLAGS="--cfg loom"` (`cargo test -p runnel-sync --lib --release loom`).

#[cfg(not(loom))]
mod imp {
    pub(crate) use std::sync::atomic;
    pub(crate) use std::sync::Arc;
    pub(crate) use std::sync::{Mutex, MutexGuard};

    /// `UnsafeCell` with loom's closure-based access API, so call sites are the same
    /// under both builds.
    #[derive(Debug)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(value: T) -> Self {
            Self(std::cell::UnsafeCell::new(value))
        }
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

#[cfg(loom)]
mod imp {
    pub(crate) use loom::cell::UnsafeCell;
    pub(crate) use loom::sync::atomic;
    pub(crate) use loom::sync::Arc;
    pub(crate) use loom::sync::{Mutex, MutexGuard};
}

pub(crate) use imp::*;

/// A `const fn` in ordinary builds, a plain `fn` under loom (whose primitives cannot be
/// made in a constant): for the `const_new` constructors of the semaphore and the locks
/// built on it.
macro_rules! const_unless_loom {
    ($(#[$attr:meta])* $vis:vis fn $($rest:tt)*) => {
        #[cfg(not(loom))]
        $(#[$attr])* $vis const fn $($rest)*
        #[cfg(loom)]
        $(#[$attr])* $vis fn $($rest)*
    };
}
pub(crate) use const_unless_loom;
