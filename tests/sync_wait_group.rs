//! `runnel::sync::WaitGroup` on the runnel runtime with 1, 2 and 4 workers: tokens and
//! Go-style `add`/`done` across reused rounds with several waiters, random cancellation of
//! `wait` (cancel safety), tokens released by aborted and panicking tasks, a token on a
//! foreign thread (a stall report, never a deadlock report), the dump naming the wait, and
//! once on foreign executors (runtime-agnostic). A lost wakeup shows as a hang, so every
//! scenario runs in a child process with a kill timeout (`support::in_child_process`).

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use runnel::sync::{WaitGroup, WaitGroupToken};
use runnel::task::yield_now;
use runnel::OnDeadlock;

const WORKER_COUNTS: [usize; 3] = [1, 2, 4];

/// Runs `scenario` in a child process (see `support::in_child_process`) once per worker
/// count, each on a fresh runtime whose detector panics on a deadlock.
#[track_caller]
fn on_each_worker_count(test_name: &str, scenario: impl Fn(&runnel::Runtime)) {
    support::in_child_process(test_name, || {
        for workers in WORKER_COUNTS {
            println!("{workers} worker(s)");
            let rt = runnel::Builder::new()
                .worker_threads(workers)
                .on_deadlock(OnDeadlock::Panic)
                .build()
                .unwrap();
            scenario(&rt);
        }
    });
}

/// xorshift: reproducible "random" choices per task.
fn next(seed: &mut u32) -> u32 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 17;
    *seed ^= *seed << 5;
    *seed
}

/// Polls `inner` at most `polls` times, then drops it (a cancellation at a chosen point).
struct CancelAfter<F> {
    inner: Pin<Box<F>>,
    polls: u32,
}

impl<F: Future> Future for CancelAfter<F> {
    type Output = Option<F::Output>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.polls == 0 {
            return Poll::Ready(None);
        }
        self.polls -= 1;
        match self.inner.as_mut().poll(cx) {
            Poll::Ready(v) => Poll::Ready(Some(v)),
            Poll::Pending => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
}

#[test]
fn tokens_in_tasks_are_all_done_when_wait_returns() {
    on_each_worker_count("tokens_in_tasks_are_all_done_when_wait_returns", |rt| {
        rt.block_on(async {
            const TASKS: usize = 200;
            let wg = WaitGroup::new();
            let finished = Arc::new(AtomicUsize::new(0));
            for i in 0..TASKS {
                let token = wg.token();
                let finished = finished.clone();
                runnel::spawn(async move {
                    for _ in 0..i % 4 {
                        yield_now().await;
                    }
                    // Relaxed: `wait` must order it (done() releases, wait acquires).
                    finished.fetch_add(1, Relaxed);
                    drop(token);
                });
            }
            wg.wait().await;
            assert_eq!(finished.load(Relaxed), TASKS);
            assert_eq!(wg.count(), 0);
        });
    });
}

/// Go's shape, reused for many rounds: `add(n)` before spawning, `done()` at the end, and
/// three tasks waiting on each round besides `block_on`.
#[test]
fn go_style_rounds_wake_every_waiter() {
    on_each_worker_count("go_style_rounds_wake_every_waiter", |rt| {
        rt.block_on(async {
            let wg = Arc::new(WaitGroup::new());
            let finished = Arc::new(AtomicUsize::new(0));
            for round in 1..=30usize {
                let workers = round % 7 + 1;
                wg.add(workers);
                let waiters: Vec<_> = (0..3)
                    .map(|_| {
                        let (wg, finished) = (wg.clone(), finished.clone());
                        runnel::spawn(async move {
                            wg.wait().await;
                            finished.load(Relaxed)
                        })
                    })
                    .collect();
                for w in 0..workers {
                    let (wg, finished) = (wg.clone(), finished.clone());
                    runnel::spawn(async move {
                        if (w + round) % 3 == 0 {
                            yield_now().await;
                        }
                        finished.fetch_add(1, Relaxed);
                        wg.done();
                    });
                }
                wg.wait().await;
                let expected: usize = (1..=round).map(|r| r % 7 + 1).sum();
                assert_eq!(finished.load(Relaxed), expected);
                for waiter in waiters {
                    // Each saw at least this round's work done.
                    assert!(waiter.await.unwrap() >= expected);
                }
            }
        });
    });
}

/// Waiters cancelled at random points (by a timer, or after a few polls) while workers
/// finish: the count is untouched by cancellation, the waiters that stay are all woken,
/// and the group is reusable afterwards.
#[test]
fn cancelled_waits_lose_nothing() {
    on_each_worker_count("cancelled_waits_lose_nothing", |rt| {
        rt.block_on(async {
            let wg = Arc::new(WaitGroup::new());
            let cancelled = Arc::new(AtomicUsize::new(0));
            let completed = Arc::new(AtomicUsize::new(0));
            for round in 0..40u32 {
                let workers = (round % 5 + 1) as usize;
                wg.add(workers);
                let waiters: Vec<_> = (0..6u32)
                    .map(|t| {
                        let (wg, cancelled, completed) =
                            (wg.clone(), cancelled.clone(), completed.clone());
                        runnel::spawn(async move {
                            let mut seed =
                                0x2545_F491 ^ (round * 8 + t + 1).wrapping_mul(0x9E37_79B9);
                            let r = next(&mut seed);
                            let outcome = match r % 3 {
                                0 => {
                                    let wait = Duration::from_micros(u64::from(r >> 4 & 255));
                                    runnel::time::timeout(wait, wg.wait()).await.ok()
                                }
                                1 => {
                                    CancelAfter {
                                        inner: Box::pin(wg.wait()),
                                        polls: r >> 4 & 3,
                                    }
                                    .await
                                }
                                _ => {
                                    wg.wait().await;
                                    Some(())
                                }
                            };
                            match outcome {
                                Some(()) => completed.fetch_add(1, SeqCst),
                                None => cancelled.fetch_add(1, SeqCst),
                            };
                        })
                    })
                    .collect();
                for w in 0..workers {
                    let wg = wg.clone();
                    runnel::spawn(async move {
                        for _ in 0..(w + round as usize) % 3 {
                            yield_now().await;
                        }
                        wg.done();
                    });
                }
                for waiter in waiters {
                    waiter.await.unwrap();
                }
                wg.wait().await;
                assert_eq!(wg.count(), 0);
            }
            assert_eq!(
                cancelled.load(SeqCst) + completed.load(SeqCst),
                40 * 6,
                "every waiter ended"
            );
            // Both outcomes happened, or the test proved nothing.
            assert!(cancelled.load(SeqCst) > 0 && completed.load(SeqCst) > 0);
        });
    });
}

/// The token's point: a task that is aborted, or panics, drops its future and with it the
/// token, so `wait` completes. (With `add`/`done` such a task never reaches its `done()`.)
#[test]
fn aborted_and_panicking_tasks_release_their_tokens() {
    support::silence_expected_panics();
    on_each_worker_count("aborted_and_panicking_tasks_release_their_tokens", |rt| {
        rt.block_on(async {
            let wg = WaitGroup::new();
            let stuck: Vec<_> = (0..4)
                .map(|_| {
                    let token = wg.token();
                    runnel::spawn(async move {
                        let _token = token;
                        std::future::pending::<()>().await;
                    })
                })
                .collect();
            let token = wg.token();
            let panicking = runnel::spawn(async move {
                let _token = token;
                yield_now().await;
                panic!("{}", support::EXPECTED);
            });
            assert!(panicking.await.unwrap_err().is_panic());
            assert_eq!(wg.count(), 4);
            let mut waiting = Box::pin(wg.wait());
            assert!(futures::poll!(waiting.as_mut()).is_pending());
            for task in stuck {
                task.abort();
                assert!(task.await.unwrap_err().is_cancelled());
            }
            waiting.await;
            assert_eq!(wg.count(), 0);
        });
    });
}

/// A token held by a plain thread is a holder the runtime cannot see: while `block_on`
/// waits for it, the detector must say "maybe" (a stall report), never "deadlock", and
/// the wait must end normally when the thread drops the token.
#[test]
fn a_token_on_a_foreign_thread_is_never_a_deadlock() {
    support::in_child_process("a_token_on_a_foreign_thread_is_never_a_deadlock", || {
        for workers in WORKER_COUNTS {
            let rt = runnel::Builder::new()
                .worker_threads(workers)
                .on_deadlock(OnDeadlock::Panic)
                .stall_report_after(Some(Duration::from_millis(20)))
                .build()
                .unwrap();
            let wg = WaitGroup::new();
            let token: WaitGroupToken = wg.token();
            let reader = rt.handle().metrics_reader();
            let holder = std::thread::spawn(move || {
                // Acts only after the runtime has been quiet long enough to be reported.
                support::wait_until("a stall report", || reader.snapshot().stall_reports >= 1);
                drop(token);
            });
            rt.block_on(wg.wait());
            holder.join().unwrap();
            let m = rt.metrics();
            assert_eq!(m.deadlock_reports, 0, "{m:?}");
            assert!(m.stall_reports >= 1, "{m:?}");
        }
    });
}

#[test]
fn the_dump_names_a_wait_on_a_wait_group() {
    on_each_worker_count("the_dump_names_a_wait_on_a_wait_group", |rt| {
        let text = rt.block_on(async {
            let wg = Arc::new(WaitGroup::new());
            let token = wg.token();
            let waiter = runnel::spawn({
                let wg = wg.clone();
                async move { wg.wait().await }
            });
            let handle = runnel::Handle::current();
            support::wait_until("the waiter waits", || {
                handle
                    .dump()
                    .to_string()
                    .contains("waits on: completion of wait group")
            });
            let text = handle.dump().to_string();
            drop(token);
            waiter.await.unwrap();
            text
        });
        let line = text
            .lines()
            .find(|l| l.contains("completion of wait group 0x"))
            .unwrap_or_else(|| panic!("no wait group wait in:\n{text}"));
        assert!(
            line.contains("(spawned at tests/sync_wait_group.rs:"),
            "{line}"
        );
    });
}

/// The same group used from foreign executors and plain threads: `futures` LocalPools on
/// four threads hold tokens, a plain thread blocks in `blocking_wait`.
#[test]
fn runtime_agnostic_on_futures_executor() {
    support::in_child_process("runtime_agnostic_on_futures_executor", || {
        use futures::executor::LocalPool;
        use futures::task::LocalSpawnExt;

        let wg = Arc::new(WaitGroup::new());
        let finished = Arc::new(AtomicUsize::new(0));
        // Counted before any thread starts, so the waiters cannot see zero too early.
        let tokens: Vec<_> = (0..4).map(|_| wg.token()).collect();
        let blocking_waiter = {
            let (wg, finished) = (wg.clone(), finished.clone());
            std::thread::spawn(move || {
                wg.blocking_wait();
                finished.load(Relaxed)
            })
        };
        let threads: Vec<_> = tokens
            .into_iter()
            .map(|token| {
                let finished = finished.clone();
                std::thread::spawn(move || {
                    let mut pool = LocalPool::new();
                    for _ in 0..8 {
                        let (token, finished) = (token.clone(), finished.clone());
                        pool.spawner()
                            .spawn_local(async move {
                                finished.fetch_add(1, Relaxed);
                                token.done();
                            })
                            .unwrap();
                    }
                    drop(token);
                    pool.run();
                })
            })
            .collect();
        futures::executor::block_on(wg.wait());
        assert_eq!(finished.load(Relaxed), 32);
        assert_eq!(blocking_waiter.join().unwrap(), 32);
        for t in threads {
            t.join().unwrap();
        }
    });
}

/// `done()` below zero panics, names the caller's line (`#[track_caller]`) and changes
/// nothing. In a child process: it installs a panic hook.
#[test]
fn a_negative_counter_panics_with_the_callers_location() {
    support::in_child_process(
        "a_negative_counter_panics_with_the_callers_location",
        || {
            let location = Arc::new(std::sync::Mutex::new(None));
            let seen = location.clone();
            std::panic::set_hook(Box::new(move |info| {
                *seen.lock().unwrap() = info.location().map(|l| (l.file().to_owned(), l.line()));
            }));
            let wg = WaitGroup::new();
            wg.add(1);
            wg.done();
            let line = line!() + 1;
            let caught = std::panic::catch_unwind(|| wg.done());
            let _ = std::panic::take_hook();
            let message = support::panic_message(&*caught.unwrap_err());
            assert!(message.contains("negative WaitGroup counter"), "{message}");
            assert!(message.contains("add(1)"), "{message}");
            assert_eq!(wg.count(), 0, "a refused done() changes nothing");
            let location = location.lock().unwrap().clone();
            assert_eq!(
                location,
                Some(("tests/sync_wait_group.rs".to_owned(), line))
            );
        },
    );
}
