//! Loom model 1 (`executor/LOOM.md`): `LocalQueue` under an owner that pushes and pops, one
//! thief that steals half, and the full-ring overflow to an injector-like sink, over real
//! tasks (`task::new_task`). `CAPACITY` is 4 under loom, so five pushes overflow.
//!
//! What "every task is obtained exactly once" means here: whoever obtains a `Notified`
//! (owner pop, thief steal, the thief draining its own queue, the sink) runs it at once.
//! Each task's future counts its polls and stays pending, so a task run twice shows two
//! polls and a task never run shows none; and after the run each task must be referenced
//! exactly by its `Task` and `JoinHandle` (2), so a duplicated `Notified` that was dropped
//! without a poll (its twin was still running) or a leaked one shows too. Running inside
//! the thief also lets loom check that the task's cells (the future) were published to the
//! thief by the ring's Release/Acquire pairs.

use std::panic::Location;
use std::sync::atomic::Ordering::Relaxed as StdRelaxed;
use std::sync::atomic::{AtomicBool as StdAtomicBool, AtomicUsize as StdAtomicUsize};
use std::sync::Arc as StdArc;

use loom::sync::{Arc, Mutex};
use loom::thread;

use super::{LocalQueue, Overflow, Steal, CAPACITY};
use crate::loom::atomic::Ordering::{Acquire, Relaxed, Release};
use crate::scheduler::park::loom_tests::model;
use crate::task::{self, Id, JoinHandle, Notified, Schedule, Task};

/// The scheduler of the model's tasks: nothing wakes them, and nothing completes.
struct NoSchedule;

impl Schedule for NoSchedule {
    fn schedule(&self, _task: Notified<Self>) {
        unreachable!("no task of the queue model is ever woken");
    }

    fn release(&self, _task: &Task<Self>) -> Option<Task<Self>> {
        None
    }

    fn owner(&self) -> u64 {
        0
    }
}

type Queue = LocalQueue<NoSchedule>;

/// The model's tasks: their handles (kept by the model thread until the end) and poll counts.
struct Tasks {
    /// Leaked, not dropped, if the model fails: after a lost or duplicated reference the
    /// reference count is wrong, and dropping the handles could free a task twice.
    handles: std::mem::ManuallyDrop<Vec<(Task<NoSchedule>, JoinHandle<()>)>>,
    polls: Vec<StdArc<StdAtomicUsize>>,
}

impl Tasks {
    fn new() -> Tasks {
        Tasks {
            handles: std::mem::ManuallyDrop::new(Vec::new()),
            polls: Vec::new(),
        }
    }

    fn spawn(&mut self) -> Notified<NoSchedule> {
        // A std atomic: the count is read after every thread is joined, so it needs no
        // modelling (and keeping it out of loom keeps the state space small).
        let polls = StdArc::new(StdAtomicUsize::new(0));
        let counter = polls.clone();
        let future = async move {
            counter.fetch_add(1, StdRelaxed);
            std::future::pending::<()>().await;
        };
        let id = Id::next();
        let (task, notified, join) = task::new_task(future, NoSchedule, id);
        self.handles.push((task, join));
        self.polls.push(polls);
        notified
    }

    /// Every task ran exactly once and no `Notified` is left anywhere; then frees them.
    fn assert_each_ran_once(mut self) {
        let polls: Vec<usize> = self.polls.iter().map(|p| p.load(StdRelaxed)).collect();
        let refs: Vec<usize> = self
            .handles
            .iter()
            .map(|(t, _)| t.header().ref_count())
            .collect();
        assert!(
            polls.iter().all(|&n| n == 1) && refs.iter().all(|&n| n == 2),
            "every task must be obtained exactly once: polls per task {polls:?}, references \
             per task {refs:?} (expected 1 poll and 2 references: Task + JoinHandle)"
        );
        // The counts are right, so dropping the handles frees every task exactly once.
        drop(std::mem::ManuallyDrop::into_inner(std::mem::take(
            &mut self.handles,
        )));
    }
}

/// The overflow target: a lock-protected vector standing for the injector.
#[derive(Default)]
struct Sink(Mutex<Vec<Notified<NoSchedule>>>);

impl Overflow<NoSchedule> for Sink {
    fn push_batch(&self, tasks: impl Iterator<Item = Notified<NoSchedule>>) {
        self.0.lock().unwrap().extend(tasks);
    }
}

impl Sink {
    fn run_all(&self) -> usize {
        let tasks = std::mem::take(&mut *self.0.lock().unwrap());
        let n = tasks.len();
        tasks.into_iter().for_each(Notified::run);
        n
    }
}

/// Owner only: pops and runs until empty.
fn run_all(queue: &Queue) {
    while let Some(task) = queue.pop() {
        task.run();
    }
}

/// The thief: steal into its own (new) queue, run the task the steal returns, then run
/// the rest it moved, as a worker would.
fn thief(victim: Arc<Queue>, steal: fn(&Queue, &Queue) -> Steal<Notified<NoSchedule>>) {
    let mine = Queue::new();
    if let Steal::Success(task) = steal(&victim, &mine) {
        task.run();
    }
    run_all(&mine);
}

fn real_steal(victim: &Queue, mine: &Queue) -> Steal<Notified<NoSchedule>> {
    victim.steal_into(mine)
}

/// Owner pushes three tasks into an empty ring and pops one while a thief steals: the
/// thief may copy slots the owner is publishing right then (tail Release/Acquire), and its
/// CAS on `head` races the owner's pop CAS.
#[test]
fn loom_local_queue_push_pop_vs_steal() {
    model(None, || {
        let mut tasks = Tasks::new();
        let batch: Vec<_> = (0..3).map(|_| tasks.spawn()).collect();
        let victim = Arc::new(Queue::new());
        let sink = Sink::default();
        let th = {
            let victim = victim.clone();
            thread::spawn(move || thief(victim, real_steal))
        };
        for task in batch {
            victim.push_back(task, &sink);
        }
        if let Some(task) = victim.pop() {
            task.run();
        }
        th.join().unwrap();
        run_all(&victim);
        assert_eq!(
            sink.run_all(),
            0,
            "three tasks cannot overflow a ring of {CAPACITY}"
        );
        tasks.assert_each_ran_once();
    });
}

/// The ring holds one task; the owner pushes four more (the last overflows half the ring
/// plus itself into the sink, unless the thief made room first) and pops one, while the
/// thief steals. Covers `push_overflow`'s CAS racing the thief's, and its retry.
#[test]
fn loom_local_queue_overflow_vs_steal() {
    let overflowed = StdArc::new(StdAtomicBool::new(false));
    let seen = overflowed.clone();
    model(None, move || {
        let mut tasks = Tasks::new();
        let victim = Arc::new(Queue::new());
        let sink = Sink::default();
        victim.push_back(tasks.spawn(), &sink);
        let extra: Vec<_> = (0..CAPACITY).map(|_| tasks.spawn()).collect();
        let th = {
            let victim = victim.clone();
            thread::spawn(move || thief(victim, real_steal))
        };
        for task in extra {
            victim.push_back(task, &sink);
        }
        if let Some(task) = victim.pop() {
            task.run();
        }
        th.join().unwrap();
        run_all(&victim);
        if sink.run_all() > 0 {
            seen.store(true, StdRelaxed);
        }
        tasks.assert_each_ran_once();
    });
    assert!(
        overflowed.load(StdRelaxed),
        "no explored execution overflowed the ring"
    );
}

/// Two thieves race each other (and the owner) for a ring the owner is filling.
#[test]
fn loom_local_queue_two_thieves() {
    model(Some(4), || {
        let mut tasks = Tasks::new();
        let batch: Vec<_> = (0..3).map(|_| tasks.spawn()).collect();
        let victim = Arc::new(Queue::new());
        let sink = Sink::default();
        let thieves: Vec<_> = (0..2)
            .map(|_| {
                let victim = victim.clone();
                thread::spawn(move || thief(victim, real_steal))
            })
            .collect();
        for task in batch {
            victim.push_back(task, &sink);
        }
        if let Some(task) = victim.pop() {
            task.run();
        }
        for th in thieves {
            th.join().unwrap();
        }
        run_all(&victim);
        tasks.assert_each_ran_once();
    });
}

/// Steal from a thief: A steals half of a full ring into its own queue (publishing all but
/// the task it runs with a Release store of its tail) while B steals from A's queue and A
/// pops it. Covers the `dst` side of `steal_into` and thief-vs-owner on a stolen batch.
#[test]
fn loom_local_queue_steal_from_thief() {
    model(None, || {
        let mut tasks = Tasks::new();
        let victim = Queue::new();
        let sink = Sink::default();
        for _ in 0..CAPACITY {
            victim.push_back(tasks.spawn(), &sink);
        }
        let a_queue = Arc::new(Queue::new());
        let b = {
            let a_queue = a_queue.clone();
            thread::spawn(move || thief(a_queue, real_steal))
        };
        // This thread is thief A: a_queue's owner.
        if let Steal::Success(task) = victim.steal_into(&a_queue) {
            task.run();
        }
        run_all(&a_queue);
        b.join().unwrap();
        run_all(&victim);
        tasks.assert_each_ran_once();
    });
}

/// `steal_into` with its claim broken on purpose: compare `head`, then store it (two steps,
/// not one CAS). The thief publishes everything it copied into its own queue, so no unsafe
/// code is needed to turn slots back into tasks.
fn steal_check_then_store(victim: &Queue, mine: &Queue) -> Steal<Notified<NoSchedule>> {
    let dst_tail = mine.tail.load(Relaxed);
    let head = victim.head.load(Acquire);
    let tail = victim.tail.load(Acquire);
    let available = tail.wrapping_sub(head);
    let n = available - available / 2;
    if n == 0 || n > CAPACITY as u32 / 2 {
        return Steal::Empty;
    }
    for i in 0..n {
        let ptr = victim.slot(head.wrapping_add(i)).load(Relaxed);
        mine.slot(dst_tail.wrapping_add(i)).store(ptr, Relaxed);
    }
    if victim.head.load(Acquire) != head {
        return Steal::Empty;
    }
    // The bug: the owner's pop can claim `head` between the load above and this store.
    victim.head.store(head.wrapping_add(n), Release);
    mine.tail.store(dst_tail.wrapping_add(n), Release);
    Steal::Empty
}

/// The model catches a claim race: with the thief's CAS split into load + store, the owner's
/// pop and the thief both take the oldest task.
#[test]
#[should_panic(expected = "every task must be obtained exactly once")]
fn loom_local_queue_broken_claim_is_caught() {
    model(None, || {
        let mut tasks = Tasks::new();
        let victim = Arc::new(Queue::new());
        let sink = Sink::default();
        for _ in 0..2 {
            victim.push_back(tasks.spawn(), &sink);
        }
        let th = {
            let victim = victim.clone();
            thread::spawn(move || thief(victim, steal_check_then_store))
        };
        if let Some(task) = victim.pop() {
            task.run();
        }
        th.join().unwrap();
        run_all(&victim);
        tasks.assert_each_ran_once();
    });
}
