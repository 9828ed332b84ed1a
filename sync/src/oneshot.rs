//! A channel for sending a single value between tasks, with tokio's API
//! (`tokio::sync::oneshot`).
//!
//! Lock-free: one atomic state word and three cells (the value, the receiver's waker, the
//! sender's `closed()` waker). The sender *completes* exactly once (it sends, fails to
//! send, or is dropped: one read-modify-write that sets `COMPLETE`, with `VALUE` if a value
//! was delivered); the receiver *closes* at most once in effect (`close` or drop: the RMW
//! that first sets `CLOSED`). Which side may touch a cell follows from those transitions:
//!
//! - **value**: the sender writes it before completing and takes it back only if its
//!   completion found `CLOSED` (then `VALUE` is never set). The receiver reads it only
//!   after seeing `VALUE` (acquire), and is then its only user. A send after the receiver
//!   closed fails and returns the value; a value sent before stays receivable.
//! - **receiver's waker**: written by the receiver only while `RX_WAKER` is clear, then
//!   published by setting `RX_WAKER`. The sender takes it (and wakes it) only if its
//!   completion found `RX_WAKER` set. To replace it, or on drop, the receiver clears
//!   `RX_WAKER` first and keeps its hands off the cell if `COMPLETE` was already set (the
//!   sender is taking it); if setting `RX_WAKER` finds `COMPLETE` already there, the sender
//!   never saw it and the receiver takes it back. So no stale waker outlives the wait.
//! - **sender's `closed()` waker**: the same, mirrored: published with `TX_WAKER`, taken by
//!   the receiver's closing RMW if it found `TX_WAKER`, cleared by the sender's completion
//!   (which then drops it) while the receiver is open.
//!
//! Every RMW is `AcqRel` and every load `Acquire`, so a cell's writes happen before the
//! other side's access that the bit hands it to. The protocol is model-checked with loom
//! (`loom_tests`, `RUSTFLAGS="--cfg loom" cargo test -p runnel-sync --lib --release loom`).
//!
//! It used to be one `std::sync::Mutex` around the state: four lock/unlock pairs per
//! channel (send, the waiting poll, the ready poll, the receiver's drop), which made a
//! ping-pong between two tasks 7–9 % slower than tokio's oneshot on the same runtime and
//! ~100 instructions per channel more (callgrind, the harness's `oneshot_ping_pong` row).
//!
//! Deadlock detector: a task waiting here has its waker held by the channel, so the
//! detector says "maybe" (never a false report).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::block_on::block_on;
use crate::loom::atomic::{AtomicUsize, Ordering::*};
use crate::loom::{Arc, UnsafeCell};

pub mod error {
    //! Errors of the oneshot channel (`tokio::sync::oneshot::error`).

    use std::fmt;

    /// The sender was dropped without sending a value.
    #[derive(Debug, Eq, PartialEq, Clone)]
    pub struct RecvError(pub(super) ());

    impl fmt::Display for RecvError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("channel closed")
        }
    }

    impl std::error::Error for RecvError {}

    /// Why [`try_recv`](super::Receiver::try_recv) returned no value.
    #[derive(Debug, Eq, PartialEq, Clone)]
    pub enum TryRecvError {
        /// No value yet; the sender may still send.
        Empty,
        /// No value will ever come: the sender was dropped, or the value was already taken.
        Closed,
    }

    impl fmt::Display for TryRecvError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                TryRecvError::Empty => f.write_str("channel empty"),
                TryRecvError::Closed => f.write_str("channel closed"),
            }
        }
    }

    impl std::error::Error for TryRecvError {}
}

use error::{RecvError, TryRecvError};

/// The receiver's waker is in `rx_waker`, for the sender's completion to take.
const RX_WAKER: usize = 1;
/// The sender's `closed()` waker is in `tx_waker`, for the receiver's close to take.
const TX_WAKER: usize = 2;
/// The sender is done: it sent, failed to send, or was dropped. Set once.
const COMPLETE: usize = 4;
/// Set with `COMPLETE` when the value cell holds the sent value.
const VALUE: usize = 8;
/// The receiver closed or was dropped.
const CLOSED: usize = 16;

struct Inner<T> {
    state: AtomicUsize,
    value: UnsafeCell<Option<T>>,
    rx_waker: UnsafeCell<Option<Waker>>,
    tx_waker: UnsafeCell<Option<Waker>>,
}

// SAFETY: each cell is used by one side at a time, handed over by the state word's
// AcqRel transitions (see the module docs); what crosses threads is a `T` (moved, so
// `T: Send`) and `Waker`s (`Send + Sync`). Nothing hands out a `&T` to both sides.
unsafe impl<T: Send> Send for Inner<T> {}
// SAFETY: as above: shared access goes through the state word's ownership rules.
unsafe impl<T: Send> Sync for Inner<T> {}

impl<T> Inner<T> {
    /// The sender's one completion: sets `COMPLETE` (and `VALUE` if `with_value` and the
    /// receiver is open), and while the receiver is open clears `TX_WAKER`, taking the
    /// sender's own `closed()` waker back. Wakes the receiver if its waker was published.
    /// Returns the state before.
    fn complete(&self, with_value: bool) -> usize {
        let mut cur = self.state.load(Acquire);
        let prev = loop {
            let mut new = cur | COMPLETE;
            if cur & CLOSED == 0 {
                if with_value {
                    new |= VALUE;
                }
                new &= !TX_WAKER;
            }
            match self.state.compare_exchange_weak(cur, new, AcqRel, Acquire) {
                Ok(_) => break cur,
                Err(actual) => cur = actual,
            }
        };
        if prev & (CLOSED | TX_WAKER) == TX_WAKER {
            // SAFETY: the RMW above cleared TX_WAKER while the receiver was open, so the
            // receiver's close will not look at the cell, and only this sender writes it.
            let stale = self.tx_waker.with_mut(|w| unsafe { (*w).take() });
            drop(stale);
        }
        if prev & RX_WAKER != 0 {
            // SAFETY: the RMW above is the sender's only completion and found the
            // receiver's waker published; the receiver checks COMPLETE before touching the
            // cell again, so it is ours.
            let rx = self.rx_waker.with_mut(|w| unsafe { (*w).take() });
            if let Some(waker) = rx {
                waker.wake();
            }
        }
        prev
    }
}

/// Stores `waker` in a waker cell unless the one there already wakes the same task.
fn keep_or_store(cell: &mut Option<Waker>, waker: &Waker) {
    match cell {
        Some(old) if old.will_wake(waker) => {}
        _ => *cell = Some(waker.clone()),
    }
}

/// Creates a oneshot channel.
///
/// ```
/// # futures::executor::block_on(async {
/// let (tx, rx) = runnel_sync::oneshot::channel();
/// tx.send(3).unwrap();
/// assert_eq!(rx.await, Ok(3));
/// # });
/// ```
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let inner = Arc::new(Inner {
        state: AtomicUsize::new(0),
        value: UnsafeCell::new(None),
        rx_waker: UnsafeCell::new(None),
        tx_waker: UnsafeCell::new(None),
    });
    (
        Sender {
            inner: Some(inner.clone()),
        },
        Receiver {
            inner,
            taken: false,
        },
    )
}

/// Sends the channel's one value. Dropping it unsent makes the receiver get [`RecvError`].
pub struct Sender<T> {
    /// `None` once sent.
    inner: Option<Arc<Inner<T>>>,
}

/// Receives the channel's value: await it (it is a `Future` of `Result<T, RecvError>`) or
/// use [`try_recv`](Receiver::try_recv).
///
/// Cancel safety: awaiting `&mut rx` is cancel-safe: the value is taken only when the
/// future completes, and a dropped wait leaves it in the channel.
pub struct Receiver<T> {
    inner: Arc<Inner<T>>,
    /// This receiver returned its result (or `try_recv` took the value).
    taken: bool,
}

impl<T> Sender<T> {
    /// Sends `value`, consuming the sender. Fails, returning the value, if the receiver
    /// was closed or dropped (the receiver then sees the channel end).
    pub fn send(mut self, value: T) -> Result<(), T> {
        let inner = self.inner.take().expect("a sender is used at most once");
        // Stored even if the receiver already closed (`complete` then hands it back):
        // checking first would cost a load on every send for the rare failing one.
        // SAFETY: before the sender completes, only the sender touches the value cell
        // (the receiver reads it only after seeing VALUE, which `complete` sets).
        inner.value.with_mut(|v| unsafe { *v = Some(value) });
        let prev = inner.complete(true);
        if prev & CLOSED != 0 {
            // SAFETY: the receiver closed first, so VALUE was not set and the receiver
            // never reads the cell: it is still the sender's.
            let value = inner.value.with_mut(|v| unsafe { (*v).take() });
            return Err(value.expect("the value just stored"));
        }
        Ok(())
    }

    /// Whether the receiver was closed or dropped (a send would fail).
    pub fn is_closed(&self) -> bool {
        self.inner().state.load(Acquire) & CLOSED != 0
    }

    /// Completes when the receiver is closed or dropped, e.g. to stop computing a value
    /// nobody will read.
    ///
    /// Cancel safety: cancel-safe.
    pub async fn closed(&mut self) {
        std::future::poll_fn(|cx| self.poll_closed(cx)).await
    }

    /// Polls for the receiver being closed or dropped. Only the waker of the latest call
    /// is woken.
    pub fn poll_closed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let inner = self.inner();
        let state = inner.state.load(Acquire);
        if state & CLOSED != 0 {
            return Poll::Ready(());
        }
        if state & TX_WAKER != 0 && inner.state.fetch_and(!TX_WAKER, AcqRel) & CLOSED != 0 {
            // The receiver's close found our waker published: it takes it.
            return Poll::Ready(());
        }
        // SAFETY: TX_WAKER is clear (only this sender sets it) and any close from now on
        // finds it clear, so the receiver does not read the cell: it is ours.
        inner
            .tx_waker
            .with_mut(|w| unsafe { keep_or_store(&mut *w, cx.waker()) });
        if inner.state.fetch_or(TX_WAKER, AcqRel) & CLOSED != 0 {
            // SAFETY: the receiver closed before our waker was published, so its close
            // did not take it; nobody else reads the cell.
            let waker = inner.tx_waker.with_mut(|w| unsafe { (*w).take() });
            drop(waker);
            return Poll::Ready(());
        }
        Poll::Pending
    }

    fn inner(&self) -> &Inner<T> {
        // `send` consumes the sender, so only `drop` can see `None`.
        self.inner.as_ref().expect("a sender is used at most once")
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            inner.complete(false);
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

impl<T> Receiver<T> {
    /// Takes the value if it has been sent: [`TryRecvError::Empty`] if not yet,
    /// [`TryRecvError::Closed`] if it never will be (sender dropped, or value taken).
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        if self.taken {
            return Err(TryRecvError::Closed);
        }
        let state = self.inner.state.load(Acquire);
        if state & VALUE != 0 {
            return Ok(self.take_value());
        }
        if state & COMPLETE != 0 {
            Err(TryRecvError::Closed)
        } else {
            Err(TryRecvError::Empty)
        }
    }

    /// Closes the channel: a later send fails. A value sent before this can still be
    /// received with [`try_recv`](Self::try_recv) or by awaiting.
    pub fn close(&mut self) {
        let prev = self.inner.state.fetch_or(CLOSED, AcqRel);
        if prev & (CLOSED | TX_WAKER) == TX_WAKER {
            // SAFETY: this RMW closed the channel and found the sender's waker published:
            // the sender leaves the cell alone from now on (it sees CLOSED first).
            let waker = self.inner.tx_waker.with_mut(|w| unsafe { (*w).take() });
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }

    /// Whether the receiver has nothing more to give: it returned its result already, or
    /// the sender is gone without a value.
    pub fn is_terminated(&self) -> bool {
        self.taken || self.inner.state.load(Acquire) & (COMPLETE | VALUE) == COMPLETE
    }

    /// Whether no value is waiting to be taken.
    pub fn is_empty(&self) -> bool {
        self.taken || self.inner.state.load(Acquire) & VALUE == 0
    }

    /// Waits for the value from synchronous code, parking the calling thread.
    ///
    /// Blocks the thread: do not call it from async code; await the receiver there.
    pub fn blocking_recv(mut self) -> Result<T, RecvError> {
        block_on(&mut self)
    }

    /// Takes the value, once VALUE was seen.
    fn take_value(&mut self) -> T {
        self.taken = true;
        // SAFETY: VALUE was seen (acquire), so the sender stored the value and completed;
        // it never touches the cell again, and `taken` keeps us from reading it twice.
        let value = self.inner.value.with_mut(|v| unsafe { (*v).take() });
        value.expect("VALUE is set only with a value stored")
    }

    /// The result, once COMPLETE was seen in `state`.
    fn finish(&mut self, state: usize) -> Poll<Result<T, RecvError>> {
        if state & VALUE != 0 {
            Poll::Ready(Ok(self.take_value()))
        } else {
            self.taken = true;
            Poll::Ready(Err(RecvError(())))
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, RecvError>;

    /// # Panics
    ///
    /// If polled again after it completed (as tokio's receiver does).
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        assert!(
            !this.taken,
            "oneshot::Receiver polled after it completed; a oneshot value can be received once"
        );
        let inner = &*this.inner;
        let state = inner.state.load(Acquire);
        if state & COMPLETE != 0 {
            return this.finish(state);
        }
        if state & RX_WAKER != 0 {
            let state = inner.state.fetch_and(!RX_WAKER, AcqRel);
            if state & COMPLETE != 0 {
                // The sender's completion found our waker: it takes it.
                return this.finish(state);
            }
        }
        // SAFETY: RX_WAKER is clear (only this receiver sets it), so the sender's
        // completion will not read the cell until we publish it: it is ours.
        inner
            .rx_waker
            .with_mut(|w| unsafe { keep_or_store(&mut *w, cx.waker()) });
        let state = inner.state.fetch_or(RX_WAKER, AcqRel);
        if state & COMPLETE != 0 {
            // SAFETY: the sender completed before our waker was published, so it did not
            // take it, and it completes only once: the cell is still ours.
            let waker = inner.rx_waker.with_mut(|w| unsafe { (*w).take() });
            drop(waker);
            return this.finish(state);
        }
        crate::note_wait(crate::SyncKind::ChannelRecv, inner);
        Poll::Pending
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let inner = &*self.inner;
        let mut cur = inner.state.load(Acquire);
        if cur & COMPLETE != 0 {
            // The sender is gone: nobody will look at CLOSED or at either waker cell
            // again (its completion took its own waker, and ours if published), so the
            // usual end of a received value costs no read-modify-write here.
            if cur & VALUE != 0 && !self.taken {
                // SAFETY: VALUE was seen, so the sender is done with the cell, and this
                // receiver has not taken the value: it is ours to drop.
                let value = inner.value.with_mut(|v| unsafe { (*v).take() });
                drop(value);
            }
            return;
        }
        let prev = loop {
            let new = (cur | CLOSED) & !RX_WAKER;
            match inner.state.compare_exchange_weak(cur, new, AcqRel, Acquire) {
                Ok(_) => break cur,
                Err(actual) => cur = actual,
            }
        };
        if prev & (COMPLETE | RX_WAKER) == RX_WAKER {
            // SAFETY: we cleared RX_WAKER before the sender completed, so its completion
            // will not read the cell. Dropped now, so the channel does not keep a stopped
            // wait's waker alive.
            let rx = inner.rx_waker.with_mut(|w| unsafe { (*w).take() });
            drop(rx);
        }
        if prev & VALUE != 0 && !self.taken {
            // SAFETY: VALUE was seen, so the sender is done with the cell, and this
            // receiver has not taken the value (`taken`): it is ours to drop.
            let value = inner.value.with_mut(|v| unsafe { (*v).take() });
            drop(value);
        }
        if prev & (CLOSED | TX_WAKER) == TX_WAKER {
            // SAFETY: as in `close`: this RMW closed the channel and found the sender's
            // waker published; the sender sees CLOSED before touching the cell again.
            let tx = inner.tx_waker.with_mut(|w| unsafe { (*w).take() });
            if let Some(waker) = tx {
                waker.wake();
            }
        }
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

#[cfg(all(test, loom))]
mod loom_tests;

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize as StdAtomic, Ordering::SeqCst};
    use std::sync::Arc as StdArc;
    use std::task::Wake;

    /// A waker whose clones can be counted (`StdArc::strong_count`) and whose wakes are.
    struct Count(StdAtomic);

    impl Wake for Count {
        fn wake(self: StdArc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    fn counted() -> (StdArc<Count>, Waker) {
        let count = StdArc::new(Count(StdAtomic::new(0)));
        (count.clone(), Waker::from(count))
    }

    /// References besides `count` itself and the test's `waker`.
    fn held(count: &StdArc<Count>) -> usize {
        StdArc::strong_count(count) - 2
    }

    #[test]
    fn the_channel_keeps_no_waker_after_the_wait_ends() {
        let (count, waker) = counted();
        let mut cx = Context::from_waker(&waker);

        // Woken by the send: the sender takes the waker and wakes it.
        let (tx, mut rx) = channel::<u8>();
        assert!(Pin::new(&mut rx).poll(&mut cx).is_pending());
        assert!(
            Pin::new(&mut rx).poll(&mut cx).is_pending(),
            "a second poll reuses it"
        );
        assert_eq!(held(&count), 1);
        tx.send(4).unwrap();
        assert_eq!(count.0.load(SeqCst), 1);
        assert_eq!(held(&count), 0);
        assert_eq!(Pin::new(&mut rx).poll(&mut cx), Poll::Ready(Ok(4)));

        // The receiver dropped while waiting takes its waker back.
        let (tx, mut rx) = channel::<u8>();
        assert!(Pin::new(&mut rx).poll(&mut cx).is_pending());
        drop(rx);
        assert_eq!(held(&count), 0);
        assert!(tx.is_closed());

        // The sender's closed() waker goes with its send.
        let (mut tx, rx) = channel::<u8>();
        assert!(tx.poll_closed(&mut cx).is_pending());
        assert_eq!(held(&count), 1);
        tx.send(1).unwrap();
        assert_eq!(held(&count), 0);
        drop(rx);
        assert_eq!(count.0.load(SeqCst), 1, "no wake but the send's");
    }

    #[test]
    fn a_send_that_fails_after_close_ends_the_wait() {
        let (count, waker) = counted();
        let mut cx = Context::from_waker(&waker);
        let (tx, mut rx) = channel::<u8>();
        rx.close();
        assert!(Pin::new(&mut rx).poll(&mut cx).is_pending());
        assert_eq!(tx.send(2), Err(2));
        assert_eq!(
            count.0.load(SeqCst),
            1,
            "the failed send wakes the receiver"
        );
        assert!(rx.is_terminated());
        assert_eq!(
            Pin::new(&mut rx).poll(&mut cx),
            Poll::Ready(Err(RecvError(())))
        );
    }

    /// The races for real threads (Miri runs this too, with its own scheduler); the loom
    /// models cover every interleaving of the small cases.
    #[test]
    fn values_and_closes_cross_threads() {
        let rounds = if cfg!(miri) { 20 } else { 2000 };
        for i in 0..rounds {
            let (tx, rx) = channel::<Box<usize>>();
            let sender = std::thread::spawn(move || tx.send(Box::new(i)).unwrap());
            assert_eq!(block_on(rx).map(|b| *b), Ok(i));
            sender.join().unwrap();

            let (mut tx, rx) = channel::<Box<usize>>();
            let receiver = std::thread::spawn(move || drop(rx));
            block_on(tx.closed());
            assert_eq!(tx.send(Box::new(i)).map_err(|b| *b), Err(i));
            receiver.join().unwrap();
        }
    }

    #[test]
    fn an_unreceived_value_is_dropped_with_the_receiver() {
        let value = StdArc::new(());
        let (tx, rx) = channel();
        tx.send(value.clone()).unwrap();
        assert_eq!(StdArc::strong_count(&value), 2);
        drop(rx);
        assert_eq!(StdArc::strong_count(&value), 1);
    }
}
