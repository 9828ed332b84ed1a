//! A small HTTP/1.1 + HTTP/2 server on runnel and hyper.
//!
//! ```sh
//! cargo run --release --example http_server -- --addr 127.0.0.1:8080 [--workers N]
//! curl http://127.0.0.1:8080/                       # hello
//! curl --data-binary @file http://127.0.0.1:8080/echo
//! curl http://127.0.0.1:8080/stream?n=5             # 5 chunks
//! curl --http2-prior-knowledge http://127.0.0.1:8080/
//! curl http://127.0.0.1:8080/shutdown               # graceful shutdown
//! ```
//!
//! The first line on stdout is `listening on http://ADDR`. runnel has no signal handling
//! yet, so shutdown is `GET /shutdown`; a ctrl-c handler would call `State::shutdown`
//! the same way (see `app.rs`).

mod app;

use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = "127.0.0.1:0".to_string();
    let mut workers = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--addr", Some(value)) => addr = value,
            ("--workers", Some(value)) => workers = Some(value.parse()?),
            _ => {
                return Err(
                    format!("unknown argument {arg:?}; use --addr HOST:PORT [--workers N]").into(),
                )
            }
        }
    }
    let mut builder = runnel::Builder::new();
    if let Some(workers) = workers {
        builder.worker_threads(workers);
    }
    let rt = builder.build()?;
    rt.block_on(async {
        let server = app::bind(&addr).await?;
        println!("listening on http://{}", server.local_addr()?);
        std::io::stdout().flush()?;
        server.run().await?;
        println!("shut down");
        Ok(())
    })
}
