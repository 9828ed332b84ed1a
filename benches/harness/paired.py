#!/usr/bin/env python3
"""Paired comparison of harness binaries on a noisy machine.

    python3 benches/harness/paired.py WORKLOADS N BINARY [BINARY ...]

Runs each binary N times with `--only WORKLOADS --rounds 1` (all three runtimes in each
invocation), alternating the binaries and rotating their order, and prints per binary
and workload the median over invocations of runnel's median, of runnel/tokio and of
runnel/smol (each ratio taken inside one invocation, so load that lands on one
invocation lands on all three runtimes). Ratios > 1.0 mean runnel is worse (for rates,
peer / runnel). Binaries: harness executables, e.g. copies of
target/release/deps/harness-* built from two commits.
"""
import os
import statistics
import subprocess
import sys
import tempfile


def parse(path):
    rows = {}
    for line in open(path):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 11 or cells[2] == "runnel median" or cells[2].startswith("-"):
            continue
        metric = cells[1].split(" ")[0]
        if metric not in ("time", "CPU", "rate", "RSS"):
            continue

        def num(text):
            text = text.replace("*", "")
            scale = 1000 if text.endswith("k") else 1
            try:
                return float(text.rstrip("k")) * scale
            except ValueError:
                return None

        rows[(cells[0].split(" (")[0], metric)] = (num(cells[2]), num(cells[4]), num(cells[6]))
    return rows


def main():
    workloads, n, binaries = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    results = {b: {} for b in binaries}
    out = os.path.join(tempfile.mkdtemp(), "table.md")
    for k in range(n):
        for j in range(len(binaries)):
            binary = binaries[(j + k) % len(binaries)]
            subprocess.run(
                [binary, "--only", workloads, "--rounds", "1", "--out", out],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=True,
            )
            for key, value in parse(out).items():
                results[binary].setdefault(key, []).append(value)
    for binary in binaries:
        print(f"== {binary} ({n} invocations)")
        for (name, metric), values in sorted(results[binary].items()):
            higher = metric == "rate"
            rt = [t / r if higher else r / t for r, t, s in values if r and t]
            rs = [s / r if higher else r / s for r, t, s in values if r and s]
            runnel = statistics.median(v[0] for v in values if v[0] is not None)
            print(
                f"  {name:24s} {metric:5s} runnel {runnel:9.3f}  "
                f"r/tokio {statistics.median(rt):.2f}  r/smol {statistics.median(rs):.2f}"
            )


if __name__ == "__main__":
    main()
