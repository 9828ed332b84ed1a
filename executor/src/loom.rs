//! The one place that chooses between `std` and `loom` primitives.
//!
//! Everything the loom models exercise (the local run queue, the parker, the idle
//! accounting) imports its atomics, locks and cells from here, so the same code runs
//! under the model checker when built with `RUSTFLAGS="--cfg loom"`.

#[cfg(not(loom))]
mod imp {
    pub(crate) use std::sync::atomic;
    pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};

    /// `UnsafeCell` with loom's closure-based access API, so call sites are the same
    /// under both builds.
    #[derive(Debug)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(value: T) -> Self {
            Self(std::cell::UnsafeCell::new(value))
        }
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }

    pub(crate) fn spin_loop() {
        std::hint::spin_loop()
    }
}

#[cfg(loom)]
mod imp {
    pub(crate) use loom::cell::UnsafeCell;
    pub(crate) use loom::sync::atomic;
    pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};

    pub(crate) fn spin_loop() {
        loom::thread::yield_now()
    }
}

pub(crate) use imp::*;
