"""A study: one research session (SCG) or several (MCG-ParN, MCG-Seq) on a task, summarised
as the document ``glia study --json`` prints.

    from glia_nb.research.study import run_study
    doc = run_study("routing-a10", budget_sims=6)

The score comparison (which design is best, how many times better than the baseline) goes
through the task's :class:`~glia_nb.tasks.objective.Objective`, so a maximised objective
(``routing-h100-prefill``'s throughput) is ranked the right way round.
"""
from __future__ import annotations

import time
from dataclasses import replace
from contextlib import nullcontext
from pathlib import Path

from glia_nb.evaluation.executors import dask_address, open_executor
from glia_nb.research.journal import finite_or_none
from glia_nb.progress import fmt
from glia_nb.research.multi import ParallelGlia, SequentialGlia
from glia_nb.runs import runs_dir
from glia_nb.tasks import get_task
from glia_nb.tasks.budget import Budget

__all__ = ["run_study", "study_budget", "study_text"]


def study_budget(task, budget_sims: int | None = None, budget_usd: float | None = None) -> Budget:
    """The task's budget with the study's overrides: ``budget_sims`` simulations (one
    simulation = one evaluation of a design over the task's seeds) and ``budget_usd``
    dollars, both totals for the whole study."""
    changes = {}
    if budget_sims is not None:
        if budget_sims < 1:
            raise ValueError("--budget-sims must be >= 1")
        changes["max_simulations"] = int(budget_sims)
    if budget_usd is not None:
        changes["max_usd"] = float(budget_usd)
    return replace(task.budget, **changes)


def run_study(task_name: str = "routing-a10", researcher: str = "offline", *, budget_sims=None,
              budget_usd=None, parallel=None, sequential=None, target=None, seed: int = 0,
              workers: int = 2, out=None, progress=None, task=None, dask: str | None = None) -> dict:
    """Run a study (SCG, MCG-ParN or MCG-Seq) and return the ``glia study --json`` document.

    The budget is the study's total: MCG-ParN splits it between its sessions and MCG-Seq's
    sessions spend what the earlier ones left (as ``glia compare`` does). ``dask`` (or
    ``$GLIA_DASK``): a scheduler address whose cluster runs the simulations instead of
    ``workers`` local processes."""
    task = task or get_task(task_name)
    budget = study_budget(task, budget_sims, budget_usd)
    root = Path(out or runs_dir() / f"{task.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    address = dask_address(dask)
    with open_executor(dask=address) if address else nullcontext() as executor:
        kw = dict(budget=budget, max_workers=workers, seed=seed, executor=executor)
        if parallel:
            runner = ParallelGlia(parallel, task, root, researcher, **kw)
        else:
            runner = SequentialGlia(sequential or 1, task, root, researcher, target=target, **kw)
        result = runner.run(progress=progress)
    sessions = result.sessions
    best_s = result.best_session or sessions[0]
    obj = task.objective
    # The baseline as the journal recorded it (the fold's baseline record).
    base_summary = (best_s.state.baseline or {}).get("metrics") or {}
    base = best_s.baseline_score
    best = result.best_score
    cost = sum(float(s.budget_used.get("usd", 0.0) or 0.0) for s in sessions)
    n_exp = sum(len([e for e in s.experiments if e.get("id", 1) != 0]) for s in sessions)
    return {
        "task": task.name,
        "researcher": researcher,
        "mode": f"MCG-Par{parallel}" if parallel else (f"MCG-Seq{sequential}" if sequential else "SCG"),
        "objective": obj.name,
        "direction": obj.direction,
        "baseline_score": base,
        # A constrained baseline that breaks its bound has no score; say so, with its raw value.
        "baseline_feasible": obj.feasible(base_summary) if base_summary else base is not None,
        "baseline_value": finite_or_none(base_summary.get(obj.name)),
        "best_score": best,
        "improvement": obj.ratio(best, base),
        "best_experiment": (result.best or {}).get("name"),
        "num_experiments": n_exp,
        "sessions": len(sessions),
        "session_dir": str(best_s.path),
        "cost_usd": cost,
    }


def study_text(doc: dict) -> str:
    """The readable form of a :func:`run_study` document (what ``glia study`` prints)."""
    def num(x) -> str:
        return "none" if x is None else fmt(x)

    if doc.get("improvement") is not None:
        r = doc["improvement"]
        verdict = f"{fmt(r)}x better" if r >= 1 else f"{fmt(r)}x: worse than the baseline"
    elif doc.get("best_score") is None:
        verdict = "no design met the objective"
    elif not doc.get("baseline_feasible", True):
        verdict = "the baseline breaks the constraint; the best design meets it"
    else:
        verdict = "no finite ratio"
    base = num(doc.get("baseline_score"))
    if doc.get("baseline_score") is None and doc.get("baseline_value") is not None:
        base = f"infeasible ({doc['objective']} {fmt(doc['baseline_value'])})"
    lines = [f"task {doc['task']}  researcher {doc['researcher']}  mode {doc['mode']}",
             f"baseline score {base}  best score {num(doc.get('best_score'))}  ({verdict}) "
             f"after {doc['num_experiments']} experiments",
             f"best design: {doc['best_experiment'] or 'none'}  (session {doc['session_dir']}, "
             f"${doc['cost_usd']:.2f})"]
    return "\n".join(lines)
