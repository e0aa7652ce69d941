"""The harness side of a sandboxed policy: the simulation thread and the policy process
share one CPU while a seed runs (they take turns), and the thread gets its CPUs back."""
from __future__ import annotations

import os
import re
import time

import pytest

from glia_nb.evaluation.confine import HardLimits, choose_isolation
from glia_nb.evaluation.proxy import PolicyProcess
from sim_core.facade import RoutingError, cluster_info, simulate
from workloads import get_scenario

REPORTER = """
import os

class Reporter:
    def reset(self, info, rng):
        pass

    def route(self, view):
        raise RuntimeError(f"AFFINITY {sorted(os.sched_getaffinity(0))}")
"""


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs CPU affinity and two CPUs")
def test_the_thread_and_the_policy_share_one_cpu_per_seed_and_the_thread_gets_its_cpus_back(monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))  # pins only when CPUs are free
    before = os.sched_getaffinity(0)
    sc = get_scenario("routing-a10", duration_s=5)
    p = PolicyProcess(level=choose_isolation(warn=False), limits=HardLimits(),
                      deadline=time.monotonic() + 120, log_path=os.devnull)
    seen = []
    route = p.route

    def spy(view):
        seen.append(os.sched_getaffinity(0))
        return route(view)

    p.route = spy
    try:
        p.load(REPORTER, "reporter.py", "Reporter", "router")
        with pytest.raises(RoutingError) as err:
            simulate(sc.cluster, sc.trace(0), p.for_seed(0, cluster_info(sc.cluster)),
                     seed=0, share_state=p.share_state)
    finally:
        p.close()
    policy_cpus = set(map(int, re.search(r"AFFINITY \[([\d, ]+)\]", str(err.value)).group(1).split(",")))
    assert len(seen[0]) == 1 and policy_cpus == seen[0]
    assert os.sched_getaffinity(0) == before


LIAR = """
import json

class Liar:
    def reset(self, info, rng):
        json.dumps = lambda *a, **k: '{"cpu_s": null}'  # every later reply is this

    def route(self, view):
        return [(int(k), 0) for k in view.queue]
"""


def test_a_policy_that_garbles_its_replies_is_still_closed_cleanly(monkeypatch):
    """Whatever the policy answers, close() kills it, removes its scratch directory and
    gives the thread its CPUs back."""
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    before = os.sched_getaffinity(0)
    sc = get_scenario("routing-a10", duration_s=5)
    p = PolicyProcess(level=choose_isolation(warn=False), limits=HardLimits(),
                      deadline=time.monotonic() + 120, log_path=os.devnull)
    p.load(LIAR, "liar.py", "Liar", "router")
    res = simulate(sc.cluster, sc.trace(0), p.for_seed(0, cluster_info(sc.cluster)),
                   seed=0, share_state=p.share_state)
    assert res.summary["num_requests"] > 0
    p.close()  # its goodbye carries a null CPU time
    assert p.cpu_s is None and p.proc.poll() is not None
    assert not os.path.exists(p.scratch) and os.sched_getaffinity(0) == before
