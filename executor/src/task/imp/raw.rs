//! The task allocation, its vtable, and the harness that drives the future.
//!
//! `RawTask` is a copyable pointer to the header. Every function here that takes one is
//! told by its caller which reference it consumes; the state word decides who may touch
//! the future, the output and the join-waker slot (see `state.rs` and `mod.rs`).

use std::any::Any;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::atomic::AtomicUsize;
use std::task::{Context, Poll, Waker};

use super::join::JoinError;
use super::list::Links;
use super::state::{State, ToIdle, ToRunning, Wake};
use super::waker::{self, JoinWaker};
use super::{Id, Notified, Origin, Schedule, Task};
use crate::loom::UnsafeCell;

/// What the deadlock detector reads about a task that waits: how many of its wakers sit in
/// `JoinHandle` slots of its own runtime, and what it said it waits on when its last poll
/// returned `Pending` (`runnel_reactor::wait`).
#[derive(Default)]
pub(crate) struct WaitRecord {
    pub(crate) holds: AtomicUsize,
    pub(crate) reason: runnel_reactor::wait::WaitSlot,
}

/// The type-erased part of every task, at offset 0 of the allocation.
#[repr(C)]
pub(crate) struct Header {
    pub(super) state: State,
    pub(super) vtable: &'static Vtable,
    pub(crate) origin: Origin,
    pub(crate) wait: WaitRecord,
    /// The `JoinHandle`'s waker; ownership per the `JOIN_WAKER` bit.
    pub(super) join_waker: UnsafeCell<Option<JoinWaker>>,
    /// Guarded by the owned-list shard lock.
    pub(super) links: UnsafeCell<Links>,
}

impl Header {
    pub(crate) fn id(&self) -> Id {
        self.origin.id
    }

    /// References held on the task right now (see the table in `mod.rs`).
    pub(crate) fn ref_count(&self) -> usize {
        self.state.load().ref_count()
    }

    pub(crate) fn is_join_interested(&self) -> bool {
        self.state.load().is_join_interested()
    }

    pub(crate) fn is_running(&self) -> bool {
        self.state.load().is_running()
    }

    /// Neither running, queued nor complete: waiting to be woken.
    pub(crate) fn is_idle(&self) -> bool {
        let s = self.state.load();
        !s.is_running() && !s.is_notified() && !s.is_complete()
    }

    /// Queued to run (or woken while running).
    pub(crate) fn is_notified(&self) -> bool {
        self.state.load().is_notified()
    }

    /// From one read of the state word: the task waits (not running, queued or
    /// complete) and no reference to it exists beyond the owned list's and its
    /// `JoinHandle`'s — no waker anywhere, no `Notified` in flight, no `AbortHandle`.
    /// Nothing can ever poll it again (the detector's certain leak).
    pub(crate) fn is_unreachable_waiter(&self) -> bool {
        let s = self.state.load();
        !s.is_running()
            && !s.is_notified()
            && !s.is_complete()
            && s.ref_count() == 1 + usize::from(s.is_join_interested())
    }

    /// Whether a `JoinHandle` of the task was made or last polled outside the runtime.
    pub(crate) fn is_join_held_outside(&self) -> bool {
        self.state.load().is_join_held_outside()
    }

    /// Whether `addr` lies inside this task's own allocation — for a primitive, that it
    /// is a part of the task's future (stored inline, not boxed or shared). Addresses are
    /// compared on their low 48 bits (the width `WaitReason` keeps), which hold every
    /// user-space address. Only compares: nothing at `addr` is read.
    pub(crate) fn owns(&self, addr: usize) -> bool {
        const LOW: usize = (1 << 48) - 1;
        let start = self as *const Header as usize & LOW;
        let addr = addr & LOW;
        addr >= start && addr - start < self.vtable.size
    }
}

pub(super) struct Vtable {
    /// Consumes a `Notified` reference.
    poll: unsafe fn(NonNull<Header>),
    /// Submits a `Notified` whose reference the caller already accounted for.
    schedule: unsafe fn(NonNull<Header>),
    dealloc: unsafe fn(NonNull<Header>),
    /// `dst` points to a `Poll<Result<F::Output, JoinError>>`.
    try_read_output: unsafe fn(NonNull<Header>, *mut (), &Waker),
    /// Consumes the `JoinHandle`'s reference.
    drop_join_handle: unsafe fn(NonNull<Header>),
    /// Consumes the owned list's reference.
    shutdown: unsafe fn(NonNull<Header>),
    /// `size_of::<Cell<F, S>>()`: the task's allocation, future included, spans
    /// `[header, header + size)`.
    size: usize,
}

enum Stage<F: Future> {
    Running(F),
    Finished(Result<F::Output, JoinError>),
    Consumed,
}

#[repr(C)]
struct Cell<F: Future, S> {
    header: Header,
    scheduler: S,
    stage: UnsafeCell<Stage<F>>,
}

#[derive(Clone, Copy)]
pub(super) struct RawTask(NonNull<Header>);

impl RawTask {
    pub(super) fn new<F, S>(future: F, scheduler: S, origin: Origin) -> RawTask
    where
        F: Future + 'static,
        S: Schedule,
    {
        let cell = Box::new(Cell {
            header: Header {
                state: State::new(),
                vtable: vtable::<F, S>(),
                origin,
                wait: WaitRecord::default(),
                join_waker: UnsafeCell::new(None),
                links: UnsafeCell::new(Links::default()),
            },
            scheduler,
            stage: UnsafeCell::new(Stage::Running(future)),
        });
        RawTask(NonNull::from(Box::leak(cell)).cast())
    }

    pub(super) fn from_ptr(ptr: NonNull<Header>) -> RawTask {
        RawTask(ptr)
    }

    pub(super) fn ptr(self) -> NonNull<Header> {
        self.0
    }

    pub(super) fn header<'a>(self) -> &'a Header {
        // SAFETY: 1. every RawTask is made from a live allocation and is only used by a
        // handle that holds a reference, which keeps the allocation alive; 2. the header is
        // only accessed through shared references (its mutable parts are atomics or cells).
        unsafe { self.0.as_ref() }
    }

    pub(super) fn poll(self) {
        // SAFETY: the vtable was built for this allocation's F and S; the caller passes the
        // Notified reference this consumes.
        unsafe { (self.header().vtable.poll)(self.0) }
    }

    pub(super) fn schedule(self) {
        // SAFETY: as for poll; the caller accounted for the Notified reference.
        unsafe { (self.header().vtable.schedule)(self.0) }
    }

    pub(super) fn shutdown(self) {
        // SAFETY: as for poll; consumes the owned list's reference.
        unsafe { (self.header().vtable.shutdown)(self.0) }
    }

    /// # Safety
    /// `dst` must point to a valid `Poll<Result<T, JoinError>>` where `T` is the output type
    /// of this task's future; the caller must hold the `JoinHandle` reference.
    pub(super) unsafe fn try_read_output(self, dst: *mut (), waker: &Waker) {
        // SAFETY: forwarded from the caller.
        unsafe { (self.header().vtable.try_read_output)(self.0, dst, waker) }
    }

    pub(super) fn drop_join_handle(self) {
        // SAFETY: consumes the JoinHandle's reference, which the caller (JoinHandle::drop)
        // holds and never uses again.
        unsafe { (self.header().vtable.drop_join_handle)(self.0) }
    }

    pub(super) fn drop_reference(self) {
        if self.header().state.ref_dec(1) {
            self.dealloc();
        }
    }

    pub(super) fn dealloc(self) {
        // SAFETY: called only when the last reference was dropped, so no handle can reach
        // the allocation any more.
        unsafe { (self.header().vtable.dealloc)(self.0) }
    }

    /// Handles the state transition of a wake that consumed a waker's reference.
    pub(super) fn wake_by_val(self) {
        match self.header().state.transition_to_notified_by_val() {
            Wake::Submit => {
                // The transition kept the waker's reference alive for the submit.
                self.schedule();
                self.drop_reference();
            }
            Wake::Dealloc => self.dealloc(),
            Wake::DoNothing => {}
        }
    }

    pub(super) fn wake_by_ref(self) {
        match self.header().state.transition_to_notified_by_ref() {
            Wake::Submit => self.schedule(),
            Wake::Dealloc => unreachable!("wake_by_ref keeps its reference"),
            Wake::DoNothing => {}
        }
    }

    pub(super) fn remote_abort(self) {
        match self.header().state.transition_to_notified_and_cancel() {
            Wake::Submit => self.schedule(),
            Wake::Dealloc => unreachable!("abort keeps the JoinHandle's reference"),
            Wake::DoNothing => {}
        }
    }
}

fn vtable<F: Future + 'static, S: Schedule>() -> &'static Vtable {
    // A promoted constant: one static vtable per (F, S).
    &Vtable {
        poll: poll::<F, S>,
        schedule: schedule::<F, S>,
        dealloc: dealloc::<F, S>,
        try_read_output: try_read_output::<F, S>,
        drop_join_handle: drop_join_handle::<F, S>,
        shutdown: shutdown::<F, S>,
        size: std::mem::size_of::<Cell<F, S>>(),
    }
}

/// # Safety
/// `ptr` must point to a live `Cell<F, S>` (the vtable guarantees the types).
unsafe fn cell<'a, F: Future, S>(ptr: NonNull<Header>) -> &'a Cell<F, S> {
    // SAFETY: the header is at offset 0 of the #[repr(C)] Cell, and the caller guarantees
    // the allocation is a live Cell<F, S>.
    unsafe { ptr.cast::<Cell<F, S>>().as_ref() }
}

unsafe fn schedule<F: Future + 'static, S: Schedule>(ptr: NonNull<Header>) {
    // SAFETY: vtable contract: ptr is a live Cell<F, S>.
    let cell = unsafe { cell::<F, S>(ptr) };
    // SAFETY: the caller accounted for the reference this Notified now owns.
    let notified = unsafe { Notified::<S>::from_raw(ptr) };
    // `cell.scheduler` lives in the task's own allocation, and the Notified may be run to
    // completion by another worker before `schedule` returns: every caller holds a
    // reference of its own across this call (a waker, the JoinHandle, or the one
    // `Wake::Submit` took for `wake_by_val`), so the cell outlives the borrow.
    cell.scheduler.schedule(notified);
}

unsafe fn dealloc<F: Future, S>(ptr: NonNull<Header>) {
    // SAFETY: 1. the allocation was made by Box<Cell<F, S>> in RawTask::new; 2. the last
    // reference is gone, so no other pointer to it will be used again.
    drop(unsafe { Box::from_raw(ptr.cast::<Cell<F, S>>().as_ptr()) });
}

unsafe fn poll<F: Future + 'static, S: Schedule>(ptr: NonNull<Header>) {
    // SAFETY: vtable contract.
    let cell = unsafe { cell::<F, S>(ptr) };
    match cell.header.state.transition_to_running() {
        ToRunning::DropRef => RawTask(ptr).drop_reference(),
        ToRunning::Cancel => cancel_and_complete::<F, S>(ptr),
        ToRunning::Poll => {
            // The Context's waker borrows the Notified reference we hold for the poll:
            // ManuallyDrop so dropping it does not release that reference.
            // SAFETY: the waker vtable's functions expect a task header, which ptr is.
            let waker = ManuallyDrop::new(unsafe { waker::task_waker(ptr) });
            let mut cx = Context::from_waker(&waker);
            let result = catch_unwind(AssertUnwindSafe(|| {
                cell.stage.with_mut(|stage| {
                    // SAFETY: 1. we set RUNNING, so we are the only thread that touches the
                    // stage; 2. the future is never moved out of the heap cell while it is
                    // Running, so pinning it there is sound.
                    match unsafe { &mut *stage } {
                        Stage::Running(future) => {
                            // Leaf futures note what the task waits on into its record;
                            // locks taken here name this task as their holder.
                            let _wait = runnel_reactor::wait::enter_task(
                                &cell.header.wait.reason,
                                cell.header.id().as_u64(),
                                &waker,
                            );
                            // SAFETY: as above (2): the heap cell never moves the future.
                            unsafe { Pin::new_unchecked(future) }.poll(&mut cx)
                        }
                        _ => unreachable!("polled a task whose future is gone"),
                    }
                })
            }));
            match result {
                Ok(Poll::Pending) => match cell.header.state.transition_to_idle() {
                    ToIdle::Idle => RawTask(ptr).drop_reference(),
                    ToIdle::Resubmit => {
                        // SAFETY: the poll's Notified reference is reused for the resubmit.
                        let task = unsafe { Notified::from_raw(ptr) };
                        cell.scheduler.yield_now(task);
                        // The transition took this reference so that `cell` stayed alive
                        // while the scheduler (borrowed from it) queued the task.
                        RawTask(ptr).drop_reference();
                    }
                    ToIdle::Cancel => cancel_and_complete::<F, S>(ptr),
                },
                Ok(Poll::Ready(output)) => {
                    let output = drop_future(cell).map(|()| output);
                    store_and_complete::<F, S>(ptr, output);
                }
                Err(payload) => {
                    let _ = drop_future(cell);
                    // Before the JoinHandle completes: a runtime shut down by this panic is
                    // shut down before anyone can observe the panic's JoinError.
                    // The hook cancels other tasks, whose Drops are caught where they run; a
                    // panic escaping it anyway must not take the worker down.
                    let _ = catch_unwind(AssertUnwindSafe(|| {
                        cell.scheduler.unhandled_panic(cell.header.id(), &*payload);
                    }));
                    let error = JoinError::panic(cell.header.id(), payload);
                    store_and_complete::<F, S>(ptr, Err(error));
                }
            }
        }
    }
}

/// Drops the future, catching a panicking `Drop`. Caller holds RUNNING.
fn drop_future<F: Future, S>(cell: &Cell<F, S>) -> Result<(), JoinError> {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller holds RUNNING, so no other thread touches the stage.
        cell.stage
            .with_mut(|stage| unsafe { *stage = Stage::Consumed });
    }))
    .map_err(|payload: Box<dyn Any + Send>| JoinError::panic(cell.header.id(), payload))
}

/// Takes the pointer, not a `&Cell`, like `store_and_complete` (see there). Caller holds
/// RUNNING and the reference `store_and_complete` consumes.
fn cancel_and_complete<F: Future + 'static, S: Schedule>(ptr: NonNull<Header>) {
    // SAFETY: the caller's reference keeps the allocation alive until store_and_complete.
    let cell = unsafe { cell::<F, S>(ptr) };
    let result = drop_future(cell).and(Err(JoinError::cancelled(cell.header.id())));
    store_and_complete::<F, S>(ptr, result);
}

/// Stores the result, sets COMPLETE, notifies the joiner, unlinks the task from the owned
/// list, and drops the reference the caller consumed (a Notified, or the list's in
/// shutdown) plus the list's if we unlinked it here.
///
/// This may free the allocation, so it takes the pointer and makes its `&Cell` locally: a
/// reference *argument* must stay valid for the whole call (Miri's Stacked Borrows
/// protector reports freeing its memory meanwhile as UB), a local one only until its last
/// use. The same holds for every caller on the way here.
fn store_and_complete<F: Future + 'static, S: Schedule>(
    ptr: NonNull<Header>,
    result: Result<F::Output, JoinError>,
) {
    // SAFETY: the caller holds a reference, which keeps the allocation alive until the
    // ref_dec at the end; the vtable guarantees the types.
    let cell = unsafe { cell::<F, S>(ptr) };
    // SAFETY: we hold RUNNING and the stage is Consumed: nobody else touches it.
    cell.stage
        .with_mut(|stage| unsafe { *stage = Stage::Finished(result) });
    let snapshot = cell.header.state.transition_to_complete();
    // A joiner's waker or an output's Drop is user code; a panic there must not skip the
    // bookkeeping below (that would leak the task).
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if !snapshot.is_join_interested() {
            // Nobody will read the output: drop it now, as its owner.
            // SAFETY: COMPLETE without JOIN_INTEREST makes the completer the owner.
            cell.stage
                .with_mut(|stage| unsafe { *stage = Stage::Consumed });
        } else if snapshot.is_join_waker_set() {
            cell.header.join_waker.with(|slot| {
                // SAFETY: JOIN_WAKER is set, so the slot belongs to the task side and the
                // JoinHandle only reads it.
                if let Some(w) = unsafe { &*slot } {
                    w.wake_by_ref();
                }
            });
            let after = cell.header.state.unset_join_waker_after_complete();
            if !after.is_join_interested() {
                // The JoinHandle was dropped meanwhile and left the slot to us.
                // SAFETY: JOIN_WAKER clear and no JoinHandle: nobody else touches it.
                cell.header
                    .join_waker
                    .with_mut(|slot| unsafe { *slot = None });
            }
        }
    }));
    // SAFETY: the task is not yet deallocated (we still hold a reference).
    let task = ManuallyDrop::new(unsafe { Task::<S>::from_header(ptr) });
    let released = cell.scheduler.release(&task);
    let refs = 1 + usize::from(released.is_some());
    if let Some(list_ref) = released {
        // Counted in `refs` below.
        std::mem::forget(list_ref);
    }
    if cell.header.state.ref_dec(refs) {
        RawTask(ptr).dealloc();
    }
}

unsafe fn try_read_output<F: Future + 'static, S: Schedule>(
    ptr: NonNull<Header>,
    dst: *mut (),
    waker: &Waker,
) {
    // SAFETY: vtable contract.
    let cell = unsafe { cell::<F, S>(ptr) };
    if !can_read_output(&cell.header, waker) {
        return;
    }
    // SAFETY: COMPLETE and JOIN_INTEREST: the JoinHandle owns the output.
    let stage = cell
        .stage
        .with_mut(|stage| unsafe { std::mem::replace(&mut *stage, Stage::Consumed) });
    let Stage::Finished(result) = stage else {
        panic!("JoinHandle polled after it returned Ready");
    };
    // SAFETY: the caller guarantees dst is a Poll<Result<F::Output, JoinError>>.
    unsafe { *dst.cast::<Poll<Result<F::Output, JoinError>>>() = Poll::Ready(result) };
}

/// The JoinHandle side of the JOIN_WAKER protocol: returns true when the output can be
/// read, otherwise makes sure `waker` is stored to be woken at completion.
fn can_read_output(header: &Header, waker: &Waker) -> bool {
    let snapshot = header.state.load();
    if snapshot.is_complete() {
        return true;
    }
    let stored = if snapshot.is_join_waker_set() {
        let same = header.join_waker.with(|slot| {
            // SAFETY: JOIN_WAKER set: the slot is only read, by us and by the completer.
            unsafe { &*slot }
                .as_ref()
                .is_some_and(|w| w.will_wake(waker))
        });
        if same {
            return false;
        }
        header
            .state
            .unset_join_waker()
            .and_then(|_| set_join_waker(header, waker))
    } else {
        set_join_waker(header, waker)
    };
    match stored {
        Ok(_) => false,
        Err(snapshot) => {
            debug_assert!(snapshot.is_complete());
            true
        }
    }
}

fn set_join_waker(
    header: &Header,
    waker: &Waker,
) -> Result<super::state::Snapshot, super::state::Snapshot> {
    let join_waker = JoinWaker::new(waker.clone(), header.origin);
    // SAFETY: JOIN_WAKER is clear and the task is not complete, so the JoinHandle (us)
    // owns the slot.
    header
        .join_waker
        .with_mut(|slot| unsafe { *slot = Some(join_waker) });
    let result = header.state.set_join_waker();
    if result.is_err() {
        // Completed meanwhile: the bit was never set, the slot is still ours.
        // SAFETY: as above.
        header.join_waker.with_mut(|slot| unsafe { *slot = None });
    }
    result
}

unsafe fn drop_join_handle<F: Future + 'static, S: Schedule>(ptr: NonNull<Header>) {
    // SAFETY: vtable contract.
    let cell = unsafe { cell::<F, S>(ptr) };
    let after = cell.header.state.transition_to_join_handle_dropped();
    if after.is_complete() {
        // The output was stored for us; nobody else will drop it. A panicking Drop of the
        // output propagates to the JoinHandle's owner, after we released our reference.
        struct ReleaseOnUnwind(NonNull<Header>);
        impl Drop for ReleaseOnUnwind {
            fn drop(&mut self) {
                RawTask(self.0).drop_reference();
            }
        }
        let release = ReleaseOnUnwind(ptr);
        if !after.is_join_waker_set() {
            // SAFETY: JOIN_WAKER clear after our transition: the slot is ours.
            cell.header
                .join_waker
                .with_mut(|slot| unsafe { *slot = None });
        }
        // SAFETY: COMPLETE and we held JOIN_INTEREST until now: the output is ours.
        cell.stage
            .with_mut(|stage| unsafe { *stage = Stage::Consumed });
        drop(release);
        return;
    }
    // Not complete: our transition cleared JOIN_WAKER, so the slot is ours to empty.
    // SAFETY: as stated.
    cell.header
        .join_waker
        .with_mut(|slot| unsafe { *slot = None });
    RawTask(ptr).drop_reference();
}

unsafe fn shutdown<F: Future + 'static, S: Schedule>(ptr: NonNull<Header>) {
    // SAFETY: vtable contract.
    let cell = unsafe { cell::<F, S>(ptr) };
    if cell.header.state.transition_to_shutdown() {
        // We claimed it: cancel now; store_and_complete drops the list reference we hold.
        cancel_and_complete::<F, S>(ptr);
    } else {
        // A worker runs it and will see CANCELLED, or it is complete already.
        RawTask(ptr).drop_reference();
    }
}
