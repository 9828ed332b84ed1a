//! `Parker`: puts one thread to sleep until another unparks it, with no lost wakeups.
//!
//! One token, like `std::thread::park`: an `unpark` before `park` makes that `park`
//! return at once. Unlike std's, `park` never returns spuriously, so the idle protocol
//! (see `idle.rs`) can count every return as exactly one `unpark`.

use crate::loom::atomic::{AtomicUsize, Ordering::SeqCst};
use crate::loom::{Condvar, Mutex};

const EMPTY: usize = 0;
const PARKED: usize = 1;
const NOTIFIED: usize = 2;

pub(crate) struct Parker {
    state: AtomicUsize,
    lock: Mutex<()>,
    cvar: Condvar,
}

impl Parker {
    pub(crate) fn new() -> Parker {
        Parker {
            state: AtomicUsize::new(EMPTY),
            lock: Mutex::new(()),
            cvar: Condvar::new(),
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
            other => unreachable!("parker state {other}"),
        }
    }
}
