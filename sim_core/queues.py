"""The engine's data structures, compiled: the iteration-end heap, the per-replica waiting
queues (doubly linked through the request columns), the running sets (sorted by arrival)
and the admission / pre-emption moves between them."""
from __future__ import annotations

import numpy as np
from numba import njit

from sim_core.state import (
    F_ARRIVAL, F_ATTEMPT_START, F_ENTER, F_FIRST_SCHED, F_LOST, F_QKEY, F_REPLICA_QUEUE,
    P_ALLOC, P_DIRTY, P_NUM_BLOCKS, P_PREEMPTIONS, P_RUNNING, P_WAITING, P_WAIT_PROMPT,
    P_WQ_HEAD, P_WQ_TAIL, QUEUE_BY_KEY, ST_RUNNING, ST_WAITING, S_BLOCK_SIZE, S_DIRTY_LEN,
    S_HEAP_LEN, S_QUEUE_POLICY, V_BLOCKS, V_NEXT, V_PREV, V_PROCESSED, V_PROMPT, V_RECOMPUTED,
    V_REPLICA, V_RESTARTS, V_STATE,
)


# ----------------------------------------------------------------------------- heap
# inline="always" where a function runs at every iteration, which saves the call.  The sift
# loops compare loaded scalars (heap_before) and move a hole instead of swapping (the
# resulting arrays are those of swapping).  Where numba's runtime is on, this also keeps
# them free of reference counts: an inlined helper taking the arrays inside the loop cost
# two atomic updates per array per level, a fifth of the engine's time at 64 replicas (the
# engine now runs without the runtime: sim_core/engine.py).
@njit(cache=True, error_model="numpy", inline="always")
def heap_before(ta, ra, tb, rb):
    """The heap's order: (time, replica id)."""
    return ta < tb or (ta == tb and ra < rb)


@njit(cache=True, error_model="numpy", inline="always")
def heap_push(ht, hr, si, t, r):
    i = si[S_HEAP_LEN]
    si[S_HEAP_LEN] = i + 1
    while i > 0:
        p = (i - 1) // 2
        tp = ht[p]
        rp = hr[p]
        if not heap_before(t, r, tp, rp):
            break
        ht[i] = tp
        hr[i] = rp
        i = p
    ht[i] = t
    hr[i] = r


@njit(cache=True, error_model="numpy", inline="always")
def heap_pop(ht, hr, si):
    n = si[S_HEAP_LEN] - 1
    si[S_HEAP_LEN] = n
    _sift_down(ht, hr, n, ht[n], hr[n])


@njit(cache=True, error_model="numpy", inline="always")
def heap_replace_top(ht, hr, si, t, r):
    """Pop the top and push (t, r) in one sift: a replica's next iteration end replaces
    the one just reached.  The pops that follow are the same as after pop and push,
    since (time, replica) orders the entries totally."""
    _sift_down(ht, hr, si[S_HEAP_LEN], t, r)


@njit(cache=True, error_model="numpy", inline="always")
def _sift_down(ht, hr, n, t, r):
    """Place (t, r) at the root of the n-entry heap and sift it down."""
    i = 0
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        tc = ht[c]
        rc = hr[c]
        if c + 1 < n:
            t2 = ht[c + 1]
            r2 = hr[c + 1]
            if heap_before(t2, r2, tc, rc):
                c += 1
                tc = t2
                rc = r2
        if not heap_before(tc, rc, t, r):
            break
        ht[i] = tc
        hr[i] = rc
        i = c
    if n > 0:
        ht[i] = t
        hr[i] = r


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
@njit(cache=True, error_model="numpy")
def run_insert(rf, run_ids, pi, r, q):
    """Insert q into the running list kept sorted by (arrival time, id)."""
    n = pi[P_RUNNING, r]
    i = n
    while i > 0:
        o = run_ids[r, i - 1]
        if rf[F_ARRIVAL, o] > rf[F_ARRIVAL, q] or (rf[F_ARRIVAL, o] == rf[F_ARRIVAL, q] and o > q):
            run_ids[r, i] = o
            i -= 1
        else:
            break
    run_ids[r, i] = q
    pi[P_RUNNING, r] = n + 1


@njit(cache=True, error_model="numpy")
def admit(rv, rf, pi, run_ids, r, q, blocks, now):
    """Move the head of the waiting queue into the running set with ``blocks`` blocks."""
    pi[P_WAITING, r] -= 1
    pi[P_WAIT_PROMPT, r] -= rv[V_PROMPT, q]
    rf[F_REPLICA_QUEUE, q] += now - rf[F_ENTER, q]
    rv[V_STATE, q] = ST_RUNNING
    rv[V_BLOCKS, q] = blocks
    pi[P_ALLOC, r] += blocks
    rf[F_ENTER, q] = now
    rf[F_ATTEMPT_START, q] = now
    if np.isnan(rf[F_FIRST_SCHED, q]):
        rf[F_FIRST_SCHED, q] = now
    run_insert(rf, run_ids, pi, r, q)


@njit(cache=True, error_model="numpy")
def evict(rv, rh, rf, pi, si, r, q, now):
    """Recompute pre-emption: free q's blocks and put it at the front of the waiting queue.

    Its prompt becomes every token processed so far when it was decoding (the generated
    tokens are kept and re-prefilled); its first-token time is left untouched."""
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
def grow_or_preempt(rv, rh, rf, pi, si, run_ids, r, q, lo, hi, now):
    """Give decoding request q a block if it needs one, pre-empting the latest-arrived
    running request not yet placed in this batch (run_ids[r, lo:hi]) when none is free.

    Returns the new ``hi``; ``-1`` means q itself was pre-empted."""
    bs = si[S_BLOCK_SIZE]
    if rv[V_PROCESSED, q] <= rv[V_BLOCKS, q] * bs:
        return hi
    while pi[P_NUM_BLOCKS, r] - pi[P_ALLOC, r] < 1:
        if lo < hi:
            hi -= 1
            evict(rv, rh, rf, pi, si, r, run_ids[r, hi], now)
        else:
            evict(rv, rh, rf, pi, si, r, q, now)
            return -1
    rv[V_BLOCKS, q] += 1
    pi[P_ALLOC, r] += 1
    return hi


@njit(cache=True, error_model="numpy", inline="always")
def compact_running(rv, run_ids, pi, r, n):
    """Keep the first n running entries that are still running (drops the evicted)."""
    k = 0
    for i in range(n):
        q = run_ids[r, i]
        if rv[V_STATE, q] == ST_RUNNING:
            run_ids[r, k] = q
            k += 1
    pi[P_RUNNING, r] = k
