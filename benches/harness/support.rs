//! Small runtime-neutral pieces the workloads share: a countdown that hands the sum of
//! its arrivals to one waiter, a gate that parks any number of tasks until opened, a
//! seeded RNG, and the process's resident set size.
//!
//! Everything here uses only `std` and `futures`' oneshot, which none of the three
//! runtimes owns, so no runtime gets its own fast path.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures::channel::oneshot;

/// `n` tasks arrive with a value each; the last one sends the sum to the waiter. The
/// sum lets the workload check that every task ran exactly once.
pub struct Countdown {
    left: AtomicUsize,
    sum: AtomicUsize,
    done: Mutex<Option<oneshot::Sender<usize>>>,
}

impl Countdown {
    pub fn new(n: usize) -> (Arc<Countdown>, oneshot::Receiver<usize>) {
        assert!(n > 0);
        let (tx, rx) = oneshot::channel();
        let countdown = Countdown {
            left: AtomicUsize::new(n),
            sum: AtomicUsize::new(0),
            done: Mutex::new(Some(tx)),
        };
        (Arc::new(countdown), rx)
    }

    pub fn arrive(&self, value: usize) {
        self.sum.fetch_add(value, Relaxed);
        // AcqRel: the last arrival sees every other arrival's sum update.
        if self.left.fetch_sub(1, AcqRel) == 1 {
            let tx = self.done.lock().unwrap().take().expect("arrived twice");
            let _ = tx.send(self.sum.load(Relaxed));
        }
    }
}

/// `0 + 1 + … + (n - 1)`: what a countdown over task indices must add up to.
pub fn index_sum(n: usize) -> usize {
    n * n.saturating_sub(1) / 2
}

/// Parks tasks (holding only their waker) until `open`; the idle task of the memory
/// workload. Wakers live in one vector reserved up front, so they cost no allocation
/// per task.
pub struct Gate {
    open: AtomicBool,
    waiting: AtomicUsize,
    wakers: Mutex<Vec<Waker>>,
}

impl Gate {
    /// A gate for up to `n` waiters; the waker vector's pages are touched now, so they
    /// are resident before any baseline is taken.
    pub fn new(n: usize) -> Gate {
        let mut wakers = Vec::with_capacity(n);
        wakers.resize(n, futures::task::noop_waker());
        wakers.clear();
        Gate {
            open: AtomicBool::new(false),
            waiting: AtomicUsize::new(0),
            wakers: Mutex::new(wakers),
        }
    }

    pub fn wait(&self) -> GateWait<'_> {
        GateWait {
            gate: self,
            registered: false,
        }
    }

    /// Tasks that polled the gate and are parked on it.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Acquire)
    }

    pub fn open(&self) {
        let wakers = {
            let mut wakers = self.wakers.lock().unwrap();
            self.open.store(true, Release);
            std::mem::take(&mut *wakers)
        };
        for w in wakers {
            w.wake();
        }
    }
}

pub struct GateWait<'a> {
    gate: &'a Gate,
    registered: bool,
}

impl Future for GateWait<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.gate.open.load(Acquire) {
            return Poll::Ready(());
        }
        if !self.registered {
            let mut wakers = self.gate.wakers.lock().unwrap();
            if self.gate.open.load(Acquire) {
                return Poll::Ready(());
            }
            wakers.push(cx.waker().clone());
            self.gate.waiting.fetch_add(1, Release);
            self.registered = true;
        }
        Poll::Pending
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a seeded generator, so every runtime gets the
/// same sequence of random sleeps.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..=max` (the modulo bias is below 1e-14 for the sizes used here).
    pub fn below_or_eq(&mut self, max: u64) -> u64 {
        self.next_u64() % (max + 1)
    }
}

/// Resident set size of this process in bytes (`/proc/self/statm`, second field).
pub fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .expect("statm's resident field");
    // SAFETY: sysconf has no preconditions; _SC_PAGESIZE is always supported on Linux.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * usize::try_from(page).expect("page size")
}

/// Gives freed heap pages back to the kernel (glibc), so an RSS delta measures what is
/// allocated now rather than what earlier work left in the allocator's free lists.
pub fn trim_heap() {
    // SAFETY: malloc_trim only walks glibc's own arenas; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Raises the soft open-file limit to the hard limit; returns the limit now in force.
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the call's duration.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit; lowering-or-equal to the hard limit needs
        // no privilege, and failure leaves the old limit in force.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return raised.rlim_max;
        }
    }
    lim.rlim_cur
}

/// Tries to raise the hard open-file limit to `want` (needs CAP_SYS_RESOURCE); returns
/// whether it worked.
pub fn try_raise_hard_fd_limit(want: u64) -> bool {
    let lim = libc::rlimit {
        rlim_cur: want,
        rlim_max: want,
    };
    // SAFETY: `lim` is a valid rlimit; the kernel refuses (EPERM) without the privilege.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 }
}

/// What the whole process (every thread: `RUSAGE_SELF` sums them) has used so far: CPU
/// time and context switches. Read around a measured part, so a runtime that spins or
/// hops threads shows it even when its wall time looks the same.
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    /// User + system CPU time, µs.
    pub cpu_us: f64,
    /// Voluntary context switches (a thread blocked: futex wait, epoll_wait, …).
    pub voluntary: f64,
    /// Involuntary ones (the kernel preempted a thread that wanted to run on).
    pub involuntary: f64,
}

impl Usage {
    pub fn now() -> Usage {
        // SAFETY: an all-zero rusage is a valid value of this plain C struct.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `ru` is valid and writable for the call; RUSAGE_SELF is always valid.
        let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
        assert_eq!(rc, 0, "getrusage(RUSAGE_SELF) failed");
        let us = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
        Usage {
            cpu_us: us(ru.ru_utime) + us(ru.ru_stime),
            voluntary: ru.ru_nvcsw as f64,
            involuntary: ru.ru_nivcsw as f64,
        }
    }

    /// The cost columns for `ops` operations since `before`: CPU µs per operation and
    /// voluntary / involuntary context switches per 1000 operations.
    pub fn per_op_since(before: Usage, ops: f64) -> [f64; 3] {
        let now = Usage::now();
        assert!(ops > 0.0, "a cost sample needs at least one operation");
        [
            (now.cpu_us - before.cpu_us) / ops,
            (now.voluntary - before.voluntary) * 1e3 / ops,
            (now.involuntary - before.involuntary) * 1e3 / ops,
        ]
    }
}
