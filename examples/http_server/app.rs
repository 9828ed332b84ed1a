//! The HTTP server of `examples/http_server`: its routes and its accept loop, as a library
//! module so that `tests/http.rs` and `examples/http_compare.rs` run the same code.
//!
//! Routes: `GET /` hello; `POST /echo` streams the request body back; `GET /stream?n=N`
//! sends N chunks (chunked transfer in HTTP/1.1, DATA frames in HTTP/2); `GET /shutdown`
//! starts a graceful shutdown. HTTP/1.1 (with keep-alive) and HTTP/2 (prior knowledge) on
//! one port, through `hyper_util`'s auto builder with runnel's executor, timer and I/O.
//!
//! Shutdown is graceful: the accept loop stops, every open connection finishes its
//! in-flight requests (HTTP/1 stops keep-alive, HTTP/2 sends GOAWAY), and `run` returns
//! when the last one is closed.

#![allow(dead_code)] // Each includer uses a different part.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::future::{select, Either};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use runnel::net::TcpListener;
use runnel_hyper::{RunnelExecutor, RunnelIo, RunnelTimer};

/// The body every route answers with.
pub type Body = UnsyncBoxBody<Bytes, hyper::Error>;

/// The most chunks `/stream` sends; more is a 400 (a typo must not start an endless reply).
pub const MAX_CHUNKS: u64 = 10_000_000;

/// What the routes and the accept loop share.
#[derive(Debug)]
pub struct State {
    accepted: AtomicUsize,
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl State {
    pub fn new() -> Arc<State> {
        Arc::new(State {
            accepted: AtomicUsize::new(0),
            shutdown: tokio::sync::watch::Sender::new(false),
        })
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Starts a graceful shutdown (idempotent). This is where a ctrl-c handler plugs in:
    /// `runnel::spawn(async move { ctrl_c().await; state.shutdown() })` once runnel has
    /// signals.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    fn stopping(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.shutdown.subscribe();
        async move {
            // An error means the sender is gone, which also means stop.
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }
}

/// A bound server, not yet serving.
pub struct Server {
    listener: TcpListener,
    state: Arc<State>,
}

/// Binds `addr` (e.g. `127.0.0.1:0`).
pub async fn bind(addr: &str) -> io::Result<Server> {
    Ok(Server {
        listener: TcpListener::bind(addr).await?,
        state: State::new(),
    })
}

impl Server {
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn state(&self) -> Arc<State> {
        self.state.clone()
    }

    /// Serves until [`State::shutdown`], then waits for open connections to finish.
    pub async fn run(self) -> io::Result<()> {
        let Server { listener, state } = self;
        let mut builder = auto::Builder::new(RunnelExecutor);
        builder.http1().timer(RunnelTimer);
        builder.http2().timer(RunnelTimer);
        let graceful = GracefulShutdown::new();
        let mut stopping = pin!(state.stopping());
        loop {
            let accepted = match select(pin!(listener.accept()), stopping.as_mut()).await {
                Either::Left((accepted, _)) => accepted,
                Either::Right(((), _)) => break,
            };
            let stream = match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    eprintln!("accept failed: {e}");
                    runnel::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let route_state = state.clone();
            let service = hyper::service::service_fn(move |req| route(req, route_state.clone()));
            let conn = builder
                .serve_connection_with_upgrades(RunnelIo::new(stream), service)
                .into_owned();
            let conn = graceful.watch(conn);
            runnel::spawn(async move {
                // A peer that resets or disconnects mid-request is routine for a server.
                let _ = conn.await;
            });
            // Counted after the spawn: a test that sees the count also sees the task.
            state.accepted.fetch_add(1, Ordering::Relaxed);
        }
        drop(listener);
        graceful.shutdown().await;
        Ok(())
    }
}

/// The routes.
pub async fn route(
    req: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<Body>, Infallible> {
    let response = match (req.method(), req.uri().path()) {
        (&Method::GET, "/") => hello(),
        (&Method::POST, "/echo") => Response::new(req.into_body().boxed_unsync()),
        (&Method::GET, "/stream") => match chunk_count(req.uri().query()) {
            Ok(n) => Response::new(chunks(n)),
            Err(message) => text(StatusCode::BAD_REQUEST, message),
        },
        (&Method::GET, "/shutdown") => {
            state.shutdown();
            text(StatusCode::OK, "shutting down\n".into())
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    };
    Ok(response)
}

/// `GET /`: the handler the load comparison measures.
pub fn hello() -> Response<Body> {
    text(StatusCode::OK, "hello, world\n".into())
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
}

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn chunk_count(query: Option<&str>) -> Result<u64, String> {
    let usage = || format!("use /stream?n=COUNT with COUNT from 0 to {MAX_CHUNKS}\n");
    let n = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("n="))
        .ok_or_else(usage)?;
    match n.parse::<u64>() {
        Ok(n) if n <= MAX_CHUNKS => Ok(n),
        _ => Err(usage()),
    }
}

/// `n` chunks `chunk I\n`, each produced after a yield, so they leave as separate writes.
fn chunks(n: u64) -> Body {
    let stream = futures::stream::unfold(0u64, move |i| async move {
        if i == n {
            return None;
        }
        runnel::task::yield_now().await;
        let frame = Frame::data(Bytes::from(format!("chunk {i}\n")));
        Some((Ok::<_, hyper::Error>(frame), i + 1))
    });
    StreamBody::new(stream).boxed_unsync()
}
