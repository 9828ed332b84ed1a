//! The timers of one reactor: timing wheels behind mutexes (one per shard), the clock
//! mapping `Instant`s to millisecond ticks, and the mark that tells an arming thread whether
//! to unpark the poller.
//!
//! "The poller" below is whichever thread is parked in (or about to park) the reactor's
//! `Driver`: usually an idle worker, sometimes the poller (sysmon) thread (`driver.rs`).
//!
//! Sharding. With one mutex around one wheel, `timer_timeouts` (two workers arming and
//! cancelling 100 000 timeouts) spent ~66 % of its samples in that lock or the two functions
//! taking it (BENCHMARKS.md). Now there are `shard_count()` wheels, each behind its own
//! mutex; a thread arms into "its" shard (a per-thread index handed out round-robin on its
//! first arm, the idea of Go's per-P timer heaps), and an entry stays in the shard it was
//! armed in, named by its [`TimerKey`]. A task that arms and cancels on one worker (the
//! common case: a `timeout` around an operation) takes only that worker's lock, uncontended;
//! a stolen task reaches back into the old worker's shard, which is correct and just
//! contends like before. Only the driver visits every shard (`fire`, `has_expired`,
//! `next_deadline`, `prepare_park`): a few uncontended locks per park and drain. Each shard
//! sits on its own cache lines, and makes its wheel on its first arm (see `State::wheel`).
//! Measured (BENCHMARKS.md, slow regime): `timer_timeouts` 88 → 26 ms.
//!
//! Why this and not the other designs the profile suggested (reasoned, not built):
//! - cancel by marking an entry (one atomic store, the wheel drops it lazily) needs the mark
//!   to be shared between the `Sleep` and the wheel without the lock: an `Arc` per timer (an
//!   allocation per arm) or `unsafe`, and arming still takes the one lock;
//! - an async-io-style lock-free queue of arm/cancel operations applied by the driver makes
//!   "was it fired?" asynchronous, so cancel could no longer decide under a lock whether it
//!   or the driver's caller owns the `timers` count; it also needs a queue crate.
//!   Sharding keeps the wheel, the entry lifecycle and the counting argument as they were,
//!   one lock at a time.
//!
//! Clock: tick `t` is `base + t ms`. Deadlines round **up** to a tick and `now` rounds
//! **down**, so a timer fires only once `now >= deadline`: never early. All shards share
//! `base`, and the driver advances every shard to the same `now`.
//!
//! Sleeping mark: `prepare_park` stores, with **every** shard locked, the tick the poller
//! will wake at by itself; `arm`/`poll` compare against it with the entry's shard locked,
//! and unpark if the new deadline is earlier. The shard's lock orders the two: either the
//! poller saw the new entry when computing its timeout, or the arming thread sees the mark
//! and unparks (a mio wake before the poll starts makes the poll return at once). `0` means
//! "awake, will recompute". Shards are always locked in index order when more than one is
//! held, and only the driver ever holds more than one, so there is no lock-order cycle.
//!
//! Counting (see `waiters.rs`): `timers` goes up when an entry becomes armed and down when
//! an armed entry is cancelled; fired entries are released by the driver's caller. Each
//! decision is made under the entry's shard lock, exactly as with one wheel.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::task::Waker;
use std::time::{Duration, Instant};

use super::wheel::{EntryState, Wheel};
use crate::sync::lock;
use crate::waiters::WaiterCounts;

/// Upper bound on shards: each holds a wheel (~6 KiB) and the driver locks every one per
/// park and per drain, so more than this costs the driver more than it saves the workers.
const MAX_SHARDS: usize = 16;
/// Bits of a [`TimerKey`] that hold the shard index.
const SHARD_BITS: u32 = MAX_SHARDS.trailing_zeros();

/// How many shards a reactor has: twice the CPUs (rounded up to a power of two, 4 to
/// `MAX_SHARDS`), so that the few threads that arm timers (one per worker) rarely share
/// one even though the round-robin hint is process-wide (other runtimes' workers take
/// indices too). Computed once per process: `available_parallelism` reads cgroup files.
fn shard_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        (2 * cpus).next_power_of_two().clamp(4, MAX_SHARDS)
    })
}

/// This thread's shard hint (module header): an index handed out round-robin, taken
/// modulo a reactor's shard count.
fn thread_hint() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static HINT: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    HINT.with(|hint| {
        if hint.get() == usize::MAX {
            // Relaxed: only uniqueness matters, nothing is published through it.
            hint.set(NEXT.fetch_add(1, Ordering::Relaxed) & (MAX_SHARDS - 1));
        }
        hint.get()
    })
}

/// Names one armed (or fired, not yet removed) entry: its shard and its key in that
/// shard's wheel, packed into one word to keep `Sleep` small.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerKey(usize);

impl TimerKey {
    fn new(shard: usize, entry: usize) -> TimerKey {
        debug_assert!(shard < MAX_SHARDS);
        TimerKey(entry << SHARD_BITS | shard)
    }

    fn shard(self) -> usize {
        self.0 & (MAX_SHARDS - 1)
    }

    fn entry(self) -> usize {
        self.0 >> SHARD_BITS
    }
}

#[derive(Debug)]
pub(crate) struct Timers {
    base: Instant,
    /// `shard_count()` shards (a power of two); see the module header.
    shards: Box<[Shard]>,
    /// Tick the poller wakes at on its own, or 0 while it is awake (module header).
    sleeping_until: AtomicU64,
    /// The shard `fire` visits first next time (rotates; see `fire`).
    next_shard: AtomicUsize,
}

/// One shard: its lock on its own cache lines (two, for x86's adjacent-line prefetcher),
/// or two workers' uncontended locks would still bounce one line between them.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard(Mutex<State>);

#[derive(Debug, Default)]
struct State {
    /// Made by the first arm into this shard: a wheel is ~6 KiB, and building every shard's
    /// eagerly cost ~2 µs per `Driver::new` (3.4 → 5.6 µs) for runtimes that may never arm
    /// a timer, or arm from one thread only.
    wheel: Option<Box<Wheel>>,
    shutdown: bool,
}

impl State {
    /// The wheel of a shard that holds the entry being operated on (it was armed here).
    fn entry_wheel(wheel: &mut Option<Box<Wheel>>) -> &mut Wheel {
        wheel
            .as_deref_mut()
            .expect("a shard holding an entry has a wheel")
    }
}

/// The runtime shut down: no timer can be armed any more.
#[derive(Debug)]
pub(crate) struct ShutDown;

/// Result of arming: the key, and whether the poller must be unparked to honour it.
pub(crate) struct Armed {
    pub(crate) key: TimerKey,
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
            shards: (0..shard_count()).map(|_| Shard::default()).collect(),
            sleeping_until: AtomicU64::new(0),
            next_shard: AtomicUsize::new(0),
        }
    }

    /// Arms a new entry for `deadline` that wakes `waker`, in this thread's shard.
    pub(crate) fn arm(
        &self,
        deadline: Instant,
        waker: &Waker,
        counts: &WaiterCounts,
    ) -> Result<Armed, ShutDown> {
        let when = self.tick_ceil(deadline);
        let shard = thread_hint() & (self.shards.len() - 1);
        let mut state = lock(&self.shards[shard].0);
        if state.shutdown {
            return Err(ShutDown);
        }
        counts.add_timers(1);
        let wheel = state.wheel.get_or_insert_with(Box::default);
        let entry = wheel.insert(when, waker.clone());
        let unpark = self.must_unpark(when);
        Ok(Armed {
            key: TimerKey::new(shard, entry),
            unpark,
        })
    }

    /// Polls entry `key` (owned by the caller) for `deadline`, storing `waker` if it waits.
    pub(crate) fn poll(
        &self,
        key: TimerKey,
        deadline: Instant,
        waker: &Waker,
        counts: &WaiterCounts,
    ) -> Polled {
        let (mut state, entry) = self.lock_entry(key);
        let State { wheel, shutdown } = &mut *state;
        let wheel = State::entry_wheel(wheel);
        let (old_waker, result) = match wheel.state(entry) {
            EntryState::Armed => (
                wheel.set_waker(entry, waker),
                Polled::Waiting { unpark: false },
            ),
            EntryState::Fired if *shutdown => (None, Polled::ShutDown),
            // The driver fires only due entries, but the clamp of far deadlines (wheel.rs)
            // and `reset` can leave a fired entry whose deadline is still ahead: re-arm it.
            EntryState::Fired if Instant::now() < deadline => {
                let when = self.tick_ceil(deadline);
                let (old, newly_armed) = wheel.rearm(entry, when, waker);
                if newly_armed {
                    counts.add_timers(1);
                }
                let unpark = self.must_unpark(when);
                (old, Polled::Waiting { unpark })
            }
            EntryState::Fired => (wheel.remove(entry), Polled::Elapsed),
        };
        drop(state);
        drop(old_waker); // outside the lock: it may be a task's last reference
        result
    }

    /// Moves entry `key` to `deadline`. Returns whether the poller must be unparked.
    pub(crate) fn reset(&self, key: TimerKey, deadline: Instant) -> bool {
        let when = self.tick_ceil(deadline);
        let (mut state, entry) = self.lock_entry(key);
        let wheel = State::entry_wheel(&mut state.wheel);
        wheel.reschedule(entry, when);
        wheel.state(entry) == EntryState::Armed && self.must_unpark(when)
    }

    /// Frees entry `key`, releasing its waiter count if it was armed.
    pub(crate) fn cancel(&self, key: TimerKey, counts: &WaiterCounts) {
        let (mut state, entry) = self.lock_entry(key);
        let waker = State::entry_wheel(&mut state.wheel).remove(entry);
        drop(state);
        if waker.is_some() {
            counts.sub_timers(1);
        }
        drop(waker); // outside the lock
    }

    /// Driver, before blocking: caps `timeout` by the next timer and publishes the wake tick.
    pub(crate) fn prepare_park(&self, now: Instant, timeout: Option<Duration>) -> Option<Duration> {
        // Every shard stays locked until the mark is stored (module header).
        let states: Vec<MutexGuard<'_, State>> =
            self.shards.iter().map(|shard| lock(&shard.0)).collect();
        let until_timer = states
            .iter()
            .filter_map(|state| state.wheel.as_ref()?.next_expiration())
            .min()
            .map(|tick| self.instant_of(tick).saturating_duration_since(now));
        let timeout = match (timeout, until_timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let wake_tick = timeout
            .and_then(|t| now.checked_add(t))
            .map_or(u64::MAX, |at| self.tick_floor(at));
        // Relaxed: written only with every shard locked and read with one locked (module
        // header), except the store of 0 in `unparked`, which may only cause a missing
        // unpark while the poller is awake anyway.
        self.sleeping_until.store(wake_tick, Ordering::Relaxed);
        drop(states);
        timeout
    }

    /// Driver, after its poll returned: it will recompute its timeout before sleeping again.
    pub(crate) fn unparked(&self) {
        self.sleeping_until.store(0, Ordering::Relaxed);
    }

    /// Driver: fires entries due at `now`, at most `limit` of them, moving their wakers
    /// into `wakers`. With a limit, the shards take turns being visited first (the
    /// driver's `next_shard`), so a shard that always has due entries cannot keep another
    /// one's from firing; within a shard the earliest fire first.
    pub(crate) fn fire(&self, now: Instant, limit: usize, wakers: &mut Vec<Waker>) -> usize {
        let now = self.tick_floor(now);
        let count = self.shards.len();
        // Relaxed: only the driver (one thread at a time, `&mut Driver`) moves it, and any
        // value is a correct starting point.
        let first = self.next_shard.fetch_add(1, Ordering::Relaxed) % count;
        let mut fired = 0;
        for i in 0..count {
            if fired == limit {
                break;
            }
            if let Some(wheel) = &mut lock(&self.shards[(first + i) % count].0).wheel {
                fired += wheel.advance_at_most(now, limit - fired, wakers);
            }
        }
        fired
    }

    /// Whether `fire(now)` would fire anything.
    pub(crate) fn has_expired(&self, now: Instant) -> bool {
        let now = self.tick_floor(now);
        self.shards.iter().any(|shard| {
            lock(&shard.0)
                .wheel
                .as_ref()
                .and_then(|wheel| wheel.next_expiration())
                .is_some_and(|tick| tick <= now)
        })
    }

    /// A lower bound of when the earliest armed entry is due (its slot's start).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let next = self
            .shards
            .iter()
            .filter_map(|shard| lock(&shard.0).wheel.as_ref()?.next_expiration())
            .min();
        next.map(|tick| self.instant_of(tick))
    }

    /// Refuses new timers and fires every armed one.
    pub(crate) fn shutdown(&self, wakers: &mut Vec<Waker>) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                let mut state = lock(&shard.0);
                state.shutdown = true;
                state
                    .wheel
                    .as_mut()
                    .map_or(0, |wheel| wheel.fire_all(wakers))
            })
            .sum()
    }

    /// How many slab slots the wheels hold on to.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| lock(&shard.0).wheel.as_ref().map_or(0, |w| w.capacity()))
            .sum()
    }

    /// Locks the shard of `key`; returns the guard and the entry's key in that wheel.
    fn lock_entry(&self, key: TimerKey) -> (MutexGuard<'_, State>, usize) {
        (lock(&self.shards[key.shard()].0), key.entry())
    }

    /// Call with the entry's shard locked.
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
