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
from glia_nb.research.unseen import confirm_best, unseen_fields, unseen_text
from glia_nb.runs import runs_dir
from glia_nb.tasks import get_task
from glia_nb.tasks.budget import Budget

__all__ = ["run_study", "study_budget", "study_text"]


def study_budget(task, budget_sims: int | None = None, budget_usd: float | None = None,
                 max_turns: int | None = None, wall_time: float | None = None) -> Budget:
    """The task's budget with the study's overrides: ``budget_sims`` simulations (one
    simulation = one evaluation of a design over the task's seeds) and ``budget_usd``
    dollars, both totals for the whole study; ``max_turns`` Researcher turns and
    ``wall_time`` active seconds."""
    changes = {}
    for flag, key, value in (("--max-turns", "max_turns", max_turns), ("--wall-time", "max_wall_s", wall_time)):
        if value is not None:
            if value <= 0:
                raise ValueError(f"{flag} must be > 0")
            changes[key] = value
    if budget_sims is not None:
        if budget_sims < 1:
            raise ValueError("--budget-sims must be >= 1")
        changes["max_simulations"] = int(budget_sims)
    if budget_usd is not None:
        changes["max_usd"] = float(budget_usd)
    return replace(task.budget, **changes)


def run_study(task_name: str = "routing-a10", researcher: str = "offline", *, budget_sims=None,
              budget_usd=None, parallel=None, sequential=None, target=None, seed: int = 0,
              workers: int = 2, out=None, progress=None, task=None, dask: str | None = None,
              max_turns=None, wall_time=None, max_tokens=None, context_tokens=None,
              unseen_seeds: int | None = None) -> dict:
    """Run a study (SCG, MCG-ParN or MCG-Seq) and return the ``glia study --json`` document.

    The budget is the study's total: MCG-ParN splits it between its sessions and MCG-Seq's
    sessions spend what the earlier ones left (as ``glia compare`` does). ``dask`` (or
    ``$GLIA_DASK``): a scheduler address whose cluster runs the simulations instead of
    ``workers`` local processes. ``status`` is ``finished``, ``stopped`` or ``failed``
    (every session failed, or the model could not be used at all), ``reason`` says why in
    one line; ``max_tokens`` and ``context_tokens`` configure a model researcher's client;
    ``unseen_seeds``: how many seeds the best design is confirmed on when a study finishes
    (default: as many as the task has; 0: none, see :mod:`glia_nb.research.unseen`)."""
    from glia_nb.llm.retry import LLMError

    task = task or get_task(task_name)
    budget = study_budget(task, budget_sims, budget_usd, max_turns, wall_time)
    root = Path(out or runs_dir() / f"{task.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    address = dask_address(dask)
    try:
        client = _client(researcher, max_tokens, context_tokens)
        with open_executor(dask=address) if address else nullcontext() as executor:
            kw = dict(budget=budget, max_workers=workers, seed=seed, executor=executor)
            if parallel:
                runner = ParallelGlia(parallel, task, root, client, **kw)
            else:
                runner = SequentialGlia(sequential or 1, task, root, client, target=target, **kw)
            result = runner.run(progress=progress)
            try:
                status, reason = _status(result.sessions)
                # A stopped or failed study is not confirmed: nothing it found is final.
                unseen = confirm_best(task, result.best_session, result.best, n=unseen_seeds,
                                      executor=executor, progress=progress) \
                    if status == "finished" else None
                return _study_doc(task, result, researcher, parallel, sequential, status,
                                  reason, unseen)
            finally:
                for s in result.sessions:  # the study is over: free each journal (a resume)
                    s.close()
    except LLMError as exc:  # the model cannot be used at all (a dead endpoint, a bad key)
        return {"task": task.name, "researcher": researcher, "status": "failed", "reason": _line(exc),
                "mode": "SCG", "baseline_score": None, "best_score": None, "improvement": None,
                "best_experiment": None, "num_experiments": 0, "sessions": 0, "session_dir": None,
                "cost_usd": None, "cost_known": True, "input_tokens": 0, "output_tokens": 0, "llm_calls": 0,
                **unseen_fields(None)}


def _status(sessions) -> tuple[str, str | None]:
    """The study's status and the reason of a session that ended so."""
    statuses = [s.status for s in sessions]
    status = "failed" if all(x == "failed" for x in statuses) else (
        "stopped" if "stopped" in statuses else "finished")
    reason = next((s.end_reason for s in sessions if s.status == status), None) or sessions[-1].end_reason
    return status, reason


def _study_doc(task, result, researcher, parallel, sequential, status, reason, unseen) -> dict:
    """The ``glia study --json`` document of a study that ran."""
    sessions = result.sessions
    best_s = result.best_session or sessions[0]
    obj = task.objective
    # The baseline as the journal recorded it (the fold's baseline record).
    base_summary = (best_s.state.baseline or {}).get("metrics") or {}
    base = best_s.baseline_score
    best = result.best_score
    cost = sum(float(s.budget_used.get("usd", 0.0) or 0.0) for s in sessions)
    n_exp = sum(len([e for e in s.experiments if e.get("id", 1) != 0]) for s in sessions)
    usage = _usage(sessions)
    return {
        "status": status,
        "reason": reason,
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
        "cost_usd": cost if usage["cost_known"] else None,
        **usage,
        **unseen_fields(unseen),
    }


def _client(spec, max_tokens, context_tokens):
    """A model client built from ``spec`` with the study's limits, or ``spec`` itself for a
    rule-based researcher or a ready client."""
    if not isinstance(spec, str) or (":" not in spec and spec not in ("anthropic", "openai")):
        return spec
    from glia_nb.llm import make_client

    if context_tokens is not None and context_tokens < 512:
        raise ValueError("--context-tokens must be >= 512")
    client = make_client(spec, **({"context_window": context_tokens} if context_tokens else {}))
    if max_tokens is not None:
        if max_tokens < 16:
            raise ValueError("--max-tokens must be >= 16")
        client.max_output_tokens = int(max_tokens)
    return client


def _usage(sessions) -> dict:
    """Model calls, tokens and whether every call had a price, from the sessions' folded journals."""
    states = [s.state for s in sessions]
    return {"llm_calls": sum(st.llm_calls for st in states),
            "input_tokens": sum(st.input_tokens for st in states),
            "output_tokens": sum(st.output_tokens for st in states),
            "cost_known": not any(st.unpriced_calls for st in states)}


def _line(exc) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


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
    head = f"task {doc['task']}  researcher {doc['researcher']}  mode {doc['mode']}  status {doc['status']}"
    if doc.get("session_dir") is None:  # nothing ran: the reason (on stderr) is the whole story
        return head
    cost = f"${doc['cost_usd']:.2f}" if doc.get("cost_known", True) else "unpriced"
    lines = [head,
             f"baseline score {base}  best score {num(doc.get('best_score'))}  ({verdict}) "
             f"after {doc['num_experiments']} experiments",
             f"best design: {doc['best_experiment'] or 'none'}  (session {doc['session_dir']})",
             *([unseen_text(doc)] if doc.get("unseen_seeds") else []),
             f"model calls {doc['llm_calls']}: {doc['input_tokens']} tokens in / {doc['output_tokens']} out, {cost}"]
    return "\n".join(lines)

