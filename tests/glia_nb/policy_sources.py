"""Source text of candidate policy files the tests write (test data, not library code)."""
from __future__ import annotations

# A least-loaded-queue routing function as a candidate would write it, and the router class
# around it: the honest reference that sandboxed runs, hostile subclasses, red-team attacks
# (tests/glia_nb/evaluation/test_redteam.py) and trusted runs are compared against.
LLQ_FUNCTION = """
import numpy as np

def llq(view):
    q = view.queue
    if not len(q):
        return ()
    load = (view.num_waiting + view.num_running).astype(np.float64)
    out = []
    for k in q:
        r = int(load.argmin())
        out.append((int(k), r))
        load[r] += 1.0
    return out
"""

LLQ_SOURCE = LLQ_FUNCTION + """

class LLQ:
    def reset(self, info, rng):
        pass

    def route(self, view):
        return llq(view)
"""
