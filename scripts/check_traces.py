#!/usr/bin/env python3
"""Validates an apical trace file (traces.h5) against the schema of docs/traces.md.

    python3 scripts/check_traces.py TRACES.h5 [--no-sonata] [--require-sonata]

Checks the layout, types, units, SONATA root attributes and cross-references with h5py, and
reads every spike population with libsonata's SpikeReader and every report with its
ElementReportReader and SomaReportReader, comparing what libsonata returns with h5py's raw
arrays exactly. Files with deflated datasets are checked with h5py only (libsonata's wheels
have no deflate filter); --require-sonata makes that an error (the default compression must
open in libsonata). Exits 1 with a list of problems if anything is off.
"""

import sys

import h5py
import numpy as np

problems = []


def check(cond, msg):
    if not cond:
        problems.append(msg)
    return cond


def attr_str(obj, name):
    v = obj.attrs.get(name)
    if isinstance(v, bytes):
        v = v.decode()
    return v


def need_units(ds, units):
    u = attr_str(ds, "units")
    check(u == units, f"{ds.name}: units attribute is {u!r}, expected {units!r}")


ROOT_ATTRS = [
    "format", "format_version", "apical_version", "model_name", "model_toml", "seed", "dt",
    "time_units", "potential_units", "rate_units", "record_spec", "populations",
    "population_sizes", "start_epoch", "start_example", "start_time", "complete",
    "stop_reason", "last_epoch", "last_example", "end_time", "compression",
]


def filtered(f):
    """Names of the datasets with a deflate filter, and of those with scale-offset."""
    gz, so = [], []
    def visit(n, o):
        if isinstance(o, h5py.Dataset):
            if o.compression == "gzip":
                gz.append(n)
            if o.scaleoffset is not None:
                so.append(n)
    f.visititems(visit)
    return gz, so


def sonata_spikes(reader, pop, t, n):
    sp = reader[pop]
    check(sp.sorting == "by_time", f"libsonata: /spikes/{pop} sorting {sp.sorting}")
    got = sp.get()
    lt = np.array([x[1] for x in got], dtype=np.float64)
    ln = np.array([x[0] for x in got], dtype=np.uint64)
    # libsonata returns spikes in time order; compare as sorted (time, id) pairs.
    a = np.lexsort((n, t))
    b = np.lexsort((ln, lt))
    check(lt.size == t.size and np.array_equal(lt[b], t[a]) and np.array_equal(ln[b], n[a]),
          f"libsonata: /spikes/{pop} differs from the raw arrays ({lt.size} vs {t.size} spikes)")
    if t.size:
        check(sp.times == (t.min(), t.max()), f"libsonata: /spikes/{pop} times {sp.times}")


def sonata_report(path, pop, g, d, tm, nodes, ptr, el, units):
    import libsonata
    r = libsonata.ElementReportReader(path)
    rp = r[pop]
    check(tuple(rp.times) == tuple(tm), f"libsonata: {g.name} times {rp.times}")
    check(rp.time_units == "ms", f"libsonata: {g.name} time units {rp.time_units}")
    check(rp.data_units == units, f"libsonata: {g.name} data units {rp.data_units}")
    frame = rp.get()
    got = np.asarray(frame.data)
    check(got.shape == d.shape and np.array_equal(got, d[:]),
          f"libsonata: {g.name} data differ from the raw array ({got.shape} vs {d.shape})")
    ids = np.asarray(frame.ids)
    want = np.stack([np.repeat(nodes, np.diff(ptr).astype(np.int64)), el], axis=1)
    check(np.array_equal(ids, want), f"libsonata: {g.name} element ids differ")
    if np.all(np.diff(ptr) == 1):
        s = libsonata.SomaReportReader(path)[pop].get()
        check(np.array_equal(np.asarray(s.data), d[:]), f"libsonata soma: {g.name} differs")


def check_file(path, sonata, require_sonata):
    f = h5py.File(path, "r")
    gz, so = filtered(f)
    z = str(attr_str(f, "compression"))
    if sonata and gz:
        # libsonata's PyPI wheels carry an HDF5 without the deflate filter.
        check(not require_sonata, f"deflated datasets, which libsonata cannot read: {gz[:3]}")
        print(f"{path}: deflated datasets; libsonata's wheels cannot read them, checking with h5py only")
        sonata = False
    check(z.startswith("deflate") == bool(gz), f"compression {z!r} but deflated datasets {gz[:3]}")
    check((z == "scaleoffset") == bool(so), f"compression {z!r} but scale-offset datasets {so[:3]}")
    check(all(n.startswith("spikes/") for n in so), f"scale-offset outside /spikes: {so}")
    for a in ROOT_ATTRS:
        check(a in f.attrs, f"root attribute {a!r} is missing")
    version = int(f.attrs.get("format_version", 0))
    if version >= 2:
        # SONATA: every SONATA HDF5 file has `magic` (uint32 0x0A7A) and `version`
        # (uint32 [2]); format 2 also writes the HDF5 1.8 format (superblock version 2, no
        # "open for write" flag that a killed writer would leave).
        for a, want in [("magic", [0x0A7A]), ("version", [0, 1])]:
            v = f.attrs.get(a)
            check(v is not None and np.asarray(v).dtype == np.uint32
                  and np.asarray(v).ravel().tolist() == want, f"root attribute {a} is {v!r}, not uint32 {want}")
        with open(path, "rb") as raw:
            check(raw.read(9)[8] == 2, "superblock version is not 2 (the HDF5 1.8 format)")
    if problems:
        return sonata
    check(attr_str(f, "format") == "apical-traces", "format is not apical-traces")
    check(attr_str(f, "time_units") == "ms", "time_units is not ms")
    pops = attr_str(f, "populations").split(",")
    sizes = [int(s) for s in f.attrs["population_sizes"]]
    check(pops[0] == "input" and pops[-1] == "output" and len(pops) == len(sizes),
          f"populations {pops} / sizes {sizes} are inconsistent")
    check(all(p == f"hidden{i}" for i, p in enumerate(pops[1:-1])), f"hidden names {pops}")
    size = dict(zip(pops, sizes))
    check(isinstance(f.attrs["complete"], (bool, np.bool_)), "complete is not a boolean")
    check("[network]" in attr_str(f, "model_toml"), "model_toml holds no [network] table")
    dt = float(f.attrs["dt"])

    # /examples: one row per recorded example, every column as long.
    n_rows = 0
    if "examples" in f:
        g = f["examples"]
        cols = ["epoch", "example", "image", "label", "prediction", "start_time",
                "forward_steps", "target_steps"]
        lens = {c: g[c].shape[0] for c in cols if check(c in g, f"/examples/{c} missing")}
        check(len(set(lens.values())) <= 1, f"/examples columns differ in length: {lens}")
        n_rows = g["epoch"].shape[0]
        need_units(g["start_time"], "ms")
        st = g["start_time"][:]
        check(np.all(np.diff(st) > 0), "/examples/start_time is not increasing")
        check(np.all(g["label"][:] < 10) and np.all(g["prediction"][:] < 10), "labels >= 10")

    # /spikes: the SONATA spike layout.
    if "spikes" in f:
        reader = None
        if sonata:
            import libsonata
            reader = libsonata.SpikeReader(path)
            check(sorted(reader.get_population_names()) == sorted(f["spikes"].keys()),
                  "libsonata sees other spike populations than h5py")
        for pop, g in f["spikes"].items():
            check(pop in size, f"/spikes/{pop}: not a population of the model")
            ts, ids = g["timestamps"], g["node_ids"]
            check(ts.dtype == np.float64, f"{ts.name} is {ts.dtype}, not float64")
            check(ids.dtype == np.uint64, f"{ids.name} is {ids.dtype}, not uint64")
            need_units(ts, "ms")
            check(ts.shape == ids.shape, f"/spikes/{pop}: timestamps and node_ids differ in length")
            enum = h5py.check_enum_dtype(g.attrs.get_id("sorting").dtype)
            check(enum == {"none": 0, "by_id": 1, "by_time": 2},
                  f"/spikes/{pop}: sorting is not the SONATA enum (got {enum})")
            check(g.attrs["sorting"] == 2, f"/spikes/{pop}: sorting is not by_time")
            t, n = ts[:], ids[:]
            check(np.all(np.diff(t) >= 0), f"/spikes/{pop}: timestamps decrease")
            check(n.size == 0 or n.max() < size.get(pop, 0), f"/spikes/{pop}: node id out of range")
            check(np.all(np.abs(t / dt - np.round(t / dt)) < 1e-9), f"/spikes/{pop}: off the step grid")
            if reader is not None:
                try:
                    sonata_spikes(reader, pop, t, n)
                except Exception as e:  # libsonata raises RuntimeError on bad layouts
                    check(False, f"libsonata cannot read /spikes/{pop}: {e}")

    # /report and /rates: the SONATA report layout.
    for root, units in [("report", attr_str(f, "potential_units")), ("rates", "Hz")]:
        if root not in f:
            continue
        for pop, g in f[root].items():
            d = g["data"]
            m = g["mapping"]
            need_units(d, units)
            check(d.dtype == np.float32 and d.ndim == 2, f"{d.name}: not a 2-D float32 dataset")
            nodes = m["node_ids"][:]
            ptr = m["index_pointers"][:]
            el = m["element_ids"][:]
            check(np.array_equal(nodes, np.arange(size.get(pop, -1))), f"{m.name}/node_ids")
            if version >= 2:
                srt = m["node_ids"].attrs.get("sorted")
                check(srt is not None and bool(srt) and m["node_ids"].attrs.get_id("sorted").dtype == np.bool_,
                      f"{m.name}/node_ids: attribute sorted is {srt!r}, not the boolean true")
            check(ptr.shape[0] == nodes.shape[0] + 1 and ptr[0] == 0 and ptr[-1] == d.shape[1],
                  f"{m.name}/index_pointers do not cover the data columns")
            check(el.shape[0] == d.shape[1] and np.all(el <= 2), f"{m.name}/element_ids")
            tm = m["time"][:]
            need_units(m["time"], "ms")
            times = g["times"][:]
            need_units(g["times"], "ms")
            rows = d.shape[0]
            check(times.shape[0] == rows, f"{g.name}/times has {times.shape[0]} rows, data {rows}")
            check(np.all(np.diff(times) > 0), f"{g.name}/times is not increasing")
            if rows:
                check(tm[0] == times[0] and np.isclose(tm[1], tm[0] + rows * tm[2]),
                      f"{m.name}/time {tm} does not match {rows} rows from {times[0]}")
            if root == "rates":
                check(np.all(d[:] >= 0), f"{d.name}: negative rates")
            if sonata and root == "report" and rows:
                try:
                    sonata_report(path, pop, g, d, tm, nodes, ptr, el, units)
                except Exception as e:
                    check(False, f"libsonata cannot read {g.name}: {e}")

    # /plateau: per recorded example, alpha = sigma(mean apical) of each phase.
    if "plateau" in f:
        for pop, g in f["plateau"].items():
            rows = g["example_row"][:]
            for ph in ["forward", "target"]:
                d = g[ph]
                need_units(d, attr_str(f, "potential_units"))
                check(d.shape == (rows.shape[0], size.get(pop, -1)), f"{d.name} shape {d.shape}")
                v = d[:]
                check(np.all((v > 0) & (v < 1)), f"{d.name}: a plateau outside (0, 1)")
            check(np.all(rows < n_rows) and np.all(np.diff(rows.astype(np.int64)) > 0),
                  f"{g.name}/example_row does not index /examples")

    # /weights: snapshots indexed by epoch and example.
    if "weights" in f:
        g = f["weights"]
        s = g["epoch"].shape[0]
        check(g["example"].shape[0] == s and g["time"].shape[0] == s, "/weights index lengths differ")
        need_units(g["time"], "ms")
        check(np.all(np.diff(g["time"][:]) >= 0), "/weights/time decreases")
        for i, pop in enumerate(pops[1:]):
            if pop not in g:
                continue
            w = g[pop]
            check(w["W"].shape == (s, size[pop], sizes[i]), f"{w.name}/W shape {w['W'].shape}")
            check(w["b"].shape == (s, size[pop]), f"{w.name}/b shape {w['b'].shape}")
            if pop != "output":
                check("Y" in w and w["Y"].shape[:2] == (s, size[pop]), f"{w.name}/Y")
            for k in w:
                need_units(w[k], attr_str(f, "potential_units"))

    # /epochs: one row per finished epoch.
    g = f["epochs"]
    e = g["epoch"].shape[0]
    for c in ["train_examples", "train_error", "test_examples", "test_error", "end_time"]:
        check(g[c].shape == (e,), f"/epochs/{c} shape {g[c].shape}")
    check(g["rates_hz"].shape == (e, len(pops) - 1), f"/epochs/rates_hz shape {g['rates_hz'].shape}")
    need_units(g["train_error"], "%")
    need_units(g["test_error"], "%")
    need_units(g["rates_hz"], "Hz")
    need_units(g["end_time"], "ms")
    if bool(f.attrs["complete"]):
        check(e >= 1 and int(f.attrs["last_epoch"]) == int(g["epoch"][-1]),
              "a complete file's last_epoch is not its last epoch")
    return sonata


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    sonata = "--no-sonata" not in sys.argv
    require = "--require-sonata" in sys.argv
    if len(args) != 1:
        print(__doc__)
        return 2
    sonata_used = check_file(args[0], sonata, require)
    if problems:
        print(f"{args[0]}: {len(problems)} problem(s):")
        for p in problems:
            print(f"  - {p}")
        return 1
    with h5py.File(args[0], "r") as f:
        spikes = {p: g["timestamps"].shape[0] for p, g in f.get("spikes", {}).items()}
    print(f"{args[0]}: layout OK{' (libsonata read it back exactly)' if sonata_used else ' (h5py)'}; spikes {spikes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
