//! Panics in tasks become `JoinError`s: payloads round-trip, the error prints well, the
//! runtime keeps all its workers, and a panicking `Drop` while cancelling is contained.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};

use futures::channel::oneshot;
use support::{
    runtime, silence_expected_panics, tracked, Counts, ExpectedPayload, Out, EXPECTED, PATIENCE,
};

#[test]
fn str_payload_round_trips() {
    silence_expected_panics();
    let rt = runtime(2);
    let err = rt
        .block_on(rt.spawn(async { panic!("boom (expected test panic)") }))
        .unwrap_err();
    assert!(err.is_panic() && !err.is_cancelled());
    let payload = err.into_panic();
    assert_eq!(
        *payload.downcast::<&str>().unwrap(),
        "boom (expected test panic)"
    );
}

#[test]
fn string_payload_round_trips() {
    silence_expected_panics();
    let rt = runtime(2);
    let err = rt
        .block_on(async { runnel::spawn(async { panic!("boom {} {EXPECTED}", 42) }).await })
        .unwrap_err();
    let payload = err.try_into_panic().expect("a panic, not a cancellation");
    assert_eq!(
        *payload.downcast::<String>().unwrap(),
        format!("boom 42 {EXPECTED}")
    );
}

#[test]
fn custom_payload_round_trips_and_resumes() {
    silence_expected_panics();
    let rt = runtime(2);
    let err = rt
        .block_on(rt.spawn(async { std::panic::panic_any(ExpectedPayload(7)) }))
        .unwrap_err();
    let payload = err.into_panic();
    // Resuming on the awaiting side carries the same payload.
    let resumed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        std::panic::resume_unwind(payload)
    }))
    .unwrap_err();
    assert_eq!(
        resumed.downcast_ref::<ExpectedPayload>(),
        Some(&ExpectedPayload(7))
    );
}

#[test]
fn join_error_display_and_debug() {
    silence_expected_panics();
    let rt = runtime(2);
    let (str_err, string_err, custom_err, cancelled) = rt.block_on(async {
        let a = runnel::spawn(async { panic!("lit (expected test panic)") });
        let b = runnel::spawn(async { panic!("fmt {} {EXPECTED}", 1) });
        let c = runnel::spawn(async { std::panic::panic_any(ExpectedPayload(1)) });
        let d = runnel::spawn(std::future::pending::<()>());
        d.abort();
        (
            a.await.unwrap_err(),
            b.await.unwrap_err(),
            c.await.unwrap_err(),
            d.await.unwrap_err(),
        )
    });
    let id = str_err.id();
    assert_eq!(
        str_err.to_string(),
        format!("task {id} panicked with message \"lit (expected test panic)\"")
    );
    assert_eq!(
        format!("{str_err:?}"),
        format!("JoinError::Panic({id}, \"task {id} panicked with message \\\"lit (expected test panic)\\\"\")")
    );
    assert_eq!(
        string_err.to_string(),
        format!(
            "task {} panicked with message \"fmt 1 {EXPECTED}\"",
            string_err.id()
        )
    );
    assert_eq!(
        custom_err.to_string(),
        format!("task {} panicked", custom_err.id())
    );
    assert_eq!(
        cancelled.to_string(),
        format!("task {} was cancelled", cancelled.id())
    );
    assert_eq!(
        format!("{cancelled:?}"),
        format!("JoinError::Cancelled({})", cancelled.id())
    );
    // It is an std Error and converts to io::Error with the same text.
    let io: std::io::Error = cancelled.into();
    assert!(io.to_string().contains("was cancelled"));
}

#[test]
fn runtime_survives_a_thousand_panics() {
    silence_expected_panics();
    const WORKERS: usize = 2;
    let rt = runtime(WORKERS);
    let panicked = rt.block_on(async {
        let handles: Vec<_> = (0..1_000)
            .map(|i| {
                runnel::spawn(async move {
                    if i % 2 == 0 {
                        runnel::task::yield_now().await;
                    }
                    panic!("task {i} {EXPECTED}");
                })
            })
            .collect();
        let mut panicked = 0;
        for h in handles {
            panicked += usize::from(h.await.unwrap_err().is_panic());
        }
        panicked
    });
    assert_eq!(panicked, 1_000);

    // Every worker thread is still alive: WORKERS tasks block their threads at the same
    // time, which only works if WORKERS threads run them.
    let (arrived_tx, arrived_rx) = mpsc::channel();
    let gate = support::Gate::new();
    let blockers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let arrived = arrived_tx.clone();
            let gate = gate.clone();
            rt.spawn(async move {
                arrived.send(()).unwrap();
                gate.pass();
            })
        })
        .collect();
    for _ in 0..WORKERS {
        arrived_rx
            .recv_timeout(PATIENCE)
            .expect("a worker thread is missing");
    }
    gate.open(WORKERS);
    rt.block_on(async {
        for b in blockers {
            b.await.unwrap();
        }
        // And ordinary work still runs.
        let sum: usize =
            futures::future::join_all((0..100).map(|i| runnel::spawn(async move { i })))
                .await
                .into_iter()
                .map(Result::unwrap)
                .sum();
        assert_eq!(sum, (0..100).sum());
    });
    // A joiner may see the output a moment before the task leaves the owned list.
    support::wait_until("every task left the owned list", || {
        rt.metrics().live_tasks == 0
    });
}

/// Panics when dropped.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("drop {EXPECTED}");
    }
}

#[test]
fn panicking_drop_during_abort_becomes_a_panic_error() {
    silence_expected_panics();
    let rt = runtime(2);
    let counts = Counts::new();
    let (started_tx, started_rx) = oneshot::channel();
    let handle = rt.spawn(tracked(&counts, async move {
        let _bomb = PanicOnDrop;
        started_tx.send(()).unwrap();
        std::future::pending::<()>().await;
    }));
    rt.block_on(started_rx).unwrap();
    handle.abort();
    let err = rt.block_on(handle).unwrap_err();
    assert!(err.is_panic(), "the Drop's panic is reported: {err:?}");
    assert!(support::panic_message(&*err.into_panic()).contains("drop"));
    assert_eq!(counts.drops(), 1);
    // The worker that ran the Drop is fine.
    assert_eq!(rt.block_on(rt.spawn(async { 3 })).unwrap(), 3);
}

/// Completes at once with its output, and panics when dropped afterwards.
struct ReadyThenPanicOnDrop(Option<Out>);

impl std::future::Future for ReadyThenPanicOnDrop {
    type Output = Out;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Out> {
        std::task::Poll::Ready(self.0.take().unwrap())
    }
}

impl Drop for ReadyThenPanicOnDrop {
    fn drop(&mut self) {
        panic!("drop after ready {EXPECTED}");
    }
}

#[test]
fn panicking_drop_after_ready_becomes_a_panic_error() {
    // (Not an async block with a panicking local: rustc leaks an async block's return
    // value when a local's destructor panics, rust-lang/rust#47949.)
    silence_expected_panics();
    let rt = runtime(2);
    let out_drops = Arc::new(AtomicUsize::new(0));
    let err = rt
        .block_on(rt.spawn(ReadyThenPanicOnDrop(Some(Out::new(1, &out_drops)))))
        .unwrap_err();
    assert!(err.is_panic());
    assert!(support::panic_message(&*err.into_panic()).contains("drop after ready"));
    assert_eq!(
        out_drops.load(SeqCst),
        1,
        "the output is dropped once, by the runtime"
    );
}

#[test]
fn panicking_drop_at_shutdown_is_contained() {
    silence_expected_panics();
    let rt = runtime(2);
    let counts = Counts::new();
    let (started_tx, started_rx) = mpsc::channel();
    let handles: Vec<_> = (0..10)
        .map(|_| {
            let started = started_tx.clone();
            rt.spawn(tracked(&counts, async move {
                let _bomb = PanicOnDrop;
                started.send(()).unwrap();
                std::future::pending::<()>().await;
            }))
        })
        .collect();
    for _ in 0..10 {
        started_rx.recv_timeout(PATIENCE).unwrap();
    }
    drop(rt); // must not propagate the Drop panics
    assert_eq!(counts.drops(), 10);
    for h in handles {
        // The handles outlive the runtime; a foreign executor can still read them.
        let err = futures::executor::block_on(h).unwrap_err();
        assert!(err.is_panic(), "{err:?}");
    }
}

/// An output whose Drop panics.
struct PanickingOutput;

impl Drop for PanickingOutput {
    fn drop(&mut self) {
        panic!("output drop {EXPECTED}");
    }
}

#[test]
fn panicking_output_drop_reaches_the_handle_owner_and_frees_the_task() {
    silence_expected_panics();
    let rt = runtime(2);
    let token = Arc::new(());
    let t = token.clone();
    let handle = rt.spawn(async move {
        drop(t);
        PanickingOutput
    });
    support::wait_until("the task completed", || handle.is_finished());
    let payload =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(handle))).unwrap_err();
    assert!(support::panic_message(&*payload).contains("output drop"));
    assert_eq!(Arc::strong_count(&token), 1);
    drop(rt);
}
