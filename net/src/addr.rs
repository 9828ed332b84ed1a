//! Address resolution without blocking a worker: [`ToSocketAddrs`] and [`lookup_host`].
//!
//! An address is either known at once (a `SocketAddr`, an IP literal, a slice of addresses)
//! or needs a name lookup (`getaddrinfo`, which may block for seconds). The first kind is
//! parsed inline on the polling thread; the second is moved, as an owned string, to a thread
//! that may block: the current runtime's blocking pool, or, when no runnel runtime is
//! current (the reactor driven on its own, as in net's tests), a short-lived thread of its
//! own. The polling thread never calls `getaddrinfo`.
//!
//! The trait is sealed, like tokio's `tokio::net::ToSocketAddrs`, and has the same
//! implementations, so code written against tokio's bounds compiles unchanged. It cannot be
//! `std::net::ToSocketAddrs`: resolving off the polling thread needs an owned (`'static`)
//! copy of the host, which std's trait cannot give.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use self::sealed::{Addrs, Lookup, Resolve, ToSocketAddrsPriv};

/// Something that resolves to one or more socket addresses: the address argument of
/// [`TcpStream::connect`](crate::TcpStream::connect), [`TcpListener::bind`](crate::TcpListener::bind),
/// [`UdpSocket::bind`](crate::UdpSocket::bind), [`UdpSocket::send_to`](crate::UdpSocket::send_to)
/// and [`lookup_host`].
///
/// Implemented for the same types as tokio's `ToSocketAddrs`: `SocketAddr`, `SocketAddrV4`,
/// `SocketAddrV6`, `(IpAddr, u16)`, `(Ipv4Addr, u16)`, `(Ipv6Addr, u16)`, `&[SocketAddr]`,
/// `str` and `String` (`"host:port"`), `(&str, u16)` and `(String, u16)`, and `&T` for any
/// of them. It is sealed: the set of implementations is fixed.
///
/// IP addresses and IP literals (`"127.0.0.1:80"`, `"[::1]:80"`, `("10.0.0.1", 80)`) are
/// used as they are, without any lookup or thread hop. Host names are resolved on the
/// blocking pool; see [`lookup_host`].
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// use std::net::{Ipv4Addr, SocketAddr};
/// use runnel_net::TcpStream;
/// TcpStream::connect("127.0.0.1:8080").await?; // a literal: parsed inline
/// TcpStream::connect((Ipv4Addr::LOCALHOST, 8080)).await?;
/// TcpStream::connect(("localhost", 8080)).await?; // a name: resolved on the blocking pool
/// let addrs: [SocketAddr; 2] = ["127.0.0.1:8080".parse().unwrap(), "[::1]:8080".parse().unwrap()];
/// TcpStream::connect(&addrs[..]).await?; // each in turn
/// # Ok(()) }
/// ```
pub trait ToSocketAddrs: ToSocketAddrsPriv {}

/// Resolves `host` to socket addresses (tokio's `lookup_host`).
///
/// `host` is anything [`ToSocketAddrs`]: `"example.com:443"`, `("example.com", 443)`, an IP
/// literal, a `SocketAddr`... IP addresses and literals are returned as they are, at once.
/// A host name is resolved with `std::net::ToSocketAddrs` (the system resolver,
/// `getaddrinfo`), which may block for as long as DNS takes, so it runs **on the runtime's
/// blocking pool** (as a [`spawn_blocking`](runnel_executor::spawn_blocking) job) and the
/// worker is free to run other tasks meanwhile. Outside a runnel runtime (only the reactor
/// entered) it runs on a short-lived thread of its own. Either way the calling thread never
/// blocks on DNS.
///
/// The addresses come in the resolver's order; the iterator may be empty.
///
/// Cancel safety: cancel-safe. Dropping the future abandons the result; a lookup already
/// running finishes on its thread and is discarded.
///
/// ```
/// # runnel_executor::Runtime::new().unwrap().block_on(async {
/// let addrs: Vec<_> = runnel_net::lookup_host("localhost:8080").await?.collect();
/// assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 8080));
///
/// // An IP literal: no lookup, no thread hop.
/// let mut literal = runnel_net::lookup_host(("127.0.0.1", 53)).await?;
/// assert_eq!(literal.next(), Some("127.0.0.1:53".parse().unwrap()));
/// # std::io::Result::Ok(()) }).unwrap();
/// ```
pub async fn lookup_host<T>(host: T) -> io::Result<impl Iterator<Item = SocketAddr>>
where
    T: ToSocketAddrs,
{
    addrs(host.resolve()).await
}

/// The addresses `resolve` stands for, looking a host name up off this thread.
///
/// Takes the `Resolve` rather than the address so that its future does not borrow or
/// capture the caller's address type: `resolve` already parsed a literal, or copied the
/// host name into an owned `Lookup` that can move to the thread that blocks on it.
pub(crate) async fn addrs(resolve: Resolve) -> io::Result<Addrs> {
    match resolve {
        Resolve::Ready(addrs) => addrs,
        Resolve::Lookup(lookup) => off_thread(lookup).await.map(Addrs::many),
    }
}

/// Every address `addr` resolves to; an error if there is none.
pub(crate) async fn resolve(addr: impl ToSocketAddrs) -> io::Result<Addrs> {
    let addrs = addrs(addr.resolve()).await?;
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any address",
        ));
    }
    Ok(addrs)
}

/// Calls `f` on each address until one succeeds; otherwise returns the last error.
pub(crate) async fn try_each<T>(
    addr: impl ToSocketAddrs,
    mut f: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for addr in resolve(addr).await? {
        match f(addr) {
            Ok(value) => return Ok(value),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("resolve returns at least one address"))
}

/// Runs `lookup` on a thread that may block: the current runtime's blocking pool, else a
/// thread of its own.
async fn off_thread(lookup: Lookup) -> io::Result<Vec<SocketAddr>> {
    match runnel_executor::Handle::try_current() {
        // The pool counts the job as blocking work, so the deadlock detector knows a wake
        // is still coming while the lookup runs.
        Ok(handle) => handle.spawn_blocking(move || lookup.run()).await?,
        Err(_) => OwnThread::start(lookup)?.await,
    }
}

/// A lookup on a dedicated thread, for when no runnel runtime (so no blocking pool) is
/// current. The thread stores the result and wakes the last waker it finds.
struct OwnThread {
    slot: Arc<Mutex<Slot>>,
}

#[derive(Default)]
struct Slot {
    result: Option<io::Result<Vec<SocketAddr>>>,
    waker: Option<Waker>,
}

fn lock(slot: &Mutex<Slot>) -> std::sync::MutexGuard<'_, Slot> {
    // Nothing panics while holding the lock, but a poisoned slot still holds valid data.
    slot.lock().unwrap_or_else(|e| e.into_inner())
}

impl OwnThread {
    fn start(lookup: Lookup) -> io::Result<OwnThread> {
        let slot = Arc::new(Mutex::new(Slot::default()));
        let theirs = slot.clone();
        std::thread::Builder::new()
            .name("runnel-dns".to_owned())
            .spawn(move || {
                // A panic must still end in a result, or the future would wait forever.
                let result = std::panic::catch_unwind(AssertUnwindSafe(|| lookup.run()))
                    .unwrap_or_else(|_| Err(io::Error::other("host name lookup panicked")));
                let waker = {
                    let mut slot = lock(&theirs);
                    slot.result = Some(result);
                    slot.waker.take()
                };
                // Woken outside the lock: the waker may poll (and lock) right away.
                if let Some(waker) = waker {
                    waker.wake();
                }
            })?;
        Ok(OwnThread { slot })
    }
}

impl Future for OwnThread {
    type Output = io::Result<Vec<SocketAddr>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = lock(&self.slot);
        if let Some(result) = slot.result.take() {
            return Poll::Ready(result);
        }
        // Result and waker are both read and written under the lock, so the thread either
        // finds this waker or stored its result before we looked: no lost wake.
        match &mut slot.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            waker => *waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

pub(crate) mod sealed {
    //! The trait behind [`ToSocketAddrs`](super::ToSocketAddrs): public (its bound appears
    //! on public functions) but unreachable from outside the crate, so it stays sealed.

    use std::io;
    use std::net::{SocketAddr, ToSocketAddrs as _};

    /// How a [`ToSocketAddrs`](super::ToSocketAddrs) value resolves.
    pub trait ToSocketAddrsPriv {
        /// Parses what can be parsed without a lookup; otherwise takes an owned copy of
        /// the host for a lookup elsewhere.
        fn resolve(&self) -> Resolve;
    }

    /// Known addresses, or a lookup still to run.
    pub enum Resolve {
        Ready(io::Result<Addrs>),
        Lookup(Lookup),
    }

    /// A host name to resolve, owned so it can move to another thread.
    pub enum Lookup {
        /// `"host:port"`.
        HostPort(String),
        /// `(host, port)`.
        Host(String, u16),
    }

    impl Lookup {
        /// Resolves with the system resolver. Blocks: call it only where that is allowed.
        pub(crate) fn run(self) -> io::Result<Vec<SocketAddr>> {
            #[cfg(test)]
            if let Some(result) = super::test_hook::intercept(&self) {
                return result;
            }
            match self {
                Lookup::HostPort(s) => s.as_str().to_socket_addrs().map(Iterator::collect),
                Lookup::Host(host, port) => (host.as_str(), port)
                    .to_socket_addrs()
                    .map(Iterator::collect),
            }
        }

        #[cfg(test)]
        pub(crate) fn host(&self) -> &str {
            match self {
                Lookup::HostPort(s) => s.rsplit_once(':').map_or(s.as_str(), |(host, _)| host),
                Lookup::Host(host, _) => host,
            }
        }
    }

    /// The addresses a [`ToSocketAddrs`](super::ToSocketAddrs) value stands for. A single
    /// address (the common case: a `SocketAddr`) is kept without allocating.
    #[derive(Debug)]
    pub struct Addrs(Inner);

    #[derive(Debug)]
    enum Inner {
        One(Option<SocketAddr>),
        Many(std::vec::IntoIter<SocketAddr>),
    }

    impl Addrs {
        pub(crate) fn one(addr: SocketAddr) -> Addrs {
            Addrs(Inner::One(Some(addr)))
        }

        pub(crate) fn many(addrs: Vec<SocketAddr>) -> Addrs {
            Addrs(Inner::Many(addrs.into_iter()))
        }

        pub(crate) fn is_empty(&self) -> bool {
            self.len() == 0
        }
    }

    impl Iterator for Addrs {
        type Item = SocketAddr;

        fn next(&mut self) -> Option<SocketAddr> {
            match &mut self.0 {
                Inner::One(addr) => addr.take(),
                Inner::Many(addrs) => addrs.next(),
            }
        }

        fn size_hint(&self) -> (usize, Option<usize>) {
            match &self.0 {
                Inner::One(addr) => {
                    let n = usize::from(addr.is_some());
                    (n, Some(n))
                }
                Inner::Many(addrs) => addrs.size_hint(),
            }
        }
    }

    impl ExactSizeIterator for Addrs {}
}

impl Resolve {
    fn one(addr: impl Into<SocketAddr>) -> Resolve {
        Resolve::Ready(Ok(Addrs::one(addr.into())))
    }
}

impl ToSocketAddrs for SocketAddr {}
impl ToSocketAddrsPriv for SocketAddr {
    fn resolve(&self) -> Resolve {
        Resolve::one(*self)
    }
}

impl ToSocketAddrs for SocketAddrV4 {}
impl ToSocketAddrsPriv for SocketAddrV4 {
    fn resolve(&self) -> Resolve {
        Resolve::one(*self)
    }
}

impl ToSocketAddrs for SocketAddrV6 {}
impl ToSocketAddrsPriv for SocketAddrV6 {
    fn resolve(&self) -> Resolve {
        Resolve::one(*self)
    }
}

impl ToSocketAddrs for (IpAddr, u16) {}
impl ToSocketAddrsPriv for (IpAddr, u16) {
    fn resolve(&self) -> Resolve {
        Resolve::one(*self)
    }
}

impl ToSocketAddrs for (Ipv4Addr, u16) {}
impl ToSocketAddrsPriv for (Ipv4Addr, u16) {
    fn resolve(&self) -> Resolve {
        Resolve::one(*self)
    }
}

impl ToSocketAddrs for (Ipv6Addr, u16) {}
impl ToSocketAddrsPriv for (Ipv6Addr, u16) {
    fn resolve(&self) -> Resolve {
        Resolve::one(*self)
    }
}

impl ToSocketAddrs for [SocketAddr] {}
impl ToSocketAddrsPriv for [SocketAddr] {
    fn resolve(&self) -> Resolve {
        match self {
            [one] => Resolve::one(*one),
            many => Resolve::Ready(Ok(Addrs::many(many.to_vec()))),
        }
    }
}

impl ToSocketAddrs for str {}
impl ToSocketAddrsPriv for str {
    fn resolve(&self) -> Resolve {
        match self.parse::<SocketAddr>() {
            Ok(addr) => Resolve::one(addr),
            // Not a literal (or malformed): std's resolver decides, off this thread.
            Err(_) => Resolve::Lookup(Lookup::HostPort(self.to_owned())),
        }
    }
}

impl ToSocketAddrs for String {}
impl ToSocketAddrsPriv for String {
    fn resolve(&self) -> Resolve {
        self.as_str().resolve()
    }
}

impl ToSocketAddrs for (&str, u16) {}
impl ToSocketAddrsPriv for (&str, u16) {
    fn resolve(&self) -> Resolve {
        let (host, port) = *self;
        match host.parse::<IpAddr>() {
            Ok(ip) => Resolve::one((ip, port)),
            Err(_) => Resolve::Lookup(Lookup::Host(host.to_owned(), port)),
        }
    }
}

impl ToSocketAddrs for (String, u16) {}
impl ToSocketAddrsPriv for (String, u16) {
    fn resolve(&self) -> Resolve {
        (self.0.as_str(), self.1).resolve()
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {}
impl<T: ToSocketAddrsPriv + ?Sized> ToSocketAddrsPriv for &T {
    fn resolve(&self) -> Resolve {
        (**self).resolve()
    }
}

/// Test-only resolver injection: a unit test registers a fake resolver for a host name it
/// made up, and `Lookup::run` calls it on whatever thread the lookup runs on, so the test
/// can see that thread and hold the lookup in flight. Keyed by host, so tests running in
/// parallel do not see each other's hooks.
#[cfg(test)]
pub(crate) mod test_hook {
    use std::collections::HashMap;
    use std::io;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use super::sealed::Lookup;

    type Resolver = Arc<dyn Fn() -> io::Result<Vec<SocketAddr>> + Send + Sync>;

    static HOOKS: Mutex<Option<HashMap<String, Resolver>>> = Mutex::new(None);

    /// Makes lookups of `host` call `resolver` instead of the system resolver.
    pub(crate) fn install(
        host: &str,
        resolver: impl Fn() -> io::Result<Vec<SocketAddr>> + Send + Sync + 'static,
    ) {
        HOOKS
            .lock()
            .unwrap()
            .get_or_insert_with(HashMap::new)
            .insert(host.to_owned(), Arc::new(resolver));
    }

    pub(super) fn intercept(lookup: &Lookup) -> Option<io::Result<Vec<SocketAddr>>> {
        // Cloned out so the resolver runs without the registry locked (it may block).
        let resolver = HOOKS.lock().unwrap().as_ref()?.get(lookup.host())?.clone();
        Some(resolver())
    }
}

#[cfg(test)]
mod tests;
