//! Readiness of one I/O source: which operations the OS says may make progress.
//!
//! The state of a source is one `AtomicUsize`, [`ReadinessState`]:
//!
//! ```text
//!  usize::BITS-1 .. 8   7            6             5..0
//! [ tick           ][ SHUTDOWN ][ DEREGISTERED ][ Ready bits ]
//! ```
//!
//! - **Ready bits** are set only by the driver, from mio events (`set`), and cleared only by
//!   a task whose operation returned `WouldBlock` (`clear`). mio is edge-triggered, so a bit
//!   cleared while the socket is still ready would lose the wakeup: hence clearing is tied
//!   to `WouldBlock`, never to "I consumed the event".
//! - **tick** counts the events the driver applied. A [`ReadyEvent`] remembers the tick it was
//!   read at; `clear` only clears if the tick is unchanged. Without it, a task that read
//!   readiness, then lost the race with a fresh event, would erase that newer event when its
//!   stale `WouldBlock` arrives (the same scheme as tokio's `ScheduledIo` tick). The tick
//!   wraps; a stale clear would need exactly 2^(BITS-8) events in between to be mistaken.
//! - **SHUTDOWN** / **DEREGISTERED** are terminal: once set, every poll returns an error.
//! - READ_CLOSED and WRITE_CLOSED are never cleared: a closed half stays closed.

use std::fmt;
use std::io;
use std::ops::{BitAnd, BitOr};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A set of readiness flags of an I/O source.
///
/// ```
/// use runnel_reactor::Ready;
/// let r = Ready::READABLE | Ready::READ_CLOSED;
/// assert!(r.is_readable() && r.is_read_closed() && !r.is_writable());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Ready(u8);

impl Ready {
    /// No readiness.
    pub const EMPTY: Ready = Ready(0);
    /// A read may make progress.
    pub const READABLE: Ready = Ready(1);
    /// A write may make progress.
    pub const WRITABLE: Ready = Ready(1 << 1);
    /// The peer closed its writing half (reads return end of file).
    pub const READ_CLOSED: Ready = Ready(1 << 2);
    /// The writing half is closed (writes fail).
    pub const WRITE_CLOSED: Ready = Ready(1 << 3);
    /// The socket has a pending error (`take_error` returns it).
    pub const ERROR: Ready = Ready(1 << 4);

    const ALL: u8 = 0b1_1111;
    /// The bits a `WouldBlock` may clear. Closed bits are final; an error is consumed by the
    /// failing call that reports it, so it must be clearable or a socket that had one
    /// transient error (a UDP ICMP "port unreachable") would look ready forever.
    const CLEARABLE: Ready = Ready(Self::READABLE.0 | Self::WRITABLE.0 | Self::ERROR.0);

    /// Whether no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Whether [`Ready::READABLE`] is set.
    pub fn is_readable(self) -> bool {
        self.contains(Ready::READABLE)
    }
    /// Whether [`Ready::WRITABLE`] is set.
    pub fn is_writable(self) -> bool {
        self.contains(Ready::WRITABLE)
    }
    /// Whether [`Ready::READ_CLOSED`] is set.
    pub fn is_read_closed(self) -> bool {
        self.contains(Ready::READ_CLOSED)
    }
    /// Whether [`Ready::WRITE_CLOSED`] is set.
    pub fn is_write_closed(self) -> bool {
        self.contains(Ready::WRITE_CLOSED)
    }
    /// Whether [`Ready::ERROR`] is set.
    pub fn is_error(self) -> bool {
        self.contains(Ready::ERROR)
    }
    /// Whether every flag of `other` is set in `self`.
    pub fn contains(self, other: Ready) -> bool {
        self.0 & other.0 == other.0
    }

    /// The readiness a mio event reports.
    pub(crate) fn from_mio(event: &mio::event::Event) -> Ready {
        let mut ready = Ready::EMPTY;
        if event.is_readable() {
            ready = ready | Ready::READABLE;
        }
        if event.is_writable() {
            ready = ready | Ready::WRITABLE;
        }
        if event.is_read_closed() {
            ready = ready | Ready::READ_CLOSED;
        }
        if event.is_write_closed() {
            ready = ready | Ready::WRITE_CLOSED;
        }
        if event.is_error() {
            ready = ready | Ready::ERROR;
        }
        ready
    }

    /// Every flag that concerns the directions in `interest`.
    pub(crate) fn mask_of(interest: mio::Interest) -> Ready {
        let mut mask = Ready::EMPTY;
        if interest.is_readable() {
            mask = mask | Direction::Read.mask();
        }
        if interest.is_writable() {
            mask = mask | Direction::Write.mask();
        }
        mask
    }
}

impl BitOr for Ready {
    type Output = Ready;
    fn bitor(self, rhs: Ready) -> Ready {
        Ready(self.0 | rhs.0)
    }
}

impl BitAnd for Ready {
    type Output = Ready;
    fn bitand(self, rhs: Ready) -> Ready {
        Ready(self.0 & rhs.0)
    }
}

impl fmt::Debug for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Ready::READABLE, "READABLE"),
            (Ready::WRITABLE, "WRITABLE"),
            (Ready::READ_CLOSED, "READ_CLOSED"),
            (Ready::WRITE_CLOSED, "WRITE_CLOSED"),
            (Ready::ERROR, "ERROR"),
        ];
        let mut set = f.debug_set();
        for (flag, name) in names {
            if self.contains(flag) {
                set.entry(&format_args!("{name}"));
            }
        }
        set.finish()
    }
}

/// Readiness observed by `poll_read_ready`/`poll_write_ready`, to be handed back to
/// `clear_readiness` when the operation it allowed returns `WouldBlock`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadyEvent {
    pub(crate) tick: usize,
    pub(crate) ready: Ready,
}

impl ReadyEvent {
    /// The flags that made the source ready (restricted to the polled direction).
    pub fn ready(&self) -> Ready {
        self.ready
    }
}

/// One of the two directions a source has a waiter list for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

impl Direction {
    /// The flags that make a task waiting in this direction runnable. An error wakes both
    /// directions: either operation will report it.
    pub(crate) fn mask(self) -> Ready {
        match self {
            Direction::Read => Ready::READABLE | Ready::READ_CLOSED | Ready::ERROR,
            Direction::Write => Ready::WRITABLE | Ready::WRITE_CLOSED | Ready::ERROR,
        }
    }
}

/// Why a source can no longer become ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Closed {
    /// `Handle::shutdown` ran: the runtime is gone.
    Shutdown,
    /// The registration was deregistered; no event will ever arrive again.
    Deregistered,
}

impl Closed {
    pub(crate) fn to_error(self) -> io::Error {
        match self {
            Closed::Shutdown => crate::shutdown_error(),
            Closed::Deregistered => io::Error::other(
                "the I/O source was deregistered from the runnel reactor; it cannot be polled",
            ),
        }
    }

    fn bit(self) -> usize {
        match self {
            Closed::Shutdown => SHUTDOWN,
            Closed::Deregistered => DEREGISTERED,
        }
    }
}

const READY_MASK: usize = Ready::ALL as usize;
const DEREGISTERED: usize = 1 << 6;
const SHUTDOWN: usize = 1 << 7;
const TICK_SHIFT: u32 = 8;
const TICK_MASK: usize = usize::MAX >> TICK_SHIFT;

/// What a task sees when it looks at a source for one direction.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Observed {
    /// Some flag of the direction is set: try the operation.
    Ready(ReadyEvent),
    /// Nothing to do yet: store a waker and wait for the driver.
    NotReady,
    /// The source is dead: report this error.
    Closed(Closed),
}

impl Observed {
    /// `Some` when the caller is done waiting (ready or closed).
    pub(crate) fn into_result(self) -> Option<io::Result<ReadyEvent>> {
        match self {
            Observed::Ready(event) => Some(Ok(event)),
            Observed::NotReady => None,
            Observed::Closed(closed) => Some(Err(closed.to_error())),
        }
    }
}

/// The readiness word of one source (layout in the module header).
#[derive(Debug, Default)]
pub(crate) struct ReadinessState(AtomicUsize);

impl ReadinessState {
    /// Looks at the flags in `mask`.
    pub(crate) fn observe(&self, mask: Ready) -> Observed {
        // Acquire pairs with the AcqRel updates below. Nothing in memory is published through
        // this word (the data is in the kernel), so this is for a coherent tick/flags view
        // only; the waker hand-off's correctness comes from the waiter-list mutex
        // (see scheduled_io.rs).
        let word = self.0.load(Ordering::Acquire);
        if word & SHUTDOWN != 0 {
            return Observed::Closed(Closed::Shutdown);
        }
        if word & DEREGISTERED != 0 {
            return Observed::Closed(Closed::Deregistered);
        }
        let ready = Ready((word & READY_MASK) as u8) & mask;
        if ready.is_empty() {
            Observed::NotReady
        } else {
            Observed::Ready(ReadyEvent {
                tick: word >> TICK_SHIFT,
                ready,
            })
        }
    }

    /// Driver: ORs in the flags of one event and advances the tick.
    pub(crate) fn set(&self, ready: Ready) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                let tick = ((word >> TICK_SHIFT) + 1) & TICK_MASK;
                let low = word & !(TICK_MASK << TICK_SHIFT);
                Some((tick << TICK_SHIFT) | low | ready.0 as usize)
            });
    }

    /// Task: the operation that `event` allowed returned `WouldBlock`. Clears the flags of
    /// `event` unless the driver applied a newer event since (then that event stands).
    pub(crate) fn clear(&self, event: ReadyEvent) {
        let clear = (event.ready & Ready::CLEARABLE).0 as usize;
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                (word >> TICK_SHIFT == event.tick).then_some(word & !clear)
            });
    }

    /// Marks the source dead; every later `observe` returns `Closed`.
    pub(crate) fn close(&self, why: Closed) {
        self.0.fetch_or(why.bit(), Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(state: &ReadinessState, dir: Direction) -> ReadyEvent {
        match state.observe(dir.mask()) {
            Observed::Ready(event) => event,
            other => panic!("expected ready, got {other:?}"),
        }
    }

    #[test]
    fn clear_with_current_tick_clears() {
        let state = ReadinessState::default();
        assert_eq!(state.observe(Direction::Read.mask()), Observed::NotReady);
        state.set(Ready::READABLE | Ready::WRITABLE);
        let event = ready(&state, Direction::Read);
        assert_eq!(event.ready(), Ready::READABLE);
        state.clear(event);
        assert_eq!(state.observe(Direction::Read.mask()), Observed::NotReady);
        assert!(ready(&state, Direction::Write).ready().is_writable());
    }

    #[test]
    fn stale_clear_keeps_newer_event() {
        let state = ReadinessState::default();
        state.set(Ready::READABLE);
        let stale = ready(&state, Direction::Read);
        state.set(Ready::READABLE); // a newer edge arrives before the WouldBlock
        state.clear(stale);
        assert!(ready(&state, Direction::Read).ready().is_readable());
    }

    #[test]
    fn closed_flags_survive_clear_and_close_is_terminal() {
        let state = ReadinessState::default();
        state.set(Ready::READ_CLOSED | Ready::READABLE);
        let event = ready(&state, Direction::Read);
        state.clear(event);
        assert_eq!(ready(&state, Direction::Read).ready(), Ready::READ_CLOSED);
        state.close(Closed::Shutdown);
        assert_eq!(
            state.observe(Direction::Write.mask()),
            Observed::Closed(Closed::Shutdown)
        );
    }

    #[test]
    fn debug_lists_flags() {
        assert_eq!(
            format!("{:?}", Ready::READABLE | Ready::ERROR),
            "{READABLE, ERROR}"
        );
    }
}
