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


def _pick_best(sessions: list) -> tuple[Any, dict | None]:
    """The session with the best result (each session's ``best`` is folded from its journal;
    the objective's direction comes from the session) and that result."""
    best_s, best = None, None
    for s in sessions:
        b = s.best
        if not b or b.get("score") is None:
            continue
        if best is None or (b["score"] < best["score"] if s.lower_is_better else b["score"] > best["score"]):
            best_s, best = s, b
    return best_s, best


def reached(target: float | None, best: dict | None, lower_is_better: bool) -> bool:
    """Whether ``best`` is at least as good as ``target`` (never when either is missing)."""
    if target is None or not best or best.get("score") is None:
        return False
    return best["score"] <= target if lower_is_better else best["score"] >= target


def _toolbox_factory(executor: Executor | None) -> Callable:
    def make(workspace, task, budget):
        from glia_nb.research.tools import ToolBox

        max_sims = getattr(budget, "max_simulations", None)
        return ToolBox(workspace, executor=executor, max_simulations=max_sims)
    return make


class _Runner:
    """Shared plumbing: session creation with the shared executor."""

    def __init__(self, task, root, researcher="offline", *, supervisor_client=None, budget=None,
                 executor: Executor | None = None, max_workers: int = 2, seed: int = 0,
                 session_kwargs: dict | None = None):
        self.task, self.root, self.researcher = task, Path(root), researcher
        self.supervisor_client, self.budget = supervisor_client, budget
        self._own_executor = executor is None
        self.executor = executor
        self.max_workers = max_workers
        self.seed = seed
        self.session_kwargs = dict(session_kwargs or {})

    def _session(self, index: int):
        from glia_nb.research.session.session import Session

        sup = self.supervisor_client
        if sup is None and self.researcher == "offline":
            from glia_nb.research.offline.researcher import OfflineSupervisor

            sup = OfflineSupervisor()
        return Session.create(self.task, self.root / f"context{index}", self.researcher,
                              supervisor_client=sup, budget=self.budget,
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
    """MCG-ParN: ``n`` independent single-context sessions at once; the best wins."""

    def __init__(self, n: int, task, root, researcher="offline", **kw):
        if n < 1:
            raise ValueError("ParallelGlia needs n >= 1")
        super().__init__(task, root, researcher, **kw)
        self.n = n

    def run(self, progress: Callable[[int, Any], None] | None = None) -> MultiResult:
        """Run the ``n`` sessions to the end (each in a background thread) and return them."""
        with self:
            sessions = [self._session(i) for i in range(self.n)]
            for i, s in enumerate(sessions):
                s.subscribe(lambda ev, i=i: progress(i, ev) if progress else None)
                s.start()
            for s in sessions:
                s.wait()
        best_s, best = _pick_best(sessions)
        return MultiResult(sessions=sessions, best_session=best_s, best=best)


class SequentialGlia(_Runner):
    """MCG-Seq: sessions one after another until ``target`` (a score at least this good)
    or ``max_sessions``; each starts fresh from the task."""

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
                s = self._session(i)
                if progress:
                    s.subscribe(lambda ev, i=i: progress(i, ev))
                s.run()
                sessions.append(s)
                _, best = _pick_best(sessions)
                if reached(self.target, best, s.lower_is_better):
                    break
        best_s, best = _pick_best(sessions)
        return MultiResult(sessions=sessions, best_session=best_s, best=best)
