//! A fixed batch of wakers collected under a lock and woken after it is released, so no
//! waker (which may run arbitrary code) runs while a primitive's lock is held.
//!
//! Invariant: exactly the slots `woken..len` are initialised. The slots are
//! `MaybeUninit` rather than `Option<Waker>` because every release of a contended lock
//! makes one of these: with `Option`s, making the list and dropping it touched all 16
//! slots (about 70 instructions per queued `Mutex` hand-over, measured with callgrind in
//! the harness's `mutex_hold_yield` row); now both touch only the `len` that were used.

use std::mem::MaybeUninit;
use std::task::Waker;

const CAPACITY: usize = 16;

pub(crate) struct WakeList {
    wakers: [MaybeUninit<Waker>; CAPACITY],
    /// Slots below this were already read out (woken).
    woken: usize,
    len: usize,
}

impl WakeList {
    pub(crate) const fn new() -> WakeList {
        WakeList {
            wakers: [const { MaybeUninit::uninit() }; CAPACITY],
            woken: 0,
            len: 0,
        }
    }

    /// False when full: the caller releases its lock, calls [`wake_all`](Self::wake_all),
    /// and goes on.
    pub(crate) fn can_push(&self) -> bool {
        self.len < CAPACITY
    }

    pub(crate) fn push(&mut self, waker: Option<Waker>) {
        debug_assert!(self.can_push());
        if let Some(waker) = waker {
            // Indexing panics (and leaks nothing) if a caller ignored `can_push`.
            self.wakers[self.len].write(waker);
            self.len += 1;
        }
    }

    pub(crate) fn wake_all(&mut self) {
        while self.woken < self.len {
            let i = self.woken;
            // Counted before waking: if this waker panics, the drop during unwinding goes
            // on with the next slot and never reads this one again.
            self.woken += 1;
            // SAFETY: `i` is in `woken..len` as it was, so the slot was initialised by
            // `push` and has not been read since; `woken` now excludes it.
            let waker = unsafe { self.wakers[i].assume_init_read() };
            waker.wake();
        }
        self.woken = 0;
        self.len = 0;
    }
}

impl Drop for WakeList {
    fn drop(&mut self) {
        // A panic between collection and wake_all must not lose wakeups.
        self.wake_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    #[test]
    fn wakes_each_pushed_waker_once_and_drops_them() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let mut list = WakeList::new();
        list.push(None);
        for _ in 0..CAPACITY {
            assert!(list.can_push());
            list.push(Some(Waker::from(count.clone())));
        }
        assert!(!list.can_push());
        list.wake_all();
        assert_eq!(count.0.load(SeqCst), CAPACITY);
        // Every waker was consumed: only our reference is left.
        assert_eq!(Arc::strong_count(&count), 1);
        list.push(Some(Waker::from(count.clone())));
        drop(list);
        assert_eq!(
            count.0.load(SeqCst),
            CAPACITY + 1,
            "drop wakes what is left"
        );
        assert_eq!(Arc::strong_count(&count), 1);
    }
}
