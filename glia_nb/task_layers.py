"""Research tasks beyond the router: the batch-scheduler and autoscaler layers, and the
prefill-heavy H100 routing task (paper sections 5.3 and 5.5).

:func:`stack_tasks` returns the registry entries that :data:`glia_nb.task.TASKS` merges in;
:func:`render_layer_text` / :func:`render_layer_template` render the Researcher's task text
and starting policy file for a non-router layer (the router layer keeps its own template).
"""
from __future__ import annotations


LAYER_TITLES = {"batch_policy": "batch-scheduler policy (the order of each replica's waiting "
                                "queue)",
                "autoscaler": "autoscaler (how many replicas serve, over time)"}

BATCH_RULES = (
    "Change only the batch policy: edit the policy file. Do not modify the simulator, the "
    "router, the workload or the evaluation.",
    "The policy may use only the two arguments of `key`: the prompt length and the arrival "
    "time. Output (decode) lengths are unknown in a real system and must not be obtained any "
    "other way (no reading trace or telemetry files, no values copied from earlier runs).",
    "The policy must be online and general: the same code must work on traffic it has never "
    "seen, not only on the evaluation seeds.",
    "No network access and no background processes; keep each evaluation within its limits.",
)

AUTOSCALER_RULES = (
    "Change only the autoscaler: edit the policy file. Do not modify the simulator, the "
    "router, the batch policy, the workload or the evaluation.",
    "The autoscaler may use only what `reset` and `decide` receive. It must not read the "
    "trace, telemetry files or the simulator's internals, and must not know the arrival "
    "pattern in advance (no schedules keyed to the evaluation's sinusoid).",
    "Cold starts are real: a replica costs GPU time from the moment it starts.",
    "No network access and no background processes; keep each evaluation within its limits.",
)

BATCH_DOC = '''```python
class {cls}:
    def key(self, prompt_tokens, arrived_at):
        """Priority of a request entering a replica's waiting queue (smaller = earlier)."""
        return arrived_at          # arrival order, the baseline
```

`key` is evaluated once, when the router places the request on a replica; the replica keeps
its waiting queue sorted by it (ties in routing order) and admits from the head. A request
pre-empted by a memory shortage returns to the front of the queue whatever its key. Return a
number (returning the same number for everyone is arrival order).'''

AUTOSCALER_DOC = '''```python
class {cls}:
    def reset(self, info, rng):
        """Once before each simulation: static cluster facts, a seeded numpy Generator."""

    def decide(self, stats):
        """Every tick: how many replicas should be serving (active + starting)."""
        return stats.num_serving
```

The simulator clamps the answer to [{min_replicas}, {max_replicas}]. To grow it starts a
stopped replica (a draining one is reactivated first, at no cost); the new replica serves
after a {cold_start:g}-second cold start and is paid for from the moment it starts. To shrink it
first cancels starts, then drains the least busy active replica (no new requests; it stops
when empty). The router sends requests only to active replicas. `stats` (ClusterStats) has:

{fields}

Replica states: 0 = stopped, 1 = starting, 2 = active, 3 = draining. Ticks come every
{interval:g} s of simulated time; the pool starts with {initial} serving replicas.'''

STATS_FIELDS = {
    "now": "simulated time (s)",
    "interval_s": "seconds between ticks",
    "state": "per replica: 0 stopped, 1 starting, 2 active, 3 draining",
    "num_active / num_starting / num_draining / num_serving": "counts (serving = active + "
                                                               "starting)",
    "in_flight": "per replica: waiting + running requests",
    "num_waiting / num_running": "per replica",
    "memory_use": "per replica: allocated / total KV blocks",
    "decode_tokens_per_s": "per replica: tokens decoded per second over the last interval",
    "global_queue_len": "requests not yet routed",
    "arrivals_per_s": "arrivals per second over the last interval",
}


def stack_tasks() -> dict:
    """The registry entries for ``batch-a10``, ``autoscale-a10`` and ``routing-h100-prefill``."""
    from glia_nb.task import Budget, Objective, Task

    return {
        "batch-a10": Task(
            name="batch-a10", scenario="routing-a10", layer="batch_policy",
            title="batch-a10 — order each replica's waiting queue (four A10 replicas)",
            objective=Objective(), baseline="fifo", class_name="CustomBatchPolicy",
            fixed_router="llq", num_eval_seeds=10, budget=Budget(max_simulations=200),
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
            fixed_batch_policy="fifo", num_eval_seeds=3, budget=Budget(max_simulations=90),
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
            baseline="llq", num_eval_seeds=3, budget=Budget(max_simulations=90),
            # 300 users, not the preset's 200: in our simulator the paper's situation (the
            # usual routers break the TTFT bound, a TTFT-aware one keeps it) starts between
            # 250 and 300 users; at 200 every router but round robin already meets it.
            users=300, target_improvement=0.0),
    }


def _fill(values: dict, task, sc) -> dict:
    from glia_nb.task import GS_LOG_COLUMNS, REQUESTS_COLUMNS

    rc = sc.cluster.replica
    obj = task.objective
    seeds = task.seeds
    b = task.budget
    layer_name = {"batch_policy": "batch policy", "autoscaler": "autoscaler"}[task.layer]
    values.update({
        "title": task.title or f"{task.name}: a better {layer_name}",
        "layer_title": LAYER_TITLES[task.layer],
        "num_replicas": sc.cluster.num_replicas, "model": rc.model, "gpu": rc.gpu, "tp": rc.tp,
        "num_blocks": rc.num_blocks, "block_size": rc.block_size, "scheduler": rc.scheduler,
        "batch_cap": rc.batch_cap, "chunk_size": rc.chunk_size,
        "fixed_router": task.fixed_router or "llq",
        "fixed_batch_policy": task.fixed_batch_policy or "fifo",
        "fixed_autoscaler": task.fixed_autoscaler or "none",
        "notes": task.notes,
        "scenario_description": f"Scenario `{sc.name}`: {sc.description}",
        "duration_text": f"{sc.duration_s:g} s",
        "seeds_text": ", ".join(str(s) for s in seeds), "num_seeds": len(seeds),
        "objective_text": obj.text(),
        "policy_file": task.policy_file, "class_name": task.class_name,
        "benchmark_command": task.benchmark_command(),
        "artifact_seed": seeds[0],
        "requests_columns": ", ".join(f"`{c}`" for c in REQUESTS_COLUMNS),
        "gs_log_columns": ", ".join(f"`{c}`" for c in GS_LOG_COLUMNS),
        "rules": "\n".join(f"{i}. {r}" for i, r in enumerate(task.rules, 1)),
        "budget_text": (f"At most {b.max_simulations} simulations through `run_experiment` "
                        f"({b.max_simulations // max(1, len(seeds))} experiments of "
                        f"{len(seeds)} seeds); the session also stops after {b.max_turns} "
                        f"turns, {b.max_wall_s / 3600:g} h or ${b.max_dollars:g} of model usage."),
        "target_pct": f"{task.target_improvement:.0%}",
    })
    return values


def render_layer_text(task, baseline_score: float | None = None) -> str:
    """The Researcher's task text for a batch-policy or autoscaler task."""
    import math

    from glia_nb.task import load_prompt

    if task.layer not in LAYER_TITLES:
        raise NotImplementedError(f"no task text for layer {task.layer!r}")
    sc = task.load_scenario()
    obj = task.objective
    if task.layer == "batch_policy":
        doc = BATCH_DOC.format(cls=task.class_name)
    else:
        cfg = sc.autoscale
        doc = AUTOSCALER_DOC.format(
            cls=task.class_name, min_replicas=cfg.min_replicas,
            max_replicas=sc.cluster.num_replicas, cold_start=cfg.cold_start_s,
            interval=cfg.interval_s, initial=cfg.initial_replicas or sc.cluster.num_replicas,
            fields="\n".join(f"* `stats.{k}` — {v}" for k, v in STATS_FIELDS.items()))
    if baseline_score is not None and math.isfinite(baseline_score):
        baseline_text = (f"The baseline `{task.baseline}` scores **{baseline_score:.3f} "
                         f"{obj.unit}** ({obj.name}) on these seeds; your starting "
                         f"`{task.policy_file}` implements it.")
    else:
        baseline_text = (f"The baseline is `{task.baseline}` (your starting `{task.policy_file}` "
                         "implements it); run an experiment on the unmodified file first.")
    values = _fill({"layer_doc": doc, "baseline_text": baseline_text}, task, sc)
    return load_prompt("layer_task.md").substitute(values)


def render_layer_template(task) -> str:
    """The starting policy file of a batch-policy or autoscaler task (its baseline)."""
    from glia_nb.task import load_prompt

    if task.layer == "batch_policy":
        return load_prompt("batch_policy.py.tmpl").substitute(
            class_name=task.class_name, task_name=task.name)
    if task.layer == "autoscaler":
        from sim_core.autoscale import make_autoscaler

        base = make_autoscaler(task.baseline if task.baseline.startswith("throughput")
                               else "throughput")
        return load_prompt("autoscaler.py.tmpl").substitute(
            class_name=task.class_name, task_name=task.name, high=f"{base.high:g}",
            low=f"{base.low:g}", cooldown_s=f"{base.cooldown_s:g}")
    raise NotImplementedError(f"no policy template for layer {task.layer!r}")


__all__ = ["stack_tasks", "render_layer_text", "render_layer_template", "LAYER_TITLES",
           "BATCH_RULES", "AUTOSCALER_RULES"]
