"""Invariants of the engine over random small clusters and workloads (hypothesis)."""
import math

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from sim_core import simulate
from sim_core.autoscale import AutoscaleConfig
from sim_core import state as S
from sim_core.config import ClusterConfig, ReplicaConfig
from sim_core.ideal import min_iterations
from tests.conftest import linear_table, make_trace

TABLE = linear_table(overhead_ms=5.0, per_token_ms=0.5)
ROUTERS = ["round_robin", "random", "lor", "llq", "least_blocks", "hra", "hra:decode_growth=0.0"]


@st.composite
def scenarios(draw):
    n = draw(st.integers(1, 25))
    prompts = draw(st.lists(st.integers(1, 60), min_size=n, max_size=n))
    decodes = draw(st.lists(st.integers(1, 60), min_size=n, max_size=n))
    gaps = draw(st.lists(st.floats(0.0, 0.2), min_size=n, max_size=n))
    bs = draw(st.sampled_from([1, 4, 16]))
    wm_frac = draw(st.sampled_from([0.0, 0.01, 0.1]))
    worst = max(p + d for p, d in zip(prompts, decodes))
    need = math.ceil(worst / bs)
    extra = draw(st.integers(0, 3 * need))
    # Smallest pool for which the watermark rule still admits the largest request.
    blocks = need + extra + 1
    while need + int(wm_frac * blocks) > blocks:
        blocks += 1
    rc = ReplicaConfig(num_blocks=blocks, block_size=bs, watermark_fraction=wm_frac,
                       scheduler=draw(st.sampled_from(["sarathi", "vllm"])),
                       chunk_size=draw(st.sampled_from([8, 32, 256])),
                       batch_cap=draw(st.integers(1, 6)))
    cluster = ClusterConfig(num_replicas=draw(st.integers(1, 3)), replica=rc)
    trace = make_trace(np.cumsum(gaps), prompts, decodes)
    scaling = None
    if draw(st.booleans()):
        scaling = (AutoscaleConfig(interval_s=draw(st.sampled_from([0.01, 0.05, 0.3])),
                                   cold_start_s=draw(st.sampled_from([0.0, 0.02, 0.5])),
                                   initial_replicas=draw(st.integers(1, cluster.num_replicas))),
                   draw(st.integers(0, 100)))
    return cluster, trace, draw(st.sampled_from(ROUTERS)), draw(st.integers(0, 3)), scaling


class RandomScaler:
    """Asks for a random replica count at every tick: a stress test of the lifecycle."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def reset(self, info, rng):
        self.n = info.num_replicas

    def decide(self, stats):
        return int(self.rng.integers(0, self.n + 2))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_engine_invariants(case):
    cluster, trace, router, seed, scaling = case
    kw = {}
    if scaling is not None:
        kw = dict(autoscaler=RandomScaler(scaling[1]), autoscale=scaling[0])
    res = simulate(cluster, trace, router, latency=TABLE, seed=seed, **kw)
    st_, df = res.state, res.requests
    n = len(trace.prompt_tokens)
    # Every request completes, exactly once.
    assert len(df) == n and (st_.rv[S.V_STATE] == S.ST_DONE).all()
    # Decode tokens generated (and kept) equal the decode lengths, per request and in total.
    np.testing.assert_array_equal(st_.rh[S.H_GENERATED], st_.rh[S.H_DECODE0])
    assert st_.si[S.S_GENERATED_TOKENS] == int(np.sum(trace.decode_tokens))
    # Memory: all blocks returned; the pool was never exceeded at any global event.
    assert (st_.pi[S.P_ALLOC] == 0).all() and (st_.rv[S.V_BLOCKS] == 0).all()
    tl = res.timeline
    assert (tl.allocated_blocks <= tl.num_blocks).all() and (tl.allocated_blocks >= 0).all()
    # No schedule beats the KV-capacity bound on iterations.
    rc = cluster.replica
    assert res.summary["iterations"] >= min_iterations(
        trace.prompt_tokens, trace.decode_tokens, rc.num_blocks, rc.block_size) - 1e-9
    # Restart bookkeeping.
    restarted = df.restarts > 0
    assert ((df.tokens_recomputed > 0) == restarted).all()
    assert (df.final_prompt_tokens >= df.prompt_tokens).all()
    assert (df.final_prompt_tokens[~restarted] == df.prompt_tokens[~restarted]).all()
    assert (df.final_prompt_tokens < df.prompt_tokens + df.decode_tokens).all()
    assert (df.lost_to_restarts_s[~restarted] == 0).all()
    # Times are ordered and the five parts add up to the end-to-end time.
    assert (df.routed_at >= df.arrived_at).all()
    assert (df.first_scheduled_at >= df.routed_at).all()
    assert (df.first_token_at > df.first_scheduled_at).all()
    assert (df.completed_at >= df.first_token_at).all()
    parts = df[["global_queue_s", "replica_queue_s", "prefill_s", "decode_s",
                "lost_to_restarts_s"]].sum(axis=1)
    np.testing.assert_allclose(parts, df.e2e_s, rtol=1e-9, atol=1e-9)
    assert ((df[["global_queue_s", "replica_queue_s", "prefill_s", "decode_s"]]) >= -1e-12).all().all()
    # Determinism: the same inputs and seed give the same table.
    if scaling is not None:
        kw = dict(autoscaler=RandomScaler(scaling[1]), autoscale=scaling[0])
        # Only active replicas received requests; GPU time never exceeds the whole pool's.
        assert res.gpu_hours <= cluster.num_replicas * float(st_.sf[S.SF_NOW]) / 3600 + 1e-12
        assert res.gpu_hours > 0
        # Starting and draining are parts of the paid time, and a starting replica runs
        # no iterations: busy time fits in what was paid outside cold starts.
        life = res.lifecycle_gpu_hours
        assert min(life.values()) >= 0
        assert life["starting_gpu_hours"] + life["draining_gpu_hours"] <= res.gpu_hours + 1e-12
        assert res.summary["busy_gpu_hours"] <= \
            res.gpu_hours - life["starting_gpu_hours"] + 1e-12
    again = simulate(cluster, trace, router, latency=TABLE, seed=seed, **kw).requests
    assert again.equals(df)
