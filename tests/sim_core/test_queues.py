"""The engine's compiled data structures: block counts, the tree of iteration ends and the
running columns."""
from __future__ import annotations

import numpy as np
import pytest

from sim_core import simulate
from sim_core import state as S
from sim_core.config import ClusterConfig
from sim_core.queues import blocks_for, ev_set
from tests.conftest import make_trace


def _state(block_size: int, replicas: int = 1) -> S.SimState:
    one = np.ones(1, np.int64)
    return S.allocate(arrived_at=np.zeros(1), prompt=one, decode=one, num_replicas=replicas,
                      num_blocks=8, block_size=block_size, watermark=0, chunk=64, batch_cap=4,
                      scheduler="sarathi", closed_loop_users=0, think_time_s=0.0,
                      arrival_limit_s=np.inf, record_timeline=False)


def test_blocks_for_is_the_ceiling_for_every_block_size():
    for bs in (1, 2, 3, 7, 12, 16, 17, 32, 64):
        shift = int(_state(bs).si[S.S_BLOCK_SHIFT])
        assert (shift >= 0) == (bs & (bs - 1) == 0)
        for tokens in range(0, 300):
            assert blocks_for(tokens, bs, shift) == -(-tokens // bs), (bs, tokens)


def test_iteration_ends_come_by_time_then_replica_whatever_the_changes():
    rng = np.random.default_rng(7)
    for replicas in (1, 3, 8, 64, 100):
        st = _state(16, replicas)
        et, ew = st.ev_t, st.ev_w
        assert et[1] == np.inf  # empty
        pending = {}
        for _ in range(40 * replicas):
            r = int(rng.integers(replicas))
            # Times on a coarse grid so that ties (broken by the replica id) are common;
            # an end may be set, moved earlier or later (a stretch cut short), or taken.
            if r in pending and rng.random() < 0.3:
                del pending[r]
                ev_set(et, ew, r, np.inf)
            else:
                pending[r] = float(rng.integers(0, 6))
                ev_set(et, ew, r, pending[r])
            if pending:
                t, first = min((t, q) for q, t in pending.items())
                assert (et[1], ew[1]) == (t, first)
            else:
                assert et[1] == np.inf
        # Taking the first end each time gives them all in (time, replica) order.
        taken = []
        while et[1] < np.inf:
            r = int(ew[1])
            taken.append((et[1], r))
            ev_set(et, ew, r, np.inf)
        assert taken == sorted((t, q) for q, t in pending.items())


def _check_running_progress(st) -> int:
    """rv and rh hold every running request's progress: the running columns' values, and
    sums the engine keeps apart.  Returns the most requests running on a replica."""
    run = st.slots[S.SL_RUN]
    most = 0
    for r in range(st.pi.shape[1]):
        n = int(st.pi[S.P_RUNNING, r])
        ids = run[r, :n]
        most = max(most, n)
        assert np.array_equal(st.rv[S.V_PROCESSED, ids], st.ru[S.RU_PROCESSED, r, :n])
        assert np.array_equal(st.rv[S.V_BLOCKS, ids], st.ru[S.RU_BLOCKS, r, :n])
        assert np.array_equal(st.rh[S.H_GENERATED, ids], st.ru[S.RU_GENERATED, r, :n])
        assert st.rv[S.V_BLOCKS, ids].sum() == st.pi[S.P_ALLOC, r]
        assert (st.rv[S.V_STATE, ids] == S.ST_RUNNING).all()
    assert st.rh[S.H_GENERATED].sum() == st.si[S.S_GENERATED_TOKENS]
    return most


class _Audit:
    """A router (LLQ) and an autoscaler (keeps the size) that check the progress in rv/rh
    at every call."""

    def __init__(self):
        self.st, self.calls, self.ticks, self.max_running = None, 0, 0, 0

    def hook(self, st) -> None:
        self.st = st

    def reset(self, info, rng) -> None:
        pass

    def route(self, view):
        self.max_running = max(self.max_running, _check_running_progress(self.st))
        self.calls += 1
        load = view.num_waiting + view.num_running
        return [(int(q), int(load.argmin())) for q in view.queue]

    def decide(self, stats):
        self.max_running = max(self.max_running, _check_running_progress(self.st))
        self.ticks += 1
        return stats.num_serving


def _busy_cluster(scheduler: str):
    rng = np.random.default_rng(3)
    n = 80
    trace = make_trace(np.sort(rng.uniform(0, 8, n)), rng.integers(20, 300, n),
                       rng.integers(20, 500, n))
    cluster = ClusterConfig(num_replicas=2).with_replica(num_blocks=90, block_size=16,
                                                         watermark_fraction=0.0,
                                                         scheduler=scheduler)
    return cluster, trace


@pytest.mark.parametrize("scheduler", ["sarathi", "vllm"])
def test_a_router_reads_every_running_requests_progress_from_rv(scheduler):
    # The engine keeps a running request's progress beside its id in the running set
    # (state.ru) and writes rv's copies before a Python router is called: with pre-emptions
    # and decode stretches, at every call, rv agrees with the running columns and with the
    # blocks and tokens the engine counts per replica.
    cluster, trace = _busy_cluster(scheduler)
    audit = _Audit()
    res = simulate(cluster, trace, audit, share_state=audit.hook, record_timeline=False)
    assert audit.calls >= 80 and audit.max_running >= 3
    assert res.summary["preemptions"] > 0
    st = res.state
    done = st.rv[S.V_STATE] == S.ST_DONE  # and at the end every request is complete in rv/rh
    assert done.all() and np.array_equal(st.rh[S.H_GENERATED], st.rh[S.H_DECODE0])
    assert np.array_equal(st.rv[S.V_PROCESSED], st.rh[S.H_TOTAL]) and not st.rv[S.V_BLOCKS].any()


def test_an_autoscaler_tick_sees_every_running_requests_progress_in_rv():
    # With a compiled router the engine returns to Python only at ticks (and the end): a
    # Python autoscaler's tick must find rv/rh as current as a router call does.
    from sim_core.autoscale import AutoscaleConfig

    cluster, trace = _busy_cluster("sarathi")
    audit = _Audit()
    simulate(cluster, trace, "llq", share_state=audit.hook, record_timeline=False,
             autoscaler=audit, autoscale=AutoscaleConfig(interval_s=0.25, cold_start_s=0.0))
    assert audit.ticks >= 20 and audit.max_running >= 3 and audit.calls == 0
