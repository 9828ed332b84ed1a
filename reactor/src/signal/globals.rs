//! The process-wide half of signal handling: which signals have our OS handler, and the
//! registration of the async-signal-safe actions that run inside it (the crate's only
//! `unsafe`). The actions themselves belong to their owners: a reactor's signal pipe
//! (`pipe.rs`) and a [`SignalListener`](super::SignalListener) (`listener.rs`).
//!
//! Invariants:
//! - a signal listened for once keeps an action of ours for the life of the process (as
//!   in tokio): a do-nothing *pin* action, registered before any other of ours for that
//!   signal and never removed, so the signal's default action (terminating, for SIGINT
//!   and SIGTERM) no longer happens, even after every listener for it is gone and has
//!   unregistered its own action;
//! - every action does only async-signal-safe things: atomic adds and `write(2)` on a
//!   non-blocking socket whose descriptor the action itself keeps open (it owns an `Arc`
//!   of it, dropped only when the action is unregistered, never inside the handler;
//!   signal-hook-registry waits for running handlers before dropping an unregistered
//!   action). A full socket (`EAGAIN`) loses nothing: its unread bytes already wake the
//!   reader. signal-hook-registry saves and restores `errno` around the actions.

use std::io::{self, Write};
use std::os::raw::c_int;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use crate::sync::lock;

/// Signal numbers `1..SLOTS` can be listened for (Linux's real-time signals end at 64).
pub(crate) const SLOTS: usize = 65;

/// Which signals have their pin action (installs are rare; a lock keeps them to one each).
static PINNED: Mutex<[bool; SLOTS]> = Mutex::new([false; SLOTS]);

/// Where a reactor's action delivers (`pipe.rs`): per-signal delivery counts, bumped
/// before the wake byte is written to `sender` (non-blocking), so a reader that saw the
/// byte (or the readiness event it caused) sees the new count.
pub(crate) struct CountingSink {
    pub(crate) sender: UnixStream,
    /// Deliveries per signal number since the reactor's action for it was added, wrapping;
    /// only compared for equality.
    pub(crate) counts: [AtomicUsize; SLOTS],
}

/// Checks that `signal` can be listened for: returns its slot in count arrays, or
/// `InvalidInput` for a number that is not a signal and for the forbidden ones.
pub(crate) fn check(signal: c_int) -> io::Result<usize> {
    let slot = slot_of(signal)?;
    if signal_hook_registry::FORBIDDEN.contains(&signal) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "signal {signal} cannot be listened for: SIGKILL, SIGSTOP, SIGILL, SIGFPE \
                 and SIGSEGV are refused (the first two cannot be caught, the others must \
                 not return to the faulting code)"
            ),
        ));
    }
    Ok(slot)
}

/// [`check`]s `signal` and gives it the pin action (module invariants) unless it has it
/// already. Returns the signal's slot in count arrays.
fn pin(signal: c_int) -> io::Result<usize> {
    let slot = check(signal)?;
    let mut pinned = lock(&PINNED);
    if pinned[slot] {
        return Ok(slot);
    }
    // SAFETY: `register` requires an async-signal-safe action; this one does nothing.
    let registered = unsafe { signal_hook_registry::register(signal, || {}) };
    registered.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("installing a handler for signal {signal} failed: {e}"),
        )
    })?;
    pinned[slot] = true;
    Ok(slot)
}

/// Pins `signal` and adds an action that, on every delivery, bumps `sink.counts[slot]`
/// and then writes one byte to `sink.sender` (a reactor's signal pipe, `pipe.rs`). The
/// action stays until `signal_hook_registry::unregister` is called with the returned id.
pub(crate) fn add_counting_action(
    signal: c_int,
    sink: Arc<CountingSink>,
) -> io::Result<signal_hook_registry::SigId> {
    let slot = pin(signal)?;
    let action = move || {
        sink.counts[slot].fetch_add(1, SeqCst);
        // EAGAIN (pipe full) is fine: the count is up, and the unread bytes keep the
        // reader's readiness.
        let _ = (&sink.sender).write(&[1]);
    };
    // SAFETY: `register` requires an async-signal-safe action. This one does an atomic
    // add (lock-free: `AtomicUsize`) and one `write(2)` on a socket that the caller made
    // non-blocking (`pipe.rs`) and that the action keeps open itself (module invariants);
    // it allocates nothing, takes no lock and never panics (`slot < SLOTS` by `pin`, the
    // write's result is ignored).
    let registered = unsafe { signal_hook_registry::register(signal, action) };
    registered.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("listening for signal {signal} failed: {e}"),
        )
    })
}

/// Pins `signal` and adds an action that writes one byte to `pipe` on every delivery:
/// the wake-up of a listener on a plain thread (`listener.rs`). `pipe` must be
/// non-blocking. The action stays until `signal_hook_registry::unregister` is called with
/// the returned id.
pub(crate) fn add_pipe_action(
    signal: c_int,
    pipe: Arc<UnixStream>,
) -> io::Result<signal_hook_registry::SigId> {
    pin(signal)?;
    let action = move || {
        // EAGAIN (pipe full) is fine: unread bytes already wake the listener.
        let _ = (&*pipe).write(&[1]);
    };
    // SAFETY: `register` requires an async-signal-safe action. This one does one
    // `write(2)` on a non-blocking socket (`pipe` must be one, see the caller) that the
    // action keeps open itself (module invariants); it allocates nothing, takes no lock
    // and never panics (the write's result is ignored).
    let registered = unsafe { signal_hook_registry::register(signal, action) };
    registered.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("adding a listener for signal {signal} failed: {e}"),
        )
    })
}

/// The index of `signal` in count arrays, or `InvalidInput` for a number that is not a
/// signal.
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
