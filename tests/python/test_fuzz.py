"""The Python API under wrong types, sizes, NaN, None and recursion (issue 25): every call
raises a Python exception; none takes the interpreter down (segfault, abort, stack
overflow) or starts work nobody asked for.

The calls run in a child interpreter, one after the other, each announced before it runs:
a crash fails this test naming the call instead of killing pytest."""

import json
import textwrap

from conftest import run_python

CHILD = textwrap.dedent(
    r'''
    import json, sys
    import numpy as np
    import apical

    run_dir, data_dir = sys.argv[1], sys.argv[2]
    net = apical.Network.from_run(run_dir, data=data_dir)
    small = apical.Model.default().with_overrides({"network.hidden": [40]})

    selfref = [1]
    selfref.append(selfref)
    selfdict = {}
    selfdict["a"] = selfdict
    deep = []
    for _ in range(100_000):
        deep = [deep]

    CASES = {
        # Model
        "Model.load(None)": lambda: apical.Model.load(None),
        "Model.load(123)": lambda: apical.Model.load(123),
        "Model.load('/dev/zero')": lambda: apical.Model.load("/dev/zero"),
        "Model.load(directory)": lambda: apical.Model.load(run_dir),
        "Model.from_toml(None)": lambda: apical.Model.from_toml(None),
        "Model.from_toml('x = ')": lambda: apical.Model.from_toml("x = "),
        "with_overrides(None)": lambda: small.with_overrides(None),
        "with_overrides(list)": lambda: small.with_overrides([1, 2]),
        "with_overrides(self-referencing list)": lambda: small.with_overrides({"network.hidden": selfref}),
        "with_overrides(self-referencing dict)": lambda: small.with_overrides({"network": selfdict}),
        "with_overrides(100000-deep list)": lambda: small.with_overrides({"network.hidden": deep}),
        "with_overrides(NaN g_A)": lambda: small.with_overrides({"neuron.g_A": float("nan")}),
        "with_overrides(NaN in a list)": lambda: small.with_overrides({"learning.eta": [float("nan"), 0.2]}),
        "with_overrides(int key)": lambda: small.with_overrides({1: 2}),
        "with_overrides(huge int)": lambda: small.with_overrides({"network.hidden": [10**30]}),
        "with_overrides(negative size)": lambda: small.with_overrides({"network.hidden": [-1]}),
        "with_overrides(None value)": lambda: small.with_overrides({"network.hidden": None}),
        "with_overrides(object value)": lambda: small.with_overrides({"network.hidden": object()}),
        # training entry points that must refuse before any work
        "resume(None)": lambda: apical.resume(None),
        "resume(3)": lambda: apical.resume(3),
        "train(epochs=-1)": lambda: apical.train(small, epochs=-1, progress=False),
        "train(threads=100000)": lambda: apical.train(small, threads=100000, progress=False),
        "train(model='x')": lambda: apical.train("x", progress=False),
        # Network
        "Network.from_run(None)": lambda: apical.Network.from_run(None),
        "Network.from_run(missing)": lambda: apical.Network.from_run(run_dir + "/missing"),
        "Network.from_checkpoint('/dev/zero')": lambda: apical.Network.from_checkpoint("/dev/zero"),
        "evaluate(10001)": lambda: net.evaluate(10001),
        "evaluate(0)": lambda: net.evaluate(0),
        "evaluate(-1)": lambda: net.evaluate(-1),
        "evaluate('a')": lambda: net.evaluate("a"),
        "evaluate(None)": lambda: net.evaluate(None),
        "evaluate(repeats=0)": lambda: net.evaluate(10, repeats=0),
        "evaluate(threads=100000)": lambda: net.evaluate(10, threads=100000),
        "evaluate(threads=0)": lambda: net.evaluate(10, threads=0),
        "simulate(steps=10**7)": lambda: net.simulate(0, steps=10**7, record=["soma"]),
        "simulate(steps=2**63)": lambda: net.simulate(0, steps=2**63, record=["soma"]),
        "simulate(steps=-1)": lambda: net.simulate(0, steps=-1),
        "simulate(label=10)": lambda: net.simulate(0, phase="target", label=10),
        "simulate(label=-1)": lambda: net.simulate(0, phase="target", label=-1),
        "simulate(phase='x')": lambda: net.simulate(0, phase="x"),
        "simulate(-1)": lambda: net.simulate(-1),
        "simulate(10**6)": lambda: net.simulate(10**6),
        "simulate(10**30)": lambda: net.simulate(10**30),
        "simulate(None)": lambda: net.simulate(None),
        "simulate(NaN image)": lambda: net.simulate(np.full(784, np.nan)),
        "simulate(inf image)": lambda: net.simulate(np.full(784, np.inf)),
        "simulate(5 pixels)": lambda: net.simulate(np.zeros(5)),
        "simulate(string image)": lambda: net.simulate("image"),
        "simulate(record='garbage')": lambda: net.simulate(0, record="garbage"),
        "simulate(record=[None])": lambda: net.simulate(0, record=[None]),
        "simulate(record=123)": lambda: net.simulate(0, record=123),
        "feedback(output layer)": lambda: net.feedback(1),
        "feedback(99)": lambda: net.feedback(99),
        "weights(-1)": lambda: net.weights(-1),
        "biases('x')": lambda: net.biases("x"),
        # traces
        "open_traces(None)": lambda: apical.open_traces(None),
        "open_traces(missing)": lambda: apical.open_traces(run_dir + "/missing.h5"),
        "open_traces('/dev/zero')": lambda: apical.open_traces("/dev/zero"),
    }
    results = {}
    for name, call in CASES.items():
        print("CALL", name, flush=True)
        try:
            call()
            results[name] = "ok"
        except BaseException as e:  # noqa: BLE001 - what was raised is the result
            results[name] = type(e).__name__
    print("RESULTS", json.dumps(results), flush=True)
    '''
)

# Calls that must raise exactly this (the others: any Exception, never a crash).
EXPECTED = {
    "Model.load(None)": "TypeError",
    "Model.load('/dev/zero')": "ConfigError",
    "with_overrides(self-referencing list)": "ConfigError",
    "with_overrides(self-referencing dict)": "ConfigError",
    "with_overrides(100000-deep list)": "ConfigError",
    "with_overrides(NaN g_A)": "ConfigError",
    "resume(None)": "TypeError",
    "resume(3)": "TypeError",
    "train(threads=100000)": "ApicalError",
    "evaluate(10001)": "ApicalError",
    "evaluate(threads=100000)": "ApicalError",
    "simulate(steps=10**7)": "ApicalError",
    "simulate(steps=2**63)": "ApicalError",
    "simulate(label=10)": "ApicalError",
    "feedback(output layer)": "ApicalError",
}


def test_the_api_raises_and_never_crashes(run, data_dir):
    p = run_python(CHILD, run.dir, data_dir, timeout=600)
    calls = [l[5:] for l in p.stdout.splitlines() if l.startswith("CALL ")]
    assert p.returncode == 0, (
        f"the interpreter died (status {p.returncode}) in {calls[-1] if calls else '?'}:\n"
        f"{p.stderr[-3000:]}"
    )
    line = next(l for l in p.stdout.splitlines() if l.startswith("RESULTS "))
    results = json.loads(line[len("RESULTS "):])
    unexpected_ok = [
        n for n, r in results.items() if r == "ok"
    ]
    assert not unexpected_ok, f"accepted: {unexpected_ok}"
    for name, r in results.items():
        assert r not in ("KeyboardInterrupt", "SystemExit", "RecursionError"), f"{name}: {r}"
    wrong = {n: (results[n], e) for n, e in EXPECTED.items() if results[n] != e}
    assert not wrong, f"(raised, expected): {wrong}"
