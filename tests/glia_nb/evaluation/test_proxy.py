"""The harness side of a sandboxed policy: the simulation thread and the policy process
share one CPU while a seed runs (they take turns), and the thread gets its CPUs back."""
from __future__ import annotations

import os
import re
import time

import numpy as np
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


class _Snapshots:
    """A least-loaded router that copies every array a sandboxed policy maps at each call."""

    idle_when_queue_empty = True

    def __init__(self):
        self.st, self.calls = None, []

    def hook(self, st) -> None:
        self.st = st

    def reset(self, info, rng) -> None:
        pass

    def route(self, view):
        from glia_nb.evaluation.proxy import SHARED_ARRAYS

        st = self.st
        self.calls.append((view.now, {n: getattr(st, n).copy() for n in SHARED_ARRAYS},
                           st.ph.copy()))
        load = view.num_waiting + view.num_running
        return [(int(q), int(load.argmin())) for q in view.queue]


def test_the_shared_arrays_do_not_depend_on_a_decode_length_before_it_is_over():
    # Two traces that differ only in request 0's decode length: everything a sandboxed policy
    # maps must be the same at every call until request 0 completes in the shorter run.  (The
    # fast-forward's stretch lengths are cut at a batch's first completion: they once sat in
    # the shared replica columns, where a router could read them.)
    from sim_core.config import ClusterConfig
    from tests.conftest import make_trace

    arrivals = [0.05 * i for i in range(40)]
    prompts = [200 + 37 * (i % 7) for i in range(40)]
    runs = []
    for first_decode in (300, 900):
        decodes = [first_decode] + [250 + 53 * (i % 5) for i in range(1, 40)]
        spy = _Snapshots()
        res = simulate(ClusterConfig(num_replicas=2), make_trace(arrivals, prompts, decodes),
                       spy, compiled_router=False, share_state=spy.hook)
        runs.append((spy.calls, float(res.requests.set_index("request_id").loc[0].completed_at)))
    (short, done), (long_, _) = runs
    before = [k for k, (now, _, _) in enumerate(short) if now < done]
    assert len(before) >= 30 and len(long_) >= len(before)
    hidden_differs = False
    for k in before:
        assert short[k][0] == long_[k][0]
        for name, arr in short[k][1].items():
            assert np.array_equal(arr, long_[k][1][name], equal_nan=True), (k, name)
        hidden_differs |= not np.array_equal(short[k][2], long_[k][2])
    assert hidden_differs  # the stretch bookkeeping did see the decode length
