"""Shared fixtures: small synthetic latency tables and traces for exact, hand-worked cases."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest


def linear_table(overhead_ms: float = 10.0, per_token_ms: float = 1.0):
    """Iteration time = overhead + per_token * batch tokens (no attention terms)."""
    from sim_core.latency import LatencyTable

    z = np.zeros((2, 2))
    return LatencyTable(gpu="test", model="linear", tp=1, provenance="hand-made test table",
                        tokens=[1.0, 1e6], token_ms=[per_token_ms, per_token_ms * 1e6],
                        prefill_kv=[1.0, 1e6], prefill_chunk=[1.0, 1e6], prefill_ms=z,
                        decode_n=[1.0, 1e6], decode_kv=[1.0, 1e6], decode_ms=z,
                        overhead_ms=overhead_ms)


def make_trace(arrivals, prompts, decodes, **kw):
    """A duck-typed trace (sim_core does not depend on workloads)."""
    return SimpleNamespace(arrived_at=np.asarray(arrivals, float),
                           prompt_tokens=np.asarray(prompts, np.int64),
                           decode_tokens=np.asarray(decodes, np.int64), **kw)


@pytest.fixture
def table():
    return linear_table()
