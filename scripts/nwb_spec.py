#!/usr/bin/env python3
"""Writes the NWB namespace texts that `apical export nwb` caches in every file
(/specifications/<namespace>/<version>/<source>) into src/io/nwb/spec/, as the pinned
pynwb (scripts/requirements-ci.txt) caches them, plus the schemas' licence texts.

    python3 scripts/nwb_spec.py [OUT_DIR]    # default src/io/nwb/spec
"""
import os, shutil, sys, tempfile
from datetime import datetime, timezone

import h5py
import pynwb
from pynwb import NWBHDF5IO, NWBFile

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "src", "io", "nwb", "spec")
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "empty.nwb")
    f = NWBFile(session_description="spec", identifier="spec",
                session_start_time=datetime(2000, 1, 1, tzinfo=timezone.utc))
    with NWBHDF5IO(path, "w") as io:
        io.write(f)
    with h5py.File(path, "r") as h:
        shutil.rmtree(out, ignore_errors=True)
        index = []
        for ns, g in h["specifications"].items():
            for version, v in g.items():
                for name, ds in v.items():
                    d = os.path.join(out, ns, version)
                    os.makedirs(d, exist_ok=True)
                    text = ds[()]
                    text = text.decode() if isinstance(text, bytes) else text
                    with open(os.path.join(d, name + ".json"), "w") as o:
                        o.write(text)
                    index.append(f"{ns}/{version}/{name}")
        nwb_version = h.attrs["nwb_version"]
root = os.path.dirname(pynwb.__file__)
shutil.copy(os.path.join(root, "nwb-schema", "license.txt"), os.path.join(out, "LICENSE-nwb-schema.txt"))
shutil.copy(os.path.join(root, "nwb-schema", "hdmf-common-schema", "license.txt"),
            os.path.join(out, "LICENSE-hdmf-common-schema.txt"))
with open(os.path.join(out, "README.md"), "w") as o:
    o.write(f"NWB schema texts cached in every file `apical export nwb` writes, as pynwb "
            f"{pynwb.__version__} caches them (nwb_version {nwb_version}); made by "
            f"`scripts/nwb_spec.py`. They are data, under the BSD-style licences beside "
            f"them (LICENSE-nwb-schema.txt, LICENSE-hdmf-common-schema.txt).\n\n"
            + "\n".join(f"- `{i}`" for i in sorted(index)) + "\n")
print(nwb_version, len(index), "texts in", out)
