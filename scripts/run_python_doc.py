#!/usr/bin/env python3
"""Runs the Python code blocks of a Markdown file (docs/python.md) as one script, as
written, in a fresh temporary folder; prints what they print. CI calls it from
scripts/ci-python.sh so the documented example keeps working.

Usage: run_python_doc.py FILE.md [--keep DIR]

Blocks fenced as ```python run in order in one namespace; ```python no-run blocks are
skipped. MNIST is found as the library finds it: the data folder is passed as APICAL_DATA
(default: data/mnist of this repository, set up by scripts/setup.sh).
"""

import os
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def blocks(text):
    for m in re.finditer(r"^```python([^\n]*)\n(.*?)^```", text, re.S | re.M):
        if "no-run" not in m.group(1):
            yield m.group(2)


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    doc = Path(args[0]).resolve()
    keep = Path(args[args.index("--keep") + 1]).resolve() if "--keep" in args else None
    code = "\n".join(blocks(doc.read_text()))
    if not code.strip():
        sys.exit(f"{doc}: no ```python blocks")
    os.environ.setdefault("APICAL_DATA", str(REPO / "data" / "mnist"))
    os.environ.setdefault("MPLBACKEND", "Agg")
    with tempfile.TemporaryDirectory(prefix="apical-doc-") as tmp:
        work = keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        os.chdir(work)
        started = time.monotonic()
        exec(compile(code, str(doc), "exec"), {"__name__": "__main__"})
        print(f"run_python_doc: {doc.name} ran in {time.monotonic() - started:.1f} s in {work}",
              file=sys.stderr)


if __name__ == "__main__":
    main()
