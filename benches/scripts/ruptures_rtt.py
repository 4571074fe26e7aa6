"""Times Python's ruptures PELT on the labelled RTT traces, for comparison with the analyzer's engine.

Same series as `cargo bench -p cablewatch-benches --bench changepoints` (testdata/rtt-shao/real,
failed pings dropped), same cost family (Gaussian mean and variance: ruptures' "normal" model), the
same minimum segment (2) and every sample a candidate (jump=1), penalty 6 ln(n) like the engine's
level model (`Config::levels`; the default fits a line per segment since issue 16, with 7 ln(n)).
Prints seconds per trace and the total.

    pip install ruptures numpy
    python benches/scripts/ruptures_rtt.py [TRACE_DIR] [--max-traces N]
"""

import glob
import math
import os
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


def main():
    args = sys.argv[1:]
    limit = None
    if "--max-traces" in args:
        i = args.index("--max-traces")
        limit = int(args[i + 1])
        del args[i : i + 2]
    root = os.path.join(os.path.dirname(__file__), "..", "..", "testdata", "rtt-shao", "real")
    directory = args[0] if args else root
    paths = sorted(glob.glob(os.path.join(directory, "*.csv")))[:limit]
    total_s, total_n = 0.0, 0
    for path in paths:
        y = read(path)
        started = time.perf_counter()
        algo = rpt.Pelt(model="normal", min_size=2, jump=1).fit(y)
        cuts = algo.predict(pen=6.0 * math.log(len(y)))
        secs = time.perf_counter() - started
        total_s += secs
        total_n += len(y)
        print(f"{os.path.basename(path):<12} {len(y):>6} samples {secs:8.2f} s {len(cuts) - 1:>4} changes", flush=True)
    print(f"ruptures Pelt(normal, min_size=2, jump=1): {len(paths)} traces, {total_n} samples, "
          f"{total_s:.1f} s, {total_s / len(paths) * 1e3:.0f} ms per series")


if __name__ == "__main__":
    main()
