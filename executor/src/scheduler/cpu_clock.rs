//! `CpuClock`: what a worker thread is doing, as sysmon can see it from its own thread —
//! the CPU time it has used, and whether it is on (or waiting for) a CPU right now. It
//! tells a worker stuck in one poll because it computes (where a replacement thread would
//! only compete with it for the CPUs) from one blocked in a syscall or a sleep (off the
//! CPUs, where a replacement runs the stranded work on the core it left idle).
//! `retake.rs`'s module header and `poller::Sysmon::computing` say how the answer is used.
//!
//! Linux only (`pthread_getcpuclockid` + `clock_gettime`, and the state letter of
//! `/proc/self/task/<tid>/stat`); elsewhere every answer is "unknown", and sysmon then
//! treats a stuck worker as blocked, as it always did.
//!
//! Invariant: the thread recorded is the one that last started running the role
//! (`Worker::run`), so it may have left the role or exited since. Reading it then fails
//! (an exited thread: `EINVAL`, no `/proc` entry) or describes the wrong thread; either only
//! changes whether one retake happens, never what the detector or the queues see.

use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::time::Duration;

/// No thread has run the role yet (or the platform has neither clock nor `/proc`).
const NONE: i64 = i64::MIN;

pub(crate) struct CpuClock {
    /// The thread's CPU clock id (a `clockid_t`), or `NONE`.
    clock: AtomicI64,
    /// The thread's kernel id, or `NONE`.
    tid: AtomicI64,
}

impl CpuClock {
    pub(crate) fn new() -> CpuClock {
        CpuClock {
            clock: AtomicI64::new(NONE),
            tid: AtomicI64::new(NONE),
        }
    }

    /// Records the calling thread: it now runs the role.
    pub(crate) fn set_to_current_thread(&self) {
        // Relaxed: hints for sysmon's heuristic; they order nothing else. A reader that sees
        // one updated and not the other mixes two threads of the same role: a wrong guess
        // at worst (module header).
        self.clock
            .store(current_thread_clock().unwrap_or(NONE), Relaxed);
        self.tid.store(current_thread_id().unwrap_or(NONE), Relaxed);
    }

    /// CPU time used so far by the thread recorded last, if it can be read.
    pub(crate) fn read(&self) -> Option<Duration> {
        match self.clock.load(Relaxed) {
            NONE => None,
            id => read_clock(id),
        }
    }

    /// Whether the thread recorded last is running or runnable (waiting for a CPU) right
    /// now, rather than asleep; `None` if that cannot be read. A thread that computes on
    /// a machine with more runnable threads than CPUs uses little CPU time yet is runnable
    /// all along: its CPU time alone would make it look blocked.
    pub(crate) fn runnable_now(&self) -> Option<bool> {
        match self.tid.load(Relaxed) {
            NONE => None,
            tid => thread_state(tid).map(|state| state == 'R'),
        }
    }
}

#[cfg(target_os = "linux")]
fn current_thread_clock() -> Option<i64> {
    let mut id: libc::clockid_t = 0;
    // SAFETY: `pthread_self()` is the calling thread, alive for the call; `id` is a valid
    // out-pointer for one `clockid_t`.
    let rc = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut id) };
    (rc == 0).then_some(i64::from(id))
}

#[cfg(target_os = "linux")]
fn current_thread_id() -> Option<i64> {
    // SAFETY: `gettid` takes no argument and cannot fail.
    Some(i64::from(unsafe { libc::gettid() }))
}

#[cfg(target_os = "linux")]
fn read_clock(id: i64) -> Option<Duration> {
    let id = libc::clockid_t::try_from(id).ok()?;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer for one `timespec`. A clock id of a thread that
    // exited (or any invalid id) makes the call fail with EINVAL; it has no other effect.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    if rc != 0 {
        return None;
    }
    Some(Duration::new(
        u64::try_from(ts.tv_sec).ok()?,
        u32::try_from(ts.tv_nsec).ok()?,
    ))
}

/// The state letter of `/proc/self/task/<tid>/stat` (`R` running or runnable, `S` asleep,
/// `D` in an uninterruptible wait, ...). It follows the command name, which is in
/// parentheses and may itself hold spaces or parentheses, hence the last `)`.
#[cfg(target_os = "linux")]
fn thread_state(tid: i64) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.trim_start().chars().next()
}

#[cfg(not(target_os = "linux"))]
fn current_thread_clock() -> Option<i64> {
    None
}

#[cfg(not(target_os = "linux"))]
fn current_thread_id() -> Option<i64> {
    None
}

#[cfg(not(target_os = "linux"))]
fn read_clock(_id: i64) -> Option<Duration> {
    None
}

#[cfg(not(target_os = "linux"))]
fn thread_state(_tid: i64) -> Option<char> {
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn a_computing_thread_gains_cpu_time_and_runs_and_a_blocked_one_does_neither() {
        let clock = Arc::new(CpuClock::new());
        assert_eq!(clock.read(), None, "no thread recorded yet");
        let (to_main, from_thread) = std::sync::mpsc::channel();
        let (to_thread, from_main) = std::sync::mpsc::channel::<()>();
        let thread_clock = clock.clone();
        let thread = std::thread::spawn(move || {
            thread_clock.set_to_current_thread();
            to_main.send(()).unwrap();
            from_main.recv().unwrap();
            // Compute until this thread's own clock shows 20 ms more, however loaded the
            // machine (the wall time this takes does not matter).
            let start = thread_clock.read().unwrap();
            assert_eq!(thread_clock.runnable_now(), Some(true), "computing");
            let mut x = 0u64;
            while thread_clock.read().unwrap() - start < Duration::from_millis(20) {
                for _ in 0..10_000 {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
            }
            to_main.send(()).unwrap();
            from_main.recv().unwrap(); // blocked until told to exit
        });
        from_thread.recv().unwrap();
        let before = clock
            .read()
            .expect("the thread's clock reads from another thread");
        to_thread.send(()).unwrap();
        from_thread.recv().unwrap();
        let computed = clock.read().unwrap();
        assert!(
            computed - before >= Duration::from_millis(20),
            "read {:?} of CPU time across 20 ms of computing",
            computed - before
        );
        let wall = Instant::now();
        std::thread::sleep(Duration::from_millis(30));
        let blocked = clock.read().unwrap();
        assert_eq!(clock.runnable_now(), Some(false), "asleep in recv");
        assert!(
            blocked - computed < Duration::from_millis(5),
            "a thread blocked in recv used {:?} of CPU in {:?}",
            blocked - computed,
            wall.elapsed()
        );
        to_thread.send(()).unwrap();
        thread.join().unwrap();
    }
}
