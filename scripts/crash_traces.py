#!/usr/bin/env python3
"""Kills a recording `apical train --record spikes` run with SIGKILL at random moments and
checks each left-over traces.h5 with PLAIN h5py (h5py.File(path, "r"): no h5clear, no SWMR):
it opens, /spikes/<pop>/timestamps and node_ids read whole, and their rows are the first
rows of what an uninterrupted run with the same seed wrote; every row that a flush had
written more than a second before the kill is there (from the recorder's flush log,
APICAL_TRACE_FLUSH_LOG); `apical inspect` reads the run directory (docs/traces.md, Crash
safety).

    python3 scripts/crash_traces.py APICAL_BINARY MNIST_DIR [KILLS] [EXAMPLES]
"""
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np


def train(apical, data, out, examples, env=None):
    return subprocess.Popen(
        [apical, "train", "--epochs", "1", "--train-examples", str(examples), "--test-examples", "10",
         "--seed", "3", "--threads", "1", "--record", "spikes", "--quiet", "--data", data, "--out", out],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def spikes(path):
    with h5py.File(path, "r") as f:  # plain: no swmr, no flag clearing
        order = f.attrs["populations"]
        order = order.decode() if isinstance(order, bytes) else order
        g = f.get("spikes", {})
        return [(p, g[p]["timestamps"][:], g[p]["node_ids"][:]) for p in order.split(",") if p in g]


def flushed_before(log, before_ms):
    rows = []
    if os.path.exists(log):
        for line in open(log):
            parts = line.split()
            if parts and int(parts[0]) <= before_ms:
                rows = [int(x) for x in parts[1:]]
    return rows


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    apical, data = sys.argv[1], sys.argv[2]
    kills = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    examples = int(sys.argv[4]) if len(sys.argv) > 4 else 1500
    rng = random.Random(int(os.environ.get("APICAL_CRASH_SEED", "2017")))
    tmp = tempfile.mkdtemp(prefix="apical-crash-")
    problems = []
    try:
        ref = os.path.join(tmp, "reference")
        t0 = time.time()
        if train(apical, data, ref, examples).wait() != 0:
            print("the uninterrupted run failed")
            return 1
        wall = time.time() - t0
        full = spikes(os.path.join(ref, "traces.h5"))
        rows = old_rows = files = early = 0
        for k in range(kills):
            out, log = os.path.join(tmp, f"killed{k}"), os.path.join(tmp, f"flushes{k}.log")
            delay = rng.uniform(0, 1.05 * wall)
            p = train(apical, data, out, examples, dict(os.environ, APICAL_TRACE_FLUSH_LOG=log))
            time.sleep(delay)
            killed_ms = int(time.time() * 1000)
            p.kill()
            p.wait()
            what = f"kill {k} after {delay:.2f} s"
            if not os.path.isdir(out):
                early += 1  # killed before the run created its directory: nothing written
                continue
            r = subprocess.run([apical, "inspect", out], capture_output=True, text=True)
            if r.returncode != 0:
                problems.append(f"{what}: apical inspect failed: {r.stderr.strip()[-300:]}")
            path = os.path.join(out, "traces.h5")
            if not os.path.exists(path):
                continue
            files += 1
            try:
                got = spikes(path)
            except Exception as e:  # h5py raises OSError/KeyError on unreadable files
                problems.append(f"{what}: plain h5py cannot read the file: {e}")
                continue
            old = flushed_before(log, killed_ms - 1000)
            for i, ((pop, t, n), (rpop, rt, rn)) in enumerate(zip(got, full)):
                m = len(t)
                if pop != rpop or len(n) != m or m > len(rt) or not (
                        np.array_equal(t, rt[:m]) and np.array_equal(n, rn[:m])):
                    problems.append(f"{what}: /spikes/{pop}: {m} rows are not the full run's first rows")
                if i < len(old):
                    old_rows += old[i]
                    if m < old[i]:
                        problems.append(f"{what}: /spikes/{pop}: {old[i]} rows flushed a second before the kill, {m} left")
                rows += m
        print(f"crash check: {kills} kills ({early} before the run directory existed), {files} left a traces.h5; {rows} spike rows compared with the "
              f"uninterrupted run with plain h5py, {old_rows} of them flushed more than a second before their kill")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for p in problems:
        print("  -", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
