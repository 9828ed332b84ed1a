//! runnel + hyper against tokio + hyper, serving the same handler (`GET /` of
//! `examples/http_server`), measured with `wrk`.
//!
//! ```sh
//! cargo run --release --example http_compare -- [--rounds 3] [--workers 2] \
//!     [--wrk "-t1 -c64 -d10s"]
//! cargo run --release --example http_compare -- --serve runnel|tokio [--addr A] [--workers 2]
//! ```
//!
//! Each server runs in its own child process (this binary with `--serve`), on its own
//! runtime with the same number of workers and hyper_util's auto builder (HTTP/1.1 +
//! HTTP/2) with its runtime's glue. wrk (`apt-get install wrk`) runs against each in turn,
//! alternating, `--rounds` times; the table gives requests/s and the p50/p99 latency wrk
//! reports with `--latency`, and the server's CPU time per request (user + system, from
//! `/proc/PID/stat`), which a busy shared machine disturbs less than throughput. The last
//! two lines give the mean requests/s and CPU per request, and the median p50 and p99 over
//! the rounds, with their runnel/tokio ratios.
//! `--serve` runs one server alone (for `strace -c -f` or a manual client).

#[path = "http_server/app.rs"]
mod app;

use std::net::SocketAddr;
use std::process::Command;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;

fn hello_service() -> impl hyper::service::Service<
    hyper::Request<hyper::body::Incoming>,
    Response = hyper::Response<app::Body>,
    Error = std::convert::Infallible,
    Future = std::future::Ready<Result<hyper::Response<app::Body>, std::convert::Infallible>>,
> + Clone {
    hyper::service::service_fn(|_req| std::future::ready(Ok(app::hello())))
}

/// runnel + hyper: serves the hello handler on `addr` with `workers` workers, forever, on
/// a new thread. Returns the bound address.
fn start_runnel(addr: &str, workers: usize) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    let addr = addr.to_string();
    std::thread::spawn(move || {
        let rt = runnel::Builder::new()
            .worker_threads(workers)
            .disable_deadlock_check_for_benchmarks()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = runnel::net::TcpListener::bind(addr).await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let mut builder = auto::Builder::new(runnel_hyper::RunnelExecutor);
            builder.http1().timer(runnel_hyper::RunnelTimer);
            builder.http2().timer(runnel_hyper::RunnelTimer);
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let _ = stream.set_nodelay(true);
                let conn = builder
                    .serve_connection(runnel_hyper::RunnelIo::new(stream), hello_service())
                    .into_owned();
                runnel::spawn(async move {
                    let _ = conn.await;
                });
            }
        })
    });
    rx.recv().unwrap()
}

/// tokio + hyper: the same, with hyper_util's tokio glue.
fn start_tokio(addr: &str, workers: usize) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    let addr = addr.to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder.http1().timer(TokioTimer::new());
            builder.http2().timer(TokioTimer::new());
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let _ = stream.set_nodelay(true);
                let conn = builder
                    .serve_connection(TokioIo::new(stream), hello_service())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        })
    });
    rx.recv().unwrap()
}

/// A server in a child process.
struct Child {
    process: std::process::Child,
    addr: SocketAddr,
}

impl Child {
    fn start(which: &str, workers: usize) -> Child {
        use std::io::BufRead;
        let mut process = Command::new(std::env::current_exe().unwrap())
            .args(["--serve", which, "--workers", &workers.to_string()])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(process.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line from the {which} server: {line:?}"))
            .parse()
            .unwrap();
        Child { process, addr }
    }

    /// User + system CPU time of the process so far, in clock ticks (1/100 s on Linux).
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.process.id())).unwrap();
        // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

struct Run {
    requests: f64,
    requests_per_sec: f64,
    p50: String,
    p99: String,
}

/// A wrk latency (`812.00us`, `1.25ms`, `2.01s`) in microseconds.
fn micros(latency: &str) -> f64 {
    let (number, scale) = if let Some(n) = latency.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = latency.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = latency.strip_suffix('s') {
        (n, 1e6)
    } else {
        panic!("unexpected latency {latency:?} in wrk's output")
    };
    number.parse::<f64>().expect("a latency") * scale
}

fn wrk(addr: SocketAddr, args: &str) -> Run {
    let out = Command::new("wrk")
        .args(args.split_whitespace())
        .arg("--latency")
        .arg(format!("http://{addr}/"))
        .output()
        .expect("running wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("Non-2xx"), "wrk saw errors: {text}");
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no {prefix:?} in wrk's output: {text}"))
    };
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .unwrap_or_else(|| panic!("no request count in wrk's output: {text}"))
        .0
        .parse()
        .unwrap();
    Run {
        requests,
        requests_per_sec: field("Requests/sec:").parse().unwrap(),
        p50: field("50%"),
        p99: field("99%"),
    }
}

fn main() {
    let mut rounds = 3;
    let mut workers = 2;
    let mut wrk_args = "-t1 -c64 -d10s".to_string();
    let mut serve = None;
    let mut addr = "127.0.0.1:0".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--rounds" => {
                rounds = value
                    .parse()
                    .ok()
                    .filter(|&n: &usize| n > 0)
                    .expect("--rounds N, N >= 1")
            }
            "--workers" => workers = value.parse().expect("--workers N"),
            "--wrk" => wrk_args = value,
            "--serve" => serve = Some(value),
            "--addr" => addr = value,
            _ => panic!("unknown argument {arg}; see the header of examples/http_compare.rs"),
        }
    }
    if let Some(which) = serve {
        let bound = match which.as_str() {
            "runnel" => start_runnel(&addr, workers),
            "tokio" => start_tokio(&addr, workers),
            _ => panic!("--serve runnel|tokio"),
        };
        println!("listening on http://{bound}");
        loop {
            std::thread::park();
        }
    }
    let servers = [
        ("runnel", Child::start("runnel", workers)),
        ("tokio", Child::start("tokio", workers)),
    ];
    println!("wrk {wrk_args} --latency, {workers} workers each, {rounds} alternating rounds");
    println!("| round | server | requests/s | p50 | p99 | server CPU µs/request |");
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    let mut totals = [(0.0f64, 0.0f64); 2];
    // Per server: (p50, p99) of each round, in µs.
    let mut latencies: [Vec<(f64, f64)>; 2] = Default::default();
    for round in 1..=rounds {
        for (i, (name, server)) in servers.iter().enumerate() {
            let before = server.cpu_ticks();
            let run = wrk(server.addr, &wrk_args);
            let cpu_us = (server.cpu_ticks() - before) as f64 * 10_000.0 / run.requests;
            totals[i].0 += run.requests_per_sec;
            totals[i].1 += cpu_us;
            latencies[i].push((micros(&run.p50), micros(&run.p99)));
            println!(
                "| {round} | {name} + hyper | {:.0} | {} | {} | {cpu_us:.1} |",
                run.requests_per_sec, run.p50, run.p99
            );
        }
    }
    let mean = |i: usize| (totals[i].0 / rounds as f64, totals[i].1 / rounds as f64);
    let ((r_rps, r_cpu), (t_rps, t_cpu)) = (mean(0), mean(1));
    println!(
        "mean: runnel {r_rps:.0} requests/s, {r_cpu:.1} µs CPU/request; \
         tokio {t_rps:.0} requests/s, {t_cpu:.1} µs CPU/request \
         (runnel/tokio: requests/s {:.2}, CPU/request {:.2})",
        r_rps / t_rps,
        r_cpu / t_cpu
    );
    // Medians: one disturbed round moves a mean of tail latencies a lot.
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        let mid = values.len() / 2;
        if values.len() % 2 == 0 {
            (values[mid - 1] + values[mid]) / 2.0
        } else {
            values[mid]
        }
    };
    let p50 = |i: usize| median(latencies[i].iter().map(|l| l.0).collect());
    let p99 = |i: usize| median(latencies[i].iter().map(|l| l.1).collect());
    println!(
        "median latency: runnel p50 {:.0} µs, p99 {:.0} µs; tokio p50 {:.0} µs, p99 {:.0} µs \
         (runnel/tokio: p50 {:.2}, p99 {:.2})",
        p50(0),
        p99(0),
        p50(1),
        p99(1),
        p50(0) / p50(1),
        p99(0) / p99(1)
    );
}
