"""The Researcher's task text and starting policy file, for every layer.

The router layer has its own template (``router_task.md``); the batch-policy and autoscaler
layers share ``layer_task.md``. Everything that describes code comes from
:mod:`glia_nb.tasks.describe`.
"""
from __future__ import annotations

import math

from sim_core.autoscale import make_autoscaler

from glia_nb.tasks.describe import (GS_LOG_COLUMNS, REQS_LOG_COLUMNS, REQUESTS_COLUMNS,
                                    describe_view, info_values, state_codes,
                                    time_parts, view_docstring)
from glia_nb.tasks.layers import LAYERS
from glia_nb.text import load_template


def budget_text_of(b, num_seeds: int) -> str:
    """One sentence on the budget for the task text (unlimited parts are left out)."""
    sims = ("Experiments are not limited in number" if b.max_simulations is None else
            f"At most {b.max_simulations} simulations through `run_experiment` (one "
            f"simulation = one experiment over the {num_seeds} evaluation seeds)")
    stops = [f"{b.max_turns} turns" if b.max_turns is not None else None,
             f"{b.max_wall_s / 3600:g} h" if b.max_wall_s is not None else None,
             f"${b.max_usd:g} of model usage" if b.max_usd is not None else None]
    stops = [x for x in stops if x]
    return sims + ("; the session also stops after " + " or ".join(stops) if stops else "") + "."


def render_task_text(task, baseline_score: float | None = None) -> str:
    """The Researcher's task text (Markdown) for ``task``, with the baseline's score if known."""
    if task.layer != "router":
        return render_layer_text(task, baseline_score)
    sc = task.load_scenario()
    rc = sc.cluster.replica
    seeds = task.seeds
    info = info_values(sc.cluster)
    obj = task.objective
    if baseline_score is not None and math.isfinite(baseline_score):
        baseline_text = (f"The baseline router `{task.baseline}` scores **{baseline_score:.2f} "
                         f"{obj.unit}** ({obj.name}) on these seeds. Its telemetry, if it "
                         f"was recorded, is in the first folder under `experiments/`.")
    else:
        baseline_text = (f"The baseline router is `{task.baseline}` (your starting "
                         f"`{task.policy_file}` implements it); its score has not been "
                         f"measured yet — run an experiment on the unmodified file first.")
    b = task.budget
    budget_text = budget_text_of(b, len(seeds)) + (
        " Spend simulations on experiments that test a clear hypothesis.")
    values = {
        "title": task.title or f"{task.name}: a better router",
        "num_replicas": sc.cluster.num_replicas, "model": rc.model, "gpu": rc.gpu,
        "tp": rc.tp, "scheduler": rc.scheduler, "batch_cap": rc.batch_cap,
        "chunk_size": rc.chunk_size, "block_size": rc.block_size,
        "num_blocks": rc.num_blocks, "watermark_blocks": rc.watermark_blocks,
        "max_replica": sc.cluster.num_replicas - 1,
        "scenario_description": f"Scenario `{sc.name}`: {sc.description} "
                                f"Workload: {sc.workload.describe()}.",
        "duration_text": f"{sc.duration_s:g} s",
        "seeds_text": ", ".join(str(s) for s in seeds), "num_seeds": len(seeds),
        "objective_text": obj.text(),
        "policy_file": task.policy_file, "class_name": task.class_name,
        "info_fields": "\n".join(f"* `{k}` = {v!r}" for k, v in info.items()),
        "view_doc": view_docstring(), "view_fields": describe_view(),
        "state_codes": state_codes(),
        "benchmark_command": task.benchmark_command(),
        "artifact_seed": seeds[0],
        "requests_columns": ", ".join(f"`{c}`" for c in REQUESTS_COLUMNS),
        "time_parts": time_parts(),
        "gs_log_columns": ", ".join(f"`{c}`" for c in GS_LOG_COLUMNS),
        "reqs_log_columns": ", ".join(f"`{c}`" for c in REQS_LOG_COLUMNS),
        "baseline_text": baseline_text,
        "rules": "\n".join(f"{i}. {r}" for i, r in enumerate(task.rules, 1)),
        "budget_text": budget_text,
        "expect_text": _target_text(task),
        "task_name": task.name,
    }
    return load_template("router_task.md").substitute(values)


def _target_text(task) -> str:
    """What the router text promises: a percentage, or (constrained tasks whose baseline
    breaks the constraint) a design that meets it."""
    o = task.objective
    if o.constraint and task.target_improvement == 0:
        return (f"The baseline breaks the constraint {o.constraint} <= {o.constraint_max:g}; "
                "designs that keep it exist. Among those, "
                f"{'lower' if o.direction == 'min' else 'higher'} {o.name} is better.")
    return (f"It is possible to do much better than the baseline: a reduction of at least "
            f"{task.target_improvement:.0%} in\nthe objective should be reachable.")


def render_policy_template(task) -> str:
    """The starting policy file: a small readable LLQ router named ``class_name`` (for
    the other layers: arrival order, or the threshold autoscaler)."""
    if task.layer != "router":
        return render_layer_template(task)
    return load_template(LAYERS["router"].template).substitute(
        class_name=task.class_name, task_name=task.name)



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


def _fill(values: dict, task, sc) -> dict:
    rc = sc.cluster.replica
    obj = task.objective
    seeds = task.seeds
    b = task.budget
    layer = LAYERS[task.layer]
    values.update({
        "title": task.title or f"{task.name}: a better {layer.noun}",
        "layer_title": layer.title,
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
        "budget_text": budget_text_of(b, len(seeds)),
        "target_pct": f"{task.target_improvement:.0%}",
    })
    return values


def render_layer_text(task, baseline_score: float | None = None) -> str:
    """The Researcher's task text for a batch-policy or autoscaler task."""
    if task.layer == "router":
        raise NotImplementedError("the router layer has its own task text (render_task_text)")
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
    return load_template("layer_task.md").substitute(values)


def render_layer_template(task) -> str:
    """The starting policy file of a batch-policy or autoscaler task (its baseline)."""
    template = LAYERS[task.layer].template
    if task.layer == "batch_policy":
        return load_template(template).substitute(
            class_name=task.class_name, task_name=task.name)
    if task.layer == "autoscaler":
        base = make_autoscaler(task.baseline if task.baseline.startswith("throughput")
                               else "throughput")
        return load_template(template).substitute(
            class_name=task.class_name, task_name=task.name, high=f"{base.high:g}",
            low=f"{base.low:g}", cooldown_s=f"{base.cooldown_s:g}")
    raise NotImplementedError(f"no policy template for layer {task.layer!r}")


__all__ = ["render_task_text", "render_policy_template", "render_layer_text",
           "render_layer_template"]
