"""The study's last word: its best design and the baseline on seeds nobody could have seen.

Every experiment of a study is scored on the task's evaluation seeds, and the Researcher
reads those seeds' per-request telemetry (decode lengths included) to form hypotheses.  A
design can therefore fit those traces -- by honest over-tuning, or by a table of what the
telemetry showed pasted into the code (a "router" that knows each request's decode length
from its arrival time scored 22.31 s against the built-in HRA's 24.64 on the two seeds it
had seen, and exactly HRA's score elsewhere).  So when a study ends, the harness draws
fresh seeds from the operating system's entropy (not from anything the study's code or
journal holds, not from ``--seed``) and scores the best design and the baseline on them;
``glia study`` prints that improvement beside the one measured on the evaluation seeds.
Unlike :func:`glia_nb.research.publish.held_out_seeds` (a published case study's re-check,
which readers must be able to repeat), these seeds are unpredictable on purpose.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from glia_nb.evaluation.harness import evaluate
from glia_nb.jsonable import finite_or_none
from glia_nb.progress import fmt

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

    Returns ``{"seeds", "baseline_score", "best_score", "baseline_feasible",
    "best_feasible", "improvement", "error"}``: scores are finite or None (a design that
    breaks the task's constraint has none, and ``*_feasible`` says so); ``improvement`` as
    :meth:`Objective.ratio` gives it; ``error``: the first failure's one line, else None.
    The design runs first, so no telemetry of these seeds exists while it runs; each one's
    first seed's telemetry then lands in ``out_dir``."""
    seeds = unseen_seeds(task.seeds, len(task.seeds) if n is None else n, rng)
    unseen = task.replace(eval_seeds=seeds)
    out = Path(out_dir)
    kw = dict(executor=executor, limits=limits, secrets=secrets)
    best = evaluate(str(design), unseen, out / "best", **kw)
    base = evaluate(task.baseline, unseen, out / "baseline", **kw)
    failed = next((r for r in (best, base) if not r.ok), None)
    scores = {k: finite_or_none(r.score) for k, r in (("best", best), ("baseline", base))}
    return {"seeds": list(seeds), "baseline_score": scores["baseline"], "best_score": scores["best"],
            "baseline_feasible": base.ok and scores["baseline"] is not None,
            "best_feasible": best.ok and scores["best"] is not None,
            "improvement": task.objective.ratio(scores["best"], scores["baseline"]),
            "error": failed.one_line() if failed is not None else None}


def confirm_best(task, session, best: dict | None, *, n: int | None = None, executor=None,
                 progress=None) -> dict | None:
    """Confirm the best design of ``session`` (its experiment record ``best``) on ``n``
    unseen seeds (:func:`confirm_on_unseen_seeds`), under the session's toolbox limits and
    secrets; telemetry goes to ``<session folder>-unseen_seeds`` beside the session's folder.
    None when ``n`` is 0 or no experiment beat the baseline (nothing of the Researcher's)."""
    if n == 0 or session is None or not best or best.get("id") in (None, 0) \
            or not best.get("folder"):
        return None
    design = Path(session.workspace.path) / best["folder"] / task.policy_file
    if not design.is_file():
        return None
    count = len(task.seeds) if n is None else n
    if progress:
        progress(0, {"type": "unseen_seeds", "n": count, "name": best.get("name")})
    toolbox = getattr(session, "toolbox", None)
    here = Path(session.path)
    return confirm_on_unseen_seeds(
        task, design, out_dir=here.parent / f"{here.name}-unseen_seeds", n=count,
        executor=executor, limits=getattr(getattr(toolbox, "inner", toolbox), "limits", None),
        secrets=getattr(session, "secrets", ()))


def unseen_fields(unseen: dict | None) -> dict:
    """The ``glia study --json`` fields of a confirmation (all None without one)."""
    unseen = unseen or {}
    return {f"unseen_{k}": unseen.get(k)
            for k in ("seeds", "baseline_score", "best_score", "baseline_feasible",
                      "best_feasible", "improvement", "error")}


def unseen_text(doc: dict) -> str:
    """The line ``glia study`` prints for a document with ``unseen_seeds``."""
    n = len(doc["unseen_seeds"])
    where = f"on {n} unseen seed{'s' if n != 1 else ''}"
    if doc.get("unseen_error"):
        return f"{where} the confirmation failed: {doc['unseen_error']}"

    def score(key: str) -> str:
        x = doc.get(f"unseen_{key}_score")
        return fmt(x) if x is not None else (
            "infeasible" if doc.get(f"unseen_{key}_feasible") is False else "none")

    r = doc.get("unseen_improvement")
    verdict = ("no finite ratio" if r is None else
               f"{fmt(r)}x better" if r >= 1 else f"{fmt(r)}x: worse than the baseline")
    return f"{where}: baseline {score('baseline')}  best {score('best')}  ({verdict})"


__all__ = ["unseen_seeds", "confirm_on_unseen_seeds", "confirm_best", "unseen_fields",
           "unseen_text", "SEED_SPACE"]
