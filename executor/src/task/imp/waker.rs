//! The task waker (one static `RawWakerVTable` for every task type) and `JoinWaker`, the
//! wrapper that counts a waker held in a `JoinHandle` slot as held by the runtime.
//!
//! Because the vtable is one static, `Waker::vtable()` tells a runnel task waker from any
//! other, which is how `JoinWaker` finds the hold count of the task it would wake.

use std::ptr::NonNull;
use std::task::{RawWaker, RawWakerVTable, Waker};

use super::raw::{Header, Holds, RawTask};

pub(super) static TASK_WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

/// A waker for the task at `ptr` that owns no reference (the caller wraps it in
/// `ManuallyDrop` to lend one it holds, or calls it after taking one).
///
/// # Safety
/// `ptr` must point to a live task header for as long as the waker (or clones) are used.
pub(super) unsafe fn task_waker(ptr: NonNull<Header>) -> Waker {
    // SAFETY: the vtable's functions uphold the RawWaker contract given a live header,
    // which the caller guarantees.
    unsafe {
        Waker::from_raw(RawWaker::new(
            ptr.as_ptr().cast_const().cast(),
            &TASK_WAKER_VTABLE,
        ))
    }
}

fn header_of(data: *const ()) -> RawTask {
    // SAFETY: data came from task_waker, which takes a NonNull header pointer.
    RawTask::from_ptr(unsafe { NonNull::new_unchecked(data.cast_mut().cast::<Header>()) })
}

unsafe fn clone(data: *const ()) -> RawWaker {
    header_of(data).header().state.ref_inc();
    RawWaker::new(data, &TASK_WAKER_VTABLE)
}

unsafe fn wake(data: *const ()) {
    header_of(data).wake_by_val();
}

unsafe fn wake_by_ref(data: *const ()) {
    header_of(data).wake_by_ref();
}

unsafe fn drop_waker(data: *const ()) {
    header_of(data).drop_reference();
}

/// If `waker` wakes a runnel task or `block_on` of the runtime `owner`, its hold count.
fn holds_of(waker: &Waker, owner: u64) -> Option<&Holds> {
    if std::ptr::eq(waker.vtable(), &TASK_WAKER_VTABLE) {
        let task = header_of(waker.data());
        return (task.owner() == owner).then_some(&task.header().holds);
    }
    crate::block_on::wait_record_of(waker, owner).map(|record| &record.holds)
}

/// Counts `waker`, about to be stored in a `JoinHandle` slot (or a `JoinSet`'s owner
/// slot) of a task of runtime `owner`, as a wake source held by that runtime, if it wakes
/// one of its tasks or `block_on` callers. Call after the waker exists, and pair with
/// exactly one `release_hold` with the same `owner` before it is dropped: both decide
/// from the same immutable facts (the waker's target and its runtime), so they agree.
pub(super) fn hold(waker: &Waker, owner: u64) {
    if let Some(holds) = holds_of(waker, owner) {
        holds.increment();
    }
}

/// Undoes `hold`, before the waker is dropped: the count never exceeds the real holds.
pub(super) fn release_hold(waker: &Waker, owner: u64) {
    if let Some(holds) = holds_of(waker, owner) {
        holds.decrement();
    }
}

/// A waker stored in a `JoinHandle` slot (or in a `JoinSet`'s owner slot, which only the
/// completion of one of the set's tasks can fire: see `task/join_set.rs`). While it
/// exists, the task it wakes counts one wake source held by the runtime (see "Wakers held
/// by the runtime itself" in `mod.rs`).
pub(crate) struct JoinWaker {
    waker: Waker,
    owner: u64,
}

impl JoinWaker {
    /// `owner` is the runtime of the tasks whose completion will fire the waker.
    pub(crate) fn new(waker: Waker, owner: u64) -> JoinWaker {
        // After the waker exists: the count never exceeds the real holds.
        hold(&waker, owner);
        JoinWaker { waker, owner }
    }

    pub(crate) fn wake_by_ref(&self) {
        self.waker.wake_by_ref();
    }

    pub(crate) fn will_wake(&self, other: &Waker) -> bool {
        self.waker.will_wake(other)
    }

    pub(crate) fn waker(&self) -> &Waker {
        &self.waker
    }
}

impl Drop for JoinWaker {
    fn drop(&mut self) {
        // Before the waker goes: never over-counts (see `new`).
        release_hold(&self.waker, self.owner);
    }
}
