//! mio `Token` layout: which slab slot an event is for, and which registration of that slot.
//!
//! A token packs the slab key into the low [`KEY_BITS`] bits and a generation into the rest.
//! Slab keys are reused as soon as a registration is dropped, while an event for the old
//! registration may still sit in the driver's buffer; the generation lets the driver see
//! that the event belongs to a previous occupant and drop it instead of waking a stranger.
//!
//! A registration remembers its whole token, so "same generation" is just token equality.
//!
//! Invariant: no registration ever gets `WAKER_TOKEN`, because keys stop at
//! [`MAX_SOURCES`] - 1 and `WAKER_TOKEN` has the all-ones key.

use mio::Token;

/// Bits of the token that hold the slab key: 16 million sources at once is far above any
/// process's file-descriptor limit, and leaves 40 bits of generation on 64-bit targets.
const KEY_BITS: u32 = 24;
const KEY_MASK: usize = (1 << KEY_BITS) - 1;
const GENERATION_MASK: usize = usize::MAX >> KEY_BITS;

/// The most sources registered at once. One less than the key space so that no packed
/// token can equal [`WAKER_TOKEN`].
pub(crate) const MAX_SOURCES: usize = KEY_MASK;

/// Token of the `mio::Waker` behind `Handle::unpark`.
pub(crate) const WAKER_TOKEN: Token = Token(usize::MAX);

/// Packs a slab key and a generation (truncated to the bits that fit) into a token.
pub(crate) fn pack(key: usize, generation: usize) -> Token {
    debug_assert!(key < MAX_SOURCES, "slab key {key} out of token range");
    Token(((generation & GENERATION_MASK) << KEY_BITS) | key)
}

/// The slab key a token points at.
pub(crate) fn key(token: Token) -> usize {
    token.0 & KEY_MASK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trips_and_never_hits_the_waker_token() {
        let token = pack(5, 7);
        assert_eq!(key(token), 5);
        assert_ne!(
            pack(5, 8),
            token,
            "same slot, next generation: distinct tokens"
        );
        assert_ne!(pack(MAX_SOURCES - 1, usize::MAX), WAKER_TOKEN);
        assert_eq!(pack(3, GENERATION_MASK + 2), pack(3, 1), "generation wraps");
    }
}
