//! The wait record of a `oneshot`, `watch` or `broadcast` channel: where the channel was
//! created and how many of its ends are alive, for task dumps and deadlock/stall reports
//! (`runnel_reactor::wait::Holders::channel`; the wait-for graph never follows it).
//!
//! Invariants:
//! - the record is made on the channel's first wait that returns `Pending`, never on a
//!   path that does not wait, so a channel nobody waits on allocates nothing more;
//! - the channel's ends are published to it only once it exists (the channel tests that
//!   cheaply: under its lock for `watch` and `broadcast`, by a bit of its state word for
//!   `oneshot`), and a record is made with the ends alive at that moment;
//! - a waiting future registers the record in the polled task's wait slot when it returns
//!   `Pending` and unregisters it when it completes or is dropped.

use std::panic::Location;
use std::sync::{Arc, OnceLock};
use std::task::Waker;

use runnel_reactor::wait::{self, Holders};

use crate::SyncKind;

pub(crate) struct WaitRecord {
    created_at: &'static Location<'static>,
    record: OnceLock<Arc<Holders>>,
}

impl WaitRecord {
    pub(crate) const fn new(created_at: &'static Location<'static>) -> WaitRecord {
        WaitRecord {
            created_at,
            record: OnceLock::new(),
        }
    }

    /// The record, made now (with the ends `ends` returns) if no wait made it before.
    fn get_or_make<T: ?Sized>(
        &self,
        channel: *const T,
        ends: impl FnOnce() -> (usize, usize),
    ) -> &Arc<Holders> {
        self.record.get_or_init(|| {
            let (senders, receivers) = ends();
            Arc::new(Holders::channel(
                self.created_at,
                channel,
                senders,
                receivers,
            ))
        })
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
        wait::register_wait(record, waker);
    }

    /// Makes the record now if no wait has (for `oneshot`, which must make it before its
    /// state word says it exists; [`register`](Self::register) follows once the wait is
    /// known to return `Pending`).
    /// Out of line (as [`register`](Self::register)), to keep the channel's poll small.
    #[inline(never)]
    pub(crate) fn make(&self, channel: *const (), senders: usize, receivers: usize) {
        self.get_or_make(channel, || (senders, receivers));
    }

    /// Names a `Pending` wait on `channel` and registers the record, which
    /// [`make`](Self::make) made before.
    #[inline(never)]
    pub(crate) fn register(&self, kind: SyncKind, channel: *const (), waker: &Waker) {
        crate::note_wait(kind, channel);
        if let Some(record) = self.record.get() {
            wait::register_wait(record, waker);
        }
    }

    /// A waiting future completes or is dropped: a registration it made during this poll
    /// no longer stands.
    pub(crate) fn unregister(&self) {
        if let Some(record) = self.record.get() {
            wait::unregister_wait(record);
        }
    }

    /// The ends alive changed: tells the record, if there is one. Call it under the
    /// channel's lock, so the record sees the changes in order.
    pub(crate) fn publish_ends(&self, senders: usize, receivers: usize) {
        if let Some(record) = self.record.get() {
            record.set_ends(senders, receivers);
        }
    }

    /// The one sender is gone, for a channel whose sides each update only their own count
    /// (`oneshot`). Out of line: the channel calls it only once it knows a record exists,
    /// and its fast paths keep only the test.
    #[cold]
    #[inline(never)]
    pub(crate) fn sender_gone(&self) {
        if let Some(record) = self.record.get() {
            record.set_senders(0);
        }
    }

    /// The one receiver is dropped (see [`sender_gone`](Self::sender_gone)); a
    /// registration of its wait made in this poll ends with it.
    #[cold]
    #[inline(never)]
    pub(crate) fn receiver_gone(&self) {
        if let Some(record) = self.record.get() {
            record.set_receivers(0);
            wait::unregister_wait(record);
        }
    }

    /// What the record says now, if a wait made it.
    #[cfg(test)]
    pub(crate) fn snapshot(&self) -> Option<runnel_reactor::wait::HoldersSnapshot> {
        self.record.get().map(|record| record.snapshot())
    }
}
