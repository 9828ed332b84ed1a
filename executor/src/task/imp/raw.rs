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
use std::sync::atomic::{AtomicU32, Ordering, Ordering::AcqRel};
use std::task::{Context, Poll, Waker};

use super::join::JoinError;
use super::join_slot::JoinSlot;
use super::state::{State, ToIdle, ToRunning, Wake};
use super::waker::{self, hold, release_hold};
use super::{Id, Notified, Schedule, Task};
use crate::loom::UnsafeCell;

/// How many of a task's (or a `block_on` caller's) wakers sit in `JoinHandle` slots of its
/// own runtime (see "Wakers held by the runtime itself" in `mod.rs`). 32 bits, so that it
/// shares a word with the owned-list slot in the header: every hold is a waker stored in
/// the join slot of a distinct task (or a `JoinSet`), so 2^32 of them cannot exist.
#[derive(Default)]
pub(crate) struct Holds(AtomicU32);

impl Holds {
    pub(crate) fn load(&self, order: Ordering) -> usize {
        self.0.load(order) as usize
    }

    pub(super) fn increment(&self) {
        // AcqRel: orders the hold before the state transitions that publish the slot.
        self.0.fetch_add(1, AcqRel);
    }

    pub(super) fn decrement(&self) {
        self.0.fetch_sub(1, AcqRel);
    }
}

/// What the deadlock detector reads about a `block_on` caller that waits: its holds, and
/// what it said it waits on when its last poll returned `Pending` (`runnel_reactor::wait`).
/// A task keeps the same two in its header.
#[derive(Default)]
pub(crate) struct WaitRecord {
    pub(crate) holds: Holds,
    pub(crate) reason: runnel_reactor::wait::WaitSlot,
}

/// The type-erased part of every task, at offset 0 of the allocation: 56 bytes (state
/// word with the poll count 8, id 8, holds and owned-list slot 8, vtable 8, wait slot 16 —
/// reason and registration —, join-waker slot 8). With the scheduler handle, a task whose
/// future is 56 bytes is a 120-byte request: the largest glibc serves from its per-thread
/// fastbins, which a task freed on another worker than the one that spawned it needs to
/// avoid the allocator's arena lock (BENCHMARKS.md, issue 14: fan-in 1.27–1.42× smol with
/// a 64-byte header, 0.76–0.80× with the fastbin limit raised). The spawn location lives in
/// the owned list's entry for that reason; an owned-list link pair, a word-sized hold count,
/// a poll count of its own or a two-word join slot would each have grown the header.
#[repr(C)]
pub(crate) struct Header {
    pub(super) state: State,
    /// Who the task is. Where it was spawned lives in the owned list's entry, not here
    /// (BENCHMARKS.md, issue 14: 8 bytes that put a 56-byte future's task in a glibc fastbin).
    pub(crate) id: Id,
    /// What the deadlock detector reads about a waiting task: its holds, and what it said
    /// it waits on when its last poll returned `Pending` (`runnel_reactor::wait`).
    pub(crate) holds: Holds,
    /// Where the owned list keeps the task (`list.rs`); guarded by its shard's lock.
    pub(super) list_slot: UnsafeCell<u32>,
    /// Just before `reason`: the vtable starts with the `SlotOwner` through which
    /// `runnel_reactor::wait` finds the task's id and own waker from its slot
    /// (`polling_owned`), so a poll publishes the slot alone.
    pub(super) vtable: &'static Vtable,
    pub(crate) reason: runnel_reactor::wait::WaitSlot,
    /// The `JoinHandle`'s waker, in one word (`join_slot.rs`); ownership per the
    /// `JOIN_WAKER` bit. While stored it is counted in its target's `holds` exactly as a
    /// `JoinWaker` (`waker::hold`), with this task's owner read from the scheduler instead
    /// of stored beside it; every path that empties the slot goes through
    /// `take_join_waker`, which releases the hold first.
    pub(super) join_waker: UnsafeCell<JoinSlot>,
}

impl Header {
    pub(crate) fn id(&self) -> Id {
        self.id
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

    /// How many polls of the task have begun, mod 2^31 (kept in the state word). Unchanged
    /// between two reads: the task was not polled in between (a poll in progress counts
    /// as begun).
    pub(crate) fn polls(&self) -> u32 {
        self.state.load().polls()
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

#[repr(C)]
pub(super) struct Vtable {
    /// First (the header's `vtable` word is read as a `&SlotOwner`): the task's id and own
    /// waker from its wait slot, for `runnel_reactor::wait::polling_owned`.
    slot_owner: runnel_reactor::wait::SlotOwner,
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
    /// `Schedule::owner` of the task's scheduler.
    owner: unsafe fn(NonNull<Header>) -> u64,
    /// `size_of::<Cell<F, S>>()`: the task's allocation, future included, spans
    /// `[header, header + size)`.
    size: usize,
}

/// What the cell holds after the header and the scheduler: the future until the task
/// completes, then its output until someone takes it (`None` after).
///
/// No tag of its own: the state word says which field is live. The future, while
/// `COMPLETE` is clear: only the thread holding `RUNNING` drops it (`drop_future`), and
/// that same thread stores the output and sets `COMPLETE` before it lets go
/// (`store_and_complete`), so nobody can see the cell between the two. The output, once
/// `COMPLETE` is set. An enum would cost 8 bytes a task: rustc gives an `async` block's
/// state machine no niche for an outer enum's tag, so the tag would be a word of its own.
union Stage<F: Future> {
    future: ManuallyDrop<F>,
    output: ManuallyDrop<Option<Result<F::Output, JoinError>>>,
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
    pub(super) fn new<F, S>(future: F, scheduler: S, id: Id) -> RawTask
    where
        F: Future + 'static,
        S: Schedule,
    {
        let cell = Box::new(Cell {
            header: Header {
                state: State::new(),
                vtable: vtable::<F, S>(),
                id,
                holds: Holds::default(),
                list_slot: UnsafeCell::new(super::list::UNLISTED),
                reason: Default::default(),
                join_waker: UnsafeCell::new(JoinSlot::EMPTY),
            },
            scheduler,
            stage: UnsafeCell::new(Stage {
                future: ManuallyDrop::new(future),
            }),
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

    /// The id of the runtime this task belongs to (`Schedule::owner` of its scheduler).
    /// Through the pointer, not `&Header`: the scheduler lies beyond the header.
    pub(super) fn owner(self) -> u64 {
        // SAFETY: as for poll; reads the scheduler of a live cell.
        unsafe { (self.header().vtable.owner)(self.0) }
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
        slot_owner: SLOT_OWNER,
        poll: poll::<F, S>,
        schedule: schedule::<F, S>,
        dealloc: dealloc::<F, S>,
        try_read_output: try_read_output::<F, S>,
        drop_join_handle: drop_join_handle::<F, S>,
        shutdown: shutdown::<F, S>,
        owner: owner::<F, S>,
        size: std::mem::size_of::<Cell<F, S>>(),
    }
}

const SLOT_OWNER: runnel_reactor::wait::SlotOwner = runnel_reactor::wait::SlotOwner {
    task: slot_task,
    is_own_waker: slot_is_own_waker,
};

// The header's `vtable` word sits right before its slot (`polling_owned`'s contract).
const _: () =
    assert!(std::mem::offset_of!(Header, reason) == std::mem::offset_of!(Header, vtable) + 8);

/// The header whose `reason` is at `slot`.
fn header_of_slot(slot: *const runnel_reactor::wait::WaitSlot) -> *const Header {
    slot.cast::<u8>()
        .wrapping_sub(std::mem::offset_of!(Header, reason))
        .cast()
}

/// # Safety
/// `slot` is the `reason` of a live task header, with the header's provenance.
unsafe fn slot_task(slot: *const runnel_reactor::wait::WaitSlot) -> u64 {
    // SAFETY: forwarded from the caller.
    unsafe { &*header_of_slot(slot) }.id().as_u64()
}

/// # Safety
/// As `slot_task`.
unsafe fn slot_is_own_waker(slot: *const runnel_reactor::wait::WaitSlot, waker: &Waker) -> bool {
    std::ptr::eq(waker.vtable(), &super::waker::TASK_WAKER_VTABLE)
        && waker.data() == header_of_slot(slot).cast()
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

unsafe fn owner<F: Future, S: Schedule>(ptr: NonNull<Header>) -> u64 {
    // SAFETY: vtable contract: ptr is a live Cell<F, S>.
    unsafe { cell::<F, S>(ptr) }.scheduler.owner()
}

unsafe fn dealloc<F: Future, S: Schedule>(ptr: NonNull<Header>) {
    /// Frees the allocation last, also if dropping the stage panics (user code).
    struct Free<F: Future, S>(NonNull<Header>, std::marker::PhantomData<(F, S)>);
    impl<F: Future, S> Drop for Free<F, S> {
        fn drop(&mut self) {
            // SAFETY: 1. the allocation was made by Box<Cell<F, S>> in RawTask::new; 2. the
            // last reference is gone, so no other pointer to it will be used again; 3. the
            // stage's live field was dropped already (a Stage drops nothing itself).
            drop(unsafe { Box::from_raw(self.0.cast::<Cell<F, S>>().as_ptr()) });
        }
    }
    let _free = Free::<F, S>(ptr, std::marker::PhantomData);
    // SAFETY: the last reference is gone: nobody else touches the cell.
    let cell = unsafe { cell::<F, S>(ptr) };
    // Every path that ends the JoinHandle's use of the slot empties it already; should a
    // waker still be there, its hold is released here, never left counted.
    // SAFETY: as above.
    drop(unsafe { take_join_waker(&cell.header, || cell.scheduler.owner()) });
    // The stage has no drop glue (see `Stage`): drop its live field by hand.
    if cell.header.state.load().is_complete() {
        // SAFETY: COMPLETE: the output field is live; nobody else can take it now.
        drop(unsafe { take_output(cell) });
    } else {
        // SAFETY: never completed, so never dropped: the future is live (see `Stage`).
        cell.stage
            .with_mut(|stage| unsafe { ManuallyDrop::drop(&mut (*stage).future) });
    }
}

/// Empties the join-waker slot, releasing the stored waker's hold (`waker::hold`) before
/// the caller drops it. `owner` gives the task's runtime (`Schedule::owner`), asked only
/// if the slot holds a waker: `Shared::id` is a line every worker reads, best left alone
/// on the path of a task nobody joined.
///
/// # Safety
/// The caller owns the slot (per the `JOIN_WAKER` protocol in `state.rs`).
unsafe fn take_join_waker(header: &Header, owner: impl FnOnce() -> u64) -> Option<Waker> {
    // SAFETY: forwarded from the caller.
    let waker = header
        .join_waker
        .with_mut(|slot| unsafe { (*slot).take() })?;
    release_hold(&waker, owner());
    Some(waker)
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
                    // stage; 2. transition_to_running said Poll, so COMPLETE is clear and
                    // the future is live (see `Stage`).
                    let future = unsafe { &mut *(*stage).future };
                    // Leaf futures note what the task waits on into its record; locks
                    // taken here name this task as their holder.
                    // SAFETY: the slot is the `reason` of this live header, reached through
                    // `ptr` (the whole allocation's provenance), with the header's vtable
                    // word (a `SlotOwner` first) just before it; the task outlives its poll.
                    unsafe {
                        runnel_reactor::wait::polling_owned(
                            std::ptr::addr_of!((*ptr.as_ptr()).reason),
                            // SAFETY: the future is never moved out of the heap cell until
                            // it is dropped in place, so pinning it there is sound.
                            || Pin::new_unchecked(future).poll(&mut cx),
                        )
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

/// Drops the future in place, catching a panicking `Drop` (after which the future counts
/// as dropped too: drop glue drops the remaining fields while it unwinds). Caller holds
/// RUNNING, the future is live, and the caller stores the output next
/// (`store_and_complete`): until then the stage holds nothing.
fn drop_future<F: Future, S>(cell: &Cell<F, S>) -> Result<(), JoinError> {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller holds RUNNING, so no other thread touches the stage, and
        // COMPLETE is clear, so the future is live; it is never dropped again (the output
        // overwrites it before COMPLETE is set).
        cell.stage
            .with_mut(|stage| unsafe { ManuallyDrop::drop(&mut (*stage).future) });
    }))
    .map_err(|payload: Box<dyn Any + Send>| JoinError::panic(cell.header.id(), payload))
}

/// Takes the output out of a completed task's stage (`None` if it was taken already).
///
/// # Safety
/// COMPLETE is set and the caller owns the output (the `JoinHandle`, or the completer or
/// the `JoinHandle`'s drop when there is no `JoinHandle` left to read it).
unsafe fn take_output<F: Future, S>(cell: &Cell<F, S>) -> Option<Result<F::Output, JoinError>> {
    // SAFETY: forwarded from the caller: the output field is the live one, and ours.
    cell.stage
        .with_mut(|stage| unsafe { (*(*stage).output).take() })
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
    // SAFETY: we hold RUNNING and the future is dropped: nobody else touches the stage,
    // and writing a ManuallyDrop field drops nothing.
    cell.stage.with_mut(|stage| unsafe {
        (*stage).output = ManuallyDrop::new(Some(result));
    });
    let snapshot = cell.header.state.transition_to_complete();
    // A joiner's waker or an output's Drop is user code; a panic there must not skip the
    // bookkeeping below (that would leak the task).
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if !snapshot.is_join_interested() {
            // Nobody will read the output: drop it now, as its owner.
            // SAFETY: COMPLETE without JOIN_INTEREST makes the completer the owner.
            drop(unsafe { take_output(cell) });
        } else if snapshot.is_join_waker_set() {
            cell.header.join_waker.with(|slot| {
                // SAFETY: JOIN_WAKER is set, so the slot belongs to the task side and the
                // JoinHandle only reads it.
                unsafe { &*slot }.with(Waker::wake_by_ref);
            });
            let after = cell.header.state.unset_join_waker_after_complete();
            if !after.is_join_interested() {
                // The JoinHandle was dropped meanwhile and left the slot to us.
                // SAFETY: JOIN_WAKER clear and no JoinHandle: nobody else touches it.
                drop(unsafe { take_join_waker(&cell.header, || cell.scheduler.owner()) });
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
    if !can_read_output(&cell.header, cell.scheduler.owner(), waker) {
        return;
    }
    // SAFETY: COMPLETE and JOIN_INTEREST: the JoinHandle owns the output.
    let Some(result) = (unsafe { take_output(cell) }) else {
        panic!("JoinHandle polled after it returned Ready");
    };
    // SAFETY: the caller guarantees dst is a Poll<Result<F::Output, JoinError>>.
    unsafe { *dst.cast::<Poll<Result<F::Output, JoinError>>>() = Poll::Ready(result) };
}

/// The JoinHandle side of the JOIN_WAKER protocol: returns true when the output can be
/// read, otherwise makes sure `waker` is stored to be woken at completion.
fn can_read_output(header: &Header, owner: u64, waker: &Waker) -> bool {
    let snapshot = header.state.load();
    if snapshot.is_complete() {
        return true;
    }
    let stored = if snapshot.is_join_waker_set() {
        let same = header.join_waker.with(|slot| {
            // SAFETY: JOIN_WAKER set: the slot is only read, by us and by the completer.
            unsafe { &*slot }
                .with(|w| w.will_wake(waker))
                .unwrap_or(false)
        });
        if same {
            return false;
        }
        header
            .state
            .unset_join_waker()
            .and_then(|_| set_join_waker(header, owner, waker))
    } else {
        set_join_waker(header, owner, waker)
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
    owner: u64,
    waker: &Waker,
) -> Result<super::state::Snapshot, super::state::Snapshot> {
    // JOIN_WAKER is clear and the task is not complete, so the JoinHandle (us) owns the
    // slot: empty it (releasing the old waker's hold), then store the new waker, counted
    // after the clone exists.
    // SAFETY: as stated.
    drop(unsafe { take_join_waker(header, || owner) });
    let join_waker = waker.clone();
    hold(&join_waker, owner);
    // SAFETY: as above.
    header
        .join_waker
        .with_mut(|slot| unsafe { (*slot).put(join_waker) });
    let result = header.state.set_join_waker();
    if result.is_err() {
        // Completed meanwhile: the bit was never set, the slot is still ours.
        // SAFETY: as above.
        drop(unsafe { take_join_waker(header, || owner) });
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
            drop(unsafe { take_join_waker(&cell.header, || cell.scheduler.owner()) });
        }
        // SAFETY: COMPLETE and we held JOIN_INTEREST until now: the output is ours.
        drop(unsafe { take_output(cell) });
        drop(release);
        return;
    }
    // Not complete: our transition cleared JOIN_WAKER, so the slot is ours to empty.
    // SAFETY: as stated.
    drop(unsafe { take_join_waker(&cell.header, || cell.scheduler.owner()) });
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

#[cfg(all(test, not(loom)))]
mod size_tests {
    use std::future::Future;
    use std::mem::{size_of, size_of_val};
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    use std::sync::Arc;

    use super::{Cell, Header};
    use crate::task::JoinError;

    fn cell_size<F: Future>(_: &F) -> usize {
        size_of::<Cell<F, Arc<()>>>()
    }

    /// The sizes the allocator sees (BENCHMARKS.md, issue 14): a cell of up to 120 bytes is
    /// a 128-byte glibc chunk; 136 bytes would be a 144-byte chunk, smol's size for the
    /// harness's idle task.
    #[test]
    fn task_cells_stay_small() {
        assert_eq!(size_of::<Header>(), 56, "the header grew");
        // Its two parts that grew with the wait-for graph and shrank back.
        assert_eq!(size_of::<runnel_reactor::wait::WaitSlot>(), 16);
        assert_eq!(size_of::<super::JoinSlot>(), 8);
        assert_eq!(
            size_of::<JoinError>(),
            16,
            "JoinError grew (it sizes every Stage)"
        );
        let counter = Arc::new(AtomicUsize::new(0));
        let i = 7;
        // The harness's spawn workloads: a counter and an index.
        let spawned = async move {
            counter.fetch_add(i, Relaxed);
        };
        assert!(cell_size(&spawned) <= 120, "{}", cell_size(&spawned));
        // The harness's idle task: two Arcs and an index, parked in a future that borrows
        // one of them and has a flag (its `GateWait`): a 48-byte future.
        struct Parked<'a>(&'a AtomicUsize, bool);
        impl Future for Parked<'_> {
            type Output = ();
            fn poll(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<()> {
                let _ = (self.0, self.1);
                std::task::Poll::Pending
            }
        }
        let (a, b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let idle = async move {
            Parked(&a, false).await;
            b.fetch_add(i, Relaxed);
        };
        assert_eq!(size_of_val(&idle), 48);
        assert!(cell_size(&idle) <= 120, "{}", cell_size(&idle));
        // The harness's fan-in producer (a cloned sender, a value, and the send future's
        // state): a 56-byte future, a 120-byte cell, the largest glibc fastbin request.
        let future_56 = [0u8; 55];
        let producer = async move {
            std::hint::black_box(future_56);
        };
        assert_eq!(size_of_val(&producer), 56);
        assert_eq!(cell_size(&producer), 120);
    }
}
