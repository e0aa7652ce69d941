"""Decode fast-forward gives exactly the results of stepping every iteration."""
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from sim_core import simulate
from sim_core import state as S
from sim_core.autoscale import AutoscaleConfig
from sim_core.config import ClusterConfig, ReplicaConfig
from sim_core.latency import LatencyTable, iteration_ms
from tests.conftest import linear_table, make_trace
from tests.sim_core.same_run import assert_same_run
from workloads import SCENARIOS

STEP = dict(fast_forward=False, compiled_router=False)
FAST = dict(fast_forward=True, compiled_router=False)


def attention_table():
    """10 ms + 1 ms per token + decode attention growing with the mean KV length, so that
    every decode iteration of a stretch has a different latency."""
    z = np.zeros((2, 2))
    return LatencyTable(gpu="test", model="attn", tp=1, provenance="hand-made test table",
                        tokens=[1.0, 1e6], token_ms=[1.0, 1e6], prefill_kv=[1.0, 1e6],
                        prefill_chunk=[1.0, 1e6], prefill_ms=z, decode_n=[1.0, 1e6],
                        decode_kv=[1.0, 1e4], decode_ms=[[0.3, 70.0], [0.3, 70.0]],
                        overhead_ms=10.0)


def both(cluster, trace, router="llq", compiled_router=False, **kw):
    """The step-by-step and the fast-forwarded run, checked equal; returns the fast one."""
    step = simulate(cluster, trace, router, **STEP, **kw)
    fast = simulate(cluster, trace, router, **{**FAST, "compiled_router": compiled_router}, **kw)
    assert_same_run(step, fast)
    return fast


def one_replica(**kw):
    return ClusterConfig(num_replicas=1).with_replica(**kw)


def test_lone_decode_stretch_adds_latencies_one_by_one():
    # One request: a 100-token prefill, then 49 decodes whose latencies all differ.  The
    # completion time is the float sum, iteration by iteration, of those latencies.
    table = attention_table()
    blob = table.pack()
    res = both(one_replica(), make_trace([0.0], [100], [50]), latency=table)
    t = 0.0 + iteration_ms(blob, 100, 0, 0, 0.0) / 1000.0
    first = t
    for j in range(49):
        t = t + iteration_ms(blob, 1, 1, 101 + j, 0.0) / 1000.0
    r = res.requests.iloc[0]
    assert r.first_token_at == first and r.completed_at == t
    assert res.summary["iterations"] == 50
    # The 49 decodes ran as one stretch: its last iteration had KV sum 101 + 48.
    assert res.state.ph[S.PH_FF_KV, 0] == 149


def test_arrival_cuts_a_stretch_at_the_iteration_in_flight():
    # A decodes alone; B arrives at 0.5 s and joins at the first iteration end after it.
    table = attention_table()
    blob = table.pack()
    res = both(one_replica(), make_trace([0.0, 0.5], [16, 30], [400, 5]), latency=table)
    t = iteration_ms(blob, 16, 0, 0, 0.0) / 1000.0
    kv = 17
    while t < 0.5:
        t = t + iteration_ms(blob, 1, 1, kv, 0.0) / 1000.0
        kv += 1
    b = res.requests.set_index("request_id").loc[1]
    assert b.first_scheduled_at == t and b.routed_at == 0.5


def test_arrival_at_the_end_of_a_lazy_stretch_iteration_comes_after_it():
    # 125 ms iterations (exact binary sums): A's decodes end at 0.125, 0.25, ..., 1.0, ...
    # B arrives at 1.0 exactly.  The iteration end at 1.0 comes first (ties go to
    # iteration ends), so B joins at the one after, 1.125, also when the stretch queued
    # only its last end (compiled LLQ, no timeline).
    table = linear_table(overhead_ms=125.0, per_token_ms=0.0)
    res = both(one_replica(), make_trace([0.0, 1.0], [16, 30], [40, 5]), "llq",
               compiled_router=True, latency=table, record_timeline=False)
    b = res.requests.set_index("request_id").loc[1]
    assert b.routed_at == 1.0 and b.first_scheduled_at == 1.125


@pytest.mark.parametrize("scheduler", ["sarathi", "vllm"])
def test_block_boundaries_and_preemption_inside_decode_runs(scheduler):
    # A 6-block pool, no watermark: the three requests outgrow it while decoding, so
    # stretches must stop before the formation that pre-empts the latest arrival.
    cl = one_replica(num_blocks=6, block_size=4, watermark_fraction=0.0, scheduler=scheduler)
    res = both(cl, make_trace([0.0, 0.0, 0.001], [5, 3, 2], [14, 12, 9]),
               latency=attention_table())
    assert res.summary["preemptions"] > 0


def test_ticks_inside_stretches_see_the_stepped_state():
    # The throughput autoscaler reads decode tokens generated so far at every tick.
    cl = ClusterConfig(num_replicas=3)
    tr = make_trace(np.linspace(0, 2, 12), [20] * 12, [300] * 12)
    both(cl, tr, autoscaler="throughput:high=50,low=10,cooldown_s=0.2",
         autoscale=AutoscaleConfig(interval_s=0.13, cold_start_s=0.05, initial_replicas=1),
         latency=attention_table())


def test_user_router_sees_the_stepped_view():
    # A Python router called at every event reads processed tokens and blocks.
    seen = {FAST["fast_forward"]: [], STEP["fast_forward"]: []}

    class Peek:
        def reset(self, info, rng):
            pass

        def route(self, view):
            seen[key].append((view.now, view.event, view.processed_tokens.sum(),
                              view.allocated_blocks.sum()))
            return [(int(q), int(q) % 2) for q in view.queue]

    tr = make_trace(np.linspace(0, 1, 8), [30] * 8, [90] * 8)
    for key, kw in ((False, STEP), (True, FAST)):
        simulate(ClusterConfig(num_replicas=2), tr, Peek(), latency=attention_table(), **kw)
    assert seen[True] == seen[False] and len(seen[True]) == 16


def _preset_cases():
    for name, sc in SCENARIOS.items():
        for router in ("llq", "hra"):
            yield pytest.param(name, router, id=f"{name}-{router}")


@pytest.mark.parametrize("name,router", list(_preset_cases()))
def test_presets_seed0_full_duration(name, router):
    sc = SCENARIOS[name]
    kw = {}
    if sc.autoscale is not None:
        kw = dict(autoscaler="proportional", autoscale=sc.autoscale, record_timeline=False)
    both(sc.cluster, sc.trace(0), router, **kw)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize("router", ["llq", "round_robin"])
def test_lazy_stretches_equal_stepping(name, router):
    """Without a timeline and with a compiled router that reads no progress, a stretch
    queues only its last iteration end and is caught up or cut short at global events."""
    sc = SCENARIOS[name]
    kw = dict(record_timeline=False)
    if sc.autoscale is not None:
        kw.update(autoscaler="proportional", autoscale=sc.autoscale)
    tr = sc.trace(0)
    lazy = simulate(sc.cluster, tr, router, **kw)
    assert lazy.state.si[S.S_TWIN] != 0
    assert_same_run(simulate(sc.cluster, tr, router, **STEP, **kw), lazy)


@pytest.mark.parametrize("replicas", [16, 64])
def test_lazy_stretches_on_many_replicas_equal_stepping(replicas):
    """routing-a10's workload at its load per replica on a larger cluster (as the scaling
    benchmark runs it): many stretches are caught up, cut short and end together."""
    sc = SCENARIOS["routing-a10"]
    wl = sc.workload
    arrival = type(wl.arrival)(**{**wl.arrival.__dict__, "qps": 7.5 * replicas / 4})
    tr = type(wl)(**{**wl.__dict__, "arrival": arrival}).trace(300.0, 1)
    cl = ClusterConfig(num_replicas=replicas, replica=sc.cluster.replica)
    assert_same_run(simulate(cl, tr, "llq", record_timeline=False, **STEP),
                    simulate(cl, tr, "llq", record_timeline=False))


def test_vllm_scheduler_under_memory_pressure():
    sc = SCENARIOS["routing-a10"]
    cl = sc.cluster.with_replica(scheduler="vllm", num_blocks=900)
    res = both(cl, sc.workload.trace(150.0, 0), "llq")
    assert res.summary["preemptions"] > 0


@st.composite
def small_cases(draw):
    n = draw(st.integers(1, 12))
    prompts = draw(st.lists(st.integers(1, 40), min_size=n, max_size=n))
    decodes = draw(st.lists(st.integers(1, 200), min_size=n, max_size=n))
    gaps = draw(st.lists(st.floats(0.0, 0.5), min_size=n, max_size=n))
    bs = draw(st.sampled_from([1, 4, 12, 16]))  # 12: blocks by division, not a shift
    wm_frac = draw(st.sampled_from([0.0, 0.1]))
    need = math.ceil(max(p + d for p, d in zip(prompts, decodes)) / bs)
    blocks = need + draw(st.integers(0, 2 * need)) + 1
    while need + int(wm_frac * blocks) > blocks:
        blocks += 1
    rc = ReplicaConfig(num_blocks=blocks, block_size=bs, watermark_fraction=wm_frac,
                       scheduler=draw(st.sampled_from(["sarathi", "vllm"])),
                       chunk_size=draw(st.sampled_from([8, 64, 512])),
                       batch_cap=draw(st.integers(1, 8)))
    cluster = ClusterConfig(num_replicas=draw(st.integers(1, 3)), replica=rc)
    kw = {}
    if draw(st.booleans()):
        kw = dict(autoscaler=f"throughput:high={draw(st.sampled_from([20, 200]))},low=5,"
                             f"cooldown_s={draw(st.sampled_from([0.0, 0.5]))}",
                  autoscale=AutoscaleConfig(
                      interval_s=draw(st.sampled_from([0.05, 0.3])),
                      cold_start_s=draw(st.sampled_from([0.0, 0.2])),
                      initial_replicas=draw(st.integers(1, cluster.num_replicas))))
    router = draw(st.sampled_from(["llq", "lor", "least_blocks", "round_robin", "random",
                                   "hra", "least_prefill"]))
    kw["record_timeline"] = draw(st.booleans())
    kw["compiled_router"] = draw(st.booleans())
    return cluster, make_trace(np.cumsum(gaps), prompts, decodes), router, kw


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_cases())
def test_fast_forward_equals_stepping_on_random_clusters(case):
    cluster, trace, router, kw = case
    both(cluster, trace, router, latency=attention_table(), seed=1, **kw)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["a10/llama-3-8b/1", "h100/llama-3.3-70b-fp8/4", "attn"]),
       st.integers(1, 700), st.integers(0, 200_000))
def test_decode_iteration_ms_is_iteration_ms_bit_for_bit(name, nb, kv_extra):
    from sim_core.latency import decode_iteration_ms, decode_segment, fixed_ms, load_latency_table

    if name == "attn":
        blob = attention_table().pack()
    else:
        gpu, model, tp = name.split("/")
        blob = load_latency_table(gpu, model, int(tp)).pack()
    kv = nb + kv_extra  # every decode holds at least one token
    seg, tx = decode_segment(blob, nb)
    fast = decode_iteration_ms(blob, fixed_ms(blob, float(nb), 0.0), seg, tx, nb, kv)
    assert fast == iteration_ms(blob, nb, nb, kv, 0.0)


def _stretch_by_definition(p, b, total, bs, free):
    """stretch_length's answer read off its definition: the first iteration that completes
    a request, cut at the last formation whose new blocks (``ceil((p + j) / bs) - b`` per
    request) still fit in ``free``."""
    jc = min(t - d - 1 for t, d in zip(total, p))
    if jc <= 0:
        return 1

    def need(j):
        return sum(max(0, -(-(d + j) // bs) - h) for d, h in zip(p, b))

    fits = [j for j in range(jc + 1) if need(j) <= free]
    return 1 + max(fits)


@st.composite
def decode_batches(draw):
    bs = draw(st.sampled_from([1, 2, 3, 16]))
    nb = draw(st.integers(1, 6))
    p = [draw(st.integers(1, 200)) for _ in range(nb)]
    # Usually a request holds the blocks its tokens fill (every next-block offset in
    # 1..bs); sometimes one block more or less, which takes the bisection.
    b = [-(-d // bs) + draw(st.sampled_from([0, 0, 0, 0, 1, -1])) for d in p]
    b = [max(h, 0) for h in b]
    total = [d + draw(st.integers(0, 300)) for d in p]
    need0 = sum(max(0, -(-d // bs) - h) for d, h in zip(p, b))
    return p, b, total, bs, need0 + draw(st.integers(0, 60))


@settings(max_examples=400, deadline=None)
@given(decode_batches())
def test_stretch_length_is_its_definition(case):
    from sim_core.fastforward import stretch_length

    p, b, total, bs, free = case
    nb = len(p)
    # The batch of a stretch is the replica's running set, in order (sim_core.fastforward).
    ru = np.zeros((S.NRU, 1, nb + 1), np.int64)
    ru[S.RU_PROCESSED, 0, :nb], ru[S.RU_BLOCKS, 0, :nb], ru[S.RU_TOTAL, 0, :nb] = p, b, total
    pi = np.zeros((S.NPI, 1), np.int64)
    pi[S.P_BATCH_LEN, 0] = nb
    pi[S.P_NUM_BLOCKS, 0] = sum(b) + free
    pi[S.P_ALLOC, 0] = sum(b)
    si = np.zeros(S.NSI, np.int64)
    si[S.S_BLOCK_SIZE] = bs
    si[S.S_BLOCK_SHIFT] = bs.bit_length() - 1 if bs & (bs - 1) == 0 else -1
    counts = np.zeros(bs + 1, np.int64)
    got = stretch_length(ru, pi, si, counts, 0)
    assert got == _stretch_by_definition(p, b, total, bs, free)
    assert not counts.any()  # the scratch is left as found


def test_warm_up_loads_both_engine_entry_points():
    # A fresh interpreter: in this one earlier tests have loaded both already.
    code = ("from sim_core import engine; from sim_core.facade import warm_up; warm_up(); "
            "print(len(engine.advance.signatures), len(engine.advance_lazy.signatures))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=600)
    assert out.stdout.split() == ["1", "1"]
