"""The engine's compiled data structures: block counts and the queue of iteration ends."""
from __future__ import annotations

import numpy as np

from sim_core import state as S
from sim_core.queues import blocks_for, ev_pop, ev_push, ev_replace_top


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


def test_iteration_ends_come_by_time_then_replica_whatever_the_pushes_and_replacements():
    rng = np.random.default_rng(7)
    for replicas in (1, 3, 8, 64):
        st = _state(16, replicas)
        ht, hr, si = st.ev_t, st.ev_r, st.si
        # Times on a coarse grid so that ties (broken by the replica id) are common.
        times = rng.integers(0, 5, replicas).astype(np.float64)
        for r in rng.permutation(replicas):
            ev_push(ht, hr, si, times[r], r)
        expected = sorted(zip(times, range(replicas)))
        # Replacing the top with a later end keeps the order a sorted list would give, also
        # across the moves of the queue's window back to the start of its buffer.
        for _ in range(S.EV_SPARE + 3 * replicas):
            t, r = expected.pop(0)
            top = si[S.S_EV_HEAD]
            assert (ht[top], hr[top]) == (t, r)
            new = t + float(rng.integers(0, 4))
            ev_replace_top(ht, hr, si, new, r)
            expected = sorted(expected + [(new, r)])
        popped = []
        while si[S.S_EV_LEN] > 0:
            top = si[S.S_EV_HEAD]
            popped.append((ht[top], int(hr[top])))
            ev_pop(si)
        assert popped == expected
        assert si[S.S_EV_HEAD] == 0  # an emptied queue starts again at the front
