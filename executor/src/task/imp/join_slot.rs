//! The join-waker slot: the `JoinHandle`'s waker, kept in one word of the task header.
//!
//! An `Option<Waker>` is two words (data and vtable). The wakers that await a
//! `JoinHandle` are nearly always one of three kinds whose vtable is a static of this
//! crate: a runnel task's (another task awaits it), a `block_on` caller's, or a `JoinSet`
//! entry's. For those the slot keeps only the data pointer and names the vtable with a
//! 2-bit tag in the pointer's low bits (each kind's data is at least 4-aligned: a task
//! header, an `Arc`'s contents). Any other waker (another executor's, a combinator's like
//! `FuturesUnordered`) is boxed, and the slot keeps the box: one allocation per store of
//! such a waker, which a `JoinHandle` polled again with the same waker does not repeat
//! (`will_wake`). The word saved kept the header from growing when the wait slot grew a
//! registration word (BENCHMARKS.md, issue 14).
//!
//! Who may touch the slot is the `JOIN_WAKER` protocol's business (`state.rs`); this type
//! is a plain value that owns the waker it holds, like the `Option<Waker>` it replaces.

use std::mem::ManuallyDrop;
use std::ptr;
use std::task::{RawWakerVTable, Waker};

/// The vtables the slot stores by tag (the index). Statics, so each has one address.
static KNOWN: [&RawWakerVTable; 3] = [
    &super::waker::TASK_WAKER_VTABLE,
    &crate::block_on::SIGNAL_WAKER_VTABLE,
    &crate::task::join_set::ENTRY_WAKER_VTABLE,
];
/// The tag of a boxed waker (`Box<Waker>`).
const BOXED: usize = 3;
const TAG: usize = 3;

/// A `JoinHandle`'s waker in one word (see the module docs). Null when empty.
pub(super) struct JoinSlot(*mut ());

// SAFETY: the slot owns a `Waker` (a reference it will give back to a `Waker`, or a
// `Box<Waker>`), which is `Send` and `Sync`; the raw pointer is only its representation.
unsafe impl Send for JoinSlot {}
// SAFETY: as above; `&JoinSlot` only lends `&Waker` (`with`).
unsafe impl Sync for JoinSlot {}

impl JoinSlot {
    pub(super) const EMPTY: JoinSlot = JoinSlot(ptr::null_mut());

    /// Stores `waker` in the empty slot (a caller replacing a waker takes the old one out
    /// first, releasing its hold: `raw.rs`, `take_join_waker`).
    pub(super) fn put(&mut self, waker: Waker) {
        debug_assert!(self.0.is_null(), "the join slot was not emptied first");
        let tag = KNOWN
            .iter()
            .position(|known| ptr::eq(waker.vtable(), *known));
        self.0 = match tag {
            Some(tag) => {
                let data = ManuallyDrop::new(waker).data().cast_mut();
                debug_assert_eq!(data as usize & TAG, 0, "a known waker's data is 4-aligned");
                // The slot now owns the reference the waker held; `take` and `drop` give
                // it back to a `Waker` built from the same data and vtable.
                data.wrapping_byte_add(tag)
            }
            None => Box::into_raw(Box::new(waker))
                .cast::<()>()
                .wrapping_byte_add(BOXED),
        };
    }

    /// Takes the stored waker out, leaving the slot empty.
    #[inline]
    pub(super) fn take(&mut self) -> Option<Waker> {
        let word = std::mem::replace(&mut self.0, ptr::null_mut());
        // Inline up to here: most tasks complete with an empty slot (nobody awaited them).
        (!word.is_null()).then(|| rebuild(word))
    }

    /// Calls `f` with the stored waker, if any, leaving it stored.
    pub(super) fn with<R>(&self, f: impl FnOnce(&Waker) -> R) -> Option<R> {
        if self.0.is_null() {
            return None;
        }
        let (data, tag) = untag(self.0);
        Some(if tag == BOXED {
            // SAFETY: a BOXED word is a live `Box<Waker>` the slot owns; we only borrow it.
            f(unsafe { &*data.cast::<Waker>() })
        } else {
            // SAFETY: as in `rebuild`; `ManuallyDrop` lends the slot's reference without
            // giving it back (`f` may clone the waker, which takes a reference of its own).
            let waker = ManuallyDrop::new(unsafe { Waker::new(data.cast_const(), KNOWN[tag]) });
            f(&waker)
        })
    }
}

/// The waker a non-null word stands for, owning the slot's reference: the caller has
/// taken the word out of the slot (`take`), so it is rebuilt once.
fn rebuild(word: *mut ()) -> Waker {
    let (data, tag) = untag(word);
    if tag == BOXED {
        // SAFETY: a BOXED word is a `Box<Waker>` from `put`, owned by the slot until the
        // caller took the word out.
        *unsafe { Box::from_raw(data.cast::<Waker>()) }
    } else {
        // SAFETY: `put` stored the data of a waker with vtable `KNOWN[tag]` and kept its
        // reference; rebuilding the waker hands that reference back.
        unsafe { Waker::new(data.cast_const(), KNOWN[tag]) }
    }
}

/// The stored pointer and its tag. Byte offsets, not integer casts back to a pointer,
/// so the pointer keeps its provenance (Miri's strict provenance checks this).
fn untag(word: *mut ()) -> (*mut (), usize) {
    let tag = word as usize & TAG;
    (word.wrapping_byte_sub(tag), tag)
}

impl Drop for JoinSlot {
    #[inline]
    fn drop(&mut self) {
        drop(self.take());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;
    use std::task::Wake;

    use super::*;

    struct Counting {
        woken: AtomicUsize,
    }

    impl Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.woken.fetch_add(1, SeqCst);
        }
    }

    #[test]
    fn a_foreign_waker_is_boxed_and_given_back_whole() {
        let counting = Arc::new(Counting {
            woken: AtomicUsize::new(0),
        });
        let waker = Waker::from(counting.clone());
        let mut slot = JoinSlot::EMPTY;
        assert_eq!(slot.with(|_| ()), None);
        slot.put(waker.clone());
        assert_eq!(untag(slot.0).1, BOXED);
        assert_eq!(Arc::strong_count(&counting), 3);
        // The same waker: its data (not `will_wake`, which also compares the vtable's
        // address, and `Wake`'s vtable is a constant Miri may place anew for each use).
        assert_eq!(slot.with(Waker::data), Some(waker.data()));
        slot.with(Waker::wake_by_ref);
        assert_eq!(counting.woken.load(SeqCst), 1);
        let taken = slot.take().expect("stored");
        assert_eq!(taken.data(), waker.data());
        assert!(slot.take().is_none());
        drop(taken);
        // Dropped with the slot: the reference comes back.
        slot.put(waker.clone());
        assert_eq!(Arc::strong_count(&counting), 3);
        drop(slot);
        assert_eq!(Arc::strong_count(&counting), 2);
    }

    #[test]
    fn known_wakers_take_one_word_and_keep_their_identity() {
        assert_eq!(std::mem::size_of::<JoinSlot>(), 8);
        // A JoinSet entry's waker: a known vtable, stored by its data pointer alone.
        let (entry, probe) = crate::task::join_set::entry_waker_for_test();
        let mut slot = JoinSlot::EMPTY;
        slot.put(entry.clone());
        assert_eq!(untag(slot.0), (entry.data().cast_mut(), 2));
        assert_eq!(slot.with(|w| w.will_wake(&entry)), Some(true));
        assert_eq!(probe(), 2, "the slot holds one reference");
        let taken = slot.take().expect("stored");
        assert!(ptr::eq(taken.vtable(), entry.vtable()) && taken.data() == entry.data());
        drop(taken);
        assert_eq!(probe(), 1);
        slot.put(entry.clone());
        drop(slot);
        assert_eq!(probe(), 1, "dropping the slot drops its waker");
    }
}
