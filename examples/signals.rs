//! A server that stops on Ctrl-C or SIGTERM (`cargo run --example signals`, then
//! Ctrl-C or `kill <pid>`). While it waits, the deadlock detector sees a task waiting for
//! I/O — the listener and the signals — and stays silent.

use std::pin::pin;

use futures::FutureExt;
use runnel::net::TcpListener;
use runnel::signal::unix::{signal, SignalKind};

#[runnel::main]
async fn main() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!(
        "listening on {}; stop with Ctrl-C or `kill {}`",
        listener.local_addr()?,
        std::process::id()
    );
    // Made once, outside the loop: a signal delivered while a connection is handed off
    // is kept for the next `select!`.
    let mut terminate = signal(SignalKind::terminate())?;
    let mut ctrl_c = pin!(runnel::signal::ctrl_c().fuse());
    loop {
        futures::select! {
            accepted = listener.accept().fuse() => {
                let (mut stream, peer) = accepted?;
                runnel::spawn(async move {
                    let _ = stream.write_all(format!("hello, {peer}\n").as_bytes()).await;
                });
            }
            result = ctrl_c => {
                result?;
                println!("Ctrl-C: shutting down");
                break;
            }
            _ = terminate.recv().fuse() => {
                println!("SIGTERM: shutting down");
                break;
            }
        }
    }
    Ok(())
}
