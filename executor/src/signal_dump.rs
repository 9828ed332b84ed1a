//! `Builder::dump_on_signal`: on each delivery of the chosen signal, print the runtime's
//! task dump (`Handle::dump`) to stderr — Go's SIGQUIT goroutine dump, except that the
//! process keeps running.
//!
//! The listener is a plain thread blocked in a
//! [`SignalListener`](runnel_reactor::signal::SignalListener), not a task awaiting a
//! `Signal`: a task waiting for a signal is an I/O waiter, and the detector never reports
//! a runtime with an I/O waiter, so a listening task would hide every deadlock of a
//! program that opted in. This thread holds no `Handle` (an uncounted `Arc<Shared>`, like
//! `MetricsReader`), no waker and no reactor registration: the detector's rule does not
//! see it. A dump only reads (see `detector::dump`), so printing one changes no count and
//! cannot make a deadlock look like progress.
//!
//! Life: the listener is made in `Builder::build` before the workers start (so a refused
//! signal fails the build), the thread after them; `Runtime::shutdown` closes the
//! listener first and joins the thread (within the shutdown deadline).

use std::io::{self, Write as _};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Instant;

use runnel_reactor::signal::unix::SignalKind;
use runnel_reactor::signal::SignalListener;

use crate::scheduler::Shared;

/// The listening thread of one runtime.
pub(crate) struct DumpOnSignal {
    listener: Arc<SignalListener>,
    thread: Option<JoinHandle<()>>,
}

impl DumpOnSignal {
    /// Starts listening for `kind` (installs the process's handler for it).
    pub(crate) fn listen(kind: SignalKind) -> io::Result<DumpOnSignal> {
        Ok(DumpOnSignal {
            listener: Arc::new(SignalListener::new(kind)?),
            thread: None,
        })
    }

    /// Starts the thread that prints `shared`'s dump on each delivery.
    pub(crate) fn start(
        &mut self,
        shared: &Arc<Shared>,
        builder: thread::Builder,
    ) -> io::Result<()> {
        let listener = self.listener.clone();
        let shared = shared.clone();
        self.thread = Some(builder.spawn(move || {
            while listener.wait().is_some() {
                print_dump(&shared, listener.kind());
            }
        })?);
        Ok(())
    }

    /// Stops listening and joins the thread, giving up at `deadline` (the thread then
    /// finishes the dump it is printing on its own and exits).
    pub(crate) fn stop(mut self, deadline: Option<Instant>) {
        self.listener.close();
        if let Some(thread) = self.thread.take() {
            crate::runtime::join_until(thread, deadline);
        }
    }
}

fn print_dump(shared: &Shared, kind: SignalKind) {
    let dump = crate::detector::dump(shared);
    let text = format!(
        "runnel: signal {}: task dump (Builder::dump_on_signal; the process keeps running)\n{dump}",
        kind.as_raw_value()
    );
    // One write of the whole text, so lines of other threads do not interleave with it;
    // an error (stderr closed) has nowhere to be reported.
    let _ = io::stderr().lock().write_all(text.as_bytes());
}
