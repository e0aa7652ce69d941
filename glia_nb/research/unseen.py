"""The study's last word: its best design and the baseline on seeds nobody could have seen.

Every experiment of a study is scored on the task's evaluation seeds, and the Researcher
reads those seeds' per-request telemetry (decode lengths included) to form hypotheses.  A
design can therefore fit those traces -- by honest over-tuning, or by a table of what the
telemetry showed pasted into the code (a "router" that knows each request's decode length
from its arrival time beat the built-in HRA by 9% on the seeds it had seen and matched it
exactly elsewhere).  So when a study ends, the harness draws fresh seeds from the operating
system's entropy (not from anything the study's code or journal holds, not from ``--seed``)
and scores the best design and the baseline on them; ``glia study`` prints that
improvement beside the one measured on the evaluation seeds.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from glia_nb.evaluation.harness import evaluate

SEED_SPACE = 2**31


def unseen_seeds(used, n: int, rng: random.Random | None = None) -> tuple[int, ...]:
    """``n`` distinct seeds outside ``used``, drawn from ``rng`` (default: the operating
    system's entropy, so that no code the study ran could have predicted them)."""
    if n < 1:
        raise ValueError("need at least one unseen seed")
    rng = rng or random.SystemRandom()
    used, out = {int(s) for s in used}, []
    while len(out) < n:
        s = rng.randrange(SEED_SPACE)
        if s not in used and s not in out:
            out.append(s)
    return tuple(out)


def confirm_on_unseen_seeds(task, design: str | Path, *, out_dir: str | Path, n: int | None = None,
                            rng: random.Random | None = None, executor=None, limits=None,
                            secrets=()) -> dict[str, Any]:
    """Score ``design`` (the best design's policy file) and ``task.baseline`` on ``n``
    unseen seeds (default: as many as the task evaluates on), in the sandboxed harness.

    Returns ``{"seeds", "baseline_score", "best_score", "improvement", "error"}``
    (``improvement`` as :meth:`Objective.ratio` gives it; ``error``: the first failure's
    one line, else None).  Telemetry of the first seed of each lands in ``out_dir``."""
    seeds = unseen_seeds(task.seeds, len(task.seeds) if n is None else n, rng)
    unseen = task.replace(eval_seeds=seeds)
    out = Path(out_dir)
    kw = dict(executor=executor, limits=limits, secrets=secrets)
    base = evaluate(task.baseline, unseen, out / "baseline", **kw)
    best = evaluate(str(design), unseen, out / "best", **kw)
    failed = next((r for r in (best, base) if not r.ok), None)
    return {"seeds": list(seeds), "baseline_score": base.score, "best_score": best.score,
            "improvement": task.objective.ratio(best.score, base.score),
            "error": failed.one_line() if failed is not None else None}


__all__ = ["unseen_seeds", "confirm_on_unseen_seeds", "SEED_SPACE"]
