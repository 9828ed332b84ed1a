//! The public face of the executor: `Builder`, `Runtime`, `Handle`, `OnDeadlock`.
//!
//! A `Runtime` owns its threads: `worker_threads` workers (each started when it is first
//! claimed for work: `Shared::wake_claimed`), one poller (started on first need:
//! `poller::PollerThread`), and the blocking pool's threads (on demand). Dropping it
//! shuts down in an order that frees every task exactly once (see `Runtime::shutdown`).

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::io;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::blocking::{self, BlockingPool};
use crate::dump::TaskDump;
use crate::metrics::RuntimeMetrics;
use crate::poller::PollerThread;
use crate::scheduler::idle::Idle;
use crate::scheduler::injector::Injector;
use crate::scheduler::role::RoleState;
use crate::scheduler::{threads, Remote, Shared};
#[cfg(unix)]
use crate::signal_dump::DumpOnSignal;
use crate::task::{self, JoinHandle, OwnedTasks};
use crate::{block_on, context};

/// What the runtime does when it finds that no task can ever make progress.
///
/// ```
/// use runnel_executor::{Builder, OnDeadlock};
/// let rt = Builder::new().on_deadlock(OnDeadlock::Report).build().unwrap();
/// # drop(rt);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OnDeadlock {
    /// The `block_on` caller panics with `all tasks are asleep - deadlock!` and the list
    /// of stuck tasks (like Go's fatal error). With no `block_on` active, acts as `Report`.
    #[default]
    Panic,
    /// Print the report to stderr and keep waiting.
    Report,
    /// Only count it (`RuntimeMetrics::deadlock_reports`).
    Ignore,
}

/// What the runtime does when a spawned task panics (tokio's unstable option of the same
/// name; stable here). Either way the panic is caught and the task's `JoinHandle` gives a
/// [`JoinError`](crate::JoinError) for which `is_panic()` is true.
///
/// ```
/// use runnel_executor::{Builder, UnhandledPanic};
/// let rt = Builder::new()
///     .unhandled_panic(UnhandledPanic::ShutdownRuntime)
///     .build()
///     .unwrap();
/// let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
///     rt.block_on(async {
///         runnel_executor::spawn(async { panic!("a bug") }).await
///     })
/// }));
/// // block_on panicked: the runtime was shut down by the task's panic.
/// assert!(result.is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UnhandledPanic {
    /// The panic only fails that task (default).
    #[default]
    Ignore,
    /// The first panic of a spawned task (`spawn`, not `spawn_blocking`) shuts the runtime
    /// down at once, before the task's `JoinHandle` completes:
    /// - every other task is cancelled (a task in the middle of a poll, when that poll
    ///   returns), and every later `spawn` gives a task that is cancelled at once;
    /// - every `block_on` of the runtime — running now or called later — panics with
    ///   `the runtime was shut down because task N panicked ...` at its next wake-up or
    ///   before its next poll, and never polls its future again. A `block_on` that was
    ///   asleep when the task panicked therefore never sees the task's `JoinError` (the
    ///   shutdown happens before the `JoinHandle` completes). One exception, because the
    ///   runtime is multi-threaded: a poll of a `block_on` future that is already running
    ///   when the task panics may see the `JoinError` (the task can panic and complete on a
    ///   worker during that poll); if that poll returns `Ready`, `block_on` returns its
    ///   output, otherwise it panics as above.
    ///
    /// The threads keep running until the `Runtime` is dropped, which shuts down as usual.
    /// Panics in `spawn_blocking` closures are not covered (as in tokio).
    ShutdownRuntime,
}

type NameFn = Arc<dyn Fn() -> String + Send + Sync>;

/// Settings shared by the runtime's threads.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) on_deadlock: OnDeadlock,
    /// What a partial deadlock or a leaked task does (`detector/graph.rs`).
    pub(crate) on_partial_deadlock: OnDeadlock,
    /// How long the tasks of a partial deadlock (or a leaked task) must stay unpolled
    /// before it is reported.
    pub(crate) partial_deadlock_after: Duration,
    pub(crate) stall_report_after: Option<Duration>,
    /// A poll longer than this is retaken (its worker's queue handed to a spare thread);
    /// `None` turns retake off (such polls are still counted as stalls).
    pub(crate) retake_after: Option<Duration>,
    /// Off only to measure what the detector costs (benchmarks); see `Builder`.
    pub(crate) deadlock_check: bool,
    pub(crate) unhandled_panic: UnhandledPanic,
    /// `Builder::new_current_thread`: no worker thread; the `block_on` caller holding the
    /// core runs the tasks (`scheduler::core`).
    pub(crate) current_thread: bool,
    thread_name: NameFn,
    stack_size: Option<usize>,
}

impl Config {
    pub(crate) fn thread_builder(&self, role: &str) -> thread::Builder {
        let mut builder = thread::Builder::new().name(format!("{}-{role}", (self.thread_name)()));
        if let Some(size) = self.stack_size {
            builder = builder.stack_size(size);
        }
        builder
    }

    /// The poller thread's builder: named like the others, but with the platform's default
    /// stack, not `thread_stack_size` (which is for threads that poll tasks). It starts on
    /// first need (`poller::PollerThread`), possibly long after `build`, so it should not
    /// need a large mapping that a later address-space limit may refuse.
    pub(crate) fn poller_thread_builder(&self) -> thread::Builder {
        thread::Builder::new().name(format!("{}-poller", (self.thread_name)()))
    }
}

/// Configures and builds a [`Runtime`].
///
/// ```
/// let rt = runnel_executor::Builder::new()
///     .worker_threads(2)
///     .thread_name("my-server")
///     .build()
///     .unwrap();
/// assert_eq!(rt.block_on(async { 1 + 1 }), 2);
/// ```
pub struct Builder {
    worker_threads: Option<usize>,
    max_spare_threads: Option<usize>,
    max_blocking_threads: usize,
    thread_keep_alive: Duration,
    #[cfg(unix)]
    dump_on_signal: Option<runnel_reactor::signal::unix::SignalKind>,
    config: Config,
}

/// Default cap on blocking-pool threads (tokio's, so code that relies on it moves over).
const MAX_BLOCKING_THREADS: usize = 512;
/// Idle blocking threads exit after this long.
const THREAD_KEEP_ALIVE: Duration = Duration::from_secs(10);
/// A poll longer than this is a stall (blocking code in a task); Go's sysmon uses 10 ms.
const RETAKE_AFTER: Duration = Duration::from_millis(10);
/// Below this, a poll is not counted as a stall even when retake is off.
pub(crate) const STALL_AFTER: Duration = RETAKE_AFTER;
/// A task that blocks its worker this long is named on stderr: that is a bug to fix.
pub(crate) const BLOCKING_REPORT_AFTER: Duration = Duration::from_secs(1);
/// Default quiet period before a stall report.
const STALL_REPORT_AFTER: Duration = Duration::from_secs(10);
/// Default quiet period of the tasks in a partial deadlock before it is reported.
const PARTIAL_DEADLOCK_AFTER: Duration = Duration::from_secs(1);

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// A builder with the defaults: one worker per CPU, `OnDeadlock::Panic`, stall report
    /// after 10 s, up to 512 blocking threads kept alive 10 s.
    pub fn new() -> Builder {
        Builder {
            worker_threads: None,
            max_spare_threads: None,
            max_blocking_threads: MAX_BLOCKING_THREADS,
            thread_keep_alive: THREAD_KEEP_ALIVE,
            #[cfg(unix)]
            dump_on_signal: None,
            config: Config {
                on_deadlock: OnDeadlock::Panic,
                on_partial_deadlock: OnDeadlock::Report,
                partial_deadlock_after: PARTIAL_DEADLOCK_AFTER,
                stall_report_after: Some(STALL_REPORT_AFTER),
                retake_after: Some(RETAKE_AFTER),
                deadlock_check: true,
                unhandled_panic: UnhandledPanic::Ignore,
                current_thread: false,
                thread_name: Arc::new(|| "runnel".to_owned()),
                stack_size: None,
            },
        }
    }

    /// The same as [`Builder::new`] (tokio's name, so `Builder::new_multi_thread()` code
    /// moves over unchanged).
    pub fn new_multi_thread() -> Builder {
        Builder::new()
    }

    /// Accepted for tokio compatibility and does nothing: a runnel runtime always has its
    /// I/O reactor and timers.
    ///
    /// ```
    /// let rt = runnel_executor::Builder::new_multi_thread().enable_all().build().unwrap();
    /// # drop(rt);
    /// ```
    pub fn enable_all(&mut self) -> &mut Self {
        self
    }

    /// A builder for a current-thread runtime: no worker thread; tasks run on the thread
    /// that calls [`Runtime::block_on`], while it is inside it (tokio's `current_thread`
    /// flavour). Several threads may be in `block_on` at once: one of them (the first)
    /// runs the tasks, and hands that job to another when its `block_on` returns.
    /// `spawn_blocking` still runs on the blocking pool, and a monitor thread (sysmon:
    /// deadlock re-checks, stall and partial-deadlock reports) starts on first need. The
    /// deadlock detector works as on the multi-thread runtime. `worker_threads`,
    /// `retake_after` and `max_spare_threads` have no effect: a task that blocks the one
    /// thread blocks the runtime (it is named on stderr after a second).
    ///
    /// ```
    /// let rt = runnel_executor::Builder::new_current_thread().build().unwrap();
    /// let thread = std::thread::current().id();
    /// let ran_on = rt.block_on(async {
    ///     runnel_executor::spawn(async { std::thread::current().id() }).await.unwrap()
    /// });
    /// assert_eq!(ran_on, thread);
    /// ```
    pub fn new_current_thread() -> Builder {
        let mut builder = Builder::new();
        builder.config.current_thread = true;
        builder.config.retake_after = None;
        builder
    }

    /// Number of worker threads (default: `std::thread::available_parallelism`). No
    /// effect on a current-thread runtime. Each starts when work first needs it (a spawn,
    /// a wake, a `block_on` that has to wait), not in `build`: a runtime whose `block_on`
    /// future is ready at once starts none, and a failure to start one panics there (as
    /// tokio's blocking pool does) instead of failing `build`.
    ///
    /// # Panics
    /// If `n` is 0: a runtime without workers could never run a task.
    #[track_caller]
    pub fn worker_threads(&mut self, n: usize) -> &mut Self {
        assert!(n > 0, "runnel: worker_threads must be at least 1 (a runtime with no workers cannot run tasks)");
        self.worker_threads = Some(n);
        self
    }

    /// When a task's poll runs longer than `after` (blocking code in async code), hand the
    /// work queued behind it on its worker to a spare thread (Go's sysmon `retake`).
    /// Default 10 ms; `None` turns it off.
    ///
    /// ```
    /// let rt = runnel_executor::Builder::new()
    ///     .retake_after(Some(std::time::Duration::from_millis(5)))
    ///     .max_spare_threads(4)
    ///     .build()
    ///     .unwrap();
    /// # drop(rt);
    /// ```
    pub fn retake_after(&mut self, after: Option<Duration>) -> &mut Self {
        if self.config.current_thread {
            return self; // Nothing to retake: the one thread is the caller's.
        }
        self.config.retake_after = after;
        self
    }

    /// Cap on spare worker threads started by retakes (default: the worker count). Worker
    /// threads in all never exceed `worker_threads + max_spare_threads`; spares exit after
    /// `thread_keep_alive` without a role.
    pub fn max_spare_threads(&mut self, n: usize) -> &mut Self {
        self.max_spare_threads = Some(n);
        self
    }

    /// Cap on blocking-pool threads (default 512).
    ///
    /// # Panics
    /// If `n` is 0: `spawn_blocking` jobs would never run.
    #[track_caller]
    pub fn max_blocking_threads(&mut self, n: usize) -> &mut Self {
        assert!(
            n > 0,
            "runnel: max_blocking_threads must be at least 1 (spawn_blocking jobs would never run)"
        );
        self.max_blocking_threads = n;
        self
    }

    /// How long an idle blocking thread (or a spare worker thread) waits for work before it
    /// exits (default 10 s).
    pub fn thread_keep_alive(&mut self, d: Duration) -> &mut Self {
        self.thread_keep_alive = d;
        self
    }

    /// Name prefix of the runtime's threads (`<name>-worker`, `<name>-poller`, ...).
    pub fn thread_name(&mut self, name: impl Into<String>) -> &mut Self {
        let name = name.into();
        self.config.thread_name = Arc::new(move || name.clone());
        self
    }

    /// Stack size of the runtime's threads that poll tasks (workers, blocking pool), in
    /// bytes. The poller thread polls no task and keeps the default.
    pub fn thread_stack_size(&mut self, bytes: usize) -> &mut Self {
        self.config.stack_size = Some(bytes);
        self
    }

    /// What to do on a deadlock (default [`OnDeadlock::Panic`]).
    pub fn on_deadlock(&mut self, action: OnDeadlock) -> &mut Self {
        self.config.on_deadlock = action;
        self
    }

    /// What to do when some tasks can never run again while the rest of the runtime goes
    /// on: a cycle in the wait-for graph (tasks awaiting each other's `JoinHandle`s, or
    /// `runnel::sync` locks held by each other) or a leaked task (it returned `Pending`
    /// and no waker of it exists). Default [`OnDeadlock::Report`]: one report on stderr
    /// and the `partial_deadlocks` / `leaked_tasks` metrics. `Panic` makes every
    /// `block_on` caller panic with the report (what `#[runnel::test]` uses); `Ignore`
    /// only counts. See ARCHITECTURE.md, "The wait-for graph", for what is certain and
    /// what is likely.
    ///
    /// ```
    /// use runnel_executor::{Builder, OnDeadlock};
    /// let rt = Builder::new()
    ///     .on_partial_deadlock(OnDeadlock::Panic)
    ///     .partial_deadlock_after(std::time::Duration::from_millis(500))
    ///     .build()
    ///     .unwrap();
    /// # drop(rt);
    /// ```
    pub fn on_partial_deadlock(&mut self, action: OnDeadlock) -> &mut Self {
        self.config.on_partial_deadlock = action;
        self
    }

    /// How long every task of a partial deadlock (or a leaked task) must have gone
    /// unpolled before it is reported (default 1 s). Cycles through locks are a
    /// presumption (a guard can move), and this quiet period is what keeps a moment's
    /// lock order from being mistaken for a deadlock.
    pub fn partial_deadlock_after(&mut self, quiet: Duration) -> &mut Self {
        self.config.partial_deadlock_after = quiet;
        self
    }

    /// After this long with no task running while tasks wait on wakers held outside the
    /// runtime (so no deadlock can be proven), print one stall report naming the waiting
    /// tasks. `None` turns it off. Default 10 s.
    pub fn stall_report_after(&mut self, quiet: Option<Duration>) -> &mut Self {
        self.config.stall_report_after = quiet;
        self
    }

    /// What a panic in a spawned task does to the runtime (default
    /// [`UnhandledPanic::Ignore`]; see [`UnhandledPanic::ShutdownRuntime`] for exactly
    /// what shutting down means).
    pub fn unhandled_panic(&mut self, behavior: UnhandledPanic) -> &mut Self {
        self.config.unhandled_panic = behavior;
        self
    }

    /// On each delivery of `signal` (e.g. `Some(SignalKind::quit())`, Go's SIGQUIT), print
    /// this runtime's task dump ([`Handle::dump`]) to stderr. Unlike Go, the process keeps
    /// running. Default `None` (off).
    ///
    /// The listener is a plain thread (`<name>-dump`), not a task: a task waiting for a
    /// signal counts as waiting for I/O, which would keep the deadlock detector from ever
    /// reporting. With this on, deadlocks are reported as without it.
    ///
    /// Installing the handler is for the life of the process, as with
    /// [`signal`](runnel_reactor::signal::unix::signal): the signal's default action (for
    /// SIGQUIT, a core dump) no longer happens, even after the runtime is dropped. Other
    /// listeners of the same signal (a `Signal` stream, another runtime) still see each
    /// delivery. [`build`](Self::build) fails with `InvalidInput` for a signal that cannot
    /// be handled (SIGKILL, SIGSTOP, SIGILL, SIGFPE, SIGSEGV) or is not a signal number.
    ///
    /// ```no_run
    /// use runnel_reactor::signal::unix::SignalKind;
    /// let rt = runnel_executor::Builder::new()
    ///     .dump_on_signal(Some(SignalKind::quit())) // `kill -QUIT <pid>` prints the dump
    ///     .build()
    ///     .unwrap();
    /// # drop(rt);
    /// ```
    #[cfg(unix)]
    pub fn dump_on_signal(
        &mut self,
        signal: Option<runnel_reactor::signal::unix::SignalKind>,
    ) -> &mut Self {
        self.dump_on_signal = signal;
        self
    }

    /// Turns the deadlock check off entirely. Not for production: it exists so the
    /// benchmarks can measure what the detector's bookkeeping costs.
    #[doc(hidden)]
    pub fn disable_deadlock_check_for_benchmarks(&mut self) -> &mut Self {
        self.config.deadlock_check = false;
        self
    }

    /// Builds the runtime and starts its worker threads (the poller thread starts once a
    /// spawned task is still live when a worker looks, a `block_on` caller first sleeps,
    /// or a blocking job is submitted).
    pub fn build(&mut self) -> io::Result<Runtime> {
        let current_thread = self.config.current_thread;
        // A current-thread runtime has one worker role and no thread for it: the
        // `block_on` caller holding the core runs it.
        let workers = if current_thread {
            1
        } else {
            self.worker_threads
                .unwrap_or_else(|| thread::available_parallelism().map_or(1, |n| n.get()))
        };
        let threads = if current_thread { 0 } else { workers };
        let spares = if current_thread {
            0
        } else {
            self.max_spare_threads.unwrap_or(workers)
        };
        // Before any thread starts: a signal that cannot be handled fails the build.
        #[cfg(unix)]
        let dump_on_signal = self.dump_on_signal.map(DumpOnSignal::listen).transpose()?;
        let (driver, reactor) = runnel_reactor::Driver::new()?;
        static NEXT_RUNTIME_ID: AtomicU64 = AtomicU64::new(1);
        let shared = Arc::new(Shared {
            id: NEXT_RUNTIME_ID.fetch_add(1, Relaxed),
            // The first `workers` roles are active; the others wait for retakes.
            remotes: (0..workers + spares)
                .map(|i| {
                    Remote::new(
                        &reactor,
                        if i < workers {
                            RoleState::Active
                        } else {
                            RoleState::Free
                        },
                        i < threads,
                    )
                })
                .collect(),
            injector: Injector::new(),
            // A multi-thread runtime's workers start parked with no thread; the first
            // claim of each starts it (`Shared::wake_claimed`).
            idle: if current_thread {
                Idle::with_threads(workers, 0)
            } else {
                Idle::with_parked_threads(workers)
            },
            core: crate::scheduler::core::CoreSlot::default(),
            owned: OwnedTasks::new(4 * workers),
            reactor,
            driver: std::sync::Mutex::new(driver),
            reactor_polled_at: AtomicU64::new(0),
            epoch: Instant::now(),
            blocking: BlockingPool::new(self.max_blocking_threads, self.thread_keep_alive),
            config: self.config.clone(),
            shutdown: AtomicBool::new(false),
            panic_shutdown: PanicShutdown::default(),
            outside_handles: AtomicUsize::new(0),
            reactor_wakeups: AtomicU64::new(0),
            token_drains: AtomicU64::new(0),
            deadlock_checks: AtomicU64::new(0),
            deadlock_reports: AtomicU64::new(0),
            stalls: AtomicU64::new(0),
            stall_reports: AtomicU64::new(0),
            partial_deadlocks: AtomicU64::new(0),
            wait_ages: Default::default(),
            leaked_tasks: AtomicU64::new(0),
            retakes: AtomicU64::new(0),
            block_on_polls: AtomicU64::new(0),
            spares: threads::SparePool::new(workers + spares, self.thread_keep_alive),
            poller: PollerThread::new(),
        });
        if !current_thread {
            // Worker threads start when first claimed, and an idle one is what sleeps in
            // the reactor's poll. A waker stored in the reactor while none has started (by
            // this runtime's `block_on` future, code under `enter`, or a task of another
            // runtime) claims one, so its I/O or timer is served at once rather than on
            // sysmon's tick, or never if sysmon is not running. Weak: the reactor is part
            // of `Shared`.
            let weak = Arc::downgrade(&shared);
            shared.reactor.on_first_waiter(Box::new(move || {
                if let Some(shared) = weak.upgrade() {
                    if !shared.has_worker_thread() {
                        shared.notify_parked();
                    }
                }
            }));
        }
        let mut runtime = Runtime {
            handle: Handle::new(shared.clone()),
            #[cfg(unix)]
            dump_on_signal,
        };
        #[cfg(unix)]
        if let Some(dump) = &mut runtime.dump_on_signal {
            let name = format!("{}-dump", (self.config.thread_name)());
            dump.start(&shared, thread::Builder::new().name(name))?;
        }
        // No worker thread starts here: each starts when its role is first claimed for
        // work (`Shared::wake_claimed`); the poller thread on first need (`PollerThread`).
        Ok(runtime)
    }
}

/// A runnel runtime: worker threads, a poller thread, a blocking pool.
///
/// ```
/// let rt = runnel_executor::Runtime::new().unwrap();
/// let answer = rt.block_on(async {
///     let task = runnel_executor::spawn(async { 40 });
///     task.await.unwrap() + 2
/// });
/// assert_eq!(answer, 42);
/// ```
pub struct Runtime {
    handle: Handle,
    /// `Builder::dump_on_signal`'s listener, stopped first at shutdown.
    #[cfg(unix)]
    dump_on_signal: Option<DumpOnSignal>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("workers", &self.handle.shared.idle.num_workers())
            .finish()
    }
}

impl Runtime {
    /// A runtime with the default settings (see [`Builder::new`]).
    pub fn new() -> io::Result<Runtime> {
        Builder::new().build()
    }

    /// Runs `future` on the calling thread until it completes, while the workers run
    /// spawned tasks. If the runtime deadlocks while waiting, panics with the report
    /// (unless the builder chose another [`OnDeadlock`]).
    ///
    /// # Panics
    /// When called from a runtime thread (a worker, or inside another `block_on`):
    /// `.await` the future instead.
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.handle.block_on(future)
    }

    /// Spawns a task; see [`spawn`](crate::spawn).
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }

    /// Runs `f` on the blocking pool; see [`spawn_blocking`](crate::spawn_blocking).
    #[track_caller]
    pub fn spawn_blocking<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.handle.spawn_blocking(f)
    }

    /// A handle to this runtime, usable from any thread.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Makes this runtime current on this thread until the guard drops, so
    /// [`spawn`](crate::spawn) works from synchronous code.
    pub fn enter(&self) -> EnterGuard {
        self.handle.enter()
    }

    /// A snapshot of the runtime's counters.
    pub fn metrics(&self) -> RuntimeMetrics {
        self.handle.metrics()
    }

    /// Every task of this runtime and what it waits on; see [`Handle::dump`].
    ///
    /// ```
    /// let rt = runnel_executor::Runtime::new().unwrap();
    /// let task = rt.spawn(std::future::pending::<()>());
    /// assert!(!rt.dump().tasks().is_empty());
    /// task.abort();
    /// ```
    pub fn dump(&self) -> TaskDump {
        self.handle.dump()
    }

    /// Shuts down, waiting at most `timeout` for threads busy in a task or a blocking job;
    /// those still busy are detached (their tasks are cancelled when their poll returns).
    pub fn shutdown_timeout(mut self, timeout: Duration) {
        self.shutdown(Some(Instant::now() + timeout));
    }

    /// Shuts down without waiting for any thread: idle tasks are cancelled here (their
    /// futures dropped on this thread), queued blocking jobs are dropped, and a worker in
    /// the middle of a poll or a blocking thread in the middle of a job finishes it on its
    /// own, then cancels what it holds and exits. For dropping a runtime where blocking is
    /// not allowed, such as inside another runtime's task.
    ///
    /// ```
    /// let rt = runnel_executor::Runtime::new().unwrap();
    /// rt.spawn_blocking(|| std::thread::sleep(std::time::Duration::from_millis(50)));
    /// rt.shutdown_background(); // returns at once; the job's thread exits when it is done
    /// ```
    pub fn shutdown_background(mut self) {
        self.shutdown(Some(Instant::now()));
    }

    /// Shutdown, in an order that frees every task exactly once:
    /// 1. flag shutdown, wake every worker and the poller;
    /// 2. join the workers and the poller (no task is polled after this, except by a
    ///    worker we gave up on at the deadline);
    /// 3. close the owned list and cancel every task in it (futures dropped here);
    /// 4. empty the run queues (dropping their references) and close the injector;
    /// 5. shut the reactor down (dropping its wakers) and the blocking pool.
    fn shutdown(&mut self, deadline: Option<Instant>) {
        let shared = &self.handle.shared;
        if shared.shutdown.swap(true, SeqCst) {
            return;
        }
        // First, so no dump is printed while the runtime shuts down.
        #[cfg(unix)]
        if let Some(dump) = self.dump_on_signal.take() {
            dump.stop(deadline);
        }
        for index in shared.idle.claim_all() {
            // A role that never had a thread needs none now.
            let remote = &shared.remotes[index];
            if remote.boot.has_thread() {
                remote.parker.unpark();
            }
        }
        shared.reactor.unpark();
        // After the shutdown flag: no poller thread starts from here on.
        let poller = shared.poller.stop();
        if let Some(poller) = &poller {
            poller.thread().unpark();
        }
        // A current-thread runtime's tasks run on a `block_on` caller: wait for it to give
        // the core back (it sees the flag after its current poll) and keep it.
        let mut all_joined = !shared.config.current_thread || shared.core.close(shared, deadline);
        for handle in shared.spares.shutdown() {
            all_joined &= join_until(handle, deadline);
        }
        if let Some(poller) = poller {
            join_until(poller, deadline);
        }
        shared.owned.close_and_shutdown_all();
        if all_joined {
            // Every worker thread is gone: nobody pushes to the local queues any more.
            // (A thread we gave up on frees its own queues when it exits.)
            for remote in shared.remotes.iter() {
                drop(remote.take_lifo());
                while let Some(task) = remote.queue.pop() {
                    drop(task);
                }
            }
        }
        shared.injector.close();
        shared.reactor.shutdown();
        shared.blocking.shutdown(shared, deadline);
    }
}

/// Records the panic that shut a runtime down (`UnhandledPanic::ShutdownRuntime`).
#[derive(Default)]
pub(crate) struct PanicShutdown {
    /// Set (SeqCst) after `message`, so a reader that sees it finds the message.
    happened: AtomicBool,
    message: std::sync::Mutex<Option<String>>,
}

impl PanicShutdown {
    /// The message `block_on` panics with, once the runtime was shut down by a panic.
    pub(crate) fn message(&self) -> Option<String> {
        if !self.happened.load(SeqCst) {
            return None;
        }
        self.message
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Task `id` panicked: with `UnhandledPanic::ShutdownRuntime`, shut the runtime down (see
/// there for what that means). Runs on the thread that polled the task, before the task's
/// `JoinHandle` completes, so the flag is visible to anyone who sees the `JoinError`.
pub(crate) fn shut_down_on_panic(shared: &Arc<Shared>, id: task::Id, payload: &(dyn Any + Send)) {
    if shared.config.unhandled_panic != UnhandledPanic::ShutdownRuntime {
        return;
    }
    let message = {
        let mut slot = shared
            .panic_shutdown
            .message
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if slot.is_some() {
            return; // Another task's panic shut it down first.
        }
        let what = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .map(|m| format!(" with message {m:?}"))
            .unwrap_or_default();
        let message = format!(
            "runnel: the runtime was shut down because task {id} panicked{what} \
             (Builder::unhandled_panic(UnhandledPanic::ShutdownRuntime)); every task was \
             cancelled"
        );
        *slot = Some(message.clone());
        message
    };
    shared.panic_shutdown.happened.store(true, SeqCst);
    // Every `block_on` caller: hand it the message and wake it. The deadlock report's
    // delivery does exactly this (message slot, claim if parked, unpark); a caller that is
    // awake finds the parker's token at its next sleep, or the flag at its next poll.
    let signals = {
        let mut counts = shared.idle.lock();
        let signals = counts.block_ons().to_vec();
        for signal in &signals {
            signal.deliver_deadlock(&mut counts, &message);
        }
        signals
    };
    for signal in signals {
        signal.unpark();
    }
    shared.owned.close_and_shutdown_all();
}

pub(crate) fn join_until(handle: thread::JoinHandle<()>, deadline: Option<Instant>) -> bool {
    if let Some(deadline) = deadline {
        while !handle.is_finished() {
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(1));
        }
    }
    // A worker thread never panics (task panics are caught); if it did, shutdown goes on.
    let _ = handle.join();
    true
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shutdown(None);
    }
}

/// A cloneable reference to a runtime, usable from any thread.
///
/// A live `Handle` can spawn new work at any time, so while one exists outside a
/// `block_on` call the deadlock detector does not report (see the README's rule): give a
/// thread that needs the runtime its own clone, and drop clones you no longer need.
///
/// ```
/// let rt = runnel_executor::Runtime::new().unwrap();
/// let handle = rt.handle().clone();
/// let answer = std::thread::spawn(move || handle.block_on(async { 6 * 7 }))
///     .join()
///     .unwrap();
/// assert_eq!(answer, 42);
/// ```
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
}

impl Clone for Handle {
    fn clone(&self) -> Handle {
        Handle::new(self.shared.clone())
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SeqCst: pairs with the detector's read (see `Shared::outside_handles`): whatever
        // this holder spawned before dropping it is linked by the time the drop is seen.
        self.shared.outside_handles.fetch_sub(1, SeqCst);
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("runtime", &self.shared.id)
            .finish()
    }
}

/// Returned by [`Handle::try_current`] outside a runtime.
#[derive(Debug)]
pub struct TryCurrentError(());

impl fmt::Display for TryCurrentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no runnel runtime is current on this thread")
    }
}

impl std::error::Error for TryCurrentError {}

/// Restores the previously current runtime when dropped. See [`Handle::enter`].
#[must_use = "the runtime stays current only while the guard lives"]
pub struct EnterGuard {
    _context: context::ContextGuard,
    _reactor: runnel_reactor::EnterGuard,
    /// A thread inside `enter` may spawn: it holds a counted handle meanwhile.
    _handle: Handle,
}

impl Handle {
    /// A user-visible handle: counted in `Shared::outside_handles` until dropped.
    pub(crate) fn new(shared: Arc<Shared>) -> Handle {
        shared.outside_handles.fetch_add(1, SeqCst);
        Handle { shared }
    }

    /// The runtime this thread runs in (a worker, a blocking job, `block_on`, or inside
    /// [`Handle::enter`]).
    ///
    /// # Panics
    /// Outside a runtime; use [`Handle::try_current`] to check.
    #[track_caller]
    pub fn current() -> Handle {
        Handle::try_current().unwrap_or_else(|_| {
            panic!(
                "Handle::current() called outside a runnel runtime: call it from code running \
                 inside Runtime::block_on, a spawned task, or a #[runnel::main] / #[runnel::test] \
                 function, or enter a runtime first with Runtime::enter"
            )
        })
    }

    /// The current runtime, or an error outside one.
    pub fn try_current() -> Result<Handle, TryCurrentError> {
        context::try_current().ok_or(TryCurrentError(()))
    }

    /// Makes this runtime current on this thread until the guard drops.
    pub fn enter(&self) -> EnterGuard {
        EnterGuard {
            _context: context::enter_handle(&self.shared),
            _reactor: self.shared.reactor.enter(),
            _handle: self.clone(),
        }
    }

    /// See [`Runtime::block_on`].
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let shared = &self.shared;
        let mut future = std::pin::pin!(future);
        // Checked before every poll: once a task's panic shut the runtime down, the future
        // is not polled again (see `UnhandledPanic::ShutdownRuntime`).
        let guarded = std::future::poll_fn(move |cx| {
            if let Some(message) = shared.panic_shutdown.message() {
                panic!("{message}");
            }
            future.as_mut().poll(cx)
        });
        block_on::block_on(&self.shared, guarded)
    }

    /// See [`spawn`](crate::spawn).
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        spawn_on(&self.shared, future, Location::caller())
    }

    /// See [`spawn_blocking`](crate::spawn_blocking).
    #[track_caller]
    pub fn spawn_blocking<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        blocking::spawn_blocking(&self.shared, f)
    }

    /// A snapshot of the runtime's counters.
    pub fn metrics(&self) -> RuntimeMetrics {
        metrics_of(&self.shared)
    }

    /// A dump of every task of this runtime: its id, where it was spawned, and whether it
    /// runs, is queued, or what it waits on (a socket's readiness, a timer, the join of
    /// another task, a lock or channel of `runnel::sync`, a waker held outside the
    /// runtime) — Go's goroutine dump. Cheap enough to call from a signal handler thread
    /// or a debug endpoint of a live server; [`Builder::dump_on_signal`] prints it on a
    /// signal.
    ///
    /// **Cost.** The calling thread pays; the workers are never stopped for the whole dump.
    /// The scheduler lock (which workers take to sleep and wake) is held only to copy the
    /// counts and the `block_on` callers. The tasks are read one owned-list shard at a time
    /// (`4 × workers` shards, rounded up to a power of two), copying a few words per task
    /// under that shard's lock, which delays only a spawn or a completion of a task of that
    /// shard; the text is built after every lock is released. Measured with
    /// `cargo bench --bench dump` (2 workers, 100 000 tasks waiting on channels, on a
    /// shared 2-vCPU machine under a load of 7–8): a dump takes 80–200 ms of the calling
    /// thread, mostly building its 13.6 MB of text; the walk under the shard locks takes
    /// 7–40 ms in all ([`TaskDump::walk_time`]), and each of the 8 shard locks is held for
    /// its own part of that only, so no worker waits longer than that. Spawn-and-await round
    /// trips while another thread dumps back to back: p99.9 3.3–3.8 ms against 2.7–4.5 ms
    /// with no dump running (the machine's noise).
    ///
    /// ```
    /// let rt = runnel_executor::Runtime::new().unwrap();
    /// let dump = rt.block_on(async {
    ///     let sleeper = runnel_executor::spawn(async {
    ///         std::future::pending::<()>().await;
    ///     });
    ///     runnel_executor::task::yield_now().await;
    ///     let dump = runnel_executor::Handle::current().dump();
    ///     sleeper.abort();
    ///     dump
    /// });
    /// assert!(dump.to_string().contains("(spawned at"));
    /// ```
    pub fn dump(&self) -> TaskDump {
        crate::detector::dump(&self.shared)
    }

    /// A reader of this runtime's counters for a monitoring thread. Unlike a `Handle` it
    /// cannot spawn, so holding one does not keep the deadlock detector from reporting.
    ///
    /// ```
    /// let rt = runnel_executor::Runtime::new().unwrap();
    /// let reader = rt.handle().metrics_reader();
    /// let exporter = std::thread::spawn(move || reader.snapshot().workers);
    /// assert!(exporter.join().unwrap() >= 1);
    /// ```
    pub fn metrics_reader(&self) -> MetricsReader {
        MetricsReader {
            shared: self.shared.clone(),
        }
    }
}

/// Reads a runtime's counters from any thread; made by [`Handle::metrics_reader`]. It keeps
/// the runtime's shared state alive but cannot spawn or wake anything, so the deadlock
/// detector ignores it (a `Handle` held outside `block_on` means "maybe").
#[derive(Clone)]
pub struct MetricsReader {
    shared: Arc<Shared>,
}

impl fmt::Debug for MetricsReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsReader")
            .field("runtime", &self.shared.id)
            .finish()
    }
}

impl MetricsReader {
    /// A snapshot of the runtime's counters.
    pub fn snapshot(&self) -> RuntimeMetrics {
        metrics_of(&self.shared)
    }
}

fn metrics_of(shared: &Shared) -> RuntimeMetrics {
    let mut m = RuntimeMetrics {
        workers: shared.idle.num_workers(),
        live_tasks: shared.owned.len(),
        reactor_wakeups: shared.reactor_wakeups.load(Relaxed),
        token_drains: shared.token_drains.load(Relaxed),
        deadlock_checks: shared.deadlock_checks.load(Relaxed),
        deadlock_reports: shared.deadlock_reports.load(Relaxed),
        stalls: shared.stalls.load(Relaxed),
        stall_reports: shared.stall_reports.load(Relaxed),
        partial_deadlocks: shared.partial_deadlocks.load(Relaxed),
        leaked_tasks: shared.leaked_tasks.load(Relaxed),
        retakes: shared.retakes.load(Relaxed),
        failed_retakes: shared.spares.failed_retakes(),
        worker_threads: shared.spares.threads(),
        blocking_threads: shared.blocking.threads(),
        ..RuntimeMetrics::default()
    };
    for remote in shared.remotes.iter() {
        m.polls += remote.metrics.polls();
        m.steals += remote.metrics.steals();
        m.parks += remote.metrics.parks();
    }
    m.idle = shared.idle.lock().idle_workers();
    m
}

/// Spawns a task on the current runtime and returns its [`JoinHandle`].
///
/// The task starts running at once on some worker; awaiting the handle is optional
/// (dropping it detaches the task).
///
/// ```
/// # runnel_executor::Runtime::new().unwrap().block_on(async {
/// let handles: Vec<_> = (0..10).map(|i| runnel_executor::spawn(async move { i * 2 })).collect();
/// let mut sum = 0;
/// for h in handles {
///     sum += h.await.unwrap();
/// }
/// assert_eq!(sum, 90);
/// # });
/// ```
///
/// # Panics
/// Outside a runtime (there is nothing to run the task): call it from inside
/// `Runtime::block_on`, a task, or `#[runnel::main]`.
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let location = Location::caller();
    context::with_current(|shared| {
        match shared {
        Some(shared) => spawn_on(shared, future, location),
        None => panic!(
            "runnel::spawn called outside a runnel runtime: there is no runtime to run the task on. \
             Call it from code running inside Runtime::block_on, a spawned task, or a \
             #[runnel::main] / #[runnel::test] function (or enter a runtime with Runtime::enter)"
        ),
    }
    })
}

/// Spawns `future` on runtime `shared`. A `JoinHandle` made on a thread outside the
/// runtime is marked so: such a holder may abort the task at any time (deadlock rule).
fn spawn_on<F>(
    shared: &Arc<Shared>,
    future: F,
    location: &'static Location<'static>,
) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let id = task::Id::next();
    let (task, notified, join) = task::new_task(future, shared.clone(), id);
    if !context::is_runtime_thread(shared) {
        join.note_held_outside(true);
    }
    if let Some(notified) = shared.owned.bind(task, notified, location) {
        shared.schedule_task(notified, false);
    }
    // After binding and queueing: a parked worker starts sysmon (or this thread, if none
    // is parked) while another runs the task; sysmon need only watch polls, and it sees a
    // poll already under way as starting now (`poller::PollerThread`).
    shared.poller.start_for_spawn(shared);
    join
}

/// Runs blocking code (file I/O, CPU-heavy work, a synchronous library) on the blocking
/// pool, so it does not stall a worker; await the handle for its result.
///
/// ```
/// # runnel_executor::Runtime::new().unwrap().block_on(async {
/// let len = runnel_executor::spawn_blocking(|| std::fs::read("Cargo.toml").map(|b| b.len()))
///     .await
///     .unwrap()
///     .unwrap();
/// assert!(len > 0);
/// # });
/// ```
///
/// # Panics
/// Outside a runtime, as [`spawn`].
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    context::with_current(|shared| match shared {
        Some(shared) => blocking::spawn_blocking(shared, f),
        None => panic!(
            "runnel::spawn_blocking called outside a runnel runtime: call it from code running \
             inside Runtime::block_on, a spawned task, or a #[runnel::main] / #[runnel::test] \
             function (or enter a runtime with Runtime::enter)"
        ),
    })
}
