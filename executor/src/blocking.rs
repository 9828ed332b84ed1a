//! The blocking pool: threads for `spawn_blocking` jobs, started on demand, capped, and
//! retired after `keep_alive` of idleness.
//!
//! Jobs are ordinary tasks (one allocation, a `JoinHandle`, `abort` before start cancels)
//! whose scheduler is the pool. Each job is counted in the scheduler's `blocking` count
//! from submission until its joiner has been woken, so the deadlock detector never
//! reports while a blocking job could still wake someone (ARCHITECTURE.md invariant 3: count
//! first, publish second; invariant 2: the end of a job runs the check).
//!
//! Pool state invariants (under `state`): `idle` counts threads waiting on the condvar
//! that no push has claimed yet; every claim (`idle -= 1`, `wakeups += 1`) is matched by
//! one `notify_one`, and a woken thread consumes one `wakeups` before looking at the queue.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::scheduler::Shared;
use crate::task::{self, JoinHandle, Notified, Schedule, Task};
use crate::{context, detector};

/// The scheduler of blocking jobs: they are run once by a pool thread, never woken. Holds
/// the runtime's id (`Shared::id`), which is all a job's header needs of it.
pub(crate) struct BlockingSchedule(u64);

impl Schedule for BlockingSchedule {
    fn schedule(&self, _task: Notified<Self>) {
        unreachable!("a blocking job is queued once and never woken");
    }

    fn release(&self, _task: &Task<Self>) -> Option<Task<Self>> {
        None
    }

    fn owner(&self) -> u64 {
        self.0
    }
}

/// Runs the closure when polled, once.
struct BlockingTask<F>(Option<F>);

impl<F> Unpin for BlockingTask<F> {}

impl<R, F: FnOnce() -> R> Future for BlockingTask<F> {
    type Output = R;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<R> {
        let f = self
            .0
            .take()
            .expect("blocking task polled after completion");
        Poll::Ready(f())
    }
}

pub(crate) struct BlockingPool {
    state: Mutex<PoolState>,
    cvar: Condvar,
    max_threads: usize,
    keep_alive: Duration,
}

#[derive(Default)]
struct PoolState {
    queue: VecDeque<Notified<BlockingSchedule>>,
    threads: usize,
    idle: usize,
    wakeups: usize,
    shutdown: bool,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl BlockingPool {
    pub(crate) fn new(max_threads: usize, keep_alive: Duration) -> BlockingPool {
        BlockingPool {
            state: Mutex::new(PoolState::default()),
            cvar: Condvar::new(),
            max_threads,
            keep_alive,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn threads(&self) -> usize {
        self.lock().threads
    }

    /// Stops the pool: cancels queued jobs, then waits for running ones until `deadline`.
    pub(crate) fn shutdown(&self, shared: &Shared, deadline: Option<Instant>) {
        let (queued, handles) = {
            let mut state = self.lock();
            state.shutdown = true;
            (
                std::mem::take(&mut state.queue),
                std::mem::take(&mut state.handles),
            )
        };
        // Only a thread of ours can wait on the condvar, and every live one is in
        // `handles` (it leaves only once finished): with none, skip the notify's syscall
        // (a runtime that never ran a blocking job shuts down without one).
        if !handles.is_empty() {
            self.cvar.notify_all();
        }
        for job in queued {
            job.shutdown();
            job_finished(shared);
        }
        for handle in handles {
            if let Some(deadline) = deadline {
                // std has no timed join: wait for the thread to report it finished.
                while !handle.is_finished() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
                if !handle.is_finished() {
                    continue; // detached: it finishes its job on its own
                }
            }
            let _ = handle.join();
        }
    }
}

/// Submits `f` to the blocking pool of `shared`.
#[track_caller]
pub(crate) fn spawn_blocking<F, R>(shared: &Arc<Shared>, f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let id = task::Id::next();
    // A job may hold a task's waker, or call `block_on`: sysmon must be watching.
    shared.poller.ensure_started(shared);
    let (task, notified, join) =
        task::new_task(BlockingTask(Some(f)), BlockingSchedule(shared.id), id);
    // No owned list for jobs: the queue (then the running thread) owns them.
    drop(task);
    shared.idle.blocking_start();
    let pool = &shared.blocking;
    let mut state = pool.lock();
    if state.shutdown {
        drop(state);
        notified.shutdown();
        job_finished(shared);
        return join;
    }
    state.queue.push_back(notified);
    if state.idle > 0 {
        state.idle -= 1;
        state.wakeups += 1;
        pool.cvar.notify_one();
    } else if state.threads < pool.max_threads {
        state.threads += 1;
        state.handles.retain(|h| !h.is_finished());
        let shared = shared.clone();
        let spawned = shared
            .config
            .thread_builder("blocking")
            .spawn(move || run_thread(shared));
        match spawned {
            Ok(handle) => state.handles.push(handle),
            Err(err) => {
                // The queued job is picked up by an existing thread, if any; with none,
                // it would wait forever: say so instead of hanging.
                state.threads -= 1;
                assert!(
                    state.threads > 0,
                    "runnel: failed to start a blocking-pool thread and none is running: {err}"
                );
            }
        }
    }
    join
}

fn run_thread(shared: Arc<Shared>) {
    let _context = context::enter_blocking(&shared);
    let _reactor = shared.reactor.enter();
    let pool = &shared.blocking;
    let mut state = pool.lock();
    loop {
        if let Some(job) = state.queue.pop_front() {
            drop(state);
            job.run();
            job_finished(&shared);
            state = pool.lock();
            continue;
        }
        if state.shutdown {
            break;
        }
        state.idle += 1;
        let (next, timeout) = pool
            .cvar
            .wait_timeout(state, pool.keep_alive)
            .unwrap_or_else(|e| e.into_inner());
        state = next;
        if state.wakeups > 0 {
            state.wakeups -= 1;
        } else if state.shutdown {
            state.idle -= 1;
        } else if timeout.timed_out() {
            state.idle -= 1;
            break;
        } else {
            // Spurious wakeup: still idle, and not claimed.
            state.idle -= 1;
        }
    }
    state.threads -= 1;
}

/// A job ran (its joiner is woken) or was cancelled: uncount it, then run the check.
fn job_finished(shared: &Shared) {
    detector::after_transition(shared, detector::Counts::blocking_end);
}
