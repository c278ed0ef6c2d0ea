"""Trace files (traces.h5, docs/traces.md) as numpy arrays, read with the HDF5 library the
traces were written with (no h5py needed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from . import _apical

PathLike = Union[str, "os.PathLike[str]"]

#: Compartment codes of report element_ids (docs/traces.md).
ELEMENTS = {0: "soma", 1: "basal", 2: "apical"}


def _path(path: PathLike) -> str:
    p = Path(path)
    if p.is_dir():
        p = p / "traces.h5"
    return os.fspath(p)


def read_spikes(path: PathLike, population: str) -> Tuple[np.ndarray, np.ndarray]:
    """Every recorded spike of ``population`` ("input", "hidden0", ..., "output"):
    (times in ms as float64, node ids as uint64), in time order. ``path`` is a trace file
    or a run directory (its traces.h5)."""
    p = _path(path)
    members = _apical._h5_members(p, "/spikes")
    if population not in members:
        have = ", ".join(members) or "none"
        raise _apical.TraceError(
            f"trace file {p}: no spikes of population {population!r} (recorded: {have}); "
            "train with record=\"spikes\""
        )
    t = _apical._h5_read(p, f"/spikes/{population}/timestamps")
    ids = _apical._h5_read(p, f"/spikes/{population}/node_ids")
    return t, ids


class Traces:
    """An open trace file: what it holds and its arrays, read on demand.

    Attributes: ``path``, ``attrs`` (root attributes: model_name, seed, dt, complete,
    stop_reason, ...), ``populations`` {name: size}, ``spike_populations``, ``reports``
    (populations with potentials), ``rate_populations``, ``plateau_populations``.
    """

    def __init__(self, path: PathLike) -> None:
        self.path = _path(path)
        self.attrs: Dict[str, Any] = dict(_apical._h5_attrs(self.path, "/"))
        names = str(self.attrs.get("populations", "")).split(",")
        sizes = [int(n) for n in np.asarray(self.attrs.get("population_sizes", []))]
        self.populations: Dict[str, int] = dict(zip(names, sizes))
        self.spike_populations: List[str] = list(_apical._h5_members(self.path, "/spikes"))
        self.reports: List[str] = list(_apical._h5_members(self.path, "/report"))
        self.rate_populations: List[str] = list(_apical._h5_members(self.path, "/rates"))
        self.plateau_populations: List[str] = list(_apical._h5_members(self.path, "/plateau"))

    def read(self, name: str) -> np.ndarray:
        """Any dataset by its path in the file, e.g. "/examples/label"."""
        return _apical._h5_read(self.path, name)

    def spikes(self, population: str) -> Tuple[np.ndarray, np.ndarray]:
        """(times_ms, node_ids) of every recorded spike of ``population``."""
        return read_spikes(self.path, population)

    def report(self, population: str) -> Dict[str, Any]:
        """The potentials report of ``population``: {"times": (T,) ms, and per recorded
        compartment ("soma", "basal", "apical") a (T, N) array}."""
        return self._report("/report", population)

    def rates(self, population: str) -> Dict[str, Any]:
        """Firing rates of ``population``: {"times": (T,) ms, "rate_hz": (T, N)}."""
        r = self._report("/rates", population)
        return {"times": r["times"], "rate_hz": r["soma"]}

    def _report(self, root: str, population: str) -> Dict[str, Any]:
        if population not in _apical._h5_members(self.path, root):
            raise _apical.TraceError(f"trace file {self.path}: no {root[1:]} of population {population!r}")
        g = f"{root}/{population}"
        data = self.read(f"{g}/data")
        elements = self.read(f"{g}/mapping/element_ids")
        pointers = self.read(f"{g}/mapping/index_pointers")
        n = len(pointers) - 1
        per_node = int(pointers[1] - pointers[0]) if n > 0 else 0
        out: Dict[str, Any] = {"times": self.read(f"{g}/times")}
        for e in range(per_node):
            name = ELEMENTS.get(int(elements[e]), str(int(elements[e])))
            # Node i's columns are pointers[i]..pointers[i+1]; element e is column i*E+e.
            out[name] = data[:, e::per_node] if per_node > 1 else data
        return out

    def plateau(self, population: str) -> Dict[str, np.ndarray]:
        """Plateau potentials of a hidden population: "forward", "target" (R, N) and
        "example_row" (R,) indexing ``examples``."""
        if population not in _apical._h5_members(self.path, "/plateau"):
            raise _apical.TraceError(
                f"trace file {self.path}: no plateau potentials of population {population!r} "
                f"(recorded: {self.plateau_populations or 'none'}; record them with "
                f"record=\"plateau:layers={population}\")"
            )
        g = f"/plateau/{population}"
        return {k: self.read(f"{g}/{k}") for k in ("forward", "target", "example_row")}

    @property
    def examples(self) -> Dict[str, np.ndarray]:
        """The recorded examples table (epoch, example, image, label, prediction, ...)."""
        return {k: self.read(f"/examples/{k}") for k in _apical._h5_members(self.path, "/examples")}

    @property
    def metrics(self) -> Dict[str, np.ndarray]:
        """Per-epoch metrics (/epochs): epoch, train_error, test_error, rates_hz, ..."""
        return {k: self.read(f"/epochs/{k}") for k in _apical._h5_members(self.path, "/epochs")}

    @property
    def weight_snapshots(self) -> Dict[str, Any]:
        """Weight snapshots (/weights): "epoch", "example", "time" (K,) and per population a
        dict of "W" (K, N, N_pre), "b" (K, N) and for hidden layers "Y", "c"."""
        out: Dict[str, Any] = {}
        for k, kind in _apical._h5_members(self.path, "/weights").items():
            if kind == "dataset":
                out[k] = self.read(f"/weights/{k}")
            else:
                out[k] = {
                    v: self.read(f"/weights/{k}/{v}")
                    for v in _apical._h5_members(self.path, f"/weights/{k}")
                }
        return out

    def model(self) -> "_apical.Model":
        """The model the traces were recorded with (the root attribute model_toml)."""
        return _apical.Model.from_toml(self.attrs["model_toml"], f"{self.path} (model_toml)")

    def __repr__(self) -> str:
        return (
            f"Traces({self.path!r}, model={self.attrs.get('model_name')!r}, "
            f"spikes={self.spike_populations}, reports={self.reports}, "
            f"complete={self.attrs.get('complete')})"
        )


def open_traces(path: PathLike) -> Traces:
    """Opens a trace file (or a run directory's traces.h5): populations, reports, metrics,
    weight snapshots; arrays are read when asked for."""
    return Traces(path)
