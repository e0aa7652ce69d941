"""Compiled twins of the built-in routers.

A router picked by registry name (``simulate(..., "llq")``) whose class has a twin here is
decided inside the compiled engine, so a simulation never returns to Python to route.  A
twin writes its decision into the engine's decision buffers, as data; the engine checks it
with the same validation as a Python router's before applying it.  Each twin reproduces its
Python router exactly (same loads, same tie-breaks: lowest replica id), which the tests
check on the presets and under hypothesis.  Like the Python routers, a twin decides nothing
when the global queue is empty, so the engine does not call it then.

A batch policy's waiting-queue key is computed when a request is routed; the built-in
``shortest_prefill_first`` and ``aged_spf`` keys have twins too (the same float operations),
so a twin router keeps running in the engine with them.  Any other key is Python, and then
the router stays in Python as well.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from sim_core.batch_policies import AgedShortestPrefillFirst, ShortestPrefillFirst
from sim_core.routers import (HeadRoomAdmission, LeastLoadedQueue, LeastOutstandingBlocks,
                              LeastOutstandingRequests, RoundRobin, _headroom_route)
from sim_core.state import (
    F_ARRIVAL, F_QKEY, P_ALLOC, P_NUM_BLOCKS, P_RUNNING, P_STATE, P_WAITING, P_WAIT_PROMPT,
    R_ACTIVE, SF_HRA_GROWTH, SF_HRA_SAFETY, SF_KEY_SECONDS_PER_TOKEN, S_BLOCK_SIZE, S_GQ_LEN,
    S_HRA_SHORTEST, S_RR_NEXT, S_TWIN, S_TWIN_CALLS, S_TWIN_KEY, V_PROMPT,
)

# Twin codes (si[S_TWIN]); 0 = the router runs in Python.
TWIN_NONE = 0
TWIN_LLQ = 1
TWIN_LOR = 2
TWIN_LEAST_BLOCKS = 3
TWIN_ROUND_ROBIN = 4
TWIN_HRA = 5

_CODES = {LeastLoadedQueue: TWIN_LLQ, LeastOutstandingRequests: TWIN_LOR,
          LeastOutstandingBlocks: TWIN_LEAST_BLOCKS, RoundRobin: TWIN_ROUND_ROBIN,
          HeadRoomAdmission: TWIN_HRA}


# Key twin codes (si[S_TWIN_KEY]); 0 = no key (arrival order) or a Python key.
KEY_NONE = 0
KEY_SPF = 1
KEY_AGED_SPF = 2


def install_key(si: np.ndarray, sf: np.ndarray, policy) -> bool:
    """Select the twin of ``policy``'s queue key (a batch-policy instance); False if it has
    none (only the exact built-in classes have one)."""
    if type(policy) is ShortestPrefillFirst:
        si[S_TWIN_KEY] = KEY_SPF
        return True
    if type(policy) is AgedShortestPrefillFirst:
        si[S_TWIN_KEY] = KEY_AGED_SPF
        sf[SF_KEY_SECONDS_PER_TOKEN] = policy.seconds_per_token
        return True
    return False


@njit(cache=True, error_model="numpy", inline="always")
def twin_keys(rv, rf, si, sf, dec_req, n):
    """The queue keys of the ``n`` requests just routed, as the policies' ``key`` methods
    compute them (``ShortestPrefillFirst``, ``AgedShortestPrefillFirst``)."""
    code = si[S_TWIN_KEY]
    if code == KEY_NONE:
        return
    for k in range(n):
        q = dec_req[k]
        if code == KEY_SPF:
            rf[F_QKEY, q] = float(rv[V_PROMPT, q])
        else:
            rf[F_QKEY, q] = rf[F_ARRIVAL, q] + sf[SF_KEY_SECONDS_PER_TOKEN] * float(rv[V_PROMPT, q])


def twin_code(router) -> int:
    """The twin of ``router`` (an instance), or ``TWIN_NONE``.  Only the exact built-in
    classes have twins: a subclass may have changed ``route``."""
    return _CODES.get(type(router), TWIN_NONE)


def install_twin(si: np.ndarray, sf: np.ndarray, router) -> int:
    """Select ``router``'s twin in the engine's scalars (with its parameters); returns the
    code (``TWIN_NONE`` leaves the Python router in charge)."""
    code = twin_code(router)
    si[S_TWIN] = code
    if code == TWIN_HRA:
        sf[SF_HRA_GROWTH] = 1.0 + router.decode_growth  # the sum HeadRoomAdmission.route forms
        sf[SF_HRA_SAFETY] = router.safety_fraction
        si[S_HRA_SHORTEST] = int(router.shortest_first)
    return code


@njit(cache=True, error_model="numpy")
def twin_reads_progress(code):
    """Whether the router reads what a decode stretch defers (tokens processed, KV blocks
    held): the Python routers may read anything; LLQ, LOR and round robin count requests
    only, which a stretch does not change."""
    return code == TWIN_NONE or code == TWIN_LEAST_BLOCKS or code == TWIN_HRA


@njit(cache=True, error_model="numpy", inline="always")
def _load(rv, pi, code, bs, r):
    """Replica r's load as the Python router computes it (an exact integer)."""
    if code == TWIN_LLQ:
        return pi[P_WAITING, r] + pi[P_RUNNING, r]
    if code == TWIN_LOR:
        return pi[P_WAITING, r]
    return pi[P_ALLOC, r] + (pi[P_WAIT_PROMPT, r] + bs - 1) // bs  # TWIN_LEAST_BLOCKS


@njit(cache=True, error_model="numpy", inline="always")
def _least_loaded(rv, pi, code, bs):
    """The accepting replica with the least load (lowest id on ties; -1 if none): the least
    load first, in a loop with no branch to mispredict, then the first replica with it.
    (One pass keeping the best so far branched on every new best: on 64 replicas that scan
    after every arrival was a tenth of what grew from 4 replicas.)"""
    R = pi.shape[1]
    none = np.iinfo(np.int64).max
    least = none
    if code == TWIN_LLQ:  # the usual twin, without the per-replica switch of _load
        for r in range(R):
            load = pi[P_WAITING, r] + pi[P_RUNNING, r]
            least = min(least, load if pi[P_STATE, r] == R_ACTIVE else none)
    else:
        for r in range(R):
            load = _load(rv, pi, code, bs, r)
            least = min(least, load if pi[P_STATE, r] == R_ACTIVE else none)
    if least == none:
        return -1
    for r in range(R):
        if pi[P_STATE, r] == R_ACTIVE and _load(rv, pi, code, bs, r) == least:
            return r
    return -1


@njit(cache=True, error_model="numpy", inline="always")
def _greedy(rv, pi, code, bs, q, dec_req, dec_rep):
    """The Python routers' ``_greedy``: each request to the least-loaded accepting replica
    (lowest id on ties), counting earlier placements of the same call (1 per request;
    least_blocks: the request's prompt blocks).  Loads are integers, so comparing them as
    integers is what the Python router's float comparisons do.  The usual single request
    allocates nothing (:func:`_least_loaded`): this runs after every arrival."""
    R = pi.shape[1]
    n = q.shape[0]
    if n == 1:
        best = _least_loaded(rv, pi, code, bs)
        if best < 0:
            return 0
        dec_req[0] = q[0]
        dec_rep[0] = best
        return 1
    added = np.zeros(R, np.int64)
    for k in range(n):
        best = -1
        best_load = 0
        for r in range(R):
            if pi[P_STATE, r] != R_ACTIVE:
                continue
            load = _load(rv, pi, code, bs, r) + added[r]
            if best < 0 or load < best_load:
                best, best_load = r, load
        if best < 0:
            return 0  # no replica accepts: everything stays in the global queue
        dec_req[k] = q[k]
        dec_rep[k] = best
        added[best] += (rv[V_PROMPT, q[k]] + bs - 1) // bs if code == TWIN_LEAST_BLOCKS else 1
    return n


# With numba's runtime (it allocates), although the engine that calls it runs without it
# (sim_core/engine.py): an explicit flag is not inherited from the caller.
@njit(cache=True, error_model="numpy", _nrt=True)
def twin_route(rv, pi, si, sf, gq, dec_req, dec_rep):
    """The twin's decision for the current global queue, written to ``dec_req``/``dec_rep``;
    returns the number of decisions.  The caller validates and applies them."""
    q = gq[:si[S_GQ_LEN]]
    code = si[S_TWIN]
    si[S_TWIN_CALLS] += 1
    R = pi.shape[1]
    if code == TWIN_LLQ or code == TWIN_LOR or code == TWIN_LEAST_BLOCKS:
        return _greedy(rv, pi, code, si[S_BLOCK_SIZE], q, dec_req, dec_rep)
    accepting = pi[P_STATE] == R_ACTIVE
    if code == TWIN_ROUND_ROBIN:
        if not accepting.any():
            return 0
        nxt = si[S_RR_NEXT]
        for k in range(q.shape[0]):
            while not accepting[nxt]:
                nxt = (nxt + 1) % R
            dec_req[k] = q[k]
            dec_rep[k] = nxt
            nxt = (nxt + 1) % R
        si[S_RR_NEXT] = nxt
        return q.shape[0]
    # TWIN_HRA
    ids, picks = _headroom_route(
        q, rv[V_PROMPT], sf[SF_HRA_GROWTH], si[S_HRA_SHORTEST] == 1, si[S_BLOCK_SIZE],
        sf[SF_HRA_SAFETY], pi[P_NUM_BLOCKS], pi[P_ALLOC], pi[P_WAIT_PROMPT], pi[P_WAITING],
        pi[P_RUNNING], accepting)
    for k in range(ids.shape[0]):
        dec_req[k] = ids[k]
        dec_rep[k] = picks[k]
    return ids.shape[0]
