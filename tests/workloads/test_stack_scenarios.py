"""The stack scenarios: code-assistant lengths, the H100 closed loop, the sinusoidal pool."""
import numpy as np
import pytest

from workloads import SCENARIOS, get_scenario
from workloads.azure_code import PROVENANCE, code_length_stats, sample_code_lengths
from workloads.scenarios import autoscale_a10_scenario, h100_prefill_scenario


def test_code_lengths_match_the_published_statistics():
    st = code_length_stats(100_000, seed=1)
    assert 1400 <= st["prompt_median"] <= 1520          # Splitwise: 1,500 (CSV 1,469)
    assert 1800 <= st["prompt_mean"] <= 2100            # CSV 2,048
    assert 6800 <= st["prompt_p99"] <= 7700             # CSV 7,436
    assert st["decode_median"] == 13                    # Splitwise: 13
    assert 25 <= st["decode_mean"] <= 31                # CSV 28
    assert 60 <= st["ratio_of_means"] <= 80             # paper: about 70
    assert "Splitwise" in PROVENANCE and "Azure" in PROVENANCE


def test_code_lengths_bounds_and_prefix_consistency():
    p, d = sample_code_lengths(5000, np.random.default_rng(3))
    assert p.dtype == np.int64 and p.min() >= 1 and p.max() <= 8192
    assert d.min() >= 1 and d.max() <= 2048
    p2, d2 = sample_code_lengths(100, np.random.default_rng(3))
    assert np.array_equal(p[:100], p2) and np.array_equal(d[:100], d2)
    with pytest.raises(ValueError):
        sample_code_lengths(-1, np.random.default_rng(0))


def test_h100_scenario_defaults_and_kv_pool():
    sc = get_scenario("routing-h100-prefill")
    rc = sc.cluster.replica
    assert (sc.cluster.num_replicas, rc.tp, rc.gpu, rc.model) == (4, 2, "h100", "llama-3.3-70b-fp8")
    assert sc.cluster.num_gpus == 8
    assert rc.num_blocks == 13_999     # kv_blocks_from_memory: 80 GB, 70.6 B FP8, TP2
    assert sc.workload.closed_loop_users == 200 and sc.workload.lengths == "azure-code"
    other = h100_prefill_scenario(num_replicas=2, tp=4, users=50)
    assert other.cluster.num_gpus == 8 and other.cluster.replica.num_blocks > rc.num_blocks
    assert other.workload.closed_loop_users == 50


def test_closed_loop_keeps_exactly_n_in_flight():
    from sim_core import simulate

    sc = h100_prefill_scenario(users=20, duration_s=30.0)
    res = simulate(sc.cluster, sc.trace(0), "least_prefill", seed=0, record_timeline=False)
    df = res.requests
    arrivals, done = df.arrived_at.to_numpy(), df.completed_at.to_numpy()
    # Between events (midpoints of consecutive event times) before the arrival cut-off,
    # exactly 20 requests are in the system: each completion immediately brings the next.
    events = np.unique(np.concatenate([arrivals, done]))
    mids = (events[:-1] + events[1:]) / 2
    mids = mids[mids < arrivals.max()]
    in_flight = [(np.sum(arrivals <= t) - np.sum(done <= t)) for t in mids]
    assert len(mids) > 100 and set(in_flight) == {20}


def test_autoscale_scenario():
    sc = get_scenario("autoscale-a10")
    assert sc.cluster.num_replicas == 32 and sc.autoscale is not None
    assert sc.autoscale.cold_start_s == 60.0 and sc.autoscale.initial_replicas == 4
    arr = sc.workload.arrival
    assert (arr.kind, arr.qps_min, arr.qps_max) == ("sinusoidal", 7.5, 22.5)
    tr = sc.trace(0)
    assert tr.arrived_at.max() <= sc.duration_s
    # Arrival rate near the trough (t in [0, 100)) vs near the peak (period/2 +- 50 s).
    half = arr.period_s / 2
    trough = np.sum(tr.arrived_at < 100) / 100
    peak = np.sum(np.abs(tr.arrived_at - half) < 50) / 100
    assert 6 <= trough <= 10 and 19 <= peak <= 26
    assert autoscale_a10_scenario(max_replicas=8).cluster.num_replicas == 8
    assert {"routing-a10", "routing-h100-prefill", "autoscale-a10"} <= set(SCENARIOS)
