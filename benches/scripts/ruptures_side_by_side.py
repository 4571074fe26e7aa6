"""The analyzer's change-point engine and ruptures' C change-point search, side by side in one run.

Both segment the same series: the 25 labelled RIPE Atlas RTT traces in testdata/rtt-shao/real,
failed pings dropped (the engine skips them as missing values). Only the search is timed, not
reading the files: for ruptures `KernelCPD(kernel="linear", min_size=2).fit(y).predict(pen)` (its
PELT in C; the linear kernel is the least-squares cost of a level per segment), for the engine
`segment()` as the `changepoints` bench times it (spikes set aside, search, small changes merged),
one thread, best of `--reps` runs each. ruptures' penalty is the engine's 7 ln(n) per change on
its scale: the linear-kernel cost is a sum of squares, so 7 ln(n) times the noise variance the
engine estimates (MAD of first differences). The engine solves the harder problem (a line and a
noise level per segment, robust to spikes); the comparison is of time, with each one's change
count printed beside it.

    pip install ruptures numpy
    python benches/scripts/ruptures_side_by_side.py [--reps N] [--rounds N] [--max-traces N]

With --rounds N (default 3) both sides run N times, one after the other, and each trace keeps its
best time on each side: on a shared machine whose speed drifts from minute to minute, neither
side then gains from running in a faster minute.

Runs `cargo bench -p cablewatch-benches --bench changepoints -- --rtt-only --json` for the
engine's side, so run it from the repository (it builds the bench the first time).
"""

import argparse
import glob
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import ruptures as rpt


def read(path):
    values = []
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            fields = line.rstrip("\r\n;").split(";")
            if len(fields) < 3:
                continue
            v = float(fields[1].replace(",", "."))
            if v not in (-3.0, -4.0):
                values.append(v)
    return np.array(values)


def noise_variance(y):
    d = np.diff(y)
    mad = np.median(np.abs(d - np.median(d))) * 1.482602218505602
    return (mad / math.sqrt(2.0)) ** 2 or 1e-12


def ruptures_times(paths, reps):
    rows = []
    for path in paths:
        y = read(path)
        pen = 7.0 * math.log(len(y)) * noise_variance(y)
        best, cuts = float("inf"), []
        for _ in range(reps):
            started = time.perf_counter()
            cuts = rpt.KernelCPD(kernel="linear", min_size=2).fit(y).predict(pen=pen)
            best = min(best, time.perf_counter() - started)
        rows.append((os.path.basename(path), len(y), best * 1e3, len(cuts) - 1))
    return rows


def engine_times(reps, root):
    out = subprocess.run(
        ["cargo", "bench", "-q", "-p", "cablewatch-benches", "--bench", "changepoints", "--",
         "--rtt-only", "--json", "--reps", str(reps)],
        cwd=root, check=True, capture_output=True, text=True,
    ).stdout
    line = next(l for l in out.splitlines() if l.startswith("{"))
    return {t["name"]: t for t in json.loads(line)["traces"]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-traces", type=int)
    args = parser.parse_args()
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    paths = sorted(glob.glob(os.path.join(root, "testdata", "rtt-shao", "real", "*.csv")))[: args.max_traces]
    theirs, ours = None, None
    for _ in range(args.rounds):
        t = ruptures_times(paths, args.reps)
        theirs = t if theirs is None else [min(a, b, key=lambda r: r[2]) for a, b in zip(theirs, t)]
        o = engine_times(args.reps, root)
        ours = o if ours is None else {k: min(ours[k], o[k], key=lambda r: r["ms"]) for k in o}
    print(f"{'trace':<12} {'samples':>7} {'ruptures ms':>12} {'changes':>7} {'engine ms':>10} {'changes':>7} {'ratio':>7}")
    total_r = total_e = 0.0
    ratios = []
    for name, n, ms, changes in theirs:
        e = ours[name]
        ratio = ms / e["ms"]
        ratios.append(ratio)
        total_r += ms
        total_e += e["ms"]
        print(f"{name:<12} {n:>7} {ms:>12.2f} {changes:>7} {e['ms']:>10.2f} {e['changes']:>7} {ratio:>6.1f}x")
    ratios.sort()
    print(f"{len(theirs)} traces: ruptures KernelCPD(linear) {total_r:.1f} ms, engine {total_e:.1f} ms in all; "
          f"engine {total_r / total_e:.1f}x faster in all, median {ratios[len(ratios) // 2]:.1f}x, "
          f"slowest trace {ratios[0]:.1f}x (one thread each, best of {args.reps} in each of {args.rounds} rounds; "
          f"ruptures {rpt.__version__})")


if __name__ == "__main__":
    sys.exit(main())
