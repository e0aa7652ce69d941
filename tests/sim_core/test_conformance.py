"""Conformance of every registered policy, as scikit-learn checks every estimator.

The cases are generated from the registries (``ROUTERS``, ``BATCH_POLICIES``,
``AUTOSCALERS``), so a policy added to one is checked here without touching this file. Each
runs through the same invariants: its decisions are valid, it is deterministic under the
same seed, it works on a small cluster and on a one-replica cluster, it copes with an empty
queue (or an idle cluster), and every request's time parts add up to its end-to-end time.
"""
from __future__ import annotations

import numpy as np
import pytest

from sim_core import simulate
from sim_core.autoscale import AUTOSCALERS, AutoscaleConfig, make_autoscaler
from sim_core.batch_policies import BATCH_POLICIES, make_batch_policy
from sim_core.config import ClusterConfig, ReplicaConfig
from sim_core.results import TIME_PARTS
from sim_core.routers import ROUTERS, make_router
from tests.conftest import linear_table, make_trace

TABLE = linear_table(overhead_ms=5.0, per_token_ms=0.5)
CASES = ([("router", n) for n in ROUTERS] + [("batch_policy", n) for n in BATCH_POLICIES]
         + [("autoscaler", n) for n in AUTOSCALERS])
MAKERS = {"router": make_router, "batch_policy": make_batch_policy, "autoscaler": make_autoscaler}


def test_every_registered_policy_is_covered():
    # Nothing may be left out of the cases (least_prefill once was).
    assert {n for k, n in CASES if k == "router"} == set(ROUTERS)
    assert "least_prefill" in ROUTERS
    assert len(CASES) == len(ROUTERS) + len(BATCH_POLICIES) + len(AUTOSCALERS)


class CheckedRouter:
    """Wraps a router and checks every decision against the view it was given."""

    def __init__(self, inner):
        self.inner, self.empty_calls, self.decisions = inner, 0, 0

    def reset(self, info, rng):
        self.n = info.num_replicas
        self.inner.reset(info, rng)

    def route(self, view):
        queue = set(int(q) for q in view.queue)
        out = [(int(r), int(p)) for r, p in (self.inner.route(view) or ())]
        rids = [r for r, _ in out]
        assert len(set(rids)) == len(rids), "a request routed twice in one call"
        assert set(rids) <= queue, "a request that is not in the global queue"
        assert all(0 <= p < self.n for _, p in out), "a replica that does not exist"
        if not queue:
            self.empty_calls += 1
            assert out == [], "a decision with an empty queue"
        self.decisions += len(out)
        return out


class CheckedScaler:
    """Wraps an autoscaler and checks each answer is a whole number of replicas."""

    def __init__(self, inner):
        self.inner, self.idle_ticks = inner, 0

    def reset(self, info, rng):
        self.inner.reset(info, rng)

    def decide(self, stats):
        n = self.inner.decide(stats)
        assert isinstance(n, (int, np.integer)) and n >= 0, f"decide returned {n!r}"
        if int(np.sum(stats.in_flight)) == 0 and stats.global_queue_len == 0:
            self.idle_ticks += 1
        return n


def _trace(seed: int, n: int = 30):
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(0.05, n))
    arrivals[n // 2:] += 2.0  # an idle stretch: empty queues, idle ticks
    return make_trace(arrivals, rng.integers(1, 200, n), rng.integers(1, 80, n))


def _cluster(replicas: int) -> ClusterConfig:
    return ClusterConfig(num_replicas=replicas,
                         replica=ReplicaConfig(num_blocks=64, block_size=16, batch_cap=8,
                                               chunk_size=64))


def _run(kind: str, name: str, replicas: int, seed: int = 0):
    policy = MAKERS[kind](name)
    kw = {}
    router = "llq"
    if kind == "router":
        router = policy = CheckedRouter(policy)
    elif kind == "batch_policy":
        kw["batch_policy"] = policy
    else:
        policy = CheckedScaler(policy)
        kw.update(autoscaler=policy, autoscale=AutoscaleConfig(interval_s=0.2, cold_start_s=0.1))
    trace = _trace(seed)
    res = simulate(_cluster(replicas), trace, router, latency=TABLE, seed=seed, **kw)
    return res, policy, len(trace.prompt_tokens)


@pytest.mark.parametrize("replicas", [1, 3])
@pytest.mark.parametrize("kind,name", CASES)
def test_policy_conforms(kind, name, replicas):
    res, policy, n = _run(kind, name, replicas)
    df = res.requests
    # Every request completes once, on a replica that exists.
    assert len(df) == n and df["completed_at"].notna().all()
    assert df["replica"].between(0, replicas - 1).all()
    # The five time parts add up to each request's end-to-end time.
    np.testing.assert_allclose(df[list(TIME_PARTS)].sum(axis=1), df["e2e_s"], rtol=1e-9,
                               atol=1e-9)
    assert (df[list(TIME_PARTS)] >= -1e-12).all().all()
    if kind == "router":
        assert policy.decisions == n and policy.empty_calls > 0
    if kind == "autoscaler":
        assert policy.idle_ticks > 0
    # Deterministic: the same seed gives the same table (a fresh policy object).
    again, _, _ = _run(kind, name, replicas)
    assert again.requests.equals(df)


@pytest.mark.parametrize("kind,name", CASES)
def test_policy_is_a_fresh_object_per_make(kind, name):
    # Registries hand out new objects: no state carried from one simulation to the next.
    assert MAKERS[kind](name) is not MAKERS[kind](name)
