"""What an ideal schedule would take: a request's end-to-end time alone on an idle replica
(the denominator of slowdown) and a lower bound on the iterations a trace needs."""
from __future__ import annotations

import numpy as np
from numba import njit

from sim_core.lookups import iteration_ms, prefill_attn_ms


@njit(cache=True)
def ideal_e2e(blob, prompt, decode, chunk):
    """Seconds for each request to run alone: its prompt in chunks of ``chunk`` tokens
    (the last chunk also yields the first token), then one iteration per further token."""
    out = np.empty(len(prompt))
    for i in range(len(prompt)):
        t = 0.0
        done = 0
        p = prompt[i]
        while done < p:
            n = min(chunk, p - done)
            t += iteration_ms(blob, n, 0, 0, prefill_attn_ms(blob, done + n, n))
            done += n
        kv = p + 1
        for _ in range(decode[i] - 1):
            t += iteration_ms(blob, 1, 1, kv, 0.0)
            kv += 1
        out[i] = t / 1000.0
    return out


def min_iterations(prompt, decode, num_blocks: int, block_size: int) -> float:
    """A lower bound on the batch iterations any schedule needs to finish these requests on
    replicas with ``num_blocks`` KV blocks of ``block_size`` tokens each.

    A request's k-th decode iteration (k = 1 .. decode-1; the last prefill chunk yields the
    first token) holds at least ``prompt + k`` tokens of KV, and one iteration of a replica
    holds at most its whole pool, so the iterations summed over replicas are at least the
    requests' KV-token-iterations divided by a pool's tokens.  Pre-emption, head-room,
    block rounding and part-full pools all push a real schedule above it."""
    p = np.asarray(prompt, np.float64)
    d = np.asarray(decode, np.float64) - 1.0
    kv_token_iterations = float((d * p + d * (d + 1.0) / 2.0).sum())
    return kv_token_iterations / (float(num_blocks) * float(block_size))
