"""Glia (SCG, MCG-ParN, MCG-Seq) and the fixed routers, under the comparison's budget.

Budget matching: one simulation is one experiment (one evaluation over the task's eval
seeds), as for the search baselines (see :mod:`glia_nb.tasks.budget`). The session's free
baseline run is not counted (the search baselines get the starting program's score for
free too). The budget is the run's total, shared the way ``glia study`` shares it:

* **SCG**: one session with the whole budget.
* **MCG-ParN** (:class:`~glia_nb.research.multi.ParallelGlia`): ``n`` sessions at once that
  split the simulations and the dollar cap (:meth:`Budget.split`), so the totals match.
* **MCG-Seq** (:class:`~glia_nb.research.multi.SequentialGlia`): sessions in turn, each
  getting the simulations and dollars the earlier ones left, until the budget is spent or
  ``max_sessions`` have run.

Each session's toolbox refuses experiments beyond its share and charges every experiment
one simulation, even one that crashed after its first seed.
"""
from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

from glia_nb.baselines.common import EvalRecord, MethodRun
from glia_nb.progress import fmt
from glia_nb.research.multi import ParallelGlia, SequentialGlia

FIXED_ROUTERS = {"RR": "round_robin", "LLQ": "llq", "LOR": "lor", "HRA": "hra"}
GLIA_MODES = {"glia-scg": "SCG", "glia-par4": "MCG-Par4", "glia-seq": "MCG-Seq"}


def run_glia(method: str, task, out_dir, researcher, budget_sims: int, *, executor, seed: int,
             run: int, baseline_score: float | None, budget_usd: float | None = None,
             parallel: int = 4, max_sessions: int = 20, progress=None) -> MethodRun:
    """One run of ``glia-scg``, ``glia-par4`` or ``glia-seq`` as a :class:`MethodRun`."""
    out_dir = Path(out_dir)
    budget = replace(task.budget, max_simulations=int(budget_sims))
    if budget_usd is not None:
        budget = replace(budget, max_usd=budget_usd)
    kw = dict(budget=budget, executor=executor, seed=seed)
    if method == "glia-par4":
        runner = ParallelGlia(parallel, task, out_dir, researcher, **kw)
    elif method == "glia-seq":
        runner = SequentialGlia(max_sessions, task, out_dir, researcher, **kw)
    elif method == "glia-scg":
        runner = SequentialGlia(1, task, out_dir, researcher, **kw)
    else:
        raise ValueError(f"unknown Glia method {method!r}; known: {', '.join(GLIA_MODES)}")
    lock, records, t0 = threading.Lock(), [], time.monotonic()
    ci_key = f"{task.objective.name.removesuffix('_s')}_ci90_s"  # mean_e2e_s -> mean_e2e_ci90_s

    def on_event(i: int, ev: dict) -> None:
        if ev.get("type") != "experiment":
            return
        with lock:
            rec = EvalRecord(label=f"ctx{i}/{ev.get('name')}", ok=bool(ev.get("ok")),
                             score=ev.get("score") if ev.get("ok") else None,
                             sim=len(records) + 1, counted=True,
                             error=(str(ev.get("error") or "")[:2000] or None),
                             ci=(ev.get("metrics") or {}).get(ci_key),
                             t_s=round(time.monotonic() - t0, 3),
                             meta={"context": i, "hypothesis": ev.get("hypothesis")})
            records.append(rec)
        if progress:
            progress(f"context {i} experiment {ev.get('name')}: score {fmt(ev.get('score'))}")

    result = runner.run(progress=on_event)
    usd = sum(float((s.budget_used or {}).get("usd", 0.0) or 0.0) for s in result.sessions)
    best_path = None
    if result.best_session is not None and result.best and result.best.get("folder") \
            and int(result.best.get("id", 0) or 0) != 0:
        p = Path(result.best_session.path) / result.best["folder"] / task.policy_file
        best_path = str(p) if p.exists() else None
    calls = sum(int((s.budget_used or {}).get("llm_calls", 0) or 0) for s in result.sessions)
    reasons = [getattr(s, "end_reason", None) for s in result.sessions]
    mr = MethodRun(method=method, run=run, seed=seed, budget_sims=budget_sims,
                   reason="; ".join(sorted({str(r) for r in reasons if r})),
                   sims_used=len(records), usd=usd, llm_calls=calls, wall_s=round(time.monotonic() - t0, 3),
                   baseline_score=baseline_score, records=[r.to_dict() for r in records],
                   best_code_path=best_path,
                   extra={"mode": GLIA_MODES[method], "researcher": str(researcher),
                          "sessions": len(result.sessions),
                          "end_reasons": reasons,
                          "session_dirs": [str(s.path) for s in result.sessions]})
    if len(records) > budget_sims:  # the caps make this impossible; fail loudly if not
        raise AssertionError(f"{method} used {len(records)} simulations of {budget_sims}")
    return mr


def run_fixed(evaluator, name: str, spec: str) -> dict:
    """A fixed router evaluated once (free): its score and per-seed confidence interval."""
    rec = evaluator.evaluate_spec(spec, name)
    return {"method": name, "spec": spec, "ok": rec.ok, "score": rec.score, "ci": rec.ci,
            "per_seed": rec.per_seed, "error": rec.error}


__all__ = ["FIXED_ROUTERS", "GLIA_MODES", "run_glia", "run_fixed"]
