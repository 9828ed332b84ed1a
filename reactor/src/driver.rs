//! `Driver`: the side of the reactor that waits for events. Owns the `mio::Poll`.
//!
//! Not tied to one thread: the executor keeps the `Driver` behind a lock and whoever holds
//! it drives (ARCHITECTURE.md, "Who polls the reactor"): an idle worker sleeps in `park`, a
//! busy worker parks with a zero timeout every 61st tick, and the poller (sysmon) thread
//! parks only when no worker has for 1 ms. `&mut self` keeps it to one thread at a time.
//!
//! The driving loop, and why it is split in three calls:
//!
//! ```text
//! driver.park(timeout)?;               // block; events are only *stored*
//! /* be counted running: a worker un-idles itself, the poller takes its token */
//! let drained = driver.drain(now, &mut wakers); // wakers leave the reactor only here
//! /* wake them, make sure a worker runs them (then the poller gives its token back) */
//! handle.release(drained);             // only now do the waiter counts drop
//! ```
//!
//! `park` must not move wakers out because the driving thread has to be counted running
//! *before* work leaves a place the deadlock detector can see (ARCHITECTURE.md, "Idle
//! accounting", invariant 3: count first, publish second); `drain` does not drop the counts
//! because they must stay up until the woken tasks are enqueued (invariant 4, Go issue
//! 61454): a detector that saw neither the waiter nor the queued task would report a
//! deadlock that is not one.
//!
//! Invariant: every event `park` received for a registration sits in `pending` until the
//! next `drain`; nothing else consumes it. The one thing `park` does besides storing: on
//! the event of the reactor's signal pipe it reads the pipe empty (the pipe's only reader,
//! see `signal/pipe.rs`).

use std::io;
use std::task::Waker;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};

use crate::handle::Handle;
use crate::readiness::Ready;
use crate::token::WAKER_TOKEN;
use crate::waiters::Drained;

/// Events fetched per `epoll_wait`: more only means fewer syscalls under heavy load; events
/// beyond it stay in the kernel for the next park. Same order as mio's examples and tokio.
const EVENTS_PER_POLL: usize = 1024;

/// The driving side of the reactor: blocks for I/O and timers and hands out the wakers to
/// run. One thread at a time uses it (`&mut self`); which thread is the executor's choice
/// (module header).
///
/// ```
/// use std::time::{Duration, Instant};
/// let (mut driver, handle) = runnel_reactor::Driver::new()?;
/// handle.unpark();
/// driver.park(Some(Duration::from_secs(5)))?; // returns at once: unparked
/// let mut wakers = Vec::new();
/// let drained = driver.drain(Instant::now(), &mut wakers);
/// wakers.drain(..).for_each(|w| w.wake());
/// handle.release(drained);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Driver {
    poll: Poll,
    events: Events,
    /// Registration events received by `park`, applied by the next `drain`.
    pending: Vec<(Token, Ready)>,
    handle: Handle,
}

impl Driver {
    /// Creates a reactor: its driver (for whichever thread drives it) and a handle (for
    /// everyone).
    pub fn new() -> io::Result<(Driver, Handle)> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = mio::Waker::new(poll.registry(), WAKER_TOKEN)?;
        let handle = Handle::new(registry, waker);
        let driver = Driver {
            poll,
            events: Events::with_capacity(EVENTS_PER_POLL),
            pending: Vec::new(),
            handle: handle.clone(),
        };
        Ok((driver, handle))
    }

    /// A handle of this driver's reactor.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Blocks in mio's poll until an I/O event, [`Handle::unpark`], or `timeout` (`None`:
    /// no limit), whichever is first — and never past the next timer deadline. The events
    /// are stored for [`drain`](Driver::drain); no waker leaves the reactor here.
    ///
    /// If events of an earlier park were not drained yet, it does not block (it still
    /// collects new events).
    pub fn park(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        // A poll that will not block needs no timer deadline and no sleeping mark (nobody
        // has to unpark it): skipping `prepare_park` spares a busy worker's every-61st-tick
        // poll a lock of every timer shard and a clock read.
        let blocking = self.pending.is_empty() && timeout != Some(Duration::ZERO);
        let timeout = if blocking {
            self.handle
                .inner
                .timers
                .prepare_park(Instant::now(), timeout)
        } else {
            Some(Duration::ZERO)
        };
        let result = self.poll.poll(&mut self.events, timeout);
        if blocking {
            self.handle.inner.timers.unparked();
        }
        match result {
            Ok(()) => {}
            // A signal is just an early return; the caller loops anyway.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        #[cfg(unix)]
        let signals = self.handle.inner.signals.get();
        for event in self.events.iter() {
            let token = event.token();
            if token == WAKER_TOKEN {
                continue;
            }
            // The signal pipe is read here and nowhere else (`signal/pipe.rs`); its event
            // then wakes the waiting `Signal`s through the ordinary dispatch.
            #[cfg(unix)]
            if let Some(signals) = signals.filter(|s| s.token() == token) {
                signals.drain();
            }
            self.pending.push((token, Ready::from_mio(event)));
        }
        Ok(())
    }

    /// Whether a [`drain`](Driver::drain) now would take out a waker. Conservative: it may
    /// say `true` when the stored events turn out to be stale or for sources nobody waits on,
    /// or when a far timer only needs cascading; never `false` when a drain at the same `now`
    /// would take a waker out.
    pub fn has_pending(&self, now: Instant) -> bool {
        !self.pending.is_empty() || self.handle.inner.timers.has_expired(now)
    }

    /// Applies the stored events to their sources' readiness and fires the timers due at
    /// `now`, pushing every waker taken out into `wakers`.
    ///
    /// The waiter counts are **not** decreased: wake the wakers, make sure their tasks are
    /// enqueued, then pass the returned [`Drained`] to [`Handle::release`].
    pub fn drain(&mut self, now: Instant, wakers: &mut Vec<Waker>) -> Drained {
        self.drain_at_most(now, usize::MAX, wakers)
    }

    /// [`drain`](Driver::drain), but fires at most `max_timers` timers (every stored I/O
    /// event is still applied); the other due timers stay armed, and
    /// [`has_pending`](Driver::has_pending) stays true for them. For a thread that queues
    /// what it wakes in a bounded queue of its own: a burst of due timers beyond its room
    /// would spill to a shared queue behind unrelated work (BENCHMARKS.md, "Timers and
    /// start-up").
    pub fn drain_at_most(
        &mut self,
        now: Instant,
        max_timers: usize,
        wakers: &mut Vec<Waker>,
    ) -> Drained {
        crate::wait::clock::tick(now);
        let inner = &self.handle.inner;
        let io = inner.sources.dispatch(&self.pending, wakers);
        self.pending.clear();
        let timers = inner.timers.fire(now, max_timers, wakers);
        Drained { io, timers }
    }

    /// When the earliest armed timer may be due, if any timer is armed. A lower bound:
    /// for far deadlines it is the start of the wheel slot holding them (the driving thread
    /// wakes to cascade them into finer slots), so sleeping until it is never late.
    pub fn next_timer_deadline(&self) -> Option<Instant> {
        self.handle.inner.timers.next_deadline()
    }
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("pending_events", &self.pending.len())
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}
