#!/usr/bin/env python3
"""Plots an apical trace file: a spike raster of the first recorded examples and a histogram
of the plateau differences alpha_target - alpha_forward (what drives hidden learning).

    python3 docs/plot_traces.py runs/<run>/traces.h5 [--out traces.png] [--examples 3]

Needs h5py and numpy; matplotlib is optional (without it, the script prints summaries).
Record a file with e.g.
    apical train --record 'spikes|plateau:examples=last:200'
"""

import argparse

import h5py
import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("--out", default="traces.png")
    ap.add_argument("--examples", type=int, default=3, help="examples in the raster")
    args = ap.parse_args()

    f = h5py.File(args.file, "r")
    pops = f.attrs["populations"].split(",") if isinstance(f.attrs["populations"], str) else \
        f.attrs["populations"].decode().split(",")
    sizes = dict(zip(pops, f.attrs["population_sizes"]))
    print(f"{args.file}: {f.attrs['model_name']}, complete={bool(f.attrs['complete'])}")

    # Time window: the first few recorded examples.
    window = None
    if "examples" in f:
        ex = f["examples"]
        start = ex["start_time"][:]
        dt = float(f.attrs["dt"])
        k = min(args.examples, len(start))
        if k:
            last = k - 1
            end = start[last] + (ex["forward_steps"][last] + ex["target_steps"][last]) * dt
            window = (start[0], end)

    raster = {}
    for pop in pops:
        if "spikes" in f and pop in f["spikes"]:
            t = f["spikes"][pop]["timestamps"][:]
            n = f["spikes"][pop]["node_ids"][:]
            if window:
                m = (t >= window[0]) & (t < window[1])
                t, n = t[m], n[m]
            raster[pop] = (t, n)
            print(f"  spikes {pop}: {len(t)} in the window")

    diffs = {}
    if "plateau" in f:
        for pop, g in f["plateau"].items():
            d = g["target"][:] - g["forward"][:]
            diffs[pop] = d.ravel()
            print(f"  plateau {pop}: {g['forward'].shape[0]} examples, "
                  f"alpha_t - alpha_f mean {d.mean():+.4f}, sd {d.std():.4f}")

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no figure")
        return
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    offset = 0
    for pop in pops:
        if pop not in raster:
            continue
        t, n = raster[pop]
        axes[0].scatter(t, n + offset, s=0.5, label=pop)
        offset += int(sizes[pop])
    axes[0].set_xlabel("time (ms)")
    axes[0].set_ylabel("neuron (populations stacked)")
    axes[0].set_title("spike raster")
    if raster:
        axes[0].legend(markerscale=10, loc="upper right")
    for pop, d in diffs.items():
        axes[1].hist(d, bins=100, histtype="step", label=pop)
    axes[1].set_xlabel("alpha_target - alpha_forward")
    axes[1].set_ylabel("neurons x examples")
    axes[1].set_title("plateau differences")
    if diffs:
        axes[1].legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
