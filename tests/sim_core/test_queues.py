"""The engine's compiled data structures: block counts and the tree of iteration ends."""
from __future__ import annotations

import numpy as np

from sim_core import state as S
from sim_core.queues import blocks_for, ev_set


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
