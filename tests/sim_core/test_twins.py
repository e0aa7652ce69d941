"""Compiled twins of the built-in routers decide exactly what the Python routers decide."""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from sim_core import simulate
from sim_core import state as S
from sim_core.autoscale import AutoscaleConfig
from sim_core.config import ClusterConfig, ReplicaConfig
from sim_core.routers import LeastLoadedQueue
from sim_core.twins import TWIN_NONE, twin_code
from tests.conftest import linear_table, make_trace
from tests.sim_core.same_run import assert_same_run
from workloads import SCENARIOS

TWINNED = ["llq", "lor", "least_blocks", "round_robin",
           "hra", "hra:decode_growth=0.25,safety_fraction=0.1,shortest_first=false"]


def both(cluster, trace, router, **kw):
    """The Python router and its compiled twin, checked equal; returns the twin's run."""
    py = simulate(cluster, trace, router, compiled_router=False, **kw)
    tw = simulate(cluster, trace, router, compiled_router=True, **kw)
    assert tw.state.si[S.S_TWIN] != TWIN_NONE and py.state.si[S.S_TWIN] == TWIN_NONE
    assert_same_run(py, tw)
    assert py.router_calls == tw.router_calls
    return tw


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize("router", TWINNED)
def test_presets_seed0(name, router):
    sc = SCENARIOS[name]
    kw = {}
    if sc.autoscale is not None:  # replicas start and drain: routing skips non-accepting ones
        kw = dict(autoscaler="proportional", autoscale=sc.autoscale, record_timeline=False)
    both(sc.cluster, sc.trace(0), router, **kw)


POLICIES = ["spf", "aged_spf:seconds_per_token=0.013"]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize("router,policy", [("llq", POLICIES[0]), ("hra", POLICIES[1]),
                                           ("round_robin", POLICIES[1])])
def test_presets_seed0_with_compiled_queue_keys(name, router, policy):
    sc = SCENARIOS[name]
    kw = dict(batch_policy=policy)
    if sc.autoscale is not None:
        kw.update(autoscaler="throughput", autoscale=sc.autoscale, record_timeline=False)
    tw = both(sc.cluster, sc.trace(0), router, **kw)
    assert tw.state.si[S.S_TWIN_KEY] != 0


def test_twin_against_the_step_by_step_engine():
    sc = SCENARIOS["routing-a10"]
    tr = sc.trace(0)
    step = simulate(sc.cluster, tr, "llq", fast_forward=False, compiled_router=False)
    fast = simulate(sc.cluster, tr, "llq")
    assert_same_run(step, fast)
    assert fast.router_calls < step.router_calls  # calls with an empty queue are skipped


def test_twins_only_for_builtins_picked_by_name():
    tr = make_trace([0, 0.1], [5, 5], [3, 3])
    cl, table = ClusterConfig(num_replicas=2), linear_table()

    class Mine(LeastLoadedQueue):
        def route(self, view):
            self.calls = getattr(self, "calls", 0) + 1
            return super().route(view)

    assert twin_code(Mine()) == TWIN_NONE and twin_code(LeastLoadedQueue()) != TWIN_NONE
    mine = Mine()
    res = simulate(cl, tr, mine, latency=table)
    # No twin, and the promise to do nothing on an empty queue is not inherited: the
    # subclass is called at both arrivals and both completions.
    assert res.state.si[S.S_TWIN] == TWIN_NONE and mine.calls == res.router_calls == 4
    assert simulate(cl, tr, LeastLoadedQueue(), latency=table).state.si[S.S_TWIN] == TWIN_NONE
    # A batch policy's key written in Python keeps the router in Python too; the built-in
    # keys have twins.
    custom = simulate(cl, tr, "llq", batch_policy=lambda p, a: -p, latency=table)
    assert custom.state.si[S.S_TWIN] == TWIN_NONE
    assert simulate(cl, tr, "llq", batch_policy="spf", latency=table).state.si[S.S_TWIN] != 0
    assert simulate(cl, tr, "llq", latency=table).state.si[S.S_TWIN] != TWIN_NONE


class RandomScaler:
    """A random replica count at every tick: replicas keep starting, draining, stopping."""

    def __init__(self, seed):
        self.seed = seed

    def reset(self, info, rng):
        self.n, self.rng = info.num_replicas, np.random.default_rng(self.seed)

    def decide(self, stats):
        return int(self.rng.integers(0, self.n + 2))


@st.composite
def small_cases(draw):
    n = draw(st.integers(1, 20))
    prompts = draw(st.lists(st.integers(1, 60), min_size=n, max_size=n))
    decodes = draw(st.lists(st.integers(1, 80), min_size=n, max_size=n))
    gaps = draw(st.lists(st.floats(0.0, 0.1), min_size=n, max_size=n))
    bs = draw(st.sampled_from([1, 4, 12, 16]))  # 12: blocks by division, not a shift
    need = math.ceil(max(p + d for p, d in zip(prompts, decodes)) / bs)
    rc = ReplicaConfig(num_blocks=need + 1 + draw(st.integers(0, 3 * need)), block_size=bs,
                       watermark_fraction=0.0,
                       scheduler=draw(st.sampled_from(["sarathi", "vllm"])),
                       chunk_size=draw(st.sampled_from([8, 64, 512])),
                       batch_cap=draw(st.integers(1, 6)))
    cluster = ClusterConfig(num_replicas=draw(st.integers(1, 4)), replica=rc)
    kw = {}
    if draw(st.booleans()):
        kw = dict(autoscaler=RandomScaler(draw(st.integers(0, 100))), autoscale=AutoscaleConfig(
            interval_s=draw(st.sampled_from([0.02, 0.1])),
            cold_start_s=draw(st.sampled_from([0.0, 0.05])),
            initial_replicas=draw(st.integers(1, cluster.num_replicas))))
    router = draw(st.sampled_from(TWINNED))
    kw["record_timeline"] = draw(st.booleans())  # without, fewer flushes
    kw["batch_policy"] = draw(st.sampled_from(
        [None, "fifo", *POLICIES, "aged_spf:seconds_per_token=3.7"]))
    return cluster, make_trace(np.cumsum(gaps), prompts, decodes), router, kw


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_cases())
def test_twins_equal_python_routers_on_random_clusters(case):
    cluster, trace, router, kw = case
    if "autoscaler" in kw:  # a fresh autoscaler per run: both runs see the same draws
        seed = kw["autoscaler"].seed
        py = simulate(cluster, trace, router, compiled_router=False, latency=linear_table(),
                      **{**kw, "autoscaler": RandomScaler(seed)})
        tw = simulate(cluster, trace, router, latency=linear_table(),
                      **{**kw, "autoscaler": RandomScaler(seed)})
        assert_same_run(py, tw)
        assert py.router_calls == tw.router_calls
    else:
        both(cluster, trace, router, latency=linear_table())
