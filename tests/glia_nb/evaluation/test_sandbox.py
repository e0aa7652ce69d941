"""The sandbox: good candidates get a score, bad ones an EvalResult with the right kind.

Every evaluation here simulates 60 s of routing-a10 traffic (about 0.05 s per seed), so the
cost is the child process's start-up (about 1-2 s).
"""
from __future__ import annotations

import json
import math
import textwrap
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest

from glia_nb.evaluation.harness import ERROR_KINDS, EvalResult, Limits, _crash_error, aggregate, evaluate
from glia_nb.tasks import get_task

HRA_LIKE = """
import numpy as np

class CustomRouter:
    # Shortest prompt first; dispatch only where the projected KV use keeps head-room.
    def reset(self, info, rng):
        self.growth = 1.6

    def route(self, view):
        q = view.queue
        if len(q) == 0:
            return []
        prompts = view.prompt_tokens[q]
        order = np.lexsort((q, prompts))
        need = np.ceil(prompts[order] * self.growth / view.block_size)
        cap = view.num_blocks.astype(float)
        proj = view.allocated_blocks + np.ceil(view.waiting_prompt_tokens * self.growth / view.block_size)
        busy = (view.num_waiting + view.num_running) > 0
        out = []
        for k, rid in enumerate(q[order]):
            ok = (cap - proj - need[k] >= 0.03 * cap) | ~busy
            if not ok.any():
                break
            r = int(np.where(ok, proj, np.inf).argmin())
            out.append((int(rid), r))
            proj[r] += need[k]
            busy[r] = True
        return out
"""

# name -> (source, limits, expected kind, text the error must contain)
BAD = {
    "syntax error": ("class CustomRouter(:\n    pass\n", None, "import", "SyntaxError"),
    "raises at import": ("raise RuntimeError('boom at import')\n", None, "import", "boom"),
    "missing class": ("class SomethingElse:\n    def route(self, view):\n        return []\n",
                      None, "missing_class", "SomethingElse"),
    "replica 99": ("""
        class CustomRouter:
            def reset(self, info, rng):
                pass
            def route(self, view):
                return [(int(q), 99) for q in view.queue]
        """, None, "invalid_decision", "replica 99"),
    "malformed decision": ("""
        class CustomRouter:
            def reset(self, info, rng):
                pass
            def route(self, view):
                return [(int(q),) for q in view.queue]
        """, None, "invalid_decision", "pair"),
    "route raises": ("""
        class CustomRouter:
            def reset(self, info, rng):
                pass
            def route(self, view):
                return {}["no such key"]
        """, None, "exception", "KeyError"),
    "socket to localhost": ("""
        import socket
        class CustomRouter:
            def reset(self, info, rng):
                pass
            def route(self, view):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.connect(("127.0.0.1", 9))
                return []
        """, None, "network", "network access is disabled in the sandbox"),
    "create_connection": ("""
        import socket
        class CustomRouter:
            def reset(self, info, rng):
                socket.create_connection(("127.0.0.1", 9), timeout=1)
            def route(self, view):
                return []
        """, None, "network", "network access is disabled in the sandbox"),
    "starts a process": ("""
        import subprocess
        class CustomRouter:
            def reset(self, info, rng):
                subprocess.run(["curl", "http://127.0.0.1:9"])
            def route(self, view):
                return []
        """, None, "network", "processes"),
    "hard exit": ("""
        import os
        class CustomRouter:
            def reset(self, info, rng):
                pass
            def route(self, view):
                os._exit(3)
        """, None, "crash", "exit status 3"),
    "infinite loop": ("""
        class CustomRouter:
            def reset(self, info, rng):
                pass
            def route(self, view):
                while True:
                    pass
        """, Limits(wall_s=10), "timeout", "10 s"),
    "unbounded allocation": ("""
        class CustomRouter:
            def reset(self, info, rng):
                self.hoard = []
            def route(self, view):
                while True:
                    self.hoard.append(bytearray(64 * 2**20))
        """, Limits(memory_mb=1024), "memory", "1024 MB"),
}


@pytest.fixture(scope="module")
def task():
    return get_task("routing-a10").replace(duration_s=60, eval_seeds=(0, 1, 2))


@pytest.fixture(scope="module")
def one_seed(task):
    return task.replace(eval_seeds=(0,))


def _write(tmp_path, source, name="policy.py"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(source))
    return p


@pytest.fixture(scope="module")
def good_runs(tmp_path_factory, task):
    """The HRA-like file and the built-in LLQ, evaluated concurrently (two children)."""
    d = tmp_path_factory.mktemp("good")
    path = _write(d, HRA_LIKE)
    with ThreadPoolExecutor(max_workers=2) as pool:
        good = pool.submit(evaluate, path, task, d / "exp")
        llq = pool.submit(evaluate, "llq", task)
        return {"dir": d / "exp", "path": path, "good": good.result(), "llq": llq.result()}


def test_good_candidate_gets_a_score(good_runs):
    res, out = good_runs["good"], good_runs["dir"]
    assert res.ok and res.error_kind is None, res.error
    assert math.isfinite(res.score) and res.score == res.summary["mean_e2e_s"]
    assert [s["seed"] for s in res.per_seed] == [0, 1, 2] and res.simulations == 3
    assert res.summary["num_seeds"] == 3 and len(res.summary["mean_e2e_ci90_s"]) == 2
    for name in ("requests.csv", "request_metrics.csv", "gs_log.csv", "reqs_log.csv",
                 "metrics.json", "seeds.csv", "sandbox_log.txt"):
        assert (out / name).exists(), name
    assert json.loads((out / "config.json").read_text())["seed"] == 0  # one seed only
    assert EvalResult.from_dict(json.loads((out / "metrics.json").read_text())) == res
    # Well inside the default memory limit (the measured need is ~0.5-0.65 GiB).
    assert res.peak_address_space_mb is None or res.peak_address_space_mb < Limits().memory_mb


def test_builtin_spec_matches_in_process_simulation(good_runs, task):
    from sim_core import simulate

    res = good_runs["llq"]
    assert res.ok and res.policy == "llq" and res.out_dir is None
    sc = task.load_scenario()
    direct = [simulate(sc.cluster, sc.trace(s), "llq", seed=s).summary["mean_e2e_s"]
              for s in task.seeds]
    assert res.score == pytest.approx(sum(direct) / len(direct), rel=1e-12)


def test_bad_candidates_come_back_as_error_results(tmp_path, one_seed):
    """Each bad candidate gets an EvalResult of the right kind and the parent carries on.

    The children run concurrently (each evaluate() waits on its own process), so the
    10 s infinite loop overlaps with the rest."""
    def run(item):
        i, (name, (src, limits, _, _)) = item
        d = tmp_path / f"case{i}"
        d.mkdir()
        return name, evaluate(_write(d, src), one_seed, d / "out", limits=limits)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(pool.map(run, enumerate(BAD.items())))
    failures = []
    for name, (_, limits, kind, needle) in BAD.items():
        res = results[name]
        if res.ok or res.score is not None or res.error_kind != kind or needle not in res.error:
            failures.append(f"{name}: expected {kind} with {needle!r}, got {res.error_kind}: "
                            f"{res.error}\n{res.traceback}")
        elif not (res.out_dir and (tmp_path / res.out_dir / "metrics.json").exists()):
            failures.append(f"{name}: no metrics.json")
    assert not failures, "\n\n".join(failures)
    loop = results["infinite loop"]
    assert 10 <= loop.wall_s < 20  # killed at the limit, not left running
    assert "policy.py:" in results["route raises"].error  # points at the candidate's line


def test_crash_classification_from_exit_status():
    limits = Limits()
    assert _crash_error(-9, "std::bad_alloc\n", limits)["kind"] == "memory"
    assert _crash_error(-11, "", limits)["kind"] == "crash"
    assert "SIGSEGV" in _crash_error(-11, "", limits)["message"]
    assert set(ERROR_KINDS) >= {"import", "missing_class", "exception", "invalid_decision",
                                "timeout", "memory", "network", "crash"}


def test_aggregate():
    per = [{"seed": 0, "mean_e2e_s": 10.0, "restart_fraction": 0.1, "router": "x"},
           {"seed": 1, "mean_e2e_s": 20.0, "restart_fraction": 0.3, "router": "x"}]
    agg = aggregate(per)
    assert agg["mean_e2e_s"] == 15.0 and agg["restart_fraction"] == pytest.approx(0.2)
    assert agg["seeds"] == [0, 1] and "router" not in agg
    lo, hi = agg["mean_e2e_ci90_s"]
    assert 10.0 <= lo <= hi <= 20.0
    assert "p95_slowdown_worst_seed" not in agg
    assert aggregate([]) == {}


def test_aggregate_keeps_the_worst_seed_of_tail_bounds():
    # A mean of 4.5 hides a seed at 6.0: bounds on tail metrics are checked run by run.
    per = [{"seed": 0, "p95_slowdown": 3.0, "p90_ttft_s": 1.0},
           {"seed": 1, "p95_slowdown": 6.0, "p90_ttft_s": 2.0}]
    agg = aggregate(per)
    assert agg["p95_slowdown"] == 4.5 and agg["p95_slowdown_worst_seed"] == 6.0
    assert agg["p90_ttft_s_worst_seed"] == 2.0


def test_executor_path(tmp_path, task, good_runs):
    good = good_runs["path"]
    with ProcessPoolExecutor(max_workers=2) as ex:
        res = evaluate(good, task, tmp_path / "pool", executor=ex)
        assert res.ok and res.score == pytest.approx(good_runs["good"].score, rel=1e-12)
        assert [s["seed"] for s in res.per_seed] == [0, 1, 2]
        assert (tmp_path / "pool" / "requests.csv").exists()
        bad = evaluate(_write(tmp_path, BAD["replica 99"][0], "bad.py"), task, executor=ex)
        assert bad.error_kind == "invalid_decision"
        loop = _write(tmp_path, BAD["infinite loop"][0], "loop.py")
        slow = evaluate(loop, task.replace(eval_seeds=(0,)), executor=ex, limits=Limits(wall_s=3))
        assert slow.error_kind == "timeout"
        # The pool survives a bad candidate.
        assert evaluate(good, task, executor=ex).score == res.score
    with ThreadPoolExecutor(1) as ex, pytest.raises(TypeError, match="process pool"):
        evaluate(good, task, executor=ex)
