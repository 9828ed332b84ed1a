//! The poller (sysmon) thread starts on first need, not when the runtime is built, and so
//! do the worker threads: a runtime that is built and dropped, or only runs `block_on`
//! futures that finish at once, starts neither; a spawn whose task is still live (started by a worker the spawn hands
//! the start to, or by the spawner), a `block_on` caller about to sleep, or a blocking job
//! starts it; and shutdown joins it. Threads are told apart by name (`/proc/self/task`),
//! each test with its own name prefix, so tests running in parallel do not see each other.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use support::{threads_named, wait_until};

fn runtime(prefix: &str) -> runnel::Runtime {
    runnel::Builder::new()
        .worker_threads(2)
        .thread_name(prefix)
        .build()
        .unwrap()
}

#[test]
fn a_runtime_built_and_dropped_or_only_blocking_on_ready_futures_starts_no_thread() {
    let rt = runtime("lzp-a");
    assert_eq!(rt.block_on(async { 6 * 7 }), 42);
    // Counted when the thread is spawned (not when it names itself): exact, not a race.
    assert_eq!(
        rt.metrics().worker_threads,
        0,
        "a worker thread started for a ready future"
    );
    assert_eq!(threads_named("lzp-a-poller"), 0, "poller started too early");
    // A spawn starts the worker it claims; shutdown joins it.
    assert_eq!(rt.block_on(rt.spawn(async { 1 })).unwrap(), 1);
    assert!(rt.metrics().worker_threads >= 1, "{:?}", rt.metrics());
    drop(rt);
    // The kernel drops a joined thread from /proc/self/task a moment after the join
    // returns; a thread that was never joined would stay (and fail this wait).
    wait_until("the workers are joined and gone", || {
        threads_named("lzp-a-worker") == 0
    });
}

#[test]
fn a_live_task_starts_the_poller_and_shutdown_joins_it() {
    let rt = runtime("lzp-b");
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (done_tx, done_rx) = futures::channel::oneshot::channel::<()>();
    // Waits in a blocking recv, so it is live (and in a poll) however long the start takes;
    // no `block_on` sleeps meanwhile, so only the spawn can have started the poller.
    let task = rt.spawn(async move {
        rx.recv().unwrap();
        let _ = done_tx.send(());
        7
    });
    // Started by a parked worker claimed for it (or by the spawner if none was parked);
    // its name is set by the new thread itself, so wait for it.
    wait_until("the poller thread runs", || {
        threads_named("lzp-b-poller") == 1
    });
    tx.send(()).unwrap();
    futures::executor::block_on(done_rx).unwrap();
    assert_eq!(rt.block_on(task).unwrap(), 7);
    drop(rt);
    // The kernel drops a joined thread from /proc/self/task a moment after the join
    // returns; a thread that was never joined would stay (and fail this wait).
    wait_until("the poller is joined and gone", || {
        threads_named("lzp-b-poller") == 0
    });
}

/// Pending once (waking itself at once), then ready: `block_on` sleeps once.
struct PendingOnce(bool);

impl Future for PendingOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn a_block_on_caller_that_waits_starts_the_poller() {
    let rt = runtime("lzp-c");
    rt.block_on(PendingOnce(false));
    wait_until("the poller thread runs", || {
        threads_named("lzp-c-poller") == 1
    });
    drop(rt);
    // The kernel drops a joined thread from /proc/self/task a moment after the join
    // returns; a thread that was never joined would stay (and fail this wait).
    wait_until("the poller is joined and gone", || {
        threads_named("lzp-c-poller") == 0
    });
}

#[test]
fn a_blocking_job_starts_the_poller() {
    let rt = runtime("lzp-d");
    let job = rt.spawn_blocking(|| 5);
    wait_until("the poller thread runs", || {
        threads_named("lzp-d-poller") == 1
    });
    assert_eq!(rt.block_on(job).unwrap(), 5);
    drop(rt);
    // The kernel drops a joined thread from /proc/self/task a moment after the join
    // returns; a thread that was never joined would stay (and fail this wait).
    wait_until("the poller is joined and gone", || {
        threads_named("lzp-d-poller") == 0
    });
}

#[test]
fn a_stall_in_the_very_first_task_is_watched_when_a_worker_started_sysmon() {
    // Two workers: the spawn hands the poller's start to the parked one, which must start
    // it although the first task blocks the other worker (and no `block_on` sleeps).
    let rt = runnel::Builder::new()
        .worker_threads(2)
        .thread_name("lzp-f")
        .build()
        .unwrap();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let blocker = rt.spawn(async move {
        release_rx.recv().unwrap();
    });
    // Only sysmon counts a poll longer than 10 ms as a stall.
    wait_until("sysmon counted the blocked poll", || {
        rt.metrics().stalls >= 1
    });
    release_tx.send(()).unwrap();
    rt.block_on(blocker).unwrap();
}

#[test]
fn a_stall_in_the_very_first_task_is_still_retaken() {
    // The first poll ever blocks its worker: sysmon must already be watching it, or the
    // second task never runs (a hang, hence the child process).
    support::in_child_process(
        "a_stall_in_the_very_first_task_is_still_retaken",
        first_task_stall,
    );
}

fn first_task_stall() {
    let rt = runnel::Builder::new()
        .worker_threads(1)
        .thread_name("lzp-e")
        .retake_after(Some(std::time::Duration::from_millis(20)))
        .build()
        .unwrap();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let blocker = rt.spawn(async move {
        release_rx.recv().unwrap();
    });
    // Runs only if the stuck worker's role was retaken by sysmon.
    let other = rt.spawn(async { 1 });
    assert_eq!(rt.block_on(other).unwrap(), 1);
    assert!(rt.metrics().retakes >= 1, "{:?}", rt.metrics());
    release_tx.send(()).unwrap();
    rt.block_on(blocker).unwrap();
}

/// Worker threads start on their first claim; an idle one is also what sleeps in the
/// reactor's poll. A `block_on` future that stores a waker in the reactor (a timer here)
/// while no worker thread exists claims one to drive it; one that waits on something
/// else (a channel fed by a plain thread) starts none.
#[test]
fn a_waker_stored_in_the_reactor_starts_a_worker_and_nothing_else_does() {
    let rt = runtime("lzp-f");
    let (tx, rx) = futures::channel::oneshot::channel::<u32>();
    let feeder = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(5));
        tx.send(5).unwrap();
    });
    assert_eq!(rt.block_on(rx).unwrap(), 5);
    feeder.join().unwrap();
    assert_eq!(
        rt.metrics().worker_threads,
        0,
        "a worker thread started for a wait outside the reactor"
    );
    rt.block_on(runnel::time::sleep(std::time::Duration::from_millis(5)));
    assert_eq!(
        rt.metrics().worker_threads,
        1,
        "the timer's waker did not start exactly one worker to drive the reactor"
    );
}
