//! `join!`, `try_join!` (re-exported from `futures-util`) and `select!` (tokio's
//! semantics, expanded by `runnel_macros::select_impl`), plus the support items the
//! expansion reaches through `$crate::__private`.
//!
//! Invariant: the expansion of `select!` depends only on `core` and `__private`, so it
//! works in any crate that can name runnel, under whatever name.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// Waits on several futures at once and runs the handler of the first that completes
/// (and matches its pattern); the others are **dropped**, i.e. cancelled. tokio's
/// `select!`, so tokio code moves over unchanged:
///
/// ```text
/// select! {
///     [biased;]
///     <pattern> = <future> [, if <condition>] => <handler>,
///     ...
///     [else => <handler>]
/// }
/// ```
///
/// ```
/// # runnel::Runtime::new().unwrap().block_on(async {
/// use std::time::Duration;
/// let (tx, rx) = futures::channel::oneshot::channel::<u32>();
/// runnel::spawn(async move { tx.send(7).unwrap() });
/// let got = runnel::select! {
///     Ok(v) = rx => v,
///     _ = runnel::time::sleep(Duration::from_secs(60)) => 0,
/// };
/// assert_eq!(got, 7);
/// # });
/// ```
///
/// # How a call runs
///
/// 1. Each `if <condition>` is evaluated, in order; a branch whose condition is false is
///    *disabled* for this call.
/// 2. Each `<future>` is evaluated, in order (disabled branches' too, but those are never
///    polled). Anything implementing `IntoFuture` works; futures need not be `Unpin` or
///    fused: `select!` pins them itself, on its own stack.
/// 3. The enabled futures are polled, starting from a random branch (so that no branch
///    starves the others), or in source order with `biased;`.
/// 4. When one completes, its output is matched against `<pattern>`. On a match, **all
///    the futures are dropped**, then `<handler>` runs with the pattern's bindings and its
///    value is the value of `select!`. On a mismatch that branch is disabled and the
///    others keep being polled.
/// 5. When every branch is disabled, the `else` handler runs; without one, `select!`
///    panics saying so.
///
/// Handlers run in the enclosing function, outside any closure: `?`, `return`, `break`
/// and `continue` in a handler act on the surrounding code, as in a `match`.
///
/// # Cancellation
///
/// Futures of branches not chosen are dropped before the handler runs. Whatever they had
/// done is lost unless they are *cancel-safe* (see the tables in [`io`](crate::io) and [`fs`](crate::fs)):
/// `TcpListener::accept`, `AsyncReadExt::read`, a channel `recv` and `sleep` are; a
/// `read_exact` or `write_all` is not. To keep a future alive across loop iterations,
/// create it once outside the loop and select on `&mut fut` (pinned with
/// `std::pin::pin!`).
///
/// # Compared with `futures::select!`
///
/// `futures::select!` needs `FusedFuture + Unpin` branches (`.fuse()` and `pin_mut!`),
/// and polls in random order without `biased`. This macro needs neither: a branch whose
/// future finished is remembered as disabled for the rest of the call. A loop that
/// selects on the same long-lived future must not select on it again after it completed
/// (gate it with `, if !done`), as in tokio.
///
/// At most 64 branches.
#[macro_export]
macro_rules! select {
    ($($tokens:tt)*) => {
        $crate::__private::select_impl! { $crate; $($tokens)* }
    };
}

thread_local! {
    /// A per-thread xorshift state; 0 means not yet seeded.
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// The branch `select!` polls first: uniform enough over `0..n`, and cheap (no lock,
/// no system call after the first use on a thread).
#[doc(hidden)]
pub fn select_start(n: u32) -> u32 {
    RNG.with(|rng| {
        let mut x = rng.get();
        if x == 0 {
            // RandomState is seeded per thread by std from the OS; never 0 after `| 1`.
            x = RandomState::new().build_hasher().finish() | 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        rng.set(x);
        ((x >> 32) % u64::from(n)) as u32
    })
}
