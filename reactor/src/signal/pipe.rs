//! A reactor's half of signal handling: its own self-pipe, read by nobody but its driver.
//!
//! Each reactor that has had a [`Signal`](super::unix::Signal) owns one [`ReactorSignals`]
//! (made on first use, kept in the reactor's `Inner`): a socket pair, per-signal delivery
//! counts, one signal-hook-registry action per signal number listened for (it bumps the
//! count, then writes a byte to the pair's sending end: `globals.rs`), and one slot in the
//! reactor's slab whose read waiters are the `Signal`s of this reactor waiting in `recv`.
//! The receiving end is registered with mio under that slot's token.
//!
//! **Only the driver reads the pipe.** When `Driver::park` receives the pipe's event it
//! reads the pipe empty right away, and the event then goes through the ordinary dispatch,
//! which wakes *every* waiter of the slot. Why not let each `Signal` read: the pipe is a
//! wake-up shared by several listeners, and with edge-triggered epoll a reader that empties
//! it erases events the others have not collected yet (the kernel re-checks a queued
//! event's readiness when `epoll_wait` hands it out, and drops it if the bytes are gone).
//! That is how the previous design — one process-wide pipe, a `dup` of it registered by
//! every `Signal`, each stream draining it — lost deliveries: with a listener in each of
//! two runtimes one of them missed the very first delivery in every run, and two tasks in
//! one runtime missed one in about every fifth run of 2000 deliveries. Here there is one
//! reader per pipe, and a pipe per reactor, so no reader can take another's wake-up.
//!
//! The lost-wakeup argument, for a `Signal` of signal *s* that stored its waker in the
//! slot's read list (under the list's lock) and *then* found the count of *s* unchanged:
//! a later delivery bumps the count, then writes a byte; every write to a socket wakes
//! its epoll registrations, so the driver collects an event after the write, and it reads
//! the pipe and then dispatches, which takes every stored waker — ours included, or an
//! earlier dispatch took it and we were woken then. (If a drain already running read our
//! byte, the dispatch that follows that drain is the one.) A delivery counted before our
//! look at the count, we saw. So `recv` is: look at the count, store the waker, look again.
//! Readiness of the slot carries no information of its own (the counts do): a `Signal`
//! that finds it set and its count unchanged clears it (tick-checked, so a newer event is
//! not erased) and waits; clearing cannot hurt another `Signal`, whose waker, if stored,
//! the event has already taken.
//!
//! Costs: no file descriptor and no registry change per `Signal` (making one is a lock and
//! a load once the reactor listens for its signal); per reactor, two descriptors, one slab
//! slot, and one action per signal number. A delivery writes one byte per reactor
//! listening for it and wakes every waiting `Signal` of that reactor, also those for other
//! signals (they find their count unchanged and wait again): signals are rare, and a
//! server has a handful of listeners.
//!
//! Lifecycle: the actions are unregistered by `Handle::shutdown` (`close`) and, if it never
//! ran, when the reactor is dropped; after `close` no action is added again, and the slot,
//! closed by shutdown like every source, makes a waiting `recv` return `None`. The pin
//! action (`globals.rs`) stays, so the signal's default action never returns.

use std::io::{self, Read};
use std::os::raw::c_int;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock};

use mio::{Interest, Registry, Token};
use signal_hook_registry::SigId;

use super::globals::{self, CountingSink, SLOTS};
use crate::scheduled_io::ScheduledIo;
use crate::sources::Sources;
use crate::sync::lock;

/// A reactor's place for its [`ReactorSignals`], made by the first `Signal` of the
/// reactor.
#[derive(Debug, Default)]
pub(crate) struct SignalSlot {
    made: OnceLock<ReactorSignals>,
    /// Held while making: two threads racing would each take a slab slot and a socket pair.
    making: Mutex<()>,
}

impl SignalSlot {
    /// The reactor's signal state, if a `Signal` made it. One atomic load: the driver asks
    /// on every park.
    pub(crate) fn get(&self) -> Option<&ReactorSignals> {
        self.made.get()
    }

    /// The reactor's signal state, made now if needed. Fails after shutdown.
    pub(crate) fn get_or_make(
        &self,
        sources: &Sources,
        registry: &Registry,
    ) -> io::Result<&ReactorSignals> {
        if let Some(made) = self.made.get() {
            return Ok(made);
        }
        let _making = lock(&self.making);
        if let Some(made) = self.made.get() {
            return Ok(made);
        }
        let signals = ReactorSignals::new(sources, registry)?;
        Ok(self.made.get_or_init(|| signals))
    }

    /// `Handle::shutdown`, after the sources' shutdown: no more deliveries to this reactor
    /// (module header). Under `making`, so a pipe being made (its slot was inserted before
    /// the sources' shutdown) is closed too; one made after cannot be (the slot is refused).
    pub(crate) fn close(&self) {
        let _making = lock(&self.making);
        if let Some(made) = self.made.get() {
            made.close();
        }
    }
}

/// One reactor's self-pipe, counts and actions (module header).
pub(crate) struct ReactorSignals {
    /// The slab slot whose read waiters are this reactor's waiting `Signal`s. Never removed
    /// from the slab: it lives as long as the reactor, and shutdown closes it.
    pub(crate) io: Arc<ScheduledIo>,
    /// The pipe's receiving end (non-blocking), registered under `io`'s token; read only by
    /// the driver (`drain`).
    receiver: mio::net::UnixStream,
    /// The sending end and the counts, shared with the actions.
    sink: Arc<CountingSink>,
    actions: Mutex<Actions>,
}

struct Actions {
    /// This reactor's action per signal number, once added.
    ids: [Option<SigId>; SLOTS],
    /// Set by `close`: no action is added any more.
    closed: bool,
}

impl ReactorSignals {
    fn new(sources: &Sources, registry: &Registry) -> io::Result<ReactorSignals> {
        let (sender, receiver) = UnixStream::pair()?;
        // The sender is written from signal handlers, which must never block.
        sender.set_nonblocking(true)?;
        receiver.set_nonblocking(true)?;
        let mut receiver = mio::net::UnixStream::from_std(receiver);
        let io = sources.insert()?;
        if let Err(e) = registry.register(&mut receiver, io.token(), Interest::READABLE) {
            sources.remove(&io);
            return Err(e);
        }
        Ok(ReactorSignals {
            io,
            receiver,
            sink: Arc::new(CountingSink {
                sender,
                counts: std::array::from_fn(|_| AtomicUsize::new(0)),
            }),
            actions: Mutex::new(Actions {
                ids: [None; SLOTS],
                closed: false,
            }),
        })
    }

    /// Makes this reactor count (and be woken by) deliveries of `signal` from now on, if it
    /// does not yet. Returns the signal's slot for [`count`](Self::count).
    pub(crate) fn listen(&self, signal: c_int) -> io::Result<usize> {
        let slot = globals::check(signal)?;
        let mut actions = lock(&self.actions);
        if actions.closed {
            return Err(crate::shutdown_error());
        }
        if actions.ids[slot].is_none() {
            actions.ids[slot] = Some(globals::add_counting_action(signal, self.sink.clone())?);
        }
        Ok(slot)
    }

    /// Deliveries of the signal in `slot` since this reactor listened for it (wrapping).
    pub(crate) fn count(&self, slot: usize) -> usize {
        self.sink.counts[slot].load(SeqCst)
    }

    /// The token of the pipe's events.
    pub(crate) fn token(&self) -> Token {
        self.io.token()
    }

    /// Driver only: reads the pipe until `WouldBlock` (any other error also stops it: the
    /// bytes carry no information, and a byte written after this makes a new event).
    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 128];
        loop {
            match (&self.receiver).read(&mut buf) {
                Ok(n) if n > 0 => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                _ => return,
            }
        }
    }

    /// Unregisters every action (signal-hook-registry waits for handlers running one to
    /// finish) and refuses new ones. Idempotent.
    fn close(&self) {
        let mut actions = lock(&self.actions);
        actions.closed = true;
        for id in actions.ids.iter_mut().filter_map(Option::take) {
            signal_hook_registry::unregister(id);
        }
    }
}

impl Drop for ReactorSignals {
    fn drop(&mut self) {
        self.close();
    }
}

impl std::fmt::Debug for ReactorSignals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReactorSignals")
            .field("token", &self.io.token())
            .finish_non_exhaustive()
    }
}
