//! A TCP proxy with graceful shutdown.
//!
//! ```text
//! cargo run --example proxy -- LISTEN UPSTREAM [--drain-ms N] [--current-thread]
//! cargo run --example proxy -- 127.0.0.1:8080 127.0.0.1:9000
//! ```
//!
//! Every connection accepted on `LISTEN` gets its own connection to `UPSTREAM`, and
//! `runnel::io::copy_bidirectional` copies both ways until both sides have closed (a
//! half-close passes through). On Ctrl-C (SIGINT) or SIGTERM the proxy:
//!
//! 1. stops accepting: the listener is closed, so new connections are refused;
//! 2. lets the open connections finish, for at most the drain deadline (`--drain-ms`,
//!    default 10 000);
//! 3. aborts the connections still open at the deadline (their sockets close);
//! 4. prints `drained N connections, aborted M` and a byte count, and exits 0.
//!
//! `--current-thread` runs it on `Builder::new_current_thread()` (everything on the main
//! thread) instead of the multi-thread runtime. `tests/proxy.rs` runs this binary and
//! stops it with `kill -INT`.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::process::ExitCode;
use std::time::Duration;

use futures::future::{select, Either};
use runnel::net::{TcpListener, TcpStream};
use runnel::signal::unix::{signal, SignalKind};
use runnel::task::JoinSet;

const USAGE: &str = "usage: proxy LISTEN UPSTREAM [--drain-ms N] [--current-thread]";
const DEFAULT_DRAIN: Duration = Duration::from_secs(10);

struct Args {
    listen: String,
    upstream: String,
    drain: Duration,
    current_thread: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut positional = Vec::new();
    let mut drain = DEFAULT_DRAIN;
    let mut current_thread = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--drain-ms" => {
                let ms = args.next().ok_or("--drain-ms needs a value")?;
                let ms = ms.parse().map_err(|e| format!("--drain-ms {ms:?}: {e}"))?;
                drain = Duration::from_millis(ms);
            }
            "--current-thread" => current_thread = true,
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ => positional.push(arg),
        }
    }
    let [listen, upstream] = <[String; 2]>::try_from(positional)
        .map_err(|p| format!("expected LISTEN and UPSTREAM, got {} addresses", p.len()))?;
    Ok(Args {
        listen,
        upstream,
        drain,
        current_thread,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("proxy: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = if args.current_thread {
        runnel::Builder::new_current_thread().build()
    } else {
        runnel::Builder::new().build()
    };
    let result = runtime.and_then(|rt| rt.block_on(run(args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("proxy: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> io::Result<()> {
    // The signal streams are made (and their handlers installed) before the address is
    // printed: from the moment anyone can know the proxy is up, a Ctrl-C is ours and no
    // longer kills the process. (`runnel::signal::ctrl_c()` is the same stream for
    // SIGINT, but installs its handler only when first polled.)
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let shutdown = async {
        let interrupted = pin!(interrupt.recv());
        let terminated = pin!(terminate.recv());
        match select(interrupted, terminated).await {
            Either::Left(_) => "SIGINT",
            Either::Right(_) => "SIGTERM",
        }
    };

    let listener = TcpListener::bind(args.listen.as_str()).await?;
    println!(
        "listening on {}, forwarding to {}",
        listener.local_addr()?,
        args.upstream
    );
    let stats = serve(listener, args.upstream, shutdown, args.drain).await;
    println!(
        "drained {} connections, aborted {}",
        stats.drained, stats.aborted
    );
    println!(
        "served {} connections ({} failed): {} bytes up, {} bytes down",
        stats.accepted, stats.failed, stats.up, stats.down
    );
    Ok(())
}

/// What `serve` did, for the closing lines.
#[derive(Default)]
struct Stats {
    accepted: usize,
    /// Connections that ended on their own after the shutdown signal, within the deadline.
    drained: usize,
    /// Connections still open at the deadline.
    aborted: usize,
    /// Connections that ended with an error (upstream unreachable, a reset).
    failed: usize,
    /// Bytes copied client → upstream and back, over the connections that ended cleanly.
    up: u64,
    down: u64,
}

impl Stats {
    /// Counts a connection's end; `true` if it ended (cleanly or not), `false` if aborted.
    fn count(&mut self, ended: Result<io::Result<(u64, u64)>, runnel::JoinError>) -> bool {
        match ended {
            Ok(Ok((up, down))) => {
                self.up += up;
                self.down += down;
                true
            }
            Ok(Err(e)) => {
                eprintln!("connection: {e}");
                self.failed += 1;
                true
            }
            Err(e) if e.is_cancelled() => false,
            Err(e) => {
                eprintln!("connection task: {e}");
                self.failed += 1;
                true
            }
        }
    }
}

/// Proxies connections from `listener` to `upstream` until `shutdown` completes, then
/// drains for at most `drain`.
async fn serve(
    listener: TcpListener,
    upstream: String,
    shutdown: impl Future<Output = &'static str>,
    drain: Duration,
) -> Stats {
    let mut stats = Stats::default();
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    let signal = loop {
        // Reap connections that ended, so a long-running proxy's set stays small.
        while let Some(ended) = connections.try_join_next() {
            stats.count(ended);
        }
        // `select` polls the signal first, so once it has fired nothing more is accepted;
        // `accept` is cancel-safe, so losing the race to the signal drops no connection.
        let accept = pin!(listener.accept());
        match select(shutdown.as_mut(), accept).await {
            Either::Left((signal, _)) => break signal,
            Either::Right((Ok((client, peer)), _)) => {
                stats.accepted += 1;
                let upstream = upstream.clone();
                connections.spawn(async move {
                    forward(client, &upstream)
                        .await
                        .map_err(|e| io::Error::new(e.kind(), format!("{peer}: {e}")))
                });
            }
            // A failed accept (EMFILE, a reset before accept) ends no one else's service.
            Either::Right((Err(e), _)) => eprintln!("accept: {e}"),
        }
    };
    // Closing the listener is what makes new connections be refused.
    drop(listener);
    println!(
        "{signal}: stopped accepting; draining {} open connections for at most {} ms",
        connections.len(),
        drain.as_millis()
    );
    let _ = runnel::time::timeout(drain, async {
        while let Some(ended) = connections.join_next().await {
            stats.drained += usize::from(stats.count(ended));
        }
    })
    .await;
    // Whatever is left missed the deadline: abort it and wait until every task has
    // stopped (its sockets closed). A task may have finished between the deadline and
    // the abort; `shutdown` discards its result, and it is counted as aborted.
    stats.aborted = connections.len();
    connections.shutdown().await;
    stats
}

/// One proxied connection: connect upstream, copy both ways until both sides closed.
async fn forward(mut client: TcpStream, upstream: &str) -> io::Result<(u64, u64)> {
    let mut server = TcpStream::connect(upstream)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("upstream {upstream}: {e}")))?;
    // Forward small writes at once: batching is the endpoints' business, not the proxy's.
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    runnel::io::copy_bidirectional(&mut client, &mut server).await
}
