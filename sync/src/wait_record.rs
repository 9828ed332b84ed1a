//! The wait record of a `watch` or `broadcast` channel: where the channel was
//! created and how many of its ends are alive, for task dumps and deadlock/stall reports
//! (`runnel_reactor::wait::Holders::channel`; the wait-for graph never follows it).
//!
//! Invariants:
//! - the record is made on the channel's first wait that returns `Pending`, never on a
//!   path that does not wait, so a channel nobody waits on allocates nothing more;
//! - the channel's ends are published to it, under the channel's lock, only once it
//!   exists, and a record is made with the ends alive at that moment;
//! - a waiting future registers the record in the polled task's wait slot when it returns
//!   `Pending` and unregisters it when it completes or is dropped.

use std::mem::ManuallyDrop;
use std::panic::Location;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering::AcqRel, Ordering::Acquire};
use std::sync::Arc;
use std::task::Waker;

use runnel_reactor::wait::{self, Holders};

use crate::SyncKind;

pub(crate) struct WaitRecord {
    created_at: &'static Location<'static>,
    /// Null, or the reference of an `Arc<Holders>` (`Arc::into_raw`) that this owns until
    /// it drops. Set once, by a CAS from null (a maker that loses the race frees its own;
    /// lighter than a `OnceLock`, BENCHMARKS.md).
    record: AtomicPtr<Holders>,
}

/// A borrow of the record's `Arc` (not a reference of its own).
type Borrowed = ManuallyDrop<Arc<Holders>>;

impl WaitRecord {
    pub(crate) const fn new(created_at: &'static Location<'static>) -> WaitRecord {
        WaitRecord {
            created_at,
            record: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// The record, if a wait made it.
    fn get(&self) -> Option<Borrowed> {
        // Acquire: the record's fields, written before the CAS that published it.
        let record = self.record.load(Acquire);
        // SAFETY: a non-null pointer came from `Arc::into_raw`, and its reference is
        // released only when `self` drops, which `&self` rules out; `ManuallyDrop` keeps
        // this borrow from releasing it.
        (!record.is_null()).then(|| ManuallyDrop::new(unsafe { Arc::from_raw(record) }))
    }

    /// The record, made now (with the ends `ends` returns) if no wait made it before.
    fn get_or_make<T: ?Sized>(
        &self,
        channel: *const T,
        ends: impl FnOnce() -> (usize, usize),
    ) -> Borrowed {
        if let Some(record) = self.get() {
            return record;
        }
        let (senders, receivers) = ends();
        let made = Arc::new(Holders::channel(
            self.created_at,
            channel,
            senders,
            receivers,
        ));
        let made = Arc::into_raw(made).cast_mut();
        match self
            .record
            .compare_exchange(ptr::null_mut(), made, AcqRel, Acquire)
        {
            // SAFETY: `made` came from `Arc::into_raw` just now and is now owned by `self`
            // (see `get`).
            Ok(_) => ManuallyDrop::new(unsafe { Arc::from_raw(made) }),
            Err(_) => {
                // SAFETY: the CAS failed, so `made` was never published: its reference is
                // still ours to release.
                drop(unsafe { Arc::from_raw(made) });
                self.get().expect("the CAS found a record")
            }
        }
    }

    /// A wait on the channel at `channel` returns `Pending`: names it for dumps and
    /// registers the record (made now, with the ends `ends` returns, if this is the first
    /// wait) if `waker` is the polled task's own. `channel` is the address the wait reason
    /// gives, which the record must repeat for a dump to pair them.
    pub(crate) fn note_pending<T: ?Sized>(
        &self,
        kind: SyncKind,
        channel: *const T,
        ends: impl FnOnce() -> (usize, usize),
        waker: &Waker,
    ) {
        crate::note_wait(kind, channel);
        let record = self.get_or_make(channel, ends);
        wait::register_wait(&record, waker);
    }

    /// A waiting future completes or is dropped: a registration it made during this poll
    /// no longer stands.
    pub(crate) fn unregister(&self) {
        if let Some(record) = self.get() {
            wait::unregister_wait(&record);
        }
    }

    /// The ends alive changed: tells the record, if there is one. Call it under the
    /// channel's lock, so the record sees the changes in order.
    pub(crate) fn publish_ends(&self, senders: usize, receivers: usize) {
        if let Some(record) = self.get() {
            record.set_ends(senders, receivers);
        }
    }
}

impl Drop for WaitRecord {
    fn drop(&mut self) {
        let record = *self.record.get_mut();
        if !record.is_null() {
            // SAFETY: the reference `self` owned (see `get`); nothing borrows it any more.
            drop(unsafe { Arc::from_raw(record) });
        }
    }
}
