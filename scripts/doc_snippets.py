#!/usr/bin/env python3
"""Runs the Python snippets of a Markdown file (docs/traces.md, "Reading") against real
files, so the documentation's examples keep working:

    python3 scripts/doc_snippets.py docs/traces.md TRACES.h5 FILE.nwb

Every ```python block runs in a fresh namespace, with the example paths
runs/guerguiev-1h-seed0/traces.h5 and .../traces.nwb replaced by the given files, except
blocks whose first line says "not run in CI". Exits 1 if a snippet raises.
"""
import re
import sys
import traceback

TRACES = "runs/guerguiev-1h-seed0/traces.h5"
NWB = "runs/guerguiev-1h-seed0/traces.nwb"


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    doc, traces, nwb = sys.argv[1:]
    blocks = re.findall(r"```python\n(.*?)```", open(doc).read(), flags=re.S)
    ran = failed = 0
    for i, code in enumerate(blocks):
        if "not run in CI" in code.split("\n", 1)[0]:
            continue
        code = code.replace(TRACES, traces).replace(NWB, nwb)
        try:
            exec(compile(code, f"{doc} snippet {i + 1}", "exec"), {"__name__": "__snippet__"})
            ran += 1
        except Exception:
            failed += 1
            print(f"{doc}: snippet {i + 1} failed:\n{code}")
            traceback.print_exc()
    print(f"{doc}: {ran} snippets ran, {failed} failed, {len(blocks) - ran - failed} shown only")
    return 1 if failed or not ran else 0


if __name__ == "__main__":
    sys.exit(main())
