"""Batch formation, compiled: which requests a replica's next iteration processes.

Both schedulers fill ``batch_run``/``batch_tok`` for replica ``r`` (each batch entry's index
in the running set, and its tokens) and return (tokens, decodes, decode KV sum, prefill
attention ms) of the batch, the arguments of :func:`sim_core.latency.iteration_ms`.
A running request's progress is read from the running columns ``ru`` (sim_core.state).
"""
from __future__ import annotations

from numba import njit

from sim_core.lookups import prefill_attn_ms
from sim_core.queues import (admit, batch_admitted, blocks_for, compact_running,
                             grow_or_preempt, wq_unlink)
from sim_core.state import (
    P_ALLOC, P_BATCH_LEN, P_NUM_BLOCKS, P_RUNNING, P_WQ_HEAD, RU_BLOCKS,
    RU_PROCESSED, RU_PROMPT, S_BATCH_CAP, S_BLOCK_SHIFT, S_BLOCK_SIZE, S_CHUNK, S_WATERMARK,
    V_PROMPT,
)


@njit(cache=True, error_model="numpy", inline="always")
def form_sarathi(rv, rh, rf, pi, si, run_ids, ru, batch_run, batch_tok, blob, r, now):
    """Sarathi chunked prefill: running decodes first, then partial prefills, then new
    requests from the waiting queue in order, within the chunk budget and batch cap.

    Returns (tokens, decodes, decode KV sum, prefill attention ms) of the batch."""
    bs = si[S_BLOCK_SIZE]
    chunk = si[S_CHUNK]
    cap = si[S_BATCH_CAP]
    nb = 0
    tokens = 0
    kv_sum = 0
    n_partial = 0
    evicted = False
    lo = 0
    hi = pi[P_RUNNING, r]
    # Pass 1: decodes in arrival order.  (The cap can only stop this pass when every
    # running request is decoding, so no partial prefill is skipped by the break.)
    while lo < hi:
        if nb == cap:
            break
        j = lo
        lo += 1
        done = ru[RU_PROCESSED, r, j]
        if done < ru[RU_PROMPT, r, j]:
            n_partial += 1
            continue
        if done > ru[RU_BLOCKS, r, j] * bs:
            if pi[P_NUM_BLOCKS, r] - pi[P_ALLOC, r] >= 1:  # the common case, inline
                ru[RU_BLOCKS, r, j] += 1
                pi[P_ALLOC, r] += 1
            else:
                evicted = True
                hi = grow_or_preempt(rv, rh, rf, pi, si, run_ids, ru, r, j, lo, hi, now)
                if hi < 0:
                    break
        # Pre-emptions take entries after j only, so j's index outlives the compaction.
        batch_run[r, nb] = j
        batch_tok[r, nb] = 1
        nb += 1
        tokens += 1
        kv_sum += done
    n_dec = nb
    if evicted:
        compact_running(run_ids, ru, pi, r, pi[P_RUNNING, r])
    attn = 0.0
    # Pass 2: partially prefilled requests, oldest first, within the chunk budget.
    if n_partial > 0:
        for i in range(pi[P_RUNNING, r]):
            done = ru[RU_PROCESSED, r, i]
            if done >= ru[RU_PROMPT, r, i]:
                continue
            n = min(ru[RU_PROMPT, r, i] - done, chunk - tokens)
            if n <= 0:
                continue
            batch_run[r, nb] = i
            batch_tok[r, nb] = n
            nb += 1
            tokens += n
            attn += prefill_attn_ms(blob, done + n, n)
    # Pass 3: new requests; the head of the waiting queue blocks those behind it.
    wm = si[S_WATERMARK]
    while pi[P_WQ_HEAD, r] >= 0:
        if pi[P_RUNNING, r] >= cap or nb >= cap:
            break
        q = pi[P_WQ_HEAD, r]
        need = blocks_for(rv[V_PROMPT, q], bs, si[S_BLOCK_SHIFT])
        if pi[P_NUM_BLOCKS, r] - pi[P_ALLOC, r] - need < wm:
            break
        n = min(rv[V_PROMPT, q], chunk - tokens)
        if n <= 0:
            break
        wq_unlink(rv, pi, r, q)
        batch_admitted(batch_run, r, nb, admit(rv, rh, rf, pi, run_ids, ru, r, q, need, now))
        batch_tok[r, nb] = n
        nb += 1
        tokens += n
        attn += prefill_attn_ms(blob, n, n)
    pi[P_BATCH_LEN, r] = nb
    return tokens, n_dec, kv_sum, attn


@njit(cache=True, error_model="numpy", inline="always")
def form_vllm(rv, rh, rf, pi, si, run_ids, ru, batch_run, batch_tok, blob, r, now):
    """vLLM v0: a prefill-only batch of whole prompts if any can be admitted (padded token
    cap n * max(prompt) <= chunk; a single over-long prompt still runs alone), else a
    decode-only batch of the running requests.  Returns what :func:`form_sarathi` does."""
    bs = si[S_BLOCK_SIZE]
    cap = si[S_BATCH_CAP]
    wm = si[S_WATERMARK]
    nb = 0
    tokens = 0
    attn = 0.0
    longest = 0
    while pi[P_WQ_HEAD, r] >= 0:
        q = pi[P_WQ_HEAD, r]
        need = blocks_for(rv[V_PROMPT, q], bs, si[S_BLOCK_SHIFT])
        if pi[P_NUM_BLOCKS, r] - pi[P_ALLOC, r] - need < wm:
            break
        m = max(longest, rv[V_PROMPT, q])
        if nb > 0 and (nb + 1) * m > si[S_CHUNK]:
            break
        if pi[P_RUNNING, r] >= cap or nb >= cap:
            break
        longest = m
        wq_unlink(rv, pi, r, q)
        batch_admitted(batch_run, r, nb, admit(rv, rh, rf, pi, run_ids, ru, r, q, need, now))
        n = rv[V_PROMPT, q]
        batch_tok[r, nb] = n
        nb += 1
        tokens += n
        attn += prefill_attn_ms(blob, n, n)
    if nb > 0:
        pi[P_BATCH_LEN, r] = nb
        return tokens, 0, 0, attn
    kv_sum = 0
    lo = 0
    hi = pi[P_RUNNING, r]
    while lo < hi:
        if nb == cap:
            break
        j = lo
        lo += 1
        hi = grow_or_preempt(rv, rh, rf, pi, si, run_ids, ru, r, j, lo, hi, now)
        if hi < 0:
            break
        batch_run[r, nb] = j
        batch_tok[r, nb] = 1
        nb += 1
        kv_sum += ru[RU_PROCESSED, r, j]
    compact_running(run_ids, ru, pi, r, pi[P_RUNNING, r])
    pi[P_BATCH_LEN, r] = nb
    return nb, nb, kv_sum, 0.0
