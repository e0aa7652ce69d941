"""Glia (SCG, MCG-ParN, MCG-Seq) and the fixed routers, under the comparison's budget.

Budget matching: one simulation is one experiment (one benchmark run over the task's eval
seeds), as for the search baselines. The session's free baseline run is not counted (the
search baselines get the starting program's score for free too).

* **SCG**: one session with the whole budget (what ``glia study`` runs).
* **MCG-ParN** (:class:`SplitParallelGlia`): ``n`` sessions at once that split the budget
  (``budget // n`` each, the first ``budget % n`` sessions one more) and the dollar cap, so
  the totals match.
* **MCG-Seq** (:class:`BudgetedSequentialGlia`): sessions in turn, each getting the
  simulations and dollars the earlier ones left, until the budget is spent or
  ``max_sessions`` have run.

Each session's toolbox (:class:`CappedToolBox`) refuses experiments beyond its share and
charges every experiment as a full benchmark run, even one that crashed after its first
seed, so a session can never run more experiments than its share.
"""
from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

from glia_nb.baselines.common import EvalRecord, MethodRun
from glia_nb.progress import fmt
from glia_nb.research.multi import MultiResult, ParallelGlia, SequentialGlia, _pick_best, reached
from glia_nb.research.tools import ToolBox, ToolResult

FIXED_ROUTERS = {"RR": "round_robin", "LLQ": "llq", "LOR": "lor", "HRA": "hra"}
GLIA_MODES = {"glia-scg": "SCG", "glia-par4": "MCG-Par4", "glia-seq": "MCG-Seq"}


class CappedToolBox(ToolBox):
    """A :class:`~glia_nb.research.tools.ToolBox` that allows at most ``max_experiments`` experiments
    and charges each one a full run over the task's seeds."""

    def __init__(self, workspace, *, max_experiments: int, **kw):
        super().__init__(workspace, **kw)
        self.max_experiments = int(max_experiments)
        self.experiments_run = 0

    def run_experiment(self, name: str, hypothesis: str) -> ToolResult:
        if self.experiments_run >= self.max_experiments:
            return ToolResult(
                f"simulation budget exhausted: all {self.max_experiments} experiments of this "
                "session are used. No more experiments can be run; call finish with your best "
                "design.", is_error=True, data={"budget_exhausted": True})
        res = super().run_experiment(name, hypothesis)
        row = (res.data or {}).get("experiment")
        if isinstance(row, dict):
            self.experiments_run += 1
            need = len(self.workspace.task.seeds)
            got = int(row.get("simulations") or 0)
            if got < need:
                self.simulations_used += need - got
                row["simulations"] = need
        return res


class _Budgeted:
    """Mixin: sessions get :class:`CappedToolBox` toolboxes with per-session experiment caps."""

    toolboxes: list

    def _capped_session(self, index: int, experiments: int, usd: float | None = None):
        from glia_nb.tasks.budget import Budget
        from glia_nb.research.session.session import Session

        sup = self.supervisor_client
        if sup is None and self.researcher == "offline":
            from glia_nb.research.offline.researcher import OfflineSupervisor

            sup = OfflineSupervisor()
        n_seeds = len(self.task.seeds)
        budget = replace(Budget.coerce(self.budget), max_simulations=experiments * n_seeds)
        if usd is not None:
            budget = replace(budget, max_usd=usd)
        executor = self.executor

        def factory(workspace, task, _budget):
            tb = CappedToolBox(workspace, executor=executor, max_experiments=experiments,
                               max_simulations=experiments * n_seeds)
            self.toolboxes.append(tb)
            return tb

        return Session.create(self.task, self.root / f"context{index}", self.researcher,
                              supervisor_client=sup, budget=budget, seed=self.seed + index,
                              toolbox=factory, **self.session_kwargs)


def usd_share(budget, n: int) -> float | None:
    """Each of ``n`` parallel sessions' share of the dollar cap (None: no cap)."""
    cap = getattr(budget, "max_usd", None)
    return None if cap is None else cap / n


class SplitParallelGlia(_Budgeted, ParallelGlia):
    """MCG-ParN whose ``n`` sessions share ``total_experiments`` as evenly as possible."""

    def __init__(self, n: int, task, root, researcher="offline", *, total_experiments: int, **kw):
        super().__init__(n, task, root, researcher, **kw)
        self.total = int(total_experiments)
        self.toolboxes = []

    def share(self, index: int) -> int:
        return self.total // self.n + (1 if index < self.total % self.n else 0)

    def _session(self, index: int):
        usd = usd_share(self.budget, self.n)
        return self._capped_session(index, self.share(index), usd)


class BudgetedSequentialGlia(_Budgeted, SequentialGlia):
    """MCG-Seq: sessions in turn, each with the experiments the earlier ones left."""

    def __init__(self, max_sessions: int, task, root, researcher="offline", *,
                 total_experiments: int, **kw):
        super().__init__(max_sessions, task, root, researcher, **kw)
        self.total = int(total_experiments)
        self.toolboxes = []

    def used(self) -> int:
        return sum(tb.experiments_run for tb in self.toolboxes)

    def run(self, progress=None) -> MultiResult:
        """Run sessions until the shared budget is spent (or ``target`` is reached)."""
        sessions = []
        with self:
            for i in range(self.max_sessions):
                left = self.total - self.used()
                if left <= 0:
                    break
                cap = getattr(self.budget, "max_usd", None)
                spent = sum(float((x.budget_used or {}).get("usd", 0.0) or 0.0) for x in sessions)
                if cap is not None and spent >= cap:
                    break
                s = self._capped_session(i, left, None if cap is None else cap - spent)
                if progress:
                    s.subscribe(lambda ev, i=i: progress(i, ev))
                s.run()
                sessions.append(s)
                _, best = _pick_best(sessions)
                if reached(self.target, best, s.lower_is_better):
                    break
        best_s, best = _pick_best(sessions)
        return MultiResult(sessions=sessions, best_session=best_s, best=best)


def run_glia(method: str, task, out_dir, researcher, budget_sims: int, *, executor, seed: int,
             run: int, baseline_score: float | None, budget_usd: float | None = None,
             parallel: int = 4, max_sessions: int = 20, progress=None) -> MethodRun:
    """One run of ``glia-scg``, ``glia-par4`` or ``glia-seq`` as a :class:`MethodRun`."""
    from glia_nb.tasks.budget import Budget

    out_dir = Path(out_dir)
    budget = Budget.coerce(task.budget)
    if budget_usd is not None:
        budget = replace(budget, max_usd=budget_usd)
    kw = dict(budget=budget, executor=executor, seed=seed)
    if method == "glia-par4":
        runner = SplitParallelGlia(parallel, task, out_dir, researcher,
                                   total_experiments=budget_sims, **kw)
    elif method == "glia-seq":
        runner = BudgetedSequentialGlia(max_sessions, task, out_dir, researcher,
                                        total_experiments=budget_sims, **kw)
    elif method == "glia-scg":
        runner = BudgetedSequentialGlia(1, task, out_dir, researcher,
                                        total_experiments=budget_sims, **kw)
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


__all__ = ["FIXED_ROUTERS", "GLIA_MODES", "CappedToolBox", "SplitParallelGlia",
           "BudgetedSequentialGlia", "run_glia", "run_fixed"]
