"""Ctrl-C and bad numbers in the long calls of the Python API (issue 25, items 18 and 19).

Ctrl-C (SIGINT) during ``Network.evaluate`` or ``Network.simulate`` raises KeyboardInterrupt
within a second or two, and the network answers as before. The calls run in a child
interpreter that sends SIGINT to itself: a call that ignored it would run for minutes, and
the child's timeout fails this test instead of hanging pytest."""

import json
import textwrap

import pytest

import apical
from conftest import run_python

CHILD = textwrap.dedent(
    r'''
    import json, os, signal, sys, threading, time
    import apical

    # A shell's background job (`cmd &`, nohup) starts with SIGINT ignored, and Python then
    # installs no KeyboardInterrupt handler: restore it, as an interactive session has it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    run_dir, data_dir = sys.argv[1], sys.argv[2]
    net = apical.Network.from_run(run_dir, data=data_dir)
    # The default 784-500-10 network: a million steps of it take far longer than a second.
    wide = apical.Network.new(apical.Model.default(), data=data_dir)
    before = net.evaluate(30)
    out = {}

    def interrupted(name, call, after=1.0):
        timer = threading.Timer(after, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        t0 = time.monotonic()
        try:
            call()
            out[name] = ["returned", time.monotonic() - t0 - after]
        except KeyboardInterrupt:
            out[name] = ["KeyboardInterrupt", time.monotonic() - t0 - after]
        timer.join()

    # About 300,000 test images: minutes.
    interrupted("evaluate", lambda: net.evaluate(10000, repeats=30))
    interrupted("evaluate(threads=2)", lambda: net.evaluate(10000, repeats=30, threads=2))
    interrupted("simulate", lambda: wide.simulate(0, steps=10**6, record=[]))
    after = net.evaluate(30)
    out["evaluate again"] = after["errors"] == before["errors"] and bool(
        (after["confusion"] == before["confusion"]).all())
    out["simulate again"] = int(net.simulate(0, phase="test")["prediction"])
    print("RESULT", json.dumps(out), flush=True)
    '''
)


def test_ctrl_c_stops_long_calls_and_the_network_still_answers(net, run, data_dir):
    p = run_python(CHILD, run.dir, data_dir, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    line = next(l for l in p.stdout.splitlines() if l.startswith("RESULT "))
    out = json.loads(line[len("RESULT "):])
    for call in ("evaluate", "evaluate(threads=2)", "simulate"):
        how, late = out[call]
        assert how == "KeyboardInterrupt", f"{call}: {how}"
        assert late < 3.0, f"{call}: KeyboardInterrupt {late:.1f} s after SIGINT"
    assert out["evaluate again"], "evaluate answers otherwise after the interrupt"
    # The same test example as evaluate's (the same streams): the same prediction.
    assert out["simulate again"] == net.simulate(0, phase="test")["prediction"]


# Every whole-number parameter: a negative value is a ValueError naming it.
NEGATIVE = {
    "evaluate(test_examples)": ("test_examples", lambda net: net.evaluate(-1)),
    "evaluate(repeats)": ("repeats", lambda net: net.evaluate(10, repeats=-2)),
    "evaluate(seed)": ("seed", lambda net: net.evaluate(10, seed=-3)),
    "evaluate(threads)": ("threads", lambda net: net.evaluate(10, threads=-4)),
    "simulate(steps)": ("steps", lambda net: net.simulate(0, steps=-5)),
    "simulate(seed)": ("seed", lambda net: net.simulate(0, seed=-6)),
    "simulate(label)": ("label", lambda net: net.simulate(0, phase="target", label=-7)),
    "predict(seed)": ("seed", lambda net: net.predict([[0] * 784], seed=-8)),
    "predict(threads)": ("threads", lambda net: net.predict([[0] * 784], threads=-9)),
    "weights(layer)": ("layer", lambda net: net.weights(-10)),
    "biases(layer)": ("layer", lambda net: net.biases(-11)),
    "feedback(layer)": ("layer", lambda net: net.feedback(-12)),
    "matrix(layer)": ("layer", lambda net: net.matrix("weights", -13)),
    "Network.new(seed)": ("seed", lambda net: apical.Network.new(seed=-14)),
    "train(epochs)": ("epochs", lambda net: apical.train(epochs=-15, progress=False)),
    "train(train_examples)": (
        "train_examples", lambda net: apical.train(train_examples=-16, progress=False)),
    "train(test_examples)": (
        "test_examples", lambda net: apical.train(test_examples=-17, progress=False)),
    "train(seed)": ("seed", lambda net: apical.train(seed=-18, progress=False)),
    "train(checkpoint_every)": (
        "checkpoint_every", lambda net: apical.train(checkpoint_every=-19, progress=False)),
    "train(threads)": ("threads", lambda net: apical.train(threads=-20, progress=False)),
}


@pytest.mark.parametrize("case", sorted(NEGATIVE))
def test_a_negative_number_is_a_value_error_naming_the_parameter(net, case):
    name, call = NEGATIVE[case]
    with pytest.raises(ValueError) as e:
        call(net)
    assert str(e.value).startswith(f"{name}=-"), str(e.value)
    assert "must be" in str(e.value), str(e.value)


def test_too_large_a_number_is_a_value_error_naming_the_parameter(net):
    with pytest.raises(ValueError, match=r"^seed=18446744073709551616: seed must be"):
        net.evaluate(10, seed=2**64)
    with pytest.raises(ValueError, match=r"^steps=10{30}: steps must be"):
        net.simulate(0, steps=10**30)
    with pytest.raises(ValueError, match=r"^label=300: label must be"):
        net.simulate(0, phase="target", label=300)
    # The largest seed is still a seed.
    assert net.evaluate(10, seed=2**64 - 1)["test_examples"] == 10
