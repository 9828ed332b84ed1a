//! `JoinHandle`, the user's handle to a task's output, and `JoinError`.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use super::raw::RawTask;
use super::Id;

/// An owned permission to await a spawned task's output.
///
/// Awaiting it gives `Ok(output)`, or a [`JoinError`] if the task panicked or was aborted.
/// Dropping it *detaches* the task: the task keeps running and its output is dropped.
///
/// ```
/// let rt = runnel_executor::Runtime::new().unwrap();
/// let out = rt.block_on(async {
///     let handle = runnel_executor::spawn(async { 6 * 7 });
///     handle.await.unwrap()
/// });
/// assert_eq!(out, 42);
/// ```
pub struct JoinHandle<T> {
    raw: RawTask,
    _output: PhantomData<T>,
}

// SAFETY: the handle only moves the output (T: Send) out of the task, and reaches the task
// through the state protocol, which is thread-safe.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: `&JoinHandle` only exposes `abort`, `is_finished` and `id`: atomic operations.
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> Unpin for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    pub(super) fn new(raw: RawTask) -> JoinHandle<T> {
        JoinHandle {
            raw,
            _output: PhantomData,
        }
    }

    /// Records whether this handle is on a thread outside the task's runtime (it may then
    /// abort the task at any time: the deadlock detector must count it).
    pub(crate) fn note_held_outside(&self, outside: bool) {
        self.raw.header().state.set_join_held_outside(outside);
    }

    /// Asks the task to stop. It is cancelled before its next poll (at once if idle): its
    /// future is dropped on a worker, and awaiting this handle gives a `JoinError` for
    /// which `is_cancelled()` is true — unless the task completed first.
    ///
    /// ```
    /// # runnel_executor::Runtime::new().unwrap().block_on(async {
    /// let handle = runnel_executor::spawn(std::future::pending::<()>());
    /// handle.abort();
    /// assert!(handle.await.unwrap_err().is_cancelled());
    /// # });
    /// ```
    pub fn abort(&self) {
        self.raw.remote_abort();
    }

    /// Whether the task has completed (with output, panic or cancellation).
    pub fn is_finished(&self) -> bool {
        self.raw.header().state.load().is_complete()
    }

    /// A handle that can abort the task (and nothing else), to give to another thread or
    /// task. While one exists the deadlock detector counts the task as possibly woken
    /// (an abort is a wake), wherever the `AbortHandle` is.
    ///
    /// ```
    /// # runnel_executor::Runtime::new().unwrap().block_on(async {
    /// let handle = runnel_executor::spawn(std::future::pending::<()>());
    /// let abort = handle.abort_handle();
    /// std::thread::spawn(move || abort.abort()).join().unwrap();
    /// assert!(handle.await.unwrap_err().is_cancelled());
    /// # });
    /// ```
    pub fn abort_handle(&self) -> AbortHandle {
        self.raw.header().state.ref_inc();
        AbortHandle { raw: self.raw }
    }

    /// The task's id.
    pub fn id(&self) -> Id {
        self.raw.header().id()
    }

    /// The id of the runtime that owns the task.
    pub(crate) fn owner(&self) -> u64 {
        self.raw.owner()
    }

    /// `poll` without spending the cooperative budget: for a `JoinSet`, which spends one
    /// unit per output it returns, not per handle it looks at.
    #[inline]
    pub(crate) fn poll_unbudgeted(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>> {
        // Where the handle is awaited is where it lives now: inside the runtime (a task,
        // `block_on`) it can only abort the task by running, outside it may at any time.
        let header = self.raw.header();
        self.note_held_outside(!crate::context::is_runtime_thread_of(self.raw.owner()));
        let mut out: Poll<Result<T, JoinError>> = Poll::Pending;
        // SAFETY: 1. out has the output type of this task's future (JoinHandle<T> is only
        // made by new_task with T = F::Output); 2. we hold the JoinHandle reference.
        unsafe {
            self.raw.try_read_output(
                (&mut out as *mut Poll<Result<T, JoinError>>).cast(),
                cx.waker(),
            )
        };
        if out.is_pending() {
            runnel_reactor::wait::note(runnel_reactor::wait::WaitReason::Join {
                task: header.id().as_u64(),
            });
        }
        out
    }
}

/// An owned permission to abort a task, made by [`JoinHandle::abort_handle`]. Cloneable
/// and `Send`; dropping it does nothing to the task.
pub struct AbortHandle {
    raw: RawTask,
}

// SAFETY: an `AbortHandle` only reaches the task through atomic state transitions (abort,
// is_finished, the reference count); it never touches the future or the output.
unsafe impl Send for AbortHandle {}
// SAFETY: as for `Send`: every method takes `&self` and is an atomic operation.
unsafe impl Sync for AbortHandle {}

impl AbortHandle {
    /// Asks the task to stop, as [`JoinHandle::abort`].
    pub fn abort(&self) {
        self.raw.remote_abort();
    }

    /// Whether the task has completed (with output, panic or cancellation).
    pub fn is_finished(&self) -> bool {
        self.raw.header().state.load().is_complete()
    }

    /// The task's id.
    pub fn id(&self) -> Id {
        self.raw.header().id()
    }
}

impl Clone for AbortHandle {
    fn clone(&self) -> AbortHandle {
        self.raw.header().state.ref_inc();
        AbortHandle { raw: self.raw }
    }
}

impl Drop for AbortHandle {
    fn drop(&mut self) {
        self.raw.drop_reference();
    }
}

impl fmt::Debug for AbortHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbortHandle")
            .field("id", &self.id())
            .finish()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Awaiting handles in a loop counts against the task's budget like any resource.
        if runnel_reactor::coop::poll_proceed(cx).is_pending() {
            return Poll::Pending;
        }
        self.get_mut().poll_unbudgeted(cx)
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        self.raw.drop_join_handle();
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id())
            .finish()
    }
}

/// Why a task did not produce its output: it was cancelled, or it panicked.
///
/// ```
/// # runnel_executor::Runtime::new().unwrap().block_on(async {
/// let err = runnel_executor::spawn(async { panic!("boom") }).await.unwrap_err();
/// assert!(err.is_panic());
/// assert_eq!(*err.into_panic().downcast::<&str>().unwrap(), "boom");
/// # });
/// ```
pub struct JoinError {
    id: Id,
    repr: Repr,
}

enum Repr {
    Cancelled,
    // A Mutex only to make JoinError Sync; the payload is taken once, by value. Boxed so
    // that a JoinError is 16 bytes: a finished task stores `Result<T, JoinError>` in its
    // cell, whose size is the larger of it and the future's (panics are rare; the box is
    // one allocation on a path that already formats a panic).
    Panic(Box<Mutex<Box<dyn Any + Send + 'static>>>),
}

impl JoinError {
    pub(crate) fn cancelled(id: Id) -> JoinError {
        JoinError {
            id,
            repr: Repr::Cancelled,
        }
    }

    pub(crate) fn panic(id: Id, payload: Box<dyn Any + Send + 'static>) -> JoinError {
        JoinError {
            id,
            repr: Repr::Panic(Box::new(Mutex::new(payload))),
        }
    }

    /// Whether the task was cancelled (aborted, or the runtime shut down).
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// The id of the task that failed.
    pub fn id(&self) -> Id {
        self.id
    }

    /// The panic payload. Panics if the task was cancelled; see [`try_into_panic`].
    ///
    /// Resume the panic on the awaiting side with `std::panic::resume_unwind(err.into_panic())`.
    ///
    /// [`try_into_panic`]: JoinError::try_into_panic
    #[track_caller]
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic().expect(
            "`JoinError::into_panic` called on a cancelled task's error; check `is_panic()` first",
        )
    }

    /// The panic payload, or the error back if the task was cancelled.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panic(payload) => Ok((*payload).into_inner().unwrap_or_else(|e| e.into_inner())),
            Repr::Cancelled => Err(self),
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => write!(f, "task {} was cancelled", self.id),
            Repr::Panic(payload) => {
                let payload = payload.lock().unwrap_or_else(|e| e.into_inner());
                match panic_message(&**payload) {
                    Some(msg) => write!(f, "task {} panicked with message {msg:?}", self.id),
                    None => write!(f, "task {} panicked", self.id),
                }
            }
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => write!(f, "JoinError::Cancelled({})", self.id),
            Repr::Panic(_) => write!(f, "JoinError::Panic({}, {:?})", self.id, self.to_string()),
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for std::io::Error {
    fn from(err: JoinError) -> std::io::Error {
        std::io::Error::other(err.to_string())
    }
}
