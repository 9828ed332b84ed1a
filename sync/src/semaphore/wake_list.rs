//! A fixed batch of wakers collected under a lock and woken after it is released, so no
//! waker (which may run arbitrary code) runs while a primitive's lock is held.

use std::task::Waker;

const CAPACITY: usize = 16;

pub(crate) struct WakeList {
    wakers: [Option<Waker>; CAPACITY],
    len: usize,
}

impl WakeList {
    pub(crate) const fn new() -> WakeList {
        WakeList {
            wakers: [const { None }; CAPACITY],
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
            self.wakers[self.len] = Some(waker);
            self.len += 1;
        }
    }

    pub(crate) fn wake_all(&mut self) {
        for slot in &mut self.wakers[..self.len] {
            if let Some(waker) = slot.take() {
                waker.wake();
            }
        }
        self.len = 0;
    }
}

impl Drop for WakeList {
    fn drop(&mut self) {
        // A panic between collection and wake_all must not lose wakeups.
        self.wake_all();
    }
}
