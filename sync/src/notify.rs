//! [`Notify`]: wake one waiting task (or store one permit), or wake all current waiters.
//!
//! State, all under one mutex: a stored permit (at most one), a FIFO `Waitlist` of
//! registered [`Notified`] futures, and `calls`, the count of `notify_waiters` calls,
//! mirrored in an atomic so a `Notified` can note it when created without locking.
//!
//! Invariants: a node is in the list only while `Waiting`; a `Notified` created before a
//! `notify_waiters` call completes even if it was never polled (it compares `calls`); a
//! `notify_one` notification handed to a `Notified` that is then dropped unconsumed is
//! passed on (to the next waiter, or stored as the permit), so cancellation loses none.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use runnel_reactor::wait;

use crate::semaphore::waitlist;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WaiterState {
    Waiting,
    NotifiedOne,
    NotifiedAll,
}

type Waitlist = waitlist::Waitlist<WaiterState>;

struct State {
    permit: bool,
    waiters: Waitlist,
}

/// Notifies tasks: [`notify_one`](Self::notify_one) wakes one waiter or, with none,
/// stores a permit for the next [`notified`](Self::notified) call;
/// [`notify_waiters`](Self::notify_waiters) wakes everyone waiting now.
///
/// On runnel, a task waiting on a `Notify` that lives inside its own future (not in an
/// `Arc`, a `Box` or a `static`) can only be notified by itself: runnel reports it as a
/// `partial deadlock` (Go's `cond.Wait()` with no one left to signal).
///
/// ```
/// use std::sync::Arc;
/// use runnel_sync::Notify;
///
/// # futures::executor::block_on(async {
/// let notify = Arc::new(Notify::new());
/// notify.notify_one(); // stored: nobody waits yet
/// notify.notified().await; // consumes it at once
/// # });
/// ```
pub struct Notify {
    calls: AtomicUsize,
    state: Mutex<State>,
}

impl Notify {
    /// A `Notify` with no permit stored.
    pub fn new() -> Notify {
        Notify::const_new()
    }

    /// Like [`new`](Self::new), usable in a `static`.
    pub const fn const_new() -> Notify {
        Notify {
            calls: AtomicUsize::new(0),
            state: Mutex::new(State {
                permit: false,
                waiters: Waitlist::new(),
            }),
        }
    }

    /// A future that completes when this `Notify` is notified.
    ///
    /// It completes on the stored permit (consuming it), on a `notify_one` that picks it,
    /// or on any `notify_waiters` call made after it was **created** (even before its
    /// first poll). Call [`Notified::enable`] to be picked by `notify_one` before the
    /// first poll.
    ///
    /// **Cancel safety:** cancel-safe: a dropped `Notified` that had been picked by
    /// `notify_one` passes the notification on.
    pub fn notified(&self) -> Notified<'_> {
        Notified {
            notify: self,
            calls: self.calls.load(SeqCst),
            state: NotifiedState::Init,
        }
    }

    /// Wakes the longest-waiting registered [`Notified`], or stores a permit (at most
    /// one) for the next one if none waits.
    pub fn notify_one(&self) {
        let mut state = self.lock();
        let waker = notify_locked(&mut state, false);
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Like [`notify_one`](Self::notify_one), but wakes the most recent waiter.
    pub fn notify_last(&self) {
        let mut state = self.lock();
        let waker = notify_locked(&mut state, true);
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Wakes every [`Notified`] registered now or created before this call. Stores no
    /// permit.
    pub fn notify_waiters(&self) {
        let mut state = self.lock();
        self.calls.fetch_add(1, SeqCst);
        // Taken out under one lock so that a waiter registering meanwhile is not woken by
        // a call that happened before it was created.
        let mut wakers: Vec<Waker> = Vec::new();
        while let Some(head) = state.waiters.head() {
            state.waiters.unlink(head);
            let node = state.waiters.node_mut(head);
            node.state = WaiterState::NotifiedAll;
            wakers.extend(node.waker.take());
        }
        drop(state);
        for waker in wakers {
            waker.wake();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Never held across user code; a poisoned lock still holds a consistent state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Picks the first (or last) waiter, or stores the permit; returns the waker to wake.
fn notify_locked(state: &mut State, last: bool) -> Option<Waker> {
    let picked = if last {
        state.waiters.tail()
    } else {
        state.waiters.head()
    };
    match picked {
        Some(index) => {
            state.waiters.unlink(index);
            let node = state.waiters.node_mut(index);
            node.state = WaiterState::NotifiedOne;
            node.waker.take()
        }
        None => {
            state.permit = true;
            None
        }
    }
}

impl Default for Notify {
    fn default() -> Notify {
        Notify::new()
    }
}

impl fmt::Debug for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Notify")
            .field("permit", &state.permit)
            .field("waiting", &!state.waiters.is_empty())
            .finish()
    }
}

enum NotifiedState {
    Init,
    Waiting(usize),
    Done,
}

/// The future of [`Notify::notified`].
#[must_use = "futures do nothing unless polled"]
pub struct Notified<'a> {
    notify: &'a Notify,
    calls: usize,
    state: NotifiedState,
}

impl Notified<'_> {
    /// Registers this future as a waiter without polling it, so a `notify_one` from now
    /// on can pick it: the way to check a condition without missing a notification.
    /// Returns `true` if it is already notified (the next poll completes at once).
    ///
    /// ```
    /// use std::pin::pin;
    /// # futures::executor::block_on(async {
    /// let notify = runnel_sync::Notify::new();
    /// let mut notified = pin!(notify.notified());
    /// assert!(!notified.as_mut().enable());
    /// // ...check the condition here; a notify_one from now on is not lost...
    /// notify.notify_one();
    /// notified.await;
    /// # });
    /// ```
    pub fn enable(self: Pin<&mut Self>) -> bool {
        let this = self.get_mut();
        match this.state {
            NotifiedState::Init => this.register(None).is_ready(),
            NotifiedState::Waiting(index) => {
                let state = this.notify.lock();
                state.waiters.node(index).state != WaiterState::Waiting
            }
            NotifiedState::Done => true,
        }
    }

    fn register(&mut self, waker: Option<&Waker>) -> Poll<()> {
        let mut state = self.notify.lock();
        if self.notify.calls.load(SeqCst) != self.calls {
            self.state = NotifiedState::Done;
            return Poll::Ready(());
        }
        if state.permit {
            state.permit = false;
            self.state = NotifiedState::Done;
            return Poll::Ready(());
        }
        let index = state
            .waiters
            .push_back(WaiterState::Waiting, waker.cloned());
        self.state = NotifiedState::Waiting(index);
        crate::note_wait(crate::SyncKind::Notified, self.notify);
        if let Some(waker) = waker {
            // Only a holder of `&Notify` can wake us: the wait-for graph compares where
            // this `Notify` lives with the waiting task's own future.
            wait::register_wait_at(self.notify, waker);
        }
        Poll::Pending
    }
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        match this.state {
            NotifiedState::Init => this.register(Some(cx.waker())),
            NotifiedState::Waiting(index) => {
                let mut state = this.notify.lock();
                let node = state.waiters.node_mut(index);
                if node.state == WaiterState::Waiting {
                    match &node.waker {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        _ => node.waker = Some(cx.waker().clone()),
                    }
                    crate::note_wait(crate::SyncKind::Notified, this.notify);
                    wait::register_wait_at(this.notify, cx.waker());
                    return Poll::Pending;
                }
                state.waiters.free(index);
                this.state = NotifiedState::Done;
                drop(state);
                wait::unregister_wait_at(this.notify);
                Poll::Ready(())
            }
            NotifiedState::Done => Poll::Ready(()),
        }
    }
}

impl Drop for Notified<'_> {
    fn drop(&mut self) {
        let NotifiedState::Waiting(index) = self.state else {
            return;
        };
        wait::unregister_wait_at(self.notify);
        let mut state = self.notify.lock();
        let node_state = state.waiters.node(index).state;
        if node_state == WaiterState::Waiting {
            state.waiters.unlink(index);
        }
        state.waiters.free(index);
        let forwarded = if node_state == WaiterState::NotifiedOne {
            // Picked by notify_one but never completed: pass the notification on.
            notify_locked(&mut state, false)
        } else {
            None
        };
        drop(state);
        if let Some(waker) = forwarded {
            waker.wake();
        }
    }
}

impl fmt::Debug for Notified<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notified").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::task::noop_waker;
    use std::pin::pin;

    fn poll(f: Pin<&mut Notified<'_>>) -> Poll<()> {
        f.poll(&mut Context::from_waker(&noop_waker()))
    }

    #[test]
    fn permit_is_stored_once() {
        let n = Notify::new();
        n.notify_one();
        n.notify_one();
        assert!(poll(pin!(n.notified())).is_ready());
        assert!(
            poll(pin!(n.notified())).is_pending(),
            "only one permit is stored"
        );
    }

    #[test]
    fn notify_one_is_fifo_and_notify_last_lifo() {
        let n = Notify::new();
        let mut a = pin!(n.notified());
        let mut b = pin!(n.notified());
        let mut c = pin!(n.notified());
        assert!(poll(a.as_mut()).is_pending());
        assert!(poll(b.as_mut()).is_pending());
        assert!(poll(c.as_mut()).is_pending());
        n.notify_one();
        assert!(poll(a.as_mut()).is_ready());
        assert!(poll(b.as_mut()).is_pending());
        n.notify_last();
        assert!(poll(c.as_mut()).is_ready());
        assert!(poll(b.as_mut()).is_pending());
    }

    #[test]
    fn notify_waiters_reaches_created_but_unpolled() {
        let n = Notify::new();
        let early = n.notified();
        n.notify_waiters();
        let late = n.notified();
        assert!(poll(pin!(early)).is_ready());
        assert!(poll(pin!(late)).is_pending(), "created after the call");
        assert!(poll(pin!(n.notified())).is_pending(), "no permit stored");
    }

    #[test]
    fn dropped_pick_is_forwarded() {
        let n = Notify::new();
        let mut a = Box::pin(n.notified());
        let mut b = pin!(n.notified());
        assert!(poll(a.as_mut()).is_pending());
        assert!(poll(b.as_mut()).is_pending());
        n.notify_one(); // picks a
        drop(a); // ...which never completes: b gets it
        assert!(poll(b.as_mut()).is_ready());
        // With nobody else waiting, a dropped pick becomes the stored permit.
        let mut c = Box::pin(n.notified());
        assert!(poll(c.as_mut()).is_pending());
        n.notify_one();
        drop(c);
        assert!(poll(pin!(n.notified())).is_ready());
    }

    #[test]
    fn enable_registers_before_poll() {
        let n = Notify::new();
        let mut a = pin!(n.notified());
        assert!(!a.as_mut().enable());
        n.notify_one(); // goes to `a`, not to the permit
        assert!(poll(pin!(n.notified())).is_pending());
        assert!(a.as_mut().enable());
        assert!(poll(a.as_mut()).is_ready());
    }
}
