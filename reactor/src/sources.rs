//! The set of registered sources: a `slab` of `ScheduledIo` keyed by the low bits of the
//! mio token, with a generation in the high bits (see `token.rs`).
//!
//! Invariants (all under the one mutex):
//! - a slab entry's `ScheduledIo::token()` is the token mio was given for it;
//! - an event whose token differs from the entry's token (slot freed and reused) is dropped;
//! - once `shutdown` is set, no entry is inserted and every entry is closed.
//!
//! Lock order: this mutex, then a source's waiter-list mutex. Registration drop takes this
//! lock and releases it before touching the lists, so the order is never reversed; an
//! `IoWaiter` takes only the list mutex.

use std::io;
use std::sync::{Arc, Mutex};
use std::task::Waker;

use mio::Token;
use slab::Slab;

use crate::readiness::{Closed, Ready};
use crate::scheduled_io::ScheduledIo;
use crate::sync::lock;
use crate::token;

#[derive(Debug, Default)]
pub(crate) struct Sources {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    slab: Slab<Arc<ScheduledIo>>,
    /// Bumped on every insert; wraps (only the bits that fit in a token matter).
    next_generation: usize,
    shutdown: bool,
}

impl Sources {
    /// Allocates a slot and its token. Fails after shutdown or when the key space is full.
    pub(crate) fn insert(&self) -> io::Result<Arc<ScheduledIo>> {
        let mut state = lock(&self.state);
        if state.shutdown {
            return Err(crate::shutdown_error());
        }
        let generation = state.next_generation;
        state.next_generation = generation.wrapping_add(1);
        let entry = state.slab.vacant_entry();
        if entry.key() >= token::MAX_SOURCES {
            return Err(io::Error::other(
                "too many I/O sources registered with the runnel reactor",
            ));
        }
        let io = Arc::new(ScheduledIo::new(token::pack(entry.key(), generation)));
        entry.insert(io.clone());
        Ok(io)
    }

    /// Frees the slot of `io`, if it still holds `io` (idempotent).
    pub(crate) fn remove(&self, io: &ScheduledIo) {
        let key = token::key(io.token());
        let mut state = lock(&self.state);
        if state.slab.get(key).is_some_and(|e| e.token() == io.token()) {
            // The slab's Arc is dropped here under the lock: harmless, because the caller
            // still holds its own Arc, so no waker can be dropped with it.
            state.slab.remove(key);
        }
    }

    /// Applies driver events; moves the wakers they make ready into `wakers`, returns how many.
    pub(crate) fn dispatch(&self, events: &[(Token, Ready)], wakers: &mut Vec<Waker>) -> usize {
        if events.is_empty() {
            return 0;
        }
        let state = lock(&self.state);
        let mut taken = 0;
        for &(token, ready) in events {
            match state.slab.get(token::key(token)) {
                Some(io) if io.token() == token => taken += io.wake_ready(ready, wakers),
                // Freed, or freed and reused by a later registration: a stale event.
                _ => {}
            }
        }
        taken
    }

    /// Refuses new registrations and closes every source, moving out all stored wakers.
    pub(crate) fn shutdown(&self, wakers: &mut Vec<Waker>) -> usize {
        let mut state = lock(&self.state);
        state.shutdown = true;
        let mut taken = 0;
        for (_, io) in state.slab.iter() {
            taken += io.close(Closed::Shutdown, wakers);
        }
        taken
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock(&self.state).slab.len()
    }
}
