//! Address resolution: `std::net::ToSocketAddrs`, tried in order like `std` does.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

/// Every address `addr` resolves to; an error if there is none.
pub(crate) fn resolve(addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any address",
        ));
    }
    Ok(addrs)
}

/// The first address `addr` resolves to.
pub(crate) fn resolve_one(addr: impl ToSocketAddrs) -> io::Result<SocketAddr> {
    Ok(resolve(addr)?[0])
}

/// Calls `f` on each address until one succeeds; otherwise returns the last error.
pub(crate) fn try_each<T>(
    addr: impl ToSocketAddrs,
    mut f: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for addr in resolve(addr)? {
        match f(addr) {
            Ok(value) => return Ok(value),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("resolve returns at least one address"))
}
