//! Signals: `ctrl_c` and `unix::signal` deliver what tokio's do (every stream sees each
//! delivery after its creation, coalesced), and a task waiting for a signal is an I/O
//! waiter to the deadlock detector: a server waiting for SIGINT/SIGTERM is never reported.
//!
//! Every test that delivers a signal runs in a child process (a handler, once installed,
//! stays for the life of the process, and a lost delivery would hang): the first is driven
//! by the parent with `kill(2)`, the others raise signals in the child itself.
//!
//! The `*_see_every_delivery` tests are the regression tests of a lost-delivery bug: each
//! `Signal` used to read one process-wide pipe itself, and with edge-triggered epoll the
//! stream that read first erased the wake-up of the others (two runtimes: the first
//! delivery lost in 20 of 20 runs; two tasks in one runtime: lost in 4 of 20 runs of 2000
//! deliveries, at rounds 100 to 1340).
#![cfg(unix)]

mod support;

use std::io::{BufRead, BufReader};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use futures::poll;
use runnel::signal::unix::{signal, SignalKind};
use runnel::{OnDeadlock, Runtime, DEADLOCK_MESSAGE};
use support::{in_child_process, is_child, panic_message, wait_until, CHILD_ENV, PATIENCE};

fn runtime() -> Runtime {
    runnel::Builder::new()
        .worker_threads(2)
        .on_deadlock(OnDeadlock::Panic)
        .build()
        .unwrap()
}

/// Sends `signum` to this process from another thread (the kernel picks the thread that
/// runs the handler), as an outside sender would.
fn kill_self_from_another_thread(signum: i32) {
    let pid = std::process::id() as libc::pid_t;
    std::thread::spawn(move || {
        // SAFETY: kill(2) with our own pid and a valid signal number has no memory effects.
        let rc = unsafe { libc::kill(pid, signum) };
        assert_eq!(rc, 0, "kill failed: {}", std::io::Error::last_os_error());
    })
    .join()
    .unwrap();
}

/// Raises `signum` on this thread: its handler has run when `raise` returns.
fn raise(signum: i32) {
    // SAFETY: raise(3) with a valid signal number whose handler (ours) is installed.
    let rc = unsafe { libc::raise(signum) };
    assert_eq!(rc, 0, "raise failed");
}

/// The child blocks in `block_on(ctrl_c())` under `OnDeadlock::Panic` while the runtime
/// runs deadlock checks; the parent then sends SIGINT, and the child must exit 0 after
/// `ctrl_c` returned. A false deadlock report would panic the child (exit code 101); a
/// lost SIGINT would hang it (killed after the patience).
#[test]
fn ctrl_c_in_block_on_is_not_a_deadlock_and_returns_on_sigint() {
    const NAME: &str = "ctrl_c_in_block_on_is_not_a_deadlock_and_returns_on_sigint";
    if is_child(NAME) {
        let rt = runtime();
        let reader = rt.handle().metrics_reader();
        rt.block_on(async {
            let mut ctrl_c = pin!(runnel::signal::ctrl_c());
            // The first poll installs the handler: from here SIGINT no longer kills us.
            assert!(poll!(ctrl_c.as_mut()).is_pending());
            let checks = reader.snapshot().deadlock_checks;
            std::thread::spawn(move || {
                wait_until("five deadlock checks while waiting for SIGINT", || {
                    reader.snapshot().deadlock_checks >= checks + 5
                });
                println!("listening");
            });
            ctrl_c.await.expect("ctrl_c");
        });
        assert_eq!(rt.metrics().deadlock_reports, 0);
        println!("ctrl_c returned");
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, NAME)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + 2 * PATIENCE;
    // Lines arrive through a thread, so that a silent child fails the test at the deadline
    // instead of blocking the read.
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        stdout
            .lines()
            .map_while(Result::ok)
            .try_for_each(|l| tx.send(l))
    });
    let mut output = Vec::new();
    // The harness prints "test <name> ... " before the child's first line, on the same line.
    while !output
        .last()
        .is_some_and(|l: &String| l.ends_with("listening"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => output.push(line),
            Err(e) => {
                let _ = child.kill();
                panic!("the child never waited for SIGINT ({e}): {output:?}");
            }
        }
    }
    // SAFETY: kill(2) on our own child's pid (not yet reaped, so not reused).
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(rc, 0);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("the child did not return from ctrl_c after SIGINT: {output:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    // The child exited: its stdout is at end of file, so the reader thread ends.
    output.extend(lines.iter());
    assert!(status.success(), "child failed ({status}): {output:?}");
    assert!(
        output.iter().any(|l| l == "ctrl_c returned"),
        "child output: {output:?}"
    );
}

/// A task parked in `recv` (its waker in the reactor) is woken by a SIGTERM sent from
/// another thread; waiting is not reported as a deadlock.
#[test]
fn sigterm_wakes_a_task_parked_in_recv() {
    in_child_process("sigterm_wakes_a_task_parked_in_recv", || {
        runtime().block_on(async {
            let mut term = signal(SignalKind::terminate()).unwrap();
            let mut recv = pin!(term.recv());
            assert!(poll!(recv.as_mut()).is_pending(), "no SIGTERM was sent yet");
            kill_self_from_another_thread(libc::SIGTERM);
            assert_eq!(recv.await, Some(()));
        });
    });
}

/// Two tasks listening for the same signal, both parked in `recv`: one delivery wakes
/// both.
#[test]
fn two_listeners_are_both_woken() {
    in_child_process("two_listeners_are_both_woken", || {
        runtime().block_on(async {
            let mut tasks = Vec::new();
            let mut parked = Vec::new();
            for _ in 0..2 {
                let mut usr1 = signal(SignalKind::user_defined1()).unwrap();
                let (tx, rx) = futures::channel::oneshot::channel();
                parked.push(rx);
                tasks.push(runnel::spawn(async move {
                    let mut recv = pin!(usr1.recv());
                    assert!(poll!(recv.as_mut()).is_pending());
                    tx.send(()).unwrap();
                    recv.await
                }));
            }
            for rx in parked {
                rx.await.unwrap();
            }
            kill_self_from_another_thread(libc::SIGUSR1);
            for task in tasks {
                assert_eq!(task.await.unwrap(), Some(()));
            }
        });
    });
}

/// A delivery after a stream's creation is kept until `recv` is polled, even when another
/// stream's `recv` completed first; a stream created after it does not see it; several
/// deliveries before a `recv` complete one `recv`; other signals do not complete it.
#[test]
fn deliveries_are_kept_coalesced_and_per_signal() {
    in_child_process("deliveries_are_kept_coalesced_and_per_signal", || {
        runtime().block_on(async {
            let mut first = signal(SignalKind::hangup()).unwrap();
            let mut second = signal(SignalKind::hangup()).unwrap();
            let mut usr2 = signal(SignalKind::user_defined2()).unwrap();
            raise(libc::SIGHUP);
            raise(libc::SIGHUP);
            let mut late = signal(SignalKind::hangup()).unwrap();
            // `first` completing takes nothing from `second`: each compares the count.
            assert_eq!(first.recv().await, Some(()));
            assert_eq!(second.recv().await, Some(()));
            // Coalesced: two deliveries, one recv each.
            assert!(poll!(pin!(first.recv())).is_pending());
            assert!(poll!(pin!(second.recv())).is_pending());
            assert!(
                poll!(pin!(late.recv())).is_pending(),
                "delivered before it existed"
            );
            assert!(
                poll!(pin!(usr2.recv())).is_pending(),
                "SIGHUP is not SIGUSR2"
            );
            // poll_recv: the same, stateless.
            raise(libc::SIGUSR2);
            let got = std::future::poll_fn(|cx| usr2.poll_recv(cx)).await;
            assert_eq!(got, Some(()));
            assert!(poll!(pin!(late.recv())).is_pending());
        });
    });
}

/// After the runtime shut down, `recv` ends the stream instead of waiting forever.
#[test]
fn recv_after_shutdown_is_none() {
    in_child_process("recv_after_shutdown_is_none", || {
        let rt = runtime();
        let mut usr1 = rt.block_on(async { signal(SignalKind::user_defined1()).unwrap() });
        drop(rt);
        assert_eq!(futures::executor::block_on(usr1.recv()), None);
    });
}

#[test]
fn refuses_what_it_cannot_listen_for() {
    runtime().block_on(async {
        for signum in [libc::SIGKILL, libc::SIGSTOP, libc::SIGSEGV, 0, -1, 1000] {
            let err = signal(SignalKind::from_raw(signum)).unwrap_err();
            assert_eq!(
                err.kind(),
                std::io::ErrorKind::InvalidInput,
                "{signum}: {err}"
            );
        }
        let err = signal(SignalKind::from_raw(libc::SIGKILL)).unwrap_err();
        assert!(err.to_string().contains("cannot be listened for"), "{err}");
    });
}

#[test]
#[should_panic(expected = "there is no runnel runtime here")]
fn signal_outside_a_runtime_panics() {
    let _ = signal(SignalKind::user_defined1());
}

#[test]
fn kinds_are_the_signal_numbers() {
    assert_eq!(SignalKind::interrupt().as_raw_value(), libc::SIGINT);
    assert_eq!(SignalKind::terminate().as_raw_value(), libc::SIGTERM);
    assert_eq!(SignalKind::hangup().as_raw_value(), libc::SIGHUP);
    assert_eq!(SignalKind::user_defined1(), SignalKind::from(libc::SIGUSR1));
    assert_eq!(i32::from(SignalKind::window_change()), libc::SIGWINCH);
}

// ---------------------------------------------------------------------------------------
// Several listeners, many deliveries: none lost (the regression tests of the module header)

/// Deliveries per lost-delivery test. Against the old design each of the three tests
/// below failed in 5 of 5 runs, by round 15 at the latest.
const ROUNDS: usize = 2000;

/// A listener: makes its `Signal`, says so on `ready`, then reports `(id, n)` on `acks`
/// after its `n`-th `recv` completed, for [`ROUNDS`] completions.
async fn listen_for_rounds(
    id: usize,
    signum: i32,
    ready: mpsc::Sender<()>,
    acks: mpsc::Sender<(usize, usize)>,
) {
    let mut stream = signal(SignalKind::from_raw(signum)).unwrap();
    ready.send(()).unwrap();
    for n in 1..=ROUNDS {
        assert_eq!(stream.recv().await, Some(()), "listener {id}: stream ended");
        acks.send((id, n)).unwrap();
    }
}

/// Waits until every listener (`listeners[id]` is the signal listener `id` listens for)
/// made its `Signal`, then runs [`ROUNDS`] rounds: raise each of the signals once (its
/// handlers have run when `raise` returns), then wait until every listener reported the
/// round. No round starts before the last one was seen by all, so each round is exactly
/// one delivery per listener: a `recv` that does not complete lost a delivery (reported
/// after [`PATIENCE`], naming the round and the listeners), and one that completes twice
/// is a delivery made up.
fn deliver_rounds(
    listeners: &[i32],
    ready: &mpsc::Receiver<()>,
    acks: &mpsc::Receiver<(usize, usize)>,
) {
    for _ in listeners {
        ready
            .recv_timeout(PATIENCE)
            .expect("a listener never made its Signal");
    }
    let mut signums = listeners.to_vec();
    signums.sort_unstable();
    signums.dedup();
    for round in 1..=ROUNDS {
        for &signum in &signums {
            raise(signum);
        }
        let mut seen = vec![false; listeners.len()];
        for _ in listeners {
            match acks.recv_timeout(PATIENCE) {
                Ok((id, n)) => {
                    assert_eq!(
                        n, round,
                        "listener {id}: recv completed {n} times in {round} rounds"
                    );
                    assert!(!seen[id], "listener {id}: two completions in round {round}");
                    seen[id] = true;
                }
                Err(e) => {
                    let lost: Vec<usize> = (0..listeners.len()).filter(|&id| !seen[id]).collect();
                    panic!("round {round}: listener(s) {lost:?} lost the delivery ({e})");
                }
            }
        }
    }
}

/// One listener task in each of two runtimes.
#[test]
fn listeners_in_two_runtimes_see_every_delivery() {
    in_child_process("listeners_in_two_runtimes_see_every_delivery", || {
        let runtimes = [runtime(), runtime()];
        let (ready_tx, ready) = mpsc::channel();
        let (acks_tx, acks) = mpsc::channel();
        let tasks: Vec<_> = runtimes
            .iter()
            .enumerate()
            .map(|(id, rt)| {
                rt.spawn(listen_for_rounds(
                    id,
                    libc::SIGUSR1,
                    ready_tx.clone(),
                    acks_tx.clone(),
                ))
            })
            .collect();
        deliver_rounds(&[libc::SIGUSR1; 2], &ready, &acks);
        for (rt, task) in runtimes.iter().zip(tasks) {
            rt.block_on(task).unwrap();
        }
        for rt in &runtimes {
            assert_eq!(rt.metrics().deadlock_reports, 0);
        }
    });
}

/// Two tasks of one two-worker runtime listen for SIGUSR1, a third for SIGUSR2 (each
/// delivery of one wakes the listeners of the other too, which must wait again).
#[test]
fn listeners_in_one_runtime_see_every_delivery() {
    in_child_process("listeners_in_one_runtime_see_every_delivery", || {
        let rt = runtime();
        let listeners = [libc::SIGUSR1, libc::SIGUSR1, libc::SIGUSR2];
        let (ready_tx, ready) = mpsc::channel();
        let (acks_tx, acks) = mpsc::channel();
        let tasks: Vec<_> = listeners
            .iter()
            .enumerate()
            .map(|(id, &signum)| {
                rt.spawn(listen_for_rounds(
                    id,
                    signum,
                    ready_tx.clone(),
                    acks_tx.clone(),
                ))
            })
            .collect();
        deliver_rounds(&listeners, &ready, &acks);
        for task in tasks {
            rt.block_on(task).unwrap();
        }
        assert_eq!(rt.metrics().deadlock_reports, 0);
    });
}

/// A listener in `block_on` of a current-thread runtime (its driver is run by the
/// `block_on` caller) and one task of a multi-thread runtime.
#[test]
fn listeners_in_current_thread_and_multi_thread_runtimes_see_every_delivery() {
    const NAME: &str = "listeners_in_current_thread_and_multi_thread_runtimes_see_every_delivery";
    in_child_process(NAME, || {
        let (ready_tx, ready) = mpsc::channel();
        let (acks_tx, acks) = mpsc::channel();
        let current = std::thread::spawn({
            let (ready_tx, acks_tx) = (ready_tx.clone(), acks_tx.clone());
            move || {
                let rt = runnel::Builder::new_current_thread()
                    .on_deadlock(OnDeadlock::Panic)
                    .build()
                    .unwrap();
                rt.block_on(listen_for_rounds(0, libc::SIGUSR1, ready_tx, acks_tx));
                assert_eq!(rt.metrics().deadlock_reports, 0);
            }
        });
        let rt = runtime();
        let task = rt.spawn(listen_for_rounds(1, libc::SIGUSR1, ready_tx, acks_tx));
        deliver_rounds(&[libc::SIGUSR1; 2], &ready, &acks);
        rt.block_on(task).unwrap();
        current.join().unwrap();
        assert_eq!(rt.metrics().deadlock_reports, 0);
    });
}

/// Stateless `poll_recv` on two streams of one runtime (as a `Stream` adapter polls): each
/// keeps its own waker, so neither replaces the other's.
#[test]
fn two_poll_recv_streams_are_both_woken() {
    in_child_process("two_poll_recv_streams_are_both_woken", || {
        let rt = runtime();
        let (ready_tx, ready) = mpsc::channel();
        let (acks_tx, acks) = mpsc::channel();
        let tasks: Vec<_> = (0..2)
            .map(|id| {
                let (ready_tx, acks_tx) = (ready_tx.clone(), acks_tx.clone());
                rt.spawn(async move {
                    let mut hup = signal(SignalKind::hangup()).unwrap();
                    ready_tx.send(()).unwrap();
                    for n in 1..=ROUNDS {
                        let got = std::future::poll_fn(|cx| hup.poll_recv(cx)).await;
                        assert_eq!(got, Some(()));
                        acks_tx.send((id, n)).unwrap();
                    }
                })
            })
            .collect();
        deliver_rounds(&[libc::SIGHUP; 2], &ready, &acks);
        for task in tasks {
            rt.block_on(task).unwrap();
        }
    });
}

// ---------------------------------------------------------------------------------------
// The detector: a task waiting for a signal is an I/O waiter, and nothing else is

/// A `Signal` nobody awaits, a cancelled `recv` and a dropped stream that was polled
/// statelessly leave no I/O waiter behind: a real deadlock next to them is still reported.
#[test]
fn signals_not_awaited_do_not_hide_a_deadlock() {
    in_child_process("signals_not_awaited_do_not_hide_a_deadlock", || {
        let rt = runtime();
        let payload = catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(async {
                let mut idle = signal(SignalKind::user_defined1()).unwrap();
                assert!(poll!(pin!(idle.recv())).is_pending(), "cancelled recv");
                let mut polled = signal(SignalKind::user_defined1()).unwrap();
                assert!(poll!(std::future::poll_fn(|cx| polled.poll_recv(cx))).is_pending());
                drop(polled);
                std::future::pending::<()>().await;
                drop(idle);
            })
        }))
        .expect_err("a block_on that awaits nothing must be reported");
        // (It names the last wait noted, the cancelled one: `wait` keeps the reason last
        // given before a `Pending`, and `pending()` gives none.)
        let report = panic_message(&*payload);
        assert!(report.starts_with(DEADLOCK_MESSAGE), "{report}");
        assert_eq!(rt.metrics().deadlock_reports, 1);
    });
}

/// The dump names a wait for a signal by the signal.
#[test]
fn the_dump_names_the_signal_a_task_waits_for() {
    in_child_process("the_dump_names_the_signal_a_task_waits_for", || {
        let rt = runtime();
        rt.block_on(async {
            let mut term = signal(SignalKind::terminate()).unwrap();
            let (tx, rx) = futures::channel::oneshot::channel();
            let task = runnel::spawn(async move {
                let mut recv = pin!(term.recv());
                assert!(poll!(recv.as_mut()).is_pending());
                tx.send(()).unwrap();
                recv.await
            });
            rx.await.unwrap();
            let handle = runnel::Handle::current();
            let expected = format!("waits on: delivery of signal {} (SIGTERM)", libc::SIGTERM);
            wait_until("the task waits for SIGTERM", || {
                handle.dump().to_string().contains(&expected)
            });
            raise(libc::SIGTERM);
            assert_eq!(task.await.unwrap(), Some(()));
        });
    });
}
