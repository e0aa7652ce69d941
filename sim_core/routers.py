"""Routers (global schedulers): the protocol, the built-in policies and their registry.

A router is called after every arrival and every completion with a read-only
:class:`~sim_core.view.ClusterView`.  It returns ``(request_id, replica)`` pairs for the
requests it places now; requests it does not name stay in the global queue.
"""
from __future__ import annotations

from typing import Iterable, Protocol, runtime_checkable

import numpy as np
from numba import njit

from sim_core.policies import PolicyLoadError, make_policy
from sim_core.view import ClusterInfo, ClusterView


# The older name of the policy-loading errors' base class (sim_core.policies).
RouterLoadError = PolicyLoadError


@runtime_checkable
class Router(Protocol):
    """The routing layer's extension point."""

    def reset(self, info: ClusterInfo, rng: np.random.Generator) -> None:
        """Called once before a simulation with static cluster facts and a seeded RNG."""

    def route(self, view: ClusterView) -> Iterable[tuple[int, int]]:
        """Return ``(request_id, replica)`` for each request to dispatch now."""

    # Optional: a class that sets ``idle_when_queue_empty = True`` in its own body promises
    # that ``route`` returns nothing and changes nothing while the global queue is empty;
    # the simulator then skips those calls (subclasses must repeat the promise).


class BaseRouter:
    """Convenience base: keeps ``info`` and ``rng`` from :meth:`reset`."""

    name = "base"

    def reset(self, info: ClusterInfo, rng: np.random.Generator) -> None:
        self.info = info
        self.rng = rng

    def route(self, view: ClusterView):  # pragma: no cover - abstract
        raise NotImplementedError


def _greedy(queue: np.ndarray, load: np.ndarray, weight: np.ndarray | None = None, view=None):
    """Place each queued request on the least-loaded replica, counting earlier placements.

    Ties go to the lowest replica id.  ``weight`` is what each placement adds (1 if None).
    Replicas that do not accept requests (autoscaling) are skipped; with none, nothing is
    routed and the requests wait in the global queue."""
    if view is not None and not view.all_accepting:
        acc = view.accepting
        if not acc.any():
            return ()
        load = np.where(acc, load, np.inf)
    if len(queue) == 1:
        return ((int(queue[0]), int(load.argmin())),)
    load = load.astype(np.float64)
    out = []
    for k, q in enumerate(queue):
        r = int(load.argmin())
        out.append((int(q), r))
        load[r] += 1.0 if weight is None else weight[k]
    return out


class RoundRobin(BaseRouter):
    """Each request to the next replica in turn."""

    name = "round_robin"
    idle_when_queue_empty = True

    def reset(self, info, rng):
        super().reset(info, rng)
        self._next = 0

    def route(self, view):
        out = []
        acc = view.accepting
        if not acc.any():
            return out
        R = self.info.num_replicas
        for q in view.queue:
            while not acc[self._next]:
                self._next = (self._next + 1) % R
            out.append((int(q), self._next))
            self._next = (self._next + 1) % R
        return out


class RandomRouter(BaseRouter):
    """Each request to a replica drawn uniformly from the seeded generator."""

    name = "random"
    idle_when_queue_empty = True

    def route(self, view):
        q = view.queue
        if len(q) == 0:
            return ()
        ids = np.flatnonzero(view.accepting)
        if len(ids) == 0:
            return ()
        picks = ids[self.rng.integers(0, len(ids), size=len(q))]
        return list(zip(q.tolist(), picks.tolist()))


class LeastOutstandingRequests(BaseRouter):
    """LOR: the replica with the fewest waiting requests (those holding no memory)."""

    name = "lor"
    idle_when_queue_empty = True

    def route(self, view):
        q = view.queue
        return _greedy(q, view.num_waiting, view=view) if len(q) else ()


class LeastLoadedQueue(BaseRouter):
    """LLQ: the replica with the fewest requests in flight (waiting + running)."""

    name = "llq"
    idle_when_queue_empty = True

    def route(self, view):
        q = view.queue
        return _greedy(q, view.num_waiting + view.num_running, view=view) if len(q) else ()


class LeastOutstandingBlocks(BaseRouter):
    """The replica with the fewest KV blocks held plus blocks its waiting prompts will need."""

    name = "least_blocks"
    idle_when_queue_empty = True

    def route(self, view):
        q = view.queue
        if len(q) == 0:
            return ()
        bs = view.block_size
        load = view.allocated_blocks + -(-view.waiting_prompt_tokens // bs)
        need = -(-view.prompt_tokens[q] // bs)
        return _greedy(q, load, need.astype(np.float64), view=view)


class HeadRoomAdmission(BaseRouter):
    """HRA: hold requests in the global queue unless a replica keeps KV head-room.

    A request is expected to grow to ``prompt * (1 + decode_growth)`` tokens.  It may go
    to a replica only if that replica's held blocks, plus the expected size of everything
    waiting there, plus this request, still leaves ``safety_fraction`` of the pool free.
    Among admissible replicas the one with the smallest projected use wins (then the
    shortest queue, then the lowest id).  With ``shortest_first`` the global queue is
    served shortest prompt first; the first request that fits nowhere stops the pass, so
    larger requests wait for memory instead of triggering pre-emptions.  An empty replica
    always admits, so no request can be held forever.
    Defaults were chosen by a sweep on ``routing-a10`` (see README).
    """

    name = "hra"
    idle_when_queue_empty = True

    def __init__(self, decode_growth: float = 0.6, safety_fraction: float = 0.03,
                 shortest_first: bool = True):
        if decode_growth < 0 or not 0 <= safety_fraction < 1:
            raise ValueError("need decode_growth >= 0 and 0 <= safety_fraction < 1")
        self.decode_growth = float(decode_growth)
        self.safety_fraction = float(safety_fraction)
        self.shortest_first = bool(shortest_first)

    def route(self, view):
        q = view.queue
        if len(q) == 0:
            return ()
        accepting = view.accepting if not view.all_accepting else \
            np.ones(len(view.num_blocks), np.bool_)
        ids, picks = _headroom_route(
            q, view.prompt_tokens, 1.0 + self.decode_growth, self.shortest_first,
            view.block_size, self.safety_fraction, view.num_blocks, view.allocated_blocks,
            view.waiting_prompt_tokens, view.num_waiting, view.num_running, accepting)
        return list(zip(ids.tolist(), picks.tolist()))


@njit(cache=True)
def _headroom_route(q, prompt_tokens, growth, shortest_first, block_size, safety_fraction,
                    num_blocks, allocated, waiting_prompt, num_waiting, num_running,
                    accepting):
    """HRA's decision as arrays: (request ids, replicas) to dispatch now.  Compiled: it
    runs after every arrival and completion, often with thousands of requests held, and in
    numpy it was most of an HRA simulation's CPU time.  Shortest-first takes the smallest
    remaining (prompt, id) one at a time instead of sorting the whole queue: a pass stops
    at the first request that fits nowhere, usually after a few."""
    prompts = prompt_tokens[q]
    cap = num_blocks.astype(np.float64)
    projected = allocated + np.ceil(waiting_prompt * growth / block_size)
    min_free = np.floor(safety_fraction * cap)
    queue_len = (num_waiting + num_running).astype(np.float64)
    n = q.shape[0]
    ids = np.empty(n, np.int64)
    picks = np.empty(n, np.int64)
    key = prompts * (q.max() + 1) + q  # unique: by prompt, then by request id
    taken = np.zeros(n, np.bool_)
    for m in range(n):
        j = m
        if shortest_first:
            j = -1
            for i in range(n):
                if not taken[i] and (j < 0 or key[i] < key[j]):
                    j = i
            taken[j] = True
        need = np.ceil(prompts[j] * growth / block_size)
        r = _replica_with_headroom(need, cap, projected, min_free, queue_len, accepting)
        if r < 0:
            return ids[:m], picks[:m]
        ids[m], picks[m] = q[j], r
        projected[r] += need
        queue_len[r] += 1
    return ids, picks


@njit(cache=True)
def _replica_with_headroom(need, cap, projected, min_free, queue_len, accepting):
    """The replica for a request of ``need`` blocks, or -1.  A replica is admissible if it
    accepts and keeps ``min_free`` blocks after the request -- or is idle and empty, so a
    request expected to outgrow the whole pool cannot wait forever.  Among admissible
    replicas the lowest (projected use, queue length, id) wins."""
    best = -1
    for r in range(cap.shape[0]):
        if not accepting[r]:
            continue
        empty = projected[r] == 0 and queue_len[r] == 0
        if cap[r] - projected[r] - need < min_free[r] and not empty:
            continue
        if best < 0 or projected[r] < projected[best] or (
                projected[r] == projected[best] and queue_len[r] < queue_len[best]):
            best = r
    return best


class LeastOutstandingPrefill(BaseRouter):
    """TTFT-aware: the replica with the fewest prefill tokens still to process.

    A replica's outstanding prefill is the prompt tokens of its waiting queue plus the
    unprocessed prompt tokens of its running requests; a new request's first token comes
    after roughly that much prefill work, so this placement approximates shortest expected
    TTFT.  Placements earlier in the same call count (ties: lowest id)."""

    name = "least_prefill"
    idle_when_queue_empty = True

    def route(self, view):
        q = view.queue
        if len(q) == 0:
            return ()
        load = view.waiting_prompt_tokens.astype(np.float64)
        for r in np.flatnonzero(view.num_running):
            run = view.running(int(r))
            load[r] += np.maximum(view.prompt_tokens[run] - view.processed_tokens[run], 0).sum()
        return _greedy(q, load, view.prompt_tokens[q].astype(np.float64), view=view)


ROUTERS: dict[str, type] = {
    "round_robin": RoundRobin,
    "rr": RoundRobin,
    "random": RandomRouter,
    "lor": LeastOutstandingRequests,
    "llq": LeastLoadedQueue,
    "least_blocks": LeastOutstandingBlocks,
    "hra": HeadRoomAdmission,
    "least_prefill": LeastOutstandingPrefill,
}


def make_router(spec, **params) -> Router:
    """Build a router from a registry name (``"llq"``, ``"hra:decode_growth=0.5"``), a
    ``path/to/file.py:ClassName`` spec, a class, or an instance (returned as is)."""
    return make_policy(spec, ROUTERS, "router", **params)


def router_name(router) -> str:
    """A short display name for a router instance."""
    return getattr(router, "name", None) or type(router).__name__


__all__ = ["Router", "BaseRouter", "ROUTERS", "make_router", "RouterLoadError", "router_name",
           "RoundRobin", "RandomRouter", "LeastOutstandingRequests", "LeastLoadedQueue",
           "LeastOutstandingBlocks", "HeadRoomAdmission", "LeastOutstandingPrefill"]
