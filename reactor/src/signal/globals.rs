//! The process-wide half of signal handling: one self-pipe, one delivery counter per signal
//! number, and the OS handlers that bump them.
//!
//! Invariants:
//! - a handler, once installed for a signal, stays for the life of the process (as in
//!   tokio): the signal's default action (terminating, for SIGINT and SIGTERM) no longer
//!   happens, even after every `Signal` for it is dropped;
//! - the handler increments the signal's counter *before* writing the wake byte, so a
//!   reader that saw the byte (or the readiness event it caused) sees the new count;
//! - the handler does only async-signal-safe things: an atomic add and a `write(2)` on a
//!   non-blocking socket (signal-hook-registry saves and restores `errno` around it). A
//!   full pipe (`EAGAIN`) loses nothing: the count is already up, and the unread bytes
//!   keep the pipe readable;
//! - the sender and the receiver live as long as the process (a `static`), so a handler
//!   never writes to a closed socket and the pipe never reports end of file.

use std::io::{self, Write};
use std::os::raw::c_int;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock};

use crate::sync::lock;

/// Signal numbers `1..SLOTS` have a counter (Linux's real-time signals end at 64).
const SLOTS: usize = 65;

pub(crate) struct Globals {
    sender: UnixStream,
    receiver: UnixStream,
    /// Deliveries per signal number, wrapping; only compared for equality.
    counts: [AtomicUsize; SLOTS],
    /// Which signals have our handler (installs are rare; a lock keeps them to one each).
    installed: Mutex<[bool; SLOTS]>,
}

static GLOBALS: OnceLock<Globals> = OnceLock::new();

impl Globals {
    /// The process's signal state, made on first use.
    pub(crate) fn get() -> io::Result<&'static Globals> {
        if let Some(globals) = GLOBALS.get() {
            return Ok(globals);
        }
        let (sender, receiver) = UnixStream::pair()?;
        sender.set_nonblocking(true)?;
        receiver.set_nonblocking(true)?;
        // Two threads racing here both made a pair; the loser's is dropped unused.
        Ok(GLOBALS.get_or_init(|| Globals {
            sender,
            receiver,
            counts: std::array::from_fn(|_| AtomicUsize::new(0)),
            installed: Mutex::new([false; SLOTS]),
        }))
    }

    /// Installs the handler for `signal` unless it is installed already.
    pub(crate) fn install(&'static self, signal: c_int) -> io::Result<()> {
        let slot = slot_of(signal)?;
        if signal_hook_registry::FORBIDDEN.contains(&signal) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "signal {signal} cannot be listened for: SIGKILL, SIGSTOP, SIGILL, SIGFPE \
                     and SIGSEGV are refused (the first two cannot be caught, the others \
                     must not return to the faulting code)"
                ),
            ));
        }
        let mut installed = lock(&self.installed);
        if installed[slot] {
            return Ok(());
        }
        let action = move || self.on_signal(slot);
        // SAFETY: `register` requires an async-signal-safe action. `on_signal` does an
        // atomic add (lock-free: `AtomicUsize`) and one `write(2)` on a non-blocking socket
        // that lives for the whole process (module invariants); it allocates nothing, takes
        // no lock and never panics (the write's result is ignored).
        let registered = unsafe { signal_hook_registry::register(signal, action) };
        registered.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("installing a handler for signal {signal} failed: {e}"),
            )
        })?;
        installed[slot] = true;
        Ok(())
    }

    /// Installs the counting handler for `signal` (if it is not yet, so the signal keeps the
    /// life-of-the-process rule above) and adds one more action that writes one byte to
    /// `pipe` on every delivery: the wake-up of a listener on a plain thread
    /// (`listener.rs`), which reads its own pipe and so never drains the shared one. The
    /// action stays until `signal_hook_registry::unregister` is called with the returned id.
    pub(crate) fn add_pipe_action(
        &'static self,
        signal: c_int,
        pipe: Arc<UnixStream>,
    ) -> io::Result<signal_hook_registry::SigId> {
        self.install(signal)?;
        let action = move || {
            // EAGAIN (pipe full) is fine: unread bytes already wake the listener.
            let _ = (&*pipe).write(&[1]);
        };
        // SAFETY: `register` requires an async-signal-safe action. This one does one
        // `write(2)` on a non-blocking socket (`pipe` must be one, see the caller) that the
        // action keeps open itself (it owns an `Arc` to it, dropped only when the action is
        // unregistered, never inside the handler); it allocates nothing, takes no lock and
        // never panics (the write's result is ignored).
        let registered = unsafe { signal_hook_registry::register(signal, action) };
        registered.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("adding a listener for signal {signal} failed: {e}"),
            )
        })
    }

    /// Runs inside the signal handler: see the module invariants.
    fn on_signal(&self, slot: usize) {
        self.counts[slot].fetch_add(1, SeqCst);
        // EAGAIN (pipe full) is fine: unread bytes already keep the receiver readable.
        let _ = (&self.sender).write(&[1]);
    }

    /// How many times `signal` was delivered since its handler was installed (wrapping).
    pub(crate) fn count(&self, signal: c_int) -> usize {
        slot_of(signal).map_or(0, |slot| self.counts[slot].load(SeqCst))
    }

    /// A new file descriptor for the receiving end, for one more reactor registration.
    pub(crate) fn receiver(&self) -> io::Result<UnixStream> {
        self.receiver.try_clone()
    }
}

fn slot_of(signal: c_int) -> io::Result<usize> {
    match usize::try_from(signal) {
        Ok(slot) if (1..SLOTS).contains(&slot) => Ok(slot),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{signal} is not a signal number (valid: 1 to {})",
                SLOTS - 1
            ),
        )),
    }
}
