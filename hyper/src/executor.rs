//! `RunnelExecutor`: hyper's `Executor` spawning on the runtime of the calling task.
//!
//! It holds no `Handle` on purpose: a `Handle` stored in every hyper connection would
//! count as an outside holder and keep the deadlock detector at "maybe" forever. hyper
//! calls `execute` from inside the connection future it drives, which runs on a runnel
//! task, so "the current runtime" is always the right one there.

use std::future::Future;

/// Spawns hyper's background futures (HTTP/2 streams, client connections) with
/// `runnel::spawn` on the current runtime.
///
/// # Panics
///
/// `execute` panics like `runnel::spawn` when called outside a runnel runtime: drive the
/// hyper connection (or client) inside `Runtime::block_on` or a spawned task.
///
/// ```
/// use hyper::rt::Executor;
/// let rt = runnel_executor::Runtime::new().unwrap();
/// rt.block_on(async {
///     let (tx, rx) = std::sync::mpsc::channel();
///     runnel_hyper::RunnelExecutor.execute(async move { tx.send(42).unwrap() });
///     let answer = loop {
///         if let Ok(answer) = rx.try_recv() {
///             break answer;
///         }
///         runnel_executor::task::yield_now().await;
///     };
///     assert_eq!(answer, 42);
/// });
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct RunnelExecutor;

impl<F> hyper::rt::Executor<F> for RunnelExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    #[track_caller]
    fn execute(&self, future: F) {
        // Detached: hyper watches its background futures through its own channels.
        drop(runnel_executor::spawn(future));
    }
}
