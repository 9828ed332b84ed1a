//! [`Barrier`]: `n` tasks wait until all have arrived; one of them is the leader.
//!
//! State: arrivals in the current generation and the generation number, under a mutex;
//! a [`Notify`] wakes the waiters. Invariant: a waiter creates its `Notified` under the
//! same lock in which it sees its generation unfinished, so the leader's
//! `notify_waiters` (made after it bumps the generation) always reaches it.

use std::fmt;
use std::sync::Mutex;

use crate::notify::Notify;

/// Lets `n` tasks meet: each [`wait`](Self::wait) returns when the `n`th has called it.
/// The barrier then starts over, so it can be reused.
///
/// ```
/// use std::sync::Arc;
/// # futures::executor::block_on(async {
/// let barrier = Arc::new(runnel_sync::Barrier::new(2));
/// let other = barrier.clone();
/// let (a, b) = futures::join!(barrier.wait(), other.wait());
/// assert!(a.is_leader() != b.is_leader(), "exactly one leader");
/// # });
/// ```
pub struct Barrier {
    n: usize,
    state: Mutex<Generation>,
    notify: Notify,
}

struct Generation {
    arrived: usize,
    number: u64,
}

/// What [`Barrier::wait`] returns.
#[derive(Debug, Clone)]
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// `true` for exactly one of the `n` tasks of each round (the last to arrive).
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

impl Barrier {
    /// A barrier for `n` tasks (`0` is treated as `1`, as in tokio).
    pub fn new(n: usize) -> Barrier {
        Barrier {
            n: n.max(1),
            state: Mutex::new(Generation {
                arrived: 0,
                number: 0,
            }),
            notify: Notify::new(),
        }
    }

    /// Arrives, and waits until `n` tasks have.
    ///
    /// **Cancel safety:** not cancel-safe: the arrival is counted on the first poll and
    /// stays counted if the future is dropped (the round then completes one task early).
    pub async fn wait(&self) -> BarrierWaitResult {
        let mine = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.arrived += 1;
            if state.arrived == self.n {
                state.arrived = 0;
                state.number += 1;
                drop(state);
                self.notify.notify_waiters();
                return BarrierWaitResult(true);
            }
            state.number
        };
        loop {
            let notified = {
                let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if state.number != mine {
                    return BarrierWaitResult(false);
                }
                self.notify.notified()
            };
            notified.await;
        }
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier").field("n", &self.n).finish()
    }
}
