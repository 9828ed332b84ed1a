//! Multi-producer, single-consumer channels with tokio's API (`tokio::sync::mpsc`):
//! bounded [`channel`] with backpressure and [`unbounded_channel`].
//!
//! Guarantees: messages of one sender arrive in the order sent; senders waiting on a full
//! channel are served first-come first-served (a later `try_send` cannot overtake them);
//! [`Receiver::close`] stops new sends but lets buffered messages be received; dropping
//! every sender ends `recv` with `None` once the buffer is drained. Cancelling a `send`
//! never sends and loses no capacity; cancelling a `recv` loses no message.
//!
//! Layout: `chan` owns the shared state and the capacity invariants, `wait` the futures
//! that undo their registration when dropped, `bounded` and `unbounded` the handles,
//! `error` the error types.
//!
//! Deadlock detector: a waiting task's waker is held by the channel, which the runtime
//! cannot see into, so a task stuck on a channel makes the detector say "maybe" (a stall
//! report, never a false deadlock report).

mod bounded;
mod chan;
pub mod error;
mod unbounded;
mod wait;

pub use bounded::{channel, OwnedPermit, Permit, Receiver, Sender, WeakSender};
pub use unbounded::{unbounded_channel, UnboundedReceiver, UnboundedSender, WeakUnboundedSender};
