"""Decode fast-forward, compiled: run a replica's decode-only iterations without touching
every request at every iteration, with exactly the results of stepping.

A replica whose batch is decode-only, whose waiting queue cannot be admitted and whose
requests neither complete nor run out of KV blocks for the next ``K - 1`` iterations will
run the same batch for ``K`` iterations: only the tokens (one more per request each time)
and the decode KV sum (``+ batch size`` each time) change.  Such a run is a *stretch*.

A stretch's iteration ends are the very sums the step-by-step engine computes: ``end + dt``,
with ``dt`` the same operations on the same numbers as :func:`iteration_ms`
(:func:`decode_iteration_ms` only does the look-ups that the batch size fixes once per
stretch).  The per-request work of finishing and forming each batch is what a stretch
skips: it is deferred (``PH_FF_DONE`` counts the iterations passed) and applied to the
running columns by :func:`ff_flush` before anything may look at the requests or at the
blocks a replica holds (every return to Python, where ``rv`` follows with
:func:`sim_core.queues.store_running`; every timeline row; every compiled routing decision
that reads progress).  A stretch is cut
short (:func:`ff_cut`) when a request is routed to its replica, because the next formation
may then admit it: it ends with the iteration in flight.

*Lazy* stretches (:func:`ff_lazy`: when nobody looks at every global event, i.e. no
timeline and a compiled router that reads no progress) also skip the engine's queue:
:func:`ff_begin` computes every end in one tight loop and only the last one is queued.
Taking each end from the queue had cost a queue operation and a cold look at the
replica's columns per iteration, in an order that is harder to predict the more replicas
there are.  The replica's columns then advance lazily: its *cursor* (``PF_BUSY_UNTIL``,
the end of the iteration in flight; ``PH_FF_LEFT``, the iterations after it) is moved with
:func:`ff_step` by :func:`ff_catch_up` to where stepping would be at a global event (past
the iteration ends ordered before it by (time, replica id)), and to the end at once by
:func:`ff_to_end` when the queued end is reached.  Otherwise (*eager*) every end is queued
and taken in turn: the looks would catch every replica up at every event anyway, and
computing the ends twice cost routing-a10 (timelines on) 5%.

A stretch's batch is the whole running set, in its order (entry k of the batch is entry k
of ``slots[SL_RUN]``), so its loops read the running columns ``ru`` in order.

Why the stretch length is safe: admission into a decode-only batch only gets harder as
iterations pass (free blocks only fall, the batch size and chunk budget stay), so a waiting
queue that could not be admitted at the stretch's first formation cannot be admitted later.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from sim_core.lookups import decode_iteration_ms, decode_segment, fixed_ms
from sim_core.queues import blocks_for, ev_before, ev_set
from sim_core.state import (
    PH_FF_DONE, PH_FF_KV, PH_FF_LEFT, PH_FF_SEG, PH_UNSTORED,
    PF_BUSY_TIME, PF_BUSY_UNTIL, PF_FF_BUSY, PF_FF_END, PF_FF_FIXED,
    PF_FF_TX, P_ALLOC, P_BATCH_LEN, P_GEN_TOKENS, P_ITERATIONS, P_NUM_BLOCKS, P_RUNNING,
    RU_BLOCKS, RU_GENERATED, RU_PROCESSED, RU_TOTAL, S_BLOCK_SHIFT, S_BLOCK_SIZE,
    S_GENERATED_TOKENS, S_TL_CAP, S_TWIN,
)
from sim_core.twins import twin_reads_progress


@njit(cache=True, error_model="numpy")
def ff_lazy(si):
    """Whether a stretch queues only its last iteration end: nobody looks at the state at
    every global event (no timeline; a compiled router that reads no progress)."""
    return si[S_TL_CAP] == 0 and not twin_reads_progress(si[S_TWIN])


@njit(cache=True, error_model="numpy", inline="always")
def _blocks_needed(ru, r, nb, bs, shift, j):
    """New KV blocks the batch needs by the formation of stretch iteration ``j``."""
    total = 0
    for k in range(nb):
        need = blocks_for(ru[RU_PROCESSED, r, k] + j, bs, shift) - ru[RU_BLOCKS, r, k]
        if need > 0:
            total += need
    return total


@njit(cache=True, error_model="numpy", inline="always")
def stretch_length(ru, pi, si, counts, r):
    """Iterations ``K >= 1`` that replica r's just-formed decode-only batch will repeat.

    Iterations ``0 .. K-2`` complete nothing; the formations of ``1 .. K-1`` find a free
    block for every request that crosses a block boundary (so nobody is pre-empted);
    iteration ``K-1`` may complete requests and is finished step by step.

    One pass over the batch: the first iteration that completes a request, and where each
    request next needs a block.  Request q needs its m-th new block at the formation of
    stretch iteration ``o + (m - 1) * bs``, with ``o = blocks * bs - processed + 1``.  After
    a formation every ``o`` is in ``1 .. bs`` (a request holds the blocks its tokens fill),
    so the crossings come in rounds of one per request, each round in the order of the
    ``o``: the ``free + 1``-th crossing, the first formation that finds no block, is read
    off a count of the ``o`` (``counts``, left all zero).  Otherwise the need is bisected
    (:func:`_blocks_needed`)."""
    nb = pi[P_BATCH_LEN, r]
    bs = si[S_BLOCK_SIZE]
    jc = np.iinfo(np.int64).max
    rounds = True
    for k in range(nb):
        done = ru[RU_PROCESSED, r, k]
        jc = min(jc, ru[RU_TOTAL, r, k] - done - 1)  # it completes at iteration j = this
        o = ru[RU_BLOCKS, r, k] * bs - done + 1
        if 1 <= o <= bs:
            counts[o] += 1
        else:
            rounds = False
    free = pi[P_NUM_BLOCKS, r] - pi[P_ALLOC, r]
    rounds = rounds and free >= 0
    rank = free % nb if rounds else 0  # the crossing's place in its round (round free // nb)
    first = 0
    seen = 0
    for o in range(1, bs + 1):  # the rank-th smallest offset; the counts go back to zero
        if first == 0 and seen + counts[o] > rank:
            first = o
        seen += counts[o]
        counts[o] = 0
    if jc <= 0:
        return 1
    if rounds:
        if free // nb > jc // bs:  # the blocks outlast the batch (and rounds * bs may overflow)
            return 1 + jc
        return min(1 + jc, first + (free // nb) * bs)
    shift = si[S_BLOCK_SHIFT]
    if _blocks_needed(ru, r, nb, bs, shift, jc) <= free:
        return 1 + jc
    # The need grows with j: bisect for the last formation that still fits.
    lo, hi = 0, jc  # need(lo) fits, need(hi) does not
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if _blocks_needed(ru, r, nb, bs, shift, mid) <= free:
            lo = mid
        else:
            hi = mid
    return 1 + lo


@njit(cache=True, error_model="numpy", inline="always")
def ff_begin(ru, pi, pf, ph, si, counts, blob, r, kv_sum, lazy):
    """After a decode-only batch was formed on r: start a stretch if it holds every running
    request, with the latency terms that stay fixed while it lasts."""
    nb = pi[P_BATCH_LEN, r]
    if pi[P_RUNNING, r] != nb:
        ph[PH_FF_LEFT, r] = 0
        return
    k = stretch_length(ru, pi, si, counts, r)
    ph[PH_FF_LEFT, r] = k - 1
    if k > 1:
        ph[PH_FF_KV, r] = kv_sum
        pf[PF_FF_FIXED, r] = fixed_ms(blob, float(nb), 0.0)
        seg, tx = decode_segment(blob, nb)
        ph[PH_FF_SEG, r] = seg
        pf[PF_FF_TX, r] = tx
        if lazy:
            _plan(pi, pf, ph, blob, r, k - 1)


# Not inlined: it runs once per stretch, and inlined into the engine's loop its code cost
# the eager mode (timelines on) 3% of its time.
@njit(cache=True, error_model="numpy")
def _plan(pi, pf, ph, blob, r, m):
    """Where replica r's stretch ends after ``m`` more iterations, and its busy time then:
    :func:`ff_step`'s sums, in its order."""
    nb = pi[P_BATCH_LEN, r]
    fixed = pf[PF_FF_FIXED, r]
    seg = ph[PH_FF_SEG, r]
    tx = pf[PF_FF_TX, r]
    end = pf[PF_BUSY_UNTIL, r]
    busy = pf[PF_BUSY_TIME, r]
    kv = ph[PH_FF_KV, r]
    for _ in range(m):
        kv += nb
        dt = decode_iteration_ms(blob, fixed, seg, tx, nb, kv) / 1000.0
        end = end + dt
        busy += dt
    pf[PF_FF_END, r] = end
    pf[PF_FF_BUSY, r] = busy


@njit(cache=True, error_model="numpy", inline="always")
def ff_step(pi, pf, ph, blob, r, now):
    """Replica r's stretch iteration ended at ``now``: start the next one, exactly as
    finishing and forming it would (same latency arguments, same float sums); returns its
    end."""
    nb = pi[P_BATCH_LEN, r]
    ph[PH_FF_DONE, r] += 1
    ph[PH_FF_LEFT, r] -= 1
    kv = ph[PH_FF_KV, r] + nb
    ph[PH_FF_KV, r] = kv
    dt = decode_iteration_ms(blob, pf[PF_FF_FIXED, r], ph[PH_FF_SEG, r], pf[PF_FF_TX, r], nb,
                             kv) / 1000.0
    pi[P_ITERATIONS, r] += 1
    pf[PF_BUSY_UNTIL, r] = now + dt
    pf[PF_BUSY_TIME, r] += dt
    return now + dt


@njit(cache=True, error_model="numpy", inline="always")
def ff_flush(ru, pi, ph, si, r):
    """Apply replica r's finished stretch iterations to its requests' running columns:
    their tokens, and the blocks the formation of the iteration now in flight allocated (a
    decoding request holds ``ceil(processed / block_size)`` blocks once its batch is
    formed)."""
    m = ph[PH_FF_DONE, r]
    if m == 0:
        return
    nb = pi[P_BATCH_LEN, r]
    bs = si[S_BLOCK_SIZE]
    shift = si[S_BLOCK_SHIFT]
    added = 0
    for k in range(nb):
        d = ru[RU_PROCESSED, r, k] + m
        ru[RU_PROCESSED, r, k] = d
        ru[RU_GENERATED, r, k] += m
        need = blocks_for(d, bs, shift)
        held = ru[RU_BLOCKS, r, k]
        if need > held:
            added += need - held
            ru[RU_BLOCKS, r, k] = need
    pi[P_ALLOC, r] += added
    pi[P_GEN_TOKENS, r] += m * nb
    si[S_GENERATED_TOKENS] += m * nb
    ph[PH_FF_DONE, r] = 0
    ph[PH_UNSTORED, r] = 1


@njit(cache=True, error_model="numpy", inline="always")
def ff_catch_up(pi, pf, ph, blob, r, now, bound):
    """Move replica r's stretch on past its iteration ends ordered before (now, bound) (a
    global event at ``now``: ``bound`` is the completing replica, or the replica count
    for events that come after every iteration end at their time)."""
    while ph[PH_FF_LEFT, r] > 0:
        end = pf[PF_BUSY_UNTIL, r]
        if not ev_before(end, r, now, bound):
            return
        ff_step(pi, pf, ph, blob, r, end)


@njit(cache=True, error_model="numpy", inline="always")
def ff_to_end(pi, pf, ph, r):
    """Replica r's stretch reached its last iteration end (the queued one): its columns
    as :func:`ff_catch_up` would leave them, from what :func:`ff_begin` computed."""
    m = ph[PH_FF_LEFT, r]
    if m > 0:
        ph[PH_FF_DONE, r] += m
        pi[P_ITERATIONS, r] += m
        ph[PH_FF_KV, r] += m * pi[P_BATCH_LEN, r]
        ph[PH_FF_LEFT, r] = 0
        pf[PF_BUSY_UNTIL, r] = pf[PF_FF_END, r]
        pf[PF_BUSY_TIME, r] = pf[PF_FF_BUSY, r]


@njit(cache=True, error_model="numpy")
def ff_cut(pi, pf, ph, ev_t, ev_w, blob, r, now, bound):
    """A request was routed to replica r, in a lazy stretch, at the global event (now,
    bound): the stretch ends with the iteration in flight, whose end takes the place of the
    stretch's in the queue.  (An eager stretch is cut by setting ``PH_FF_LEFT`` to 0: the end
    queued is that of the iteration in flight.)"""
    ff_catch_up(pi, pf, ph, blob, r, now, bound)
    if ph[PH_FF_LEFT, r] > 0:
        ph[PH_FF_LEFT, r] = 0
        ev_set(ev_t, ev_w, r, pf[PF_BUSY_UNTIL, r])


@njit(cache=True, error_model="numpy")
def ff_flush_all(ru, pi, pf, ph, si, blob, now, bound, lazy):
    """Catch every replica up to the global event (now, bound) and :func:`ff_flush` it: the
    replica columns and the running columns are then what stepping would show (rv's copies
    follow with :func:`sim_core.queues.store_running`)."""
    for r in range(pi.shape[1]):
        if lazy and ph[PH_FF_LEFT, r] > 0:
            ff_catch_up(pi, pf, ph, blob, r, now, bound)
        if ph[PH_FF_DONE, r] > 0:
            ff_flush(ru, pi, ph, si, r)
