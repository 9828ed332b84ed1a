//! The semaphore's waiter queue: a slab of nodes threaded into a doubly linked FIFO list
//! by index, so a waiter is found, unlinked and freed in O(1) without unsafe code.
//!
//! Invariants: a node is in the list only while it is `Queued`; only the head may hold
//! permits assigned to it (`assigned > 0`), because permits flow to waiters strictly in
//! order; a slot is freed only by the future that owns its index, so an index is never
//! reused while a future still refers to it.

use std::task::Waker;

const NIL: usize = usize::MAX;

/// Where a waiter is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeState {
    /// In the queue, still owed `needed` permits, with `assigned` already handed over.
    Queued { needed: usize, assigned: usize },
    /// Out of the queue with every permit it asked for.
    Granted,
    /// Out of the queue because the semaphore closed; it holds no permits.
    Closed,
}

pub(crate) struct Node {
    pub(crate) state: NodeState,
    pub(crate) waker: Option<Waker>,
    prev: usize,
    next: usize,
}

enum Slot {
    Vacant { next_free: usize },
    Occupied(Node),
}

pub(crate) struct Waitlist {
    slots: Vec<Slot>,
    free: usize,
    head: usize,
    tail: usize,
}

impl Waitlist {
    pub(crate) const fn new() -> Waitlist {
        Waitlist {
            slots: Vec::new(),
            free: NIL,
            head: NIL,
            tail: NIL,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head == NIL
    }

    pub(crate) fn head(&self) -> Option<usize> {
        (self.head != NIL).then_some(self.head)
    }

    /// Queues a waiter at the back and returns its index.
    pub(crate) fn push_back(&mut self, needed: usize, assigned: usize, waker: Waker) -> usize {
        let node = Node {
            state: NodeState::Queued { needed, assigned },
            waker: Some(waker),
            prev: self.tail,
            next: NIL,
        };
        let index = if self.free == NIL {
            self.slots.push(Slot::Occupied(node));
            self.slots.len() - 1
        } else {
            let index = self.free;
            match std::mem::replace(&mut self.slots[index], Slot::Occupied(node)) {
                Slot::Vacant { next_free } => self.free = next_free,
                Slot::Occupied(_) => unreachable!("free list points at an occupied slot"),
            }
            index
        };
        if self.tail == NIL {
            self.head = index;
        } else {
            self.node_mut(self.tail).next = index;
        }
        self.tail = index;
        index
    }

    pub(crate) fn node(&self, index: usize) -> &Node {
        match &self.slots[index] {
            Slot::Occupied(node) => node,
            Slot::Vacant { .. } => unreachable!("waiter index {index} is vacant"),
        }
    }

    pub(crate) fn node_mut(&mut self, index: usize) -> &mut Node {
        match &mut self.slots[index] {
            Slot::Occupied(node) => node,
            Slot::Vacant { .. } => unreachable!("waiter index {index} is vacant"),
        }
    }

    /// Takes a queued node out of the list (its slot stays, for its future to read).
    pub(crate) fn unlink(&mut self, index: usize) {
        let (prev, next) = {
            let node = self.node_mut(index);
            let links = (node.prev, node.next);
            node.prev = NIL;
            node.next = NIL;
            links
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.node_mut(prev).next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.node_mut(next).prev = prev;
        }
    }

    /// Frees an unlinked node's slot and returns the node.
    pub(crate) fn free(&mut self, index: usize) -> Node {
        let slot = std::mem::replace(
            &mut self.slots[index],
            Slot::Vacant {
                next_free: self.free,
            },
        );
        self.free = index;
        match slot {
            Slot::Occupied(node) => node,
            Slot::Vacant { .. } => unreachable!("waiter index {index} freed twice"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waker() -> Waker {
        futures::task::noop_waker()
    }

    fn order(list: &Waitlist) -> Vec<usize> {
        let mut out = Vec::new();
        let mut at = list.head;
        while at != NIL {
            out.push(at);
            at = list.node(at).next;
        }
        out
    }

    #[test]
    fn fifo_unlink_anywhere_and_reuse() {
        let mut list = Waitlist::new();
        let a = list.push_back(1, 0, waker());
        let b = list.push_back(2, 0, waker());
        let c = list.push_back(3, 0, waker());
        assert_eq!(order(&list), vec![a, b, c]);
        list.unlink(b);
        list.free(b);
        assert_eq!(order(&list), vec![a, c]);
        let d = list.push_back(4, 0, waker());
        assert_eq!(d, b, "a freed slot is reused");
        assert_eq!(order(&list), vec![a, c, d]);
        list.unlink(a);
        list.unlink(d);
        assert_eq!(order(&list), vec![c]);
        assert_eq!(list.head(), Some(c));
        list.unlink(c);
        assert!(list.is_empty());
    }
}
