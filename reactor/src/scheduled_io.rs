//! Per-source shared state: readiness plus one waker slot per direction.
//!
//! Shared (via `Arc`) by the source's `Registration` and the reactor's slab (`sources.rs`).
//!
//! The lost-wakeup argument. The driver does (1) update readiness, then (2) lock the slots
//! and take the wakers whose direction became ready. A task does (a) lock the slots,
//! (b) look at readiness, (c) store its waker, (d) unlock. The mutex orders the two critical
//! sections: if the task's comes first, the driver finds the waker in (2); if the driver's
//! comes first, (1) happened before (b), so the task sees the readiness and does not wait.
//! A close (shutdown/deregister) follows the driver's protocol, so it cannot be missed either.
//!
//! Counting (see `waiters.rs`): storing into an empty slot adds one io waiter while the
//! slot's lock is held; whoever empties a slot owns that one count and releases it.
//!
//! Wakers are never dropped or woken while a slot lock is held: dropping the last waker of a
//! task drops the task, whose futures may own registrations whose `Drop` takes reactor locks.

use std::io;
use std::sync::Mutex;
use std::task::{Poll, Waker};

use mio::Token;

use crate::readiness::{Closed, Direction, Observed, ReadinessState, Ready, ReadyEvent};
use crate::sync::lock;
use crate::waiters::WaiterCounts;

#[derive(Debug)]
pub(crate) struct ScheduledIo {
    /// Slab key + generation of this registration (see `token.rs`).
    token: Token,
    pub(crate) readiness: ReadinessState,
    slots: Mutex<Slots>,
}

#[derive(Debug, Default)]
struct Slots {
    reader: Option<Waker>,
    writer: Option<Waker>,
}

impl Slots {
    fn get(&mut self, direction: Direction) -> &mut Option<Waker> {
        match direction {
            Direction::Read => &mut self.reader,
            Direction::Write => &mut self.writer,
        }
    }
}

impl ScheduledIo {
    pub(crate) fn new(token: Token) -> ScheduledIo {
        ScheduledIo {
            token,
            readiness: ReadinessState::default(),
            slots: Mutex::new(Slots::default()),
        }
    }

    pub(crate) fn token(&self) -> Token {
        self.token
    }

    /// Returns the readiness for `direction`, or stores `waker` to be woken when it changes.
    pub(crate) fn poll_ready(
        &self,
        direction: Direction,
        waker: &Waker,
        counts: &WaiterCounts,
    ) -> Poll<io::Result<ReadyEvent>> {
        // Fast path without the lock: most polls of a busy socket find it ready.
        if let Some(result) = self.readiness.observe(direction.mask()).into_result() {
            return Poll::Ready(result);
        }
        let mut slots = lock(&self.slots);
        // Step (b) of the module header: look again under the lock.
        if let Some(result) = self.readiness.observe(direction.mask()).into_result() {
            return Poll::Ready(result);
        }
        let slot = slots.get(direction);
        let replaced = match slot {
            Some(stored) if stored.will_wake(waker) => None,
            Some(stored) => Some(std::mem::replace(stored, waker.clone())),
            None => {
                counts.add_io(1);
                *slot = Some(waker.clone());
                None
            }
        };
        drop(slots);
        drop(replaced); // outside the lock, see the module header
        Poll::Pending
    }

    /// Readiness for `mask` right now, without waiting.
    pub(crate) fn observe(&self, mask: Ready) -> Observed {
        self.readiness.observe(mask)
    }

    /// Driver: applies one event and moves out the wakers of the directions it made ready.
    /// Returns how many it moved (the caller keeps them counted until release).
    pub(crate) fn wake_ready(&self, ready: Ready, wakers: &mut Vec<Waker>) -> usize {
        self.readiness.set(ready);
        let mut slots = lock(&self.slots);
        let mut taken = 0;
        for direction in [Direction::Read, Direction::Write] {
            if !(ready & direction.mask()).is_empty() {
                if let Some(waker) = slots.get(direction).take() {
                    wakers.push(waker);
                    taken += 1;
                }
            }
        }
        taken
    }

    /// Marks the source dead and moves out every stored waker (the caller owns their counts).
    pub(crate) fn close(&self, why: Closed, wakers: &mut Vec<Waker>) -> usize {
        self.readiness.close(why);
        let mut slots = lock(&self.slots);
        let mut taken = 0;
        for waker in [slots.reader.take(), slots.writer.take()]
            .into_iter()
            .flatten()
        {
            wakers.push(waker);
            taken += 1;
        }
        taken
    }
}
