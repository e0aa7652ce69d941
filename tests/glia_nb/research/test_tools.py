"""The Researcher's tools: argument checking, shell limits, confinement, budget, reports."""
from __future__ import annotations

import os
import time

import pytest

from glia_nb.tasks import get_task
from glia_nb.research.tools import ToolBox, ToolResult, validate_arguments
from glia_nb.text import truncate_middle
from glia_nb.research.workspace import Workspace


@pytest.fixture
def task():
    return get_task("routing-a10").replace(duration_s=60, eval_seeds=(0, 1))


@pytest.fixture
def ws(tmp_path, task):
    return Workspace.create(tmp_path, task, "s1")


@pytest.fixture
def tb(ws):
    return ToolBox(ws, max_output_chars=2000)


def test_specs(tb):
    from glia_nb.llm.types import ToolSpec

    specs = tb.specs()
    assert [s.name for s in specs] == ["shell", "read_file", "write_file", "run_experiment",
                                      "finish"]
    assert all(isinstance(s, ToolSpec) for s in specs)
    run = next(s for s in specs if s.name == "run_experiment")
    assert run.parameters["required"] == ["name", "hypothesis"]
    assert "one simulation of the budget (2 seeds)" in run.description


@pytest.mark.parametrize("name,args,needle", [
    ("nope", {}, "unknown tool"),
    ("shell", {}, "missing required argument(s) command"),
    ("shell", {"command": "ls", "cwd": "/"}, "unexpected argument(s) cwd"),
    ("shell", {"command": 42}, "must be of type string"),
    ("shell", {"command": "ls", "timeout_s": "abc"}, "must be of type integer"),
    ("shell", {"command": "ls", "timeout_s": True}, "must be of type integer"),
    ("shell", {"command": "ls", "timeout_s": 0}, "must be >= 1"),
    ("read_file", {"path": "policy.py", "limit": 10**6}, "must be <= 2000"),
    ("finish", ["not", "a", "dict"], "must be a JSON object"),
])
def test_bad_arguments_are_error_results(tb, name, args, needle):
    res = tb.call(name, args)
    assert isinstance(res, ToolResult) and res.is_error
    assert needle in res.text


def test_validate_arguments_fills_and_coerces():
    schema = {"type": "object", "properties": {"n": {"type": "integer"}, "x": {"type": "number"}},
              "required": ["n"]}
    assert validate_arguments(schema, {"n": 3.0, "x": 1}) == ({"n": 3, "x": 1}, None)
    assert validate_arguments(schema, {"n": 3.5})[1]


def test_exceptions_inside_tools_become_error_results(tb, monkeypatch):
    import glia_nb.research.tools as tools

    def boom(*a, **k):
        raise RuntimeError("simulator exploded")
    monkeypatch.setattr(tools, "evaluate", boom)
    res = tb.call("run_experiment", {"name": "x", "hypothesis": "y"})
    assert res.is_error and "RuntimeError: simulator exploded" in res.text


def test_shell_runs_in_the_workspace(tb, ws, monkeypatch):
    monkeypatch.setenv("FAKE_API_KEY", "sk-secret")
    res = tb.call("shell", {"command": "pwd; ls; echo ${FAKE_API_KEY:-scrubbed}; exit 3"})
    assert res.is_error and res.data["returncode"] == 3  # a non-zero exit is a failure
    assert str(ws.path) in res.text and "policy.py" in res.text and "scrubbed" in res.text
    assert res.text.endswith("[exit code 3]")


def _alive(marker: str) -> bool:
    """Whether a process whose command line contains ``marker`` is running (any namespace)."""
    import subprocess

    out = subprocess.run(["ps", "-eo", "stat,args"], capture_output=True, text=True).stdout
    return any(marker in line and not line.startswith("Z") and "ps -eo" not in line
               for line in out.splitlines())


def test_shell_timeout_kills_the_process_group(tb, ws):
    t0 = time.monotonic()
    res = tb.call("shell", {"command": "echo started; sleep 1013 & sleep 30", "timeout_s": 1})
    assert time.monotonic() - t0 < 10
    assert res.is_error and res.data["timed_out"] and "killed after 1 s" in res.text
    assert "started" in res.text
    deadline = time.monotonic() + 5
    while _alive("sleep 1013") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive("sleep 1013")  # the background child died with the group


def test_shell_is_confined(tb, ws, tmp_path, monkeypatch):
    """The workspace is the only writable place; no keys, no network, the session's python."""
    import socket
    import sys

    from glia_nb.evaluation.confine import choose_isolation, seccomp_profile

    monkeypatch.setenv("OPENAI_API_KEY", "sk-shell-redteam-42")
    outside = tmp_path / "outside.txt"
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(0.2)
    port = srv.getsockname()[1]
    cmd = (f"cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c sk-shell; "
           f"echo x > {outside}; echo y > inside.txt; "
           f"python -c 'import sys, pandas; print(sys.executable)'; "
           f"(exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && echo CONNECTED; true")
    res = tb.call("shell", {"command": cmd})
    got = []
    for _ in range(3):
        try:
            got.append(srv.accept())
        except (TimeoutError, socket.timeout):
            pass
    srv.close()
    assert "sk-shell-redteam-42" not in res.text and (ws.path / "inside.txt").exists()
    # ``python`` is the session's interpreter (its bin directory leads PATH), pandas importable.
    assert os.path.dirname(sys.executable) + os.sep + "python" in res.text, res.text
    if choose_isolation(warn=False) == "bwrap":
        assert not outside.exists()
    if choose_isolation(warn=False) == "bwrap" or seccomp_profile("shell"):
        assert not got and "CONNECTED" not in res.text  # a network namespace or the filter


def test_shell_output_keeps_head_and_tail(tb):
    res = tb.call("shell", {"command": "seq 1 200000"})
    assert not res.is_error and res.data["output_bytes"] > 1_000_000
    assert len(res.text) < 2300
    assert res.text.startswith("1\n2\n3\n") and "200000\n[exit code 0]" in res.text
    assert "omitted" in res.text


def test_truncate_middle():
    s = "a" * 50 + "b" * 50
    out = truncate_middle(s, 20)
    assert out.startswith("a" * 8) and out.endswith("b" * 12) and "80 characters omitted" in out
    assert truncate_middle("short", 20) == "short"


def test_read_file(tb, ws):
    (ws.path / "notes.txt").write_text("".join(f"line {i}\n" for i in range(1, 501)))
    res = tb.call("read_file", {"path": "notes.txt"})
    assert not res.is_error
    lines = res.text.splitlines()
    assert lines[0] == "  1\tline 1" and "line 200" in res.text and "line 201" not in res.text
    assert "offset=200" in res.text
    res = tb.call("read_file", {"path": "notes.txt", "offset": 495, "limit": 10})
    assert res.text.splitlines()[0] == "496\tline 496" and "offset=" not in res.text
    for bad in ("../outside.txt", "/etc/passwd", "missing.txt", "experiments"):
        assert tb.call("read_file", {"path": bad}).is_error, bad
    (ws.path / "blob.bin").write_bytes(b"\x00\x01\x02")
    assert "binary" in tb.call("read_file", {"path": "blob.bin"}).text


def test_write_file_is_confined(tb, ws, tmp_path):
    res = tb.call("write_file", {"path": "analysis/split.py", "content": "print('hi')\n"})
    assert not res.is_error and (ws.path / "analysis" / "split.py").read_text() == "print('hi')\n"
    for bad in ("../escape.txt", str(tmp_path / "escape.txt"), "/tmp/escape.txt"):
        res = tb.call("write_file", {"path": bad, "content": "x"})
        assert res.is_error and "outside the workspace" in res.text, bad
    assert not (tmp_path / "escape.txt").exists()
    for record in ("ledger.csv", "workspace.json", "TASK.md", "experiments/001_x/policy.py"):
        res = tb.call("write_file", {"path": record, "content": "x"})
        assert res.is_error and "read-only" in res.text, record
    (ws.path / "link").symlink_to(tmp_path)
    assert tb.call("write_file", {"path": "link/evil.txt", "content": "x"}).is_error
    res = tb.call("write_file", {"path": "policy.py", "content": "class CustomRouter(:\n"})
    assert not res.is_error and "syntax error at line 1" in res.text


def test_run_experiment_budget_and_resume(tmp_path, ws, task):
    tb = ToolBox(ws, max_simulations=1)  # one simulation = one experiment over the seeds
    base = tb.run_baseline()  # experiment 0, free of charge
    assert base.ok and ws.baseline_score == base.score
    assert f"{base.score:.2f}" in (ws.path / "TASK.md").read_text()
    res = tb.call("run_experiment", {"name": "LLQ as written", "hypothesis": "same as baseline"})
    assert not res.is_error, res.text
    assert "Experiment 001" in res.text and "0.0% better" in res.text
    assert "global queue" in res.text and "lost to restarts" in res.text
    assert "experiments/001_llq-as-written/" in res.text and "requests.csv" in res.text
    assert tb.simulations_used == 1 and tb.simulations_left == 0
    assert ws.ledger_rows()[-1]["seeds"] == 2  # how many seeds it ran is recorded beside
    assert (ws.path / "experiments" / "001_llq-as-written" / "policy.py").exists()

    refused = tb.call("run_experiment", {"name": "again", "hypothesis": "h"})
    assert refused.is_error and "budget exhausted" in refused.text
    assert refused.data["budget_exhausted"]
    assert [r["id"] for r in ws.ledger_rows()] == [0, 1]

    # Resuming keeps the spend; a failed experiment is still recorded.
    tb2 = ToolBox(Workspace.open(ws.path), max_simulations=10)
    assert tb2.simulations_used == 1
    tb2.call("write_file", {"path": "policy.py", "content": "class Nope:\n    pass\n"})
    res = tb2.call("run_experiment", {"name": "no class", "hypothesis": "h"})
    assert res.is_error and "FAILED (missing_class)" in res.text and "Nope" in res.text
    # Every recorded experiment costs one simulation, whatever its outcome.
    assert ws.ledger_rows()[-1]["status"] == "error" and tb2.simulations_used == 2

    done = tb2.call("finish", {"summary": "LLQ is the best we found."})
    assert not done.is_error and tb2.finished and "Best recorded experiment: 000" in done.text
    assert (ws.path / "FINAL.md").read_text().startswith("LLQ is the best")
