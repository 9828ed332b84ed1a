//! Synchronisation primitives for async code with tokio's API shape (`tokio::sync`):
//! channels ([`mpsc`], [`oneshot`], [`watch`], [`broadcast`]). They depend on no runtime:
//! any executor may poll them, and wakers are plain [`std::task::Waker`]s.

pub mod broadcast;
pub mod mpsc;
pub mod oneshot;
pub mod watch;

mod block_on;
mod wake_list;
