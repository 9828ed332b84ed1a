//! The benchmark harness: the same workloads on runnel, tokio (multi-thread) and smol
//! (`async-executor` on N threads + `async-io`), in one run, as a markdown table.
//!
//! ```text
//! cargo bench --bench harness                    # full run (< 5 min on 2 cores)
//! cargo bench --bench harness -- --smoke         # every workload once, tiny (CI)
//! cargo bench --bench harness -- --only tcp_echo --runtimes runnel   # for profiling
//! cargo bench --bench harness -- --only current_thread   # the one-thread runtimes
//! cargo bench --bench harness -- --only sync     # runnel::sync vs tokio::sync vs async-lock
//! cargo bench --bench harness -- --only tcp_echo --runtimes runnel,tokio,threads
//! ```
//!
//! Options: `--smoke`, `--only ID[,ID…]` (substring of a workload id), `--runtimes
//! NAME[,NAME…]` (runnel, tokio, smol, threads; default all), `--rounds N` (override
//! every workload's), `--workers N` (default 2), `--out PATH` (default
//! `$CARGO_TARGET_DIR/bench-harness.md`, else `target/…`).
//!
//! **The `threads` baseline.** Not a runtime: the TCP echo done with blocking `std::net`
//! threads, one per connection (`tcp::echo_threads`). Only the `tcp_echo` workloads have
//! it (`baselines`); it takes a turn in their rotation like a runtime and gets a table of
//! its own, with each runtime's cost over it (`report::baseline_table`).
//!
//! **Alternation.** A workload runs in rounds; each round starts every runtime in turn,
//! the order rotating by one each round (runnel-tokio-smol, tokio-smol-runnel, …), runs
//! its warm-up and measured iterations and drops it. So a noisy minute on a shared
//! machine lands on all three, and no runtime always follows the same one. Only one
//! runtime is alive at a time. The table reports medians over all samples.
//!
//! **Checks.** Every workload asserts its result (sums over task indices, echoed bytes
//! equal, byte counts equal, no early wakeup), so a broken runtime cannot post a number.

mod current_thread;
mod memory;
mod report;
mod rt;
mod scheduler;
mod support;
mod sync;
mod tcp;
mod timers;

use std::time::{Duration, Instant};

use report::{Metric, Row};
use rt::{Kind, Runtime};
use support::Usage;

/// Worker threads for every runtime (the machine this was tuned on has 2 cores).
const DEFAULT_WORKERS: usize = 2;
/// Idle TCP connections wanted for the memory figure; fewer if the fd limit is lower.
const MEM_CONNS_WANTED: usize = 100_000;
/// File descriptors kept free besides the connections (runtime, listener, stdio).
const FD_RESERVE: usize = 256;
/// A run that takes longer than this has hung (a runtime lost a wakeup): fail instead
/// of letting CI wait for its own timeout. A full run takes about two minutes.
const WATCHDOG_FULL: Duration = Duration::from_secs(600);
const WATCHDOG_SMOKE: Duration = Duration::from_secs(120);

struct Options {
    smoke: bool,
    only: Vec<String>,
    runtimes: Vec<Kind>,
    /// Run the blocking-threads baseline where a workload has one.
    threads: bool,
    rounds: Option<usize>,
    workers: usize,
    out: Option<String>,
    child: Option<(String, Kind, usize)>,
}

fn parse_options() -> Options {
    let mut o = Options {
        smoke: false,
        only: Vec::new(),
        runtimes: Kind::ALL.to_vec(),
        threads: true,
        rounds: None,
        workers: DEFAULT_WORKERS,
        out: None,
        child: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| panic!("{name} needs a value (see benches/harness/main.rs)"))
        };
        match arg.as_str() {
            "--smoke" => o.smoke = true,
            "--only" => o.only.extend(value("--only").split(',').map(str::to_owned)),
            "--runtimes" => {
                let names = value("--runtimes");
                o.threads = names.split(',').any(|n| n == "threads");
                o.runtimes = names
                    .split(',')
                    .filter(|&n| n != "threads")
                    .map(|n| Kind::parse(n).unwrap_or_else(|| panic!("unknown runtime {n}")))
                    .collect();
            }
            "--rounds" => o.rounds = Some(value("--rounds").parse().expect("--rounds N")),
            "--workers" => o.workers = value("--workers").parse().expect("--workers N"),
            "--out" => o.out = Some(value("--out")),
            "--child" => {
                let what = value("--child");
                let kind = Kind::parse(&value("--child")).expect("child runtime");
                let n = value("--child").parse().expect("child count");
                o.child = Some((what, kind, n));
            }
            // cargo bench passes --bench to harness = false targets.
            "--bench" => {}
            other => panic!("unknown argument {other:?} (see benches/harness/main.rs)"),
        }
    }
    o
}

/// Workload sizes: the issue's, or tiny ones for the smoke run.
struct Sizes {
    spawn: usize,
    ping_pong: usize,
    yield_tasks: usize,
    yields: usize,
    chain: usize,
    fan_in: usize,
    sleeps: usize,
    timeout_tasks: usize,
    timeouts_per_task: usize,
    echo: [(usize, usize); 2],
    stream_conns: usize,
    stream_for: Duration,
    mem_tasks: usize,
    mem_conns: usize,
    /// Size of the sync rows (operations per sample, scaled per shape: `sync::Shape::ops`).
    sync: usize,
    /// Full run (the issue's rounds); false: one round of one iteration each (smoke).
    full: bool,
}

impl Sizes {
    fn new(smoke: bool, mem_conns: usize) -> Sizes {
        if smoke {
            Sizes {
                spawn: 100,
                ping_pong: 10,
                yield_tasks: 10,
                yields: 10,
                chain: 10,
                fan_in: 1_000,
                sleeps: 1_000,
                timeout_tasks: 10,
                timeouts_per_task: 10,
                echo: [(2, 100), (4, 50)],
                stream_conns: 2,
                stream_for: Duration::from_millis(50),
                mem_tasks: 1_000,
                mem_conns: mem_conns.min(100),
                sync: 100,
                full: false,
            }
        } else {
            Sizes {
                spawn: 10_000,
                ping_pong: 1_000,
                yield_tasks: 200,
                yields: 1_000,
                chain: 1_000,
                fan_in: 100_000,
                sleeps: 100_000,
                timeout_tasks: 1_000,
                timeouts_per_task: 100,
                echo: [(2, 10_000), (64, 1_000)],
                stream_conns: 16,
                stream_for: Duration::from_secs(2),
                mem_tasks: 100_000,
                mem_conns,
                sync: 100_000,
                full: true,
            }
        }
    }
}

/// One round's samples on one runtime: each sample has one value per metric.
type RoundFn = Box<dyn Fn(Kind) -> Vec<Vec<f64>>>;
/// One round's samples of a baseline without a runtime, shaped like the workload's.
type BaselineFn = Box<dyn Fn() -> Vec<Vec<f64>>>;

struct Workload {
    /// What `--only` matches.
    id: &'static str,
    title: String,
    metrics: Vec<Metric>,
    rounds: usize,
    run: RoundFn,
}

/// Builds a `RoundFn` from a body generic over the runtime type `R`.
macro_rules! per_runtime {
    (|$r:ident| $body:expr) => {
        Box::new(move |kind: Kind| -> Vec<Vec<f64>> {
            match kind {
                Kind::Runnel => {
                    type $r = rt::Runnel;
                    $body
                }
                Kind::Tokio => {
                    type $r = rt::Tokio;
                    $body
                }
                Kind::Smol => {
                    type $r = rt::Smol;
                    $body
                }
            }
        })
    };
}

/// Starts `R`, runs `warmup` unmeasured then `iters` measured iterations of `f`, stops it.
/// Each sample gets the three cost columns appended (`Metric::costs`), from the process's
/// usage around that iteration alone, divided by `ops(sample)` operations.
fn on_fresh<R: Runtime>(
    workers: usize,
    warmup: usize,
    iters: usize,
    ops: impl Fn(&[f64]) -> f64,
    f: impl Fn(&R) -> Vec<f64>,
) -> Vec<Vec<f64>> {
    let rt = R::start(workers);
    for _ in 0..warmup {
        f(&rt);
    }
    let samples = (0..iters).map(|_| costed(&ops, || f(&rt))).collect();
    drop(rt);
    samples
}

/// Runs `f` (one sample) and appends its cost columns.
fn costed(ops: impl Fn(&[f64]) -> f64, f: impl FnOnce() -> Vec<f64>) -> Vec<f64> {
    let before = Usage::now();
    let mut sample = f();
    let cost = Usage::per_op_since(before, ops(&sample));
    sample.extend(cost);
    sample
}

/// `metrics` followed by the cost metrics.
fn with_costs(mut metrics: Vec<Metric>) -> Vec<Metric> {
    metrics.extend(Metric::costs());
    metrics
}

fn workloads(s: &Sizes, workers: usize) -> Vec<Workload> {
    let full = s.full;
    // (rounds, warm-up iterations, measured iterations per round) by workload weight.
    let (light, medium, heavy) = if full {
        ((10, 2, 10), (10, 1, 3), (9, 0, 1))
    } else {
        ((1, 0, 1), (1, 0, 1), (1, 0, 1))
    };
    let ms = || with_costs(vec![Metric::lower("time", "ms")]);
    let mut w = Vec::new();

    let (n, (rounds, warm, iters)) = (s.spawn, light);
    w.push(Workload {
        id: "spawn_many_local",
        title: format!("spawn_many_local ({n} tasks)"),
        metrics: ms(),
        rounds,
        run: per_runtime!(|R| on_fresh::<R>(
            workers,
            warm,
            iters,
            |_| n as f64,
            |rt| vec![scheduler::spawn_many_local(rt, n)]
        )),
    });
    w.push(Workload {
        id: "spawn_many_remote",
        title: format!("spawn_many_remote ({n} tasks)"),
        metrics: ms(),
        rounds,
        run: per_runtime!(|R| on_fresh::<R>(
            workers,
            warm,
            iters,
            |_| n as f64,
            |rt| vec![scheduler::spawn_many_remote(rt, n)]
        )),
    });
    w.push(Workload {
        id: "block_on_spawn_local",
        title: format!("block_on_spawn_local ({n} tasks)"),
        metrics: ms(),
        rounds,
        run: per_runtime!(|R| on_fresh::<R>(
            workers,
            warm,
            iters,
            |_| n as f64,
            |rt| vec![scheduler::block_on_spawn_local(rt, n)]
        )),
    });
    w.push(Workload {
        id: "block_on_spawn_remote",
        title: format!("block_on_spawn_remote ({n} tasks)"),
        metrics: ms(),
        rounds,
        run: per_runtime!(|R| on_fresh::<R>(
            workers,
            warm,
            iters,
            |_| n as f64,
            |rt| vec![scheduler::block_on_spawn_remote(rt, n)]
        )),
    });
    let n = s.ping_pong;
    w.push(Workload {
        id: "ping_pong",
        title: format!("ping_pong ({n} pairs)"),
        metrics: ms(),
        rounds,
        run: per_runtime!(|R| on_fresh::<R>(
            workers,
            warm,
            iters,
            |_| n as f64,
            |rt| vec![scheduler::ping_pong(rt, n)]
        )),
    });
    let (tasks, yields) = (s.yield_tasks, s.yields);
    w.push(Workload {
        id: "yield_many",
        title: format!("yield_many ({tasks} × {yields})"),
        metrics: ms(),
        rounds,
        run: per_runtime!(|R| on_fresh::<R>(
            workers,
            warm,
            iters,
            |_| (tasks * yields) as f64,
            |rt| vec![scheduler::yield_many(rt, tasks, yields)]
        )),
    });
    let n = s.chain;
    w.push(Workload {
        id: "chained_spawn",
        title: format!("chained_spawn ({n})"),
        metrics: ms(),
        rounds,
        run: per_runtime!(|R| on_fresh::<R>(
            workers,
            warm,
            iters,
            |_| n as f64,
            |rt| vec![scheduler::chained_spawn(rt, n)]
        )),
    });

    let (n, (rounds, warm, iters)) = (s.fan_in, medium);
    w.push(Workload {
        id: "fan_in",
        title: format!("fan_in ({n} tasks → 1 channel)"),
        metrics: ms(),
        rounds,
        run: per_runtime!(|R| on_fresh::<R>(
            workers,
            warm,
            iters,
            |_| n as f64,
            |rt| vec![scheduler::fan_in(rt, n)]
        )),
    });
    let plan = timers::sleep_plan(s.sleeps);
    let plan_len = s.sleeps;
    w.push(Workload {
        id: "timer_sleeps",
        title: format!("timer_sleeps ({} × random 0–10 ms)", s.sleeps),
        metrics: with_costs(vec![
            Metric::lower("time", "ms"),
            Metric::lower("late p50", "µs"),
            Metric::lower("late p99", "µs"),
        ]),
        rounds,
        run: per_runtime!(|R| on_fresh::<R>(
            workers,
            warm,
            iters,
            |_| plan_len as f64,
            |rt| { timers::random_sleeps(rt, &plan).to_vec() }
        )),
    });
    let (tasks, per) = (s.timeout_tasks, s.timeouts_per_task);
    w.push(Workload {
        id: "timer_timeouts",
        title: format!("timer_timeouts ({tasks} tasks × {per}, cancelled)"),
        metrics: ms(),
        rounds,
        run: per_runtime!(|R| on_fresh::<R>(
            workers,
            warm,
            iters,
            |_| (tasks * per) as f64,
            |rt| vec![timers::cancelled_timeouts(rt, tasks, per)]
        )),
    });

    // One thread: runnel's and tokio's current-thread runtimes, smol's LocalExecutor.
    w.extend(current_thread::workloads(s));

    // Sync primitives: the columns are primitive families here (see sync.rs).
    w.extend(sync::workloads(s, workers));

    let (rounds, _, _) = heavy;
    for (conns, msgs) in s.echo {
        let warm_msgs = if full { 200 } else { 0 };
        w.push(Workload {
            id: echo_id(conns),
            title: format!("tcp_echo ({conns} conns × {msgs} msgs of 512 B)"),
            metrics: with_costs(vec![
                Metric::higher("rate", "msgs/s"),
                Metric::lower("rtt p50", "µs"),
                Metric::lower("rtt p99", "µs"),
            ]),
            rounds,
            run: per_runtime!(|R| {
                let rt = R::start(workers);
                echo_sample(warm_msgs, conns, msgs, |c, m| tcp::echo(&rt, c, m))
            }),
        });
    }
    let (conns, dur) = (s.stream_conns, s.stream_for);
    w.push(Workload {
        id: "tcp_stream",
        title: format!(
            "tcp_stream ({conns} conns × 64 KiB writes, {:.1} s)",
            dur.as_secs_f64()
        ),
        metrics: with_costs(vec![Metric::higher("throughput", "GB/s")]),
        rounds: if full { 3 } else { 1 },
        run: per_runtime!(|R| on_fresh::<R>(
            workers,
            0,
            1,
            // Operations: 64 KiB writes, from the bytes the sample moved.
            |sample| sample[0] * 1e9 * dur.as_secs_f64() / tcp::CHUNK as f64,
            |rt| vec![tcp::stream(rt, conns, dur)]
        )),
    });

    let mem_rounds = if full { 3 } else { 1 };
    let n = s.mem_tasks;
    w.push(Workload {
        id: "mem_task",
        title: format!("memory: idle task ({n} tasks)"),
        metrics: vec![Metric::lower("RSS per task", "B")],
        rounds: mem_rounds,
        run: Box::new(move |kind| {
            vec![vec![memory::sample_in_child("mem-task", kind, n, workers)]]
        }),
    });
    let n = s.mem_conns;
    w.push(Workload {
        id: "mem_tcp",
        title: format!("memory: idle TCP conn ({n} conns)"),
        metrics: vec![Metric::lower("RSS per conn", "B")],
        rounds: mem_rounds,
        run: Box::new(move |kind| vec![vec![memory::sample_in_child("mem-tcp", kind, n, workers)]]),
    });
    let (rounds, iters) = if full { (10, 10) } else { (1, 1) };
    w.push(Workload {
        id: "startup",
        title: "start-up (build + first task)".to_owned(),
        metrics: with_costs(vec![Metric::lower("time", "µs")]),
        rounds,
        run: per_runtime!(|R| (0..iters)
            .map(|_| costed(|_| 1.0, || vec![memory::startup::<R>(workers)]))
            .collect()),
    });
    w.push(Workload {
        id: "startup_block_on",
        title: "start-up (build + block_on(ready) + drop)".to_owned(),
        metrics: with_costs(vec![Metric::lower("time", "µs")]),
        rounds,
        run: per_runtime!(|R| (0..iters)
            .map(|_| costed(|_| 1.0, || vec![memory::startup_block_on::<R>(workers)]))
            .collect()),
    });
    w
}

fn echo_id(conns: usize) -> &'static str {
    if conns <= 2 {
        "tcp_echo_2"
    } else {
        "tcp_echo_64"
    }
}

/// One echo sample: `warm_msgs` per connection unmeasured (if any), then the measured run
/// with its cost columns. `echo(conns, msgs)` is a runtime's `tcp::echo` or the threads'.
fn echo_sample(
    warm_msgs: usize,
    conns: usize,
    msgs: usize,
    echo: impl Fn(usize, usize) -> [f64; 3],
) -> Vec<Vec<f64>> {
    if warm_msgs > 0 {
        echo(conns, warm_msgs);
    }
    vec![costed(
        |_| (conns * msgs) as f64,
        || echo(conns, msgs).to_vec(),
    )]
}

/// The blocking-threads baselines, by workload id: the TCP echo workloads' only.
fn baselines(s: &Sizes) -> Vec<(&'static str, BaselineFn)> {
    let warm_msgs = if s.full { 200 } else { 0 };
    s.echo
        .iter()
        .map(|&(conns, msgs)| {
            let run: BaselineFn =
                Box::new(move || echo_sample(warm_msgs, conns, msgs, tcp::echo_threads));
            (echo_id(conns), run)
        })
        .collect()
}

/// Runs `w`'s rounds, rotating the runtime order each round; one row per metric. With a
/// `threads` baseline it takes a turn in the rotation too, and its samples come back per
/// metric, in the rows' order.
fn drive(
    w: &Workload,
    kinds: &[Kind],
    rounds: usize,
    threads: Option<&BaselineFn>,
) -> (Vec<Row>, Vec<Vec<f64>>) {
    let mut rows: Vec<Row> = w
        .metrics
        .iter()
        .map(|m| Row {
            workload: w.title.clone(),
            metric: m.clone(),
            samples: Default::default(),
        })
        .collect();
    let mut base = vec![Vec::new(); rows.len()];
    let started = Instant::now();
    let turns = kinds.len() + usize::from(threads.is_some());
    for round in 0..rounds {
        for i in 0..turns {
            let Some(&kind) = kinds.get((round + i) % turns) else {
                let run = threads.expect("the extra turn is the baseline's");
                for sample in run() {
                    assert_eq!(sample.len(), rows.len(), "{}: baseline shape", w.id);
                    for (b, v) in base.iter_mut().zip(sample) {
                        b.push(v);
                    }
                }
                continue;
            };
            for sample in (w.run)(kind) {
                assert_eq!(sample.len(), rows.len(), "{}: sample shape", w.id);
                for (row, v) in rows.iter_mut().zip(sample) {
                    row.samples[kind as usize].push(v);
                }
            }
        }
    }
    let mut medians: Vec<String> = kinds
        .iter()
        .map(|&k| {
            let m = rows[0].median(k).map_or("–".into(), report::fmt_num);
            format!("{} {m}", k.name())
        })
        .collect();
    if threads.is_some() {
        let m = report::median(&base[0]).map_or("–".into(), report::fmt_num);
        medians.push(format!("threads {m}"));
    }
    eprintln!(
        "{:<48} {:>6.1} s   {} ({})",
        w.title,
        started.elapsed().as_secs_f64(),
        medians.join(", "),
        rows[0].metric.unit
    );
    (rows, base)
}

fn run_child(what: &str, kind: Kind, n: usize, workers: usize) {
    match what {
        "mem-task" => match kind {
            Kind::Runnel => memory::child_idle_tasks::<rt::Runnel>(n, workers),
            Kind::Tokio => memory::child_idle_tasks::<rt::Tokio>(n, workers),
            Kind::Smol => memory::child_idle_tasks::<rt::Smol>(n, workers),
        },
        "mem-tcp" => match kind {
            Kind::Runnel => memory::child_idle_tcp::<rt::Runnel>(n, workers),
            Kind::Tokio => memory::child_idle_tcp::<rt::Tokio>(n, workers),
            Kind::Smol => memory::child_idle_tcp::<rt::Smol>(n, workers),
        },
        other => panic!("unknown child {other}"),
    }
}

/// How many idle connections fit: each needs one fd here (client) and one in the child.
fn mem_conns() -> (usize, String) {
    let want_fds = (MEM_CONNS_WANTED + FD_RESERVE) as u64;
    let raised = support::try_raise_hard_fd_limit(want_fds);
    let limit = support::raise_fd_limit() as usize;
    let fit = limit.saturating_sub(FD_RESERVE) / 1000 * 1000;
    let n = MEM_CONNS_WANTED.min(fit).max(100);
    let note = if n < MEM_CONNS_WANTED {
        format!(
            "idle TCP connections: {n}, not {MEM_CONNS_WANTED}: RLIMIT_NOFILE is {limit} and \
             could not be raised{} (client ends are in the parent process, server ends in \
             the measured child, so each side needs one fd per connection)",
            if raised { "" } else { " (setrlimit: EPERM)" }
        )
    } else {
        format!("idle TCP connections: {n} (RLIMIT_NOFILE raised to {limit})")
    };
    (n, note)
}

fn machine_note(workers: usize) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores ({cpu}), {workers} workers per runtime")
}

fn output_path(o: &Options) -> std::path::PathBuf {
    if let Some(p) = &o.out {
        return p.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
        std::path::PathBuf::from,
    );
    target.join("bench-harness.md")
}

fn main() {
    let o = parse_options();
    if let Some((what, kind, n)) = &o.child {
        run_child(what, *kind, *n, o.workers);
        return;
    }
    let started = Instant::now();
    let limit = if o.smoke {
        WATCHDOG_SMOKE
    } else {
        WATCHDOG_FULL
    };
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("harness: still running after {limit:?}: a workload hung; aborting");
        std::process::exit(2);
    });
    let (conns, conn_note) = mem_conns();
    let sizes = Sizes::new(o.smoke, conns);
    let selected: Vec<Workload> = workloads(&sizes, o.workers)
        .into_iter()
        .filter(|w| o.only.is_empty() || o.only.iter().any(|s| w.id.contains(s.as_str())))
        .collect();
    assert!(!selected.is_empty(), "--only matched no workload");
    eprintln!(
        "runnel bench harness: {} mode, {}, runtimes: {}{}",
        if o.smoke { "smoke" } else { "full" },
        machine_note(o.workers),
        o.runtimes
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", "),
        if o.threads { " + threads baseline" } else { "" }
    );
    let baselines = if o.threads {
        baselines(&sizes)
    } else {
        Vec::new()
    };
    let mut rows = Vec::new();
    // (index of the workload's first row in `rows`, its baseline samples per metric)
    let mut based = Vec::new();
    for w in &selected {
        let threads = baselines.iter().find(|(id, _)| *id == w.id).map(|b| &b.1);
        let (w_rows, base) = drive(w, &o.runtimes, o.rounds.unwrap_or(w.rounds), threads);
        if threads.is_some() {
            based.push((rows.len(), base));
        }
        rows.extend(w_rows);
    }
    let elapsed = started.elapsed();
    let mut md = format!(
        "## runnel vs tokio vs smol ({} run)\n\n{}; {conn_note}; whole run {:.0} s.\n\n",
        if o.smoke { "smoke" } else { "full" },
        machine_note(o.workers),
        elapsed.as_secs_f64()
    );
    if selected.iter().any(|w| w.id.starts_with("sync_")) {
        md.push_str(sync::COLUMNS_NOTE);
    }
    md.push_str(&report::table(&rows));
    md.push_str("\n### CPU cost per operation (same samples)\n\n");
    md.push_str(&report::cost_table(&rows));
    if !based.is_empty() {
        let (mut runtime_rows, mut threads) = (Vec::new(), Vec::new());
        for (first, base) in &based {
            for (i, b) in base.iter().enumerate() {
                runtime_rows.push(&rows[first + i]);
                threads.push(b.as_slice());
            }
        }
        md.push_str("\n### Blocking-threads baseline (same rounds)\n\n");
        md.push_str(&report::baseline_table(&runtime_rows, &threads));
    }
    println!("{md}");
    let path = output_path(&o);
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(&path, &md) {
        Ok(()) => eprintln!("table written to {}", path.display()),
        Err(e) => eprintln!("could not write {}: {e}", path.display()),
    }
}
