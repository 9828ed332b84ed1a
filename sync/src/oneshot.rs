//! A channel for sending a single value between tasks, with tokio's API
//! (`tokio::sync::oneshot`).
//!
//! State machine, under one mutex: the value is set at most once (by `Sender::send`) and
//! taken at most once (by the receiver). The channel is *complete* once the sender has sent
//! or been dropped, and *closed* once the receiver has closed or been dropped; a send on a
//! closed channel fails and returns the value. Each side parks at most one waker, taken
//! out under the lock and woken after it.
//!
//! Deadlock detector: a task waiting here has its waker held by the channel, so the
//! detector says "maybe" (never a false report).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::block_on::block_on;

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

struct Inner<T> {
    state: Mutex<State<T>>,
}

struct State<T> {
    value: Option<T>,
    /// The sender has sent or been dropped.
    complete: bool,
    /// The receiver has closed or been dropped.
    closed: bool,
    /// The receiver already returned its result.
    taken: bool,
    rx_waker: Option<Waker>,
    tx_waker: Option<Waker>,
}

impl<T> Inner<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // No user code runs under the lock, so the state is consistent even if poisoned.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
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
        state: Mutex::new(State {
            value: None,
            complete: false,
            closed: false,
            taken: false,
            rx_waker: None,
            tx_waker: None,
        }),
    });
    (
        Sender {
            inner: Some(inner.clone()),
        },
        Receiver { inner },
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
}

impl<T> Sender<T> {
    /// Sends `value`, consuming the sender. Fails, returning the value, if the receiver
    /// was closed or dropped.
    pub fn send(mut self, value: T) -> Result<(), T> {
        let inner = self.inner.take().expect("a sender is used at most once");
        let mut state = inner.lock();
        if state.closed {
            return Err(value);
        }
        state.value = Some(value);
        state.complete = true;
        let waker = state.rx_waker.take();
        // A `closed()` wait that was abandoned may have left its waker: nothing waits now.
        let stale = state.tx_waker.take();
        drop(state);
        drop(stale);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Whether the receiver was closed or dropped (a send would fail).
    pub fn is_closed(&self) -> bool {
        self.inner().lock().closed
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
        let mut state = self.inner().lock();
        if state.closed {
            return Poll::Ready(());
        }
        match &state.tx_waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => state.tx_waker = Some(cx.waker().clone()),
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
        let Some(inner) = self.inner.take() else {
            return;
        };
        let mut state = inner.lock();
        state.complete = true;
        let rx_waker = state.rx_waker.take();
        let tx_waker = state.tx_waker.take();
        drop(state);
        drop(tx_waker);
        if let Some(waker) = rx_waker {
            waker.wake();
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
        let mut state = self.inner.lock();
        if let Some(value) = state.value.take() {
            state.taken = true;
            return Ok(value);
        }
        if state.complete || state.taken {
            Err(TryRecvError::Closed)
        } else {
            Err(TryRecvError::Empty)
        }
    }

    /// Closes the channel: a later send fails. A value sent before this can still be
    /// received with [`try_recv`](Self::try_recv) or by awaiting.
    pub fn close(&mut self) {
        let mut state = self.inner.lock();
        state.closed = true;
        let waker = state.tx_waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Whether the receiver has nothing more to give: it returned its result already, or
    /// the sender is gone without a value.
    pub fn is_terminated(&self) -> bool {
        let state = self.inner.lock();
        state.taken || (state.complete && state.value.is_none())
    }

    /// Whether no value is waiting to be taken.
    pub fn is_empty(&self) -> bool {
        self.inner.lock().value.is_none()
    }

    /// Waits for the value from synchronous code, parking the calling thread.
    ///
    /// Blocks the thread: do not call it from async code; await the receiver there.
    pub fn blocking_recv(mut self) -> Result<T, RecvError> {
        block_on(&mut self)
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, RecvError>;

    /// # Panics
    ///
    /// If polled again after it completed (as tokio's receiver does).
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.inner.lock();
        assert!(
            !state.taken,
            "oneshot::Receiver polled after it completed; a oneshot value can be received once"
        );
        if let Some(value) = state.value.take() {
            state.taken = true;
            let stale = state.rx_waker.take();
            drop(state);
            drop(stale);
            return Poll::Ready(Ok(value));
        }
        if state.complete {
            state.taken = true;
            return Poll::Ready(Err(RecvError(())));
        }
        match &state.rx_waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => state.rx_waker = Some(cx.waker().clone()),
        }
        crate::note_wait(crate::SyncKind::ChannelRecv, &*self.inner);
        Poll::Pending
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.inner.lock();
        state.closed = true;
        let value = state.value.take();
        let rx_waker = state.rx_waker.take();
        let tx_waker = state.tx_waker.take();
        drop(state);
        drop(rx_waker);
        drop(value);
        if let Some(waker) = tx_waker {
            waker.wake();
        }
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}
