"""Multi-context Glia: several independent research sessions, best result wins.

* :class:`ParallelGlia` (MCG-ParN): ``n`` sessions at once, each in its own thread.
* :class:`SequentialGlia` (MCG-Seq): sessions one after another until a target score is
  reached or the session count runs out.

Simulations fan out through a ``concurrent.futures.Executor`` shared by the sessions: a
local process pool by default, or a Dask cluster's executor
(``distributed.Client(...).get_executor()``) when one machine is not enough.
"""
from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from glia_nb.research.offline.researcher import OfflineSupervisor
from glia_nb.research.session.session import Session
from glia_nb.research.tools import ToolBox
from glia_nb.tasks.budget import Budget
from glia_nb.tasks.objective import Objective


@dataclass
class MultiResult:
    """What a multi-context run produced: every session and the best one."""

    sessions: list[Any] = field(default_factory=list)
    best_session: Any = None
    best: dict | None = None

    @property
    def best_score(self) -> float | None:
        return None if self.best is None else self.best.get("score")

    def scores(self) -> list[float | None]:
        """Best score of each session, in session order."""
        return [(s.best or {}).get("score") for s in self.sessions]


def pick_best(sessions: list, objective: Objective) -> tuple[Any, dict | None]:
    """The session whose best experiment scores best under ``objective`` (the earliest on
    ties) and that experiment; ``(None, None)`` when no session has a finite score."""
    best_s = objective.best_of(sessions, lambda s: (s.best or {}).get("score"))
    return best_s, (best_s.best if best_s is not None else None)


def _toolbox_factory(executor: Executor | None) -> Callable:
    def make(workspace, task, budget):
        cap = budget.max_simulations
        if cap is None:
            return ToolBox(workspace, executor=executor, unlimited=True)
        return ToolBox(workspace, executor=executor, max_simulations=cap)
    return make


class _Runner:
    """Shared plumbing: session creation with the shared executor.

    ``budget`` (default: the task's) is the total of the whole run: MCG-ParN splits it
    between its sessions (:meth:`Budget.split`), MCG-Seq's sessions spend what the earlier
    ones left."""

    def __init__(self, task, root, researcher="offline", *, supervisor_client=None, budget=None,
                 executor: Executor | None = None, max_workers: int = 2, seed: int = 0,
                 session_kwargs: dict | None = None):
        self.task, self.root, self.researcher = task, Path(root), researcher
        self.supervisor_client = supervisor_client
        self.budget = Budget.coerce(task.budget if budget is None else budget)
        self._own_executor = executor is None
        self.executor = executor
        self.max_workers = max_workers
        self.seed = seed
        self.session_kwargs = dict(session_kwargs or {})

    def _session(self, index: int, budget: Budget):
        sup = self.supervisor_client
        if sup is None and self.researcher == "offline":
            sup = OfflineSupervisor()
        return Session.create(self.task, self.root / f"context{index}", self.researcher,
                              supervisor_client=sup, budget=budget,
                              seed=self.seed + index,
                              toolbox=_toolbox_factory(self.executor), **self.session_kwargs)

    def __enter__(self):
        if self.executor is None:
            from glia_nb.evaluation.pool import RebuildingProcessPool

            self.executor = RebuildingProcessPool(self.max_workers)
        return self

    def __exit__(self, *exc):
        if self._own_executor and self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
            self.executor = None


class ParallelGlia(_Runner):
    """MCG-ParN: ``n`` independent single-context sessions at once that split the budget;
    the best wins."""

    def __init__(self, n: int, task, root, researcher="offline", **kw):
        if n < 1:
            raise ValueError("ParallelGlia needs n >= 1")
        super().__init__(task, root, researcher, **kw)
        self.n = n

    def shares(self) -> list[Budget]:
        """Each session's part of the budget."""
        return self.budget.split(self.n)

    def run(self, progress: Callable[[int, Any], None] | None = None) -> MultiResult:
        """Run the ``n`` sessions to the end (each in a background thread) and return them."""
        with self:
            sessions = [self._session(i, b) for i, b in enumerate(self.shares())]
            for i, s in enumerate(sessions):
                s.subscribe(lambda ev, i=i: progress(i, ev) if progress else None)
                s.start()
            for s in sessions:
                s.wait()
        best_s, best = pick_best(sessions, self.task.objective)
        return MultiResult(sessions=sessions, best_session=best_s, best=best)


class SequentialGlia(_Runner):
    """MCG-Seq: sessions one after another, each with what the earlier ones left of the
    budget, until ``target`` (a score at least this good), the budget is spent or
    ``max_sessions`` have run; each starts fresh from the task."""

    def __init__(self, max_sessions: int, task, root, researcher="offline", *,
                 target: float | None = None, **kw):
        if max_sessions < 1:
            raise ValueError("SequentialGlia needs max_sessions >= 1")
        super().__init__(task, root, researcher, **kw)
        self.max_sessions = max_sessions
        self.target = target

    def run(self, progress: Callable[[int, Any], None] | None = None) -> MultiResult:
        """Run sessions in turn; stop early once the best score reaches ``target``."""
        sessions = []
        with self:
            for i in range(self.max_sessions):
                left = self.budget.minus(sum(_used(s, "simulations") for s in sessions),
                                         sum(_used(s, "usd") for s in sessions))
                if sessions and (left.max_simulations == 0 or left.max_usd == 0):
                    break
                s = self._session(i, left)
                if progress:
                    s.subscribe(lambda ev, i=i: progress(i, ev))
                s.run()
                sessions.append(s)
                _, best = pick_best(sessions, self.task.objective)
                if best and self.task.objective.reaches(best.get("score"), self.target):
                    break
        best_s, best = pick_best(sessions, self.task.objective)
        return MultiResult(sessions=sessions, best_session=best_s, best=best)


def _used(session, key: str) -> float:
    return float((getattr(session, "budget_used", None) or {}).get(key, 0) or 0)
