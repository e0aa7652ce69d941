"""head-room admission (growth 1.5, safety 0.03) + memory-aware balancing

Tuning the expected decode growth: 1.5 tokens per prompt token trades held-back queueing against restarts.
Written by the offline (rule-based) researcher of glia-nb; experiment headroom-growth-1.5.
"""
import math

import numpy as np

ADMISSION = True  # hold requests in the global queue unless a replica keeps KV head-room
DECODE_GROWTH = 1.5  # expected decode tokens per prompt token (decode lengths are unknown)
SAFETY_FRACTION = 0.03  # share of each replica's KV pool kept free at admission
ORDER = 'arrival'  # global-queue order: "arrival" or "shortest_prompt"
BALANCE = 'blocks'  # "queue" (fewest requests), "blocks" (least memory), "two_choices"


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
