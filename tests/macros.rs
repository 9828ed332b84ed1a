//! `#[runnel::main]` and `#[runnel::test]` at run time: what they expand to builds a
//! runtime with the arguments given, runs the body on it, and hands back its output,
//! its panic or its deadlock report. (What they refuse to compile is in
//! `macros_ui.rs`.)

use std::error::Error;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, PartialEq)]
struct Refused;

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("refused")
    }
}

impl Error for Refused {}

/// A `main`-like function returning `Result`: `?` converts into the declared error
/// type, and an early `return` with a value that must be coerced
/// (`Box<Refused>` to `Box<dyn Error>`) type-checks as in a plain `fn`.
#[runnel::main]
async fn app(input: &'static str) -> Result<u32, Box<dyn Error>> {
    let n: u32 = input.parse()?;
    if n == 0 {
        return Err(Box::new(Refused));
    }
    let doubled = runnel::spawn(async move { n * 2 }).await?;
    Ok(doubled)
}

#[test]
fn main_returning_result_gives_ok() {
    assert_eq!(app("21").unwrap(), 42);
}

#[test]
fn main_returning_result_gives_the_error_of_question_mark() {
    let e = app("forty-two").unwrap_err();
    assert!(e.downcast_ref::<std::num::ParseIntError>().is_some(), "{e}");
}

#[test]
fn main_returning_result_gives_the_early_return() {
    let e = app("0").unwrap_err();
    assert_eq!(e.downcast_ref::<Refused>(), Some(&Refused));
}

/// `main` with every argument, on a function that is not `main` (so it can be called).
#[runnel::main(worker_threads = 3, on_deadlock = "report", crate = "::runnel")]
async fn configured() -> usize {
    runnel::spawn(async { 7 }).await.unwrap()
}

#[test]
fn main_with_all_arguments_runs() {
    assert_eq!(configured(), 7);
}

/// Blocks each of `n` spawned tasks until all `n` run at the same time, and returns
/// whether they met within a deadline. They can only meet if the runtime has at
/// least `n` threads running tasks in parallel. Blocking a worker is what real code
/// must not do; here it is the measurement.
async fn meet_in_parallel(n: usize) -> bool {
    static ARRIVED: [AtomicUsize; 8] = [const { AtomicUsize::new(0) }; 8];
    let arrived = &ARRIVED[n];
    let handles: Vec<_> = (0..n)
        .map(|_| {
            runnel::spawn(async move {
                arrived.fetch_add(1, Ordering::SeqCst);
                let deadline = Instant::now() + Duration::from_secs(10);
                while arrived.load(Ordering::SeqCst) < n && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
                arrived.load(Ordering::SeqCst) >= n
            })
        })
        .collect();
    let mut all_met = true;
    for handle in handles {
        all_met &= handle.await.unwrap();
    }
    all_met
}

#[runnel::test]
async fn test_runs_on_at_least_two_workers_by_default() {
    assert!(meet_in_parallel(2).await, "two tasks never ran at once");
}

#[runnel::test(worker_threads = 4)]
async fn test_with_worker_threads_runs_that_many_in_parallel() {
    assert!(meet_in_parallel(4).await, "four tasks never ran at once");
}

#[runnel::test]
async fn test_returning_result_ok() -> Result<(), Box<dyn Error>> {
    let n: u32 = "5".parse()?;
    if n == 5 {
        return Ok(());
    }
    Err(Box::new(Refused))
}

#[runnel::test]
#[should_panic(expected = "boom from the body")]
async fn test_panic_in_the_body_fails_the_test() {
    runnel::task::yield_now().await;
    panic!("boom from the body");
}

#[runnel::test]
#[ignore = "checks only that #[ignore] is accepted after #[runnel::test]"]
async fn test_ignored_is_accepted() {}

/// A test that would hang forever fails at once with the deadlock report, because
/// `#[runnel::test]` defaults to `on_deadlock = "panic"`.
#[runnel::test]
#[should_panic(expected = "all tasks are asleep")]
async fn test_that_would_hang_fails_with_the_deadlock_report() {
    std::future::pending::<()>().await;
}

/// The `crate` argument, for code that reaches runnel through a re-export.
mod reexported {
    pub mod rt {
        pub use ::runnel::*;
    }

    #[runnel::test(crate = "crate::reexported::rt", worker_threads = 1)]
    async fn through_a_reexport() {
        assert_eq!(runnel::spawn(async { 3 }).await.unwrap(), 3);
    }
}

/// The expansion must not be captured by the user's names, nor capture theirs.
#[allow(dead_code, unused_macros, non_camel_case_types, non_snake_case)]
mod hygiene {
    mod std {}
    mod core {}
    mod runnel {}
    struct Builder;
    struct Runtime;
    struct OnDeadlock;
    struct Pin;
    struct Future;
    type Result<T> = ::core::result::Result<T, ()>;
    fn Ok() {}
    macro_rules! unreachable {
        () => {
            compile_error!("the expansion used the user's `unreachable!`")
        };
    }
    macro_rules! pin {
        ($e:expr) => {
            compile_error!("the expansion used the user's `pin!`")
        };
    }

    #[::runnel::test]
    async fn shadowed_names() -> ::core::result::Result<(), ::std::num::ParseIntError> {
        // The expansion's own locals are invisible here: these are the user's.
        let body = 1;
        let runtime = 2;
        let output: u8 = "3".parse()?;
        ::core::assert_eq!(body + runtime + output, 6);
        ::core::result::Result::Ok(())
    }
}

#[runnel::test(flavor = "current_thread")]
async fn test_with_flavor_current_thread_runs_tasks_on_its_thread() {
    let me = std::thread::current().id();
    let ran_on = runnel::spawn(async { std::thread::current().id() })
        .await
        .unwrap();
    assert_eq!(ran_on, me);
}

#[runnel::test(flavor = "current_thread")]
#[should_panic(expected = "all tasks are asleep - deadlock!")]
async fn current_thread_test_that_would_hang_fails_with_the_deadlock_report() {
    runnel::spawn(std::future::pending::<()>()).await.unwrap();
}
