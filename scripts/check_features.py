#!/usr/bin/env python3
"""Checks that the library's dependencies are built with one feature set whichever way the
workspace is built: `cargo build` (the command line, `cargo install`), `cargo test` (with
the dev-dependencies) and the Python binding crate (`pip install .`). A crate two of these
builds share with different features is compiled twice, and so is everything above it,
the library included (docs/testing.md, Build time; Cargo.toml, "Feature unification").
Prints the crates that differ and exits 1; silent and 0 when every shared crate agrees.

    python3 scripts/check_features.py
"""
import subprocess
import sys

BUILDS = {
    "cargo build -p apical": ["-p", "apical", "-e", "normal,build"],
    "cargo test -p apical": ["-p", "apical", "-e", "normal,dev,build"],
    "pip install . (apical-python)": ["-p", "apical-python", "-e", "normal,build"],
}


def features(args):
    """{(crate, version, is a proc macro): features} of one build, from `cargo tree`."""
    out = subprocess.run(
        ["cargo", "tree", "--quiet", "--prefix", "none", "-f", "{p}|{f}"] + args,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    seen = {}
    for line in out.splitlines():
        line = line.replace(" (*)", "").strip()
        if "|" not in line:
            continue
        pkg, feats = line.split("|", 1)
        parts = pkg.split()
        key = (parts[0], parts[1], "proc-macro" in pkg)
        seen[key] = feats
    return seen


def main():
    trees = {name: features(args) for name, args in BUILDS.items()}
    names = list(trees)
    bad = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            for key in sorted(trees[a].keys() & trees[b].keys()):
                if trees[a][key] != trees[b][key]:
                    bad.append(f"{key[0]} {key[1]}: [{trees[a][key]}] in {a}, [{trees[b][key]}] in {b}")
    if bad:
        print("crates built with different features (each is compiled twice, with what depends on it):")
        for line in bad:
            print("  " + line)
        print("name the missing features in Cargo.toml's feature-unification entries")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
