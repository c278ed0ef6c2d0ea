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

class Dataset:
    """A checked data set: training and test images (uint8, ``n_in`` per example) and
    labels 0..classes-1, with the name and content digest a run records."""

    @staticmethod
    def load(name_or_path: _Path, *, data: Optional[_Path] = None, verify: bool = True) -> "Dataset":
        """``"mnist"``, ``"fashion-mnist"``, a folder of IDX files or a .npz (x_train,
        y_train, x_test, y_test), as ``--dataset``."""
    @staticmethod
    def from_arrays(
        x_train: npt.ArrayLike,
        y_train: npt.ArrayLike,
        x_test: npt.ArrayLike,
        y_test: npt.ArrayLike,
        *,
        name: str = "arrays",
    ) -> "Dataset":
        """numpy arrays: images (n, inputs) or (n, rows, cols), uint8 0-255 or floats 0-1
        (stored as round(255 x)); labels integers 0..classes-1."""
    @property
    def name(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def n_in(self) -> int: ...
    @property
    def classes(self) -> int: ...
    @property
    def n_train(self) -> int: ...
    @property
    def n_test(self) -> int: ...
    @property
    def image_shape(self) -> Tuple[int, int]: ...
    @property
    def x_train(self) -> npt.NDArray[np.uint8]: ...
    @property
    def y_train(self) -> npt.NDArray[np.uint8]: ...
    @property
    def x_test(self) -> npt.NDArray[np.uint8]: ...
    @property
    def y_test(self) -> npt.NDArray[np.uint8]: ...

class Network:
    """A network: restored exactly from a checkpoint, or built as a new run starts
    (``Network.new``) and trained one example at a time."""

    @staticmethod
    def new(model: Optional[Model] = None, seed: int = 0, *, data: Optional[_Path] = None, verify: bool = True) -> "Network":
        """The network a new run of ``model`` with ``seed`` starts from."""
    def train_example(self, image: npt.ArrayLike, label: int) -> Dict[str, Any]:
        """Learns from one example (the trainer's code path). Returns "prediction",
        "label", "correct", "errors" [per layer], "plateau_differences" [per hidden layer],
        "spike_counts" [per layer], "l_f", "l_t", "examples"."""
    def predict(self, images: npt.ArrayLike, *, seed: int = 0, threads: Optional[int] = None) -> npt.NDArray[np.int64]:
        """The predicted class of every image (a test phase each)."""
    def save(self, dir: _Path, *, dataset: Optional[Dataset] = None) -> Path:
        """A run directory ``apical train --resume`` continues; returns the checkpoint."""
    @property
    def examples_trained(self) -> int: ...

    @staticmethod
    def from_run(dir: _Path, *, data: Optional[_Path] = None, verify: bool = True) -> "Network":
        """The latest checkpoint of a run directory. ``data``: the MNIST folder (default:
        the run's own, else as the command line finds it)."""
    @staticmethod
    def from_checkpoint(path: _Path, *, data: Optional[_Path] = None, verify: bool = True) -> "Network":
        """A checkpoint file (end-of-epoch or mid-epoch)."""
    @property
    def path(self) -> Optional[Path]:
        """The checkpoint file (None for ``Network.new``)."""
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
        data: Union[Dataset, _Path, None] = None,
        other_data: bool = False,
    ) -> Dict[str, Any]:
        """As ``apical eval`` on ``data`` (default: the run's own data set, else MNIST):
        {"error": %, "errors": [%], "confusion": (classes, classes) uint64
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
        """One example without learning: a test-set index or n_in pixels (0..255); phase
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
    data: Union[Dataset, _Path, None] = None,
    verify: bool = True,
    callback: Optional[Callable[[Dict[str, Any]], Optional[bool]]] = None,
    dataset: Union[Dataset, _Path, None] = None,
    other_data: bool = False,
) -> Tuple[Path, str, str, Optional[Path], Optional[str]]:
    """The run behind ``apical.train``: (run dir, status, detail, trace file, trace warning)."""

def _h5_read(path: _Path, name: str) -> np.ndarray: ...
def _h5_attrs(path: _Path, name: str) -> Dict[str, Any]: ...
def _h5_members(path: _Path, name: str) -> Dict[str, str]: ...
