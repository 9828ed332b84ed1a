//! A list of parked wakers, one entry per waiting future, used by every primitive that wakes
//! all of its waiters at once (watch `changed`, broadcast `recv`, `closed()` futures).
//!
//! Invariant: an entry is removed only by the future that registered it (its key stays valid
//! until then), so a notified future that is polled again re-uses its entry and a dropped
//! future can never remove someone else's. Notifying empties the entries but keeps them.
//! The list lives inside the primitive's mutex; the caller wakes the returned wakers after
//! unlocking, so no waker runs under the lock.

use std::task::Waker;

use slab::Slab;

#[derive(Debug, Default)]
pub(crate) struct WakeList {
    entries: Slab<Option<Waker>>,
}

impl WakeList {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Stores `waker` for the future owning `key`, creating its entry on first use.
    pub(crate) fn register(&mut self, key: &mut Option<usize>, waker: &Waker) {
        match key {
            Some(k) => match &mut self.entries[*k] {
                Some(old) if old.will_wake(waker) => {}
                slot => *slot = Some(waker.clone()),
            },
            None => *key = Some(self.entries.insert(Some(waker.clone()))),
        }
    }

    /// Removes the entry of a future that stops waiting (completed or dropped).
    pub(crate) fn remove(&mut self, key: &mut Option<usize>) {
        if let Some(k) = key.take() {
            self.entries.remove(k);
        }
    }

    /// Takes every stored waker, to be woken once the lock is released.
    pub(crate) fn take_all(&mut self) -> Vec<Waker> {
        self.entries
            .iter_mut()
            .filter_map(|(_, w)| w.take())
            .collect()
    }
}

/// Wakes every waker of a list taken by [`WakeList::take_all`].
pub(crate) fn wake_all(wakers: Vec<Waker>) {
    for waker in wakers {
        waker.wake();
    }
}
