# Sourced by the scripts that run PyTorch beside apical (bench-torch.sh, calibrate-burstccn.sh)
# with REPO set: VENV, a venv holding numpy and torch outside the repository (created on
# first use; $APICAL_TORCH_VENV, else ~/.cache/apical/torch-venv: torch is a peer of the
# comparison, never a dependency of apical), APICAL, the apical binary ($APICAL_BIN, else a
# release build), and DATA, the MNIST folder ($APICAL_DATA, else data/mnist).
VENV="${APICAL_TORCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/apical/torch-venv}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet numpy torch
fi
if [ -n "${APICAL_BIN:-}" ]; then
    APICAL="$APICAL_BIN"
else
    cargo build --release --quiet --bin apical
    APICAL="$REPO/target/release/apical"
fi
DATA="${APICAL_DATA:-$REPO/data/mnist}"
