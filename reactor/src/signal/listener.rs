//! [`SignalListener`]: waits for a signal on a plain thread, outside any runtime.
//!
//! Why not a [`Signal`](super::unix::Signal) polled by a task: a task waiting for a signal is
//! an I/O waiter, and the deadlock detector never reports a runtime with one (it is waiting
//! for the outside world). A runtime feature that listens for signals all the time — the
//! task dump of `Builder::dump_on_signal` — would therefore hide every deadlock. This
//! listener is invisible to the runtime: no task, no reactor registration, no waker.
//!
//! Each listener owns a socket pair: the signal action (registered in `globals.rs`, like
//! the reactors' actions the `Signal` streams use) writes a byte to its non-blocking
//! sending end, and [`wait`](SignalListener::wait) blocks in `read(2)` on the blocking
//! receiving end. It reads only its own pipe, so it takes no wake-up away from any other
//! listener or reactor.
//!
//! Invariants: `closed` is set before the closing byte is written, and checked after every
//! read, so a `wait` that returns `Some` saw at least one delivery that arrived before
//! `close`; after `close` returns, the action is unregistered (signal-hook-registry waits for
//! handlers running it to finish), so no byte is written for this listener any more.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::sync::{Arc, Mutex};

use super::globals;
use super::unix::SignalKind;
use crate::sync::lock;

/// Waits for deliveries of one signal on the calling thread, outside any runtime: the
/// listener of `Builder::dump_on_signal`. Invisible to the deadlock detector (it is no
/// task and holds no waker), unlike a [`Signal`](super::unix::Signal) awaited by a task.
///
/// Like [`signal`](super::unix::signal), creating one installs the process's handler for
/// the signal for the life of the process (its default action, such as SIGQUIT's core
/// dump, no longer happens), and every other listener and `Signal` for it still sees each
/// delivery.
///
/// ```no_run
/// use runnel_reactor::signal::unix::SignalKind;
/// use runnel_reactor::signal::SignalListener;
///
/// let listener = std::sync::Arc::new(SignalListener::new(SignalKind::user_defined1())?);
/// let thread = std::thread::spawn({
///     let listener = listener.clone();
///     move || {
///         while listener.wait().is_some() {
///             eprintln!("SIGUSR1");
///         }
///     }
/// });
/// // ... later:
/// listener.close();
/// thread.join().unwrap();
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct SignalListener {
    kind: SignalKind,
    /// The action's end (non-blocking, shared with the action) and ours (blocking).
    sender: Arc<UnixStream>,
    receiver: UnixStream,
    closed: AtomicBool,
    /// The action's id until `close` unregisters it.
    action: Mutex<Option<signal_hook_registry::SigId>>,
}

impl SignalListener {
    /// Listens for `kind` from now on.
    ///
    /// # Errors
    ///
    /// As [`signal`](super::unix::signal): `InvalidInput` for a number that is not a
    /// signal and for SIGKILL, SIGSTOP, SIGILL, SIGFPE and SIGSEGV; the OS's error if the
    /// handler or the socket pair cannot be made. Needs no runtime.
    pub fn new(kind: SignalKind) -> io::Result<SignalListener> {
        let (sender, receiver) = UnixStream::pair()?;
        // The action runs in a signal handler: it must never block.
        sender.set_nonblocking(true)?;
        let sender = Arc::new(sender);
        let id = globals::add_pipe_action(kind.as_raw_value(), sender.clone())?;
        Ok(SignalListener {
            kind,
            sender,
            receiver,
            closed: AtomicBool::new(false),
            action: Mutex::new(Some(id)),
        })
    }

    /// The signal listened for.
    pub fn kind(&self) -> SignalKind {
        self.kind
    }

    /// Blocks until the next delivery (deliveries since the last `wait` are coalesced into
    /// one), or returns `None` once [`close`](Self::close) was called.
    pub fn wait(&self) -> Option<()> {
        let mut buf = [0u8; 64];
        loop {
            if self.closed.load(Acquire) {
                return None;
            }
            match (&self.receiver).read(&mut buf) {
                // After the read (module invariant): the closing byte is never a delivery.
                Ok(n) if n > 0 => return (!self.closed.load(Acquire)).then_some(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // End of file cannot happen (we hold the sender); any other error would
                // repeat forever, so stop listening.
                _ => return None,
            }
        }
    }

    /// Stops listening: removes the signal action and makes every `wait`, current or
    /// future, return `None`. Idempotent. The process's handler stays installed.
    pub fn close(&self) {
        self.closed.store(true, Release);
        // EAGAIN (pipe full) is fine: unread bytes already wake `wait`, which then sees
        // `closed`.
        let _ = (&*self.sender).write(&[0]);
        if let Some(id) = lock(&self.action).take() {
            signal_hook_registry::unregister(id);
        }
    }
}

impl Drop for SignalListener {
    fn drop(&mut self) {
        self.close();
    }
}

impl std::fmt::Debug for SignalListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalListener")
            .field("kind", &self.kind)
            .field("closed", &self.closed.load(Relaxed))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Raises `signum` on this thread: its handlers have run when `raise` returns.
    fn raise(signum: i32) {
        // SAFETY: raise(3) with a valid signal number whose handler (ours) is installed.
        assert_eq!(unsafe { libc::raise(signum) }, 0);
    }

    // SIGUSR2 and SIGWINCH only here: the handlers stay for the life of the test process.
    #[test]
    fn a_delivery_wakes_wait_and_close_ends_it() {
        let listener = Arc::new(SignalListener::new(SignalKind::user_defined2()).unwrap());
        raise(libc::SIGUSR2);
        raise(libc::SIGUSR2);
        assert_eq!(listener.wait(), Some(()), "coalesced into one wait");
        let waiter = std::thread::spawn({
            let listener = listener.clone();
            move || listener.wait()
        });
        listener.close();
        assert_eq!(waiter.join().unwrap(), None);
        assert_eq!(listener.wait(), None, "closed for good");
        // No action left: a delivery after close writes nothing anywhere.
        raise(libc::SIGUSR2);
    }

    #[test]
    fn two_listeners_each_see_a_delivery() {
        let a = SignalListener::new(SignalKind::window_change()).unwrap();
        let b = SignalListener::new(SignalKind::window_change()).unwrap();
        raise(libc::SIGWINCH);
        assert_eq!(a.wait(), Some(()));
        assert_eq!(b.wait(), Some(()));
    }

    #[test]
    fn forbidden_signals_are_refused() {
        let err = SignalListener::new(SignalKind::from_raw(libc::SIGKILL)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let err = SignalListener::new(SignalKind::from_raw(0)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
