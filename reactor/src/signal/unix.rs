//! Unix signals as streams: [`signal`], [`Signal`], [`SignalKind`] (tokio's shapes).
//!
//! A `Signal` is a delivery count and the value of it this stream has reported: the
//! reactor's signal pipe (`pipe.rs`) counts the deliveries of each signal it listens for,
//! and its driver wakes every waiting `Signal` of the reactor when one arrives. `recv` looks
//! at the count, stores its waker in the reactor's signal slot, and looks again (the
//! lost-wakeup argument is in `pipe.rs`): no delivery after the stream's creation is lost,
//! and several between two `recv`s complete one (coalesced, as in tokio). The waker is
//! stored like a socket read's, through the reactor's waiter lists, so a task waiting for a
//! signal is an I/O waiter to the deadlock detector (a server waiting for SIGTERM is not
//! deadlocked).
//!
//! Each `Signal` has its own entries in the slot's list, never the slot's one anonymous
//! entry: that one is shared by every stateless poller of the slot, and two streams polled
//! through `poll_recv` would replace each other's waker. `recv`'s entry lives in its future
//! (withdrawn when the future is dropped, so the waiter count stays exact); `poll_recv`'s
//! lives in the `Signal` (until the next wake-up or the stream's drop).

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::os::raw::c_int;
use std::task::{ready, Context, Poll};

use super::pipe::ReactorSignals;
use crate::coop;
use crate::readiness::Direction;
use crate::scheduled_io::{WaiterKey, Waiting};
use crate::wait::{self, WaitReason};
use crate::waiters::WaiterCounts;
use crate::Handle;

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
/// `recv`s complete one `recv`, and a `recv` polled after a delivery arrived completes.
/// Any number of `Signal`s, in one runtime or several, may listen for the same signal,
/// and each sees each delivery.
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
    /// The signal's index in the reactor's counts.
    slot: usize,
    /// The delivery count this stream has reported up to.
    seen: usize,
    /// The reactor whose signal pipe counts the deliveries (its `signals` is made).
    handle: Handle,
    /// `poll_recv`'s entry in the signal slot's read list (module header).
    stateless: Option<WaiterKey>,
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
/// SIGFPE and SIGSEGV; the OS's error if installing the handler or making the reactor's
/// signal pipe fails; "the runnel runtime has shut down" after the runtime shut down.
///
/// # Panics
///
/// When no runtime is entered on this thread (see [`Handle::current`]).
#[track_caller]
pub fn signal(kind: SignalKind) -> io::Result<Signal> {
    let handle = Handle::current();
    // Checked first: a refused signal makes no signal pipe.
    super::globals::check(kind.0)?;
    let inner = &handle.inner;
    let reactor = inner.signals.get_or_make(&inner.sources, &inner.registry)?;
    let slot = reactor.listen(kind.0)?;
    // Counted from here: the reactor's action is in place, so a delivery after this load
    // moves the count.
    let seen = reactor.count(slot);
    Ok(Signal {
        kind,
        slot,
        seen,
        handle,
        stateless: None,
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
            slot,
            seen,
            handle,
            ..
        } = self;
        let mut entry = Entry {
            reactor: reactor_of(handle),
            counts: &handle.inner.counts,
            key: None,
        };
        poll_fn(|cx| {
            poll_delivery(
                entry.reactor,
                entry.counts,
                kind.0,
                *slot,
                seen,
                &mut entry.key,
                cx,
            )
        })
        .await
    }

    /// Polls for the next delivery (see [`recv`](Signal::recv)). Stateless for the caller:
    /// if it stops polling, its waker stays stored (counted as one I/O waiter) until the
    /// next delivery to this runtime or the `Signal`'s drop.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<()>> {
        let reactor = reactor_of(&self.handle);
        poll_delivery(
            reactor,
            &self.handle.inner.counts,
            self.kind.0,
            self.slot,
            &mut self.seen,
            &mut self.stateless,
            cx,
        )
    }
}

fn reactor_of(handle: &Handle) -> &ReactorSignals {
    handle
        .inner
        .signals
        .get()
        .expect("`signal` made the reactor's signal pipe before making the Signal")
}

/// `recv`'s entry in the signal slot's read list, withdrawn when the future is dropped.
struct Entry<'a> {
    reactor: &'a ReactorSignals,
    counts: &'a WaiterCounts,
    key: Option<WaiterKey>,
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.reactor
                .io
                .remove_waiter(Direction::Read, key, self.counts);
        }
    }
}

impl Drop for Signal {
    fn drop(&mut self) {
        if let Some(key) = self.stateless.take() {
            let reactor = reactor_of(&self.handle);
            reactor
                .io
                .remove_waiter(Direction::Read, key, &self.handle.inner.counts);
        }
    }
}

/// The loop of `pipe.rs`'s lost-wakeup argument: look at the count, store the waker in
/// `key`'s entry, look again.
fn poll_delivery(
    reactor: &ReactorSignals,
    counts: &WaiterCounts,
    signum: c_int,
    slot: usize,
    seen: &mut usize,
    key: &mut Option<WaiterKey>,
    cx: &mut Context<'_>,
) -> Poll<Option<()>> {
    ready!(coop::poll_proceed(cx));
    let mut delivered = || {
        let count = reactor.count(slot);
        let moved = count != *seen;
        *seen = count;
        moved
    };
    loop {
        if delivered() {
            return Poll::Ready(Some(()));
        }
        match reactor
            .io
            .poll_ready(Direction::Read, cx.waker(), Waiting::Keyed(key), counts)
        {
            // Readiness says nothing the count did not (`pipe.rs`): forget it and wait,
            // unless a newer event arrived meanwhile (then the clear does nothing).
            Poll::Ready(Ok(event)) => reactor.io.readiness.clear(event),
            // Shut down: no delivery can wake this stream any more.
            Poll::Ready(Err(_)) => return Poll::Ready(None),
            Poll::Pending => {
                if delivered() {
                    // Counted between the first look and the store: done, and the entry
                    // is not needed any more.
                    if let Some(key) = key.take() {
                        reactor.io.remove_waiter(Direction::Read, key, counts);
                    }
                    return Poll::Ready(Some(()));
                }
                wait::note(WaitReason::Signal { signum });
                return Poll::Pending;
            }
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;
    use std::task::{Wake, Waker};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::Driver;

    // SIGALRM only here: the handlers stay for the life of the test process. The tests
    // take turns: each would see the others' deliveries.
    const SIGNUM: c_int = libc::SIGALRM;
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn turn() -> std::sync::MutexGuard<'static, ()> {
        TURN.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Raises `SIGNUM` on this thread: its handlers have run when `raise` returns.
    fn raise() {
        // SAFETY: raise(3) with a valid signal number whose handler (ours) is installed.
        assert_eq!(unsafe { libc::raise(SIGNUM) }, 0);
    }

    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    /// A `Signal` of the reactor of `handle`, and the wake count of the waker it polls with.
    struct Listener {
        signal: Signal,
        wakes: Arc<Wakes>,
        waker: Waker,
    }

    impl Listener {
        fn new(handle: &Handle) -> Listener {
            let _enter = handle.enter();
            let wakes = Arc::new(Wakes::default());
            Listener {
                signal: signal(SignalKind::from_raw(SIGNUM)).unwrap(),
                waker: Waker::from(wakes.clone()),
                wakes,
            }
        }

        fn poll(&mut self) -> Poll<Option<()>> {
            self.signal.poll_recv(&mut Context::from_waker(&self.waker))
        }

        fn wakes(&self) -> usize {
            self.wakes.0.load(SeqCst)
        }
    }

    /// One turn of the driving loop without blocking: the raised signal's bytes are in the
    /// pipe already, so its event is there to collect.
    fn drive(driver: &mut Driver) {
        driver.park(Some(Duration::ZERO)).unwrap();
        let mut wakers = Vec::new();
        let drained = driver.drain(Instant::now(), &mut wakers);
        wakers.into_iter().for_each(Waker::wake);
        driver.handle().release(drained);
    }

    /// The lost wake-up of the first design, step by step: reactor A's driver and listener
    /// run to completion before reactor B's driver collects its event. When each listener
    /// read the one shared pipe, A's listener emptied it, and the kernel then dropped B's
    /// queued event (its bytes were gone): B was never woken.
    #[test]
    fn each_reactor_is_woken_whichever_runs_first() {
        let _turn = turn();
        let (mut driver_a, a) = Driver::new().unwrap();
        let (mut driver_b, b) = Driver::new().unwrap();
        let mut in_a = Listener::new(&a);
        let mut in_b = Listener::new(&b);
        assert!(in_a.poll().is_pending());
        assert!(in_b.poll().is_pending());
        assert_eq!((a.waiters().io, b.waiters().io), (1, 1));

        raise();
        drive(&mut driver_a);
        assert_eq!(in_a.wakes(), 1);
        assert_eq!(in_a.poll(), Poll::Ready(Some(())));
        assert!(in_a.poll().is_pending(), "one delivery, one completion");

        drive(&mut driver_b);
        assert_eq!(in_b.wakes(), 1, "B's wake-up was lost");
        assert_eq!(in_b.poll(), Poll::Ready(Some(())));
        assert!(in_b.poll().is_pending());
    }

    /// Two listeners of one reactor: one delivery wakes both, and the one that completes
    /// first takes nothing from the other; two deliveries before a poll complete one.
    #[test]
    fn one_dispatch_wakes_every_listener_of_a_reactor() {
        let _turn = turn();
        let (mut driver, handle) = Driver::new().unwrap();
        let mut first = Listener::new(&handle);
        let mut second = Listener::new(&handle);
        assert!(first.poll().is_pending());
        assert!(second.poll().is_pending());
        assert_eq!(handle.waiters().io, 2, "each has its own entry");

        raise();
        raise();
        drive(&mut driver);
        assert_eq!((first.wakes(), second.wakes()), (1, 1));
        assert_eq!(first.poll(), Poll::Ready(Some(())));
        assert!(first.poll().is_pending(), "coalesced");
        assert_eq!(second.poll(), Poll::Ready(Some(())));
        assert!(second.poll().is_pending(), "coalesced");

        // Dropping a stream withdraws its stored waker (and its count).
        drop(first);
        assert_eq!(handle.waiters().io, 1);
        drop(second);
        assert_eq!(handle.waiters().io, 0);
    }

    #[test]
    fn streams_and_recv_futures_can_move_between_threads() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        let (_driver, handle) = Driver::new().unwrap();
        let _enter = handle.enter();
        let mut stream = signal(SignalKind::from_raw(SIGNUM)).unwrap();
        send_sync(&stream);
        send_sync(&stream.recv());
    }

    /// After shutdown a waiting stream is woken and ends, and no stream can be made.
    #[test]
    fn shutdown_ends_the_streams() {
        let _turn = turn();
        let (_driver, handle) = Driver::new().unwrap();
        let mut listener = Listener::new(&handle);
        assert!(listener.poll().is_pending());
        handle.shutdown();
        assert_eq!(listener.wakes(), 1);
        assert_eq!(listener.poll(), Poll::Ready(None));
        let _enter = handle.enter();
        let err = signal(SignalKind::from_raw(SIGNUM)).unwrap_err();
        assert!(crate::is_shutdown_error(&err), "{err}");
    }
}
