//! The timers of one reactor: the wheel behind a mutex, the clock mapping `Instant`s to
//! millisecond ticks, and the mark that tells an arming thread whether to unpark the poller.
//!
//! Clock: tick `t` is `base + t ms`. Deadlines round **up** to a tick and `now` rounds
//! **down**, so a timer fires only once `now >= deadline`: never early.
//!
//! Sleeping mark: `prepare_park` stores, with the wheel locked, the tick the poller will wake
//! at by itself; `arm`/`reset` compare against it, with the wheel locked, and unpark if the
//! new deadline is earlier. The lock orders the two: either the poller saw the new entry when
//! computing its timeout, or the arming thread sees the mark and unparks (a mio wake before
//! the poll starts makes the poll return at once). `0` means "awake, will recompute".
//!
//! Counting (see `waiters.rs`): `timers` goes up when an entry becomes armed and down when
//! an armed entry is cancelled; fired entries are released by the driver's caller.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::task::Waker;
use std::time::{Duration, Instant};

use super::wheel::{EntryState, Wheel};
use crate::sync::lock;
use crate::waiters::WaiterCounts;

#[derive(Debug)]
pub(crate) struct Timers {
    base: Instant,
    state: Mutex<State>,
    /// Tick the poller wakes at on its own, or 0 while it is awake (module header).
    sleeping_until: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    wheel: Wheel,
    shutdown: bool,
}

/// The runtime shut down: no timer can be armed any more.
#[derive(Debug)]
pub(crate) struct ShutDown;

/// Result of arming: the key, and whether the poller must be unparked to honour it.
pub(crate) struct Armed {
    pub(crate) key: usize,
    pub(crate) unpark: bool,
}

/// What a poll of an existing entry found.
pub(crate) enum Polled {
    /// The deadline has passed; the entry was removed.
    Elapsed,
    /// Still waiting (the waker is stored); unpark the poller if `unpark`.
    Waiting {
        unpark: bool,
    },
    ShutDown,
}

impl Timers {
    pub(crate) fn new(base: Instant) -> Timers {
        Timers {
            base,
            state: Mutex::new(State::default()),
            sleeping_until: AtomicU64::new(0),
        }
    }

    /// Arms a new entry for `deadline` that wakes `waker`.
    pub(crate) fn arm(
        &self,
        deadline: Instant,
        waker: &Waker,
        counts: &WaiterCounts,
    ) -> Result<Armed, ShutDown> {
        let when = self.tick_ceil(deadline);
        let mut state = lock(&self.state);
        if state.shutdown {
            return Err(ShutDown);
        }
        counts.add_timers(1);
        let key = state.wheel.insert(when, waker.clone());
        let unpark = self.must_unpark(when);
        Ok(Armed { key, unpark })
    }

    /// Polls entry `key` (owned by the caller) for `deadline`, storing `waker` if it waits.
    pub(crate) fn poll(
        &self,
        key: usize,
        deadline: Instant,
        waker: &Waker,
        counts: &WaiterCounts,
    ) -> Polled {
        let mut state = lock(&self.state);
        let (old_waker, result) = match state.wheel.state(key) {
            EntryState::Armed => (
                state.wheel.set_waker(key, waker),
                Polled::Waiting { unpark: false },
            ),
            EntryState::Fired if state.shutdown => (None, Polled::ShutDown),
            // The driver fires only due entries, but the clamp of far deadlines (wheel.rs)
            // and `reset` can leave a fired entry whose deadline is still ahead: re-arm it.
            EntryState::Fired if Instant::now() < deadline => {
                let when = self.tick_ceil(deadline);
                let (old, newly_armed) = state.wheel.rearm(key, when, waker);
                if newly_armed {
                    counts.add_timers(1);
                }
                let unpark = self.must_unpark(when);
                (old, Polled::Waiting { unpark })
            }
            EntryState::Fired => (state.wheel.remove(key), Polled::Elapsed),
        };
        drop(state);
        drop(old_waker); // outside the lock: it may be a task's last reference
        result
    }

    /// Moves entry `key` to `deadline`. Returns whether the poller must be unparked.
    pub(crate) fn reset(&self, key: usize, deadline: Instant) -> bool {
        let when = self.tick_ceil(deadline);
        let mut state = lock(&self.state);
        state.wheel.reschedule(key, when);
        state.wheel.state(key) == EntryState::Armed && self.must_unpark(when)
    }

    /// Frees entry `key`, releasing its waiter count if it was armed.
    pub(crate) fn cancel(&self, key: usize, counts: &WaiterCounts) {
        let waker = lock(&self.state).wheel.remove(key);
        if waker.is_some() {
            counts.sub_timers(1);
        }
        drop(waker); // outside the lock
    }

    /// Driver, before blocking: caps `timeout` by the next timer and publishes the wake tick.
    pub(crate) fn prepare_park(&self, now: Instant, timeout: Option<Duration>) -> Option<Duration> {
        let state = lock(&self.state);
        let until_timer = state
            .wheel
            .next_expiration()
            .map(|tick| self.instant_of(tick).saturating_duration_since(now));
        let timeout = match (timeout, until_timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let wake_tick = timeout
            .and_then(|t| now.checked_add(t))
            .map_or(u64::MAX, |at| self.tick_floor(at));
        // Relaxed: read and written only with `state` locked (module header), except the
        // store of 0 in `unparked`, which may only cause a missing unpark while the poller is
        // awake anyway.
        self.sleeping_until.store(wake_tick, Ordering::Relaxed);
        timeout
    }

    /// Driver, after its poll returned: it will recompute its timeout before sleeping again.
    pub(crate) fn unparked(&self) {
        self.sleeping_until.store(0, Ordering::Relaxed);
    }

    /// Driver: fires every entry due at `now`, moving their wakers into `wakers`.
    pub(crate) fn fire(&self, now: Instant, wakers: &mut Vec<Waker>) -> usize {
        let now = self.tick_floor(now);
        lock(&self.state).wheel.advance(now, wakers)
    }

    /// Whether `fire(now)` would fire anything.
    pub(crate) fn has_expired(&self, now: Instant) -> bool {
        let now = self.tick_floor(now);
        lock(&self.state)
            .wheel
            .next_expiration()
            .is_some_and(|tick| tick <= now)
    }

    /// A lower bound of when the earliest armed entry is due (its slot's start).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let next = lock(&self.state).wheel.next_expiration();
        next.map(|tick| self.instant_of(tick))
    }

    /// Refuses new timers and fires every armed one.
    pub(crate) fn shutdown(&self, wakers: &mut Vec<Waker>) -> usize {
        let mut state = lock(&self.state);
        state.shutdown = true;
        state.wheel.fire_all(wakers)
    }

    /// How many slab slots the wheel holds on to.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        lock(&self.state).wheel.capacity()
    }

    /// Call with the wheel locked.
    fn must_unpark(&self, when: u64) -> bool {
        when < self.sleeping_until.load(Ordering::Relaxed)
    }

    fn tick_ceil(&self, deadline: Instant) -> u64 {
        let nanos = deadline.saturating_duration_since(self.base).as_nanos();
        u64::try_from(nanos.div_ceil(1_000_000)).unwrap_or(u64::MAX)
    }

    fn tick_floor(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.base).as_millis()).unwrap_or(u64::MAX)
    }

    fn instant_of(&self, tick: u64) -> Instant {
        self.base
            .checked_add(Duration::from_millis(tick))
            .unwrap_or_else(|| super::far_future(self.base))
    }
}
