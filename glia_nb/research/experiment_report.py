"""The short text the Researcher gets back from ``run_experiment``: the score against the
baseline and the best so far (through the task's Objective), the constraint, the per-seed
scores, restarts and where request time went, and the files to look at."""
from __future__ import annotations

import os
from pathlib import Path

from glia_nb.evaluation.harness import EvalResult
from glia_nb.research.workspace import Workspace
from glia_nb.text import truncate_middle

__all__ = ["format_report", "TIME_SPLIT", "ARTIFACTS"]

TIME_SPLIT = (("mean_global_queue_s", "global queue"), ("mean_replica_queue_s", "replica queue"),
              ("mean_prefill_s", "prefill"), ("mean_decode_s", "decode"),
              ("mean_lost_to_restarts_s", "lost to restarts"))
ARTIFACTS = ("requests.csv", "request_metrics.csv", "gs_log.csv", "reqs_log.csv")


def format_report(ws: Workspace, exp_id: int, name: str, result: EvalResult,
                  prev_best: dict | None, used: int, budget: int | None) -> str:
    """The short text the Researcher gets back from ``run_experiment``."""
    task, obj = ws.task, ws.task.objective
    rel = ws.relative(result.out_dir) if result.out_dir else "?"
    head = f"Experiment {exp_id:03d} \"{name}\""
    sims = (f"{result.simulations} seed(s) simulated; {used} of "
            f"{'unlimited' if budget is None else budget} simulations used")
    if not result.ok:
        lines = [f"{head}: FAILED ({result.error_kind}) after {result.wall_s:.1f} s ({sims})",
                 result.error or ""]
        if result.traceback:
            tb = result.traceback.strip().splitlines()[-15:]
            lines += ["Traceback (last lines):", *tb]
        lines.append(f"Files: {rel}/policy.py (snapshot), {rel}/sandbox_log.txt (output)")
        # Paths relative to the workspace: shorter, and what the Researcher's tools accept.
        text = "\n".join(lines).replace(str(ws.path) + os.sep, "")
        return truncate_middle(text, 4000)
    s = result.summary
    base, bsum = ws.baseline_score, ws.baseline_summary or {}
    ci = s.get("mean_e2e_ci90_s")
    score = f"{obj.name} = {result.score:.3f} {obj.unit}"
    if ci and obj.name == "mean_e2e_s" and len(result.seeds) > 1:
        score += f" (90% CI {ci[0]:.2f}-{ci[1]:.2f})"
    if base is not None:
        imp = obj.improvement(result.score, base)
        score += f"; baseline {task.baseline} {base:.3f}" + (
            "" if imp is None else f": {abs(imp):.1%} {'better' if imp >= 0 else 'worse'}")
    if prev_best is not None and prev_best.get("score") is not None:
        is_best = obj.is_better(result.score, prev_best["score"])
        score += (f"; new best (previous {prev_best['score']:.3f}, exp {prev_best['id']:03d})"
                  if is_best else f"; best so far {prev_best['score']:.3f} (exp "
                  f"{prev_best['id']:03d})")
    if getattr(obj, "constraint", None):
        c_val = s.get(obj.constraint, float("nan"))
        met = obj.feasible(s)
        score += (f"\nConstraint {obj.constraint} = {c_val:.3f} (limit {obj.constraint_max:g}): "
                  + ("met" if met else f"VIOLATED, so the score counts as {result.score}; "
                     f"{obj.name} itself was {s.get(obj.name, float('nan')):.3f}"))
    per_seed = " | ".join(f"{p.get('seed')}: {p.get(obj.name, float('nan')):.2f}"
                          for p in result.per_seed)
    rf = s.get("restart_fraction", float("nan"))
    rtxt = f"Restarted requests {rf:.1%}"
    if "restart_fraction" in bsum:
        rtxt += f" (baseline {bsum['restart_fraction']:.1%})"
    rtxt += (f"; mean TTFT {s.get('mean_ttft_s', float('nan')):.2f} s, p90 TTFT "
             f"{s.get('p90_ttft_s', float('nan')):.2f} s; p99 e2e {s.get('p99_e2e_s', float('nan')):.1f} s")
    split = " | ".join(f"{label} {s.get(k, float('nan')):.2f}" for k, label in TIME_SPLIT)
    lines = [f"{head}: ok in {result.wall_s:.1f} s ({sims})", score,
             f"Per seed: {per_seed}", rtxt, f"Mean time split (s): {split}"]
    if bsum and all(k in bsum for k, _ in TIME_SPLIT):
        lines.append("Baseline split (s):   " + " | ".join(
            f"{label} {bsum[k]:.2f}" for k, label in TIME_SPLIT))
    files = ", ".join(a for a in ARTIFACTS if result.out_dir and (Path(result.out_dir) / a).exists())
    lines.append(f"Files in {rel}/: metrics.json, seeds.csv"
                 + (f"; seed {result.seeds[0]} telemetry: {files}" if files else ""))
    return "\n".join(lines)
