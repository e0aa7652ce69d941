"""Workload recipes and named scenarios."""
import math

import numpy as np
import pytest

import workloads
from sim_core.config import ClusterConfig
from workloads import (SCENARIOS, ArrivalSpec, Scenario, Trace, UnknownScenarioError,
                       WorkloadSpec, get_scenario)


def test_routing_a10_preset_fields():
    s = get_scenario("routing-a10")
    assert s.name == "routing-a10" and s.description
    assert s.cluster.num_replicas == 4
    r = s.cluster.replica
    assert (r.gpu, r.model, r.tp) == ("a10", "llama-3-8b", 1)
    assert r.num_blocks == 2240 and r.num_blocks * r.block_size == 35_840
    assert (r.watermark_fraction, r.scheduler, r.chunk_size, r.batch_cap) == (0.01, "sarathi", 8192, 128)
    w = s.workload
    assert w.lengths == "sharegpt-inflated" and w.closed_loop_users == 0
    assert (w.arrival.kind, w.arrival.qps, w.arrival.sigma) == ("lognormal", 7.5, 2.0)
    assert s.duration_s == 1000.0 and s.seeds == tuple(range(10))


def test_routing_a10_trace():
    s = get_scenario("routing-a10")
    t = s.trace(0)
    assert isinstance(t, Trace) and not t.is_closed_loop and t.duration_s == 1000.0
    assert 5000 < len(t) < 10_000  # 7.5 QPS x 1000 s, bursty
    assert t.arrived_at.max() < 1000.0
    assert t.prompt_tokens.min() >= 43 and t.prompt_tokens.max() <= 4138
    assert t.decode_tokens.max() <= 4096


def test_determinism_per_seed_and_seeds_differ():
    s = get_scenario("routing-a10")
    assert s.trace(3) == s.trace(3)
    assert s.trace(3) != s.trace(4)
    a, b = s.trace(3), s.trace(4)
    n = min(len(a), len(b))
    assert not np.array_equal(a.prompt_tokens[:n], b.prompt_tokens[:n])
    assert not np.array_equal(a.arrived_at[:n], b.arrived_at[:n])


def test_length_and_arrival_streams_are_independent():
    # Changing only the arrival process keeps each request's lengths for the same seed.
    a = WorkloadSpec(arrival=ArrivalSpec(kind="poisson", qps=5)).trace(100.0, 1)
    b = WorkloadSpec(arrival=ArrivalSpec(kind="poisson", qps=8)).trace(100.0, 1)
    n = min(len(a), len(b))
    assert np.array_equal(a.prompt_tokens[:n], b.prompt_tokens[:n])
    assert np.array_equal(a.decode_tokens[:n], b.decode_tokens[:n])


def test_closed_loop_trace():
    w = WorkloadSpec(lengths="sharegpt", closed_loop_users=8, think_time_s=0.9)
    t = w.trace(50.0, 0)
    assert t.closed_loop_users == 8 and t.think_time_s == 0.9 and t.duration_s == 50.0
    assert len(t) == w.pool_size_for(50.0) == 8 + math.ceil(8 * 50.0 / 1.0)
    assert (t.arrived_at[:8] == 0).all() and np.isnan(t.arrived_at[8:]).all()
    assert len(WorkloadSpec(closed_loop_users=2, pool_size=5).trace(10.0, 0)) == 5


def test_custom_length_sampler():
    def fixed(n, rng):
        return np.full(n, 100), np.full(n, 7)

    t = WorkloadSpec(lengths=fixed, arrival=ArrivalSpec(kind="poisson", qps=2)).trace(10.0, 0)
    assert set(t.prompt_tokens) == {100} and set(t.decode_tokens) == {7}
    assert "fixed" in WorkloadSpec(lengths=fixed).describe()


@pytest.mark.parametrize("kw, match", [
    ({"lengths": "lmsys"}, "unknown length distribution 'lmsys'"),
    ({"lengths": 3}, "name or a callable"),
    ({"closed_loop_users": -1}, "closed_loop_users"),
    ({"think_time_s": -1.0}, "think_time_s"),
    ({"closed_loop_users": 4, "pool_size": 2}, "pool_size"),
    ({"arrival": "lognormal"}, "ArrivalSpec"),
])
def test_workload_spec_validation(kw, match):
    with pytest.raises(ValueError, match=match):
        WorkloadSpec(**kw)


def test_unknown_scenario_lists_known_names():
    with pytest.raises(UnknownScenarioError, match="known scenarios: .*routing-a10") as info:
        get_scenario("routing-h100")
    assert isinstance(info.value, KeyError)
    assert str(info.value).startswith("unknown scenario 'routing-h100'")


def test_scenario_validation_and_replace():
    s = get_scenario("routing-a10")
    short = s.replace(duration_s=10.0, seeds=(0, 1))
    assert short.duration_s == 10.0 and short.seeds == (0, 1) and s.duration_s == 1000.0
    with pytest.raises(ValueError, match="at least one seed"):
        Scenario("x", "", ClusterConfig(), WorkloadSpec(), 10.0, ())
    with pytest.raises(ValueError, match="distinct"):
        Scenario("x", "", ClusterConfig(), WorkloadSpec(), 10.0, (1, 1))
    with pytest.raises(ValueError, match="duration_s"):
        Scenario("x", "", ClusterConfig(), WorkloadSpec(), 0.0)
    with pytest.raises(TypeError):
        SCENARIOS["mine"] = s  # presets are read-only; build a Scenario instead


def test_package_exports_and_light_import():
    import subprocess
    import sys

    for name in workloads.__all__:
        assert hasattr(workloads, name)
    code = "import sys, workloads; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
