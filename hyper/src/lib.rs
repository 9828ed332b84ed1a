//! hyper 1.x on runnel: the three pieces of `hyper::rt` glue a runtime must provide.
//!
//! - [`RunnelIo`]: wraps any `futures_io::AsyncRead + AsyncWrite` stream (a
//!   `runnel::net::TcpStream`, a split half, a TLS stream) as `hyper::rt::{Read, Write}`.
//! - [`RunnelExecutor`]: `hyper::rt::Executor`, spawning on the current runnel runtime
//!   (HTTP/2 streams, client connection tasks).
//! - [`RunnelTimer`]: `hyper::rt::Timer` over runnel's timer wheel (header-read and
//!   keep-alive timeouts, HTTP/2 pings).
//!
//! Serving HTTP/1.1 and HTTP/2 on one port is `hyper_util::server::conn::auto::Builder`
//! with these three:
//!
//! ```no_run
//! use runnel_hyper::{RunnelExecutor, RunnelIo, RunnelTimer};
//! use hyper_util::server::conn::auto::Builder;
//! # async fn serve(listener: runnel_net::TcpListener) -> std::io::Result<()> {
//! loop {
//!     let (stream, _) = listener.accept().await?;
//!     runnel_executor::spawn(async move {
//!         let service = hyper::service::service_fn(|_req| async {
//!             Ok::<_, std::convert::Infallible>(hyper::Response::new(
//!                 http_body_util::Full::new(bytes::Bytes::from("hello")),
//!             ))
//!         });
//!         let mut builder = Builder::new(RunnelExecutor);
//!         builder.http1().timer(RunnelTimer);
//!         builder.http2().timer(RunnelTimer);
//!         let _ = builder.serve_connection(RunnelIo::new(stream), service).await;
//!     });
//! }
//! # }
//! ```
//!
//! The deadlock detector keeps working: the executor and timer hold no `Handle` (they use
//! whatever runtime the calling task runs on), and a connection task waiting for its
//! socket is an I/O waiter, never a report.

mod executor;
mod io;
mod timer;

pub use executor::RunnelExecutor;
pub use io::RunnelIo;
pub use timer::{RunnelSleep, RunnelTimer};
