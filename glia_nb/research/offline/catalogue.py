"""What the offline researcher knows: router designs it can write, and how it profiles.

The offline researcher is rule-based (no LLM).  It writes routers from one readable,
parameterised template (:func:`router_source`) and profiles experiments with a small
analysis script (:data:`ANALYSIS_SCRIPT`) that it writes into the workspace and runs
through the shell tool, exactly as a person (or an LLM Researcher) would.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

ROUTER_TEMPLATE = '''"""{title}

{rationale}
Written by the offline (rule-based) researcher of glia-nb; experiment {experiment}.
"""
import math

import numpy as np

ADMISSION = {admission}  # hold requests in the global queue unless a replica keeps KV head-room
DECODE_GROWTH = {growth}  # expected decode tokens per prompt token (decode lengths are unknown)
SAFETY_FRACTION = {safety}  # share of each replica's KV pool kept free at admission
ORDER = {order!r}  # global-queue order: "arrival" or "shortest_prompt"
BALANCE = {balance!r}  # "queue" (fewest requests), "blocks" (least memory), "two_choices"


class CustomRouter:
    """Called on every arrival and completion; returns (request_id, replica) pairs."""

    def reset(self, info, rng):
        self.info = info
        self.rng = rng

    def route(self, view):
        queue = view.queue
        if len(queue) == 0:
            return []
        prompts = view.prompt_tokens[queue]
        if ORDER == "shortest_prompt":
            order = np.lexsort((queue, prompts))
            queue, prompts = queue[order], prompts[order]
        growth = 1.0 + DECODE_GROWTH
        bs = view.block_size
        capacity = view.num_blocks.astype(float)
        # Memory each replica is expected to need: what it holds plus what waits there.
        projected = view.allocated_blocks + np.ceil(view.waiting_prompt_tokens * growth / bs)
        load = (view.num_waiting + view.num_running).astype(float)
        min_free = np.floor(SAFETY_FRACTION * capacity)
        decisions = []
        for request, prompt in zip(queue.tolist(), prompts.tolist()):
            need = math.ceil(prompt * growth / bs)
            allowed = view.accepting  # only active replicas take requests (a new array)
            if ADMISSION:
                # An empty replica always admits, so no request waits forever.
                allowed &= (capacity - projected - need >= min_free) | ((projected == 0) & (load == 0))
            if not allowed.any():
                break  # the rest wait for memory (or a replica) instead of pre-empting
            candidates = np.flatnonzero(allowed)
            if BALANCE == "two_choices" and len(candidates) > 2:
                candidates = np.sort(self.rng.choice(candidates, size=2, replace=False))
            if BALANCE == "blocks":
                key = projected[candidates] * 1e6 + load[candidates]
            else:
                key = load[candidates] * 1e6 + projected[candidates]
            replica = int(candidates[int(np.argmin(key))])
            decisions.append((int(request), replica))
            projected[replica] += need
            load[replica] += 1
        return decisions
'''


@dataclass(frozen=True)
class Design:
    """One point in the offline researcher's design space."""

    admission: bool = False
    growth: float = 0.0
    safety: float = 0.0
    order: str = "arrival"
    balance: str = "queue"

    def but(self, **changes) -> "Design":
        return replace(self, **changes)

    def label(self) -> str:
        parts = []
        if self.admission:
            parts.append(f"head-room admission (growth {self.growth:g}, safety {self.safety:g})")
        parts.append({"queue": "fewest-requests balancing", "blocks": "memory-aware balancing",
                      "two_choices": "power-of-two-choices balancing"}[self.balance])
        if self.order == "shortest_prompt":
            parts.append("shortest-prompt-first")
        return " + ".join(parts)

    def to_dict(self) -> dict:
        return asdict(self)


def router_source(design: Design, *, title: str, rationale: str, experiment: str) -> str:
    """Python source of a ``CustomRouter`` implementing ``design``."""
    return ROUTER_TEMPLATE.format(title=title, rationale=rationale, experiment=experiment,
                                  admission=design.admission, growth=round(design.growth, 3),
                                  safety=round(design.safety, 3), order=design.order,
                                  balance=design.balance)


ANALYSIS_SCRIPT = '''"""Profile one experiment: where does a request's time go?  (offline researcher)

Usage: python analyze.py EXPERIMENT_DIR   -> prints one JSON object
"""
import json
import sys
from pathlib import Path

import pandas as pd

exp = Path(sys.argv[1])
req = pd.read_csv(exp / "requests.csv")
parts = ["global_queue_s", "replica_queue_s", "prefill_s", "decode_s", "lost_to_restarts_s"]
out = {"requests": int(len(req)), "mean_e2e_s": float(req.e2e_s.mean())}
for p in parts:
    out["mean_" + p] = float(req[p].mean())
    out["share_" + p] = float(req[p].sum() / req.e2e_s.sum())
restarted = req.restarts > 0
out["restart_fraction"] = float(restarted.mean())
out["mean_e2e_restarted_s"] = float(req.e2e_s[restarted].mean()) if restarted.any() else None
out["mean_e2e_not_restarted_s"] = float(req.e2e_s[~restarted].mean())
out["recomputed_token_share"] = float(
    req.tokens_recomputed.sum() / (req.prompt_tokens.sum() + req.decode_tokens.sum()))
gs = exp / "gs_log.csv"
if gs.exists():
    g = pd.read_csv(gs)
    out["mean_memory_use"] = float(g.memory_usage_percent.mean() / 100)
    out["time_above_95pct_memory"] = float((g.memory_usage_percent > 95).mean())
    out["mean_waiting_per_replica"] = float(g.num_pending_requests.mean())
# Is the queueing delay spread evenly, or do a few large prompts dominate?
q = req.prompt_tokens.quantile([0.5, 0.9])
out["prompt_p50"], out["prompt_p90"] = float(q.iloc[0]), float(q.iloc[1])
short = req.prompt_tokens <= q.iloc[0]
out["mean_wait_short_prompts_s"] = float((req.global_queue_s + req.replica_queue_s)[short].mean())
print(json.dumps(out))
'''
