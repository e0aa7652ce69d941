"""Hand-worked scenarios with exact expected times (iteration = 10 ms + 1 ms per token)."""
import numpy as np
import pytest

from sim_core import simulate
from sim_core.config import ClusterConfig
from tests.conftest import linear_table, make_trace

A = pytest.approx


def one_replica(**kw):
    return ClusterConfig(num_replicas=1).with_replica(**kw)


def test_single_request_prefill_then_decodes(table):
    # 100-token prefill: 110 ms and the first token; two decodes of 11 ms each.
    res = simulate(one_replica(), make_trace([0.0], [100], [3]), "llq", latency=table)
    r = res.requests.iloc[0]
    assert r.first_token_at == A(0.110)
    assert r.completed_at == A(0.132)
    assert r.prefill_s == A(0.110) and r.decode_s == A(0.022)
    assert r.restarts == 0 and r.tpot_s == A(0.011)


def test_chunked_prefill_splits_long_prompt(table):
    # chunk 64: a 100-token prompt takes two iterations (64 then 36 tokens).
    res = simulate(one_replica(chunk_size=64), make_trace([0.0], [100], [1]), "llq", latency=table)
    r = res.requests.iloc[0]
    assert r.first_token_at == A(0.074 + 0.046)
    assert r.completed_at == A(0.120)  # decode length 1: done when the prefill finishes


def test_decode_joins_new_prefill_in_one_batch(table):
    # B arrives while A prefills; the next iteration mixes A's decode with B's prefill.
    res = simulate(one_replica(), make_trace([0.0, 0.05], [100, 50], [3, 2]), "llq", latency=table)
    a, b = res.requests.iloc[0], res.requests.iloc[1]
    assert a.first_token_at == A(0.110)
    # Iteration 2 at 0.110: A decode (1) + B prefill (50) = 51 tokens -> 61 ms.
    assert b.first_token_at == A(0.171) and b.first_scheduled_at == A(0.110)
    # Iteration 3: A decode + B decode = 2 tokens -> 12 ms; both finish.
    assert a.completed_at == A(0.183) and b.completed_at == A(0.183)
    assert b.replica_queue_s == A(0.060)


def test_preemption_of_latest_arrival_and_recompute(table):
    # Pool of 3 blocks (48 tokens), no watermark.  A and B (16 + 20 tokens each) both
    # start; when B needs its second block none is free, so B (the latest arrival) is
    # pre-empted, its prompt becomes the 17 tokens processed, and it waits until A ends.
    cl = one_replica(num_blocks=3, watermark_fraction=0.0)
    res = simulate(cl, make_trace([0.0, 0.0], [16, 16], [20, 20]), "llq", latency=table)
    a, b = res.requests.iloc[0], res.requests.iloc[1]
    assert a.restarts == 0 and a.first_token_at == A(0.026)
    assert a.completed_at == A(0.053 + 18 * 0.011)
    assert b.restarts == 1 and b.tokens_recomputed == 17 and b.final_prompt_tokens == 17
    assert b.first_token_at == A(0.053)            # the first attempt's first token is kept
    assert b.lost_to_restarts_s == A(0.027)        # admitted at 0.026, evicted at 0.053
    re_start = a.completed_at
    assert b.completed_at == A(re_start + 0.027 + 18 * 0.011)
    assert b.replica_queue_s == A(0.026 + (re_start - 0.053))
    parts = b.global_queue_s + b.replica_queue_s + b.prefill_s + b.decode_s + b.lost_to_restarts_s
    assert parts == A(b.e2e_s)


def test_watermark_blocks_admission(table):
    # 10 blocks, 10% watermark = 1 block: a 9-block prompt (144 tokens) may not start
    # while another request holds a block; it starts once that one finishes.
    cl = one_replica(num_blocks=10, watermark_fraction=0.1)
    res = simulate(cl, make_trace([0.0, 0.001], [16, 129], [1, 1]), "llq", latency=table)
    a, b = res.requests.iloc[0], res.requests.iloc[1]
    assert a.completed_at == A(0.026)
    assert b.first_scheduled_at == A(0.026)   # needs ceil(129/16)=9 blocks: 10-1-9 >= 1 only when A is gone


def test_batch_cap_limits_admitted_requests(table):
    cl = one_replica(batch_cap=2)
    res = simulate(cl, make_trace([0, 0, 0], [10, 10, 10], [2, 2, 2]), "llq", latency=table)
    df = res.requests
    # The first iteration holds only request 0 (it started alone at t=0); then 1 joins; 2 waits
    # until a slot frees.
    assert df.first_scheduled_at.iloc[2] > df.first_scheduled_at.iloc[1]
    assert (df.groupby("first_scheduled_at").size() <= 2).all()


def test_vllm_prefill_first_no_mixing(table):
    # vLLM v0: B's prefill runs alone (prefill batches have priority), pausing A's decodes.
    cl = one_replica(scheduler="vllm")
    res = simulate(cl, make_trace([0.0, 0.05], [100, 50], [3, 2]), "llq", latency=table)
    a, b = res.requests.iloc[0], res.requests.iloc[1]
    assert a.first_token_at == A(0.110)
    assert b.first_token_at == A(0.110 + 0.060)          # 50-token prefill alone
    assert a.completed_at == A(0.170 + 0.012 + 0.011)    # two decodes: with B, then alone
    assert b.completed_at == A(0.182)


def test_vllm_padded_token_cap(table):
    # chunk 100: prompts 60 and 30 cannot share a prefill batch (2 * 60 > 100).
    cl = one_replica(scheduler="vllm", chunk_size=100)
    res = simulate(cl, make_trace([0.0, 0.0, 0.0], [10, 60, 30], [1, 1, 1]), "round_robin",
                   latency=table)
    # t=0: request 0 alone (arrived first).  Then 1 and 2 are waiting: 60 alone (70 ms),
    # then 30 alone.
    df = res.requests.set_index("request_id")
    assert df.loc[1, "first_scheduled_at"] == A(0.020)
    assert df.loc[2, "first_scheduled_at"] == A(0.020 + 0.070)


def test_time_parts_sum_to_e2e_and_router_hold(table):
    # A router that holds everything until 0.5 s shows up as global-queue time.
    class Late:
        def reset(self, info, rng):
            pass

        def route(self, view):
            if view.now < 0.5:
                return ()
            return [(int(q), 0) for q in view.queue]

    tr = make_trace([0.0, 0.2, 0.6], [20, 20, 20], [2, 2, 2])
    res = simulate(one_replica(), tr, Late(), latency=table)
    df = res.requests
    assert df.routed_at.iloc[0] >= 0.5 or df.routed_at.iloc[0] == A(0.6)
    total = df[["global_queue_s", "replica_queue_s", "prefill_s", "decode_s",
                "lost_to_restarts_s"]].sum(axis=1)
    np.testing.assert_allclose(total, df.e2e_s, rtol=0, atol=1e-9)
