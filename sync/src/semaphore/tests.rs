//! Deterministic unit tests: futures polled by hand with counting wakers, so the order
//! of assignment, partial assignment and cancellation are checked step by step.

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::task::Wake;

#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

fn waker() -> (Arc<CountingWaker>, std::task::Waker) {
    let w = Arc::new(CountingWaker::default());
    (w.clone(), std::task::Waker::from(w))
}

fn poll<F: Future + Unpin>(f: &mut F, waker: &std::task::Waker) -> Poll<F::Output> {
    Pin::new(f).poll(&mut Context::from_waker(waker))
}

#[test]
fn fast_path_and_try() {
    let sem = Semaphore::new(3);
    let a = sem.try_acquire_many(2).unwrap();
    assert_eq!(sem.available_permits(), 1);
    assert_eq!(
        sem.try_acquire_many(2).unwrap_err(),
        TryAcquireError::NoPermits
    );
    drop(a);
    assert_eq!(sem.available_permits(), 3);
    sem.close();
    assert!(sem.is_closed());
    assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::Closed);
    assert_eq!(sem.available_permits(), 3, "closing keeps the count");
}

#[test]
fn large_request_blocks_later_small_ones_fifo() {
    let sem = Semaphore::new(1);
    let (c1, w1) = waker();
    let (c2, w2) = waker();
    let mut big = sem.acquire_permits(3);
    assert!(poll(&mut big, &w1).is_pending());
    // The one permit went to `big` (partial assignment): nothing left for a newcomer.
    assert_eq!(sem.available_permits(), 0);
    sem.add_permits(1);
    assert_eq!(sem.available_permits(), 0, "given to the queued waiter");
    let mut small = sem.acquire_permits(1);
    assert!(
        poll(&mut small, &w2).is_pending(),
        "small queues behind big"
    );
    assert!(sem.try_acquire().is_err());
    sem.add_permits(2); // 1 to complete big (it had 2), 1 to small
    assert_eq!(c1.0.load(SeqCst), 1);
    assert_eq!(c2.0.load(SeqCst), 1);
    assert_eq!(poll(&mut big, &w1), Poll::Ready(Ok(())));
    assert_eq!(poll(&mut small, &w2), Poll::Ready(Ok(())));
    sem.release(4);
    assert_eq!(sem.available_permits(), 4);
}

#[test]
fn cancelled_head_gives_partial_assignment_to_next() {
    let sem = Semaphore::new(2);
    let (_, w1) = waker();
    let (c2, w2) = waker();
    let mut big = sem.acquire_permits(5);
    assert!(poll(&mut big, &w1).is_pending());
    let mut small = sem.acquire_permits(2);
    assert!(poll(&mut small, &w2).is_pending());
    drop(big); // its 2 assigned permits must go to `small`
    assert_eq!(c2.0.load(SeqCst), 1, "next waiter woken");
    assert_eq!(poll(&mut small, &w2), Poll::Ready(Ok(())));
    sem.release(2);
    assert_eq!(sem.available_permits(), 2);
    // The queue is empty again, so the fast path works.
    sem.try_acquire_permits(2).unwrap();
    sem.release(2);
}

#[test]
fn cancelled_granted_waiter_returns_everything() {
    let sem = Semaphore::new(0);
    let (_, w) = waker();
    let mut a = sem.acquire_permits(2);
    assert!(poll(&mut a, &w).is_pending());
    sem.add_permits(2);
    drop(a); // granted but never polled again
    assert_eq!(sem.available_permits(), 2);
}

/// A granted waiter's slot is freed by the grant and may be reused by the next waiter
/// before the granted one is polled: each must still see its own state.
#[test]
fn granted_waiters_slot_reused_by_the_next_waiter() {
    let sem = Semaphore::new(0);
    let (_, w) = waker();
    let mut a = sem.acquire_permits(1);
    assert!(poll(&mut a, &w).is_pending());
    sem.add_permits(1); // grants `a`, frees its slot
    let mut b = sem.acquire_permits(1);
    assert!(poll(&mut b, &w).is_pending(), "b queues (in a's old slot)");
    assert!(matches!(poll(&mut a, &w), Poll::Ready(Ok(()))));
    assert!(
        poll(&mut b, &w).is_pending(),
        "a's completion left b queued"
    );
    // Dropping the completed `a` gives back nothing; its permit is still out.
    drop(a);
    assert_eq!(sem.available_permits(), 0);
    sem.release(1); // a's permit comes back: it goes to b
    assert!(matches!(poll(&mut b, &w), Poll::Ready(Ok(()))));
    let mut c = sem.acquire_permits(1);
    assert!(poll(&mut c, &w).is_pending());
    sem.release(1); // b's permit: to c, then c is cancelled before its poll
    drop(b);
    drop(c);
    assert_eq!(sem.available_permits(), 1, "no permit lost or made");
}

#[test]
fn cancelled_middle_waiter_keeps_order() {
    let sem = Semaphore::new(0);
    let ws: Vec<_> = (0..3).map(|_| waker()).collect();
    let mut futs: Vec<_> = (0..3).map(|_| sem.acquire_permits(1)).collect();
    for (f, (_, w)) in futs.iter_mut().zip(&ws) {
        assert!(poll(f, w).is_pending());
    }
    let last = futs.pop().unwrap();
    let mid = futs.pop().unwrap();
    drop(mid);
    futs.push(last);
    sem.add_permits(1);
    assert_eq!(ws[0].0 .0.load(SeqCst), 1);
    assert_eq!(ws[2].0 .0.load(SeqCst), 0);
    sem.add_permits(1);
    assert_eq!(ws[2].0 .0.load(SeqCst), 1);
    drop(futs); // both granted, never polled: permits come back
    assert_eq!(sem.available_permits(), 2);
}

#[test]
fn close_fails_waiters_and_returns_partial_permits() {
    let sem = Semaphore::new(1);
    let (c, w) = waker();
    let mut a = sem.acquire_permits(2);
    assert!(poll(&mut a, &w).is_pending());
    sem.close();
    assert_eq!(c.0.load(SeqCst), 1);
    assert_eq!(poll(&mut a, &w), Poll::Ready(Err(AcquireError(()))));
    assert_eq!(sem.available_permits(), 1);
    let mut b = sem.acquire_permits(1);
    assert_eq!(poll(&mut b, &w), Poll::Ready(Err(AcquireError(()))));
}

#[test]
fn many_waiters_woken_in_batches() {
    // More satisfied waiters than one WakeList holds: the lock is dropped and retaken.
    let sem = Semaphore::new(0);
    let ws: Vec<_> = (0..100).map(|_| waker()).collect();
    let mut futs: Vec<_> = (0..100).map(|_| sem.acquire_permits(1)).collect();
    for (f, (_, w)) in futs.iter_mut().zip(&ws) {
        assert!(poll(f, w).is_pending());
    }
    sem.add_permits(100);
    for (f, (c, w)) in futs.iter_mut().zip(&ws) {
        assert_eq!(c.0.load(SeqCst), 1);
        assert_eq!(poll(f, w), Poll::Ready(Ok(())));
    }
    sem.release(100);
    assert_eq!(sem.available_permits(), 100);
}

#[test]
fn waker_is_replaced_on_repoll() {
    let sem = Semaphore::new(0);
    let (c1, w1) = waker();
    let (c2, w2) = waker();
    let mut a = sem.acquire_permits(1);
    assert!(poll(&mut a, &w1).is_pending());
    assert!(poll(&mut a, &w2).is_pending());
    sem.add_permits(1);
    assert_eq!((c1.0.load(SeqCst), c2.0.load(SeqCst)), (0, 1));
}

#[test]
fn permit_merge_split_forget() {
    let sem = Semaphore::new(5);
    let mut a = sem.try_acquire_many(2).unwrap();
    let b = sem.try_acquire().unwrap();
    a.merge(b);
    assert_eq!(a.num_permits(), 3);
    let c = a.split(1).unwrap();
    assert!(a.split(5).is_none());
    c.forget();
    assert_eq!(sem.available_permits(), 2);
    drop(a);
    assert_eq!(sem.available_permits(), 4);
    assert_eq!(sem.forget_permits(10), 4);
    assert_eq!(sem.available_permits(), 0);
}

#[test]
#[should_panic(expected = "exceed Semaphore::MAX_PERMITS")]
fn overflow_panics() {
    let sem = Semaphore::new(Semaphore::MAX_PERMITS);
    sem.add_permits(1);
}

#[test]
#[should_panic(expected = "different semaphores")]
fn merge_across_semaphores_panics() {
    let (s1, s2) = (Semaphore::new(1), Semaphore::new(1));
    let mut a = s1.try_acquire().unwrap();
    a.merge(s2.try_acquire().unwrap());
}

#[test]
fn threads_hammer_with_cancellation() {
    // Real threads, each with its own executor: acquire a random amount, sometimes give
    // up after one poll (cancellation while queued), and check the count at the end.
    let sem = Arc::new(Semaphore::new(4));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let sem = sem.clone();
            std::thread::spawn(move || {
                let mut seed = 0x9E37_79B9_u32.wrapping_mul(t + 1);
                for _ in 0..2000 {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    let n = seed % 4 + 1;
                    if seed & 16 == 0 {
                        let (_, w) = waker();
                        let mut f = sem.acquire_permits(n as usize);
                        if poll(&mut f, &w) == Poll::Ready(Ok(())) {
                            sem.release(n as usize);
                        }
                    } else {
                        let p = futures::executor::block_on(sem.acquire_many(n)).unwrap();
                        drop(p);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(sem.available_permits(), 4);
}
