//! Measurement, not a test: the local ring against `crossbeam_queue::ArrayQueue` (the
//! issue allowed a hand-written ring only if it beats ArrayQueue). Run with
//!
//! ```text
//! cargo test --release -p runnel-executor --lib versus_array_queue -- --ignored --nocapture
//! ```
//!
//! Three shapes, each on real task references: the owner's push+pop cycle, a thief taking
//! half of a full queue, and the owner pushing/popping while a thief steals concurrently.
//! ArrayQueue has no "steal half" so its thief pops one at a time into its own queue.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;

use super::{LocalQueue, Overflow, Steal, CAPACITY};
use crate::task::{self, Header, Id, Notified, Schedule, Task};

struct NoSchedule;

impl Schedule for NoSchedule {
    fn schedule(&self, _task: Notified<Self>) {
        unreachable!()
    }
    fn release(&self, _task: &Task<Self>) -> Option<Task<Self>> {
        None
    }

    fn owner(&self) -> u64 {
        0
    }
}

struct NoOverflow;

impl Overflow<NoSchedule> for NoOverflow {
    fn push_batch(&self, _tasks: impl Iterator<Item = Notified<NoSchedule>>) {
        unreachable!("the measurement never overflows")
    }
}

fn tasks(n: usize) -> Vec<Notified<NoSchedule>> {
    (0..n)
        .map(|_| {
            let id = Id::next();
            let (task, notified, join) = task::new_task(async {}, NoSchedule, id);
            std::mem::forget(task);
            std::mem::forget(join);
            notified
        })
        .collect()
}

/// ArrayQueue holds raw task pointers (what the ring's slots hold too).
fn raw(tasks: Vec<Notified<NoSchedule>>) -> Vec<NonNull<Header>> {
    tasks.into_iter().map(Notified::into_raw).collect()
}

fn per_op(elapsed: Duration, ops: usize) -> f64 {
    elapsed.as_nanos() as f64 / ops as f64
}

#[test]
#[ignore = "a measurement; run with --release -- --ignored --nocapture"]
fn versus_array_queue() {
    const ROUNDS: usize = 20_000;
    let half = CAPACITY / 2;

    // 1. Owner push + pop.
    let ring = LocalQueue::<NoSchedule>::new();
    let mut held = tasks(half);
    let start = Instant::now();
    for _ in 0..ROUNDS {
        for t in held.drain(..) {
            ring.push_back(t, &NoOverflow);
        }
        while let Some(t) = ring.pop() {
            held.push(t);
        }
    }
    let ring_owner = per_op(start.elapsed(), ROUNDS * half * 2);
    let aq = ArrayQueue::new(CAPACITY);
    let mut held_raw = raw(held);
    let start = Instant::now();
    for _ in 0..ROUNDS {
        for t in held_raw.drain(..) {
            aq.push(t).unwrap();
        }
        while let Some(t) = aq.pop() {
            held_raw.push(t);
        }
    }
    let aq_owner = per_op(start.elapsed(), ROUNDS * half * 2);

    // 2. Steal half of a full queue.
    let (victim, thief) = (
        LocalQueue::<NoSchedule>::new(),
        LocalQueue::<NoSchedule>::new(),
    );
    // SAFETY: the pointers came from Notified::into_raw above and are used once each.
    let mut held: Vec<_> = held_raw
        .drain(..)
        .map(|p| unsafe { Notified::from_raw(p) })
        .collect();
    held.extend(tasks(CAPACITY - half));
    let mut ring_steal = Duration::ZERO;
    for _ in 0..ROUNDS / 10 {
        for t in held.drain(..) {
            victim.push_back(t, &NoOverflow);
        }
        let start = Instant::now();
        if let Steal::Success(t) = victim.steal_into(&thief) {
            held.push(t);
        }
        ring_steal += start.elapsed();
        while let Some(t) = thief.pop() {
            held.push(t);
        }
        while let Some(t) = victim.pop() {
            held.push(t);
        }
    }
    let (aq_victim, aq_thief) = (ArrayQueue::new(CAPACITY), ArrayQueue::new(CAPACITY));
    let mut held_raw = raw(held);
    let mut aq_steal = Duration::ZERO;
    for _ in 0..ROUNDS / 10 {
        for t in held_raw.drain(..) {
            aq_victim.push(t).unwrap();
        }
        let start = Instant::now();
        for _ in 0..half {
            let t = aq_victim.pop().unwrap();
            aq_thief.push(t).unwrap();
        }
        aq_steal += start.elapsed();
        while let Some(t) = aq_thief.pop() {
            held_raw.push(t);
        }
        while let Some(t) = aq_victim.pop() {
            held_raw.push(t);
        }
    }

    // 3. Owner push/pop with a concurrent thief.
    let contended =
        |use_ring: bool, held_raw: Vec<NonNull<Header>>| -> (f64, Vec<NonNull<Header>>) {
            let stop = Arc::new(AtomicBool::new(false));
            let ring = Arc::new(LocalQueue::<NoSchedule>::new());
            let ring_thief = Arc::new(LocalQueue::<NoSchedule>::new());
            let aq = Arc::new(ArrayQueue::<usize>::new(CAPACITY));
            let thief = {
                let (stop, ring, ring_thief, aq) =
                    (stop.clone(), ring.clone(), ring_thief.clone(), aq.clone());
                // Pointers cross threads as usize: they are task references the thief hands back.
                std::thread::spawn(move || {
                    let mut stolen: Vec<usize> = Vec::new();
                    while !stop.load(Relaxed) {
                        if use_ring {
                            if let Steal::Success(t) = ring.steal_into(&ring_thief) {
                                stolen.push(t.into_raw().as_ptr() as usize);
                                while let Some(t) = ring_thief.pop() {
                                    stolen.push(t.into_raw().as_ptr() as usize);
                                }
                            }
                        } else if let Some(t) = aq.pop() {
                            stolen.push(t);
                        }
                    }
                    stolen
                })
            };
            let mut held_raw = held_raw;
            let start = Instant::now();
            let mut ops = 0;
            for _ in 0..ROUNDS {
                for t in held_raw.drain(..) {
                    if use_ring {
                        // SAFETY: as above.
                        ring.push_back(unsafe { Notified::from_raw(t) }, &NoOverflow);
                    } else {
                        aq.push(t.as_ptr() as usize).unwrap();
                    }
                    ops += 1;
                }
                loop {
                    let t = if use_ring {
                        ring.pop().map(Notified::into_raw)
                    } else {
                        // SAFETY: usize round-trip of a task pointer pushed above.
                        aq.pop()
                            .map(|p| unsafe { NonNull::new_unchecked(p as *mut Header) })
                    };
                    let Some(t) = t else { break };
                    held_raw.push(t);
                    ops += 1;
                }
                if held_raw.len() < half / 2 {
                    break; // the thief took most of them; enough samples
                }
            }
            let elapsed = start.elapsed();
            stop.store(true, Relaxed);
            let stolen = thief.join().unwrap();
            // SAFETY: usize round-trip of pointers taken from task references above.
            held_raw.extend(
                stolen
                    .into_iter()
                    .map(|p| unsafe { NonNull::new_unchecked(p as *mut Header) }),
            );
            while let Some(t) = ring.pop() {
                held_raw.push(t.into_raw());
            }
            while let Some(t) = aq.pop() {
                // SAFETY: as above.
                held_raw.push(unsafe { NonNull::new_unchecked(t as *mut Header) });
            }
            (per_op(elapsed, ops.max(1)), held_raw)
        };
    let (ring_contended, held_raw) = contended(true, held_raw);
    let (aq_contended, held_raw) = contended(false, held_raw);

    println!("| operation | LocalQueue | ArrayQueue | ratio |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| owner push+pop (ns/op) | {ring_owner:.2} | {aq_owner:.2} | {:.2} |",
        ring_owner / aq_owner
    );
    let (rs, as_) = (
        per_op(ring_steal, ROUNDS / 10),
        per_op(aq_steal, ROUNDS / 10),
    );
    println!(
        "| steal half of 256 (ns/steal) | {rs:.0} | {as_:.0} | {:.2} |",
        rs / as_
    );
    println!(
        "| owner ops with a thief running (ns/op) | {ring_contended:.2} | {aq_contended:.2} | {:.2} |",
        ring_contended / aq_contended
    );
    // Free the tasks: each reference is a Notified (the others were forgotten on purpose).
    for p in held_raw {
        // SAFETY: each pointer is one Notified reference, dropped once here.
        drop(unsafe { Notified::<NoSchedule>::from_raw(p) });
    }
}
