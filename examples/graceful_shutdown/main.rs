//! A TCP echo server that shuts down gracefully: on the signal it stops accepting (new
//! connections are refused), lets the connections in flight finish within a deadline, and
//! aborts the rest. `cargo run --example graceful_shutdown`.
//!
//! The signal here is a `oneshot` fired by the demo client below; with `--until-ctrl-c`
//! it is `runnel::signal::ctrl_c()` (talk to it with `nc 127.0.0.1 PORT`, stop it with
//! Ctrl-C), and with `--serve-for SECS` a timer. `serve` takes any shutdown future.

mod server;

use std::time::Duration;

use futures::channel::oneshot;
use runnel::net::{TcpListener, TcpStream};

#[runnel::main]
async fn main() -> std::io::Result<()> {
    let serve_for = std::env::args()
        .skip_while(|a| a != "--serve-for")
        .nth(1)
        .map(|s| Duration::from_secs(s.parse().expect("--serve-for takes whole seconds")));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    println!("echo server on {addr}");
    let drain = Duration::from_secs(2);

    if std::env::args().any(|a| a == "--until-ctrl-c") {
        let ctrl_c = async {
            runnel::signal::ctrl_c().await.expect("listen for Ctrl-C");
        };
        let report = server::serve(listener, ctrl_c, drain).await?;
        println!("stopped: {report:?}");
        return Ok(());
    }

    if let Some(run_for) = serve_for {
        let report = server::serve(listener, runnel::time::sleep(run_for), drain).await?;
        println!("stopped: {report:?}");
        return Ok(());
    }

    let (stop, stop_rx) = oneshot::channel::<()>();
    let server = runnel::spawn(server::serve(listener, stop_rx, drain));

    // A client in flight when the signal comes...
    let mut client = TcpStream::connect(addr).await?;
    client.write_all(b"before").await?;
    let mut buf = [0u8; 6];
    client.read_exact(&mut buf).await?;
    println!(
        "echoed {:?} before shutdown",
        std::str::from_utf8(&buf).unwrap()
    );

    stop.send(()).expect("server gone");
    println!("shutdown signalled: no new connections; draining for at most {drain:?}");

    // ...is still served while the server drains,
    client.write_all(b"during").await?;
    client.read_exact(&mut buf).await?;
    println!(
        "echoed {:?} during the drain",
        std::str::from_utf8(&buf).unwrap()
    );
    drop(client); // and its end lets the drain finish early.

    let report = server.await??;
    println!("stopped: {report:?}");
    match TcpStream::connect(addr).await {
        Err(e) => println!("a new connection now: {e}"),
        Ok(_) => println!("a new connection was accepted after shutdown (unexpected)"),
    }
    Ok(())
}
