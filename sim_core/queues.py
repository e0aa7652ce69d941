"""The engine's data structures, compiled: the tournament tree of iteration ends, the
per-replica waiting queues (doubly linked through the request columns), the running sets
(sorted by arrival) and the admission / pre-emption moves between them."""
from __future__ import annotations

import numpy as np
from numba import njit

from sim_core.state import (
    F_ARRIVAL, F_ATTEMPT_START, F_ENTER, F_FIRST_SCHED, F_LOST, F_QKEY, F_REPLICA_QUEUE,
    H_GENERATED, H_TOTAL, NRU, P_ALLOC, P_DIRTY, P_NUM_BLOCKS, P_PREEMPTIONS, P_RUNNING,
    PH_UNSTORED, P_WAITING, P_WAIT_PROMPT, P_WQ_HEAD, P_WQ_TAIL, QUEUE_BY_KEY, RU_BLOCKS,
    RU_GENERATED, RU_PROCESSED, RU_PROMPT, RU_TOTAL, ST_RUNNING, ST_WAITING, S_BLOCK_SIZE,
    S_DIRTY_LEN, S_QUEUE_POLICY, V_BLOCKS, V_NEXT, V_PREV, V_PROCESSED, V_PROMPT,
    V_RECOMPUTED, V_REPLICA, V_RESTARTS, V_STATE,
)


# ---------------------------------------------------------------- iteration ends
# Every busy replica has one pending iteration end (or, in a lazy decode stretch, the end of
# the stretch: sim_core.fastforward); so does a replica whose iteration has just ended, until
# the engine handles it as dirty and replaces that end by its next one, or by none.  They
# sit in a tournament tree: node i holds the first
# end (ev_t[i], time) of its half of the leaves and whose it is (ev_w[i], replica id); leaf
# P + r is replica r's end (inf: none), P a power of two >= the replica count, node 1 the
# root.  Setting an end replays the log2(P) matches on its path; each reads only the
# sibling, which the path never writes, so the reads do not wait on one another, and the
# winner is a select, not a hard-to-predict branch.  Any replica's end can be changed in
# place (a stretch cut short).  Ends come by (time, replica id).  A binary heap cost
# 3.9 -> 36 ns per event from 4 to 64 replicas on a synthetic stream of 30-50 ms
# iterations; a sorted array (insertion from the back) cost as little as this tree while
# every iteration was queued, but lazy stretches end in no particular order.
@njit(cache=True, error_model="numpy", inline="always")
def ev_before(ta, ra, tb, rb):
    """The order of iteration ends: (time, replica id)."""
    return ta < tb or (ta == tb and ra < rb)


@njit(cache=True, error_model="numpy", inline="always")
def ev_set(et, ew, r, t):
    """Replica r's pending iteration end becomes t (``np.inf``: none); the first end is
    then replica ``ew[1]``'s, at ``et[1]``."""
    j = (et.shape[0] >> 1) + r
    w = r
    et[j] = t
    while j > 1:
        s = j ^ 1
        ts = et[s]
        ws = ew[s]
        if ev_before(ts, ws, t, w):
            t = ts
            w = ws
        j >>= 1
        et[j] = t
        ew[j] = w


@njit(cache=True, error_model="numpy", inline="always")
def blocks_for(tokens, bs, shift):
    """KV blocks that hold ``tokens >= 0`` tokens, ``ceil(tokens / bs)``; with ``shift``
    (``si[S_BLOCK_SHIFT]``) >= 0 the same integer by a shift: an integer division was the
    slowest step of the per-request loops of a decode stretch."""
    if shift >= 0:
        return (tokens + bs - 1) >> shift
    return (tokens + bs - 1) // bs


# -------------------------------------------------------------------- waiting queue
@njit(cache=True, error_model="numpy")
def wq_unlink(rv, pi, r, q):
    p = rv[V_PREV, q]
    nx = rv[V_NEXT, q]
    if p >= 0:
        rv[V_NEXT, p] = nx
    else:
        pi[P_WQ_HEAD, r] = nx
    if nx >= 0:
        rv[V_PREV, nx] = p
    else:
        pi[P_WQ_TAIL, r] = p
    rv[V_NEXT, q] = -1
    rv[V_PREV, q] = -1


@njit(cache=True, error_model="numpy")
def wq_insert(rv, rh, rf, pi, si, r, q, front, now):
    """Put q into replica r's waiting queue: at the front (a pre-empted request), at the
    back (arrival order) or by its priority key when a queue policy is set."""
    head = pi[P_WQ_HEAD, r]
    if si[S_QUEUE_POLICY] == QUEUE_BY_KEY and not front:
        # Walk from the back: new requests usually sort late.  Ties keep arrival order.
        after = pi[P_WQ_TAIL, r]
        while after >= 0 and rf[F_QKEY, after] > rf[F_QKEY, q]:
            after = rv[V_PREV, after]
        if after < 0:
            front = True
        else:
            nx = rv[V_NEXT, after]
            rv[V_PREV, q] = after
            rv[V_NEXT, q] = nx
            rv[V_NEXT, after] = q
            if nx >= 0:
                rv[V_PREV, nx] = q
            else:
                pi[P_WQ_TAIL, r] = q
    if front:
        rv[V_PREV, q] = -1
        rv[V_NEXT, q] = head
        if head >= 0:
            rv[V_PREV, head] = q
        else:
            pi[P_WQ_TAIL, r] = q
        pi[P_WQ_HEAD, r] = q
    elif si[S_QUEUE_POLICY] != QUEUE_BY_KEY:
        tail = pi[P_WQ_TAIL, r]
        rv[V_NEXT, q] = -1
        rv[V_PREV, q] = tail
        if tail >= 0:
            rv[V_NEXT, tail] = q
        else:
            pi[P_WQ_HEAD, r] = q
        pi[P_WQ_TAIL, r] = q
    rv[V_STATE, q] = ST_WAITING
    rv[V_REPLICA, q] = r
    rf[F_ENTER, q] = now
    pi[P_WAITING, r] += 1
    pi[P_WAIT_PROMPT, r] += rv[V_PROMPT, q]


@njit(cache=True, error_model="numpy", inline="always")
def mark_dirty(pi, dirty, si, r):
    if pi[P_DIRTY, r] == 0:
        pi[P_DIRTY, r] = 1
        dirty[si[S_DIRTY_LEN]] = r
        si[S_DIRTY_LEN] += 1


# ------------------------------------------------------------------ running set
# A replica's running requests are slots[SL_RUN, r, :P_RUNNING], sorted by (arrival, id);
# their progress is in ru beside them (sim_core.state), and reaches rv/rh when they leave
# the set (:func:`leave_running`) or before Python looks (:func:`store_running`).
@njit(cache=True, error_model="numpy")
def run_insert(rf, run_ids, ru, pi, r, q):
    """Insert q into the running list kept sorted by (arrival time, id), moving the later
    entries' running columns with them; returns q's index (its columns are the caller's)."""
    n = pi[P_RUNNING, r]
    i = n
    while i > 0:
        o = run_ids[r, i - 1]
        if rf[F_ARRIVAL, o] > rf[F_ARRIVAL, q] or (rf[F_ARRIVAL, o] == rf[F_ARRIVAL, q] and o > q):
            run_ids[r, i] = o
            for f in range(NRU):
                ru[f, r, i] = ru[f, r, i - 1]
            i -= 1
        else:
            break
    run_ids[r, i] = q
    pi[P_RUNNING, r] = n + 1
    return i


@njit(cache=True, error_model="numpy")
def admit(rv, rh, rf, pi, run_ids, ru, r, q, blocks, now):
    """Move the head of the waiting queue into the running set with ``blocks`` blocks;
    returns its index there."""
    pi[P_WAITING, r] -= 1
    pi[P_WAIT_PROMPT, r] -= rv[V_PROMPT, q]
    rf[F_REPLICA_QUEUE, q] += now - rf[F_ENTER, q]
    rv[V_STATE, q] = ST_RUNNING
    pi[P_ALLOC, r] += blocks
    rf[F_ENTER, q] = now
    rf[F_ATTEMPT_START, q] = now
    if np.isnan(rf[F_FIRST_SCHED, q]):
        rf[F_FIRST_SCHED, q] = now
    j = run_insert(rf, run_ids, ru, pi, r, q)
    ru[RU_PROCESSED, r, j] = rv[V_PROCESSED, q]
    ru[RU_BLOCKS, r, j] = blocks
    ru[RU_PROMPT, r, j] = rv[V_PROMPT, q]
    ru[RU_TOTAL, r, j] = rh[H_TOTAL, q]
    ru[RU_GENERATED, r, j] = rh[H_GENERATED, q]
    return j


@njit(cache=True, error_model="numpy", inline="always")
def store_entry(rv, rh, run_ids, ru, r, j):
    """Write running entry j of replica r's progress into rv/rh."""
    q = run_ids[r, j]
    rv[V_PROCESSED, q] = ru[RU_PROCESSED, r, j]
    rv[V_BLOCKS, q] = ru[RU_BLOCKS, r, j]
    rh[H_GENERATED, q] = ru[RU_GENERATED, r, j]


@njit(cache=True, error_model="numpy")
def store_running(rv, rh, run_ids, ru, pi, ph):
    """Every running request's progress into rv/rh: what a router, an autoscaler or the
    result reads (after :func:`sim_core.fastforward.ff_flush_all`).  Only the replicas whose
    running columns changed since (``PH_UNSTORED``, set by whatever writes them): a Python
    router is called at every arrival, and on 64 replicas copying every running request at
    each call had made such runs 80% slower."""
    for r in range(pi.shape[1]):
        if ph[PH_UNSTORED, r] == 1:
            ph[PH_UNSTORED, r] = 0
            for j in range(pi[P_RUNNING, r]):
                store_entry(rv, rh, run_ids, ru, r, j)


@njit(cache=True, error_model="numpy", inline="always")
def leave_running(rv, rh, run_ids, ru, r, j):
    """Running entry j of replica r leaves the set (completed or pre-empted): its progress
    goes to rv/rh and the entry is marked for :func:`compact_running`."""
    store_entry(rv, rh, run_ids, ru, r, j)
    ru[RU_BLOCKS, r, j] = -1


@njit(cache=True, error_model="numpy")
def evict(rv, rh, rf, pi, si, r, q, now):
    """Recompute pre-emption: free q's blocks and put it at the front of the waiting queue.

    Its prompt becomes every token processed so far when it was decoding (the generated
    tokens are kept and re-prefilled); its first-token time is left untouched.  (A running
    q has left the running set first: :func:`leave_running`.)"""
    pi[P_ALLOC, r] -= rv[V_BLOCKS, q]
    rv[V_BLOCKS, q] = 0
    done = rv[V_PROCESSED, q]
    rv[V_RECOMPUTED, q] += done
    if done > rv[V_PROMPT, q]:
        rv[V_PROMPT, q] = done
    rv[V_PROCESSED, q] = 0
    rv[V_RESTARTS, q] += 1
    rf[F_LOST, q] += now - rf[F_ATTEMPT_START, q]
    pi[P_PREEMPTIONS, r] += 1
    # A pre-empted request keeps its place at the head under any queue policy: with its key
    # at -inf no later request can be ordered before it (vLLM re-queues it at the front).
    rf[F_QKEY, q] = -np.inf
    wq_insert(rv, rh, rf, pi, si, r, q, True, now)


@njit(cache=True, error_model="numpy")
def preempt(rv, rh, rf, pi, si, run_ids, ru, r, j, now):
    """Pre-empt running entry j of replica r (:func:`evict`)."""
    leave_running(rv, rh, run_ids, ru, r, j)
    evict(rv, rh, rf, pi, si, r, run_ids[r, j], now)


@njit(cache=True, error_model="numpy")
def grow_or_preempt(rv, rh, rf, pi, si, run_ids, ru, r, j, lo, hi, now):
    """Give decoding running entry j a block if it needs one, pre-empting the latest-arrived
    running request not yet placed in this batch (entries ``lo:hi``, after j) when none is
    free.

    Returns the new ``hi``; ``-1`` means entry j itself was pre-empted."""
    bs = si[S_BLOCK_SIZE]
    if ru[RU_PROCESSED, r, j] <= ru[RU_BLOCKS, r, j] * bs:
        return hi
    while pi[P_NUM_BLOCKS, r] - pi[P_ALLOC, r] < 1:
        if lo < hi:
            hi -= 1
            preempt(rv, rh, rf, pi, si, run_ids, ru, r, hi, now)
        else:
            preempt(rv, rh, rf, pi, si, run_ids, ru, r, j, now)
            return -1
    ru[RU_BLOCKS, r, j] += 1
    pi[P_ALLOC, r] += 1
    return hi


@njit(cache=True, error_model="numpy", inline="always")
def compact_running(run_ids, ru, pi, r, n):
    """Keep the first n running entries that have not left (drops the completed and the
    pre-empted), with their running columns."""
    k = 0
    for i in range(n):
        if ru[RU_BLOCKS, r, i] >= 0:
            if k != i:
                run_ids[r, k] = run_ids[r, i]
                for f in range(NRU):
                    ru[f, r, k] = ru[f, r, i]
            k += 1
    pi[P_RUNNING, r] = k


@njit(cache=True, error_model="numpy", inline="always")
def batch_admitted(batch_run, r, nb, j):
    """A request was admitted at running index j while ``nb`` batch entries were placed
    (``batch_run``: their running indices, ``slots[SL_BATCH]``): those at j or later moved
    one place on; the new entry is j."""
    for k in range(nb):
        if batch_run[r, k] >= j:
            batch_run[r, k] += 1
    batch_run[r, nb] = j
