//! HTTP on runnel through hyper, driven by real clients: curl (HTTP/1.1 GET, a 10 MB echo,
//! chunked streaming, keep-alive reuse, HTTP/2 prior knowledge, a client that disconnects
//! mid-body), hyper's own client on runnel (10 000 requests over 64 connections, and
//! HTTP/2 streams), and wrk (seconds of load while a handler deadlocks on a join cycle).
//! The server is `examples/http_server`'s code, included as a module.
//!
//! Every test runs inside `block_on` with the detector set to `Report`, and ends by
//! asserting `deadlock_reports == 0`: the detector must stay silent under HTTP load.
//! curl runs on the blocking pool. Without curl the curl tests print why and pass
//! (`.ci/run` installs it); the same for wrk, which drives the load test.

#[path = "../examples/http_server/app.rs"]
mod app;
mod support;

use std::future::Future;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use runnel::net::TcpStream;
use runnel::{Builder, JoinHandle, MetricsReader, OnDeadlock, Runtime};
use runnel_hyper::{RunnelExecutor, RunnelIo, RunnelTimer};

fn runtime() -> Runtime {
    Builder::new()
        .worker_threads(2)
        .on_deadlock(OnDeadlock::Report)
        .build()
        .unwrap()
}

/// Runs `test` inside `block_on` and checks the detector stayed silent.
fn run<F: Future<Output = ()>>(test: impl FnOnce(MetricsReader) -> F) {
    let rt = runtime();
    rt.block_on(test(rt.handle().metrics_reader()));
    assert_eq!(rt.metrics().deadlock_reports, 0, "the detector reported");
}

struct Served {
    addr: SocketAddr,
    url: String,
    state: Arc<app::State>,
    run: JoinHandle<std::io::Result<()>>,
}

async fn serve() -> Served {
    let server = app::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let state = server.state();
    let run = runnel::spawn(server.run());
    Served {
        addr,
        url: format!("http://{addr}"),
        state,
        run,
    }
}

impl Served {
    /// Shuts the server down gracefully and waits for `run` to return.
    async fn stop(self) {
        self.state.shutdown();
        self.run.await.unwrap().unwrap();
    }
}

fn curl_missing() -> bool {
    let found = Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("SKIPPED: curl is not installed (apt-get install curl; .ci/run does it)");
    }
    !found
}

fn wrk_missing() -> bool {
    // `wrk --version` prints its banner and exits 1; only a failure to start means missing.
    let found = Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        eprintln!("SKIPPED: wrk is not installed (apt-get install wrk; .ci/run does it)");
    }
    !found
}

/// Runs curl on the blocking pool; fails the test if curl fails.
async fn curl(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let curl_args = args.clone();
    let out = runnel::spawn_blocking(move || {
        Command::new("curl")
            .args(["-sS", "--max-time", "60"])
            .args(&curl_args)
            .output()
            .expect("running curl")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Polls `cond` every millisecond (on the runtime's timer) until it holds; fails after
/// 30 s. For conditions nothing signals, like a task count.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        runnel::time::sleep(Duration::from_millis(1)).await;
    }
}

/// `len` deterministic pseudo-random bytes (xorshift), so corruption cannot hide in a
/// repeating pattern.
fn payload(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[test]
fn curl_get() {
    if curl_missing() {
        return;
    }
    run(|_| async {
        let served = serve().await;
        let out = curl(&["-i", &format!("{}/", served.url)]).await;
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nhello, world\n"), "{text}");
        let out = curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{}/nope", served.url),
        ])
        .await;
        assert_eq!(out.stdout, b"404");
        served.stop().await;
    });
}

#[test]
fn curl_post_10_mb_echoed_intact() {
    if curl_missing() {
        return;
    }
    let body = payload(10 * 1024 * 1024);
    let dir = std::env::temp_dir().join(format!("runnel-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sent = dir.join("sent");
    let received = dir.join("received");
    std::fs::write(&sent, &body).unwrap();
    run(|_| async {
        let served = serve().await;
        curl(&[
            "--data-binary",
            &format!("@{}", sent.display()),
            "-H",
            "Content-Type: application/octet-stream",
            "-o",
            received.to_str().unwrap(),
            &format!("{}/echo", served.url),
        ])
        .await;
        served.stop().await;
    });
    let echoed = std::fs::read(&received).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(echoed.len(), body.len());
    assert_eq!(fnv1a(&echoed), fnv1a(&body), "the echoed body differs");
}

#[test]
fn curl_chunked_stream() {
    if curl_missing() {
        return;
    }
    run(|_| async {
        let served = serve().await;
        let out = curl(&["-v", &format!("{}/stream?n=1000", served.url)]).await;
        let headers = String::from_utf8_lossy(&out.stderr).to_ascii_lowercase();
        assert!(
            headers.contains("< transfer-encoding: chunked"),
            "{headers}"
        );
        let expected: String = (0..1000).map(|i| format!("chunk {i}\n")).collect();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
        let out = curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{}/stream?n=x", served.url),
        ])
        .await;
        assert_eq!(out.stdout, b"400");
        served.stop().await;
    });
}

#[test]
fn curl_keep_alive_reuses_one_connection() {
    if curl_missing() {
        return;
    }
    run(|_| async {
        let served = serve().await;
        let url = format!("{}/", served.url);
        let out = curl(&["-v", &url, &url, &url, &url]).await;
        assert_eq!(out.stdout, b"hello, world\n".repeat(4));
        let log = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            log.matches("Re-using existing connection").count(),
            3,
            "{log}"
        );
        assert_eq!(
            served.state.accepted(),
            1,
            "curl opened more than one connection"
        );
        served.stop().await;
    });
}

/// One URL per curl run: curl 7.88 fails to reuse a prior-knowledge HTTP/2 connection
/// ("Error in the HTTP2 framing layer" on the second URL) against tokio + hyper just the
/// same; many streams on one connection are `hyper_http2_client_concurrent_streams`.
#[test]
fn curl_http2_prior_knowledge() {
    if curl_missing() {
        return;
    }
    run(|_| async {
        let served = serve().await;
        let out = curl(&["-v", "--http2-prior-knowledge", &format!("{}/", served.url)]).await;
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(log.contains("< HTTP/2 200"), "{log}");
        assert_eq!(out.stdout, b"hello, world\n");

        let url = format!("{}/stream?n=100", served.url);
        let out = curl(&["-v", "--http2-prior-knowledge", &url]).await;
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(log.contains("< HTTP/2 200"), "{log}");
        let chunks: String = (0..100).map(|i| format!("chunk {i}\n")).collect();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), chunks);
        served.stop().await;
    });
}

/// A client that goes away mid-body, in either direction: the connection task ends and
/// the task count returns to what it was before the client came.
#[test]
fn client_disconnecting_mid_body_leaks_nothing() {
    if curl_missing() {
        return;
    }
    run(|metrics| async move {
        let served = serve().await;
        let baseline = metrics.snapshot().live_tasks;

        // curl reading an endless stream, killed after 64 KiB of it.
        let url = format!("{}/stream?n={}", served.url, app::MAX_CHUNKS);
        runnel::spawn_blocking(move || {
            let mut child = Command::new("curl")
                .args(["-sS", &url])
                .stdout(Stdio::piped())
                .spawn()
                .expect("running curl");
            let mut got = vec![0u8; 64 * 1024];
            child.stdout.take().unwrap().read_exact(&mut got).unwrap();
            assert!(got.starts_with(b"chunk 0\nchunk 1\n"));
            child.kill().unwrap();
            child.wait().unwrap();
        })
        .await
        .unwrap();
        wait_until("the streaming connection's task ended", || {
            metrics.snapshot().live_tasks == baseline
        })
        .await;

        // A request body announced as 10 MB, cut off after 64 KiB (small enough that the
        // write cannot block on a server that stops reading while it echoes).
        let addr = served.addr;
        runnel::spawn_blocking(move || {
            let mut client = std::net::TcpStream::connect(addr).unwrap();
            write!(
                client,
                "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                10 * 1024 * 1024
            )
            .unwrap();
            client.write_all(&payload(64 * 1024)).unwrap();
        })
        .await
        .unwrap();
        let state = served.state.clone();
        wait_until(
            "the echo connection was accepted and its task ended",
            || state.accepted() == 2 && metrics.snapshot().live_tasks == baseline,
        )
        .await;
        served.stop().await;
    });
}

/// hyper's HTTP/1.1 client on runnel: 10 000 requests over 64 keep-alive connections,
/// alternating `GET /` and `POST /echo`, every response's status and body checked.
#[test]
fn hyper_client_10k_requests_over_64_connections() {
    const CONNS: usize = 64;
    const REQUESTS: usize = 10_000;
    run(|_| async {
        let served = serve().await;
        let clients: Vec<_> = (0..CONNS)
            .map(|c| {
                let addr = served.addr;
                let n = REQUESTS / CONNS + usize::from(c < REQUESTS % CONNS);
                runnel::spawn(async move {
                    let stream = TcpStream::connect(addr).await.unwrap();
                    let (mut sender, conn) =
                        hyper::client::conn::http1::handshake(RunnelIo::new(stream))
                            .await
                            .unwrap();
                    let conn = runnel::spawn(conn);
                    for i in 0..n {
                        let (request, expected) = if i % 2 == 0 {
                            let req = hyper::Request::get("/")
                                .header("host", "x")
                                .body(Full::new(Bytes::new()))
                                .unwrap();
                            (req, Bytes::from_static(b"hello, world\n"))
                        } else {
                            let body = Bytes::from(format!("conn {c} request {i}"));
                            let req = hyper::Request::post("/echo")
                                .header("host", "x")
                                .body(Full::new(body.clone()))
                                .unwrap();
                            (req, body)
                        };
                        sender.ready().await.unwrap();
                        let response = sender.send_request(request).await.unwrap();
                        assert_eq!(response.status(), 200);
                        let body = response.into_body().collect().await.unwrap().to_bytes();
                        assert_eq!(body, expected, "connection {c}, request {i}");
                    }
                    drop(sender);
                    conn.await.unwrap().unwrap();
                    n
                })
            })
            .collect();
        let mut answered = 0;
        for client in clients {
            answered += client.await.unwrap();
        }
        assert_eq!(answered, REQUESTS);
        assert_eq!(served.state.accepted(), CONNS);
        served.stop().await;
    });
}

/// hyper's HTTP/2 client on runnel (executor and timer included): 200 concurrent streams
/// on one connection.
#[test]
fn hyper_http2_client_concurrent_streams() {
    run(|_| async {
        let served = serve().await;
        let stream = TcpStream::connect(served.addr).await.unwrap();
        let (sender, conn) = hyper::client::conn::http2::Builder::new(RunnelExecutor)
            .timer(RunnelTimer)
            .handshake(RunnelIo::new(stream))
            .await
            .unwrap();
        let conn = runnel::spawn(conn);
        let streams: Vec<_> = (0..200)
            .map(|i| {
                let mut sender = sender.clone();
                runnel::spawn(async move {
                    let body = Bytes::from(format!("stream {i}"));
                    let req = hyper::Request::post("http://x/echo")
                        .body(Full::new(body.clone()))
                        .unwrap();
                    let response = sender.send_request(req).await.unwrap();
                    assert_eq!(response.version(), hyper::Version::HTTP_2);
                    let got = response.into_body().collect().await.unwrap().to_bytes();
                    assert_eq!(got, body);
                })
            })
            .collect();
        for stream in streams {
            stream.await.unwrap();
        }
        drop(sender);
        conn.await.unwrap().unwrap();
        assert_eq!(served.state.accepted(), 1);
        served.stop().await;
    });
}

/// Graceful shutdown: `GET /shutdown` on a keep-alive connection stops the accept loop;
/// `run` returns once that connection is closed, and new connections are refused.
#[test]
fn graceful_shutdown_on_request() {
    run(|_| async {
        let served = serve().await;
        let stream = TcpStream::connect(served.addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(RunnelIo::new(stream))
            .await
            .unwrap();
        let conn = runnel::spawn(conn);
        let req = hyper::Request::get("/shutdown")
            .header("host", "x")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = sender.send_request(req).await.unwrap();
        assert_eq!(response.status(), 200);
        response.into_body().collect().await.unwrap();
        // The server closes the kept-alive connection instead of waiting for the next request.
        conn.await.unwrap().unwrap();
        served.run.await.unwrap().unwrap();
        assert!(TcpStream::connect(served.addr).await.is_err());
    });
}

/// The tokio-ecosystem path: a crate written against tokio's I/O traits and timer runs on
/// runnel under `async_compat::Compat` (it adapts futures-io to tokio's traits, and enters
/// a tokio context for tokio's timers and reactor).
#[test]
fn tokio_crate_on_runnel_via_async_compat() {
    use async_compat::Compat;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    run(|_| async {
        let listener = runnel::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let echo = runnel::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 5];
            stream.read_exact(&mut buf).await.unwrap();
            stream.write_all(&buf).await.unwrap();
        });
        // "tokio-only code": tokio's extension traits and tokio::time::sleep.
        let tokio_code = async move {
            let mut stream = Compat::new(TcpStream::connect(addr).await.unwrap());
            tokio::time::sleep(Duration::from_millis(1)).await;
            AsyncWriteExt::write_all(&mut stream, b"hello")
                .await
                .unwrap();
            let mut buf = [0u8; 5];
            AsyncReadExt::read_exact(&mut stream, &mut buf)
                .await
                .unwrap();
            buf
        };
        assert_eq!(&Compat::new(tokio_code).await, b"hello");
        echo.await.unwrap();
    });
}

/// A handler-side deadlock (two tasks awaiting each other's `JoinHandle`s) is reported
/// while the server goes on answering every request, and the detector's global check
/// stays silent (the server is waiting for I/O, not stuck).
#[test]
fn a_join_cycle_is_reported_while_the_server_answers() {
    run(|reader| async move {
        let served = serve().await;
        // The stuck pair.
        let (tx_a, rx_a) = futures::channel::oneshot::channel::<JoinHandle<()>>();
        let (tx_b, rx_b) = futures::channel::oneshot::channel::<JoinHandle<()>>();
        let a = runnel::spawn(async move {
            let _ = rx_b.await.unwrap().await;
        });
        let b = runnel::spawn(async move {
            let _ = rx_a.await.unwrap().await;
        });
        tx_a.send(a).unwrap();
        tx_b.send(b).unwrap();
        // One client keeps requesting, before and after the report.
        let stream = TcpStream::connect(served.addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(RunnelIo::new(stream))
            .await
            .unwrap();
        let conn = runnel::spawn(conn);
        let mut answered = 0u32;
        let mut after_report = 0u32;
        while after_report < 100 {
            assert!(answered < 200_000, "no partial deadlock report");
            let request = hyper::Request::get("/")
                .header("host", "x")
                .body(Full::new(Bytes::new()))
                .unwrap();
            sender.ready().await.unwrap();
            let response = sender.send_request(request).await.unwrap();
            assert_eq!(response.status(), 200);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, Bytes::from_static(b"hello, world\n"));
            answered += 1;
            if reader.snapshot().partial_deadlocks >= 1 {
                after_report += 1;
            }
        }
        assert_eq!(reader.snapshot().partial_deadlocks, 1);
        drop(sender);
        conn.await.unwrap().unwrap();
        served.stop().await;
    });
}

/// A wrk process that is interrupted (SIGINT: wrk stops and prints its statistics) when the
/// test has seen enough, and killed if the test fails first.
struct Wrk(Option<std::process::Child>);

impl Wrk {
    fn start(args: &[&str]) -> Wrk {
        let child = Command::new("wrk")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running wrk");
        Wrk(Some(child))
    }

    /// Interrupts wrk and returns what it printed; fails if wrk failed.
    async fn interrupt(mut self) -> String {
        let child = self.0.take().unwrap();
        // SAFETY: kill(2) on our own child's pid, not yet reaped (so not reused).
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
        assert_eq!(rc, 0, "SIGINT to wrk: {}", std::io::Error::last_os_error());
        let out = runnel::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "wrk failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}

impl Drop for Wrk {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `GET /deadlock`: a handler whose work deadlocks. It waits for task A's answer; A first
/// joins task B, and B joins A (each gets the other's `JoinHandle` through a oneshot).
async fn deadlocking_handler() -> hyper::Response<app::Body> {
    use futures::channel::oneshot;
    let (tx_a, rx_a) = oneshot::channel::<JoinHandle<()>>();
    let (tx_b, rx_b) = oneshot::channel::<JoinHandle<()>>();
    let (answer, answered) = oneshot::channel::<()>();
    let a = runnel::spawn(async move {
        let _ = rx_b.await.unwrap().await;
        let _ = answer.send(());
    });
    let b = runnel::spawn(async move {
        let _ = rx_a.await.unwrap().await;
    });
    tx_a.send(a).unwrap();
    tx_b.send(b).unwrap();
    // Never answered: A never finishes (the runtime's shutdown drops this future).
    let _ = answered.await;
    app::hello()
}

/// The example's routes plus `/deadlock`, counting the `GET /` requests answered.
async fn serve_with_a_deadlocking_route(
    listener: runnel::net::TcpListener,
    hellos: Arc<std::sync::atomic::AtomicU64>,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let state = app::State::new();
    let mut builder = hyper_util::server::conn::auto::Builder::new(RunnelExecutor);
    builder.http1().timer(RunnelTimer);
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        let _ = stream.set_nodelay(true);
        let (hellos, state) = (hellos.clone(), state.clone());
        let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
            let (hellos, state) = (hellos.clone(), state.clone());
            async move {
                if req.uri().path() == "/deadlock" {
                    return Ok(deadlocking_handler().await);
                }
                let response = app::route(req, state).await;
                hellos.fetch_add(1, Relaxed);
                response
            }
        });
        let conn = builder
            .serve_connection(RunnelIo::new(stream), service)
            .into_owned();
        runnel::spawn(async move {
            let _ = conn.await;
        });
    }
}

/// Real load while a handler deadlocks: wrk (16 connections) drives `GET /` for at least
/// 3 s while one `GET /deadlock` leaves two tasks joining each other. The cycle is reported
/// once, wrk keeps getting answers after the report (its final count exceeds the requests
/// answered before it by thousands), and over the whole load the detector makes no deadlock
/// report and no stall report.
///
/// Runs in a child process (a runtime bug here would be a hang); the parent checks the
/// report's text on the child's stderr.
#[test]
fn wrk_load_while_a_handler_deadlocks_on_a_join_cycle() {
    const NAME: &str = "wrk_load_while_a_handler_deadlocks_on_a_join_cycle";
    const AFTER_REPORT: u64 = 5_000;
    if !support::is_child(NAME) {
        if wrk_missing() {
            return;
        }
        let child = support::run_child(NAME);
        println!("child stdout:\n{}", child.stdout);
        assert_eq!(child.code, Some(0), "{child:?}");
        assert!(child.stdout.contains("1 passed"), "{child:?}");
        let report = &child.stderr;
        println!("child stderr:\n{report}");
        assert_eq!(report.matches("partial deadlock").count(), 1, "{report}");
        assert!(
            report.contains("partial deadlock: 2 task(s)")
                && report.matches("(spawned at tests/http.rs:").count() >= 2,
            "{report}"
        );
        return;
    }
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    let rt = runtime();
    let reader = rt.handle().metrics_reader();
    rt.block_on(async move {
        let listener = runnel::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hellos = Arc::new(AtomicU64::new(0));
        runnel::spawn(serve_with_a_deadlocking_route(listener, hellos.clone()));
        // At most 2 minutes; interrupted below once the load has shown what it must. A
        // request unanswered for 30 s is a socket error (a slow machine is not).
        let url = format!("http://{addr}/");
        let wrk = Wrk::start(&[
            "-t1",
            "-c16",
            "-d120s",
            "--timeout",
            "30s",
            "--latency",
            &url,
        ]);
        let load_started = Instant::now();
        wait_until("wrk's first 1 000 answers", || {
            hellos.load(Relaxed) >= 1_000
        })
        .await;

        let mut stuck = TcpStream::connect(addr).await.unwrap();
        stuck
            .write_all(b"GET /deadlock HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        wait_until("the join cycle is reported", || {
            reader.snapshot().partial_deadlocks >= 1
        })
        .await;
        let at_report = hellos.load(Relaxed);
        wait_until("wrk's answers after the report, and 3 s of load", || {
            hellos.load(Relaxed) >= at_report + AFTER_REPORT
                && load_started.elapsed() >= Duration::from_secs(3)
        })
        .await;
        let output = wrk.interrupt().await;
        println!("{output}");
        assert!(!output.contains("Non-2xx"), "{output}");
        assert!(!output.contains("Socket errors"), "{output}");
        let completed: u64 = output
            .lines()
            .find_map(|l| l.trim().split_once(" requests in "))
            .unwrap_or_else(|| panic!("no request count in wrk's output: {output}"))
            .0
            .parse()
            .unwrap();
        // At most 16 requests were in flight (answered by the server, not yet counted by
        // wrk) when it stopped.
        assert!(
            completed >= at_report + AFTER_REPORT - 16,
            "wrk completed {completed} requests, {at_report} answered before the report"
        );
        println!("wrk: {completed} requests, {at_report} answered before the report");
        drop(stuck);
    });
    let m = rt.metrics();
    println!("{m:?}");
    assert_eq!(m.partial_deadlocks, 1, "reported once: {m:?}");
    assert_eq!(m.deadlock_reports, 0, "{m:?}");
    assert_eq!(m.stall_reports, 0, "{m:?}");
}
