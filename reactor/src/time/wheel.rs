//! A hierarchical timing wheel of millisecond ticks: O(1) insert, cancel and per-slot firing.
//!
//! Six levels of 64 slots. Level `l` slot `s` covers ticks whose base-64 digit `l` is `s`
//! and whose higher digits equal those of `elapsed` (the last tick the wheel advanced to).
//! An entry lives at the level of the highest digit in which its deadline differs from
//! `elapsed` (the scheme of Varghese & Lauck, "Hashed and hierarchical timing wheels", 1987,
//! as used by the Linux kernel and tokio). Consequences, relied on below:
//!
//! - at levels >= 1 an entry's slot is strictly after `elapsed`'s slot at that level, and at
//!   level 0 at or after it, so the earliest non-empty slot of the lowest non-empty level
//!   holds the earliest deadline;
//! - when a slot at level `l` comes due, its entries either fire or move to a level below.
//!
//! The top level wraps: an entry due in the next top-level block goes to a top-level slot
//! *before* `elapsed`'s, and `next_slot` counts such a slot as one block later. For that to be
//! unambiguous a deadline may not reach `elapsed`'s own top-level slot in the next block, so
//! deadlines are clamped to at most `MAX_OFFSET` past the start of that slot (always more
//! than 2^36 - 2^30 ms, ~2.1 years, ahead). A clamped entry fires early; the `Sleep` that
//! owns it checks the clock and re-arms, so callers never see it.
//!
//! Storage: entries live in a `Slab`; each slot is an intrusive doubly-linked list of slab
//! keys, so cancel unlinks in O(1). A fired entry stays in the slab (unlinked, `Fired`) until
//! its owner removes it, so a key stays valid for exactly as long as its owner holds it.
//! Freed keys are reused, so a million insert+cancel pairs never grow the slab.

use std::task::Waker;

use slab::Slab;

const LEVELS: usize = 6;
const SLOT_BITS: u32 = 6;
const SLOTS: usize = 1 << SLOT_BITS;
const SLOT_MASK: u64 = SLOTS as u64 - 1;
/// The largest offset from the start of a top-level block: 2^36 - 1 ms, ~2.2 years.
const MAX_OFFSET: u64 = (1 << (LEVELS as u32 * SLOT_BITS)) - 1;

#[derive(Debug)]
struct Entry {
    /// Deadline tick, already clamped into `elapsed`'s top-level block.
    when: u64,
    /// `Some` exactly while `place` is `Linked` (an armed entry always has a waker).
    waker: Option<Waker>,
    place: Place,
}

#[derive(Debug, Clone, Copy)]
enum Place {
    Linked {
        level: usize,
        slot: usize,
        prev: Option<usize>,
        next: Option<usize>,
    },
    Fired,
}

#[derive(Debug)]
struct Level {
    heads: [Option<usize>; SLOTS],
    /// Bit `s` set iff `heads[s]` is `Some`.
    occupied: u64,
}

/// Whether an entry is still waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryState {
    Armed,
    Fired,
}

#[derive(Debug)]
pub(crate) struct Wheel {
    elapsed: u64,
    levels: [Level; LEVELS],
    entries: Slab<Entry>,
}

impl Default for Wheel {
    fn default() -> Self {
        Wheel {
            elapsed: 0,
            levels: std::array::from_fn(|_| Level {
                heads: [None; SLOTS],
                occupied: 0,
            }),
            entries: Slab::new(),
        }
    }
}

impl Wheel {
    /// Arms a new entry for tick `when` (a past tick fires at the next `advance`).
    pub(crate) fn insert(&mut self, when: u64, waker: Waker) -> usize {
        let key = self.entries.insert(Entry {
            when: 0,
            waker: Some(waker),
            place: Place::Fired,
        });
        self.link(key, when);
        key
    }

    /// Re-arms entry `key` for tick `when`. Returns the waker it replaced, if any.
    /// Returns `true` as second value when the entry was not armed before (the caller counts
    /// a new waiter).
    pub(crate) fn rearm(&mut self, key: usize, when: u64, waker: &Waker) -> (Option<Waker>, bool) {
        let was_armed = self.unlink(key);
        let entry = &mut self.entries[key];
        let old = match &entry.waker {
            Some(stored) if stored.will_wake(waker) => None,
            _ => entry.waker.replace(waker.clone()),
        };
        self.link(key, when);
        (old, !was_armed)
    }

    /// Moves an armed entry to tick `when`, keeping its waker. A fired entry stays fired.
    pub(crate) fn reschedule(&mut self, key: usize, when: u64) {
        if self.unlink(key) {
            self.link(key, when);
        }
    }

    /// Replaces the waker of an armed entry unless it would wake the same task. Returns the
    /// old waker for the caller to drop outside its lock.
    pub(crate) fn set_waker(&mut self, key: usize, waker: &Waker) -> Option<Waker> {
        let entry = &mut self.entries[key];
        match &mut entry.waker {
            Some(stored) if !stored.will_wake(waker) => {
                Some(std::mem::replace(stored, waker.clone()))
            }
            _ => None,
        }
    }

    pub(crate) fn state(&self, key: usize) -> EntryState {
        match self.entries[key].place {
            Place::Linked { .. } => EntryState::Armed,
            Place::Fired => EntryState::Fired,
        }
    }

    /// Frees entry `key`. Returns its waker if it was still armed (the caller releases one
    /// waiter count and drops the waker outside its lock).
    pub(crate) fn remove(&mut self, key: usize) -> Option<Waker> {
        self.unlink(key);
        self.entries.remove(key).waker
    }

    /// The tick of the earliest armed entry's slot (a lower bound of its deadline, equal to
    /// it at level 0).
    pub(crate) fn next_expiration(&self) -> Option<u64> {
        self.next_slot().map(|(_, _, tick)| tick)
    }

    /// Fires every entry with a deadline `<= now`, moving their wakers into `wakers`.
    /// Returns how many it moved.
    #[cfg(test)]
    pub(crate) fn advance(&mut self, now: u64, wakers: &mut Vec<Waker>) -> usize {
        self.advance_at_most(now, usize::MAX, wakers)
    }

    /// Fires entries with a deadline `<= now`, earliest first, but at most `limit` of
    /// them; the rest stay armed for the next call. Returns how many it moved into
    /// `wakers`.
    ///
    /// Where it may stop: between slots, or inside a level-0 slot (one tick: its entries
    /// are all due together), whose unvisited rest goes back as the slot's list. A slot of
    /// a higher level is always emptied, its due entries past the limit cascaded like the
    /// not-yet-due ones: stopping inside it after cascading some entries would leave an
    /// earlier deadline above a later one at a lower level, which `next_slot` would not
    /// find first. `elapsed` then stays at the start of the last slot visited, never past
    /// an armed entry.
    pub(crate) fn advance_at_most(
        &mut self,
        now: u64,
        limit: usize,
        wakers: &mut Vec<Waker>,
    ) -> usize {
        let mut fired = 0;
        while let Some((level, slot, start)) = self.next_slot() {
            if start > now || fired == limit {
                break;
            }
            // Moving `elapsed` up to the earliest slot start keeps every other entry's level
            // valid: they all start at or after it, within the same higher-level blocks.
            self.elapsed = self.elapsed.max(start);
            let mut cursor = self.levels[level].heads[slot].take();
            self.levels[level].occupied &= !(1 << slot);
            while let Some(key) = cursor {
                if level == 0 && fired == limit {
                    // Put the unvisited rest back as this tick's list.
                    self.levels[0].heads[slot] = Some(key);
                    self.levels[0].occupied |= 1 << slot;
                    if let Place::Linked { prev, .. } = &mut self.entries[key].place {
                        *prev = None;
                    }
                    return fired;
                }
                let entry = &mut self.entries[key];
                cursor = match entry.place {
                    Place::Linked { next, .. } => next,
                    Place::Fired => unreachable!("fired entry {key} linked in a slot"),
                };
                entry.place = Place::Fired;
                if entry.when <= now && fired < limit {
                    wakers.extend(entry.waker.take());
                    fired += 1;
                } else {
                    // Due later within this slot's range, or due but over the limit: it
                    // cascades to a lower level (never this slot: it differs from
                    // `elapsed`, now this slot's start, only below `level`).
                    let when = entry.when;
                    self.link(key, when);
                }
            }
        }
        if fired < limit {
            // Every remaining slot starts after `now`, so this keeps the invariant too.
            self.elapsed = self.elapsed.max(now);
        }
        fired
    }

    /// Fires every armed entry regardless of deadline (runtime shutdown).
    pub(crate) fn fire_all(&mut self, wakers: &mut Vec<Waker>) -> usize {
        let mut fired = 0;
        for level in &mut self.levels {
            level.heads = [None; SLOTS];
            level.occupied = 0;
        }
        for (_, entry) in self.entries.iter_mut() {
            if let Place::Linked { .. } = entry.place {
                entry.place = Place::Fired;
                wakers.extend(entry.waker.take());
                fired += 1;
            }
        }
        fired
    }

    /// Slab capacity: how much memory the wheel holds on to (tests assert it stays bounded).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.entries.capacity()
    }

    /// Number of entries held (armed or fired-but-not-removed).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The earliest non-empty slot: (level, slot, start tick).
    fn next_slot(&self) -> Option<(usize, usize, u64)> {
        let (level, occupied) = self
            .levels
            .iter()
            .enumerate()
            .find(|(_, l)| l.occupied != 0)
            .map(|(i, l)| (i, l.occupied))?;
        let shift = level as u32 * SLOT_BITS;
        let current = ((self.elapsed >> shift) & SLOT_MASK) as u32;
        let slot = (current + occupied.rotate_right(current).trailing_zeros()) as usize % SLOTS;
        let level_span = 1u64 << (shift + SLOT_BITS);
        let level_start = self.elapsed & !(level_span - 1);
        let mut start = level_start + ((slot as u64) << shift);
        if slot < current as usize {
            // Only at the top level: an entry in the next top-level block (module header).
            debug_assert_eq!(level, LEVELS - 1, "wrapped slot below the top level");
            start += level_span;
        }
        Some((level, slot, start))
    }

    fn link(&mut self, key: usize, when: u64) {
        let top_slot_start = self.elapsed & !((1 << ((LEVELS as u32 - 1) * SLOT_BITS)) - 1);
        let when = when.clamp(self.elapsed, top_slot_start.saturating_add(MAX_OFFSET));
        // A deadline in the next top-level block differs above the top digit: it still
        // belongs to the top level, in a wrapped slot.
        let level = level_for(self.elapsed, when).min(LEVELS - 1);
        let slot = ((when >> (level as u32 * SLOT_BITS)) & SLOT_MASK) as usize;
        let head = self.levels[level].heads[slot].replace(key);
        self.levels[level].occupied |= 1 << slot;
        if let Some(head) = head {
            if let Place::Linked { prev, .. } = &mut self.entries[head].place {
                *prev = Some(key);
            }
        }
        let entry = &mut self.entries[key];
        entry.when = when;
        entry.place = Place::Linked {
            level,
            slot,
            prev: None,
            next: head,
        };
    }

    /// Unlinks `key` from its slot list. Returns whether it was linked (armed).
    fn unlink(&mut self, key: usize) -> bool {
        let Place::Linked {
            level,
            slot,
            prev,
            next,
        } = self.entries[key].place
        else {
            return false;
        };
        match prev {
            Some(prev) => set_next(&mut self.entries[prev], next),
            None => {
                self.levels[level].heads[slot] = next;
                if next.is_none() {
                    self.levels[level].occupied &= !(1 << slot);
                }
            }
        }
        if let Some(next) = next {
            if let Place::Linked { prev: p, .. } = &mut self.entries[next].place {
                *p = prev;
            }
        }
        self.entries[key].place = Place::Fired;
        true
    }
}

fn set_next(entry: &mut Entry, value: Option<usize>) {
    if let Place::Linked { next, .. } = &mut entry.place {
        *next = value;
    }
}

/// The level of the highest base-64 digit in which `when` differs from `elapsed`.
fn level_for(elapsed: u64, when: u64) -> usize {
    // OR-ing SLOT_MASK makes equal ticks land on level 0.
    let differing = (elapsed ^ when) | SLOT_MASK;
    let highest_bit = u64::BITS - 1 - differing.leading_zeros();
    (highest_bit / SLOT_BITS) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    /// A waker that records its id into a shared log when woken.
    struct Tagged(usize, Arc<std::sync::Mutex<Vec<usize>>>);
    impl Wake for Tagged {
        fn wake(self: Arc<Self>) {
            self.1.lock().unwrap().push(self.0);
        }
    }

    fn tagged(id: usize, log: &Arc<std::sync::Mutex<Vec<usize>>>) -> Waker {
        Waker::from(Arc::new(Tagged(id, log.clone())))
    }

    fn fire(wheel: &mut Wheel, now: u64) -> usize {
        let mut wakers = Vec::new();
        let n = wheel.advance(now, &mut wakers);
        assert_eq!(n, wakers.len());
        wakers.into_iter().for_each(Waker::wake);
        n
    }

    #[test]
    fn level_for_picks_highest_differing_digit() {
        assert_eq!(level_for(0, 0), 0);
        assert_eq!(level_for(0, 63), 0);
        assert_eq!(level_for(0, 64), 1);
        assert_eq!(level_for(63, 64), 1);
        assert_eq!(level_for(0, MAX_OFFSET), LEVELS - 1);
    }

    #[test]
    fn fires_in_deadline_order_across_levels() {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut wheel = Wheel::default();
        let deadlines = [5_000_000u64, 3, 64, 4095, 4096, 1, 262_143, 70, 0];
        for (id, &when) in deadlines.iter().enumerate() {
            wheel.insert(when, tagged(id, &log));
        }
        let mut now = 0;
        while wheel.next_expiration().is_some() {
            // Step to the next expiration: what the driver does when it sleeps until it.
            now = wheel.next_expiration().unwrap().max(now);
            fire(&mut wheel, now);
            let fired: Vec<u64> = log.lock().unwrap().iter().map(|&i| deadlines[i]).collect();
            assert!(fired.iter().all(|&d| d <= now), "fired before deadline");
        }
        let fired: Vec<u64> = log.lock().unwrap().iter().map(|&i| deadlines[i]).collect();
        let mut sorted = deadlines.to_vec();
        sorted.sort_unstable();
        assert_eq!(fired, sorted);
    }

    /// Fires at most `limit` entries due at `now`; returns the ids woken, in order.
    fn fire_at_most(
        wheel: &mut Wheel,
        now: u64,
        limit: usize,
        log: &Arc<std::sync::Mutex<Vec<usize>>>,
    ) -> Vec<usize> {
        log.lock().unwrap().clear();
        let mut wakers = Vec::new();
        let n = wheel.advance_at_most(now, limit, &mut wakers);
        assert_eq!(n, wakers.len());
        assert!(n <= limit, "fired {n} with a limit of {limit}");
        wakers.into_iter().for_each(Waker::wake);
        std::mem::take(&mut *log.lock().unwrap())
    }

    #[test]
    fn a_limit_stops_inside_a_tick_and_the_rest_fire_next_time() {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut wheel = Wheel::default();
        // Ten entries on tick 5, three on tick 6, one not yet due.
        for id in 0..10 {
            wheel.insert(5, tagged(id, &log));
        }
        for id in 10..13 {
            wheel.insert(6, tagged(id, &log));
        }
        wheel.insert(50, tagged(99, &log));
        let first = fire_at_most(&mut wheel, 20, 4, &log);
        assert_eq!(first.len(), 4);
        assert!(first.iter().all(|&id| id < 10), "tick 5 first: {first:?}");
        assert_eq!(
            wheel.next_expiration(),
            Some(5),
            "the rest of tick 5 is next"
        );
        let second = fire_at_most(&mut wheel, 20, 7, &log);
        assert_eq!(second.len(), 7);
        assert_eq!(second.iter().filter(|&&id| id < 10).count(), 6);
        assert_eq!(wheel.next_expiration(), Some(6));
        let third = fire_at_most(&mut wheel, 20, 100, &log);
        let mut all: Vec<usize> = first.into_iter().chain(second).chain(third).collect();
        all.sort_unstable();
        assert_eq!(
            all,
            (0..13).collect::<Vec<_>>(),
            "each due entry fired once"
        );
        assert!(fire_at_most(&mut wheel, 20, 100, &log).is_empty());
        assert_eq!(wheel.next_expiration(), Some(50), "the far entry stays");
        assert!(fire_at_most(&mut wheel, 49, 0, &log).is_empty());
        assert_eq!(fire_at_most(&mut wheel, 50, 1, &log), vec![99]);
        assert_eq!(wheel.next_expiration(), None);
    }

    #[test]
    fn a_limit_inside_a_higher_slot_cascades_the_rest_and_keeps_deadline_order() {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut wheel = Wheel::default();
        // From `elapsed` 0, ticks 64..128 sit in one level-1 slot. A slot lists its
        // entries newest first, so it is visited as 120 (not due at 95: cascades), 70, 90
        // (fired: the limit), then 64, 65 — due, but past the limit.
        let ticks = [100u64, 65, 64, 90, 70, 120];
        for (id, &when) in ticks.iter().enumerate() {
            wheel.insert(when, tagged(id, &log));
        }
        // At 95 four are due (64, 65, 70, 90); fire two: the rest must not be lost behind
        // the later entries (100, 120) that cascaded to level 0.
        let mut fired = fire_at_most(&mut wheel, 95, 2, &log);
        assert_eq!(fired.len(), 2);
        while fired.len() < 4 {
            let next = wheel.next_expiration().expect("due entries remain");
            assert!(next <= 95, "a due entry is next, not {next}");
            let more = fire_at_most(&mut wheel, 95, 1, &log);
            assert_eq!(more.len(), 1);
            fired.extend(more);
        }
        let mut due: Vec<u64> = fired.iter().map(|&id| ticks[id]).collect();
        due.sort_unstable();
        assert_eq!(due, [64, 65, 70, 90]);
        assert!(fire_at_most(&mut wheel, 95, 10, &log).is_empty());
        assert_eq!(wheel.next_expiration(), Some(100));
        let rest: Vec<u64> = fire_at_most(&mut wheel, 200, 10, &log)
            .iter()
            .map(|&id| ticks[id])
            .collect();
        assert_eq!(rest, [100, 120]);
    }

    #[test]
    fn big_jump_fires_everything_due_and_nothing_else() {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut wheel = Wheel::default();
        for id in 0..1000 {
            wheel.insert(id as u64 * 97, tagged(id, &log));
        }
        assert_eq!(fire(&mut wheel, 50_000), 50_000 / 97 + 1);
        assert_eq!(fire(&mut wheel, 200_000), 1000 - (50_000 / 97 + 1));
        assert_eq!(wheel.next_expiration(), None);
    }

    #[test]
    fn remove_unlinks_from_any_position() {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut wheel = Wheel::default();
        let keys: Vec<usize> = (0..5)
            .map(|id| wheel.insert(10, tagged(id, &log)))
            .collect();
        assert!(wheel.remove(keys[2]).is_some()); // middle
        assert!(wheel.remove(keys[4]).is_some()); // head (inserted last)
        assert!(wheel.remove(keys[0]).is_some()); // tail
        assert_eq!(fire(&mut wheel, 10), 2);
        let mut fired = log.lock().unwrap().clone();
        fired.sort_unstable();
        assert_eq!(fired, vec![1, 3]);
        assert_eq!(wheel.state(keys[1]), EntryState::Fired);
        assert!(
            wheel.remove(keys[1]).is_none(),
            "fired entries have no waker"
        );
        assert_eq!(wheel.next_expiration(), None);
    }

    #[test]
    fn past_deadline_fires_on_next_advance() {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut wheel = Wheel::default();
        fire(&mut wheel, 1000);
        wheel.insert(10, tagged(0, &log));
        assert_eq!(wheel.next_expiration(), Some(1000));
        assert_eq!(fire(&mut wheel, 1000), 1);
    }

    #[test]
    fn far_deadline_wraps_the_top_level_and_is_clamped() {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut wheel = Wheel::default();
        let start = MAX_OFFSET - 5; // near the end of the first top-level block
        fire(&mut wheel, start);
        let next_block = wheel.insert(MAX_OFFSET + 1_000, tagged(0, &log));
        let clamped = wheel.insert(u64::MAX, tagged(1, &log));
        assert_eq!(wheel.next_expiration(), Some(MAX_OFFSET + 1));
        assert_eq!(fire(&mut wheel, MAX_OFFSET + 999), 0);
        assert_eq!(fire(&mut wheel, MAX_OFFSET + 1_000), 1);
        let clamped_when = (63 << 30) + MAX_OFFSET; // start of elapsed's top slot + MAX_OFFSET
        let horizon = clamped_when - start;
        assert!(
            horizon >= MAX_OFFSET - (1 << 30),
            "clamped horizon {horizon} too short"
        );
        assert_eq!(fire(&mut wheel, clamped_when - 1), 0);
        assert_eq!(fire(&mut wheel, clamped_when), 1);
        assert_eq!(*log.lock().unwrap(), vec![0, 1]);
        // The owner of a clamped entry re-arms it; reschedule moves an armed entry.
        let (_, newly_armed) = wheel.rearm(clamped, start + horizon + 100, &tagged(2, &log));
        assert!(newly_armed);
        wheel.reschedule(clamped, start + horizon + 50);
        assert_eq!(wheel.state(clamped), EntryState::Armed);
        assert_eq!(fire(&mut wheel, start + horizon + 49), 0);
        assert_eq!(fire(&mut wheel, start + horizon + 50), 1);
        assert_eq!(wheel.state(next_block), EntryState::Fired);
    }

    #[test]
    fn fire_all_takes_every_armed_waker() {
        let count = Arc::new(AtomicUsize::new(0));
        struct Count(Arc<AtomicUsize>);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let mut wheel = Wheel::default();
        for when in [1, 100, 10_000, 1_000_000] {
            wheel.insert(when, Waker::from(Arc::new(Count(count.clone()))));
        }
        let mut wakers = Vec::new();
        assert_eq!(wheel.fire_all(&mut wakers), 4);
        wakers.into_iter().for_each(Waker::wake);
        assert_eq!(count.load(Ordering::SeqCst), 4);
        assert_eq!(wheel.next_expiration(), None);
        assert_eq!(
            wheel.len(),
            4,
            "fired entries stay until their owners remove them"
        );
    }
}
