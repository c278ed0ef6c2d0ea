#!/usr/bin/env python3
"""Checks an NWB file written by `apical export nwb` against its trace file:

    python3 scripts/check_nwb.py FILE.nwb TRACES.h5

1. pynwb's validator (with the namespaces cached in the file) reports no error;
2. nwbinspector reports nothing CRITICAL (its other findings are printed);
3. Neo's NWBIO reads the file, and every spike train has the spike count of its neuron in
   the trace file (units in population order: input, hidden..., output);
4. pynwb reads the trials (one per recorded example, labels equal) and the units table.
Exits 1 with the problems if anything is off.
"""
import sys
import warnings

import h5py
import numpy as np


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    nwb, traces = sys.argv[1], sys.argv[2]
    problems = []

    import pynwb
    errors = pynwb.validate(path=nwb)
    if isinstance(errors, tuple):  # some versions return (errors, status)
        errors = errors[0]
    if errors:
        problems += [f"pynwb validate: {e}" for e in errors]

    from nwbinspector import Importance, inspect_nwbfile
    messages = list(inspect_nwbfile(nwbfile_path=nwb))
    for m in messages:
        if m.importance == Importance.CRITICAL:
            problems.append(f"nwbinspector CRITICAL: {m.check_function_name} at {m.location}: {m.message}")
    others = sorted({f"{m.importance.name}: {m.check_function_name}" for m in messages
                     if m.importance != Importance.CRITICAL})

    # Spike counts of every neuron in the trace file, in the export's unit order.
    with h5py.File(traces, "r") as t:
        pops = t.attrs["populations"]
        pops = (pops.decode() if isinstance(pops, bytes) else pops).split(",")
        sizes = [int(x) for x in t.attrs["population_sizes"]]
        want = []
        for p, n in zip(pops, sizes):
            if p in t.get("spikes", {}):
                want.append(np.bincount(t["spikes"][p]["node_ids"][:].astype(np.int64), minlength=n))
        want = np.concatenate(want) if want else np.zeros(0, dtype=np.int64)
        labels = t["examples"]["label"][:] if "examples" in t else None

    import neo
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        blocks = neo.io.NWBIO(nwb, mode="r").read_all_blocks()
    trains = [st for b in blocks for s in b.segments for st in s.spiketrains]
    got = np.array([len(st) for st in trains], dtype=np.int64)
    if not np.array_equal(got, want):
        problems.append(f"Neo: {len(got)} spike trains with {got.sum()} spikes; the trace file has "
                        f"{len(want)} neurons with {want.sum()} spikes (or the counts differ per neuron)")

    with pynwb.NWBHDF5IO(nwb, "r") as io:
        f = io.read()
        if labels is not None and not np.array_equal(f.trials["label"][:], labels):
            problems.append("pynwb: trials/label differ from the trace file's examples/label")
        if f.units is not None and len(f.units) != len(want):
            problems.append(f"pynwb: {len(f.units)} units, expected {len(want)}")

    if problems:
        print(f"{nwb}: {len(problems)} problem(s):")
        for p in problems:
            print("  -", p)
        return 1
    print(f"{nwb}: pynwb validator OK, nwbinspector: no CRITICAL ({len(messages)} other findings: "
          f"{'; '.join(others) or 'none'}), Neo: {len(got)} spike trains, {got.sum()} spikes as in the trace file")
    return 0


if __name__ == "__main__":
    sys.exit(main())
