"""A request's end-to-end time alone on an idle replica (the denominator of slowdown)."""
from __future__ import annotations

import numpy as np
from numba import njit

from sim_core.latency import iteration_ms, prefill_attn_ms


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
