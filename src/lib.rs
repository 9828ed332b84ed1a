//! runnel: a work-stealing async runtime that reports deadlocks instead of hanging.
