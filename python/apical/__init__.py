"""apical: spiking two-compartment neurons that learn MNIST with local rules.

Guerguiev, Lillicrap & Richards, "Towards deep learning with segregated dendrites"
(eLife 2017), simulated by the apical Rust library; this package drives it from Python
(docs/python.md). The numbers are the command line's: ``apical.train`` and ``apical train``
with the same model, seed and counts write byte-identical checkpoints.

>>> import apical
>>> m = apical.Model.default().with_overrides({"network.hidden": [100]})
>>> run = apical.train(m, epochs=1, train_examples=2000, test_examples=500, out="runs/x")
>>> net = apical.Network.from_run(run.dir)
>>> net.evaluate(test_examples=1000)["error"]
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from . import _apical
from ._apical import (
    ApicalError,
    CheckpointError,
    ConfigError,
    DataError,
    Dataset,
    Model,
    Network,
    TraceError,
    TrainError,
    __version__,
)
from ._mnist import fetch_mnist
from ._traces import Traces, open_traces, read_spikes

__all__ = [
    "ApicalError",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "Dataset",
    "Model",
    "Network",
    "Run",
    "TraceError",
    "TrainError",
    "Traces",
    "fetch_mnist",
    "open_traces",
    "read_spikes",
    "resume",
    "train",
    "__version__",
]

PathLike = Union[str, "os.PathLike[str]"]


class Run:
    """A run directory (what ``apical.train`` returns): metrics, checkpoints, traces.

    ``status`` is ``"completed"``, ``"stopped"`` (the callback returned False) or
    ``"interrupted"``; a run that is not complete continues with ``apical.resume(run.dir)``.
    """

    def __init__(
        self,
        dir: PathLike,
        status: str = "completed",
        detail: str = "",
        traces: Optional[PathLike] = None,
        trace_warning: Optional[str] = None,
    ) -> None:
        self.dir = Path(dir)
        self.status = status
        self.detail = detail
        self.traces = Path(traces) if traces is not None else None
        self.trace_warning = trace_warning

    @property
    def metrics(self) -> List[Dict[str, Any]]:
        """Per-epoch metrics, as metrics.json holds them (epoch, train_error, test_error, ...).

        The first row, epoch 0, is the test of the initial network before training (unless
        the model sets ``training.test_initial = false``): its ``train_error``, times of
        training and ``rates_hz`` are None or empty, as nothing was trained.
        """
        p = self.dir / "metrics.json"
        if not p.exists():
            return []
        with open(p) as f:
            return json.load(f)

    @property
    def info(self) -> Dict[str, Any]:
        """run.json: seed, epochs, example counts, data folder, apical version."""
        with open(self.dir / "run.json") as f:
            return json.load(f)

    @property
    def model(self) -> Model:
        """The model as run (model.toml of the run directory)."""
        return Model.load(self.dir / "model.toml")

    @property
    def checkpoints(self) -> List[Path]:
        """The checkpoint files, oldest first."""

        def order(p: Path) -> Tuple[int, int]:
            parts = p.stem.split("-")
            # checkpoint-epoch-N or checkpoint-epoch-N-example-K
            epoch = int(parts[2])
            example = int(parts[4]) if len(parts) > 4 else 1 << 62
            return (epoch, example)

        files = [p for p in self.dir.glob("checkpoint-epoch-*.bin")]
        return sorted(files, key=order)

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    def network(self, **kwargs: Any) -> "Network":
        """The network of the latest checkpoint (``Network.from_run``)."""
        return Network.from_run(self.dir, **kwargs)

    def open_traces(self) -> Traces:
        """The run's trace file (traces.h5)."""
        return open_traces(self.traces if self.traces is not None else self.dir / "traces.h5")

    def __repr__(self) -> str:
        trained = sum(1 for m in self.metrics if m["epoch"] > 0)
        return f"Run({str(self.dir)!r}, status={self.status!r}, epochs={trained})"


def train(
    model: Optional[Model] = None,
    *,
    epochs: Optional[int] = None,
    train_examples: Optional[int] = None,
    test_examples: Optional[int] = None,
    seed: int = 0,
    out: Optional[PathLike] = None,
    record: Optional[Union[str, Sequence[str]]] = None,
    threads: Optional[int] = None,
    progress: bool = True,
    data: Optional[Union[PathLike, Dataset]] = None,
    callback: Optional[Callable[[Dict[str, Any]], Optional[bool]]] = None,
    checkpoint_every: Optional[int] = None,
    keep_checkpoints: Optional[str] = None,
    trace_compression: Optional[str] = None,
    verify: bool = True,
    dataset: Optional[Union[str, PathLike, Dataset]] = None,
) -> Run:
    """Trains ``model`` (default: the default 784-500-10 model) as ``apical train`` does.

    Counts left at None come from the model's ``[training]`` section. ``out`` is the run
    directory (default ``runs/<model>-seed<S>``; one holding checkpoints is refused).
    ``record`` is a record spec (docs/traces.md), e.g. ``"spikes"`` or
    ``"spikes,soma:layers=hidden0;examples=every:10"``, or ``"none"``; a list of variables
    is joined with commas. ``threads`` limits the worker threads: tests run images in
    parallel, and training shares the neuron blocks of layers of 1024+ neurons among them
    (results do not depend on it). ``data`` is an ``apical.Dataset``, or the folder of
    the named data set's files (default as the command line: for MNIST ``APICAL_DATA``,
    ``data/mnist``, ``../shared/data/mnist``). ``dataset`` is ``--dataset``: ``"mnist"``
    (default), ``"fashion-mnist"``, a folder of IDX files, a .npz, or a Dataset; the
    model's ``network.n_in`` and ``network.classes`` must fit it. ``callback(metrics)`` is called after each
    epoch with that epoch's metrics (a dict as in metrics.json), first with epoch 0, the
    initial network's test before training; returning False stops the run after a
    checkpoint (one stopped at epoch 0 checkpoints after its first example). ``keep_checkpoints`` is the retention policy of
    ``--keep-checkpoints`` (``"all"``, ``"last:N"`` or ``"last:N,every:M"``; default: the
    run's own, for a new run the last two and every tenth epoch). ``trace_compression``
    is ``"scaleoffset"``, ``"deflate"``, ``"deflate:L"`` or ``"none"`` (default: as
    ``apical train``, scaleoffset, which every HDF5 reader opens).

    Ctrl-C finishes the current example, writes a checkpoint and raises KeyboardInterrupt;
    ``apical.resume(dir)`` continues. Errors raise ``ApicalError`` subclasses.
    """
    if isinstance(model, (str, os.PathLike)):
        model = Model.load(model)
    return _run(
        model=model,
        epochs=epochs,
        train_examples=train_examples,
        test_examples=test_examples,
        seed=seed,
        out=out,
        record=record,
        threads=threads,
        progress=progress,
        data=data,
        callback=callback,
        checkpoint_every=checkpoint_every,
        keep_checkpoints=keep_checkpoints,
        trace_compression=trace_compression,
        verify=verify,
        dataset=dataset,
    )


def resume(
    dir: PathLike,
    *,
    epochs: Optional[int] = None,
    record: Optional[Union[str, Sequence[str]]] = None,
    threads: Optional[int] = None,
    progress: bool = True,
    data: Optional[Union[PathLike, Dataset]] = None,
    callback: Optional[Callable[[Dict[str, Any]], Optional[bool]]] = None,
    checkpoint_every: Optional[int] = None,
    keep_checkpoints: Optional[str] = None,
    trace_compression: Optional[str] = None,
    verify: bool = True,
    dataset: Optional[Union[str, PathLike, Dataset]] = None,
    other_data: bool = False,
) -> Run:
    """Continues the run in ``dir`` from its latest checkpoint up to ``epochs`` in total
    (default: the run's own), as ``apical train --resume DIR``. The run's own data set is
    used unless ``dataset`` (or ``data``) says otherwise; data other than the run's (by
    content digest) is refused unless ``other_data``."""
    # None (or a number) would otherwise reach the extension as "no run to resume" and
    # start a new training of the default model.
    if not isinstance(dir, (str, os.PathLike)):
        raise TypeError(
            f"resume: dir must be a run directory (str or os.PathLike), not {type(dir).__name__}"
        )
    return _run(
        resume=dir,
        epochs=epochs,
        record=record,
        threads=threads,
        progress=progress,
        data=data,
        callback=callback,
        checkpoint_every=checkpoint_every,
        keep_checkpoints=keep_checkpoints,
        trace_compression=trace_compression,
        verify=verify,
        dataset=dataset,
        other_data=other_data,
    )


def _run(**kw: Any) -> Run:
    rec = kw.get("record")
    if rec is not None and not isinstance(rec, str):
        kw["record"] = ",".join(rec)
    for k in ("out", "data", "resume", "dataset"):
        v = kw.get(k)
        if v is not None and not isinstance(v, Dataset):
            kw[k] = os.fspath(v)
    d, status, detail, traces, warning = _apical.train(**kw)
    if warning:
        import warnings

        warnings.warn(warning, RuntimeWarning, stacklevel=3)
    return Run(d, status, detail, traces, warning)
