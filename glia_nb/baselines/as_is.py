"""LLM-as-is: independent samples from one detailed prompt, no feedback (paper §3.1).

Every sample sees the same prompt (:func:`glia_nb.baselines.prompts.problem_statement`);
nothing learnt from earlier samples is passed on. Each usable program costs one
simulation, so a budget of N gives (up to) N scored samples: the run's ``extra`` holds
their score distribution (the paper's Fig. 2), and its best-so-far curve is what a person
who keeps re-asking would get.
"""
from __future__ import annotations

import math

from glia_nb.baselines.common import MethodContext, extract_candidate
from glia_nb.baselines.prompts import ROLE, problem_statement

NAME = "as-is"


def run(ctx: MethodContext, *, temperature: float | None = None) -> dict:
    """Sample until the run's budget (simulations, calls or dollars) is spent."""
    prompt = problem_statement(ctx.task)
    k = 0
    while not ctx.ledger.exhausted():
        k += 1
        text = ctx.ask(ROLE, prompt, temperature=temperature)
        if text is None:
            continue
        ctx.evaluate(extract_candidate(text, ctx.task.class_name), f"sample-{k}",
                     meta={"sample": k})
    return {"distribution": distribution(ctx)}


def distribution(ctx: MethodContext) -> dict:
    """Scores of the run's evaluated samples and how many failed or were unusable."""
    recs = ctx.ledger.records
    scores = sorted(r.score for r in recs if r.counted and r.ok and r.score is not None)
    return {
        "scores": scores,
        "samples": sum(1 for r in recs if not r.cached),
        "failed": sum(1 for r in recs if r.counted and not r.ok),
        "unusable": sum(1 for r in recs if not r.counted and not r.cached),
        "repeats": sum(1 for r in recs if r.cached),
        "median": _quantile(scores, 0.5),
        "p10": _quantile(scores, 0.1),
        "p90": _quantile(scores, 0.9),
        "baseline_score": ctx.baseline.score,
        "beat_baseline": sum(1 for s in scores if ctx.baseline.score is not None
                             and ctx.task.objective.is_better(s, ctx.baseline.score)),
    }


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    pos = q * (len(values) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


__all__ = ["NAME", "run", "distribution"]
