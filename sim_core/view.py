"""The read-only view of the cluster that a router receives.

Every array here is a non-writeable view of the simulator's visible columns, so reading
it costs nothing and writing to it raises.  Decode lengths, and the decode fast-forward's
bookkeeping derived from them, are not among them: they live in separate arrays (``rh``,
``ph``, ``pf``, ``ru``) that this object never references.  (In-process code can still reach the
writeable state through an array's ``.base``: it is trusted; a sandboxed policy maps the
shared memory read-only.)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim_core import state as S


@dataclass(frozen=True)
class ClusterInfo:
    """Static facts about the cluster, given to :meth:`Router.reset`."""

    num_replicas: int
    num_blocks: int
    block_size: int
    watermark_blocks: int
    batch_cap: int
    chunk_size: int
    scheduler: str
    gpu: str
    model: str
    tp: int


def _ro(a: np.ndarray) -> np.ndarray:
    v = a.view()
    v.flags.writeable = False
    return v


class ClusterView:
    """What a router may look at when it is called.

    Per request (index by request id): ``prompt_tokens`` (current prompt; a pre-empted
    decoding request re-prefills what it generated, so this grows on restarts),
    ``original_prompt_tokens``, ``processed_tokens``, ``arrived_at``, ``num_restarts``,
    ``replica_of`` (-1 until routed), ``state`` (codes in :mod:`sim_core.state`).

    Per replica: ``num_waiting``, ``num_running``, ``allocated_blocks``, ``num_blocks``,
    ``free_blocks``, ``waiting_prompt_tokens`` (sum over the waiting queue), ``accepting``
    (with an autoscaler, only active replicas may be routed to; ``all_accepting`` is True
    when every replica is active).

    The global queue: ``queue`` holds the ids of requests not yet routed, in arrival order.
    ``now`` is the simulated time and ``event`` is ``"arrival"``, ``"completion"`` or
    ``"ready"`` (a replica finished its cold start);
    ``completed`` holds the ids finished by the event that triggered this call.
    """

    __slots__ = ("info", "prompt_tokens", "original_prompt_tokens", "processed_tokens",
                 "arrived_at", "num_restarts", "replica_of", "state", "num_waiting",
                 "num_running", "allocated_blocks", "num_blocks", "waiting_prompt_tokens",
                 "_gq", "_si", "_sf", "_done", "_run_ids", "_links", "_pi", "event")

    def __init__(self, st: "S.SimState", info: ClusterInfo):
        rv, rf, pi = st.rv, st.rf, st.pi
        self.info = info
        self.prompt_tokens = _ro(rv[S.V_PROMPT])
        self.original_prompt_tokens = _ro(rv[S.V_PROMPT0])
        self.processed_tokens = _ro(rv[S.V_PROCESSED])
        self.state = _ro(rv[S.V_STATE])
        self.replica_of = _ro(rv[S.V_REPLICA])
        self.num_restarts = _ro(rv[S.V_RESTARTS])
        self.arrived_at = _ro(rf[S.F_ARRIVAL])
        self.num_waiting = _ro(pi[S.P_WAITING])
        self.num_running = _ro(pi[S.P_RUNNING])
        self.allocated_blocks = _ro(pi[S.P_ALLOC])
        self.num_blocks = _ro(pi[S.P_NUM_BLOCKS])
        self.waiting_prompt_tokens = _ro(pi[S.P_WAIT_PROMPT])
        self._gq = _ro(st.gq)
        self._si = _ro(st.si)
        self._sf = _ro(st.sf)
        self._done = _ro(st.done_buf)
        self._run_ids = _ro(st.run_ids)
        self._links = _ro(rv[S.V_NEXT])
        self._pi = _ro(pi)
        self.event = "arrival"

    @property
    def now(self) -> float:
        return float(self._sf[S.SF_NOW])

    @property
    def num_replicas(self) -> int:
        return self.info.num_replicas

    @property
    def block_size(self) -> int:
        return self.info.block_size

    @property
    def watermark_blocks(self) -> int:
        return self.info.watermark_blocks

    @property
    def queue(self) -> np.ndarray:
        """Ids of the requests in the global queue, in arrival order."""
        return self._gq[: self._si[S.S_GQ_LEN]]

    @property
    def completed(self) -> np.ndarray:
        """Ids of the requests completed by the event that triggered this call."""
        return self._done[: self._si[S.S_N_EVENT_DONE]]

    @property
    def accepting(self) -> np.ndarray:
        """Replicas that accept requests (active; not stopped, starting or draining)."""
        return self._pi[S.P_STATE] == S.R_ACTIVE

    @property
    def all_accepting(self) -> bool:
        """True when every replica accepts (always, without an autoscaler)."""
        return int(self._si[S.S_NUM_ACCEPTING]) == self.info.num_replicas

    @property
    def free_blocks(self) -> np.ndarray:
        return self.num_blocks - self.allocated_blocks

    def running(self, replica: int) -> np.ndarray:
        """Ids of the requests holding memory on ``replica``, oldest arrival first."""
        return self._run_ids[replica, : self.num_running[replica]].copy()

    def waiting(self, replica: int) -> np.ndarray:
        """Ids in ``replica``'s waiting queue, in the order it will admit them."""
        out = np.empty(int(self.num_waiting[replica]), np.int64)
        q = int(self._pi[S.P_WQ_HEAD, replica])
        k = 0
        while q >= 0:
            out[k] = q
            k += 1
            q = int(self._links[q])
        return out
