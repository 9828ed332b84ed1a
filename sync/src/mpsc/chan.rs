//! The state shared by both ends of an mpsc channel (bounded and unbounded alike) and its
//! capacity accounting.
//!
//! Invariants, all kept under the one mutex:
//! - slots in use = `queue.len() + reserved` ≤ `bound` (`usize::MAX` when unbounded);
//!   `reserved` counts permits handed out (to a `Permit`, an `OwnedPermit`, or a waiting
//!   sender granted a slot that has not been polled yet) but not yet used or released.
//! - A free slot exists only while no sender waits: whenever a slot frees (a message is
//!   received, a permit is released) it is handed directly to the oldest waiting sender.
//!   So blocked senders are served in FIFO order and `try_send` cannot overtake them.
//! - After the receiver closes, no waiter is granted a slot; waiters (granted but not yet
//!   polled ones included, whose slot is returned) see `Closed`. Buffered messages and
//!   outstanding permits still reach the receiver; it sees the end once the queue is empty
//!   and no permit is outstanding.
//! - Wakers are taken out under the lock and woken after it is released; messages that
//!   must be dropped are dropped after it is released, so no foreign code runs locked.
//! - The wait record (`runnel_reactor::wait::Holders::channel`, for task dumps: where the
//!   channel was created, how many ends are alive) is made on the first wait that returns
//!   `Pending`, and its ends are updated under the lock whenever they change, so a dump
//!   reads the count as of its last change. A waiting `recv` or `send` registers it in the
//!   task's wait slot; the wait-for graph never follows it.

use std::collections::VecDeque;
use std::mem;
use std::panic::Location;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};

use runnel_reactor::wait::{self, Holders};
use slab::Slab;

use super::error::{SendError, TryRecvError, TrySendError};
use crate::wake_list::{wake_all, WakeList};

// `repr(C)`: the state's mutex first, where the message paths found it before the wait
// record's fields came (reordered, the lock word moved off offset 0 and every `try_send`
// and `poll_recv` paid a few instructions of address arithmetic).
#[repr(C)]
pub(super) struct Chan<T> {
    state: Mutex<State<T>>,
    bound: usize,
    created_at: &'static Location<'static>,
    /// The wait record (see the module docs): made on the first `Pending` wait, under the
    /// state lock, and updated only under it. Outside `State` so that the message paths'
    /// code is what it was without it.
    record: OnceLock<Arc<Holders>>,
}

struct State<T> {
    queue: VecDeque<T>,
    reserved: usize,
    senders: usize,
    rx_closed: bool,
    rx_dropped: bool,
    rx_waker: Option<Waker>,
    /// Senders waiting for a slot, keyed by the index their `Reserve` future keeps.
    waiters: Slab<Waiter>,
    /// Keys of `Waiting` entries, oldest first.
    order: VecDeque<usize>,
    /// `Sender::closed()` futures.
    closed_wakers: WakeList,
}

enum Waiter {
    Waiting(Waker),
    /// A slot was handed over (already counted in `reserved`); the future takes it when
    /// polled, or returns it when dropped.
    Granted,
    Closed,
}

impl<T> State<T> {
    fn available(&self, bound: usize) -> usize {
        bound - self.queue.len() - self.reserved
    }

    /// A slot just freed: hands it to the oldest waiting sender, if any.
    fn grant_next(&mut self) -> Option<Waker> {
        if self.rx_closed {
            return None;
        }
        let key = self.order.pop_front()?;
        match mem::replace(&mut self.waiters[key], Waiter::Granted) {
            Waiter::Waiting(waker) => {
                self.reserved += 1;
                Some(waker)
            }
            Waiter::Granted | Waiter::Closed => unreachable!("only waiting senders are queued"),
        }
    }

    /// Closes the receiving side: every waiting sender fails, and slots granted to senders
    /// that have not taken them yet are returned.
    fn close(&mut self) -> Vec<Waker> {
        self.rx_closed = true;
        self.order.clear();
        let mut wakers = self.closed_wakers.take_all();
        for (_, waiter) in self.waiters.iter_mut() {
            match mem::replace(waiter, Waiter::Closed) {
                Waiter::Waiting(waker) => wakers.push(waker),
                Waiter::Granted => self.reserved -= 1,
                Waiter::Closed => {}
            }
        }
        // The receiver may now be able to see the end.
        wakers.extend(self.rx_waker.take());
        wakers
    }

    fn is_finished(&self) -> bool {
        self.queue.is_empty() && self.reserved == 0 && (self.rx_closed || self.senders == 0)
    }
}

impl<T> Chan<T> {
    pub(super) fn new(bound: usize, created_at: &'static Location<'static>) -> Self {
        Chan {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                reserved: 0,
                senders: 1,
                rx_closed: false,
                rx_dropped: false,
                rx_waker: None,
                waiters: Slab::new(),
                order: VecDeque::new(),
                closed_wakers: WakeList::new(),
            }),
            bound,
            created_at,
            record: OnceLock::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // The state is consistent at every unlock (no user code runs under the lock), so a
        // panic elsewhere while it was held leaves nothing half-done.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn bound(&self) -> usize {
        self.bound
    }

    /// Returning `Pending` (under the lock): names the wait for dumps and reports, and
    /// registers the channel's wait record (made now if this is the first wait) if `cx`
    /// carries the polled task's own waker.
    fn note_pending(&self, state: &mut State<T>, kind: crate::SyncKind, cx: &Context<'_>) {
        crate::note_wait(kind, self);
        let record = self.record.get_or_init(|| {
            let receivers = usize::from(!state.rx_dropped);
            Arc::new(Holders::channel(
                self.created_at,
                self,
                state.senders,
                receivers,
            ))
        });
        // Under the lock: this may drop an older registration's `Arc<Holders>`, which runs
        // no foreign code.
        wait::register_wait(record, cx.waker());
    }

    /// A waiting future is dropped: a registration it made during this poll no longer
    /// stands.
    fn unregister(&self) {
        if let Some(record) = self.record.get() {
            wait::unregister_wait(record);
        }
    }

    /// Under the lock: tells the wait record, if any, the ends alive now.
    fn publish_ends(&self, state: &State<T>) {
        if let Some(record) = self.record.get() {
            record.set_ends(state.senders, usize::from(!state.rx_dropped));
        }
    }

    // ----- senders -----

    pub(super) fn add_sender(&self) {
        let mut state = self.lock();
        state.senders += 1;
        self.publish_ends(&state);
    }

    /// Adds a sender unless every sender is gone (the upgrade of a weak sender).
    pub(super) fn try_add_sender(&self) -> bool {
        let mut state = self.lock();
        if state.senders == 0 {
            return false;
        }
        state.senders += 1;
        self.publish_ends(&state);
        true
    }

    pub(super) fn sender_count(&self) -> usize {
        self.lock().senders
    }

    pub(super) fn drop_sender(&self) {
        let mut state = self.lock();
        state.senders -= 1;
        self.publish_ends(&state);
        let waker = if state.senders == 0 {
            state.rx_waker.take()
        } else {
            None
        };
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Sends without waiting: `Full` if no slot is free (or a sender waits before us).
    pub(super) fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let mut state = self.lock();
        if state.rx_closed {
            return Err(TrySendError::Closed(value));
        }
        if state.available(self.bound) == 0 {
            return Err(TrySendError::Full(value));
        }
        debug_assert!(state.order.is_empty(), "a free slot while senders wait");
        state.queue.push_back(value);
        let waker = state.rx_waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Takes a slot without waiting.
    pub(super) fn try_reserve(&self) -> Result<(), TrySendError<()>> {
        let mut state = self.lock();
        if state.rx_closed {
            return Err(TrySendError::Closed(()));
        }
        if state.available(self.bound) == 0 {
            return Err(TrySendError::Full(()));
        }
        state.reserved += 1;
        Ok(())
    }

    /// Takes a slot, queueing behind earlier waiters. `key` is the caller's waiter entry;
    /// it is `None` again once this returns `Ready`.
    pub(super) fn poll_reserve(
        &self,
        key: &mut Option<usize>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError<()>>> {
        let mut state = self.lock();
        let Some(k) = *key else {
            if state.rx_closed {
                return Poll::Ready(Err(SendError(())));
            }
            if state.available(self.bound) > 0 {
                state.reserved += 1;
                return Poll::Ready(Ok(()));
            }
            let k = state.waiters.insert(Waiter::Waiting(cx.waker().clone()));
            state.order.push_back(k);
            *key = Some(k);
            self.note_pending(&mut state, crate::SyncKind::ChannelSend, cx);
            return Poll::Pending;
        };
        match &mut state.waiters[k] {
            Waiter::Waiting(waker) => {
                if !waker.will_wake(cx.waker()) {
                    *waker = cx.waker().clone();
                }
                self.note_pending(&mut state, crate::SyncKind::ChannelSend, cx);
                Poll::Pending
            }
            Waiter::Granted => {
                state.waiters.remove(k);
                *key = None;
                Poll::Ready(Ok(()))
            }
            Waiter::Closed => {
                state.waiters.remove(k);
                *key = None;
                Poll::Ready(Err(SendError(())))
            }
        }
    }

    /// Sends `value` (taken from `value` only on `Ready`), queueing behind earlier waiting
    /// senders while the channel is full: `try_send` and `poll_reserve` followed by
    /// `send_reserved`, in one lock per poll. A waiting sender keeps its value; when a
    /// slot is granted to it, its next poll uses the slot and pushes the value under the
    /// same lock that sees the grant (separately, that was two more lock round trips per
    /// blocked message). The value is never moved into the
    /// queue by anyone but this poll, so a dropped send never sent.
    pub(super) fn poll_send(
        &self,
        key: &mut Option<usize>,
        value: &mut Option<T>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError<T>>> {
        let mut state = self.lock();
        let granted = match *key {
            None => {
                if state.rx_closed {
                    drop(state);
                    return Poll::Ready(Err(SendError(take_value(value))));
                }
                if state.available(self.bound) == 0 {
                    let k = state.waiters.insert(Waiter::Waiting(cx.waker().clone()));
                    state.order.push_back(k);
                    *key = Some(k);
                    self.note_pending(&mut state, crate::SyncKind::ChannelSend, cx);
                    return Poll::Pending;
                }
                debug_assert!(state.order.is_empty(), "a free slot while senders wait");
                false
            }
            Some(k) => match &mut state.waiters[k] {
                Waiter::Waiting(waker) => {
                    if !waker.will_wake(cx.waker()) {
                        *waker = cx.waker().clone();
                    }
                    self.note_pending(&mut state, crate::SyncKind::ChannelSend, cx);
                    return Poll::Pending;
                }
                Waiter::Granted => {
                    state.waiters.remove(k);
                    *key = None;
                    true
                }
                Waiter::Closed => {
                    state.waiters.remove(k);
                    *key = None;
                    drop(state);
                    return Poll::Ready(Err(SendError(take_value(value))));
                }
            },
        };
        if granted {
            // The granted slot (counted in `reserved`) now holds the message. A grant is
            // only ever seen with the receiver open: closing turns grants into `Closed`.
            debug_assert!(!state.rx_closed, "a granted slot after close");
            state.reserved -= 1;
        }
        state.queue.push_back(take_value(value));
        let waker = state.rx_waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        Poll::Ready(Ok(()))
    }

    /// A reserving future is dropped before completing: leave the queue, or pass on a slot
    /// granted to it, so cancelling loses no capacity.
    pub(super) fn cancel_reserve(&self, key: &mut Option<usize>) {
        let Some(k) = key.take() else { return };
        let mut state = self.lock();
        self.unregister();
        let waker = match state.waiters.remove(k) {
            Waiter::Waiting(_waker) => {
                state.order.retain(|&queued| queued != k);
                None
            }
            Waiter::Granted => {
                state.reserved -= 1;
                state.grant_next()
            }
            Waiter::Closed => None,
        };
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Uses a reserved slot. After the receiver is dropped the value is returned instead,
    /// for the caller to drop outside the lock.
    pub(super) fn send_reserved(&self, value: T) -> Option<T> {
        let mut state = self.lock();
        state.reserved -= 1;
        if state.rx_dropped {
            // Closed, so no waiter can take the freed slot.
            return Some(value);
        }
        state.queue.push_back(value);
        let waker = state.rx_waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        None
    }

    /// Returns an unused reserved slot.
    pub(super) fn release(&self) {
        let mut state = self.lock();
        state.reserved -= 1;
        let waker = state.grant_next();
        // After close, the receiver may be waiting for the last permit to go.
        let rx_waker = if state.rx_closed {
            state.rx_waker.take()
        } else {
            None
        };
        drop(state);
        waker.into_iter().chain(rx_waker).for_each(Waker::wake);
    }

    /// Sends on an unbounded channel: never full.
    pub(super) fn send_unbounded(&self, value: T) -> Result<(), SendError<T>> {
        match self.try_send(value) {
            Ok(()) => Ok(()),
            Err(TrySendError::Closed(value)) => Err(SendError(value)),
            Err(TrySendError::Full(_)) => unreachable!("an unbounded channel is never full"),
        }
    }

    pub(super) fn is_closed(&self) -> bool {
        self.lock().rx_closed
    }

    pub(super) fn poll_closed(&self, key: &mut Option<usize>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.lock();
        if state.rx_closed {
            state.closed_wakers.remove(key);
            return Poll::Ready(());
        }
        state.closed_wakers.register(key, cx.waker());
        Poll::Pending
    }

    pub(super) fn cancel_closed(&self, key: &mut Option<usize>) {
        if key.is_some() {
            self.lock().closed_wakers.remove(key);
        }
    }

    pub(super) fn capacity(&self) -> usize {
        let state = self.lock();
        state.available(self.bound)
    }

    // ----- receiver -----

    /// Takes up to `limit` (≥ 1) messages into `out`, handing each freed slot to a waiting
    /// sender. Only a `Ready` result takes anything, so a cancelled receive loses nothing.
    pub(super) fn poll_recv_into(
        &self,
        cx: &mut Context<'_>,
        out: &mut impl Extend<T>,
        limit: usize,
    ) -> Poll<usize> {
        let mut state = self.lock();
        let n = state.queue.len().min(limit);
        if n > 0 {
            out.extend(state.queue.drain(..n));
            let mut wakers = Vec::new();
            for _ in 0..n {
                match state.grant_next() {
                    Some(waker) => wakers.push(waker),
                    None => break,
                }
            }
            // Our own waker is no longer needed: nothing should wake us for this receive.
            let stale = state.rx_waker.take();
            drop(state);
            drop(stale);
            wake_all(wakers);
            return Poll::Ready(n);
        }
        if state.is_finished() {
            return Poll::Ready(0);
        }
        match &state.rx_waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => state.rx_waker = Some(cx.waker().clone()),
        }
        self.note_pending(&mut state, crate::SyncKind::ChannelRecv, cx);
        Poll::Pending
    }

    /// Receives one message; the fast path of [`poll_recv_into`](Self::poll_recv_into).
    pub(super) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut state = self.lock();
        if let Some(value) = state.queue.pop_front() {
            let waker = state.grant_next();
            let stale = state.rx_waker.take();
            drop(state);
            drop(stale);
            if let Some(waker) = waker {
                waker.wake();
            }
            return Poll::Ready(Some(value));
        }
        if state.is_finished() {
            return Poll::Ready(None);
        }
        match &state.rx_waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => state.rx_waker = Some(cx.waker().clone()),
        }
        self.note_pending(&mut state, crate::SyncKind::ChannelRecv, cx);
        Poll::Pending
    }

    /// A receive future is dropped while waiting: forget its waker so the channel does not
    /// keep the task's waker alive (a stray waker makes the deadlock detector say "maybe").
    pub(super) fn cancel_recv(&self) {
        let mut state = self.lock();
        self.unregister();
        let stale = state.rx_waker.take();
        drop(state);
        drop(stale);
    }

    pub(super) fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut state = self.lock();
        if let Some(value) = state.queue.pop_front() {
            let waker = state.grant_next();
            drop(state);
            if let Some(waker) = waker {
                waker.wake();
            }
            return Ok(value);
        }
        if state.is_finished() {
            Err(TryRecvError::Disconnected)
        } else {
            Err(TryRecvError::Empty)
        }
    }

    pub(super) fn close_rx(&self) {
        let wakers = {
            let mut state = self.lock();
            if state.rx_closed {
                return;
            }
            state.close()
        };
        wake_all(wakers);
    }

    /// The receiver is dropped: close, and drop the buffered messages (outside the lock).
    pub(super) fn drop_rx(&self) {
        let (wakers, queue) = {
            let mut state = self.lock();
            let wakers = if state.rx_closed {
                Vec::new()
            } else {
                state.close()
            };
            state.rx_dropped = true;
            self.publish_ends(&state);
            (wakers, mem::take(&mut state.queue))
        };
        wake_all(wakers);
        drop(queue);
    }

    pub(super) fn len(&self) -> usize {
        self.lock().queue.len()
    }

    pub(super) fn is_rx_side_closed(&self) -> bool {
        let state = self.lock();
        state.rx_closed || state.senders == 0
    }
}

/// The value a send future still owns; it is taken exactly once, on `Ready`.
fn take_value<T>(value: &mut Option<T>) -> T {
    value
        .take()
        .expect("runnel_sync: send future polled after completion")
}
