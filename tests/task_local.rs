//! `task_local!`: the value is visible exactly while the scoped future is polled (across
//! awaits, yields and worker migrations), restored on every exit (panics included), nested
//! scopes shadow and restore, spawned tasks do not inherit it, and misuse gives clear
//! errors.

mod support;

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use runnel::task::{yield_now, JoinSet};
use support::{panic_message, runtime, silence_expected_panics, EXPECTED};

runnel::task_local! {
    static NUMBER: u32;
    /// A documented key of a non-Copy type.
    pub(crate) static NAME: String;
}

runnel::task_local! {
    static COUNTER: Cell<u32>
}

#[test]
fn the_value_is_set_only_inside_the_scope() {
    let rt = runtime(2);
    rt.block_on(async {
        assert!(NUMBER.try_with(|_| ()).is_err());
        let out = NUMBER
            .scope(1, async {
                assert_eq!(NUMBER.get(), 1);
                NUMBER.with(|n| *n + 1)
            })
            .await;
        assert_eq!(out, 2);
        assert!(NUMBER.try_with(|_| ()).is_err(), "restored after the scope");
    });
}

#[test]
fn nested_scopes_shadow_and_restore() {
    let rt = runtime(2);
    rt.block_on(async {
        NUMBER
            .scope(1, async {
                assert_eq!(NUMBER.get(), 1);
                NUMBER
                    .scope(2, async {
                        assert_eq!(NUMBER.get(), 2);
                        yield_now().await;
                        assert_eq!(NUMBER.get(), 2);
                    })
                    .await;
                assert_eq!(NUMBER.get(), 1);
                // Another key is independent.
                NAME.scope("inner".to_owned(), async {
                    assert_eq!(NUMBER.get(), 1);
                    assert_eq!(NAME.get(), "inner");
                })
                .await;
                assert!(NAME.try_with(|_| ()).is_err());
            })
            .await;
    });
}

#[test]
fn the_value_survives_awaits_and_migrations_between_workers() {
    let rt = runtime(2);
    let tasks: Vec<_> = (0..20u32)
        .map(|i| {
            rt.spawn(NUMBER.scope(i, async move {
                for _ in 0..50 {
                    // Each yield may resume on another worker, between other tasks'
                    // scopes of the same key.
                    yield_now().await;
                    assert_eq!(NUMBER.get(), i);
                }
                NUMBER.get()
            }))
        })
        .collect();
    rt.block_on(async {
        for (i, task) in tasks.into_iter().enumerate() {
            assert_eq!(task.await.unwrap(), i as u32);
        }
    });
}

#[test]
fn interleaved_scopes_on_one_thread_do_not_leak() {
    // Two scoped futures polled alternately by one `block_on`: each sees only its own.
    let rt = runtime(1);
    rt.block_on(async {
        let a = NUMBER.scope(10, async {
            for _ in 0..5 {
                assert_eq!(NUMBER.get(), 10);
                yield_now().await;
            }
        });
        let b = NUMBER.scope(20, async {
            for _ in 0..5 {
                assert_eq!(NUMBER.get(), 20);
                yield_now().await;
            }
        });
        futures::future::join(a, b).await;
        assert!(NUMBER.try_with(|_| ()).is_err());
    });
}

#[test]
fn spawned_tasks_do_not_inherit_the_value() {
    let rt = runtime(2);
    rt.block_on(NUMBER.scope(5, async {
        let inside = runnel::spawn(async { NUMBER.try_with(|n| *n) })
            .await
            .unwrap();
        assert!(
            inside.is_err(),
            "a spawned task must not see the spawner's value"
        );
        let mut set = JoinSet::new();
        set.spawn(NUMBER.scope(6, async { NUMBER.get() }));
        assert_eq!(set.join_next().await.unwrap().unwrap(), 6);
        assert_eq!(NUMBER.get(), 5);
    }));
}

#[test]
fn sync_scope_and_interior_mutability() {
    let out = COUNTER.sync_scope(Cell::new(0), || {
        COUNTER.with(|c| c.set(c.get() + 1));
        COUNTER.with(|c| c.set(c.get() + 1));
        NUMBER.sync_scope(3, || NUMBER.get()) + COUNTER.with(Cell::get)
    });
    assert_eq!(out, 5);
    assert!(COUNTER.try_with(|_| ()).is_err());
}

#[test]
fn the_value_is_restored_when_the_scoped_future_panics() {
    silence_expected_panics();
    let rt = runtime(1);
    rt.block_on(NUMBER.scope(1, async {
        let inner = NUMBER.scope(2, async {
            assert_eq!(NUMBER.get(), 2);
            panic!("scoped panic {EXPECTED}");
        });
        let caught = futures::FutureExt::catch_unwind(AssertUnwindSafe(inner)).await;
        assert!(caught.is_err());
        assert_eq!(NUMBER.get(), 1, "the outer value is back after the panic");
    }));
    let caught = catch_unwind(|| {
        NUMBER.sync_scope(9, || panic!("sync scoped panic {EXPECTED}"));
    });
    assert!(caught.is_err());
    assert!(
        NUMBER.try_with(|_| ()).is_err(),
        "unset again after the panic"
    );
}

#[test]
fn the_scoped_future_is_dropped_inside_its_scope() {
    struct SeesValueOnDrop(Arc<AtomicUsize>);
    impl Drop for SeesValueOnDrop {
        fn drop(&mut self) {
            self.0
                .store(NUMBER.try_with(|n| *n as usize).unwrap_or(0), SeqCst);
        }
    }
    let seen = Arc::new(AtomicUsize::new(0));
    let guard = SeesValueOnDrop(seen.clone());
    let scoped = NUMBER.scope(42, async move {
        let _guard = guard;
        std::future::pending::<()>().await;
    });
    // Never polled: dropped with its value in scope all the same.
    drop(scoped);
    assert_eq!(seen.load(SeqCst), 42);
}

#[test]
fn try_with_outside_a_scope_is_an_error() {
    let err = NUMBER.try_with(|n| *n).unwrap_err();
    assert!(err.to_string().contains("not set"), "{err}");
}

#[test]
fn with_outside_a_scope_panics_with_a_clear_message() {
    silence_expected_panics();
    let payload = catch_unwind(|| NUMBER.get()).unwrap_err();
    let msg = panic_message(&*payload);
    assert!(msg.contains("task-local value not set"), "{msg}");
    assert!(msg.contains("LocalKey::scope"), "{msg}");
}

#[test]
fn entering_a_scope_inside_with_of_the_same_key_panics_clearly() {
    silence_expected_panics();
    let payload = catch_unwind(|| {
        NUMBER.sync_scope(1, || NUMBER.with(|_| NUMBER.sync_scope(2, || ())));
    })
    .unwrap_err();
    let msg = panic_message(&*payload);
    assert!(msg.contains("inside `LocalKey::with`"), "{msg}");
    assert!(
        NUMBER.try_with(|_| ()).is_err(),
        "the outer scope was unwound"
    );
}
