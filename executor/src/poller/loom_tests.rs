//! Loom model 5 (`executor/LOOM.md`): the poller thread's start is never lost between a
//! spawn and the worker that owes the start withdrawing it (`PollerThread::start_for_spawn`
//! and `start_as_duty`), over the real `StartRequest`.
//!
//! The owned-task list is a counter behind a loom `Mutex` (the real list's shards are
//! mutexes: a bind and a count each take the lock); the poller's `state` lock is a loom
//! `Mutex<()>`. The spawner binds a task and asks for the start if none is pending; the
//! worker, owing the start from an earlier spawn whose task is done, counts live tasks
//! under `state`, withdraws if there are none, and then counts once more. Afterwards the
//! new task must be covered: the worker started the thread, or the spawner made a new
//! request (which a claimed worker then serves).

use std::sync::atomic::{AtomicBool as StdAtomicBool, Ordering::SeqCst as StdSeqCst};
use std::sync::Arc as StdArc;

use loom::sync::{Arc, Mutex};
use loom::thread;

use super::StartRequest;

struct Model {
    request: StartRequest,
    state: Mutex<()>,
    live: Mutex<usize>,
}

fn run_model(recount: bool) -> bool {
    let lost = StdArc::new(StdAtomicBool::new(false));
    let lost_in = lost.clone();
    // Two threads and a handful of steps: explored without a preemption bound (unless
    // LOOM_MAX_PREEMPTIONS sets one).
    loom::model::Builder::new().check(move || {
        let m = Arc::new(Model {
            request: StartRequest::new(),
            state: Mutex::new(()),
            live: Mutex::new(0),
        });
        // A worker owes the start already (an earlier spawn, whose task has finished).
        m.request.set();
        let spawner = {
            let m = m.clone();
            thread::spawn(move || {
                *m.live.lock().unwrap() += 1; // `OwnedTasks::bind`
                if !m.request.is_set() {
                    let _state = m.state.lock().unwrap();
                    if !m.request.is_set() {
                        m.request.set();
                        return true; // a new request: `hand_duty` claims a worker for it
                    }
                }
                false
            })
        };
        let started = {
            let _state = m.state.lock().unwrap();
            if *m.live.lock().unwrap() > 0 {
                true
            } else {
                m.request.withdraw();
                false
            }
        };
        let started = started || (recount && *m.live.lock().unwrap() > 0);
        let requested_again = spawner.join().unwrap();
        if !started && !requested_again {
            lost_in.store(true, StdSeqCst);
        }
    });
    lost.load(StdSeqCst)
}

#[test]
fn loom_poller_start_is_never_lost() {
    assert!(
        !run_model(true),
        "a spawn's task was left with no poller thread and no request for one"
    );
}

/// The control: without the worker's second count, some execution loses the start (the
/// spawner sees the request still set, the worker counted before the bind). Shows the
/// model can fail.
#[test]
fn loom_poller_start_without_the_recount_is_lost() {
    assert!(run_model(false));
}
