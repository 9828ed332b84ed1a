//! The current-thread runtime (`Builder::new_current_thread`): tasks run on the thread in
//! `block_on`, the core passes between `block_on` callers, shutdown takes it back, and the
//! deadlock detector holds as on the multi-thread runtime. (The other suites that build
//! their runtime through `support::builder` run on it too, with
//! `RUNNEL_TEST_FLAVOR=current_thread`; see `.ci/run`.)

mod support;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use runnel::net::{TcpListener, TcpStream};
use runnel::{Builder, Runtime, DEADLOCK_MESSAGE};
use support::{panic_message, wait_until};

fn current_thread() -> Runtime {
    Builder::new_current_thread().build().unwrap()
}

#[test]
fn tasks_run_on_the_block_on_thread() {
    let rt = current_thread();
    let me = thread::current().id();
    let ids = rt.block_on(async {
        let tasks: Vec<_> = (0..100)
            .map(|_| runnel::spawn(async { thread::current().id() }))
            .collect();
        let mut ids = Vec::new();
        for task in tasks {
            ids.push(task.await.unwrap());
        }
        ids
    });
    assert!(ids.iter().all(|&id| id == me));
    assert_eq!(rt.metrics().worker_threads, 0, "no worker thread started");
    assert_eq!(support::threads_named("runnel-worker"), 0);
}

#[test]
fn tasks_spawned_before_block_on_run_inside_it() {
    let rt = current_thread();
    let ran = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..10)
        .map(|_| {
            let ran = ran.clone();
            rt.spawn(async move {
                ran.fetch_add(1, SeqCst);
            })
        })
        .collect();
    // Nothing runs them until a thread enters block_on (tokio's semantics too).
    assert_eq!(ran.load(SeqCst), 0);
    rt.block_on(async {
        for h in handles {
            h.await.unwrap();
        }
    });
    assert_eq!(ran.load(SeqCst), 10);
}

#[test]
fn spawn_storm_and_nested_spawns() {
    let rt = current_thread();
    let total = rt.block_on(async {
        let counter = Arc::new(AtomicUsize::new(0));
        let outer: Vec<_> = (0..100)
            .map(|_| {
                let counter = counter.clone();
                runnel::spawn(async move {
                    let inner: Vec<_> = (0..100)
                        .map(|_| {
                            let counter = counter.clone();
                            runnel::spawn(async move {
                                runnel::task::yield_now().await;
                                counter.fetch_add(1, SeqCst);
                            })
                        })
                        .collect();
                    for h in inner {
                        h.await.unwrap();
                    }
                })
            })
            .collect();
        for h in outer {
            h.await.unwrap();
        }
        counter.load(SeqCst)
    });
    assert_eq!(total, 10_000);
}

#[test]
fn timers_and_tcp_on_one_thread() {
    let rt = current_thread();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = runnel::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 5];
            stream.read_exact(&mut buf).await.unwrap();
            runnel::time::sleep(Duration::from_millis(5)).await;
            stream.write_all(&buf).await.unwrap();
        });
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(b"hello").await.unwrap();
        let mut back = [0u8; 5];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"hello");
        server.await.unwrap();
    });
}

/// A blocking job calling `Handle::block_on` while the main thread holds the core: its
/// future is polled on the blocking thread, the tasks it awaits run on the core.
#[test]
fn block_on_from_a_blocking_job_while_the_core_is_held() {
    let rt = current_thread();
    let answer = rt.block_on(async {
        let handle = runnel::Handle::current();
        runnel::spawn_blocking(move || {
            handle.block_on(async { runnel::spawn(async { 6 * 7 }).await.unwrap() })
        })
        .await
        .unwrap()
    });
    assert_eq!(answer, 42);
}

/// Two threads in `block_on`: the first holds the core; when its `block_on` returns, the
/// second takes the core over and runs the tasks it waits for.
#[test]
fn the_core_passes_to_the_next_block_on_caller() {
    let rt = Arc::new(current_thread());
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = futures::channel::oneshot::channel::<()>();
    let first = {
        let rt = rt.clone();
        thread::spawn(move || {
            rt.block_on(async move {
                entered_tx.send(thread::current().id()).unwrap();
                release_rx.await.unwrap();
            })
        })
    };
    let first_id = entered_rx.recv().unwrap();
    let second = {
        let rt = rt.clone();
        thread::spawn(move || {
            rt.block_on(async move {
                // Wait (in this future) until the first caller has left, then spawn: only
                // this thread can run the task now.
                let _ = release_tx.send(());
                let task = runnel::spawn(async { thread::current().id() });
                (thread::current().id(), task.await.unwrap())
            })
        })
    };
    first.join().unwrap();
    let (second_id, ran_on) = second.join().unwrap();
    assert_ne!(first_id, second_id);
    // The task ran on one of the two block_on threads, never elsewhere.
    assert!(ran_on == second_id || ran_on == first_id);
    assert_eq!(rt.metrics().worker_threads, 0);
}

/// Dropping the runtime while another thread's `block_on` holds the core: shutdown waits
/// for the core, cancels the tasks, and that `block_on` sees its task cancelled.
#[test]
fn shutdown_takes_the_core_back() {
    let rt = current_thread();
    let handle = rt.handle().clone();
    let (started_tx, started_rx) = mpsc::channel();
    let caller = thread::spawn(move || {
        handle.block_on(async move {
            let task = runnel::spawn(std::future::pending::<()>());
            started_tx.send(()).unwrap();
            task.await
        })
    });
    started_rx.recv().unwrap();
    drop(rt);
    let result = caller.join().unwrap();
    assert!(result.unwrap_err().is_cancelled());
}

#[test]
fn a_deadlock_is_reported() {
    let rt = current_thread();
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            let stuck = runnel::spawn(std::future::pending::<()>());
            stuck.await.unwrap()
        })
    }))
    .expect_err("expected a deadlock report");
    let report = panic_message(&*payload);
    assert!(report.starts_with(DEADLOCK_MESSAGE), "{report}");
    assert!(report.contains("waits on: join of task"), "{report}");
}

/// A `Handle` on a foreign thread that spawns the awaited work 300 ms later: never a
/// deadlock report (the rule holds on the current-thread runtime too).
#[test]
fn a_foreign_handle_is_not_a_deadlock() {
    let rt = current_thread();
    let handle = rt.handle().clone();
    let (tx, rx) = futures::channel::oneshot::channel();
    let helper = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        drop(handle.spawn(async move { tx.send(7).unwrap() }));
    });
    assert_eq!(rt.block_on(rx).unwrap(), 7);
    helper.join().unwrap();
    assert_eq!(rt.metrics().deadlock_reports, 0);
}

/// Wakes from foreign threads while the core's holder sleeps in the reactor: each wake
/// brings it back (no lost wakeup), many times.
#[test]
fn foreign_wakes_reach_a_sleeping_core() {
    let rt = current_thread();
    rt.block_on(async {
        for round in 0..2_000 {
            let (tx, rx) = futures::channel::oneshot::channel();
            let task = runnel::spawn(async move { rx.await.unwrap() });
            let waker = thread::spawn(move || tx.send(round).unwrap());
            assert_eq!(task.await.unwrap(), round);
            waker.join().unwrap();
        }
    });
    wait_until("no task left", || rt.metrics().live_tasks == 0);
}

/// Many tasks each sending one message into a channel that one collector drains (the
/// harness's `fan_in`). Each producer's send wakes the collector; in the LIFO slot it ran
/// after every producer and took one message per poll. As a consumer fed by many it goes
/// to the back of the queue instead and takes a run of messages per poll.
#[test]
fn a_consumer_fed_by_many_producers_takes_their_messages_in_runs() {
    const PRODUCERS: usize = 2000;
    let rt = current_thread();
    let (received, polls) = rt.block_on(async {
        let (tx, mut rx) = runnel::sync::mpsc::unbounded_channel::<usize>();
        let polls = Arc::new(AtomicUsize::new(0));
        let mut drain = Box::pin(async move {
            let (mut count, mut sum) = (0, 0);
            while let Some(v) = rx.recv().await {
                count += 1;
                sum += v;
            }
            (count, sum)
        });
        let counted = polls.clone();
        let collector = runnel::spawn(std::future::poll_fn(move |cx| {
            counted.fetch_add(1, SeqCst);
            drain.as_mut().poll(cx)
        }));
        for i in 0..PRODUCERS {
            let tx = tx.clone();
            drop(runnel::spawn(async move { tx.send(i).unwrap() }));
        }
        drop(tx);
        (collector.await.unwrap(), polls.load(SeqCst))
    });
    assert_eq!(received, (PRODUCERS, PRODUCERS * (PRODUCERS - 1) / 2));
    // One poll per message before (2001 here); a run per poll now (~70 on this build).
    assert!(
        polls < PRODUCERS / 4,
        "the collector was polled {polls} times for {PRODUCERS} messages"
    );
}
