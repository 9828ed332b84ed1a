//! Misuse gets a clear message: `block_on` inside the runtime, `spawn` with no runtime,
//! impossible builder settings, `into_panic` on a cancellation.

mod support;

use std::panic::{catch_unwind, AssertUnwindSafe};

use runnel::Handle;
use support::{panic_message, runtime};

#[test]
fn block_on_inside_a_task_panics_with_a_clear_message() {
    let rt = runtime(2);
    let err = rt
        .block_on(rt.spawn(async { Handle::current().block_on(async { 1 }) }))
        .unwrap_err();
    assert!(err.is_panic());
    let msg = panic_message(&*err.into_panic());
    assert!(msg.contains("block_on") && msg.contains("inside"), "{msg}");
    assert!(
        msg.contains(".await"),
        "the message says what to do instead: {msg}"
    );
    // The worker survived.
    assert_eq!(rt.block_on(rt.spawn(async { 2 })).unwrap(), 2);
}

#[test]
fn nested_block_on_panics_and_leaves_the_runtime_usable() {
    let rt = runtime(2);
    let handle = rt.handle().clone();
    let payload = catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(async { handle.block_on(async { 1 }) })
    }))
    .unwrap_err();
    let msg = panic_message(&*payload);
    assert!(msg.contains("block_on") && msg.contains("inside"), "{msg}");
    // A Handle alive outside block_on may spawn: no deadlock could be reported while it
    // lives (the README's rule). This test is done with it.
    drop(handle);

    // Unwinding out of block_on restored the context and the counts: block_on works, and
    // the deadlock detector still reports (and only reports) a real deadlock.
    assert!(Handle::try_current().is_err());
    assert_eq!(
        rt.block_on(async { runnel::spawn(async { 3 }).await.unwrap() }),
        3
    );
    let deadlock = catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(std::future::pending::<()>())
    }))
    .unwrap_err();
    assert!(panic_message(&*deadlock).contains(runnel::DEADLOCK_MESSAGE));
    assert_eq!(rt.metrics().deadlock_reports, 1);
    assert_eq!(rt.block_on(async { 4 }), 4);
}

#[test]
fn block_on_of_another_runtime_inside_a_task_panics() {
    let rt = runtime(1);
    let other = runtime(1);
    let other_handle = other.handle().clone();
    let err = rt
        .block_on(rt.spawn(async move { other_handle.block_on(async {}) }))
        .unwrap_err();
    assert!(panic_message(&*err.into_panic()).contains("block_on"));
}

#[test]
fn spawn_without_a_runtime_names_the_fix() {
    let payload = catch_unwind(|| runnel::spawn(async {})).unwrap_err();
    let msg = panic_message(&*payload);
    assert!(msg.contains("Runtime::block_on"), "{msg}");
    assert!(msg.contains("#[runnel::main]"), "{msg}");

    let payload = catch_unwind(|| runnel::spawn_blocking(|| ())).unwrap_err();
    let msg = panic_message(&*payload);
    assert!(
        msg.contains("Runtime::block_on") && msg.contains("#[runnel::main]"),
        "{msg}"
    );
}

#[test]
fn spawn_after_the_runtime_thread_context_ended_panics() {
    let rt = runtime(1);
    {
        let _guard = rt.enter();
    }
    let payload = catch_unwind(|| runnel::spawn(async {})).unwrap_err();
    assert!(panic_message(&*payload).contains("outside a runnel runtime"));
}

#[test]
#[should_panic(expected = "worker_threads must be at least 1")]
fn zero_worker_threads_is_rejected() {
    runnel::Builder::new().worker_threads(0);
}

#[test]
#[should_panic(expected = "max_blocking_threads must be at least 1")]
fn zero_blocking_threads_is_rejected() {
    runnel::Builder::new().max_blocking_threads(0);
}

#[test]
fn into_panic_on_a_cancelled_error_says_why() {
    let rt = runtime(1);
    let handle = rt.spawn(std::future::pending::<()>());
    handle.abort();
    let err = rt.block_on(handle).unwrap_err();
    assert!(err.is_cancelled());
    let id = err.id();
    let payload = catch_unwind(AssertUnwindSafe(|| err.into_panic())).unwrap_err();
    let msg = panic_message(&*payload);
    assert!(
        msg.contains("into_panic") && msg.contains("cancelled"),
        "{msg}"
    );
    assert!(msg.contains(&id.to_string()), "names the task: {msg}");

    // try_into_panic is the non-panicking form.
    let handle = rt.spawn(std::future::pending::<()>());
    handle.abort();
    let err = rt.block_on(handle).unwrap_err();
    assert!(err.try_into_panic().unwrap_err().is_cancelled());
}
