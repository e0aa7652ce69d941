"""The compiled discrete-event engine.

:func:`advance` applies the router's decisions and then runs replica iterations until the
next *global event*: an arrival, or the end of an iteration that completed at least one
request.  It returns to Python there, so the router is the only Python on the hot path.

Tie-breaking is explicit: iteration ends are ordered by (time, replica id), and an
iteration ending at the same time as an arrival is processed first.  Pending iteration
ends wait in a tournament tree (:func:`sim_core.queues.ev_set`); a decode stretch may
queue only its last one (:mod:`sim_core.fastforward`).

Reference counts: numba updates an array's reference count atomically when a compiled
function receives it, and keeps the updates of an inlined helper whose loops break or
span several loops; at one helper per iteration that took a quarter of the engine's time.
:func:`advance` is therefore compiled without numba's runtime (``_nrt=False``): the arrays
it gets from Python carry no reference count, so neither it nor the helpers it inlines or
calls (compiled with its flags) update any.  Nothing under it allocates except the
twins (:func:`sim_core.twins.twin_route`, compiled with the runtime).  Helpers that run at
every iteration are still inlined (``inline="always"``), which saves the calls.

Replica semantics follow the paper's Vidur fork (see the README's "Simulator semantics"):
paged KV cache with a watermark on admission, recompute pre-emption of the latest-arrived
running request, Sarathi chunked prefill or vLLM-v0 prefill-first batching.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from sim_core.batching import form_sarathi, form_vllm
from sim_core.fastforward import ff_begin, ff_cut, ff_flush, ff_flush_all, ff_step, ff_to_end
from sim_core.lookups import iteration_ms
from sim_core.queues import (compact_running, ev_set, leave_running, mark_dirty,
                             store_running, wq_insert)
from sim_core.state import (
    PH_FF_LEFT, PH_UNSTORED,
    ERR_BAD_REPLICA, ERR_DUPLICATE, ERR_NOT_ACCEPTING, ERR_NOT_QUEUED, EV_ARRIVAL,
    EV_COMPLETION, EV_END, EV_READY, EV_TICK, F_ARRIVAL, F_ATTEMPT_PREFILL, F_COMPLETED,
    F_ENTER, F_FIRST_TOKEN, F_ROUTED, PF_BUSY_TIME, PF_BUSY_UNTIL,
    PF_DRAIN_SINCE, PF_DRAIN_TIME, PF_FF_END, PF_READY_AT, PF_START_TIME, PF_UP_SINCE,
    PF_UP_TIME, P_ALLOC, P_BATCH_LEN, P_BUSY, P_DIRTY, P_GEN_TOKENS, P_ITERATIONS,
    P_NUM_BLOCKS, P_RUNNING, P_STATE, P_WAITING, Q_COUNTS, Q_DEC_REP, Q_DEC_REQ, Q_DIRTY,
    Q_DONE, Q_GQ, RU_BLOCKS, RU_GENERATED, RU_PROCESSED, RU_PROMPT, RU_TOTAL,
    R_ACTIVE, R_DRAINING, R_STARTING, R_STOPPED, SF_ARRIVAL_LIMIT, SF_NEXT_READY, SF_NEXT_TICK,
    SF_NOW, SF_THINK, SL_BATCH, SL_RUN, SL_TOK, ST_DONE, ST_GLOBAL, ST_MARK, S_CLOSED_LOOP,
    S_DIRTY_LEN, S_ERROR, S_EVENT_BOUND, S_EVENT_REPLICA, S_FAST_FORWARD,
    S_GENERATED_TOKENS, S_GQ_LEN, S_NEXT_ARRIVAL, S_NUM_ACCEPTING, S_NUM_DONE, S_NUM_GENERATED,
    S_NUM_REQ, S_N_EVENT_DONE, S_SCHEDULER, S_SKIP_EMPTY, S_TL_CAP, S_TL_LEN, S_TWIN, TL_ALLOC,
    TL_NUM_BLOCKS, TL_REPLICA, TL_RUNNING, TL_STATE, TL_TIME, TL_WAITING, V_STATE,
)
from sim_core.twins import twin_keys, twin_reads_progress, twin_route


@njit(cache=True, error_model="numpy", inline="always")
def _start_batch(rv, rh, rf, pi, pf, ph, ru, si, run_ids, batch_run, batch_tok, counts, blob,
                 r, now, lazy):
    """Form replica r's next batch and start it (``P_BUSY``, unless the batch is empty);
    returns when it ends, or when the decode stretch it begins ends, which the caller
    queues (see sim_core.fastforward)."""
    ph[PH_UNSTORED, r] = 1  # admissions, pre-emptions and new blocks change the running columns
    if si[S_SCHEDULER] == 0:
        tokens, n_dec, kv_sum, attn = form_sarathi(rv, rh, rf, pi, si, run_ids, ru, batch_run,
                                                   batch_tok, blob, r, now)
    else:
        tokens, n_dec, kv_sum, attn = form_vllm(rv, rh, rf, pi, si, run_ids, ru, batch_run,
                                                batch_tok, blob, r, now)
    if pi[P_BATCH_LEN, r] == 0:
        return now
    dt = iteration_ms(blob, tokens, n_dec, kv_sum, attn) / 1000.0
    pi[P_BUSY, r] = 1
    pi[P_ITERATIONS, r] += 1
    pf[PF_BUSY_UNTIL, r] = now + dt
    pf[PF_BUSY_TIME, r] += dt
    if si[S_FAST_FORWARD] == 1 and n_dec == tokens and n_dec == pi[P_BATCH_LEN, r]:
        ff_begin(ru, pi, pf, ph, si, counts, blob, r, kv_sum, lazy)
        if lazy and ph[PH_FF_LEFT, r] > 0:
            return pf[PF_FF_END, r]
    return now + dt


@njit(cache=True, error_model="numpy", inline="always")
def _finish_batch(rv, rh, rf, pi, pf, ph, ru, si, sf, run_ids, batch_run, batch_tok, done_buf,
                  r, now):
    """Apply an iteration's progress; returns the number of requests it completed."""
    ph[PH_UNSTORED, r] = 1
    n_done = 0
    for k in range(pi[P_BATCH_LEN, r]):
        j = batch_run[r, k]
        done = ru[RU_PROCESSED, r, j]
        prompt = ru[RU_PROMPT, r, j]
        decoding = done >= prompt
        done += batch_tok[r, k]
        if decoding:
            ru[RU_GENERATED, r, j] += 1
            si[S_GENERATED_TOKENS] += 1
            pi[P_GEN_TOKENS, r] += 1
        elif done == prompt:
            # The iteration that finishes a prefill also yields the first new token.
            done += 1
            ru[RU_GENERATED, r, j] += 1
            si[S_GENERATED_TOKENS] += 1
            pi[P_GEN_TOKENS, r] += 1
            q = run_ids[r, j]
            rf[F_ATTEMPT_PREFILL, q] = now
            if np.isnan(rf[F_FIRST_TOKEN, q]):
                rf[F_FIRST_TOKEN, q] = now
        ru[RU_PROCESSED, r, j] = done
        if done == ru[RU_TOTAL, r, j]:
            q = run_ids[r, j]
            rv[V_STATE, q] = ST_DONE
            rf[F_COMPLETED, q] = now
            pi[P_ALLOC, r] -= ru[RU_BLOCKS, r, j]
            ru[RU_BLOCKS, r, j] = 0
            leave_running(rv, rh, run_ids, ru, r, j)
            done_buf[n_done] = q
            n_done += 1
            si[S_NUM_DONE] += 1
            if si[S_CLOSED_LOOP] == 1:
                _generate_closed_loop_arrival(rf, si, sf, now)
    pi[P_BATCH_LEN, r] = 0
    pi[P_BUSY, r] = 0
    pf[PF_BUSY_UNTIL, r] = np.inf
    if n_done > 0:
        compact_running(run_ids, ru, pi, r, pi[P_RUNNING, r])
    if pi[P_STATE, r] == R_DRAINING and pi[P_RUNNING, r] == 0 and pi[P_WAITING, r] == 0:
        stop_replica(pi, pf, r, now)
    return n_done


@njit(cache=True, error_model="numpy")
def stop_replica(pi, pf, r, now):
    """A drained (or never started) replica stops; its up-time, and the part of it spent
    starting or draining, is accounted."""
    if pi[P_STATE, r] == R_DRAINING:
        pf[PF_DRAIN_TIME, r] += now - pf[PF_DRAIN_SINCE, r]
    elif pi[P_STATE, r] == R_STARTING:
        pf[PF_START_TIME, r] += now - pf[PF_UP_SINCE, r]
    pi[P_STATE, r] = R_STOPPED
    pf[PF_UP_TIME, r] += now - pf[PF_UP_SINCE, r]
    pf[PF_READY_AT, r] = np.inf


@njit(cache=True, error_model="numpy")
def _generate_closed_loop_arrival(rf, si, sf, now):
    """A finished user sends its next request after the think time (if any are left)."""
    j = si[S_NUM_GENERATED]
    t = now + sf[SF_THINK]
    if j < si[S_NUM_REQ] and t <= sf[SF_ARRIVAL_LIMIT]:
        rf[F_ARRIVAL, j] = t
        si[S_NUM_GENERATED] = j + 1


@njit(cache=True, error_model="numpy")
def _activate_ready(pi, pf, si, sf, now):
    """Starting replicas whose cold start is over become active."""
    nxt = np.inf
    for r in range(pi.shape[1]):
        if pi[P_STATE, r] == R_STARTING:
            if pf[PF_READY_AT, r] <= now:
                pi[P_STATE, r] = R_ACTIVE
                pf[PF_START_TIME, r] += pf[PF_READY_AT, r] - pf[PF_UP_SINCE, r]
                pf[PF_READY_AT, r] = np.inf
                si[S_NUM_ACCEPTING] += 1
            elif pf[PF_READY_AT, r] < nxt:
                nxt = pf[PF_READY_AT, r]
    sf[SF_NEXT_READY] = nxt


@njit(cache=True, error_model="numpy", inline="always")
def _record_timeline(pi, si, tl, now):
    R = pi.shape[1]
    k = si[S_TL_LEN]
    if k + R > si[S_TL_CAP]:
        return
    for r in range(R):
        tl[TL_TIME, k + r] = now
        tl[TL_REPLICA, k + r] = r
        tl[TL_WAITING, k + r] = pi[P_WAITING, r]
        tl[TL_RUNNING, k + r] = pi[P_RUNNING, r]
        tl[TL_ALLOC, k + r] = pi[P_ALLOC, r]
        tl[TL_NUM_BLOCKS, k + r] = pi[P_NUM_BLOCKS, r]
        tl[TL_STATE, k + r] = pi[P_STATE, r]
    si[S_TL_LEN] = k + R


@njit(cache=True, error_model="numpy")
def _apply_decisions(rv, rh, rf, pi, ph, gq, dirty, si, dec_req, dec_rep, n_dec, now, lazy):
    """Validate every decision before applying any; on error return its code and leave
    the state untouched (S_ERROR holds the index of the offending decision)."""
    R = pi.shape[1]
    n_req = si[S_NUM_REQ]
    err = 0
    bad = -1
    for k in range(n_dec):
        q = dec_req[k]
        r = dec_rep[k]
        if r < 0 or r >= R:
            err = ERR_BAD_REPLICA
        elif pi[P_STATE, r] != R_ACTIVE:
            err = ERR_NOT_ACCEPTING
        elif q < 0 or q >= n_req:
            err = ERR_NOT_QUEUED
        elif rv[V_STATE, q] == ST_MARK:
            err = ERR_DUPLICATE
        elif rv[V_STATE, q] != ST_GLOBAL:
            err = ERR_NOT_QUEUED
        if err != 0:
            bad = k
            break
        rv[V_STATE, q] = ST_MARK
    if err != 0:
        for k in range(bad):
            rv[V_STATE, dec_req[k]] = ST_GLOBAL
        si[S_ERROR] = bad
        return err
    for k in range(n_dec):
        q = dec_req[k]
        r = dec_rep[k]
        if np.isnan(rf[F_ROUTED, q]):
            rf[F_ROUTED, q] = now
        wq_insert(rv, rh, rf, pi, si, r, q, False, now)
        mark_dirty(pi, dirty, si, r)
        # The replica's next formation may admit q: its stretch ends with the iteration
        # in flight (formed before q arrived, as it was when stepping).  A lazy stretch is
        # cut where the replica's dirty mark is handled (ff_cut, in advance).
        if not lazy:
            ph[PH_FF_LEFT, r] = 0
    if n_dec > 0:
        # Keep the global queue in arrival order without the routed requests.
        k = 0
        for i in range(si[S_GQ_LEN]):
            q = gq[i]
            if rv[V_STATE, q] == ST_GLOBAL:
                gq[k] = q
                k += 1
        si[S_GQ_LEN] = k
    return 0


@njit(cache=True, error_model="numpy", _nrt=False)  # no reference counts: see the module doc
def advance(rv, rh, rf, pi, pf, ph, ru, slots, qbuf, ev_t, ev_w, si, sf, tl, blob, n_dec):
    """Apply ``n_dec`` routing decisions, then simulate up to the next global event that
    needs Python.

    Returns an event code (EV_ARRIVAL, EV_COMPLETION, EV_READY, EV_TICK, EV_END) or a
    negative error code for an invalid decision.  With a compiled twin router
    (``si[S_TWIN]``) routing happens here and only ticks and the end return; with
    ``S_SKIP_EMPTY`` events that leave the global queue empty do not return either.
    Arrays are bundled (``slots``, ``qbuf``) because every argument costs dispatch time on
    each of the ~15,000 calls of a simulation.  Decode stretches are eager: use
    :func:`advance_lazy` where :func:`sim_core.fastforward.ff_lazy` says they may be lazy."""
    return _advance(rv, rh, rf, pi, pf, ph, ru, slots, qbuf, ev_t, ev_w, si, sf, tl, blob, n_dec,
                    False)


@njit(cache=True, error_model="numpy", _nrt=False)
def advance_lazy(rv, rh, rf, pi, pf, ph, ru, slots, qbuf, ev_t, ev_w, si, sf, tl, blob, n_dec):
    """:func:`advance` with lazy decode stretches (:mod:`sim_core.fastforward`)."""
    return _advance(rv, rh, rf, pi, pf, ph, ru, slots, qbuf, ev_t, ev_w, si, sf, tl, blob, n_dec,
                    True)


# One body, compiled into both entry points with ``lazy`` a constant: tested at run time,
# the lazy branches in the loop had cost the eager engine 3% (routing-a10, timelines on).
@njit(cache=True, error_model="numpy", inline="always")
def _advance(rv, rh, rf, pi, pf, ph, ru, slots, qbuf, ev_t, ev_w, si, sf, tl, blob, n_dec, lazy):
    """The body of :func:`advance` and :func:`advance_lazy`."""
    run_ids, batch_run, batch_tok = slots[SL_RUN], slots[SL_BATCH], slots[SL_TOK]
    gq, done_buf, dec_req, dec_rep = qbuf[Q_GQ], qbuf[Q_DONE], qbuf[Q_DEC_REQ], qbuf[Q_DEC_REP]
    dirty, counts = qbuf[Q_DIRTY], qbuf[Q_COUNTS]
    now = sf[SF_NOW]
    err = _apply_decisions(rv, rh, rf, pi, ph, gq, dirty, si, dec_req, dec_rep, n_dec, now, lazy)
    if err != 0:
        return err
    R = pi.shape[1]
    leaves = ev_t.shape[0] >> 1
    while True:
        # Idle replicas with new work form their next batch at the current time; a busy
        # one was routed to, and its lazy stretch ends with the iteration in flight.  (A
        # replica whose iteration just ended still has that end queued: it is replaced here,
        # by the next one or by none, with one walk up the tree instead of two.)
        for k in range(si[S_DIRTY_LEN]):
            r = dirty[k]
            pi[P_DIRTY, r] = 0
            if pi[P_BUSY, r] == 0:
                end = _start_batch(rv, rh, rf, pi, pf, ph, ru, si, run_ids, batch_run, batch_tok,
                                   counts, blob, r, now, lazy)
                if pi[P_BUSY, r] == 1:
                    ev_set(ev_t, ev_w, r, end)
                elif ev_t[leaves + r] != np.inf:
                    ev_set(ev_t, ev_w, r, np.inf)
            elif lazy and ph[PH_FF_LEFT, r] > 0:
                ff_cut(pi, pf, ph, ev_t, ev_w, blob, r, now, si[S_EVENT_BOUND])
        si[S_DIRTY_LEN] = 0
        i = si[S_NEXT_ARRIVAL]
        ta = rf[F_ARRIVAL, i] if i < si[S_NUM_GENERATED] else np.inf
        rb = ev_w[1]
        tb = ev_t[1]
        tr = sf[SF_NEXT_READY]
        if tb == np.inf and ta == np.inf and tr == np.inf:
            ff_flush_all(ru, pi, pf, ph, si, blob, now, R, lazy)
            store_running(rv, rh, run_ids, ru, pi, ph)
            sf[SF_NOW] = now
            return EV_END
        # Same-time order: iteration ends, then replicas becoming ready, then autoscaler
        # ticks, then arrivals.
        tt = sf[SF_NEXT_TICK]
        if tr < tb and tr <= tt and tr <= ta:
            now = tr
            _activate_ready(pi, pf, si, sf, now)
            si[S_N_EVENT_DONE] = 0
            si[S_EVENT_BOUND] = R
            ev = EV_READY
        elif tt < tb and tt <= ta:
            ff_flush_all(ru, pi, pf, ph, si, blob, tt, R, lazy)
            store_running(rv, rh, run_ids, ru, pi, ph)
            sf[SF_NOW] = tt
            si[S_N_EVENT_DONE] = 0
            return EV_TICK
        elif tb <= ta:
            r = rb
            now = tb
            if ph[PH_FF_LEFT, r] > 0:
                if not lazy:  # a stretch iteration's end: start the next one
                    ev_set(ev_t, ev_w, r, ff_step(pi, pf, ph, blob, r, now))
                    continue
                ff_to_end(pi, pf, ph, r)
            # r's end stays queued until the dirty loop (at the top of the next pass) handles
            # r; nothing reads the queue before.
            ff_flush(ru, pi, ph, si, r)
            n_done = _finish_batch(rv, rh, rf, pi, pf, ph, ru, si, sf, run_ids, batch_run,
                                   batch_tok, done_buf, r, now)
            mark_dirty(pi, dirty, si, r)
            if n_done == 0:
                continue
            si[S_N_EVENT_DONE] = n_done
            si[S_EVENT_REPLICA] = r
            si[S_EVENT_BOUND] = r
            ev = EV_COMPLETION
        else:
            now = ta
            rv[V_STATE, i] = ST_GLOBAL
            rf[F_ENTER, i] = now
            gq[si[S_GQ_LEN]] = i
            si[S_GQ_LEN] += 1
            si[S_NEXT_ARRIVAL] = i + 1
            si[S_N_EVENT_DONE] = 0
            si[S_EVENT_REPLICA] = -1
            si[S_EVENT_BOUND] = R
            ev = EV_ARRIVAL
        # A global event.  An empty global queue needs no routing if the router promised to
        # do nothing then.  Deferred stretch work is applied only if someone will look:
        # the timeline (blocks held), a Python router, a twin that reads blocks.
        sf[SF_NOW] = now
        route = si[S_GQ_LEN] > 0 or (si[S_SKIP_EMPTY] == 0 and si[S_TWIN] == 0)
        if si[S_TL_CAP] > 0 or (route and twin_reads_progress(si[S_TWIN])):
            ff_flush_all(ru, pi, pf, ph, si, blob, now, si[S_EVENT_BOUND], lazy)
        _record_timeline(pi, si, tl, now)
        if not route:
            continue
        if si[S_TWIN] == 0:
            # The router may read any request's progress.
            store_running(rv, rh, run_ids, ru, pi, ph)
            return ev
        n = twin_route(rv, pi, si, sf, gq, dec_req, dec_rep)
        twin_keys(rv, rf, si, sf, dec_req, n)
        err = _apply_decisions(rv, rh, rf, pi, ph, gq, dirty, si, dec_req, dec_rep, n, now, lazy)
        if err != 0:
            return err
