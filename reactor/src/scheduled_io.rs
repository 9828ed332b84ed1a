//! Per-source shared state: readiness plus one list of waiting wakers per direction.
//!
//! Shared (via `Arc`) by the source's `Registration` and the reactor's slab (`sources.rs`).
//!
//! Any number of tasks may wait in one direction (two `recv`s on a shared UDP socket, two
//! `accept`s on a shared listener): each gets an entry in the direction's list, and an event
//! that makes the direction ready takes **every** entry, so every waiter is woken and tries
//! its operation again. Edge-triggered readiness makes waking only some of them wrong: the
//! one woken might not consume the readiness while the others sleep through it.
//!
//! An entry is one of two kinds:
//! - **anonymous**, stored by the stateless `Registration::poll_*_ready(cx)`: the reactor
//!   cannot know when the future that polled goes away, so the entry stays until the next
//!   event for its direction or the source's close. A direction has **at most one**
//!   anonymous entry: a poll stores its waker there, replacing (and dropping, unwoken) the
//!   waker a previous stateless poll left, unless that one `will_wake` the same task. As
//!   in tokio's `poll_read_ready`, only the last stateless poller of a direction is woken;
//!   in exchange a caller that polls with a fresh waker each time (or many callers that
//!   stopped polling) cannot grow the list or the io waiter count, and the count stays
//!   exact: it is 1 for the slot while any stateless poller waits. Measured with 10 000
//!   polls with fresh wakers on an idle socket (`measure_stateless_polls_on_an_idle_socket`
//!   in `tests/many_waiters.rs`): one entry per poll took ~8 µs a poll (a `will_wake`
//!   scan of a list growing to 10 000) and left 10 000 counted waiters; the slot takes
//!   ~20 ns a poll and leaves 1.
//! - **keyed**, stored by an `IoWaiter` (`io_waiter.rs`), which holds the entry's
//!   [`WaiterKey`]: a re-poll updates the entry in place, and the waiter removes it when it
//!   finds readiness or is dropped. Any number of keyed entries may wait in one direction,
//!   and they are never stale, which keeps the counts the deadlock detector reads exact for
//!   the async methods that use them.
//!
//! A list ([`WaiterList`]) keeps its first entry inline and moves to a `Slab` only when a
//! second waiter arrives while the first is stored: nearly every source has at most one
//! waiter per direction (the task parked in a read), and an eager slab cost 96 bytes per
//! direction per source (BENCHMARKS.md, idle TCP connection). Once a list has a slab it
//! keeps it, so emptying it keeps its allocation (a socket with several waiters does not
//! allocate per wait), and a keyed entry is found and removed in O(1) by its index (many
//! tasks timing out of a wait on one socket would be quadratic in a `Vec`). The inline
//! entry has index 0 and becomes the slab's entry 0 when the slab is made, so an index stays
//! valid across the move. The anonymous entry lives in the same list (a separate slot per
//! direction would grow every `ScheduledIo` by 32 bytes); finding it scans the list, which
//! holds at most one entry in the common case and otherwise the live keyed waiters plus it.
//!
//! The lost-wakeup argument. The driver does (1) update readiness, then (2) lock the lists
//! and take the entries of the directions that became ready. A task does (a) lock the lists,
//! (b) look at readiness, (c) store its entry, (d) unlock. The mutex orders the two critical
//! sections: if the task's comes first, the driver finds the entry in (2); if the driver's
//! comes first, (1) happened before (b), so the task sees the readiness and does not wait.
//! A close (shutdown/deregister) follows the driver's protocol, so it cannot be missed either.
//!
//! Forgetting an entry. A keyed waiter that finds readiness without the lock drops its key
//! instead of locking to remove its entry. Sound, because its entry was stored at a step
//! (b) that saw the direction not ready, and flags appear only through a driver (1) (or a
//! close); so the readiness it sees now comes from a (1) that (b) did not see, whose (2)
//! therefore runs after the waiter's critical section and takes the entry (if no earlier
//! event did). The entry stays counted until the driver's caller releases it; its waker gets
//! one spurious wake. This saves a lock per wait on the path every blocking read takes.
//!
//! Counting (see `waiters.rs`): every stored entry is one io waiter, added while the lock
//! is held. Whoever takes an entry out owns its one count: a waiter removing its own entry
//! releases it at once; the driver and `close` hand theirs to their callers.
//!
//! Wakers are never dropped or woken while the lock is held: dropping the last waker of a
//! task drops the task, whose futures may own registrations whose `Drop` takes reactor locks.

use std::io;
use std::num::NonZeroU64;
use std::sync::Mutex;
use std::task::{Poll, Waker};

use mio::Token;
use slab::Slab;

use crate::readiness::{Closed, Direction, Observed, ReadinessState, Ready, ReadyEvent};
use crate::sync::lock;
use crate::waiters::WaiterCounts;

#[derive(Debug)]
pub(crate) struct ScheduledIo {
    /// Slab key + generation of this registration (see `token.rs`).
    token: Token,
    pub(crate) readiness: ReadinessState,
    lists: Mutex<Lists>,
}

/// Names one keyed entry: its slab index, and an id unique for the life of its
/// `ScheduledIo` (a `u64` counter never wraps in practice). The index alone is not enough:
/// once the driver took the entry, the index may be reused by a later waiter, whose entry a
/// stale key must not remove.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WaiterKey {
    index: usize,
    id: NonZeroU64,
}

#[derive(Debug)]
struct Lists {
    read: WaiterList,
    write: WaiterList,
    /// The id the next keyed entry gets.
    next_id: NonZeroU64,
}

#[derive(Debug)]
struct Entry {
    /// `None`: anonymous (see the module header).
    id: Option<NonZeroU64>,
    waker: Waker,
}

/// The entries of one direction (module header): none, one inline, or a slab for two or
/// more (kept once made).
#[derive(Debug, Default)]
enum WaiterList {
    #[default]
    Empty,
    /// The only entry; its index is 0.
    One(Entry),
    Many(Slab<Entry>),
}

/// Capacity of the slab a list moves to on its second entry (slab's own first growth).
const MANY: usize = 4;

impl WaiterList {
    /// Stores `entry`; returns its index.
    fn insert(&mut self, entry: Entry) -> usize {
        match self {
            WaiterList::Empty => {
                *self = WaiterList::One(entry);
                0
            }
            WaiterList::One(_) => {
                let WaiterList::One(first) = std::mem::take(self) else {
                    unreachable!("matched One above")
                };
                let mut slab = Slab::with_capacity(MANY);
                let first_index = slab.insert(first);
                debug_assert_eq!(first_index, 0, "the inline entry keeps index 0");
                let index = slab.insert(entry);
                *self = WaiterList::Many(slab);
                index
            }
            WaiterList::Many(slab) => slab.insert(entry),
        }
    }

    fn get_mut(&mut self, index: usize) -> Option<&mut Entry> {
        match self {
            WaiterList::Empty => None,
            WaiterList::One(entry) => (index == 0).then_some(entry),
            WaiterList::Many(slab) => slab.get_mut(index),
        }
    }

    /// Takes out the entry at `index`, which must be stored.
    fn remove(&mut self, index: usize) -> Entry {
        match self {
            WaiterList::Many(slab) => slab.remove(index),
            WaiterList::One(_) if index == 0 => match std::mem::take(self) {
                WaiterList::One(entry) => entry,
                _ => unreachable!("matched One above"),
            },
            _ => panic!("no waiter entry at index {index}"),
        }
    }

    fn len(&self) -> usize {
        match self {
            WaiterList::Empty => 0,
            WaiterList::One(_) => 1,
            WaiterList::Many(slab) => slab.len(),
        }
    }

    /// The anonymous entry, if one is stored (there is at most one: module header).
    fn anonymous_mut(&mut self) -> Option<&mut Entry> {
        match self {
            WaiterList::Empty => None,
            WaiterList::One(entry) => entry.id.is_none().then_some(entry),
            WaiterList::Many(slab) => slab
                .iter_mut()
                .map(|(_, entry)| entry)
                .find(|entry| entry.id.is_none()),
        }
    }

    /// Moves every entry's waker into `wakers`, keeping a slab's allocation.
    fn drain_into(&mut self, wakers: &mut Vec<Waker>) {
        match self {
            WaiterList::Empty => {}
            WaiterList::One(_) => {
                if let WaiterList::One(entry) = std::mem::take(self) {
                    wakers.push(entry.waker);
                }
            }
            WaiterList::Many(slab) => wakers.extend(slab.drain().map(|entry| entry.waker)),
        }
    }
}

impl Lists {
    fn get(&mut self, direction: Direction) -> &mut WaiterList {
        match direction {
            Direction::Read => &mut self.read,
            Direction::Write => &mut self.write,
        }
    }

    /// Stores a new keyed entry for `waker`.
    fn insert_keyed(&mut self, direction: Direction, waker: &Waker) -> WaiterKey {
        let id = self.next_id;
        self.next_id = id.checked_add(1).expect("2^64 waits on one source");
        let index = self.get(direction).insert(Entry {
            id: Some(id),
            waker: waker.clone(),
        });
        WaiterKey { index, id }
    }

    /// The entry `key` names, if it is still in the list.
    fn find(&mut self, direction: Direction, key: WaiterKey) -> Option<&mut Entry> {
        self.get(direction)
            .get_mut(key.index)
            .filter(|entry| entry.id == Some(key.id))
    }

    /// Takes the entry `key` out of `direction`'s list, if it is still there.
    fn remove(&mut self, direction: Direction, key: WaiterKey) -> Option<Waker> {
        self.find(direction, key)?;
        Some(self.get(direction).remove(key.index).waker)
    }

    /// Moves every entry of `direction` out into `wakers`; returns how many.
    fn take_all(&mut self, direction: Direction, wakers: &mut Vec<Waker>) -> usize {
        let list = self.get(direction);
        let taken = list.len();
        if taken > 0 {
            list.drain_into(wakers); // skipped for the other direction of most events
        }
        taken
    }
}

/// Which kind of entry a poll stores (module header).
pub(crate) enum Waiting<'a> {
    /// Stateless poll: the direction's one anonymous entry, stored or replaced.
    Anonymous,
    /// An `IoWaiter`'s poll: its entry's key, `None` while it has no entry.
    Keyed(&'a mut Option<WaiterKey>),
}

impl ScheduledIo {
    pub(crate) fn new(token: Token) -> ScheduledIo {
        ScheduledIo {
            token,
            readiness: ReadinessState::default(),
            lists: Mutex::new(Lists {
                read: WaiterList::Empty,
                write: WaiterList::Empty,
                next_id: NonZeroU64::MIN,
            }),
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
        waiting: Waiting<'_>,
        counts: &WaiterCounts,
    ) -> Poll<io::Result<ReadyEvent>> {
        // Fast path without the lock: most polls of a busy socket find it ready.
        if let Some(result) = self.readiness.observe(direction.mask()).into_result() {
            if let Waiting::Keyed(key) = waiting {
                // Forgetting an entry (module header): the driver will take it.
                *key = None;
            }
            return Poll::Ready(result);
        }
        let mut lists = lock(&self.lists);
        // Step (b) of the module header: look again under the lock.
        if let Some(result) = self.readiness.observe(direction.mask()).into_result() {
            // We hold the lock anyway: a keyed waiter gives its entry back now, so its drop
            // does not have to lock again.
            let removed = match waiting {
                Waiting::Keyed(key) => key.take().and_then(|key| lists.remove(direction, key)),
                Waiting::Anonymous => None,
            };
            drop(lists);
            release_removed(removed, counts);
            return Poll::Ready(result);
        }
        let mut replaced = None;
        match waiting {
            Waiting::Anonymous => {
                let list = lists.get(direction);
                match list.anonymous_mut() {
                    // The slot keeps its one count; the waker it held is dropped unwoken
                    // (module header: only the last stateless poller is woken).
                    Some(entry) => {
                        if !entry.waker.will_wake(waker) {
                            replaced = Some(std::mem::replace(&mut entry.waker, waker.clone()));
                        }
                    }
                    None => {
                        list.insert(Entry {
                            id: None,
                            waker: waker.clone(),
                        });
                        counts.add_io(1);
                    }
                }
            }
            Waiting::Keyed(key) => match key.and_then(|k| lists.find(direction, k)) {
                Some(entry) => {
                    if !entry.waker.will_wake(waker) {
                        replaced = Some(std::mem::replace(&mut entry.waker, waker.clone()));
                    }
                }
                // First poll, or the driver took the entry (and woke us) but the readiness
                // was consumed by another task before we looked: wait again, with a new key.
                None => {
                    *key = Some(lists.insert_keyed(direction, waker));
                    counts.add_io(1);
                }
            },
        }
        drop(lists);
        drop(replaced); // outside the lock, see the module header
        counts.waiter_stored();
        Poll::Pending
    }

    /// A keyed waiter goes away: removes its entry if the driver has not taken it, and
    /// releases the entry's count.
    pub(crate) fn remove_waiter(
        &self,
        direction: Direction,
        key: WaiterKey,
        counts: &WaiterCounts,
    ) {
        let removed = lock(&self.lists).remove(direction, key);
        release_removed(removed, counts);
    }

    /// Readiness for `mask` right now, without waiting.
    pub(crate) fn observe(&self, mask: Ready) -> Observed {
        self.readiness.observe(mask)
    }

    /// Driver: applies one event and moves out the wakers of the directions it made ready.
    /// Returns how many it moved (the caller keeps them counted until release).
    pub(crate) fn wake_ready(&self, ready: Ready, wakers: &mut Vec<Waker>) -> usize {
        self.readiness.set(ready);
        let mut lists = lock(&self.lists);
        let mut taken = 0;
        for direction in [Direction::Read, Direction::Write] {
            if !(ready & direction.mask()).is_empty() {
                taken += lists.take_all(direction, wakers);
            }
        }
        taken
    }

    /// Marks the source dead and moves out every stored waker (the caller owns their counts).
    pub(crate) fn close(&self, why: Closed, wakers: &mut Vec<Waker>) -> usize {
        self.readiness.close(why);
        let mut lists = lock(&self.lists);
        lists.take_all(Direction::Read, wakers) + lists.take_all(Direction::Write, wakers)
    }

    /// How many entries `direction`'s list holds.
    #[cfg(test)]
    pub(crate) fn entries(&self, direction: Direction) -> usize {
        lock(&self.lists).get(direction).len()
    }
}

/// Releases the count of an entry a waiter took back, then drops its waker. Called with the
/// lock released (module header).
fn release_removed(removed: Option<Waker>, counts: &WaiterCounts) {
    if let Some(waker) = removed {
        counts.sub_io(1);
        drop(waker);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    /// "Forgetting an entry" (module header): readiness set by the driver's step (1) is seen
    /// by a keyed waiter before step (2); the waiter lets go of its key without locking,
    /// and step (2) takes the entry, so its count is handed to the driver's caller, once.
    #[test]
    fn keyed_entry_forgotten_on_readiness_is_taken_by_the_driver() {
        let io = ScheduledIo::new(Token(0));
        let counts = WaiterCounts::default();
        let mut key = None;
        let poll = |key: &mut Option<WaiterKey>| {
            io.poll_ready(Direction::Read, Waker::noop(), Waiting::Keyed(key), &counts)
        };
        assert!(poll(&mut key).is_pending());
        assert!(key.is_some());
        assert_eq!((counts.snapshot().io, io.entries(Direction::Read)), (1, 1));

        io.readiness.set(Ready::READABLE); // step (1) only
        assert!(poll(&mut key).is_ready());
        assert_eq!(key, None, "forgotten, not removed");
        assert_eq!((counts.snapshot().io, io.entries(Direction::Read)), (1, 1));

        let mut wakers = Vec::new();
        assert_eq!(
            io.wake_ready(Ready::READABLE, &mut wakers),
            1,
            "step (2) takes it"
        );
        assert_eq!(io.entries(Direction::Read), 0);
        counts.sub_io(1); // what `Handle::release` does with that drain
        assert_eq!(counts.snapshot().io, 0);
    }

    /// A stale key (its entry taken by the driver, its slab index reused by a later
    /// waiter) removes nothing: the later waiter keeps its entry and its count.
    #[test]
    fn stale_key_does_not_remove_the_entry_that_reused_its_index() {
        let io = ScheduledIo::new(Token(0));
        let counts = WaiterCounts::default();
        let (mut old, mut new) = (None, None);
        let poll = |key: &mut Option<WaiterKey>| {
            io.poll_ready(Direction::Read, Waker::noop(), Waiting::Keyed(key), &counts)
        };
        assert!(poll(&mut old).is_pending());
        let mut wakers = Vec::new();
        assert_eq!(io.wake_ready(Ready::READABLE, &mut wakers), 1);
        counts.sub_io(1); // released by the driver's caller
        io.readiness
            .clear(match io.observe(Direction::Read.mask()) {
                Observed::Ready(event) => event,
                other => panic!("ready after the event, got {other:?}"),
            });
        assert!(poll(&mut new).is_pending());
        let (old, new) = (old.unwrap(), new.unwrap());
        assert_eq!(old.index, new.index, "index reused");
        io.remove_waiter(Direction::Read, old, &counts);
        assert_eq!((counts.snapshot().io, io.entries(Direction::Read)), (1, 1));
        io.remove_waiter(Direction::Read, new, &counts);
        assert_eq!((counts.snapshot().io, io.entries(Direction::Read)), (0, 0));
    }

    /// A keyed waiter that finds readiness under the lock removes its entry there.
    #[test]
    fn keyed_entry_found_ready_under_the_lock_is_removed_and_released() {
        let io = ScheduledIo::new(Token(0));
        let counts = WaiterCounts::default();
        let mut key = None;
        assert!(io
            .poll_ready(
                Direction::Write,
                Waker::noop(),
                Waiting::Keyed(&mut key),
                &counts
            )
            .is_pending());
        // Another waiter stores an anonymous entry in the same list.
        assert!(io
            .poll_ready(Direction::Write, Waker::noop(), Waiting::Anonymous, &counts)
            .is_pending());
        assert_eq!(counts.snapshot().io, 2);
        let stale = key.expect("stored");
        io.remove_waiter(Direction::Write, stale, &counts);
        assert_eq!(counts.snapshot().io, 1);
        // Removing twice (a key the list no longer has) does nothing.
        io.remove_waiter(Direction::Write, stale, &counts);
        assert_eq!((counts.snapshot().io, io.entries(Direction::Write)), (1, 1));
    }

    /// The first waiter is stored inline; a second moves both into a slab, and the first
    /// keeps its key across the move. Every entry is found, removed and counted exactly.
    #[test]
    fn first_waiter_inline_then_slab_keys_stay_valid() {
        let io = ScheduledIo::new(Token(0));
        let counts = WaiterCounts::default();
        let mut keys = [None, None, None];
        let poll = |key: &mut Option<WaiterKey>| {
            io.poll_ready(Direction::Read, Waker::noop(), Waiting::Keyed(key), &counts)
        };
        assert!(poll(&mut keys[0]).is_pending());
        assert!(matches!(lock(&io.lists).read, WaiterList::One(_)));
        assert!(matches!(lock(&io.lists).write, WaiterList::Empty));
        assert!(poll(&mut keys[1]).is_pending());
        assert!(matches!(lock(&io.lists).read, WaiterList::Many(_)));
        assert!(poll(&mut keys[2]).is_pending());
        // Re-polls find their entries in place: nothing new is stored.
        for key in &mut keys {
            assert!(poll(key).is_pending());
        }
        assert_eq!((counts.snapshot().io, io.entries(Direction::Read)), (3, 3));
        let first = keys[0].take().unwrap();
        io.remove_waiter(Direction::Read, first, &counts);
        io.remove_waiter(Direction::Read, first, &counts); // stale: nothing
        assert_eq!((counts.snapshot().io, io.entries(Direction::Read)), (2, 2));
        let mut wakers = Vec::new();
        assert_eq!(io.wake_ready(Ready::READABLE, &mut wakers), 2);
        assert_eq!((wakers.len(), io.entries(Direction::Read)), (2, 0));
        counts.sub_io(2);
        assert!(
            matches!(lock(&io.lists).read, WaiterList::Many(_)),
            "keeps its slab"
        );
        // Their keys are stale now: removing them does nothing.
        for key in keys.iter_mut().filter_map(Option::take) {
            io.remove_waiter(Direction::Read, key, &counts);
        }
        assert_eq!(counts.snapshot().io, 0);
    }

    /// An inline entry taken by the driver or removed by its waiter leaves the list empty;
    /// a stale key with index 0 does not remove a later inline entry.
    #[test]
    fn inline_entry_removal_and_stale_index_zero() {
        let io = ScheduledIo::new(Token(0));
        let counts = WaiterCounts::default();
        let (mut old, mut new, mut anonymous_first) = (None, None, None);
        let poll = |key: &mut Option<WaiterKey>| {
            io.poll_ready(
                Direction::Write,
                Waker::noop(),
                Waiting::Keyed(key),
                &counts,
            )
        };
        assert!(poll(&mut old).is_pending());
        let mut wakers = Vec::new();
        assert_eq!(io.wake_ready(Ready::WRITABLE, &mut wakers), 1);
        counts.sub_io(1);
        assert!(matches!(lock(&io.lists).write, WaiterList::Empty));
        io.readiness
            .clear(match io.observe(Direction::Write.mask()) {
                Observed::Ready(event) => event,
                other => panic!("ready after the event, got {other:?}"),
            });
        assert!(poll(&mut new).is_pending());
        io.remove_waiter(Direction::Write, old.unwrap(), &counts);
        assert_eq!((counts.snapshot().io, io.entries(Direction::Write)), (1, 1));
        io.remove_waiter(Direction::Write, new.take().unwrap(), &counts);
        assert_eq!((counts.snapshot().io, io.entries(Direction::Write)), (0, 0));
        assert!(matches!(lock(&io.lists).write, WaiterList::Empty));
        // An anonymous entry inline, deduplicated, then a keyed one next to it.
        let (_, waker) = crate::tests::counting_waker();
        for _ in 0..2 {
            assert!(io
                .poll_ready(Direction::Write, &waker, Waiting::Anonymous, &counts)
                .is_pending());
        }
        assert!(poll(&mut anonymous_first).is_pending());
        assert_eq!((counts.snapshot().io, io.entries(Direction::Write)), (2, 2));
        let mut wakers = Vec::new();
        assert_eq!(io.close(Closed::Shutdown, &mut wakers), 2);
        counts.sub_io(2);
        assert_eq!(counts.snapshot().io, 0);
    }

    /// The anonymous entry shares a slab with keyed entries: a later stateless poll finds
    /// and replaces it (one entry, one count), and the driver takes it with the others.
    #[test]
    fn anonymous_entry_in_a_slab_is_replaced_in_place() {
        let io = ScheduledIo::new(Token(0));
        let counts = WaiterCounts::default();
        let mut key = None;
        assert!(io
            .poll_ready(
                Direction::Read,
                Waker::noop(),
                Waiting::Keyed(&mut key),
                &counts
            )
            .is_pending());
        let (first, first_waker) = crate::tests::counting_waker();
        let (last, last_waker) = crate::tests::counting_waker();
        for waker in [&first_waker, &last_waker, &last_waker] {
            assert!(io
                .poll_ready(Direction::Read, waker, Waiting::Anonymous, &counts)
                .is_pending());
        }
        assert!(matches!(lock(&io.lists).read, WaiterList::Many(_)));
        assert_eq!((counts.snapshot().io, io.entries(Direction::Read)), (2, 2));
        drop(first_waker);
        assert_eq!(
            std::sync::Arc::strong_count(&first),
            1,
            "the replaced waker is dropped"
        );
        let mut wakers = Vec::new();
        assert_eq!(io.wake_ready(Ready::READABLE, &mut wakers), 2);
        wakers.into_iter().for_each(Waker::wake);
        counts.sub_io(2);
        use std::sync::atomic::Ordering::SeqCst;
        assert_eq!((first.load(SeqCst), last.load(SeqCst)), (0, 1));
        assert_eq!(counts.snapshot().io, 0);
    }
}
