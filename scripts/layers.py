#!/usr/bin/env python3
"""The module graph of src/, checked for circles at two levels.

Top level: the layers of docs/architecture.md (src/base, src/model, ...: a folder or a file
directly under src/). Inside a folder: its files and sub-folders (src/model/config.rs,
src/sim/rules/, ...). A module names another by a `crate::a::b` path, a `use crate::{...}`
group, or `super::x`. Comments and the `#[cfg(test)]` part of a file are not read.
Every circle is printed; so is every source file longer than MAXLINES.

Usage: python3 scripts/layers.py [SRC=src] [MAXLINES=1000]. Exit 1 on a circle or a long file.
"""
import os
import re
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else "src"
MAXLINES = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
IDENT = r"[a-z_][a-z0-9_]*"


def code_of(path):
    text = open(path, encoding="utf-8", errors="replace").read()
    body = text.split("#[cfg(test)]")[0]
    lines = [l for l in body.split("\n") if not l.lstrip().startswith("//")]
    return "\n".join(lines), body.count("\n")


def module_path(rel):
    """src-relative file path -> module path as a list ('model/config.rs' -> ['model', 'config'])."""
    parts = rel[:-3].split(os.sep)
    if parts[-1] == "mod":
        parts = parts[:-1]
    if parts and parts[0] in ("lib", "main"):
        return []
    return parts


def referenced_paths(code, here):
    """Module paths (lists) this file names."""
    found = []
    for m in re.finditer(r"crate::((?:%s::)*%s)" % (IDENT, IDENT), code):
        found.append(m.group(1).split("::"))
    for grp_prefix, grp in re.findall(r"use\s+crate::((?:%s::)*)\{([^}]*)\}" % IDENT, code, re.S):
        prefix = [p for p in grp_prefix.split("::") if p]
        for item in re.findall(r"(%s(?:::%s)*)" % (IDENT, IDENT), grp):
            found.append(prefix + item.split("::"))
    for m in re.finditer(r"super::((?:%s::)*%s)" % (IDENT, IDENT), code):
        parent = here[:-1]
        found.append(parent + m.group(1).split("::"))
    return found


def circles(graph):
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def main():
    files = {}
    lengths = []
    for dp, _, fs in os.walk(SRC):
        for f in fs:
            if f.endswith(".rs"):
                p = os.path.join(dp, f)
                rel = os.path.relpath(p, SRC)
                code, n = code_of(p)
                files[tuple(module_path(rel))] = code
                lengths.append((n, os.path.join(os.path.basename(os.path.abspath(SRC)), rel)))
    modules = {k for k in files if k}
    # graph per folder: key = folder path (tuple), nodes = its direct children
    graphs = {}
    for here, code in files.items():
        if not here:
            continue
        for ref in referenced_paths(code, list(here)):
            # the deepest common folder of `here` and `ref` decides the level of the edge
            k = 0
            while k < len(here) and k < len(ref) and here[k] == ref[k]:
                k += 1
            if k >= len(here) or k >= len(ref):
                continue  # a module naming itself, an ancestor or a descendant
            folder = tuple(here[:k])
            a, b = here[k], ref[k]
            if tuple(ref[: k + 1]) not in modules and not any(
                m[: k + 1] == tuple(ref[: k + 1]) for m in modules
            ):
                continue  # an item, not a module (crate::x::Type)
            g = graphs.setdefault(folder, {})
            g.setdefault(a, set()).add(b)
            g.setdefault(b, set())
    failed = False
    for folder in sorted(graphs):
        for comp in circles(graphs[folder]):
            where = "src" if not folder else "src/" + "/".join(folder)
            print(f"circle in {where}: " + " <-> ".join(comp))
            failed = True
    lengths.sort(reverse=True)
    for n, p in lengths:
        if n > MAXLINES:
            print(f"long file: {p} {n} lines (> {MAXLINES})")
            failed = True
    top = len(graphs.get((), {}))
    print(
        f"{top} top-level modules, {sum(len(g) for g in graphs.values())} modules in "
        f"{len(graphs)} folders; {'circles or long files found' if failed else 'no circle'}; "
        f"longest file {lengths[0][1]} {lengths[0][0]} lines"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
