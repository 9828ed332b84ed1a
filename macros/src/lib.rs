//! The proc-macros behind `#[runnel::main]` and `#[runnel::test]`.
//!
//! Use them through the facade (`runnel::main`, `runnel::test`): the expansion names
//! runnel's items as `::runnel::Builder` and `::runnel::OnDeadlock` (or through the
//! `crate = "..."` argument), never this crate.
//!
//! - `args`: the attribute arguments, their defaults and their errors.
//! - `expand`: the signature checks and the generated function.
//! - `select`: the expansion behind `runnel::select!`.

mod args;
mod expand;
mod select;

use proc_macro::TokenStream;

/// Runs an `async fn` — usually `main` — to completion on a new runnel runtime.
///
/// ```ignore
/// #[runnel::main]
/// async fn main() {
///     let answer = runnel::spawn(async { 6 * 7 }).await.unwrap();
///     println!("{answer}");
/// }
/// ```
///
/// The function becomes a plain `fn` with the same name, attributes, visibility and
/// return type, whose body builds a runtime and blocks on the original body. It may
/// return anything, a `Result` included, and `?` and `return` work in the body as in
/// any function:
///
/// ```ignore
/// #[runnel::main(worker_threads = 4, on_deadlock = "report")]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let listener = runnel::net::TcpListener::bind("127.0.0.1:0").await?;
///     println!("listening on {}", listener.local_addr()?);
///     Ok(())
/// }
/// ```
///
/// The expansion of the first example is, in effect:
///
/// ```ignore
/// fn main() {
///     let body = async move { /* the body */ };
///     runnel::Builder::new()
///         .build()
///         .expect("failed to build the runnel runtime")
///         .block_on(body)
/// }
/// ```
///
/// # Arguments
///
/// | argument | value | default |
/// | --- | --- | --- |
/// | `worker_threads` | an integer literal, at least 1 | one worker per CPU |
/// | `on_deadlock` | `"panic"`, `"report"` or `"ignore"`: what the runtime does when every task is asleep and nothing can wake one (see `runnel::OnDeadlock`) | `"panic"` |
/// | `crate` | the path to the runnel crate as a string, for when it is renamed or re-exported: `crate = "my_crate::runnel"` | `"::runnel"` |
///
/// # Errors at compile time
///
/// The attribute refuses a function that is not `async`, is generic, takes `self`, or
/// is `main` with arguments; and unknown, repeated or mistyped arguments. Each error
/// points at the offending token and says what to write instead.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(args::Kind::Main, args.into(), item.into()).into()
}

/// Marks an `async fn` as a test that runs on its own runnel runtime.
///
/// ```ignore
/// #[runnel::test]
/// async fn spawned_task_runs() {
///     let handle = runnel::spawn(async { 1 + 1 });
///     assert_eq!(handle.await.unwrap(), 2);
/// }
/// ```
///
/// The function becomes a `#[test]` function. Each test gets a fresh runtime with
/// **two worker threads**, so that tests exercise work stealing and wakeups from
/// other threads, and with **`on_deadlock = "panic"`**, so that a test that would hang
/// forever fails at once with the deadlock report instead:
///
/// ```ignore
/// #[runnel::test]
/// #[should_panic(expected = "all tasks are asleep")]
/// async fn waits_forever() {
///     std::future::pending::<()>().await;
/// }
/// ```
///
/// It works with the other test attributes — `#[should_panic]`, `#[ignore]` — which
/// go after it, and with tests that return a `Result`:
///
/// ```ignore
/// #[runnel::test(worker_threads = 8)]
/// #[ignore = "slow"]
/// async fn many_workers() -> std::io::Result<()> {
///     let listener = runnel::net::TcpListener::bind("127.0.0.1:0").await?;
///     listener.local_addr()?;
///     Ok(())
/// }
/// ```
///
/// Do not also write `#[test]`: the attribute adds it.
///
/// # Arguments
///
/// The same as [`macro@main`]'s, with other defaults:
///
/// | argument | value | default |
/// | --- | --- | --- |
/// | `worker_threads` | an integer literal, at least 1 | `2` |
/// | `on_deadlock` | `"panic"`, `"report"` or `"ignore"` | `"panic"` |
/// | `crate` | the path to the runnel crate as a string | `"::runnel"` |
///
/// # Errors at compile time
///
/// As for [`macro@main`], and also: a test that takes arguments, and a function that
/// already has a test attribute.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(args::Kind::Test, args.into(), item.into()).into()
}

/// The expansion behind `runnel::select!`; use that macro, which passes its `$crate`.
#[doc(hidden)]
#[proc_macro]
pub fn select_impl(input: TokenStream) -> TokenStream {
    select::expand(input.into()).into()
}
