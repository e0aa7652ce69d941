"""Source text of candidate policy files the tests write (test data, not library code)."""
from __future__ import annotations

# A least-loaded-queue router as a candidate would write it: the honest reference that
# sandboxed runs, hostile subclasses and trusted runs are compared against.
LLQ_SOURCE = """
import numpy as np

class LLQ:
    def reset(self, info, rng):
        pass

    def route(self, view):
        q = view.queue
        load = (view.num_waiting + view.num_running).astype(float)
        out = []
        for k in q:
            r = int(load.argmin())
            out.append((int(k), r))
            load[r] += 1.0
        return out
"""
