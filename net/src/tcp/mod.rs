//! TCP: listener, stream (and its halves), and the socket builder.

pub(crate) mod listener;
pub(crate) mod socket;
pub(crate) mod split;
pub(crate) mod stream;
