"""The batch-scheduler layer: waiting-queue order policies, worked by hand and on routing-a10."""
import numpy as np
import pytest

from sim_core import simulate
from sim_core.batch_policies import (BATCH_POLICIES, AgedShortestPrefillFirst, ArrivalOrder,
                                     BatchPolicyLoadError, ShortestPrefillFirst,
                                     make_batch_policy, queue_key_of)
from sim_core.config import ClusterConfig
from tests.conftest import make_trace

A = pytest.approx


def serial_replica():
    # One request at a time, so the waiting queue's order is the service order.
    return ClusterConfig(num_replicas=1).with_replica(batch_cap=1)


# A (100 tokens) runs 0-0.110; B (200) and C (10) arrive while it does.
TRACE = make_trace([0.0, 0.01, 0.02], [100, 200, 10], [1, 1, 1])


def test_fifo_serves_in_arrival_order(table):
    df = simulate(serial_replica(), TRACE, "llq", latency=table, batch_policy="fifo").requests
    assert df.completed_at.tolist() == A([0.110, 0.320, 0.340])


def test_shortest_prefill_first_serves_the_short_prompt_first(table):
    df = simulate(serial_replica(), TRACE, "llq", latency=table,
                  batch_policy="shortest_prefill_first").requests
    assert df.completed_at.tolist() == A([0.110, 0.340, 0.130])


def test_aged_spf_interpolates_between_fifo_and_spf(table):
    # Key = arrival + s * prompt: B 0.01 + 200 s, C 0.02 + 10 s.  C first iff s > 1/19000.
    fast = simulate(serial_replica(), TRACE, "llq", latency=table,
                    batch_policy="aged_spf:seconds_per_token=0.001").requests
    slow = simulate(serial_replica(), TRACE, "llq", latency=table,
                    batch_policy="aged_spf:seconds_per_token=0.00001").requests
    assert fast.completed_at.iloc[2] == A(0.130)
    assert slow.completed_at.iloc[2] == A(0.340)


def test_user_function_and_class_from_file(table, tmp_path):
    f = tmp_path / "bp.py"
    f.write_text("def longest_first(prompt_tokens, arrived_at):\n    return -prompt_tokens\n\n"
                 "class Spf:\n    def key(self, prompt_tokens, arrived_at):\n"
                 "        return prompt_tokens\n")
    by_fn = simulate(serial_replica(), TRACE, "llq", latency=table,
                     batch_policy=f"{f}:longest_first").requests
    assert by_fn.completed_at.tolist() == A([0.110, 0.320, 0.340])  # B (200) before C (10)
    by_cls = simulate(serial_replica(), TRACE, "llq", latency=table,
                      batch_policy=f"{f}:Spf").requests
    assert by_cls.completed_at.iloc[2] == A(0.130)
    lam = simulate(serial_replica(), TRACE, "llq", latency=table,
                   batch_policy=lambda p, a: p).requests
    assert lam.completed_at.iloc[2] == A(0.130)


def test_registry_and_errors(tmp_path):
    assert {"fifo", "shortest_prefill_first", "aged_spf"} <= set(BATCH_POLICIES)
    assert isinstance(make_batch_policy(None), ArrivalOrder)
    assert queue_key_of("fifo") is None and queue_key_of(None) is None
    assert queue_key_of("spf")(123, 4.0) == 123.0
    p = make_batch_policy("aged_spf:seconds_per_token=0.5")
    assert isinstance(p, AgedShortestPrefillFirst) and p.key(10, 1.0) == A(6.0)
    assert isinstance(make_batch_policy(ShortestPrefillFirst), ShortestPrefillFirst)
    with pytest.raises(BatchPolicyLoadError, match="unknown batch policy"):
        make_batch_policy("nope")
    with pytest.raises(BatchPolicyLoadError, match="bad parameters"):
        make_batch_policy("aged_spf:seconds_per_token=-1")
    (tmp_path / "x.py").write_text("class NoKey:\n    pass\n")
    with pytest.raises(BatchPolicyLoadError, match="has no key"):
        make_batch_policy(f"{tmp_path / 'x.py'}:NoKey")
    with pytest.raises(BatchPolicyLoadError, match="has no class"):
        make_batch_policy(f"{tmp_path / 'x.py'}:Missing")


def test_spf_beats_fifo_on_routing_a10_under_llq():
    # The batch-a10 bar on three seeds: ordering replica queues by prompt length cuts mean
    # e2e under LLQ routing (which queues work at the replicas) on every seed.
    from workloads import get_scenario

    sc = get_scenario("routing-a10")
    fifo, spf = [], []
    for seed in (0, 1, 2):
        tr = sc.trace(seed)
        fifo.append(simulate(sc.cluster, tr, "llq", seed=seed, record_timeline=False,
                             batch_policy="fifo").summary["mean_e2e_s"])
        spf.append(simulate(sc.cluster, tr, "llq", seed=seed, record_timeline=False,
                            batch_policy="spf").summary["mean_e2e_s"])
    assert np.mean(spf) < 0.9 * np.mean(fifo)
    assert all(s <= f for s, f in zip(spf, fifo))


def test_preempted_request_is_not_overtaken_by_a_shorter_later_one(table):
    # Pool of 3 blocks, no watermark: B is pre-empted at 0.053 (as in the engine's exact
    # pre-emption case) and waits at the head for A's blocks.  C (5 tokens) arrives after
    # that; shortest-prefill-first orders new arrivals, but never ahead of a pre-empted
    # request, so C is first scheduled together with B's restart when A completes.
    cl = ClusterConfig(num_replicas=1).with_replica(num_blocks=3, watermark_fraction=0.0)
    trace = make_trace([0.0, 0.0, 0.06], [16, 16, 5], [20, 20, 1])
    df = simulate(cl, trace, "llq", latency=table, batch_policy="shortest_prefill_first").requests
    a, b, c = df.iloc[0], df.iloc[1], df.iloc[2]
    assert a.restarts == 0 and b.restarts == 1 and c.restarts == 0
    assert b.first_scheduled_at == A(0.026) and c.first_scheduled_at == A(a.completed_at)
    assert c.completed_at <= b.completed_at
