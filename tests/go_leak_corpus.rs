//! Go's goroutine-leak detector corpus, translated to runnel: the micro tests of
//! `src/runtime/testdata/testgoroutineleakprofile/simple.go` and the patterns of
//! `commonpatterns.go` in the Go repository (Go 1.27's `goroutineleak` profile reports
//! every leak there and nothing on its controls; `src/runtime/goroutineleakprofile_test.go`
//! lists what it expects). The README's table sums up the outcome.
//!
//! Each case runs in a child process, with an echo server on the same runtime answering a
//! client the whole time, and says what runnel reports:
//! - **caught**: the leak is reported (`partial_deadlocks` or `leaked_tasks`, and stderr);
//! - **not caught**: the Rust form of the leak happens (the task dump shows every task of
//!   it waiting, as Go's profile would list it) but runnel reports nothing — the test
//!   pins that down, so a future extension of the detector changes it knowingly;
//! - **cannot happen**: Rust's ownership turns the leak into an error or a completion (a
//!   dropped `Receiver` fails the send, a dropped `Sender` ends the receive, a channel has
//!   at least one slot); the test shows the tasks finish.
//!
//! How "nothing reported" is observed without a sleep: once the case's tasks are in place,
//! a *witness* — a task awaiting `std::future::pending()`, a certain leak — is spawned. The
//! detector reports a leak only after it stayed quiet for `partial_deadlock_after`, and the
//! case's tasks have been quiet longer than the witness, so the scan that reports the
//! witness would have reported them too. Every case therefore expects one leak more than
//! its own (the witness), and no deadlock or stall report.

mod support;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::Poll;
use std::time::{Duration, Instant};

use runnel::net::{TcpListener, TcpStream};
use runnel::sync::mpsc::{self, error::SendError};
use runnel::sync::{watch, Mutex, Notify, RwLock, WaitGroup};
use runnel::{JoinHandle, OnDeadlock};

/// `partial_deadlock_after` for every case.
const QUIET: Duration = Duration::from_millis(300);

/// Round trips the client makes after the reports, to show the server still answers.
const AFTER_REPORT: u64 = 20;

/// The dump's words for a task that no waker can reach.
const NO_WAKER: &str = "nothing (no waker of it is held anywhere)";

/// What a case expects runnel to report, the witness not counted.
#[derive(Clone, Copy, Debug)]
struct Reports {
    partial_deadlocks: u64,
    leaked_tasks: u64,
}

const NOTHING: Reports = Reports {
    partial_deadlocks: 0,
    leaked_tasks: 0,
};

/// A task the case leaves waiting, and the start of what the dump says it waits on.
struct Stuck {
    id: String,
    on: &'static str,
}

fn stuck<T>(task: &JoinHandle<T>, on: &'static str) -> Stuck {
    Stuck {
        id: task.id().to_string(),
        on,
    }
}

/// What a case's setup left behind: the tasks that must be found waiting before the
/// witness starts, and what to do once the witness was reported (release a control's
/// waiter and check it finishes).
struct Case {
    stuck: Vec<Stuck>,
    then: Option<Pin<Box<dyn Future<Output = ()>>>>,
}

impl Case {
    fn stuck(stuck: Vec<Stuck>) -> Case {
        Case { stuck, then: None }
    }

    /// Every task of the case finished during setup (the leak cannot happen in Rust).
    fn finished() -> Case {
        Case::stuck(Vec::new())
    }
}

/// An echo server task; returns its address.
async fn echo_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    runnel::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            runnel::spawn(async move {
                let mut buf = [0u8; 8];
                while stream.read_exact(&mut buf).await.is_ok() {
                    if stream.write_all(&buf).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

async fn round_trip(stream: &mut TcpStream, n: u64) {
    stream.write_all(&n.to_le_bytes()).await.unwrap();
    let mut back = [0u8; 8];
    stream.read_exact(&mut back).await.unwrap();
    assert_eq!(
        u64::from_le_bytes(back),
        n,
        "the echo server answered wrong"
    );
}

/// Waits until the dump shows every task of `stuck` waiting on what it should.
async fn wait_for_stuck(stuck: &[Stuck]) {
    let deadline = Instant::now() + support::PATIENCE;
    loop {
        let dump = runnel::Handle::current().dump().to_string();
        let lines: HashMap<&str, &str> = dump
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix("task ")?;
                let (id, _) = rest.split_once(' ')?;
                Some((id, line))
            })
            .collect();
        let missing: Vec<&str> = stuck
            .iter()
            .filter(|s| {
                !lines
                    .get(s.id.as_str())
                    .is_some_and(|line| line.contains(&format!("waits on: {}", s.on)))
            })
            .map(|s| s.id.as_str())
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "tasks {missing:?} never waited as expected:\n{dump}"
        );
        runnel::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Runs a case in a child process (see the module docs). In the child, returns `None`;
/// in the parent, checks the child's reports against `expect` (plus the witness) and
/// returns its stderr for the case's own checks.
fn corpus_case<F, Fut>(name: &str, expect: Reports, setup: F) -> Option<String>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Case>,
{
    if support::is_child(name) {
        let rt = support::builder(2)
            .on_partial_deadlock(OnDeadlock::Report)
            .partial_deadlock_after(QUIET)
            .build()
            .unwrap();
        let reader = rt.handle().metrics_reader();
        rt.block_on(async move {
            let addr = echo_server().await;
            let mut client = TcpStream::connect(addr).await.unwrap();
            round_trip(&mut client, 0).await;
            let case = setup().await;
            wait_for_stuck(&case.stuck).await;
            let witness = runnel::spawn(std::future::pending::<()>());
            println!("witness-task {}", witness.id());
            let deadline = Instant::now() + support::PATIENCE;
            let mut n = 1;
            loop {
                let m = reader.snapshot();
                if m.leaked_tasks > expect.leaked_tasks
                    && m.partial_deadlocks >= expect.partial_deadlocks
                {
                    break;
                }
                assert!(Instant::now() < deadline, "no witness report: {m:?}");
                round_trip(&mut client, n).await;
                n += 1;
                runnel::time::sleep(Duration::from_millis(2)).await;
            }
            if let Some(then) = case.then {
                then.await;
            }
            for i in 0..AFTER_REPORT {
                round_trip(&mut client, n + i).await;
            }
            println!("answers-after-report {AFTER_REPORT}");
        });
        let m = rt.metrics();
        println!(
            "reports partial_deadlocks={} leaked_tasks={} deadlock_reports={} stall_reports={}",
            m.partial_deadlocks, m.leaked_tasks, m.deadlock_reports, m.stall_reports
        );
        return None;
    }
    let child = support::run_child(name);
    assert_eq!(child.code, Some(0), "{child:?}");
    assert!(
        child
            .stdout
            .contains(&format!("answers-after-report {AFTER_REPORT}")),
        "the server stopped answering: {child:?}"
    );
    let reports = format!(
        "reports partial_deadlocks={} leaked_tasks={} deadlock_reports=0 stall_reports=0",
        expect.partial_deadlocks,
        expect.leaked_tasks + 1
    );
    assert!(
        child.stdout.contains(&reports),
        "expected `{reports}`: {child:?}"
    );
    // The harness's "test NAME ... " may precede it on the same line.
    let witness = child
        .stdout
        .split("witness-task ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the witness id");
    assert!(
        child.stderr.contains(&format!("task {witness} leaked")),
        "{child:?}"
    );
    Some(child.stderr)
}

/// Where tasks started inside a case's tasks send their ids (received without blocking
/// the `block_on` thread, which on a current-thread runtime runs those tasks).
fn spawned_ids() -> (
    mpsc::UnboundedSender<String>,
    mpsc::UnboundedReceiver<String>,
) {
    mpsc::unbounded_channel()
}

// ---- simple.go: one leak per primitive ------------------------------------------------

/// Go: `var c chan int; <-c` — a receive on a nil channel. Rust has no nil channel; the same
/// bug is a future that never completes and keeps no waker.
#[test]
fn nil_recv() {
    let expect = Reports {
        leaked_tasks: 1,
        ..NOTHING
    };
    let Some(stderr) = corpus_case("nil_recv", expect, || async {
        let leak = runnel::spawn(async {
            std::future::pending::<i32>().await;
            panic!("should not be reached");
        });
        Case::stuck(vec![stuck(&leak, NO_WAKER)])
    }) else {
        return;
    };
    assert_eq!(
        stderr.matches("leaked: it returned Pending").count(),
        2,
        "{stderr}"
    );
}

/// Go: `var c chan int; c <- 0` — a send on a nil channel. In Rust: as `nil_recv`, here a
/// hand-written future that returns `Pending` and drops its waker.
#[test]
fn nil_send() {
    let expect = Reports {
        leaked_tasks: 1,
        ..NOTHING
    };
    let Some(stderr) = corpus_case("nil_send", expect, || async {
        let leak = runnel::spawn(async {
            std::future::poll_fn(|_cx| Poll::<Result<(), SendError<i32>>>::Pending)
                .await
                .unwrap();
            panic!("should not be reached");
        });
        Case::stuck(vec![stuck(&leak, NO_WAKER)])
    }) else {
        return;
    };
    assert_eq!(
        stderr.matches("leaked: it returned Pending").count(),
        2,
        "{stderr}"
    );
}

/// Go: `select {}`. In Rust: a future that is never ready and holds no waker.
#[test]
fn select_no_cases() {
    let expect = Reports {
        leaked_tasks: 1,
        ..NOTHING
    };
    let Some(stderr) = corpus_case("select_no_cases", expect, || async {
        let leak = runnel::spawn(async {
            futures::future::pending::<()>().await;
            panic!("should not be reached");
        });
        Case::stuck(vec![stuck(&leak, NO_WAKER)])
    }) else {
        return;
    };
    assert_eq!(
        stderr.matches("leaked: it returned Pending").count(),
        2,
        "{stderr}"
    );
}

/// Go (registered, not in the test's table): `main` blocks in `select {}` while a goroutine
/// waits on a channel only `main` can send on; the comments expect the goroutine reported
/// and `main` not. Here `main` is the `block_on` future (it keeps the `Sender`, serving the
/// client meanwhile): runnel reports neither. Not caught: a channel's other end may be
/// anywhere (see `no_report_a_sender_kept_in_a_registry`).
#[test]
fn select_no_cases_main() {
    let Some(stderr) = corpus_case("select_no_cases_main", NOTHING, || async {
        let (ch, mut rx) = mpsc::channel::<i32>(1);
        let waiter = runnel::spawn(async move { rx.recv().await });
        Case {
            stuck: vec![stuck(&waiter, "recv on channel")],
            then: Some(Box::pin(async move {
                // `main` keeps `ch` to the end, so the goroutine was never unreachable.
                ch.send(7).await.unwrap();
                assert_eq!(waiter.await.unwrap(), Some(7));
            })),
        }
    }) else {
        return;
    };
    assert!(!stderr.contains("partial deadlock"), "{stderr}");
}

/// Go: `<-make(chan int)`. In Rust a channel whose `Sender` is gone ends the receive
/// (`None`): cannot happen. The Rust form of the leak — the receiving task keeps its own
/// `Sender` (the classic missing `drop(tx)`) — is not caught.
#[test]
fn chan_recv() {
    let Some(stderr) = corpus_case("chan_recv", NOTHING, || async {
        let as_in_go = runnel::spawn(async {
            let (_, mut rx) = mpsc::channel::<i32>(1);
            rx.recv().await
        });
        assert_eq!(
            as_in_go.await.unwrap(),
            None,
            "a receive with no Sender ends"
        );
        let keeps_its_sender = runnel::spawn(async {
            let (tx, mut rx) = mpsc::channel::<i32>(1);
            rx.recv().await;
            drop(tx);
            panic!("should not be reached");
        });
        Case::stuck(vec![stuck(&keeps_its_sender, "recv on channel")])
    }) else {
        return;
    };
    assert!(!stderr.contains("partial deadlock"), "{stderr}");
}

/// Go: `make(chan int) <- 0`. In Rust a send whose `Receiver` is gone fails at once (and a
/// channel has at least one slot): cannot happen. The Rust form — the sending task keeps
/// its own `Receiver` of a full channel — is not caught.
#[test]
fn chan_send() {
    let Some(stderr) = corpus_case("chan_send", NOTHING, || async {
        let as_in_go = runnel::spawn(async {
            let (tx, _) = mpsc::channel::<i32>(1);
            tx.send(0).await
        });
        assert!(
            as_in_go.await.unwrap().is_err(),
            "a send with no Receiver fails"
        );
        let keeps_its_receiver = runnel::spawn(async {
            let (tx, rx) = mpsc::channel::<i32>(1);
            tx.send(0).await.unwrap();
            tx.send(1).await.unwrap();
            drop(rx);
            panic!("should not be reached");
        });
        Case::stuck(vec![stuck(&keeps_its_receiver, "send on full channel")])
    }) else {
        return;
    };
    assert!(!stderr.contains("partial deadlock"), "{stderr}");
}

/// Go: `select { case make(chan int) <- 0: case <-make(chan int): }`. In Rust both ends
/// are dropped, so both branches complete at once: cannot happen. The Rust form — the
/// task keeps the other ends — is not caught.
#[test]
fn select() {
    let Some(stderr) = corpus_case("select", NOTHING, || async {
        let as_in_go = runnel::spawn(async {
            let (send_to, _) = mpsc::channel::<i32>(1);
            let (_, mut recv_from) = mpsc::channel::<i32>(1);
            send_to.try_send(0).unwrap_err();
            runnel::select! {
                sent = send_to.send(0) => sent.is_err(),
                got = recv_from.recv() => got.is_none(),
            }
        });
        assert!(as_in_go.await.unwrap(), "both branches end at once");
        let keeps_the_other_ends = runnel::spawn(async {
            let (send_to, keep_rx) = mpsc::channel::<i32>(1);
            let (keep_tx, mut recv_from) = mpsc::channel::<i32>(1);
            send_to.send(0).await.unwrap(); // full
            runnel::select! {
                _ = send_to.send(0) => {}
                _ = recv_from.recv() => {}
            }
            drop((keep_rx, keep_tx));
            panic!("should not be reached");
        });
        Case::stuck(vec![stuck(&keeps_the_other_ends, "")])
    }) else {
        return;
    };
    assert!(!stderr.contains("partial deadlock"), "{stderr}");
}

/// Go: `wg.Add(1); wg.Wait()` on a local `sync.WaitGroup`. Caught (certain): the group
/// lives inside the task's own future and no token shares it, so only the task itself
/// could call `done`.
#[test]
fn wait_group() {
    let expect = Reports {
        partial_deadlocks: 1,
        ..NOTHING
    };
    let Some(stderr) = corpus_case("wait_group", expect, || async {
        let leak = runnel::spawn(async {
            let wg = WaitGroup::new();
            wg.add(1);
            wg.wait().await;
            panic!("should not be reached");
        });
        Case::stuck(vec![stuck(&leak, "completion of wait group")])
    }) else {
        return;
    };
    assert!(
        stderr.contains("partial deadlock: 1 task(s) can never run again"),
        "{stderr}"
    );
    assert!(
        stderr.contains("waits on: completion of wait group 0x"),
        "{stderr}"
    );
    assert!(
        stderr.contains("which lives inside this task's own future"),
        "{stderr}"
    );
    assert!(!stderr.contains("likely partial deadlock"), "{stderr}");
}

/// How many goroutines Go's `MutexStack` and `MutexHeap` start.
const GOROUTINES: u64 = 1000;

/// Go: 1000 goroutines, each `mu.Lock(); mu.Lock()` on a local mutex. Caught, as *likely*:
/// a lock's holder is the task that took it, a presumption (a guard could have moved; a
/// guard of a lock inside the task's own future cannot, but lock edges do not tell).
#[test]
fn mutex_stack() {
    let expect = Reports {
        partial_deadlocks: GOROUTINES,
        ..NOTHING
    };
    let Some(stderr) = corpus_case("mutex_stack", expect, || async {
        let leaks = (0..GOROUTINES).map(|_| {
            runnel::spawn(async {
                let mu = Mutex::new(());
                let _first = mu.lock().await;
                let _second = mu.lock().await;
                panic!("should not be reached");
            })
        });
        Case::stuck(leaks.map(|t| stuck(&t, "lock of mutex")).collect())
    }) else {
        return;
    };
    assert_eq!(
        stderr.matches("likely partial deadlock: 1 task(s)").count() as u64,
        GOROUTINES,
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("waits on: lock of mutex").count() as u64,
        GOROUTINES
    );
}

/// Go: 1000 goroutines, each starting one that locks a heap mutex twice. Caught, as
/// *likely*: the mutex is shared (`Arc`), so its holder is the task that took it, a
/// presumption (a guard could have moved).
#[test]
fn mutex_heap() {
    let expect = Reports {
        partial_deadlocks: GOROUTINES,
        ..NOTHING
    };
    let Some(stderr) = corpus_case("mutex_heap", expect, || async {
        let (ids, mut spawned) = spawned_ids();
        for _ in 0..GOROUTINES {
            let ids = ids.clone();
            runnel::spawn(async move {
                let mu = Arc::new(Mutex::new(()));
                let inner = runnel::spawn(async move {
                    let _first = mu.lock().await;
                    let _second = mu.lock().await;
                    panic!("should not be reached");
                });
                ids.send(inner.id().to_string()).unwrap();
            });
        }
        let mut stuck = Vec::new();
        for _ in 0..GOROUTINES {
            let id = spawned.recv().await.unwrap();
            stuck.push(Stuck {
                id,
                on: "lock of mutex",
            });
        }
        Case::stuck(stuck)
    }) else {
        return;
    };
    assert_eq!(
        stderr.matches("likely partial deadlock: 1 task(s)").count() as u64,
        GOROUTINES,
        "{stderr}"
    );
}

/// Go: `mu.Lock(); mu.RLock()` on a local `sync.RWMutex`. Caught (likely, as `mutex_stack`).
#[test]
fn rwmutex_rlock() {
    let expect = Reports {
        partial_deadlocks: 1,
        ..NOTHING
    };
    let Some(stderr) = corpus_case("rwmutex_rlock", expect, || async {
        let leak = runnel::spawn(async {
            let mu = RwLock::new(());
            let _write = mu.write().await;
            let _read = mu.read().await;
            panic!("should not be reached");
        });
        Case::stuck(vec![stuck(&leak, "read lock of rwlock")])
    }) else {
        return;
    };
    assert!(
        stderr.contains("likely partial deadlock: 1 task(s)"),
        "{stderr}"
    );
    assert!(stderr.contains("waits on: read lock of rwlock"), "{stderr}");
    assert!(stderr.contains("held by task"), "{stderr}");
}

/// Go: `mu.Lock(); mu.Lock()` on a local `sync.RWMutex`. Caught (likely, as `mutex_stack`).
#[test]
fn rwmutex_lock() {
    let expect = Reports {
        partial_deadlocks: 1,
        ..NOTHING
    };
    let Some(stderr) = corpus_case("rwmutex_lock", expect, || async {
        let leak = runnel::spawn(async {
            let mu = RwLock::new(());
            let _first = mu.write().await;
            let _second = mu.write().await;
            panic!("should not be reached");
        });
        Case::stuck(vec![stuck(&leak, "write lock of rwlock")])
    }) else {
        return;
    };
    assert!(
        stderr.contains("likely partial deadlock: 1 task(s)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("waits on: write lock of rwlock"),
        "{stderr}"
    );
}

/// Go: `cond.L.Lock(); cond.Wait()` on a local `sync.Cond`. runnel has no `Cond`; its
/// `Notify` (waited for after releasing the lock, as `Wait` does) is the same wait. Caught
/// (certain): the `Notify` lives inside the task's own future.
#[test]
fn cond() {
    let expect = Reports {
        partial_deadlocks: 1,
        ..NOTHING
    };
    let Some(stderr) = corpus_case("cond", expect, || async {
        let leak = runnel::spawn(async {
            let lock = Mutex::new(());
            let cond = Notify::new();
            let guard = lock.lock().await;
            let wakeup = cond.notified();
            drop(guard);
            wakeup.await;
            panic!("should not be reached");
        });
        Case::stuck(vec![stuck(&leak, "notification of notify")])
    }) else {
        return;
    };
    assert!(
        stderr.contains("partial deadlock: 1 task(s) can never run again"),
        "{stderr}"
    );
    assert!(
        stderr.contains("waits on: notification of notify 0x"),
        "{stderr}"
    );
    assert!(!stderr.contains("likely partial deadlock"), "{stderr}");
}

/// Go: a goroutine waits on a `WaitGroup` before receiving from a channel, while the one
/// that would call `Done` first blocks sending on it. In Rust the sender waits on a full
/// channel (Go's unbuffered send has no room either) and the group is shared through an
/// `Arc`. Not caught: each task waits on something the other holds, but neither a channel
/// end nor a shared group records who holds it.
#[test]
fn mixed() {
    let Some(stderr) = corpus_case("mixed", NOTHING, || async {
        let (ids, mut spawned) = spawned_ids();
        let parent = runnel::spawn(async move {
            let (ch, mut rx) = mpsc::channel::<i32>(1);
            ch.try_send(0).unwrap();
            let wg = Arc::new(WaitGroup::new());
            wg.add(1);
            let child_wg = wg.clone();
            let child = runnel::spawn(async move {
                ch.send(0).await.unwrap();
                child_wg.done();
                panic!("should not be reached");
            });
            ids.send(child.id().to_string()).unwrap();
            wg.wait().await;
            rx.recv().await;
            panic!("should not be reached");
        });
        let child = spawned.recv().await.unwrap();
        Case::stuck(vec![
            stuck(&parent, "completion of wait group"),
            Stuck {
                id: child,
                on: "send on full channel",
            },
        ])
    }) else {
        return;
    };
    assert!(!stderr.contains("partial deadlock"), "{stderr}");
}

static GLOBAL_CH: OnceLock<mpsc::Sender<i32>> = OnceLock::new();
static GLOBAL_COND: Notify = Notify::const_new();

/// Go's control: a goroutine receives from a global channel; no leak (anyone may send).
/// Here on a channel whose `Sender` is in a `static`, and on a `static` `Notify`; then
/// both are signalled, and the waiters finish.
#[test]
fn no_leak_global() {
    let Some(stderr) = corpus_case("no_leak_global", NOTHING, || async {
        let (ch, mut rx) = mpsc::channel::<i32>(1);
        GLOBAL_CH.set(ch).unwrap();
        let receiver = runnel::spawn(async move { rx.recv().await });
        let cond_waiter = runnel::spawn(GLOBAL_COND.notified());
        Case {
            stuck: vec![
                stuck(&receiver, "recv on channel"),
                stuck(&cond_waiter, "notification of notify"),
            ],
            then: Some(Box::pin(async move {
                GLOBAL_CH.get().unwrap().send(1).await.unwrap();
                GLOBAL_COND.notify_one();
                assert_eq!(receiver.await.unwrap(), Some(1));
                cond_waiter.await.unwrap();
            })),
        }
    }) else {
        return;
    };
    assert!(!stderr.contains("partial deadlock"), "{stderr}");
}

// ---- commonpatterns.go --------------------------------------------------------------

/// Go's `noCloseRange`: workers range over a channel that is never closed; with no worker,
/// the producer's send blocks.
async fn no_close_range(list: Vec<i32>, workers: usize) -> Vec<JoinHandle<()>> {
    let (ch, rx) = mpsc::channel::<i32>(1);
    let rx = Arc::new(Mutex::new(rx));
    let workers = (0..workers)
        .map(|_| {
            let rx = rx.clone();
            runnel::spawn(async move {
                while let Some(item) = rx.lock().await.recv().await {
                    let _ = item;
                }
            })
        })
        .collect();
    for item in list {
        ch.send(item).await.unwrap();
    }
    // Go never closes the channel, so its workers leak; here `ch` is dropped on return,
    // which closes it.
    workers
}

/// Go: `noCloseRange` with 0 workers (the send leaks) and with 3 (the workers leak). With
/// 3, cannot happen: the producer's return drops the `Sender` and the workers' receive
/// ends. With 0, not caught: the producer keeps the `Receiver` (shared with no one) and
/// blocks on a full channel.
#[test]
fn no_close_range_pattern() {
    let Some(stderr) = corpus_case("no_close_range_pattern", NOTHING, || async {
        let three = runnel::spawn(no_close_range(vec![1, 2, 3], 3));
        for worker in three.await.unwrap() {
            worker.await.unwrap();
        }
        let none = runnel::spawn(async {
            no_close_range(vec![1, 2, 3], 0).await;
            panic!("should not be reached");
        });
        Case::stuck(vec![stuck(&none, "send on full channel")])
    }) else {
        return;
    };
    assert!(!stderr.contains("partial deadlock"), "{stderr}");
}

/// Go's `worker`: `Start` runs a goroutine serving `ch` until `done` is closed by `Stop`.
struct Worker {
    ch: mpsc::Sender<i32>,
    _done: mpsc::Sender<()>,
    task: JoinHandle<()>,
}

impl Worker {
    fn start() -> Worker {
        let (ch, mut items) = mpsc::channel::<i32>(1);
        let (done, mut stop) = mpsc::channel::<()>(1);
        let task = runnel::spawn(async move {
            loop {
                runnel::select! {
                    Some(_item) = items.recv() => {}
                    // `Stop` — or every handle of the worker dropped.
                    _ = stop.recv() => return,
                }
            }
        });
        Worker {
            ch,
            _done: done,
            task,
        }
    }

    async fn add_to_queue(&self, item: i32) {
        self.ch.send(item).await.unwrap();
    }
}

/// Go's `workerLifecycle`: uses the worker and returns without calling `Stop`.
async fn worker_lifecycle(items: Vec<i32>) -> JoinHandle<()> {
    let w = Worker::start();
    for item in items {
        w.add_to_queue(item).await;
    }
    runnel::task::yield_now().await;
    // The rest of `w` (both `Sender`s) is dropped here, which is `Stop`.
    w.task
}

/// Go: `MethodContractViolation` — the worker is never stopped and leaks in `select`.
/// Cannot happen: dropping the worker drops its `Sender`s, so its `select!` sees both
/// channels closed and returns.
#[test]
fn method_contract_violation() {
    let Some(stderr) = corpus_case("method_contract_violation", NOTHING, || async {
        let worker = worker_lifecycle(vec![0; 10]).await;
        worker.await.unwrap();
        Case::finished()
    }) else {
        return;
    };
    assert!(!stderr.contains("partial deadlock"), "{stderr}");
}

/// Go's `doubleSend`: on an error it sends twice (a missing `return`).
async fn double_send(ch: mpsc::Sender<Option<()>>, err: Option<&str>) -> bool {
    if err.is_some() {
        let _ = ch.send(None).await;
        // The return is missing here.
    }
    ch.send(Some(())).await.is_ok()
}

/// Go: `DoubleSend` — the erroring sender's second send leaks (Go's controls: the send
/// without error, and the one into a channel with a slot to spare). Cannot happen: a Rust
/// channel has at least one slot, and once the receiver is dropped a send fails; every
/// sender finishes.
#[test]
fn double_send_pattern() {
    let Some(stderr) = corpus_case("double_send_pattern", NOTHING, || async {
        let main = runnel::spawn(async {
            let (ch, mut rx) = mpsc::channel(1);
            let fine = runnel::spawn(double_send(ch.clone(), None));
            rx.recv().await.unwrap();
            let twice = runnel::spawn(double_send(ch, Some("error")));
            rx.recv().await.unwrap();
            let (ch1, mut rx1) = mpsc::channel(1);
            let buffered = runnel::spawn(double_send(ch1, Some("error")));
            rx1.recv().await.unwrap();
            [fine, twice, buffered]
        });
        for sender in main.await.unwrap() {
            sender.await.unwrap();
        }
        Case::finished()
    }) else {
        return;
    };
    assert!(!stderr.contains("partial deadlock"), "{stderr}");
}

/// Go's `earlyReturn`: the parent returns before receiving, and the sender leaks.
async fn early_return(err: Option<&str>) -> JoinHandle<Result<(), SendError<()>>> {
    let (ch, mut rx) = mpsc::channel::<()>(1);
    // Full, as Go's unbuffered channel is: the send must wait for the receiver.
    ch.try_send(()).unwrap();
    let sender = runnel::spawn(async move { ch.send(()).await });
    if err.is_some() {
        // `rx` is dropped here: the send fails instead of leaking.
        return sender;
    }
    rx.recv().await;
    sender
}

/// Go: `EarlyReturn` — the sender leaks. Cannot happen: the parent's return drops the
/// `Receiver`, so the sender's send fails.
#[test]
fn early_return_pattern() {
    let Some(stderr) = corpus_case("early_return_pattern", NOTHING, || async {
        let sender = early_return(Some("error")).await;
        assert!(sender.await.unwrap().is_err(), "the send fails");
        Case::finished()
    }) else {
        return;
    };
    assert!(!stderr.contains("partial deadlock"), "{stderr}");
}

/// Go's `nCastLeak`: one sender per item, only the first result is received.
async fn ncast_leak(items: usize) -> Vec<JoinHandle<Result<(), SendError<()>>>> {
    let (ch, mut rx) = mpsc::channel::<()>(1);
    let senders = (0..items)
        .map(|_| {
            let ch = ch.clone();
            runnel::spawn(async move { ch.send(()).await })
        })
        .collect();
    // Go's `ch` stays in scope too; here that is a `Sender` the receiver itself holds.
    rx.recv().await;
    drop(ch);
    senders
}

/// Go: `NCastLeak` — with 5 items the 4 late senders leak; with none, the receiver does.
/// With 5, cannot happen: the receiver's return drops it, and every late send fails (one
/// may still fit in the slot). With none, not caught: the receiver waits on a `Sender` it
/// keeps itself.
#[test]
fn ncast_leak_pattern() {
    let Some(stderr) = corpus_case("ncast_leak_pattern", NOTHING, || async {
        let senders = runnel::spawn(ncast_leak(5)).await.unwrap();
        let mut failed = 0;
        for sender in senders {
            failed += usize::from(sender.await.unwrap().is_err());
        }
        assert!(failed >= 3, "{failed} of 5 sends failed");
        let receiver = runnel::spawn(async {
            ncast_leak(0).await;
            panic!("should not be reached");
        });
        Case::stuck(vec![stuck(&receiver, "recv on channel")])
    }) else {
        return;
    };
    assert!(!stderr.contains("partial deadlock"), "{stderr}");
}

/// Go's `timeout`: the receiver gives up when the context is done, and the sender leaks.
async fn timeout(mut ctx: watch::Receiver<bool>) -> JoinHandle<Result<(), SendError<()>>> {
    let (ch, mut rx) = mpsc::channel::<()>(1);
    // The only slot reserved, not filled: as with Go's unbuffered channel, the send waits
    // for the receiver and the receive finds nothing.
    let _slot = ch.clone().try_reserve_owned().unwrap();
    let sender = runnel::spawn(async move { ch.send(()).await });
    runnel::select! {
        _ = rx.recv() => {}
        _ = async { while !*ctx.borrow_and_update() { ctx.changed().await.unwrap() } } => {}
    }
    sender
}

/// Go: `Timeout` — 100 calls with a cancelled context, each leaking its sender. Cannot
/// happen: the receiver's return drops it, so the send completes or fails.
#[test]
fn timeout_pattern() {
    let Some(stderr) = corpus_case("timeout_pattern", NOTHING, || async {
        let (cancel, ctx) = watch::channel(false);
        cancel.send(true).unwrap();
        let calls: Vec<_> = (0..100)
            .map(|_| runnel::spawn(timeout(ctx.clone())))
            .collect();
        for call in calls {
            let _sent_or_failed = call.await.unwrap().await.unwrap();
        }
        Case::finished()
    }) else {
        return;
    };
    assert!(!stderr.contains("partial deadlock"), "{stderr}");
}

// ---- why channel ends are not given holders -----------------------------------------

/// A subscriber task hands its `Sender` to a registry (here a `static` behind a std mutex,
/// which runnel cannot see) and waits to be told something, which happens long after the
/// quiet period. Healthy: no report. A detector that presumed a `Sender` stays with the
/// task that made it would report this subscriber as waiting on itself — which is why
/// runnel's channel waits (`chan_recv`, `ncast_leak_pattern`, ...) stay "not caught".
#[test]
fn no_report_a_sender_kept_in_a_registry() {
    static SUBSCRIBERS: std::sync::Mutex<Vec<mpsc::Sender<i32>>> =
        std::sync::Mutex::new(Vec::new());
    let Some(stderr) = corpus_case("no_report_a_sender_kept_in_a_registry", NOTHING, || async {
        let subscriber = runnel::spawn(async {
            let (tx, mut rx) = mpsc::channel::<i32>(1);
            SUBSCRIBERS.lock().unwrap().push(tx);
            rx.recv().await
        });
        Case {
            stuck: vec![stuck(&subscriber, "recv on channel")],
            then: Some(Box::pin(async move {
                let subscribers = std::mem::take(&mut *SUBSCRIBERS.lock().unwrap());
                for tx in subscribers {
                    tx.send(42).await.unwrap();
                }
                assert_eq!(subscriber.await.unwrap(), Some(42));
            })),
        }
    }) else {
        return;
    };
    assert!(!stderr.contains("partial deadlock"), "{stderr}");
}
