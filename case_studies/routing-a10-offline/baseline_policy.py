"""CustomRouter — the router under design for task routing-a10.

It starts as a least-loaded-queue (LLQ) router: each queued request goes to the replica with
the fewest requests in flight (waiting + running), counting the requests placed earlier in the
same call. Replace the logic in ``route`` with your own design.
"""
import numpy as np


class CustomRouter:
    def reset(self, info, rng):
        """Called once before each simulation with static cluster facts and a seeded RNG."""
        self.info = info
        self.rng = rng

    def route(self, view):
        """Return (request_id, replica) pairs for the requests to dispatch now."""
        queue = view.queue
        if len(queue) == 0:
            return []
        # Copy: the view's arrays are read-only and change between calls.
        load = (view.num_waiting + view.num_running).astype(np.int64)
        decisions = []
        for request_id in queue:
            replica = int(np.argmin(load))  # ties go to the lowest replica id
            decisions.append((int(request_id), replica))
            load[replica] += 1
        return decisions
