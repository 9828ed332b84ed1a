//! A coarse clock for stamping lock holds ("held by task 4 for 1.2 s" in dumps and
//! reports) without reading the system clock on every acquire.
//!
//! Every reactor drain already has the time in hand (it fires timers with it); it stores
//! it here, in milliseconds since a process-wide epoch. An acquire then costs one relaxed
//! load. The stamp is late by at most the time since the runtime last drained its reactor
//! — a worker drains every 61 polls and whenever it wakes from a park, so that is at most
//! the length of the poll that takes the lock. Before any runnel runtime has drained (a
//! lock used only by another executor) the clock reads 0: "not known".
//!
//! Invariant: the stored value only grows (a drain with an older `now` than the last
//! stored one does not store), so a stamp never lies in the future of a later reading.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();
static NOW_MS: AtomicU64 = AtomicU64::new(0);

fn millis(at: Instant) -> u64 {
    let epoch = *EPOCH.get_or_init(|| at);
    // +1: 0 means "never ticked".
    at.saturating_duration_since(epoch).as_millis() as u64 + 1
}

/// A drain at `now` happened: advance the coarse clock (a load, and a store once per
/// millisecond).
pub(crate) fn tick(now: Instant) {
    let ms = millis(now);
    if ms > NOW_MS.load(Relaxed) {
        NOW_MS.store(ms, Relaxed);
    }
}

/// The coarse time of the last drain (0: no runnel reactor has drained yet).
pub(crate) fn stamp() -> u64 {
    NOW_MS.load(Relaxed)
}

/// How long ago a [`stamp`] was taken, to the millisecond (`None` for a 0 stamp).
pub(crate) fn age(stamp: u64) -> Option<std::time::Duration> {
    (stamp != 0)
        .then(|| std::time::Duration::from_millis(millis(Instant::now()).saturating_sub(stamp)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_stamp_ages_and_never_goes_back() {
        let now = Instant::now();
        tick(now);
        let s = stamp();
        assert_ne!(s, 0);
        // An older drain does not move the clock back.
        tick(now - Duration::from_millis(5));
        assert!(stamp() >= s);
        let age = age(s).unwrap();
        assert!(age < Duration::from_secs(60), "{age:?}");
        assert_eq!(super::age(0), None);
    }
}
