//! Unix signals as streams: [`signal`], [`Signal`], [`SignalKind`] (tokio's shapes).
//!
//! A `Signal` remembers the delivery count of its signal (`globals.rs`) when it is created
//! and registers its own descriptor of the process's self-pipe with the reactor. `recv`
//! completes when the count moved; otherwise it waits for the pipe to become readable like
//! any socket read, through the reactor's waiter lists, so a task waiting for a signal is
//! an I/O waiter to the deadlock detector (a server waiting for SIGTERM is not deadlocked).
//!
//! Every `Signal` reads (drains) the one shared pipe, so the bytes are only a wake-up: the
//! counts say which signal arrived. The order that keeps deliveries from being lost: look
//! at the count, wait for readiness, drain the pipe until `WouldBlock`, clear the readiness
//! it had, look at the count again. A handler bumps the count before it writes its byte,
//! so a byte this stream drained (or another stream did) carries a count this stream reads
//! afterwards; a byte written after the drain makes a new readiness event.
//!
//! Costs, chosen for simplicity over tokio's per-runtime driver: each `Signal` holds one
//! file descriptor (a `dup` of the pipe's read end) and one reactor registration, and a
//! delivery of any signal wakes every waiting `Signal` once (those for other signals find
//! their count unchanged and wait again). Signals are rare; a server has a handful of
//! listeners.

use std::fmt;
use std::future::poll_fn;
use std::io::{self, Read};
use std::os::raw::c_int;
use std::task::{ready, Context, Poll};

use mio::Interest;

use super::globals::Globals;
use crate::{Handle, PollEvented, ReadyEvent};

/// A kind of signal to listen for: a signal number, with constructors for the common ones.
///
/// ```
/// use runnel_reactor::signal::unix::SignalKind;
/// assert_eq!(SignalKind::terminate().as_raw_value(), libc::SIGTERM);
/// assert_eq!(SignalKind::from_raw(libc::SIGUSR1), SignalKind::user_defined1());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SignalKind(c_int);

impl SignalKind {
    /// Any signal by number (e.g. a real-time signal). [`signal`] refuses numbers that are
    /// not signals and the signals that cannot be handled.
    pub const fn from_raw(signum: c_int) -> SignalKind {
        SignalKind(signum)
    }

    /// The signal number.
    pub const fn as_raw_value(&self) -> c_int {
        self.0
    }

    /// `SIGALRM`.
    pub const fn alarm() -> SignalKind {
        SignalKind(libc::SIGALRM)
    }

    /// `SIGCHLD`.
    pub const fn child() -> SignalKind {
        SignalKind(libc::SIGCHLD)
    }

    /// `SIGHUP`: the terminal went away, or (by convention) "reload your configuration".
    pub const fn hangup() -> SignalKind {
        SignalKind(libc::SIGHUP)
    }

    /// `SIGINT`: Ctrl-C in a terminal.
    pub const fn interrupt() -> SignalKind {
        SignalKind(libc::SIGINT)
    }

    /// `SIGIO`.
    pub const fn io() -> SignalKind {
        SignalKind(libc::SIGIO)
    }

    /// `SIGPIPE`.
    pub const fn pipe() -> SignalKind {
        SignalKind(libc::SIGPIPE)
    }

    /// `SIGQUIT`.
    pub const fn quit() -> SignalKind {
        SignalKind(libc::SIGQUIT)
    }

    /// `SIGTERM`: the polite request to shut down (what `kill` and service managers send).
    pub const fn terminate() -> SignalKind {
        SignalKind(libc::SIGTERM)
    }

    /// `SIGUSR1`.
    pub const fn user_defined1() -> SignalKind {
        SignalKind(libc::SIGUSR1)
    }

    /// `SIGUSR2`.
    pub const fn user_defined2() -> SignalKind {
        SignalKind(libc::SIGUSR2)
    }

    /// `SIGWINCH`: the terminal's size changed.
    pub const fn window_change() -> SignalKind {
        SignalKind(libc::SIGWINCH)
    }
}

impl From<c_int> for SignalKind {
    fn from(signum: c_int) -> SignalKind {
        SignalKind(signum)
    }
}

impl From<SignalKind> for c_int {
    fn from(kind: SignalKind) -> c_int {
        kind.0
    }
}

/// A stream of deliveries of one signal; made by [`signal`].
///
/// Sees every delivery after its creation, coalesced: several deliveries between two
/// `recv`s complete one `recv`. Any number of `Signal`s may listen for the same signal, and
/// each sees each delivery.
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// use runnel_reactor::signal::unix::{signal, SignalKind};
/// let mut hangups = signal(SignalKind::hangup())?;
/// while hangups.recv().await.is_some() {
///     println!("reloading the configuration");
/// }
/// # Ok(()) }
/// ```
pub struct Signal {
    kind: SignalKind,
    globals: &'static Globals,
    /// The delivery count this stream has reported up to.
    seen: usize,
    pipe: PollEvented<mio::net::UnixStream>,
}

/// Listens for `kind` from now on.
///
/// The first listener for a signal installs the process's handler for it, which stays
/// installed for the life of the process (as in tokio): the signal's default action (for
/// SIGINT and SIGTERM, terminating the process) no longer happens, even once every
/// `Signal` for it is dropped.
///
/// # Errors
///
/// `InvalidInput` for a number that is not a signal, and for SIGKILL, SIGSTOP, SIGILL,
/// SIGFPE and SIGSEGV; the OS's error if installing the handler fails; "the runnel runtime
/// has shut down" after the runtime shut down.
///
/// # Panics
///
/// When no runtime is entered on this thread (see [`Handle::current`]).
#[track_caller]
pub fn signal(kind: SignalKind) -> io::Result<Signal> {
    let handle = Handle::current();
    let globals = Globals::get()?;
    globals.install(kind.0)?;
    // Counted from here: a delivery after this load is this stream's.
    let seen = globals.count(kind.0);
    let receiver = mio::net::UnixStream::from_std(globals.receiver()?);
    let pipe = PollEvented::with_handle(&handle, receiver, Interest::READABLE)?;
    Ok(Signal {
        kind,
        globals,
        seen,
        pipe,
    })
}

impl Signal {
    /// Waits for the next delivery (or the first since creation); `None` once the runtime
    /// shut down.
    ///
    /// Cancel safety: cancel-safe — a delivery is consumed only when `recv` returns it, and
    /// dropping the future withdraws its waker.
    pub async fn recv(&mut self) -> Option<()> {
        let Signal {
            kind,
            globals,
            seen,
            pipe,
        } = self;
        let mut waiter = pipe.registration().read_waiter();
        poll_fn(|cx| {
            let poll_ready = |cx: &mut Context<'_>| waiter.poll_ready(cx);
            poll_delivery(globals, kind.0, seen, pipe, cx, poll_ready)
        })
        .await
    }

    /// Polls for the next delivery (see [`recv`](Signal::recv)). Stateless: if the caller
    /// stops polling, its waker stays stored until the pipe's next event.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<()>> {
        let registration = self.pipe.registration();
        poll_delivery(
            self.globals,
            self.kind.0,
            &mut self.seen,
            &self.pipe,
            cx,
            |cx| registration.poll_read_ready(cx),
        )
    }
}

/// The loop of the module header: count, readiness, drain, clear, count.
fn poll_delivery(
    globals: &Globals,
    signum: c_int,
    seen: &mut usize,
    pipe: &PollEvented<mio::net::UnixStream>,
    cx: &mut Context<'_>,
    mut poll_ready: impl FnMut(&mut Context<'_>) -> Poll<io::Result<ReadyEvent>>,
) -> Poll<Option<()>> {
    loop {
        let count = globals.count(signum);
        if count != *seen {
            *seen = count;
            return Poll::Ready(Some(()));
        }
        let Ok(event) = ready!(poll_ready(cx)) else {
            // Shut down (or deregistered): no delivery can wake this stream any more.
            return Poll::Ready(None);
        };
        drain(pipe);
        pipe.registration().clear_readiness(event);
    }
}

/// Reads the pipe until `WouldBlock`. Any other error also stops it: the bytes carry no
/// information, and the readiness is cleared either way.
fn drain(pipe: &PollEvented<mio::net::UnixStream>) {
    let mut buf = [0u8; 128];
    loop {
        match (&**pipe).read(&mut buf) {
            Ok(n) if n > 0 => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            _ => return,
        }
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signal")
            .field("kind", &self.kind)
            .field("seen", &self.seen)
            .finish_non_exhaustive()
    }
}
