"""``glia sweep`` and ``glia stack`` run policy files sandboxed unless ``--trusted``.

A hostile router file reads a planted key from the environment, writes what it found to a
file outside its scratch directory and signals the process that started it.  Sandboxed it
gets none of that done and its figures are exactly an honest router's; with ``--trusted``
it runs in the CLI's own process, where all of it works.  An honest file gives the same
table sandboxed as trusted.
"""
from __future__ import annotations

import json
import os

import pytest

from glia_nb.cli.main import main
from glia_nb.evaluation.confine import choose_isolation

LEVEL = choose_isolation(warn=False)
FAKE_KEY = "sk-fake-planted-0123456789abcdef"

# Least-loaded queue over the replicas that accept requests (autoscaled pools have others).
LLQ = """
import os
import numpy as np


class LLQ:
    def reset(self, info, rng):
        pass

    def route(self, view):
        load = (view.num_waiting + view.num_running).astype(float)
        load[~np.asarray(view.accepting, bool)] = np.inf
        out = []
        for k in view.queue:
            r = int(load.argmin())
            if not np.isfinite(load[r]):
                break
            out.append((int(k), r))
            load[r] += 1.0
        return out
"""

SNEAKY = LLQ + """

class Sneaky(LLQ):
    def reset(self, info, rng):
        key = os.environ.get("GLIA_FAKE_API_KEY", "no-key")
        try:
            os.kill(os.getppid(), 0)  # signal 0 only asks whether the parent may be signalled
            signalled = "signalled"
        except OSError:
            signalled = "no-signal"
        try:
            with open(OUTSIDE, "a") as fh:
                fh.write(f"{key} {signalled} {os.getpid()}\\n")
        except OSError:
            pass
"""

KILLER = LLQ + """

class Killer(LLQ):
    def reset(self, info, rng):
        import signal
        try:
            os.kill(os.getppid(), signal.SIGKILL)
        except OSError:
            pass
        if CTYPES:  # only where the parent is the sandbox's own init, never the test process
            import ctypes
            ctypes.CDLL(None).kill(os.getppid(), 9)
"""

SWEEP = ["sweep", "--users", "4,16", "--seeds", "1", "--duration", "20", "--json"]
STACK = ["stack", "--stacks", "standard", "--seeds", "1", "--duration", "120", "--json"]


def _file(tmp_path, name: str, source: str, **consts) -> str:
    head = "".join(f"{k} = {v!r}\n" for k, v in consts.items())
    path = tmp_path / f"{name.lower()}.py"
    path.write_text(head + source)
    return f"{path}:{name}"


def _run(capsys, argv) -> dict:
    assert main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def _sweep(capsys, spec: str, *extra) -> dict:
    doc = _run(capsys, [*SWEEP, "--routers", spec, *extra])
    return doc["curves"][spec]["points"]


def _stack(capsys, spec: str, *extra) -> dict:
    doc = _run(capsys, [*STACK, "--router", spec, *extra])
    return {k: {m: v for m, v in r.items() if m != "label"} for k, r in doc["stacks"].items()}


def test_an_honest_file_gives_the_same_figures_sandboxed_as_trusted(tmp_path, capsys):
    spec = _file(tmp_path, "LLQ", LLQ)
    sandboxed = _run(capsys, [*SWEEP, "--routers", spec, "--out", str(tmp_path / "s.png")])
    trusted = _run(capsys, [*SWEEP, "--routers", spec, "--out", str(tmp_path / "t.png"),
                            "--trusted"])
    assert sandboxed == trusted and sandboxed["curves"][spec]["points"][0]["num_requests"] > 0
    assert (tmp_path / "s.png").read_bytes() == (tmp_path / "t.png").read_bytes()
    # On a process pool each job starts its own policy process in the worker.
    assert _run(capsys, [*SWEEP, "--routers", spec, "--workers", "2"]) == sandboxed
    rows = _stack(capsys, spec)
    assert rows == _stack(capsys, spec, "--trusted")
    # The file is LLQ: the custom row (standard stack, this router) is the standard row.
    assert rows["custom"] == {**rows["standard"], "router": spec}


@pytest.mark.parametrize("command", ["sweep", "stack"])
def test_a_hostile_file_gets_nothing_sandboxed_and_everything_trusted(tmp_path, capsys,
                                                                      monkeypatch, command):
    monkeypatch.setenv("GLIA_FAKE_API_KEY", FAKE_KEY)
    outside = tmp_path / "outside" / "loot.txt"
    outside.parent.mkdir()
    sneaky = _file(tmp_path, "Sneaky", SNEAKY, OUTSIDE=str(outside))
    honest = _file(tmp_path, "LLQ", LLQ)
    figures = _sweep if command == "sweep" else _stack

    def strip(doc):  # the figures without the spec string, which names the file
        return json.loads(json.dumps(doc).replace(sneaky, "SPEC").replace(honest, "SPEC"))

    attacked = strip(figures(capsys, sneaky))
    loot = outside.read_text() if outside.exists() else ""
    assert FAKE_KEY not in loot and "signalled" not in loot.replace("no-signal", ""), loot
    if LEVEL == "bwrap":  # a read-only file system but for the scratch dir
        assert not outside.exists()
    assert attacked == strip(figures(capsys, honest))

    trusted = strip(figures(capsys, sneaky, "--trusted"))
    lines = outside.read_text().splitlines()
    assert f"{FAKE_KEY} signalled {os.getpid()}" in lines  # it ran in this very process
    assert trusted == attacked


def test_killing_the_parent_fails_and_the_figures_stay_honest(tmp_path, capsys):
    killer = _file(tmp_path, "Killer", KILLER, CTYPES=LEVEL == "bwrap")
    honest = _file(tmp_path, "LLQ", LLQ)
    got = _sweep(capsys, killer)
    assert got == _sweep(capsys, honest)  # and this process is still here to compare


def test_a_bad_file_is_one_line(tmp_path, capsys):
    spec = _file(tmp_path, "Broken", "class Broken:\n    def route(self, view):\n        return 1 / 0\n")
    assert main([*SWEEP, "--routers", spec]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("glia: error:") and "ZeroDivisionError" in err[-1]


def test_simulate_sweep_users_sandboxes_a_file_too(tmp_path, capsys, monkeypatch):
    """``glia simulate --sweep-users`` (one router's curve) takes ``--trusted`` as well."""
    monkeypatch.setenv("GLIA_FAKE_API_KEY", FAKE_KEY)
    outside = tmp_path / "loot.txt"
    sneaky = _file(tmp_path, "Sneaky", SNEAKY, OUTSIDE=str(outside))
    argv = ["simulate", "--scenario", "routing-h100-prefill", "--router", sneaky,
            "--sweep-users", "4,16", "--seeds", "1", "--duration", "20", "--json"]
    sandboxed = _run(capsys, argv)["points"]
    assert FAKE_KEY not in (outside.read_text() if outside.exists() else "")
    assert _run(capsys, [*argv, "--trusted"])["points"] == sandboxed
    assert FAKE_KEY in outside.read_text()
