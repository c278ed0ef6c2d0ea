"""Type stubs of the Rust extension apical._apical (python/src/)."""

import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

_Path = Union[str, "os.PathLike[str]"]

__version__: str

class ApicalError(Exception):
    """Base class of every error apical raises; the message is the command line's."""

class ConfigError(ApicalError):
    """A model file or override that cannot be read or is out of range (names the field)."""

class DataError(ApicalError):
    """MNIST files missing, unreadable or not the original (wrong SHA-256)."""

class CheckpointError(ApicalError):
    """A run directory or checkpoint that cannot be read, written or restored."""

class TrainError(ApicalError):
    """Training failed (the simulation diverged, a file could not be written, ...)."""

class TraceError(ApicalError):
    """A record spec that does not fit the model, or a trace file that cannot be read."""

class Model:
    """A model: every parameter of a model file, validated as the command line validates it.
    Immutable; ``with_overrides`` returns a new one."""

    @staticmethod
    def load(path: _Path) -> "Model":
        """Reads and validates a model file (TOML); keeps the file's text."""
    @staticmethod
    def default() -> "Model":
        """The default model (models/guerguiev-1h.toml, 784-500-10)."""
    @staticmethod
    def from_toml(text: str, origin: str = "<string>") -> "Model":
        """Parses and validates model text; ``origin`` names it in error messages."""
    def with_overrides(self, overrides: Mapping[str, Any]) -> "Model":
        """This model with dotted keys replaced, e.g. ``{"learning.eta": [0.2, 0.2],
        "network.hidden": [300]}``: the code path of ``apical train --set KEY=VALUE``,
        validated like a model file; an unknown key is named with the nearest valid one."""
    def to_toml(self) -> str:
        """The TOML text: the file as read, or the model written out after overrides."""
    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def origin(self) -> str:
        """Where the model came from: its file, or a description."""
    @property
    def sizes(self) -> List[int]:
        """Units per layer: input, hidden layers, output."""
    @property
    def config(self) -> Dict[str, Any]:
        """Every parameter, defaults filled in, as nested dicts."""
    def __eq__(self, other: object) -> bool: ...

class Network:
    """A trained network restored exactly from a checkpoint."""

    @staticmethod
    def from_run(dir: _Path, *, data: Optional[_Path] = None, verify: bool = True) -> "Network":
        """The latest checkpoint of a run directory. ``data``: the MNIST folder (default:
        the run's own, else as the command line finds it)."""
    @staticmethod
    def from_checkpoint(path: _Path, *, data: Optional[_Path] = None, verify: bool = True) -> "Network":
        """A checkpoint file (end-of-epoch or mid-epoch)."""
    @property
    def path(self) -> Path:
        """The checkpoint file."""
    @property
    def epochs_done(self) -> int: ...
    @property
    def seed(self) -> int: ...
    @property
    def model(self) -> Model: ...
    @property
    def sizes(self) -> List[int]: ...
    @property
    def populations(self) -> List[str]:
        """"input", "hidden0", ..., "output"."""
    @property
    def history(self) -> List[Dict[str, Any]]:
        """Per-epoch records kept in the checkpoint."""
    @property
    def n_layers(self) -> int:
        """Weight layers (hidden layers + 1)."""
    def weights(self, layer: int) -> npt.NDArray[np.float32]:
        """W of weight layer ``layer`` (0: input -> first layer), (neurons, inputs)."""
    def biases(self, layer: int) -> npt.NDArray[np.float32]:
        """b of weight layer ``layer``."""
    def feedback(self, layer: int) -> npt.NDArray[np.float32]:
        """Y of weight layer ``layer``, (neurons, feedback units); the output layer has none
        (ApicalError)."""
    @property
    def rule(self) -> str:
        """The learning rule: "guerguiev", "backprop" or "feedback-alignment"."""
    def matrix(self, name: str, layer: int) -> npt.NDArray[np.float32]:
        """A matrix by name ("weights", "biases", "feedback", "apical_bias") of weight layer ``layer``."""
    def evaluate(
        self,
        test_examples: int = 10000,
        *,
        seed: int = 0,
        threads: Optional[int] = None,
        repeats: int = 1,
    ) -> Dict[str, Any]:
        """As ``apical eval``: {"error": %, "errors": [%], "confusion": (10, 10) uint64
        [true, predicted], "indices": test images, "test_examples": n}; with repeats > 1
        also "mean" and "sd"."""
    def simulate(
        self,
        image: Union[int, npt.ArrayLike],
        phase: str = "forward",
        steps: Optional[int] = None,
        record: Union[str, Sequence[str], None] = None,
        *,
        seed: int = 0,
        label: Optional[int] = None,
    ) -> Dict[str, Any]:
        """One example without learning: a test-set index or 784 pixels (0..255); phase
        "forward", "test" or "target"; record any of "spikes", "soma", "basal", "apical",
        "potentials", "rate" (default spikes, soma, apical). Returns "time_ms",
        "prediction", "label", "target_start_step", "spikes" {population: (times_ms, ids)}
        and "soma"/"basal"/"apical"/"rate_hz" {layer: (steps, neurons)}."""

def train(
    model: Optional[Model] = None,
    *,
    resume: Optional[_Path] = None,
    epochs: Optional[int] = None,
    train_examples: Optional[int] = None,
    test_examples: Optional[int] = None,
    seed: int = 0,
    out: Optional[_Path] = None,
    record: Optional[str] = None,
    trace_compression: Optional[str] = None,
    checkpoint_every: Optional[int] = None,
    keep_checkpoints: Optional[str] = None,
    threads: Optional[int] = None,
    progress: bool = True,
    data: Optional[_Path] = None,
    verify: bool = True,
    callback: Optional[Callable[[Dict[str, Any]], Optional[bool]]] = None,
) -> Tuple[Path, str, str, Optional[Path], Optional[str]]:
    """The run behind ``apical.train``: (run dir, status, detail, trace file, trace warning)."""

def _h5_read(path: _Path, name: str) -> np.ndarray: ...
def _h5_attrs(path: _Path, name: str) -> Dict[str, Any]: ...
def _h5_members(path: _Path, name: str) -> Dict[str, str]: ...
