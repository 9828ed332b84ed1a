//! Raw-task scenarios under a minimal scheduler (run under Miri too).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::*;

#[derive(Default)]
struct Queue {
    queue: Mutex<VecDeque<Notified<Arc<Queue>>>>,
}

impl Schedule for Arc<Queue> {
    fn schedule(&self, task: Notified<Self>) {
        self.queue.lock().unwrap().push_back(task);
    }
    fn release(&self, _task: &Task<Self>) -> Option<Task<Self>> {
        None
    }
}

fn origin() -> Origin {
    Origin {
        id: Id::next(),
        location: std::panic::Location::caller(),
        owner: 0,
    }
}

#[test]
fn poll_to_completion_and_read_output() {
    let sched = Arc::new(Queue::default());
    let (task, notified, join) = new_task(async { 7 }, sched.clone(), origin());
    drop(task);
    notified.run();
    assert!(join.is_finished());
    let out = futures::executor::block_on(join).unwrap();
    assert_eq!(out, 7);
}
