//! The graceful-shutdown echo server, as a function the example and
//! `tests/graceful_shutdown.rs` both run.
//!
//! Shape: accept connections into a `JoinSet` until the shutdown signal fires; then close
//! the listener (new connections are refused), let the connections in flight finish until
//! a drain deadline, and abort whatever is left after it. Nothing here waits forever: the
//! drain is bounded by `runnel::time::timeout`, and the abort of the stragglers is awaited
//! with `JoinSet::shutdown`, which returns once every task has stopped.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::time::Duration;

use futures::future::{select, Either};
use runnel::net::{TcpListener, TcpStream};
use runnel::task::JoinSet;

/// What a `serve` run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Connections accepted.
    pub accepted: usize,
    /// Connections that ended on their own (the client closed), before or during the drain.
    pub completed: usize,
    /// Connections still open at the drain deadline, aborted.
    pub aborted: usize,
}

/// Echoes on `listener` until `shutdown` completes, then drains for at most `drain`.
///
/// `shutdown` is any future: a `futures::channel::oneshot::Receiver`, a timer, or, once
/// runnel has signal handling, `runnel::signal::ctrl_c()` (that is where Ctrl-C plugs in).
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future,
    drain: Duration,
) -> io::Result<Report> {
    let mut report = Report::default();
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        // Reap connections that ended, so a long-running server's set stays small.
        while let Some(ended) = connections.try_join_next() {
            count(&mut report, ended);
        }
        // The signal is polled first, so once it has fired no connection is accepted.
        // `accept` is cancel-safe: losing the race to the signal drops no connection.
        let accept = pin!(listener.accept());
        match select(shutdown.as_mut(), accept).await {
            Either::Left(_) => break,
            Either::Right((Ok((stream, _peer)), _)) => {
                report.accepted += 1;
                connections.spawn(echo(stream));
            }
            // A failed accept (EMFILE, a reset before accept) ends no one else's service.
            Either::Right((Err(e), _)) => eprintln!("accept: {e}"),
        }
    }
    // Closing the listener is what makes new connections be refused.
    drop(listener);
    let drained = runnel::time::timeout(drain, async {
        while let Some(ended) = connections.join_next().await {
            count(&mut report, ended);
        }
    })
    .await;
    if drained.is_err() {
        report.aborted = connections.len();
        connections.shutdown().await;
    }
    Ok(report)
}

fn count(report: &mut Report, ended: Result<io::Result<()>, runnel::JoinError>) {
    match ended {
        Ok(Ok(())) => report.completed += 1,
        Ok(Err(e)) => {
            eprintln!("connection: {e}");
            report.completed += 1;
        }
        Err(e) => eprintln!("connection task: {e}"),
    }
}

/// Echoes until the client closes its side.
async fn echo(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
    }
}
