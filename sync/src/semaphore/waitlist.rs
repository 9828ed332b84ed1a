//! A waiter queue (the semaphore's and `Notify`'s): a slab of nodes threaded into a doubly linked FIFO list
//! by index, so a waiter is found, unlinked and freed in O(1) without unsafe code.
//!
//! Invariant: a slot is freed only by the future that owns its index, or (the semaphore's
//! grant) by a caller that at the same time tells that future, through a flag it reads
//! before ever touching its index again, that the slot is gone; so a future never reads
//! or frees a slot that was reused. What a node's state means (and which states are in
//! the list) is up to the user: see the semaphore's `NodeState` and `granted`.

use std::task::Waker;

const NIL: usize = usize::MAX;

pub(crate) struct Node<S> {
    pub(crate) state: S,
    pub(crate) waker: Option<Waker>,
    prev: usize,
    next: usize,
}

enum Slot<S> {
    Vacant { next_free: usize },
    Occupied(Node<S>),
}

pub(crate) struct Waitlist<S> {
    slots: Vec<Slot<S>>,
    free: usize,
    head: usize,
    tail: usize,
}

impl<S> Waitlist<S> {
    pub(crate) const fn new() -> Waitlist<S> {
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

    pub(crate) fn tail(&self) -> Option<usize> {
        (self.tail != NIL).then_some(self.tail)
    }

    /// Queues a waiter at the back and returns its index.
    pub(crate) fn push_back(&mut self, state: S, waker: Option<Waker>) -> usize {
        let node = Node {
            state,
            waker,
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

    pub(crate) fn node(&self, index: usize) -> &Node<S> {
        match &self.slots[index] {
            Slot::Occupied(node) => node,
            Slot::Vacant { .. } => unreachable!("waiter index {index} is vacant"),
        }
    }

    pub(crate) fn node_mut(&mut self, index: usize) -> &mut Node<S> {
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
    pub(crate) fn free(&mut self, index: usize) -> Node<S> {
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

    fn waker() -> Option<Waker> {
        Some(futures::task::noop_waker())
    }

    fn order(list: &Waitlist<u32>) -> Vec<usize> {
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
        let mut list = Waitlist::<u32>::new();
        let a = list.push_back(1, waker());
        let b = list.push_back(2, waker());
        let c = list.push_back(3, waker());
        assert_eq!(order(&list), vec![a, b, c]);
        list.unlink(b);
        list.free(b);
        assert_eq!(order(&list), vec![a, c]);
        let d = list.push_back(4, waker());
        assert_eq!(d, b, "a freed slot is reused");
        assert_eq!(order(&list), vec![a, c, d]);
        list.unlink(a);
        list.unlink(d);
        assert_eq!(order(&list), vec![c]);
        assert_eq!(list.head(), Some(c));
        assert_eq!(list.tail(), Some(c));
        list.unlink(c);
        assert!(list.is_empty());
    }
}
