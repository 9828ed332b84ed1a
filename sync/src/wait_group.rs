//! [`WaitGroup`]: Go's `sync.WaitGroup` for async code — wait until a counter of pending
//! work reaches zero — with an RAII token ([`WaitGroupToken`]) for Rust-shaped code.
//!
//! State: one `AtomicU64` holding the counter (low 32 bits) and a generation (high 32
//! bits), plus a mutex-guarded `WakeList` of waiting futures.
//!
//! Invariants:
//! - The counter never goes below zero: a decrement that would is refused (a panic) and
//!   changes nothing.
//! - The decrement that brings the counter to zero bumps the generation in the same
//!   atomic step, then takes the wake list's lock and wakes every waiter. So "the counter
//!   reached zero since I looked" is exactly "the generation moved", even if an `add`
//!   raised the counter again before the waiter was polled.
//! - A waiter reads the state *under the wake list's lock* before registering, and the
//!   zeroing thread takes that lock *after* its atomic step: either the waiter sees the new
//!   generation (and completes), or the zeroing thread finds its waker (and wakes it).

use std::fmt;
use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, Ordering::*};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;

use runnel_reactor::wait;

use crate::wake_list::{wake_all, WakeList};

const COUNT_MASK: u64 = u32::MAX as u64;
const GENERATION_SHIFT: u32 = 32;

fn count_of(state: u64) -> u32 {
    (state & COUNT_MASK) as u32
}

fn generation_of(state: u64) -> u32 {
    (state >> GENERATION_SHIFT) as u32
}

fn state(count: u32, generation: u32) -> u64 {
    (u64::from(generation) << GENERATION_SHIFT) | u64::from(count)
}

struct Inner {
    state: AtomicU64,
    waiters: Mutex<WakeList>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, WakeList> {
        // No user code runs under this lock; a poisoned one still holds a consistent list.
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[track_caller]
    fn add(&self, n: usize) {
        let Ok(n) = u32::try_from(n) else {
            overflow(n);
        };
        if n == 0 {
            return;
        }
        // AcqRel, like `sub`: every change of the counter is one link of the same release
        // sequence, so a waiter that sees zero sees everything done before each `done`.
        let updated = self.state.fetch_update(AcqRel, Acquire, |s| {
            let count = count_of(s).checked_add(n)?;
            Some(state(count, generation_of(s)))
        });
        if updated.is_err() {
            overflow(n as usize);
        }
    }

    /// Subtracts one; `Err` (nothing changed) if the counter is zero.
    fn sub(&self) -> Result<(), NegativeCounter> {
        let updated = self.state.fetch_update(AcqRel, Acquire, |s| {
            let count = count_of(s).checked_sub(1)?;
            // Reaching zero bumps the generation in the same step (module invariant).
            let generation = match count {
                0 => generation_of(s).wrapping_add(1),
                _ => generation_of(s),
            };
            Some(state(count, generation))
        });
        match updated {
            Err(_) => return Err(NegativeCounter),
            Ok(previous) if count_of(previous) == 1 => {
                let wakers = self.lock().take_all();
                wake_all(wakers);
            }
            Ok(_) => {}
        }
        Ok(())
    }
}

struct NegativeCounter;

impl NegativeCounter {
    #[track_caller]
    fn panic(self) -> ! {
        panic!(
            "runnel::sync::WaitGroup: done() called with the counter at zero (a negative \
             WaitGroup counter). Every done() must match one add(1); a WaitGroupToken \
             (WaitGroup::token) calls done() exactly once, when it is dropped"
        )
    }
}

#[track_caller]
fn overflow(n: usize) -> ! {
    panic!(
        "runnel::sync::WaitGroup: add({n}) would take the counter above {} (u32::MAX)",
        u32::MAX
    )
}

/// Waits until a counter of pending work reaches zero: Go's `sync.WaitGroup`, for async
/// code (tokio has none).
///
/// Two ways to count, which may be mixed:
/// - **Go's shape**: [`add`](Self::add) before starting the work, [`done`](Self::done)
///   when it ends, [`wait`](Self::wait) for the counter to reach zero. Share the group by
///   reference or in an `Arc`, as Go code shares a `*sync.WaitGroup`.
/// - **RAII**: [`token`](Self::token) adds one and returns a [`WaitGroupToken`] whose drop
///   is `done()`; cloning a token adds one more. The token owns what it needs, so it moves
///   into a spawned task (`'static`), and a task that is aborted or panics still counts
///   itself done when its future (and the token) is dropped — with `add`/`done`, a
///   cancelled task that never reaches its `done()` leaves `wait` hanging.
///
/// ```
/// use runnel_sync::WaitGroup;
/// # futures::executor::block_on(async {
/// let wg = WaitGroup::new();
/// let mut workers = Vec::new();
/// for i in 0..3 {
///     let token = wg.token(); // counter + 1
///     workers.push(std::thread::spawn(move || {
///         let _token = token; // counter - 1 when this thread's work is done
///         i * 2
///     }));
/// }
/// wg.wait().await; // every token is dropped
/// assert_eq!(wg.count(), 0);
/// # });
/// ```
///
/// **Why this shape, not crossbeam's.** In `crossbeam::sync::WaitGroup` the group *is*
/// the token: `clone()` adds one, `drop` is done, and `wait(self)` consumes the waiter's
/// own token. That cannot express Go's explicit `add(n)`/`done()`, which ported code needs,
/// nor several tasks waiting on one group (`wait(&self)` here). So the counter and the
/// token are two types, and `WaitGroup` is deliberately not `Clone`: the crossbeam habit
/// `let wg2 = wg.clone()` does not compile, rather than silently sharing the group without
/// counting anything (use `token()`, or an `Arc<WaitGroup>` with `add`/`done`).
///
/// Reuse: once `wait` returned, the group may count a new round. A `wait` completes when
/// the counter reaches zero at or after its first poll, even if an `add` raises it again
/// before the waiter runs.
///
/// Runtime-agnostic: any executor may poll `wait`. On runnel, a task in `wait` is listed in
/// task dumps and reports as waiting on `completion of wait group <address>`; its waker is
/// held by the group, so to the deadlock detector it is woken by a holder the runtime cannot
/// see ("maybe": a stall report, never a deadlock report). One exception, found while the
/// rest of the runtime runs: a group that lives inside the waiting task's own future, with
/// no token out, can only reach zero by that task's own `done` — a `partial deadlock`
/// report (Go's `wg.Add(1); wg.Wait()`).
pub struct WaitGroup {
    inner: Arc<Inner>,
}

impl WaitGroup {
    /// A group with the counter at zero.
    pub fn new() -> WaitGroup {
        WaitGroup {
            inner: Arc::new(Inner {
                state: AtomicU64::new(0),
                waiters: Mutex::new(WakeList::new()),
            }),
        }
    }

    /// Adds `n` to the counter (Go's `Add(n)`; call it before starting the work it counts,
    /// not inside that work, or `wait` may see zero first).
    ///
    /// # Panics
    /// If the counter would exceed `u32::MAX`.
    #[track_caller]
    pub fn add(&self, n: usize) {
        self.inner.add(n);
    }

    /// Subtracts one from the counter, waking every waiter when it reaches zero (Go's
    /// `Done()`).
    ///
    /// # Panics
    /// If the counter is zero (more `done()`s than `add`s): the counter is left at zero.
    #[track_caller]
    pub fn done(&self) {
        if let Err(negative) = self.inner.sub() {
            negative.panic();
        }
    }

    /// Adds one to the counter and returns a token that subtracts it again when dropped
    /// (see the type's docs).
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let wg = runnel_sync::WaitGroup::new();
    /// let token = wg.token();
    /// assert_eq!(wg.count(), 1);
    /// let second = token.clone();
    /// assert_eq!(wg.count(), 2);
    /// drop(token);
    /// second.done(); // the same as dropping it
    /// wg.wait().await;
    /// # });
    /// ```
    #[track_caller]
    pub fn token(&self) -> WaitGroupToken {
        self.inner.add(1);
        WaitGroupToken {
            inner: self.inner.clone(),
        }
    }

    /// The counter now (a snapshot: other threads may change it at once).
    pub fn count(&self) -> usize {
        count_of(self.inner.state.load(Acquire)) as usize
    }

    /// Waits until the counter is zero (Go's `Wait()`): at once if it is zero when first
    /// polled, otherwise when it next reaches zero. Any number of tasks may wait; all of
    /// them are woken. Everything done before each `done()` (or token drop) is visible
    /// after `wait` returns.
    ///
    /// **Cancel safety:** cancel-safe. Waiting changes no count; a dropped `wait` future
    /// removes only its own waker, and the other waiters are still woken.
    pub async fn wait(&self) {
        let inner = &*self.inner;
        let mut registration = Registration {
            group: self,
            key: None,
            generation: None,
        };
        poll_fn(|cx| {
            // Lock-free look first: a group already at zero, or a round already over.
            if registration.finished(inner.state.load(Acquire)) {
                return Poll::Ready(());
            }
            let mut waiters = inner.lock();
            // Again under the lock (module invariant): a zeroing thread that our read
            // misses has not taken the lock yet, and will find the waker stored below.
            let now = inner.state.load(Acquire);
            if registration.finished(now) {
                return Poll::Ready(());
            }
            registration.generation.get_or_insert(generation_of(now));
            waiters.register(&mut registration.key, cx.waker());
            drop(waiters);
            crate::note_wait(crate::SyncKind::WaitGroup, inner);
            // No token exists (a token holds the other reference), so only a holder of
            // `&WaitGroup` can call `done`: the wait-for graph compares where this group
            // lives with the waiting task's own future. A token made later needs
            // `&WaitGroup` too, so it cannot come from anyone the comparison rules out.
            if Arc::strong_count(&self.inner) == 1 {
                wait::register_wait_at(self, cx.waker());
            }
            Poll::Pending
        })
        .await;
    }

    /// Blocks the calling thread until the counter is zero, as [`wait`](Self::wait) does
    /// for a task. For synchronous code outside any runtime (a plain thread); in async
    /// code, `wait().await` instead — this would block the worker.
    pub fn blocking_wait(&self) {
        crate::block_on::block_on(self.wait());
    }
}

/// A waiting `wait` future's place in the wake list, removed when the future completes or
/// is dropped.
struct Registration<'a> {
    group: &'a WaitGroup,
    key: Option<usize>,
    /// The generation seen at the first `Pending`; `None` before it.
    generation: Option<u32>,
}

impl Registration<'_> {
    /// Whether the wait is over, given the group's state now.
    fn finished(&self, now: u64) -> bool {
        match self.generation {
            None => count_of(now) == 0,
            // The counter reached zero since we registered (module invariant).
            Some(seen) => generation_of(now) != seen,
        }
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        if self.key.is_some() {
            wait::unregister_wait_at(self.group);
            self.group.inner.lock().remove(&mut self.key);
        }
    }
}

impl Default for WaitGroup {
    fn default() -> WaitGroup {
        WaitGroup::new()
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroup")
            .field("count", &self.count())
            .finish()
    }
}

/// One unit of a [`WaitGroup`]'s counter, held by the work it counts: made by
/// [`WaitGroup::token`] (which adds one), `clone()` adds one more, and dropping it (or
/// [`done`](Self::done)) subtracts one. Owns a reference to the group, so it can move into
/// a `'static` task or thread.
pub struct WaitGroupToken {
    inner: Arc<Inner>,
}

impl WaitGroupToken {
    /// Marks this unit of work done: the same as dropping the token, spelled out.
    pub fn done(self) {
        drop(self);
    }
}

impl Clone for WaitGroupToken {
    /// Adds one to the counter: the clone is one more unit of work.
    #[track_caller]
    fn clone(&self) -> WaitGroupToken {
        self.inner.add(1);
        WaitGroupToken {
            inner: self.inner.clone(),
        }
    }
}

impl Drop for WaitGroupToken {
    fn drop(&mut self) {
        // Fails only if a stray `done()` already took this token's unit: a bug to report,
        // unless this thread is unwinding already (a second panic would abort).
        if let Err(negative) = self.inner.sub() {
            if !std::thread::panicking() {
                negative.panic();
            }
        }
    }
}

impl fmt::Debug for WaitGroupToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroupToken")
            .field("count", &count_of(self.inner.state.load(Acquire)))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::task::noop_waker;
    use std::future::Future;
    use std::pin::pin;
    use std::task::Context;

    fn poll<F: Future>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(&noop_waker()))
    }

    #[test]
    fn zero_is_ready_at_once() {
        let wg = WaitGroup::new();
        assert!(poll(pin!(wg.wait())).is_ready());
    }

    #[test]
    fn waits_for_every_done() {
        let wg = WaitGroup::new();
        wg.add(2);
        let mut w = pin!(wg.wait());
        assert!(poll(w.as_mut()).is_pending());
        wg.done();
        assert!(poll(w.as_mut()).is_pending());
        wg.done();
        assert!(poll(w.as_mut()).is_ready());
    }

    #[test]
    fn a_round_that_ended_completes_the_waiter_even_if_counting_resumed() {
        let wg = WaitGroup::new();
        wg.add(1);
        let mut w = pin!(wg.wait());
        assert!(poll(w.as_mut()).is_pending());
        wg.done(); // the round the waiter waited for is over...
        wg.add(1); // ...and a new one started before it was polled again
        assert!(poll(w.as_mut()).is_ready());
        // A new waiter waits for the new round.
        let mut w2 = pin!(wg.wait());
        assert!(poll(w2.as_mut()).is_pending());
        wg.done();
        assert!(poll(w2.as_mut()).is_ready());
    }

    #[test]
    fn a_dropped_waiter_leaves_the_list() {
        let wg = WaitGroup::new();
        wg.add(1);
        let mut w = Box::pin(wg.wait());
        assert!(poll(w.as_mut()).is_pending());
        assert_eq!(wg.inner.lock().take_all().len(), 1);
        drop(w);
        assert!(wg.inner.lock().take_all().is_empty());
        wg.done();
    }

    #[test]
    fn generation_wraps() {
        let wg = WaitGroup::new();
        wg.inner.state.store(state(1, u32::MAX), Relaxed);
        let mut w = pin!(wg.wait());
        assert!(poll(w.as_mut()).is_pending());
        wg.done();
        assert_eq!(generation_of(wg.inner.state.load(Relaxed)), 0);
        assert!(poll(w.as_mut()).is_ready());
    }

    #[test]
    fn tokens_count() {
        let wg = WaitGroup::new();
        let a = wg.token();
        let b = a.clone();
        wg.add(3);
        assert_eq!(wg.count(), 5);
        drop(a);
        b.done();
        for _ in 0..3 {
            wg.done();
        }
        assert_eq!(wg.count(), 0);
    }

    #[test]
    #[should_panic(expected = "negative WaitGroup counter")]
    fn done_below_zero_panics() {
        WaitGroup::new().done();
    }

    #[test]
    fn a_refused_done_changes_nothing() {
        let wg = WaitGroup::new();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| wg.done()));
        assert!(caught.is_err());
        assert_eq!(wg.count(), 0);
        assert_eq!(generation_of(wg.inner.state.load(Relaxed)), 0);
    }

    #[test]
    #[should_panic(expected = "above 4294967295")]
    fn overflow_panics() {
        let wg = WaitGroup::new();
        wg.add(u32::MAX as usize);
        wg.add(1);
    }
}
