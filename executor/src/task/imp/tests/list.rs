//! The owned list's slabs: a burst of tasks that completes in any order leaves exactly the
//! live ones listed (compaction renumbers their slots), and shutdown reaches all of them.

use super::*;

/// Listed tasks by id, through `for_each_while`.
fn listed(sched: &TestScheduler) -> Vec<u64> {
    let mut ids = Vec::new();
    sched.owned.for_each_while(|h, _| {
        ids.push(h.id().as_u64());
        true
    });
    ids.sort_unstable();
    ids
}

#[test]
fn bursts_complete_in_any_order_and_the_rest_stays_listed() {
    let sched = TestScheduler::new();
    let n = scaled(2_000, 400);
    let probes: Vec<Probe> = (0..n).map(|_| Probe::new()).collect();
    let handles: Vec<_> = probes
        .iter()
        .map(|p| sched.spawn(p.future([Step::Park, Step::Ready])))
        .collect();
    assert_eq!(sched.run_all(), n);
    assert_eq!(sched.owned.len(), n);
    // Complete all but every 10th, in an order that is neither spawn order nor its
    // reverse, so slots are vacated all over the shards and compaction renumbers.
    let mut order: Vec<usize> = (0..n).filter(|i| i % 10 != 0).collect();
    order.sort_by_key(|&i| (i * 7919) % n);
    for &i in &order {
        probes[i].take_waker().expect("parked").wake();
        assert!(sched.run_one());
        assert!(probes[i].counts.completed.load(SeqCst));
    }
    let mut live: Vec<u64> = (0..n)
        .filter(|i| i % 10 == 0)
        .map(|i| handles[i].id().as_u64())
        .collect();
    live.sort_unstable();
    assert_eq!(sched.owned.len(), live.len());
    assert_eq!(listed(&sched), live);
    // A second burst reuses and grows the slabs beside the survivors.
    let more: Vec<Probe> = (0..n / 2).map(|_| Probe::new()).collect();
    let more_handles: Vec<_> = more
        .iter()
        .map(|p| sched.spawn(p.future([Step::Park])))
        .collect();
    sched.run_all();
    assert_eq!(sched.owned.len(), live.len() + n / 2);
    // The survivors complete normally (each is still found in its renumbered slot)...
    for i in (0..n).filter(|i| i % 10 == 0) {
        probes[i].take_waker().expect("parked").wake();
        assert!(sched.run_one());
    }
    assert_eq!(sched.owned.len(), n / 2);
    // ...and shutdown cancels the second burst, each exactly once.
    sched.shutdown();
    assert_eq!(sched.owned.len(), 0);
    for p in &more {
        assert_eq!(p.counts.drops(), 1);
        drop(p.take_waker());
    }
    let (_, waker) = CountingWaker::new();
    for mut h in more_handles {
        assert!(ready(poll_join(&mut h, &waker)).unwrap_err().is_cancelled());
    }
    drop(handles);
    sched.finish();
}
