//! `Parker`: puts one thread to sleep until another unparks it, with no lost wakeups.
//!
//! One token, like `std::thread::park`: an `unpark` before `park` makes that `park`
//! return at once. Unlike std's, `park` never returns spuriously, so the idle protocol
//! (see `idle.rs`) can count every return as exactly one `unpark`.
//!
//! A worker may instead sleep inside the reactor (`park_in_driver`): then `unpark`
//! interrupts the reactor's poll rather than signalling the condvar.

use crate::loom::atomic::{AtomicUsize, Ordering::SeqCst};
use crate::loom::{Condvar, Mutex};

const EMPTY: usize = 0;
const PARKED: usize = 1;
const NOTIFIED: usize = 2;

const PARKED_IN_DRIVER: usize = 3;

#[cfg(all(test, loom))]
pub(super) mod loom_tests;

pub(crate) struct Parker {
    state: AtomicUsize,
    lock: Mutex<()>,
    cvar: Condvar,
    /// Interrupts the reactor's poll when the parked thread sleeps there.
    reactor: Option<runnel_reactor::Handle>,
}

impl Parker {
    pub(crate) fn new() -> Parker {
        Parker {
            state: AtomicUsize::new(EMPTY),
            lock: Mutex::new(()),
            cvar: Condvar::new(),
            reactor: None,
        }
    }

    /// A parker whose thread may also sleep in `reactor`'s poll (`park_in_driver`).
    pub(crate) fn with_reactor(reactor: runnel_reactor::Handle) -> Parker {
        Parker {
            reactor: Some(reactor),
            ..Parker::new()
        }
    }

    /// Sleeps by running `block` (the reactor's poll, which `unpark` interrupts) unless
    /// the token is already here. Returns whether the token was consumed; `false` means
    /// the reactor returned for its own reasons (an event, a timer) and nobody unparked us.
    pub(crate) fn park_in_driver(&self, block: impl FnOnce()) -> bool {
        debug_assert!(
            self.reactor.is_some(),
            "park_in_driver needs Parker::with_reactor"
        );
        if self
            .state
            .compare_exchange(NOTIFIED, EMPTY, SeqCst, SeqCst)
            .is_ok()
        {
            return true;
        }
        match self
            .state
            .compare_exchange(EMPTY, PARKED_IN_DRIVER, SeqCst, SeqCst)
        {
            Ok(_) => {}
            Err(NOTIFIED) => {
                self.state.store(EMPTY, SeqCst);
                return true;
            }
            Err(other) => unreachable!("parker state {other} with one parking thread"),
        }
        block();
        match self.state.swap(EMPTY, SeqCst) {
            NOTIFIED => true,
            PARKED_IN_DRIVER => false,
            other => unreachable!("parker state {other} after a driver park"),
        }
    }

    /// Blocks until the token is available, then consumes it.
    pub(crate) fn park(&self) {
        // SeqCst throughout: the state is a three-party handshake (parker, unparker, the
        // condvar) where a reordered store could hide the token.
        if self
            .state
            .compare_exchange(NOTIFIED, EMPTY, SeqCst, SeqCst)
            .is_ok()
        {
            return;
        }
        let mut guard = self.lock.lock().unwrap();
        match self.state.compare_exchange(EMPTY, PARKED, SeqCst, SeqCst) {
            Ok(_) => {}
            Err(NOTIFIED) => {
                // Unparked between the first check and taking the lock.
                self.state.store(EMPTY, SeqCst);
                return;
            }
            Err(other) => unreachable!("parker state {other} with one parking thread"),
        }
        loop {
            guard = self.cvar.wait(guard).unwrap();
            if self
                .state
                .compare_exchange(NOTIFIED, EMPTY, SeqCst, SeqCst)
                .is_ok()
            {
                return;
            }
            // A spurious condvar wakeup: the token is not here yet.
        }
    }

    /// Makes the token available, waking the parked thread if there is one.
    pub(crate) fn unpark(&self) {
        match self.state.swap(NOTIFIED, SeqCst) {
            EMPTY | NOTIFIED => {}
            PARKED => {
                // Taking the lock orders our store before the parker's condvar wait: it is
                // either not yet waiting (and will see NOTIFIED) or will get the notify.
                drop(self.lock.lock().unwrap());
                self.cvar.notify_one();
            }
            PARKED_IN_DRIVER => {
                // The thread may already be on its way out of the poll; then this makes
                // its next poll return early, which the worker loop tolerates.
                if let Some(reactor) = &self.reactor {
                    reactor.unpark();
                }
            }
            other => unreachable!("parker state {other}"),
        }
    }
}
