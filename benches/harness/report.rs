//! Samples → the markdown table: per runtime the median and the best sample, and the
//! ratios runnel/peer written as *cost* ratios, so that above 1.0 always means runnel is
//! worse (slower, later, bigger) whichever way the metric points.

use std::fmt::Write;

use crate::rt::Kind;

/// Which direction is good for a metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    Lower,
    Higher,
}

/// One row of the table: a metric of a workload.
#[derive(Clone, Debug)]
pub struct Metric {
    pub label: &'static str,
    pub unit: &'static str,
    pub better: Better,
    /// A cost column (CPU, context switches per operation): goes to the second table.
    pub cost: bool,
}

impl Metric {
    pub const fn lower(label: &'static str, unit: &'static str) -> Metric {
        Metric {
            label,
            unit,
            better: Better::Lower,
            cost: false,
        }
    }

    /// The three cost metrics every timed workload appends (see `support::Usage`).
    pub fn costs() -> [Metric; 3] {
        let cost = |label, unit| Metric {
            cost: true,
            ..Metric::lower(label, unit)
        };
        [
            cost("CPU per op", "µs"),
            cost("vol. ctx sw per 1k ops", "n"),
            cost("invol. ctx sw per 1k ops", "n"),
        ]
    }

    pub const fn higher(label: &'static str, unit: &'static str) -> Metric {
        Metric {
            label,
            unit,
            better: Better::Higher,
            cost: false,
        }
    }
}

/// A metric's samples for each runtime (indexed like `Kind::ALL`).
pub struct Row {
    pub workload: String,
    pub metric: Metric,
    pub samples: [Vec<f64>; 3],
}

impl Row {
    pub fn median(&self, kind: Kind) -> Option<f64> {
        median(&self.samples[kind as usize])
    }

    /// The best sample: the minimum for lower-is-better metrics, the maximum otherwise.
    pub fn best(&self, kind: Kind) -> Option<f64> {
        let s = &self.samples[kind as usize];
        let fold = match self.metric.better {
            Better::Lower => f64::min,
            Better::Higher => f64::max,
        };
        s.iter().copied().reduce(fold)
    }

    /// runnel's cost relative to `peer`'s, from the medians (> 1.0: runnel is worse).
    pub fn cost_ratio(&self, peer: Kind) -> Option<f64> {
        let (r, p) = (self.median(Kind::Runnel)?, self.median(peer)?);
        let ratio = match self.metric.better {
            Better::Lower => r / p,
            Better::Higher => p / r,
        };
        ratio.is_finite().then_some(ratio)
    }
}

pub fn median(samples: &[f64]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let mid = s.len() / 2;
    Some(if s.len() % 2 == 1 {
        s[mid]
    } else {
        (s[mid - 1] + s[mid]) / 2.0
    })
}

/// The `p` quantile (nearest rank) of an ascending slice.
pub fn percentile(sorted: &[u64], p: f64) -> f64 {
    assert!(!sorted.is_empty(), "percentile of nothing");
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64
}

/// Three significant figures, without exponent notation.
pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 1e5 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn cell(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), fmt_num)
}

/// The results table in markdown (the timing metrics).
pub fn table(rows: &[Row]) -> String {
    rows_table(rows.iter().filter(|r| !r.metric.cost))
}

/// The cost table: CPU time of the whole process per operation and context switches per
/// 1000 operations, over the measured part of each sample.
pub fn cost_table(rows: &[Row]) -> String {
    let mut out = rows_table(rows.iter().filter(|r| r.metric.cost));
    out.push_str(
        "\nCPU: user + system time of the whole process (`getrusage(RUSAGE_SELF)`, every \
         thread) over the measured part, divided by the workload's operations (tasks, \
         yields, messages, sleeps, 64 KiB writes, start-ups). Context switches: voluntary \
         (a thread blocked) and involuntary (preempted), per 1000 operations.\n",
    );
    out
}

fn rows_table<'a>(rows: impl Iterator<Item = &'a Row>) -> String {
    let mut out = String::new();
    out.push_str(
        "| workload | metric | runnel median | runnel best | tokio median | tokio best \
         | smol median | smol best | runnel/tokio | runnel/smol | n |\n",
    );
    out.push_str("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for row in rows {
        let arrow = match row.metric.better {
            Better::Lower => "↓",
            Better::Higher => "↑",
        };
        let ratio = |peer| {
            row.cost_ratio(peer).map_or_else(
                || "–".to_owned(),
                |r| {
                    if r > 1.0 {
                        format!("**{r:.2}**")
                    } else {
                        format!("{r:.2}")
                    }
                },
            )
        };
        let n = row.samples.iter().map(Vec::len).max().unwrap_or(0);
        let _ = writeln!(
            out,
            "| {} | {} ({}) {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.workload,
            row.metric.label,
            row.metric.unit,
            arrow,
            cell(row.median(Kind::Runnel)),
            cell(row.best(Kind::Runnel)),
            cell(row.median(Kind::Tokio)),
            cell(row.best(Kind::Tokio)),
            cell(row.median(Kind::Smol)),
            cell(row.best(Kind::Smol)),
            ratio(Kind::Tokio),
            ratio(Kind::Smol),
            n,
        );
    }
    out.push_str(
        "\n↓ lower is better, ↑ higher is better. *best*: the minimum sample for ↓ metrics, \
         the maximum for ↑. Ratios are runnel's cost over the peer's, from the medians \
         (for ↑ metrics: peer / runnel), so **> 1.0 means runnel is worse**. \
         n: samples per runtime.\n",
    );
    out
}

/// The blocking-threads baseline table: for each workload that has one (the TCP echo
/// rows), its samples next to the runtimes' medians, and each runtime's cost over it.
/// `rows[i]` and `threads[i]` are the same metric of the same rounds. Ten cells a line,
/// so `paired.py` (which reads the eleven-cell runtime tables) passes over it.
pub fn baseline_table(rows: &[&Row], threads: &[&[f64]]) -> String {
    let mut out = String::new();
    out.push_str(
        "| workload | metric | threads median | threads best | runnel median | tokio median \
         | smol median | runnel/threads | tokio/threads | n |\n",
    );
    out.push_str("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (row, base) in rows.iter().zip(threads) {
        let arrow = match row.metric.better {
            Better::Lower => "↓",
            Better::Higher => "↑",
        };
        let base_median = median(base);
        let base_best = base.iter().copied().reduce(match row.metric.better {
            Better::Lower => f64::min,
            Better::Higher => f64::max,
        });
        let ratio = |kind| {
            let (k, b) = (row.median(kind), base_median);
            let r = match (k, b, row.metric.better) {
                (Some(k), Some(b), Better::Lower) => k / b,
                (Some(k), Some(b), Better::Higher) => b / k,
                _ => return "–".to_owned(),
            };
            match r {
                r if !r.is_finite() => "–".to_owned(),
                r if r > 1.0 => format!("**{r:.2}**"),
                r => format!("{r:.2}"),
            }
        };
        let _ = writeln!(
            out,
            "| {} | {} ({}) {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.workload,
            row.metric.label,
            row.metric.unit,
            arrow,
            cell(base_median),
            cell(base_best),
            cell(row.median(Kind::Runnel)),
            cell(row.median(Kind::Tokio)),
            cell(row.median(Kind::Smol)),
            ratio(Kind::Runnel),
            ratio(Kind::Tokio),
            base.len(),
        );
    }
    out.push_str(
        "\n*threads*: no runtime, a blocking `std::net` server with one OS thread per \
         connection and one blocking client thread per connection (`tcp::echo_threads`), \
         same listener, messages, check and TCP_NODELAY, run in the same rounds (its turn \
         rotates with the runtimes'). Ratios are the runtime's cost over the threads' \
         (for ↑ metrics: threads / runtime), so **> 1.0 means the runtime is worse**. \
         n: threads samples.\n",
    );
    out
}
