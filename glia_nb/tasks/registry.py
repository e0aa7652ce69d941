"""The registered research tasks: ``routing-a10`` (the paper's routing study), ``batch-a10``,
``autoscale-a10`` and ``routing-h100-prefill`` (paper sections 5.3 and 5.5).

    from glia_nb.tasks import get_task
    task = get_task("routing-a10")
    print(task.render_text(baseline_score=27.7))
"""
from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import Mapping

from glia_nb.tasks.layers import AUTOSCALER_RULES, BATCH_RULES
from glia_nb.tasks.objective import Objective
from glia_nb.tasks.budget import Budget
from glia_nb.tasks.task import Task, default_budget


def _budget(simulations: int) -> Budget:
    """The default budget with ``simulations`` evaluations."""
    return replace(default_budget(), max_simulations=simulations)


def _stack_tasks() -> dict:
    """The registry entries for ``batch-a10``, ``autoscale-a10`` and ``routing-h100-prefill``."""
    return {
        "batch-a10": Task(
            name="batch-a10", scenario="routing-a10", layer="batch_policy",
            title="batch-a10 — order each replica's waiting queue (four A10 replicas)",
            objective=Objective(), baseline="fifo", class_name="CustomBatchPolicy",
            fixed_router="llq", num_eval_seeds=10, budget=_budget(20),
            target_improvement=0.2, rules=BATCH_RULES,
            notes=(" The router is least-loaded-queue, which places every request at once, "
                   "so the replicas' waiting queues are where requests wait. (Under HRA, "
                   "the routing-a10 winner, requests wait in the global queue — already "
                   "shortest-prompt-first — and a replica's queue order makes no "
                   "difference: we measured identical results for every seed.)")),
        "autoscale-a10": Task(
            name="autoscale-a10", scenario="autoscale-a10", layer="autoscaler",
            title="autoscale-a10 — size an A10 pool under a sinusoidal load at least cost",
            objective=Objective(
                name="gpu_hours", direction="min", unit="GPU-h",
                description=("GPU-hours used: every replica-second of life, cold starts "
                             "included, up to the last completion, averaged over seeds"),
                constraint="p95_slowdown_worst_seed", constraint_max=5.0,
                constraint_description=("the 95th percentile over requests of e2e time "
                                        "divided by the request's e2e time alone on an idle "
                                        "replica, in every evaluation seed (the worst seed "
                                        "counts: a pool sized at the edge of its bound breaks "
                                        "it on some runs even when the mean over runs is "
                                        "within it)")),
            baseline="throughput", class_name="CustomAutoscaler", fixed_router="llq",
            fixed_batch_policy="fifo", num_eval_seeds=3, budget=_budget(30),
            target_improvement=0.1, rules=AUTOSCALER_RULES),
        "routing-h100-prefill": Task(
            name="routing-h100-prefill", scenario="routing-h100-prefill", layer="router",
            title="routing-h100-prefill — route a prefill-heavy workload on 8 H100s",
            objective=Objective(
                name="throughput_qps", direction="max", unit="QPS",
                description="completed requests per second, averaged over seeds",
                constraint="p90_ttft_s", constraint_max=1.5,
                constraint_description="90th-percentile time to first token, in seconds, "
                                       "averaged over seeds"),
            baseline="llq", num_eval_seeds=3, budget=_budget(30),
            # 300 users, not the preset's 200: in our simulator the paper's situation (the
            # usual routers break the TTFT bound, a TTFT-aware one keeps it) starts between
            # 250 and 300 users; at 200 every router but round robin already meets it.
            users=300, target_improvement=0.0),
    }



# ---------------------------------------------------------------------- registry
TASKS: Mapping[str, Task] = MappingProxyType({
    "routing-a10": Task(
        name="routing-a10", scenario="routing-a10", layer="router",
        title="routing-a10 — route LLM requests across four A10 replicas",
        # Ten seeds per experiment, as in the paper: the log-normal bursts make single
        # seeds differ by 4x, so fewer seeds rank designs unreliably.
        num_eval_seeds=10, budget=_budget(30),
        target_improvement=0.25),
    **_stack_tasks(),
})


class UnknownTaskError(KeyError):
    """No task of that name; the message lists the known ones."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def get_task(name: str) -> Task:
    """The registered task ``name``; raises :class:`UnknownTaskError` listing known names."""
    try:
        return TASKS[name]
    except KeyError:
        raise UnknownTaskError(f"unknown task {name!r}; known tasks: "
                               f"{', '.join(sorted(TASKS))}") from None


__all__ = ["TASKS", "get_task", "UnknownTaskError"]
